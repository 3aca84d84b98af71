/**
 * A local stand-in for Twilio's REST API (Messages resource only), for tests that drive the real
 * twilio SDK: Basic auth, Twilio's JSON error shape, and scripted failures (429 with or without
 * `Retry-After`, 500, 21610, 21211, dropped connections, slow answers). Binds to 127.0.0.1 on a free port; never reaches the internet.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import type twilio from 'twilio';
import { createTwilioClient } from '../../channels/twilio-sms/client.js';
import { countSegments } from '../../channels/twilio-sms/segments.js';

/** `429-retry-after`: a 429 that asks for `Retry-After: 1` (one second). */
export type FakeFailureKind = '429' | '429-retry-after' | '500' | '21610' | '21211' | 'drop';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The form-encoded body as sent (repeated keys such as `MediaUrl` kept: use `getAll`). */
  form: URLSearchParams;
  headers: IncomingHttpHeaders;
}

export interface FakeMessage {
  sid: string;
  accountSid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  mediaUrls: string[];
  statusCallback: string | null;
  numSegments: number;
  status: string;
  errorCode: number | null;
  dateCreated: Date;
  dateUpdated: Date;
}

export interface FakeTwilio {
  /** `http://127.0.0.1:PORT`, to pass as `apiBaseUrl`. */
  baseUrl: string;
  accountSid: string;
  authToken: string;
  /** Every request received, in order, including refused and dropped ones. */
  requests: RecordedRequest[];
  /** Messages accepted with a 201. */
  sent: FakeMessage[];
  /**
   * The next `n` authenticated requests fail with `kind` (`drop` destroys the socket unanswered); with
   * `to`, only requests sending to that number do (a send of another test still in flight passes).
   */
  failNext(n: number, kind: FakeFailureKind, opts?: { to?: string }): void;
  /** Wait `ms` before handling each request. */
  setDelay(ms: number): void;
  /** Moves a sent message to another status, as later fetches will see it. */
  setStatus(sid: string, status: string, errorCode?: number | null): void;
  /** Puts a phone number in the account (IncomingPhoneNumbers), with the webhook URLs its console shows. */
  provisionNumber(phoneNumber: string, urls?: { smsUrl?: string; voiceUrl?: string; friendlyName?: string }): void;
  close(): Promise<void>;
}

const API_VERSION = '2010-04-01';
const E164 = /^(?:whatsapp:)?\+[1-9]\d{1,14}$/u;
const MAX_BODY_CHARS = 1600;

function sid(prefix: string): string {
  return prefix + randomBytes(16).toString('hex');
}

/** RFC 2822 with a numeric zone, as Twilio writes dates. */
function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

function sendTwilioError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

function messageResource(message: FakeMessage): Record<string, unknown> {
  const uri = `/${API_VERSION}/Accounts/${message.accountSid}/Messages/${message.sid}`;
  return {
    account_sid: message.accountSid,
    api_version: API_VERSION,
    body: message.body,
    date_created: rfc2822(message.dateCreated),
    date_sent: null,
    date_updated: rfc2822(message.dateUpdated),
    direction: 'outbound-api',
    error_code: message.errorCode,
    error_message: null,
    from: message.from,
    messaging_service_sid: message.messagingServiceSid,
    num_media: String(message.mediaUrls.length),
    num_segments: String(message.numSegments),
    price: null,
    price_unit: 'USD',
    sid: message.sid,
    status: message.status,
    subresource_uris: { media: `${uri}/Media.json` },
    to: message.to,
    uri: `${uri}.json`,
  };
}

function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  const match = /^Basic\s+(.+)$/iu.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Starts the fake on 127.0.0.1 with a fresh account SID and auth token. */
export async function startFakeTwilio(): Promise<FakeTwilio> {
  const accountSid = sid('AC');
  const authToken = randomBytes(16).toString('hex');
  const requests: RecordedRequest[] = [];
  const sent: FakeMessage[] = [];
  const failures: { kind: FakeFailureKind; to?: string }[] = [];
  const numbers = new Map<string, Record<string, unknown>>();
  let delayMs = 0;

  const app = express();
  app.disable('x-powered-by');
  app.use(express.text({ type: () => true, limit: '1mb' }));

  app.use(async (req: Request, res: Response, next: NextFunction) => {
    const url = new URL(req.originalUrl, 'http://fake.invalid');
    const recorded: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      query: url.searchParams,
      form: new URLSearchParams(typeof req.body === 'string' ? req.body : ''),
      headers: req.headers,
    };
    requests.push(recorded);
    if (delayMs > 0) await sleep(delayMs);

    const credentials = basicCredentials(req.get('authorization'));
    if (credentials?.username !== accountSid || credentials.password !== authToken) {
      res.set('WWW-Authenticate', 'Basic realm="Twilio API"');
      sendTwilioError(res, 401, 20003, 'Authenticate');
      return;
    }

    const due = failures.findIndex((f) => f.to === undefined || f.to === recorded.form.get('To'));
    const failure = due >= 0 ? failures.splice(due, 1)[0]!.kind : undefined;
    switch (failure) {
      case undefined:
        next();
        return;
      case 'drop':
        req.socket.destroy();
        return;
      case '429':
        sendTwilioError(res, 429, 20429, 'Too Many Requests');
        return;
      case '429-retry-after':
        res.set('Retry-After', '1');
        sendTwilioError(res, 429, 20429, 'Too Many Requests');
        return;
      case '500':
        sendTwilioError(res, 500, 20500, 'Internal Server Error');
        return;
      case '21610':
        sendTwilioError(res, 400, 21610, 'Attempt to send to unsubscribed recipient');
        return;
      case '21211':
        sendTwilioError(res, 400, 21211, `Invalid 'To' Phone Number: ${recorded.form.get('To') ?? ''}`);
        return;
    }
  });

  const accountPath = `/${API_VERSION}/Accounts/:accountSid`;

  app.post(`${accountPath}/Messages.json`, (req: Request, res: Response, next: NextFunction) => {
    if (req.params.accountSid !== accountSid) {
      next();
      return;
    }
    const form = new URLSearchParams(typeof req.body === 'string' ? req.body : '');
    const to = form.get('To');
    const from = form.get('From');
    const messagingServiceSid = form.get('MessagingServiceSid');
    const body = form.get('Body') ?? '';
    const mediaUrls = form.getAll('MediaUrl');

    if (!to) return sendTwilioError(res, 400, 21604, "A 'To' phone number is required.");
    if (!from && !messagingServiceSid) return sendTwilioError(res, 400, 21603, "A 'From' phone number is required.");
    if (!E164.test(to)) return sendTwilioError(res, 400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (body === '' && mediaUrls.length === 0) return sendTwilioError(res, 400, 21602, 'Message body is required.');
    if ([...body].length > MAX_BODY_CHARS) {
      return sendTwilioError(res, 400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
    }

    const now = new Date();
    const message: FakeMessage = {
      sid: sid(mediaUrls.length > 0 ? 'MM' : 'SM'),
      accountSid,
      to,
      from: from ?? null,
      messagingServiceSid: messagingServiceSid ?? null,
      body,
      mediaUrls,
      statusCallback: form.get('StatusCallback'),
      numSegments: countSegments(body).segments,
      // Twilio answers "accepted" when a Messaging Service picks the sender, "queued" otherwise.
      status: messagingServiceSid && !from ? 'accepted' : 'queued',
      errorCode: null,
      dateCreated: now,
      dateUpdated: now,
    };
    sent.push(message);
    res.status(201).json(messageResource(message));
  });

  // IncomingPhoneNumbers: the account's numbers, as the SDK's incomingPhoneNumbers.list() reads them.
  app.get(`${accountPath}/IncomingPhoneNumbers.json`, (req: Request, res: Response, next: NextFunction) => {
    if (req.params.accountSid !== accountSid) {
      next();
      return;
    }
    const wanted = typeof req.query.PhoneNumber === 'string' ? req.query.PhoneNumber : undefined;
    const pageSize = Math.min(Number(req.query.PageSize ?? 50) || 50, 1000);
    const list = [...numbers.values()].filter((n) => !wanted || n.phone_number === wanted).slice(0, pageSize);
    const uri = `/${API_VERSION}/Accounts/${accountSid}/IncomingPhoneNumbers.json`;
    res.status(200).json({ incoming_phone_numbers: list, page: 0, page_size: pageSize, first_page_uri: `${uri}?PageSize=${pageSize}&Page=0`, next_page_uri: null, previous_page_uri: null, uri, start: 0, end: list.length ? list.length - 1 : 0 });
  });

  app.get(`${accountPath}/Messages/:messageSid.json`, (req: Request, res: Response, next: NextFunction) => {
    const message = sent.find((m) => m.sid === req.params.messageSid && m.accountSid === req.params.accountSid);
    if (!message) {
      next();
      return;
    }
    res.status(200).json(messageResource(message));
  });

  app.use((req: Request, res: Response) => {
    sendTwilioError(res, 404, 20404, `The requested resource ${req.path} was not found`);
  });

  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(listening)));
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    requests,
    sent,
    failNext(n, kind, opts = {}) {
      for (let i = 0; i < n; i += 1) failures.push({ kind, to: opts.to });
    },
    setDelay(ms) {
      delayMs = ms;
    },
    provisionNumber(phoneNumber, urls = {}) {
      const now = rfc2822(new Date());
      numbers.set(phoneNumber, {
        sid: sid('PN'),
        account_sid: accountSid,
        friendly_name: urls.friendlyName ?? phoneNumber,
        phone_number: phoneNumber,
        sms_url: urls.smsUrl ?? '',
        sms_method: 'POST',
        voice_url: urls.voiceUrl ?? '',
        voice_method: 'POST',
        status_callback: '',
        capabilities: { voice: true, sms: true, mms: true, fax: false },
        status: 'in-use',
        date_created: now,
        date_updated: now,
        api_version: API_VERSION,
        uri: `/${API_VERSION}/Accounts/${accountSid}/IncomingPhoneNumbers/${phoneNumber}.json`,
      });
    },
    setStatus(messageSid, status, errorCode = null) {
      const message = sent.find((m) => m.sid === messageSid);
      if (!message) throw new Error(`No message ${messageSid} in the fake`);
      message.status = status;
      message.errorCode = errorCode;
      message.dateUpdated = new Date();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** A real `twilio.Twilio` client (SDK retries off) whose REST calls go to `fake`. */
export function twilioClientFor(fake: FakeTwilio, opts: { timeoutMs?: number } = {}): twilio.Twilio {
  return createTwilioClient({
    accountSid: fake.accountSid,
    authToken: fake.authToken,
    apiBaseUrl: fake.baseUrl,
    timeoutMs: opts.timeoutMs,
  });
}

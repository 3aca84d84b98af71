/**
 * Builds webhook requests the way Twilio sends them: the form parameters of an inbound SMS/MMS, a
 * status callback or a voice call, signed with the twilio SDK's own helper over the URL Twilio
 * would call. Used by the tests and by `npm run bench`.
 *
 * @example
 * const req = signedSmsRequest({ baseUrl: gw.url, authToken, params: inboundSmsParams({ from: '+15550001111', to: '+15557654321', body: 'hours?' }) });
 * await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body });
 */
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';

/** A fresh Twilio-shaped SID: two letters and 32 hex digits. */
export function newSid(prefix: 'SM' | 'MM' | 'CA' | 'AC' = 'SM'): string {
  return prefix + randomBytes(16).toString('hex');
}

export interface InboundSmsInput {
  from: string;
  to: string;
  body: string;
  accountSid?: string;
  messageSid?: string;
  media?: { url: string; contentType: string }[];
  /** Set by Twilio's Advanced Opt-Out (STOP, START, HELP). */
  optOutType?: string;
  extra?: Record<string, string>;
}

/** The parameters Twilio posts for an inbound message (the same set a real webhook carries). */
export function inboundSmsParams(input: InboundSmsInput): Record<string, string> {
  const media = input.media ?? [];
  const messageSid = input.messageSid ?? newSid(media.length ? 'MM' : 'SM');
  const params: Record<string, string> = {
    ToCountry: 'US',
    ToState: 'CA',
    SmsMessageSid: messageSid,
    NumMedia: String(media.length),
    ToCity: 'SAN FRANCISCO',
    FromZip: '94105',
    SmsSid: messageSid,
    FromState: 'CA',
    SmsStatus: 'received',
    FromCity: 'SAN FRANCISCO',
    Body: input.body,
    FromCountry: 'US',
    To: input.to,
    ToZip: '94105',
    NumSegments: '1',
    MessageSid: messageSid,
    AccountSid: input.accountSid ?? newSid('AC'),
    From: input.from,
    ApiVersion: '2010-04-01',
    ...(input.optOutType ? { OptOutType: input.optOutType } : {}),
    ...input.extra,
  };
  media.forEach((m, i) => {
    params[`MediaUrl${i}`] = m.url;
    params[`MediaContentType${i}`] = m.contentType;
  });
  return params;
}

export function statusCallbackParams(input: { messageSid: string; status: string; from: string; to: string; accountSid: string; errorCode?: string }): Record<string, string> {
  return {
    SmsSid: input.messageSid,
    SmsStatus: input.status,
    MessageStatus: input.status,
    To: input.to,
    MessageSid: input.messageSid,
    AccountSid: input.accountSid,
    From: input.from,
    ApiVersion: '2010-04-01',
    ...(input.errorCode ? { ErrorCode: input.errorCode } : {}),
  };
}

export function voiceParams(input: {
  callSid: string;
  from: string;
  to: string;
  accountSid: string;
  callStatus?: string;
  speech?: string;
  confidence?: number;
  digits?: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    AccountSid: input.accountSid,
    ApiVersion: '2010-04-01',
    CallSid: input.callSid,
    CallStatus: input.callStatus ?? 'in-progress',
    Called: input.to,
    CalledCountry: 'US',
    Caller: input.from,
    CallerCountry: 'US',
    Direction: 'inbound',
    FromCountry: 'US',
    ToCountry: 'US',
    From: input.from,
    To: input.to,
    ...(input.speech !== undefined ? { SpeechResult: input.speech, Confidence: String(input.confidence ?? 0.92) } : {}),
    ...(input.digits !== undefined ? { Digits: input.digits, FinishedOnKey: '' } : {}),
    ...input.extra,
  };
}

export interface SignedRequest {
  /** Where to send it (the gateway's own address). */
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  /** The form body, application/x-www-form-urlencoded. */
  body: string;
  params: Record<string, string>;
}

/**
 * Signs `params` over `signedUrl` (the URL configured in Twilio; default: the URL the request goes to)
 * and returns a request ready for fetch or autocannon.
 */
export function signedWebhook(opts: { url: string; authToken: string; params: Record<string, string>; signedUrl?: string }): SignedRequest {
  const signature = twilio.getExpectedTwilioSignature(opts.authToken, opts.signedUrl ?? opts.url, opts.params);
  return {
    url: opts.url,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
    body: new URLSearchParams(opts.params).toString(),
    params: opts.params,
  };
}

/**
 * A signed inbound-SMS webhook for `POST {baseUrl}/twilio/sms`. With `publicBaseUrl`, it is signed
 * the way Twilio signs when the gateway sits behind a proxy at that address.
 */
export function signedSmsRequest(opts: { baseUrl: string; authToken: string; params: Record<string, string>; publicBaseUrl?: string }): SignedRequest {
  const path = '/twilio/sms';
  return signedWebhook({ url: `${opts.baseUrl}${path}`, authToken: opts.authToken, params: opts.params, ...(opts.publicBaseUrl ? { signedUrl: `${opts.publicBaseUrl.replace(/\/+$/u, '')}${path}` } : {}) });
}

/**
 * A source of distinct signed inbound-SMS webhooks, for load tests: each call has a fresh MessageSid
 * (so none is answered as a duplicate) and rotates through `senders` distinct numbers.
 *
 * @example
 * const next = smsRequestFactory({ baseUrl: gw.url, publicBaseUrl: 'https://demo.example.com', authToken, accountSid, to: '+15557654321', body: 'hours' });
 * autocannon({ url: gw.url, requests: [{ setupRequest: (req) => { const s = next(); return { ...req, method: 'POST', path: '/twilio/sms', headers: s.headers, body: s.body }; } }] });
 */
export function smsRequestFactory(opts: { baseUrl: string; authToken: string; accountSid: string; to: string; body: string | (() => string); publicBaseUrl?: string; senders?: number }): () => SignedRequest {
  let n = 0;
  const senders = opts.senders ?? 1000;
  return () => {
    const from = `+1555${String(1_000_000 + (n++ % senders)).slice(1)}`;
    const body = typeof opts.body === 'function' ? opts.body() : opts.body;
    return signedSmsRequest({
      baseUrl: opts.baseUrl,
      authToken: opts.authToken,
      params: inboundSmsParams({ from, to: opts.to, body, accountSid: opts.accountSid }),
      ...(opts.publicBaseUrl ? { publicBaseUrl: opts.publicBaseUrl } : {}),
    });
  };
}

/** Sends a signed (or deliberately unsigned) request and reads the answer as text. */
export async function post(req: Pick<SignedRequest, 'url' | 'headers' | 'body'>): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

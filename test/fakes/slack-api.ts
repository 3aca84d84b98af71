// A fake of the few Slack Web API methods Parley calls, on 127.0.0.1. Point the real WebClient at it
// with `new WebClient(token, { slackApiUrl: fake.apiUrl })` (Bolt: `clientOptions.slackApiUrl`).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One API call as received (after parsing form or JSON bodies). */
export interface FakeSlackCall {
  method: string;
  body: Record<string, unknown>;
  /** True when the fake answered 429 instead of handling it. */
  rateLimited: boolean;
}

/** A message posted through `chat.postMessage`, updated in place by `chat.update`. */
export interface FakeSlackMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown;
  thread_ts?: string;
  /** How many times `chat.update` changed it. */
  edits: number;
}

export interface FakeSlack {
  /** Web API root ending in `/api/`, for `slackApiUrl`. */
  apiUrl: string;
  calls: FakeSlackCall[];
  messages: FakeSlackMessage[];
  /** The next `n` calls answer 429 with `Retry-After: retryAfterSeconds`. */
  rateLimitNext(n: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

/** Identity the fake reports from `auth.test` and stamps on posted messages. */
export const FAKE_SLACK_IDENTITY = {
  url: 'https://parley-test.slack.com/',
  team: 'Parley Test',
  user: 'parley',
  team_id: 'T0FAKETEAM',
  user_id: 'U0FAKEBOT',
  bot_id: 'B0FAKEBOT',
  app_id: 'A0FAKEAPP',
} as const;

// Fields WebClient JSON-encodes inside form bodies.
const JSON_FIELDS = new Set(['blocks', 'attachments', 'metadata']);

/**
 * Starts the fake Slack Web API on an OS-assigned port.
 *
 * @example
 * const slack = await startFakeSlack({ token: 'xoxb-test' });
 * const client = new webApi.WebClient('xoxb-test', { slackApiUrl: slack.apiUrl });
 */
export async function startFakeSlack(options: { token: string }): Promise<FakeSlack> {
  const calls: FakeSlackCall[] = [];
  const messages: FakeSlackMessage[] = [];
  const rateLimits: number[] = [];
  let sequence = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, { ok: false, error: 'fatal_error', detail: String(error) });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const method = new URL(req.url ?? '/', 'http://fake').pathname.replace(/^\/api\//, '');
    const body = parseBody(raw, req.headers['content-type']);

    const retryAfter = rateLimits.shift();
    calls.push({ method, body, rateLimited: retryAfter !== undefined });
    if (retryAfter !== undefined) {
      res.setHeader('retry-after', String(retryAfter));
      return reply(res, 429, { ok: false, error: 'ratelimited' });
    }

    const token = bearer(req.headers.authorization) ?? (typeof body['token'] === 'string' ? body['token'] : undefined);
    if (token === undefined) return reply(res, 200, { ok: false, error: 'not_authed' });
    if (token !== options.token) return reply(res, 200, { ok: false, error: 'invalid_auth' });

    reply(res, 200, dispatch(method, body));
  }

  function dispatch(method: string, body: Record<string, unknown>): Record<string, unknown> {
    const channel = stringField(body, 'channel');
    switch (method) {
      case 'auth.test':
        return { ok: true, ...FAKE_SLACK_IDENTITY, is_enterprise_install: false };
      case 'conversations.info':
        if (!channel) return { ok: false, error: 'channel_not_found' };
        return { ok: true, channel: describeChannel(channel) };
      case 'chat.postMessage': {
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (body['text'] === undefined && body['blocks'] === undefined && body['attachments'] === undefined) {
          return { ok: false, error: 'no_text' };
        }
        const message: FakeSlackMessage = {
          channel,
          ts: nextTs(),
          text: stringField(body, 'text'),
          blocks: body['blocks'],
          thread_ts: stringField(body, 'thread_ts'),
          edits: 0,
        };
        messages.push(message);
        return { ok: true, channel, ts: message.ts, message: asSlackMessage(message) };
      }
      case 'chat.update': {
        const ts = stringField(body, 'ts');
        const message = messages.find((m) => m.channel === channel && m.ts === ts);
        if (!message) return { ok: false, error: 'message_not_found' };
        if (body['text'] !== undefined) message.text = stringField(body, 'text');
        if (body['blocks'] !== undefined) message.blocks = body['blocks'];
        message.edits++;
        return { ok: true, channel, ts, text: message.text, message: asSlackMessage(message) };
      }
      default:
        return { ok: false, error: 'unknown_method', req_method: method };
    }
  }

  function nextTs(): string {
    sequence++;
    return `${Math.floor(Date.now() / 1000)}.${String(sequence).padStart(6, '0')}`;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    messages,
    rateLimitNext(n, retryAfterSeconds) {
      for (let i = 0; i < n; i++) rateLimits.push(retryAfterSeconds);
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function asSlackMessage(message: FakeSlackMessage): Record<string, unknown> {
  return {
    type: 'message',
    user: FAKE_SLACK_IDENTITY.user_id,
    bot_id: FAKE_SLACK_IDENTITY.bot_id,
    app_id: FAKE_SLACK_IDENTITY.app_id,
    team: FAKE_SLACK_IDENTITY.team_id,
    ts: message.ts,
    text: message.text ?? '',
    ...(message.blocks !== undefined ? { blocks: message.blocks } : {}),
    ...(message.thread_ts !== undefined ? { thread_ts: message.thread_ts } : {}),
    ...(message.edits > 0 ? { edited: { user: FAKE_SLACK_IDENTITY.user_id, ts: message.ts } } : {}),
  };
}

function describeChannel(id: string): Record<string, unknown> {
  const isIm = id.startsWith('D');
  return {
    id,
    name: isIm ? undefined : `channel-${id.toLowerCase()}`,
    is_channel: id.startsWith('C'),
    is_group: id.startsWith('G'),
    is_im: isIm,
    is_private: !id.startsWith('C'),
    is_member: true,
    is_archived: false,
    created: 1_700_000_000,
  };
}

function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (raw === '') return {};
  if (contentType?.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
  const body: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    body[key] = JSON_FIELDS.has(key) ? tryJson(value) : value;
  }
  return body;
}

function tryJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function stringField(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

function bearer(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

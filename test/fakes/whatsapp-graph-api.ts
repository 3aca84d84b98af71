// A fake of Meta's Graph API send endpoint on 127.0.0.1, answering with Meta's shapes so the real
// graph client and channel code run against it unchanged.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Failure modes the next requests can be given. */
export type FakeGraphFailure =
  /** HTTP 429 with Meta code 130429 and `Retry-After: 1`. */
  | '429'
  /** HTTP 500 with Meta code 131000 ("Something went wrong"). */
  | '500'
  /** HTTP 400 with Meta code 131047 (outside the 24-hour window). */
  | '131047'
  /** The message is accepted, then the connection is destroyed before any answer. */
  | 'drop'
  /** The message is accepted and the request is never answered (until close). */
  | 'hang';

/** A message the fake accepted. */
export interface FakeGraphSent {
  version: string;
  phoneNumberId: string;
  wamid: string;
  body: Record<string, unknown>;
}

export interface FakeGraph {
  /** Graph root with version, e.g. `http://127.0.0.1:PORT/v21.0`; pass it as the client's baseUrl. */
  baseUrl: string;
  /** Accepted messages in arrival order, including 'drop' and 'hang' ones (sent, answer lost). */
  sent: FakeGraphSent[];
  /** Every authorised request that reached the messages endpoint, failed ones included. */
  requests: Array<{ phoneNumberId: string; body: unknown; failure?: FakeGraphFailure }>;
  /** The next `n` requests fail with `kind` (queued after failures already pending). */
  failNext(n: number, kind: FakeGraphFailure): void;
  close(): Promise<void>;
}

const MESSAGES_PATH = /^\/(v\d+\.\d+)\/([^/]+)\/messages\/?$/;

/**
 * Starts the fake on 127.0.0.1 with an OS-assigned port.
 *
 * @example
 * const graph = await startFakeGraph({ accessToken: 'test-token' });
 * const client = createGraphClient({ accessToken: 'test-token', baseUrl: graph.baseUrl });
 */
export async function startFakeGraph(options: { accessToken: string; version?: string }): Promise<FakeGraph> {
  const version = options.version ?? 'v21.0';
  const sent: FakeGraphSent[] = [];
  const requests: FakeGraph['requests'] = [];
  const failures: FakeGraphFailure[] = [];
  const hanging = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) metaError(res, 500, 1, `fake graph crashed: ${String(error)}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const match = MESSAGES_PATH.exec(new URL(req.url ?? '/', 'http://fake').pathname);
    if (req.method !== 'POST' || !match) {
      return metaError(res, 400, 100, `Unsupported ${req.method} request to ${req.url}`, 'GraphMethodException');
    }
    if (req.headers.authorization !== `Bearer ${options.accessToken}`) {
      return metaError(res, 401, 190, 'Invalid OAuth access token - Cannot parse access token');
    }
    const [, pathVersion = version, phoneNumberId = ''] = match;

    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return metaError(res, 400, 100, '(#100) Invalid JSON payload');
    }
    const failure = failures.shift();
    requests.push({ phoneNumberId, body, ...(failure ? { failure } : {}) });

    const problem = invalidSend(body);
    if (problem) return metaError(res, 400, 100, `(#100) ${problem}`);
    const message = body as Record<string, unknown> & { to: string };

    switch (failure) {
      case '429':
        res.setHeader('retry-after', '1');
        return metaError(res, 429, 130429, '(#130429) Rate limit hit', 'OAuthException', 'Cloud API message throughput has been reached.');
      case '500':
        return metaError(res, 500, 131000, 'Something went wrong', 'OAuthException', 'Something went wrong.');
      case '131047':
        return metaError(
          res,
          400,
          131047,
          '(#131047) Re-engagement message',
          'OAuthException',
          'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
        );
      default:
        break;
    }

    const wamid = `wamid.HBgL${randomBytes(24).toString('base64')}`;
    sent.push({ version: pathVersion, phoneNumberId, wamid, body: message });
    if (failure === 'drop') return void req.socket.destroy();
    if (failure === 'hang') return void hanging.add(res);

    json(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [{ input: message.to, wa_id: message.to.replace(/\D/g, '') }],
      messages: [{ id: wamid, ...(message['type'] === 'template' ? { message_status: 'accepted' } : {}) }],
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/${version}`,
    sent,
    requests,
    failNext(n, kind) {
      for (let i = 0; i < n; i++) failures.push(kind);
    },
    close() {
      for (const res of hanging) res.destroy();
      hanging.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function invalidSend(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'Invalid parameter';
  const b = body as Record<string, unknown>;
  if (b['messaging_product'] !== 'whatsapp') return 'The parameter messaging_product is required.';
  if (typeof b['to'] !== 'string' || b['to'] === '') return 'The parameter to is required.';
  if (typeof b['type'] !== 'string') return 'The parameter type is required.';
  if (typeof b[b['type']] !== 'object') return `The parameter ${b['type']} is required.`;
  return undefined;
}

function metaError(
  res: ServerResponse,
  status: number,
  code: number,
  message: string,
  type = 'OAuthException',
  details?: string,
): void {
  json(res, status, {
    error: {
      message,
      type,
      code,
      ...(details ? { error_data: { messaging_product: 'whatsapp', details } } : {}),
      fbtrace_id: `A${randomBytes(8).toString('hex')}`,
    },
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

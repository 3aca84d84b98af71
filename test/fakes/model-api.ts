// A fake of the model APIs Parley calls, on 127.0.0.1: OpenAI-compatible `/v1/chat/completions` and
// `/v1/embeddings`, and Anthropic's `/v1/messages`. Answers have the real shapes (usage included;
// embeddings in base64 when the SDK asks for it, as openai v6 does by default). Failures are
// scripted per call: point the real ChatOpenAI at `${fake.url}/v1`, ChatAnthropic at `fake.url`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeModelFailure =
  | { status: 429; retryAfter?: string }
  | { status: 400 | 401 | 500 | 502 | 503 }
  /** Never answer (until the server closes). */
  | { hang: true }
  /** Drop the connection without an answer. */
  | { reset: true };

export interface FakeModelCall {
  path: string;
  body: Record<string, any>;
  headers: IncomingMessage['headers'];
  /** What the fake did: `ok`, a status, `hang` or `reset`. */
  outcome: string;
  at: number;
}

export interface FakeModelApi {
  /** Root without `/v1` (`http://127.0.0.1:port`). */
  url: string;
  calls: FakeModelCall[];
  /** Queue failures for the next calls (in order); later calls answer normally. */
  failNext(...failures: FakeModelFailure[]): void;
  /** Every call fails this way until `healthy()`. */
  failAll(failure: FakeModelFailure): void;
  healthy(): void;
  /**
   * Text the chat endpoints answer with (default: `echo: <last user message>`); `request.system` is the
   * system prompt (OpenAI's system messages, Anthropic's `system`), so one fake can play several prompts.
   */
  answer: ((lastUserText: string, request: { system: string }) => string) | undefined;
  /**
   * The model name chat answers report for a requested one, as OpenAI answers `gpt-4o-mini` with
   * `gpt-4o-mini-2024-07-18` (default: the requested name).
   */
  answerAs: Record<string, string>;
  reset(): void;
  close(): Promise<void>;
}

/** Tokens the fake reports: one per 4 characters of the prompt, at least 1, like a rough tokenizer. */
export const fakeTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

const DIMENSIONS = 8;

/** A deterministic vector for a text, so tests can check which text was embedded. */
export function fakeEmbedding(text: string): number[] {
  const v = Array.from({ length: DIMENSIONS }, (_, i) => ((text.charCodeAt(i % Math.max(1, text.length)) || 0) % 17) / 16);
  v[0] = text.length;
  return v;
}

export async function startFakeModelApi(): Promise<FakeModelApi> {
  const calls: FakeModelCall[] = [];
  let queue: FakeModelFailure[] = [];
  let always: FakeModelFailure | undefined;
  const hanging = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { message: String(error), type: 'server_error' } });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const body = raw ? (JSON.parse(raw) as Record<string, any>) : {};
    const call: FakeModelCall = { path, body, headers: req.headers, outcome: 'ok', at: Date.now() };
    calls.push(call);
    const failure = queue.shift() ?? always;
    const anthropic = path === '/v1/messages';
    if (failure) {
      if ('hang' in failure) {
        call.outcome = 'hang';
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      if ('reset' in failure) {
        call.outcome = 'reset';
        req.socket.destroy();
        return;
      }
      call.outcome = String(failure.status);
      if (failure.status === 429 && failure.retryAfter !== undefined) res.setHeader('retry-after', failure.retryAfter);
      const type = failure.status === 429 ? 'rate_limit_error' : failure.status === 400 ? 'invalid_request_error' : failure.status === 401 ? 'authentication_error' : 'api_error';
      return anthropic
        ? json(res, failure.status, { type: 'error', error: { type, message: `fake ${failure.status}` } })
        : json(res, failure.status, { error: { message: `fake ${failure.status}`, type, code: failure.status === 429 ? 'rate_limit_exceeded' : null, param: null } });
    }

    if (path === '/v1/chat/completions' || anthropic) {
      const messages = (body.messages ?? []) as { role: string; content: unknown }[];
      const textOf = (c: unknown): string => (typeof c === 'string' ? c : Array.isArray(c) ? c.map((p: { text?: string }) => p.text ?? '').join('') : '');
      const prompt = [typeof body.system === 'string' ? body.system : '', ...messages.map((m) => textOf(m.content))].join('\n');
      const lastUser = textOf([...messages].reverse().find((m) => m.role === 'user')?.content);
      const system = body.system !== undefined ? textOf(body.system) : messages.filter((m) => m.role === 'system').map((m) => textOf(m.content)).join('\n');
      const text = api.answer ? api.answer(lastUser, { system }) : `echo: ${lastUser}`;
      const input = fakeTokens(prompt);
      const output = fakeTokens(text);
      const model = api.answerAs[body.model] ?? body.model;
      if (anthropic) {
        return json(res, 200, { id: `msg_${calls.length}`, type: 'message', role: 'assistant', model, content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: input, output_tokens: output } });
      }
      return json(res, 200, {
        id: `chatcmpl-${calls.length}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
      });
    }
    if (path === '/v1/embeddings') {
      const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
      const tokens = inputs.reduce((sum, t) => sum + fakeTokens(t), 0);
      const encode = (v: number[]) => (body.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v);
      return json(res, 200, { object: 'list', data: inputs.map((t, index) => ({ object: 'embedding', index, embedding: encode(fakeEmbedding(t)) })), model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
    }
    call.outcome = '404';
    json(res, 404, { error: { message: `no route ${path}`, type: 'invalid_request_error' } });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const api: FakeModelApi = {
    url: `http://127.0.0.1:${port}`,
    calls,
    answer: undefined,
    answerAs: {},
    failNext: (...failures) => void queue.push(...failures),
    failAll: (failure) => void (always = failure),
    healthy: () => void (always = undefined),
    reset() {
      calls.length = 0;
      queue = [];
      always = undefined;
      api.answer = undefined;
      api.answerAs = {};
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The AI model service (`ctx.ai`) driving the real ChatOpenAI, OpenAIEmbeddings and ChatAnthropic
 * against a fake model API on 127.0.0.1: answers and metered usage, retries (429 with Retry-After, 5xx,
 * a dropped connection) and what is never retried (400, 401, a timeout), the per-provider circuit
 * breaker with its alert, and tenants that run `local`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { fakeEmbedding, fakeTokens, startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import type { AiService } from '../core/ai/types.js';
import { ParleyError } from '../core/errors.js';

let gw: TestGateway;
let fake: FakeModelApi;
let ai: AiService;

const OPEN_MS = 300;

beforeAll(async () => {
  fake = await startFakeModelApi();
  const v1 = `${fake.url}/v1`;
  gw = await startTestGateway({
    env: { AI_TEST_UNSET_KEY: '' },
    config: {
      ai: {
        providers: {
          // No key: a loopback server needs none.
          fast: { type: 'openai', baseUrl: v1, chatModel: 'gpt-4o-mini', embeddingModel: 'text-embedding-3-small', timeoutMs: 400, maxRetries: 2, backoffMs: 20 },
          flaky: { type: 'openai', baseUrl: v1, chatModel: 'gpt-4o-mini', timeoutMs: 400, maxRetries: 0 },
          claude: { type: 'anthropic', baseUrl: fake.url, apiKey: 'test-anthropic-key', chatModel: 'claude-3-5-haiku-latest', timeoutMs: 2000 },
          offline: { type: 'openai', baseUrl: 'https://api.openai.com/v1', apiKey: '${AI_TEST_UNSET_KEY}', chatModel: 'gpt-4o-mini' },
        },
        prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 }, 'text-embedding-3-small': { input: 0.02 } },
        breaker: { failures: 3, openMs: OPEN_MS },
      },
      tenants: [
        { id: 'acme', ai: { chat: 'fast', embeddings: 'fast' } },
        { id: 'globex', ai: { chat: 'flaky' } },
        { id: 'clinic', ai: { chat: 'claude' } },
        { id: 'offline', ai: { chat: 'offline' } },
        { id: 'plain' },
      ],
    },
  });
  ai = gw.gateway.ai.for('ai-test');
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => fake.reset());

async function usageOf(tenant: string, kind?: string) {
  const { rows } = await gw.gateway.db.pool.query(
    `SELECT kind, quantity::int AS quantity, cost_usd::float8 AS cost, ref, plugin, attributes FROM parley_usage WHERE tenant_id = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY at, kind`,
    [tenant, kind ?? null],
  );
  return rows as { kind: string; quantity: number; cost: number | null; ref: string | null; plugin: string; attributes: Record<string, unknown> }[];
}

async function rejection(promise: Promise<unknown>): Promise<ParleyError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ParleyError);
    return error as ParleyError;
  }
  throw new Error('expected a rejection');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chat', () => {
  it('answers through the real ChatOpenAI and records its tokens with their cost, once per ref', async () => {
    const chat = ai.chat('acme')!;
    expect({ provider: chat.provider, model: chat.model }).toEqual({ provider: 'fast', model: 'gpt-4o-mini' });
    const messages = [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'When does the Tuesday clinic open?' },
    ];
    const result = await chat.invoke(messages, { purpose: 'answer', ref: 'msg-1', maxTokens: 50 });
    const input = fakeTokens('Answer briefly.\nWhen does the Tuesday clinic open?');
    const output = fakeTokens('echo: When does the Tuesday clinic open?');
    expect(result).toMatchObject({ text: 'echo: When does the Tuesday clinic open?', usage: { inputTokens: input, outputTokens: output }, model: 'gpt-4o-mini', provider: 'fast', attempts: 1 });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]).toMatchObject({ path: '/v1/chat/completions', body: { model: 'gpt-4o-mini', max_tokens: 50 } });

    // A re-run of the same message (same ref and purpose) answers again but is not billed twice.
    await chat.invoke(messages, { purpose: 'answer', ref: 'msg-1' });
    const rows = await usageOf('acme');
    expect(rows).toEqual([
      { kind: 'model.tokens.input', quantity: input, cost: expect.closeTo((input * 0.15) / 1e6, 12), ref: 'ai:answer:msg-1', plugin: 'ai-test', attributes: { model: 'gpt-4o-mini', provider: 'fast', purpose: 'answer' } },
      { kind: 'model.tokens.output', quantity: output, cost: expect.closeTo((output * 0.6) / 1e6, 12), ref: 'ai:answer:msg-1', plugin: 'ai-test', attributes: { model: 'gpt-4o-mini', provider: 'fast', purpose: 'answer' } },
    ]);
    expect(await gw.metrics()).toMatch(/parley_ai_requests_total\{tenant="acme",provider="fast",outcome="ok"\} 2/);
    // Neither the prompt nor the answer reaches the log.
    expect(JSON.stringify(gw.logs)).not.toContain('Tuesday clinic');
  });

  it('retries a 429 after its Retry-After, a headerless 429, a 500 and a dropped connection', async () => {
    const chat = ai.chat('acme')!;
    fake.failNext({ status: 429, retryAfter: '1' });
    const waited = await chat.invoke([{ role: 'user', content: 'hello' }], { purpose: 'test' });
    expect(waited).toMatchObject({ text: 'echo: hello', attempts: 2 });
    expect(fake.calls.map((c) => c.outcome)).toEqual(['429', 'ok']);
    expect(fake.calls[1]!.at - fake.calls[0]!.at).toBeGreaterThanOrEqual(950);

    fake.reset();
    fake.failNext({ status: 429 }, { status: 500 });
    expect(await chat.invoke([{ role: 'user', content: 'again' }], { purpose: 'test' })).toMatchObject({ text: 'echo: again', attempts: 3 });
    expect(fake.calls.map((c) => c.outcome)).toEqual(['429', '500', 'ok']);

    fake.reset();
    fake.failNext({ reset: true });
    expect(await chat.invoke([{ role: 'user', content: 'once more' }], { purpose: 'test' })).toMatchObject({ attempts: 2 });
    expect(await gw.metrics()).toMatch(/parley_ai_retries_total\{provider="fast",reason="429"\} 2/);
  });

  it('gives up after maxRetries with a coded error', async () => {
    fake.failNext({ status: 503 }, { status: 503 }, { status: 503 });
    const error = await rejection(ai.chat('acme')!.invoke([{ role: 'user', content: 'hi' }], { purpose: 'test' }));
    expect(error).toMatchObject({ code: 'PARLEY_AI_FAILED', details: { provider: 'fast', attempts: 3, status: 503 } });
    expect(fake.calls).toHaveLength(3);
  });

  it('does not retry a 400 or a 401', async () => {
    fake.failNext({ status: 400 });
    const bad = await rejection(ai.chat('acme')!.invoke([{ role: 'user', content: 'hi' }], { purpose: 'test' }));
    expect(bad).toMatchObject({ code: 'PARLEY_AI_REJECTED', details: { status: 400, attempts: 1 } });
    fake.failNext({ status: 401 });
    const auth = await rejection(ai.chat('acme')!.invoke([{ role: 'user', content: 'hi' }], { purpose: 'test' }));
    expect(auth).toMatchObject({ code: 'PARLEY_AI_REJECTED', details: { status: 401, attempts: 1 } });
    expect(fake.calls).toHaveLength(2);
    // The provider's message is not in the error or the log (it may quote the request).
    expect(bad.message).not.toContain('fake 400');
  });

  it('times out a call that hangs, without retrying it', async () => {
    fake.failNext({ hang: true });
    const started = Date.now();
    const error = await rejection(ai.chat('acme')!.invoke([{ role: 'user', content: 'hi' }], { purpose: 'test' }));
    expect(error).toMatchObject({ code: 'PARLEY_AI_TIMEOUT', details: { attempts: 1 } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(fake.calls).toHaveLength(1);
    expect(await gw.metrics()).toMatch(/parley_ai_requests_total\{tenant="acme",provider="fast",outcome="timeout"\} 1/);
  });

  it('stops when the caller aborts', async () => {
    fake.failNext({ hang: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(ai.chat('acme')!.invoke([{ role: 'user', content: 'hi' }], { purpose: 'test', signal: controller.signal }));
    expect(error).toMatchObject({ code: 'PARLEY_AI_FAILED', status: 499 });
  });

  it('answers through the real ChatAnthropic (/v1/messages) and meters it without a price', async () => {
    const result = await ai.chat('clinic')!.invoke([{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'Is parking free?' }], { purpose: 'answer', ref: 'c-1' });
    expect(result).toMatchObject({ text: 'echo: Is parking free?', provider: 'claude', model: 'claude-3-5-haiku-latest', usage: { inputTokens: fakeTokens('Be kind.\nIs parking free?'), outputTokens: fakeTokens('echo: Is parking free?') } });
    expect(fake.calls[0]).toMatchObject({ path: '/v1/messages', body: { model: 'claude-3-5-haiku-latest', system: 'Be kind.' } });
    expect(fake.calls[0]!.headers['x-api-key']).toBe('test-anthropic-key');
    const rows = await usageOf('clinic');
    expect(rows.map((r) => [r.kind, r.cost])).toEqual([
      ['model.tokens.input', null],
      ['model.tokens.output', null],
    ]);
    expect(gw.logs.filter((l) => String(l.msg).includes('no price for AI model "claude-3-5-haiku-latest"'))).toHaveLength(1);
  });
});

describe('embeddings', () => {
  it('embeds through the real OpenAIEmbeddings and records model.tokens.embedding with its cost', async () => {
    const embeddings = ai.embeddings('acme', { purpose: 'ingest', ref: 'doc-7' })!;
    expect({ provider: embeddings.provider, model: embeddings.model }).toEqual({ provider: 'fast', model: 'text-embedding-3-small' });
    const vectors = await embeddings.embedDocuments(['opening hours', 'parking']);
    expect(vectors.map((v) => v.map((x) => Math.round(x * 1000) / 1000))).toEqual([fakeEmbedding('opening hours'), fakeEmbedding('parking')].map((v) => v.map((x) => Math.round(x * 1000) / 1000)));
    fake.failNext({ status: 500 });
    expect((await embeddings.embedQuery('hours'))[0]).toBe(5);
    const rows = await usageOf('acme', 'model.tokens.embedding');
    const tokens = fakeTokens('opening hours') + fakeTokens('parking');
    expect(rows.map((r) => [r.quantity, r.ref, r.attributes.purpose])).toEqual([
      [tokens, 'ai:ingest:doc-7#1', 'ingest'],
      [fakeTokens('hours'), 'ai:ingest:doc-7#2', 'ingest'],
    ]);
    expect(rows[0]!.cost).toBeCloseTo((tokens * 0.02) / 1e6, 12);
  });
});

describe('the circuit breaker', () => {
  it('opens after consecutive failures with an alert, fails fast, half-opens with one trial and closes on success', async () => {
    const chat = ai.chat('globex')!;
    const call = () => chat.invoke([{ role: 'user', content: 'hi' }], { purpose: 'test' });
    fake.failAll({ status: 500 });
    for (let i = 0; i < 3; i++) expect(await rejection(call())).toMatchObject({ code: 'PARLEY_AI_FAILED' });
    expect(fake.calls).toHaveLength(3);
    expect(gw.gateway.alerts.openAlerts()).toEqual([expect.objectContaining({ key: 'ai.provider.flaky', severity: 'warning', source: 'ai', state: 'firing' })]);

    // Open: fails fast, the provider is not called.
    expect(await rejection(call())).toMatchObject({ code: 'PARLEY_AI_UNAVAILABLE', status: 503, details: { provider: 'flaky' } });
    expect(fake.calls).toHaveLength(3);
    expect(ai.status().providers.flaky).toMatchObject({ breaker: 'open', consecutiveFailures: 3 });
    // Other providers keep their own breaker: acme's calls still reach the (failing) API.
    expect(await rejection(ai.chat('acme')!.invoke([{ role: 'user', content: 'x' }], { purpose: 'test' }))).toMatchObject({ code: 'PARLEY_AI_FAILED', details: { provider: 'fast', attempts: 3 } });
    fake.healthy();
    expect(await ai.chat('acme')!.invoke([{ role: 'user', content: 'x' }], { purpose: 'test' })).toMatchObject({ text: 'echo: x' });

    // /readyz shows it and stays ready: tenants answer without a model meanwhile.
    const readiness = await gw.gateway.readiness();
    expect(readiness.ready).toBe(true);
    expect(readiness.components.ai).toMatchObject({ ok: true, detail: expect.stringContaining('circuit open: flaky') });

    // Half-open: one trial after openMs; a failed trial opens it again at once.
    fake.failAll({ status: 500 });
    await sleep(OPEN_MS + 50);
    expect(ai.status().providers.flaky!.breaker).toBe('half-open');
    const before = fake.calls.length;
    expect(await rejection(call())).toMatchObject({ code: 'PARLEY_AI_FAILED' });
    expect(await rejection(call())).toMatchObject({ code: 'PARLEY_AI_UNAVAILABLE' });
    expect(fake.calls.length - before).toBe(1);

    // A successful trial closes it and resolves the alert; concurrent calls during the trial fail fast.
    fake.healthy();
    await sleep(OPEN_MS + 50);
    const [trial, during] = await Promise.allSettled([call(), call()]);
    expect(trial).toMatchObject({ status: 'fulfilled', value: { text: 'echo: hi' } });
    expect(during).toMatchObject({ status: 'rejected', reason: { code: 'PARLEY_AI_UNAVAILABLE' } });
    expect(ai.status().providers.flaky).toMatchObject({ breaker: 'closed', consecutiveFailures: 0 });
    expect(gw.gateway.alerts.openAlerts()).toEqual([]);
    expect(gw.logs.some((l) => (l.alert as { key?: string; state?: string } | undefined)?.key === 'ai.provider.flaky' && (l.alert as { state: string }).state === 'resolved')).toBe(true);
    expect(await gw.metrics()).toMatch(/parley_ai_requests_total\{tenant="globex",provider="flaky",outcome="open"\} 3/);
  });
});

describe('local tenants and missing credentials', () => {
  it('gives no model to a tenant on local, and falls back to local when the provider key is unset', async () => {
    expect(ai.chat('plain')).toBeNull();
    expect(ai.embeddings('plain')).toBeNull();
    expect(ai.embeddings('globex')).toBeNull();
    expect(ai.chat('offline')).toBeNull();
    expect(ai.status().tenants.offline).toEqual({ chat: 'local (offline is off: apiKey is empty (its environment variable is unset or blank))', embeddings: 'local' });
    expect(gw.logs.some((l) => l.level === 40 && String(l.msg).startsWith('AI provider "offline" is off') && (l.tenants as string[]).includes('offline'))).toBe(true);
    const readiness = await gw.gateway.readiness();
    expect(readiness.ready).toBe(true);
    expect(readiness.components.ai!.detail).toContain('off (missing credentials): offline');
    expect(() => ai.chat('nobody')).toThrow(expect.objectContaining({ code: 'PARLEY_TENANT_UNKNOWN' }));
  });
});

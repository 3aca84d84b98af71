/**
 * The kernel's two generic guards, with a probe plugin: `ctx.apiGuard` (429 with Retry-After and the
 * JSON error shape, 403, fail open, operator and other routes untouched) and `ctx.ai.intercept`
 * (allow, refuse as PARLEY_AI_REFUSED, degrade to another provider or to local, answer without the
 * provider, `after` with the cost) against the fake OpenAI-compatible server.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import type { AiProbe } from './fixtures/guard-probe.js';
import type { AiService } from '../core/ai/types.js';
import { ParleyError } from '../core/errors.js';

let gw: TestGateway;
let fake: FakeModelApi;
let ai: AiService;
const probe: AiProbe = { seen: [], before: [] };
(globalThis as Record<string, unknown>).__aiProbe = probe;

beforeAll(async () => {
  fake = await startFakeModelApi();
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: ['op-key-hooks-0123456789'] },
      ai: {
        providers: {
          big: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o', embeddingModel: 'text-embedding-3-small', maxRetries: 0 },
          small: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o-mini', maxRetries: 0 },
        },
        prices: { 'gpt-4o': { input: 2.5, output: 10 }, 'gpt-4o-mini': { input: 0.15, output: 0.6 }, 'text-embedding-3-small': { input: 0.02 } },
      },
      plugins: ['http', { name: 'guard-probe' }],
      tenants: [
        { id: 'acme', apiKeys: ['acme-key-hooks-0123456789'], ai: { chat: 'big', embeddings: 'big' }, plugins: { http: {} } },
        { id: 'beta', apiKeys: ['beta-key-hooks-0123456789'], plugins: { http: {} } },
      ],
    },
    catalogue: { 'guard-probe': fileURLToPath(new URL('./fixtures/guard-probe.ts', import.meta.url)) },
  });
  ai = gw.gateway.ai.for('hooks-test');
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => {
  probe.seen.length = 0;
  probe.before.length = 0;
  delete probe.decide;
  fake.reset();
});

describe('ctx.apiGuard', () => {
  it('answers 429 with Retry-After and the JSON error shape once the guard refuses', async () => {
    const key = 'acme-key-hooks-0123456789';
    expect((await gw.request('GET', '/v1/tenants/acme/conversations', { key })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/acme/conversations', { key })).status).toBe(200);
    const limited = await gw.request('GET', '/v1/tenants/acme/conversations', { key });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('8');
    expect(limited.body).toEqual({ error: { code: 'PARLEY_RATE_LIMITED', message: 'Slow down, acme', details: { retryAfterSeconds: 8 } } });
    // plugin routes behind tenantAuth are guarded too (the http channel)
    expect((await gw.send('acme', { from: 'u1', text: 'hi' }, key)).status).toBe(200);
  });

  it('answers 403, lets the operator and other tenants through, and fails open when a guard throws', async () => {
    expect((await gw.request('GET', '/v1/tenants/acme/outbox', { key: 'acme-key-hooks-0123456789' })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/acme/outbox', { key: 'op-key-hooks-0123456789' })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/beta/outbox', { key: 'beta-key-hooks-0123456789' })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/acme/dead-letters', { key: 'acme-key-hooks-0123456789' })).status).toBe(200);
    expect(gw.logs.some((l) => l.msg === 'API guard failed; the request is let through')).toBe(true);
    // authentication still comes first
    expect((await gw.request('GET', '/v1/tenants/acme/outbox')).status).toBe(401);
  });
});

describe('ctx.ai.intercept', () => {
  const ask = () => ai.chat('acme')!.invoke([{ role: 'user', content: 'What time do you open?' }], { purpose: 'answer', maxTokens: 50 });

  it('asks every interceptor in order when they allow, and reports the cost after', async () => {
    const result = await ask();
    expect(result.text).toBe('echo: What time do you open?');
    expect(probe.before).toEqual(['first', 'second']);
    const { call, outcome } = probe.seen[0]!;
    expect(call).toMatchObject({ tenantId: 'acme', plugin: 'hooks-test', provider: 'big', model: 'gpt-4o', purpose: 'answer', maxTokens: 50, price: { input: 2.5, output: 10 } });
    expect(call.estimatedInputTokens).toBeGreaterThan(0);
    const expected = (result.usage.inputTokens * 2.5 + result.usage.outputTokens * 10) / 1e6;
    expect(outcome).toMatchObject({ answeredBy: 'provider' });
    expect(outcome.costUsd).toBeCloseTo(expected, 12);
  });

  it('refuses with PARLEY_AI_REFUSED without calling the provider; later interceptors are not asked', async () => {
    probe.decide = () => ({ action: 'refuse', reason: 'budget reached' });
    const error = await ask().then(() => null, (e: unknown) => e as ParleyError);
    expect(error).toBeInstanceOf(ParleyError);
    expect(error!.code).toBe('PARLEY_AI_REFUSED');
    expect(error!.message).toContain('budget reached');
    expect(fake.calls).toHaveLength(0);
    expect(probe.before).toEqual(['first']);
    expect(probe.seen[0]!.outcome).toMatchObject({ answeredBy: 'refused', costUsd: 0, decision: { action: 'refuse', by: 'probe-first' } });
  });

  it('degrades to another provider, or to local (refused with degradedTo)', async () => {
    probe.decide = () => ({ action: 'degrade', to: 'small', reason: 'over budget' });
    const r = await ask();
    expect(r.provider).toBe('small');
    expect(fake.calls[0]!.body.model).toBe('gpt-4o-mini');
    const { outcome } = probe.seen[0]!;
    expect(outcome.costUsd).toBeCloseTo((r.usage.inputTokens * 0.15 + r.usage.outputTokens * 0.6) / 1e6, 12);
    probe.decide = () => ({ action: 'degrade', to: 'local', reason: 'over budget' });
    const error = (await ask().catch((e: unknown) => e)) as ParleyError;
    expect(error.code).toBe('PARLEY_AI_REFUSED');
    expect(error.details).toMatchObject({ degradedTo: 'local' });
  });

  it('answers without the provider and records no tokens', async () => {
    probe.decide = () => ({ action: 'answer', text: 'We open at 9.', reason: 'cache hit' });
    const before = (await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_usage WHERE tenant_id = 'acme'`)).rows[0].n;
    const r = await ask();
    expect(r).toMatchObject({ text: 'We open at 9.', attempts: 0, usage: { inputTokens: 0, outputTokens: 0 } });
    expect(fake.calls).toHaveLength(0);
    expect(probe.seen[0]!.outcome).toMatchObject({ answeredBy: 'interceptor', costUsd: 0 });
    expect((await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_usage WHERE tenant_id = 'acme'`)).rows[0].n).toBe(before);
  });

  it('refuses (fail closed) when an interceptor throws, and reports a failed call after', async () => {
    probe.decide = () => {
      throw new Error('limiter down');
    };
    expect(((await ask().catch((e: unknown) => e)) as ParleyError).code).toBe('PARLEY_AI_REFUSED');
    delete probe.decide;
    fake.failNext({ status: 400 });
    expect(((await ask().catch((e: unknown) => e)) as ParleyError).code).toBe('PARLEY_AI_REJECTED');
    expect(probe.seen.at(-1)!.outcome).toMatchObject({ answeredBy: 'failed', costUsd: 0 });
  });

  it('asks the interceptors before each embeddings request, with the texts and a token estimate, and reports the cost after', async () => {
    const texts = ['What time do you open?', 'Where do I park?'];
    const vectors = await ai.embeddings('acme', { purpose: 'index', ref: 'doc-1' })!.embedDocuments(texts);
    expect(vectors).toHaveLength(2);
    expect(probe.before).toEqual(['first', 'second']);
    const { call, outcome } = probe.seen[0]!;
    expect(call).toMatchObject({ tenantId: 'acme', plugin: 'hooks-test', operation: 'embeddings', provider: 'big', model: 'text-embedding-3-small', purpose: 'index', ref: 'doc-1#1', texts, messages: [], price: { input: 0.02 } });
    expect(call.estimatedInputTokens).toBe(Math.ceil(texts.join('').length / 4));
    expect(outcome.answeredBy).toBe('provider');
    const tokens = texts.reduce((n, t) => n + Math.max(1, Math.ceil(t.length / 4)), 0);
    expect(outcome.costUsd).toBeCloseTo((tokens * 0.02) / 1e6, 12);
  });

  it('refuses an embeddings request with PARLEY_AI_REFUSED without calling the provider; degrade and answer refuse it too', async () => {
    const embed = () => ai.embeddings('acme')!.embedQuery('What time do you open?');
    for (const [decision, says] of [
      [{ action: 'refuse', reason: 'budget reached' }, 'budget reached'],
      [{ action: 'degrade', to: 'local', reason: 'over budget' }, 'embeddings are not degraded: local has no embeddings'],
      [{ action: 'degrade', to: 'small', reason: 'over budget' }, 'vectors of "small" would not match the stored ones'],
      [{ action: 'answer', text: 'x', reason: 'cache' }, 'embeddings cannot be answered by an interceptor'],
    ] as const) {
      probe.decide = () => decision;
      const error = await embed().then(() => null, (e: unknown) => e as ParleyError);
      expect(error).toBeInstanceOf(ParleyError);
      expect(error!.code).toBe('PARLEY_AI_REFUSED');
      expect(error!.message).toContain(says);
      expect(error!.details).toMatchObject({ operation: 'embeddings', by: 'probe-first' });
    }
    expect(fake.calls).toHaveLength(0);
    expect(probe.seen.map((s) => s.outcome.answeredBy)).toEqual(['refused', 'refused', 'refused', 'refused']);
  });
});

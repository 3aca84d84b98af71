/**
 * medical-answers when cost-guard has spent the tenant's ai budget (embedded, and on PostgreSQL +
 * Redis with PARLEY_TEST_BACKEND=external). The library is embedded with a real model (the fake
 * OpenAI-compatible server, through the kernel AI service); once the budget is spent, cost-guard
 * refuses the question's embedding (embeddings are refused, never degraded) and the answer still
 * comes from lexical retrieval, with the refusal counted and logged. Without pgvector (the external
 * PostgreSQL) the library is lexical-only and no embedding is ever asked for; the answer must come
 * all the same, and the hybrid-only assertions adapt.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { medquadSlice } from './fixtures/medquad-slice.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';

const IDS = new Set(['mplus-0000001', 'mplus-0000034', 'mplus-0000065', 'mplus-0000173', 'mplus-0000369', 'mplus-0000812']);
const KEY = 'key-budget-clinic-0123456789';
const OPERATOR = 'key-budget-operator-0123456789';

let gw: TestGateway;
let fake: FakeModelApi;
let mode: 'hybrid' | 'lexical';

beforeAll(async () => {
  const corpus = medquadSlice(IDS, 'parley-medical-budget-');
  fake = await startFakeModelApi();
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OPERATOR] },
      ai: {
        providers: { fake: { type: 'openai', baseUrl: `${fake.url}/v1`, embeddingModel: 'text-embedding-3-small', timeoutMs: 2000, maxRetries: 0 } },
        prices: { 'text-embedding-3-small': { input: 0.02 } },
      },
      plugins: ['http', 'medical-answers', 'cost-guard'],
      tenants: [
        {
          id: 'clinic',
          apiKeys: [KEY],
          ai: { embeddings: 'fake' },
          pipeline: ['cost-guard', 'medical-answers'],
          fallbackReply: 'Sorry, something went wrong.',
          plugins: { http: {}, 'cost-guard': {}, 'medical-answers': { corpus, disclaimer: '', cache: { ttlSeconds: 0 }, minConfidence: 0.05, passBelow: 0.01 } },
        },
      ],
    },
  });
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', '/v1/tenants/clinic/medical-answers', { key: KEY })).body;
    mode = state.retrieval ?? state.mode;
    if (state.chunks > 0 && !state.ingest) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});

const ask = async (from: string, text: string) => {
  const r = await gw.send('clinic', { from, text }, KEY);
  const note = (await gw.request('GET', `/v1/tenants/clinic/messages/${r.message.id}`, { key: KEY })).body.message.annotations['medical-answers'];
  return { text: r.replies.map((x) => x.text).join('\n'), note };
};
const embeddingCalls = () => fake.calls.filter((c) => c.path === '/v1/embeddings').length;

describe('medical-answers against a spent embeddings budget', () => {
  it('answers with the library while the ai budget has room', async () => {
    const before = embeddingCalls();
    const { text, note } = await ask('+15556670001', 'is shingles contagious?');
    expect(note).toMatchObject({ outcome: 'answered' });
    expect(text.toLowerCase()).toContain('shingles');
    expect(embeddingCalls()).toBe(mode === 'hybrid' ? before + 1 : before);
  });

  it('still answers, from lexical retrieval, once cost-guard refuses the question’s embedding; the refusal is counted and logged', async () => {
    const put = await gw.request('PUT', '/v1/tenants/clinic/budgets', { key: OPERATOR, body: { category: 'ai', period: 'day', limitUsd: 0.0000001 } });
    expect(put.status).toBe(200);
    const before = embeddingCalls();
    const question = 'is shingles contagious?';
    const { text, note } = await ask('+15556670002', question);
    expect(text).not.toBe('Sorry, something went wrong.');
    expect(note).toMatchObject({ outcome: 'answered' });
    expect(text.toLowerCase()).toContain('shingles');
    expect(embeddingCalls()).toBe(before); // the provider was never asked
    const metrics = await gw.metrics();
    if (mode === 'hybrid') {
      expect(metrics).toMatch(/parley_rag_lexical_only_total\{tenant="clinic",reason="PARLEY_AI_REFUSED"\} 1/);
      expect(metrics).toMatch(/parley_budget_actions_total\{tenant="clinic",what="embeddings",action="block"\} 1/);
      const warning = gw.logs.find((l) => String(l.msg).startsWith('medical-answers: the question could not be embedded'));
      expect(warning).toMatchObject({ code: 'PARLEY_AI_REFUSED', reason: expect.stringContaining('daily ai budget') });
      expect(JSON.stringify(warning)).not.toContain(question);
      // the library's search route says the same instead of failing
      const search = await gw.request('POST', '/v1/tenants/clinic/medical-answers/search', { key: KEY, body: { query: question } });
      expect(search.status).toBe(200);
      expect(search.body.lexicalOnly).toMatch(/^PARLEY_AI_REFUSED: /);
      expect(search.body.hits[0]).toMatchObject({ title: 'Shingles', vectorRank: null });
    } else {
      expect(metrics).not.toMatch(/parley_rag_lexical_only_total\{tenant="clinic"/);
    }
  });
});

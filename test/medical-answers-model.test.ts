/**
 * medical-answers with a chat model: the real ChatOpenAI (through the kernel AI service) against the
 * local fake OpenAI-compatible server. A grounded answer that cites passages that exist is sent with
 * the cited source; one citing a passage that does not exist, citing nothing, or saying it cannot
 * answer is replaced by the extractive answer; a provider that is down falls back and alerts.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { medquadSlice } from './fixtures/medquad-slice.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';

const IDS = new Set(['mplus-0000001', 'mplus-0000034', 'mplus-0000065', 'mplus-0000173', 'mplus-0000369', 'mplus-0000812']);
const KEY = 'key-model-clinic-0123456789';
const OPERATOR = 'key-model-operator-0123456789';

let gw: TestGateway;
let fake: FakeModelApi;

beforeAll(async () => {
  const corpus = medquadSlice(IDS, 'parley-medical-model-');
  fake = await startFakeModelApi();
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OPERATOR] },
      ai: {
        providers: { fake: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o-mini', timeoutMs: 2000, maxRetries: 1, backoffMs: 10 } },
        prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
        breaker: { failures: 2, openMs: 60_000 },
      },
      plugins: ['http', 'medical-answers'],
      tenants: [{ id: 'clinic', apiKeys: [KEY], ai: { chat: 'fake' }, pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': { corpus, disclaimer: '', cache: { ttlSeconds: 0 }, minConfidence: 0.05, passBelow: 0.01 } } }],
    },
  });
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', '/v1/tenants/clinic/medical-answers', { key: KEY })).body;
    if (state.chunks > 0 && !state.ingest) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => fake.reset());

const ask = async (from: string, text: string) => {
  const r = await gw.send('clinic', { from, text }, KEY);
  const note = (await gw.request('GET', `/v1/tenants/clinic/messages/${r.message.id}`, { key: KEY })).body.message.annotations['medical-answers'];
  return { text: r.replies.map((x) => x.text).join('\n'), note };
};
const passagesOf = () => String(fake.calls.at(-1)!.body.messages.at(-1).content);

describe('a chat model answers from the retrieved passages', () => {
  it('sends a grounded answer that cites passages that exist, with the source of the first one', async () => {
    fake.answer = () => 'Shingles itself does not spread, but the virus can give chickenpox to someone who never had it [1].';
    const { text, note } = await ask('+15556660001', 'is shingles contagious?');
    expect(text).toMatch(/^Shingles itself does not spread, but the virus can give chickenpox to someone who never had it\.\nSource: /);
    expect(passagesOf()).toMatch(/^Passages:\n\[1\] /);
    expect(note).toMatchObject({ outcome: 'answered', answerer: 'model' });
    const firstPassageTitle = /^Passages:\n\[1\] ([^\n—]+?)(?: — |\n)/.exec(passagesOf())![1]!;
    expect(text).toContain(`Source: ${firstPassageTitle}`);
    const usage = await gw.gateway.db.pool.query(`SELECT kind, plugin FROM parley_usage WHERE tenant_id = 'clinic' AND kind LIKE 'model.tokens.%'`);
    expect(usage.rows).toContainEqual({ kind: 'model.tokens.output', plugin: 'medical-answers' });
  });

  it('refuses an answer citing a passage that does not exist, and sends the extractive one', async () => {
    fake.answer = () => 'It is very contagious for a month [9].';
    const { text, note } = await ask('+15556660002', 'is shingles contagious?');
    expect(text).not.toContain('[9]');
    expect(text).not.toContain('very contagious for a month');
    expect(note).toMatchObject({ outcome: 'answered', answerer: 'extractive', citations: [{ title: expect.any(String) }] });
    expect(await gw.metrics()).toMatch(/parley_rag_model_answers_total\{tenant="clinic",result="invalid_citations"\} 1/);
  });

  it('refuses an answer without citations or one that says it cannot answer', async () => {
    fake.answer = () => 'Yes, it is contagious.';
    expect((await ask('+15556660003', 'what is anemia?')).note).toMatchObject({ answerer: 'extractive' });
    fake.answer = () => 'NO_ANSWER';
    expect((await ask('+15556660004', 'what is anemia?')).note).toMatchObject({ answerer: 'extractive' });
  });

  it('falls back to extractive answers when the provider is down, and alerts operations', async () => {
    fake.failAll({ status: 503 });
    const first = await ask('+15556660005', 'what are the symptoms of the flu?');
    expect(first.note).toMatchObject({ outcome: 'answered', answerer: 'extractive' });
    expect(first.text).toContain('Source: ');
    await ask('+15556660006', 'what are the symptoms of asthma?');
    const alerts = (await gw.request('GET', '/v1/alerts', { key: OPERATOR })).body.alerts as { key: string }[];
    expect(alerts.some((a) => a.key.startsWith('ai.provider.fake'))).toBe(true);
    // The breaker is open: the next question is answered without waiting for the provider at all.
    const calls = fake.calls.length;
    expect((await ask('+15556660007', 'what is chickenpox?')).note).toMatchObject({ answerer: 'extractive' });
    expect(fake.calls.length).toBe(calls);
    fake.healthy();
  });
});

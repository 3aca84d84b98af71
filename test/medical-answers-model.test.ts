/**
 * medical-answers with a chat model: the real ChatOpenAI (through the kernel AI service) against the
 * local fake OpenAI-compatible server. A follow-up is rewritten by the model into a standalone
 * question, and by the rules when the model fails, hangs or writes something else than a question.
 * A grounded answer that cites passages that exist is sent with the cited source; one citing a
 * passage that does not exist, citing nothing, or saying it cannot answer is replaced by the
 * extractive answer; a provider that is down falls back and alerts.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { medquadSlice } from './fixtures/medquad-slice.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { parseCondensed } from '../plugins/medical-answers/condense.js';

const IDS = new Set(['mplus-0000001', 'mplus-0000034', 'mplus-0000065', 'mplus-0000173', 'mplus-0000369', 'mplus-0000812']);
const KEY = 'key-model-clinic-0123456789';
const RULES_KEY = 'key-model-rules-0123456789';
const UNSURE_KEY = 'key-model-unsure-0123456789';
const UNSURE_OFF_KEY = 'key-model-unsure-off-0123456789';
const DECLINES_OFF_KEY = 'key-model-declines-off-0123456789';
const OPERATOR = 'key-model-operator-0123456789';

let gw: TestGateway;
let fake: FakeModelApi;

beforeAll(async () => {
  const corpus = medquadSlice(IDS, 'parley-medical-model-');
  const settings = { corpus, disclaimer: '', cache: { ttlSeconds: 0 }, minConfidence: 0.05, passBelow: 0.01 };
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
      tenants: [
        { id: 'clinic', apiKeys: [KEY], ai: { chat: 'fake' }, pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': { ...settings, followUps: { condenseTimeoutMs: 1000 } } } },
        // The same model, but follow-ups are left to the rules.
        { id: 'rules', apiKeys: [RULES_KEY], ai: { chat: 'fake' }, pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': { ...settings, followUps: { condenseWithModel: false } } } },
        // Retrieval is never sure enough here: only the model's second opinion answers (or, turned off, nothing does).
        { id: 'unsure', apiKeys: [UNSURE_KEY], ai: { chat: 'fake' }, pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': { ...settings, minConfidence: 1 } } },
        { id: 'unsure-off', apiKeys: [UNSURE_OFF_KEY], ai: { chat: 'fake' }, pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': { ...settings, minConfidence: 1, askModelWhenUnsure: false } } },
        // A model's "the passages do not answer this" leaves the extractive answer, as before.
        { id: 'declines-off', apiKeys: [DECLINES_OFF_KEY], ai: { chat: 'fake' }, pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': { ...settings, fallbackWhenModelDeclines: false } } },
      ],
    },
  });
  for (const [tenant, key] of [['clinic', KEY], ['rules', RULES_KEY], ['unsure', UNSURE_KEY], ['unsure-off', UNSURE_OFF_KEY], ['declines-off', DECLINES_OFF_KEY]]) {
    for (let i = 0; i < 600; i++) {
      const state = (await gw.request('GET', `/v1/tenants/${tenant}/medical-answers`, { key })).body;
      if (state.chunks > 0 && !state.ingest) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => fake.reset());

const ask = async (from: string, text: string, tenant = 'clinic', key = KEY) => {
  const r = await gw.send(tenant, { from, text }, key);
  const note = (await gw.request('GET', `/v1/tenants/${tenant}/messages/${r.message.id}`, { key })).body.message.annotations['medical-answers'];
  return { id: r.message.id as string, text: r.replies.map((x) => x.text).join('\n'), note };
};
const passagesOf = () => String(fake.calls.at(-1)!.body.messages.at(-1).content);

/** The condense prompt's system message starts so; the grounded answer's does not. */
const isCondense = (system: string) => system.startsWith('You rewrite');
const condenseCalls = (since: number) => fake.calls.slice(since).filter((c) => c.path === '/v1/chat/completions' && isCondense(String(c.body.messages[0]?.content)));
/**
 * A stand-in for the chat model that plays both prompts from what it is sent: asked to condense, it
 * puts the last word of the newest earlier message in place of "it"; asked to answer, it names the
 * title of passage [1] and cites it.
 */
function playModel(condense: (latestMessage: string, earlier: string[]) => string = (latest, earlier) => latest.replace(/\bit\b/i, earlier.at(-1)!.replace(/[?.!]+$/, '').split(' ').at(-1)!)) {
  fake.answer = (user, { system }) => {
    if (isCondense(system)) return condense(/^Latest message: (.*)$/m.exec(user)![1]!, [...user.matchAll(/^\d+\. (.*)$/gm)].map((m) => m[1]!));
    return `${/^\[1\] ([^\n—]+?)(?: — |\n)/m.exec(user)![1]} is what passage one is about [1].`;
  };
}
const condenseCounts = async (tenant: string) => {
  const text = await gw.metrics();
  const count = (result: string) => Number(new RegExp(`parley_rag_condense_total\\{tenant="${tenant}",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  return { model: count('model'), rules: count('rules'), fallback: count('fallback') };
};
const groundedQuestion = () => /\nQuestion: (.*)$/.exec(passagesOf())![1];
const lastLogged = async (tenant: string, key: string) => (await gw.request('GET', `/v1/tenants/${tenant}/medical-answers/answers?limit=1`, { key })).body.answers[0];

/**
 * "my dad has shingles", then `followUp` from the same person (`script` runs in between, to script the
 * fake for the follow-up): its reply, the fake's calls it made (from `since`) and how it was counted in
 * `parley_rag_condense_total`.
 */
async function afterShingles(from: string, followUp: string, { tenant = 'clinic', key = KEY, script = () => {} } = {}) {
  await ask(from, 'my dad has shingles', tenant, key);
  script();
  const since = fake.calls.length;
  const before = await condenseCounts(tenant);
  const reply = await ask(from, followUp, tenant, key);
  const after = await condenseCounts(tenant);
  return { ...reply, since, counted: { model: after.model - before.model, rules: after.rules - before.rules, fallback: after.fallback - before.fallback } };
}
const shinglesAnswer = { outcome: 'answered', citations: [expect.objectContaining({ title: 'Shingles' })] };

describe('a follow-up is condensed by the chat model', () => {
  it('rewrites "is it contagious?" after "my dad has shingles" into a shingles question, and answers from the shingles document', async () => {
    playModel();
    const followUp = await afterShingles('+15556660101', 'is it contagious?');
    const [condense] = condenseCalls(followUp.since);
    expect(condense!.body.messages.at(-1).content).toBe('Earlier messages:\n1. my dad has shingles\n\nLatest message: is it contagious?');
    expect(groundedQuestion()).toBe('is shingles contagious?');
    expect(followUp.note).toMatchObject({ ...shinglesAnswer, answerer: 'model' });
    expect(followUp.text).toMatch(/^Shingles is what passage one is about\.\nSource: Shingles/);
    expect(followUp.counted).toEqual({ model: 1, rules: 0, fallback: 0 });
    expect(await lastLogged('clinic', KEY)).toMatchObject({ messageId: followUp.id, followUp: true });
    // The condense call's tokens are in the usage ledger, under this plugin, once per message.
    const usage = await gw.gateway.db.pool.query(`SELECT kind, plugin, attributes->>'purpose' AS purpose FROM parley_usage WHERE tenant_id = 'clinic' AND ref = $1 ORDER BY kind`, [`ai:medical-answers.condense:${followUp.id}`]);
    expect(usage.rows).toEqual([
      { kind: 'model.tokens.input', plugin: 'medical-answers', purpose: 'medical-answers.condense' },
      { kind: 'model.tokens.output', plugin: 'medical-answers', purpose: 'medical-answers.condense' },
    ]);
  });

  it('leaves the rewrite to the rules when the model fails after its retries, and still answers', async () => {
    playModel();
    const followUp = await afterShingles('+15556660102', 'is it contagious?', { script: () => fake.failNext({ status: 500 }, { status: 500 }) });
    expect(fake.calls.slice(followUp.since).map((c) => c.outcome)).toEqual(['500', '500', 'ok']);
    expect(groundedQuestion()).toBe('is it contagious (shingles)?');
    expect(followUp.note).toMatchObject(shinglesAnswer);
    expect(followUp.counted).toEqual({ model: 0, rules: 0, fallback: 1 });
    expect(await lastLogged('clinic', KEY)).toMatchObject({ messageId: followUp.id, followUp: true });
  });

  it('refuses a rewrite that answers instead of asking, and the rules rewrite the follow-up', async () => {
    playModel(() => 'Yes, shingles can spread to people who never had chickenpox [1].');
    const followUp = await afterShingles('+15556660103', 'is it contagious?');
    expect(groundedQuestion()).toBe('is it contagious (shingles)?');
    expect(followUp.note).toMatchObject(shinglesAnswer);
    expect(followUp.counted).toEqual({ model: 0, rules: 0, fallback: 1 });
    const warning = gw.logs.findLast((l) => String(l.msg).includes('rewrite of a follow-up was refused'));
    expect(warning).toMatchObject({ reason: 'answer', model: 'gpt-4o-mini' });
    expect(JSON.stringify(warning)).not.toMatch(/contagious|chickenpox/);
  });

  it('does not wait for a model that never answers: after followUps.condenseTimeoutMs the rules rewrite', async () => {
    playModel();
    const followUp = await afterShingles('+15556660104', 'is it contagious?', { script: () => fake.failNext({ hang: true }) });
    expect(fake.calls.slice(followUp.since).map((c) => c.outcome)).toEqual(['hang', 'ok']);
    // The plugin's deadline (1 s here) ended the wait, not the provider's 2 s timeout.
    expect(gw.logs.findLast((l) => String(l.msg).includes('could not rewrite a follow-up'))).toMatchObject({ timedOut: true });
    expect(groundedQuestion()).toBe('is it contagious (shingles)?');
    expect(followUp.note).toMatchObject({ ...shinglesAnswer, answerer: 'model' });
    expect(followUp.counted).toEqual({ model: 0, rules: 0, fallback: 1 });
  });

  it('does not ask the model about a question that names its own topic', async () => {
    playModel();
    const followUp = await afterShingles('+15556660105', 'what are the symptoms of chickenpox?');
    expect(condenseCalls(followUp.since)).toHaveLength(0);
    expect(groundedQuestion()).toBe('what are the symptoms of chickenpox?');
    expect(followUp.note).toMatchObject({ outcome: 'answered' });
    expect(followUp.counted).toEqual({ model: 0, rules: 1, fallback: 0 });
  });

  it('leaves follow-ups to the rules for a tenant that turned followUps.condenseWithModel off', async () => {
    playModel();
    const followUp = await afterShingles('+15556660106', 'is it contagious?', { tenant: 'rules', key: RULES_KEY });
    expect(condenseCalls(followUp.since)).toHaveLength(0);
    expect(groundedQuestion()).toBe('is it contagious (shingles)?');
    expect(followUp.note).toMatchObject(shinglesAnswer);
    expect(followUp.counted).toEqual({ model: 0, rules: 1, fallback: 0 });
  });
});

describe("the model's rewrite of a follow-up is checked", () => {
  it('takes a one-line question, without a label or quotes', () => {
    expect(parseCondensed('Is shingles contagious?', 'is it contagious?')).toEqual({ ok: true, query: 'Is shingles contagious?' });
    expect(parseCondensed('Question: "Is shingles contagious?"', 'is it contagious?')).toEqual({ ok: true, query: 'Is shingles contagious?' });
    // unchanged (but for case and spacing): the person's own words are searched
    expect(parseCondensed(' Is it contagious? ', 'is it contagious?')).toEqual({ ok: true, query: 'is it contagious?' });
    expect(parseCondensed('¿Es contagioso el herpes zóster?', '¿es contagioso?')).toMatchObject({ ok: true });
  });

  it('refuses an empty, multi-line or overlong rewrite, an answer and a refusal', () => {
    const q = 'is it contagious?';
    expect(parseCondensed('  ', q)).toEqual({ ok: false, reason: 'empty' });
    expect(parseCondensed('Is shingles contagious?\nIt spreads by contact.', q)).toEqual({ ok: false, reason: 'multiline' });
    expect(parseCondensed(`Is shingles contagious ${'to anyone '.repeat(30)}?`, q)).toEqual({ ok: false, reason: 'too_long' });
    for (const answer of ['Yes, it can spread to people who never had chickenpox.', 'No. It is not.', "Sorry, I can't help with that.", "I'm unable to rewrite this.", 'Shingles spreads by contact [1].', 'Shingles is contagious. Avoid contact with babies.', 'NO_ANSWER']) {
      expect(parseCondensed(answer, q), answer).toEqual({ ok: false, reason: 'answer' });
    }
  });
});

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

  it('refuses an answer without citations, and sends the extractive one', async () => {
    fake.answer = () => 'Yes, it is contagious.';
    const uncited = await ask('+15556660003', 'what is anemia?');
    expect(uncited.note).toMatchObject({ outcome: 'answered', answerer: 'extractive' });
    expect(uncited.text).toMatch(/\nSource: /);
  });

  it("sends the fallback when the model finds no answer in the passages, however well the page matched (unless turned off)", async () => {
    fake.answer = () => 'NO_ANSWER';
    const declined = await ask('+15556660004', 'what is anemia?');
    expect(declined.note).toMatchObject({ outcome: 'fallback', answerer: 'model' });
    expect(declined.note.confidence).toBeGreaterThanOrEqual(0.05);
    expect(declined.text).toMatch(/^I'm not certain/);
    expect(await gw.metrics()).toMatch(/parley_rag_model_answers_total\{tenant="clinic",result="no_answer"\} 1/);
    const extractive = await ask('+15556660006', 'what is anemia?', 'declines-off', DECLINES_OFF_KEY);
    expect(extractive.note).toMatchObject({ outcome: 'answered', answerer: 'extractive' });
    expect(extractive.text).toMatch(/\nSource: /);
  });

  it("asks the model's second opinion below minConfidence: a grounded answer is sent, 'cannot answer' keeps the fallback", async () => {
    const question = 'my kid has red spots all over, could it be chicken pox';
    fake.answer = () => 'Chickenpox causes an itchy rash of red spots and blisters [1].';
    const grounded = await ask('+15556660010', question, 'unsure', UNSURE_KEY);
    expect(grounded.note.confidence).toBeLessThan(1);
    expect(grounded.note).toMatchObject({ outcome: 'answered', answerer: 'model' });
    expect(grounded.text).toMatch(/^Chickenpox causes an itchy rash of red spots and blisters\.\nSource: /);
    fake.answer = () => 'NO_ANSWER';
    const asked = fake.calls.length;
    const declined = await ask('+15556660011', `${question}?`, 'unsure', UNSURE_KEY);
    expect(fake.calls.length).toBeGreaterThan(asked);
    expect(declined.note).toMatchObject({ outcome: 'fallback' });
    expect(declined.text).toMatch(/^I'm not certain/);
    // Turned off, the fallback goes out without asking the model.
    const calls = fake.calls.length;
    const off = await ask('+15556660012', question, 'unsure-off', UNSURE_OFF_KEY);
    expect(off.note).toMatchObject({ outcome: 'fallback' });
    expect(fake.calls.length).toBe(calls);
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

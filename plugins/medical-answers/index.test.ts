/**
 * medical-answers end to end over the http channel and a call (embedded database by default, PostgreSQL with
 * PARLEY_TEST_BACKEND=external, where retrieval is lexical only): the library ingests at start,
 * questions get cited answers, follow-ups use the conversation, unsure answers fall back (and hand
 * over), crisis messages never get a search result, other messages pass on, the cache answers repeats,
 * the routes stay inside their tenant, and a person's answer log is exported and erased.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from 'parley/testing';
import { settingsSchema } from './settings.js';

const CORPUS = new URL('../../corpora/medquad/corpus.jsonl', import.meta.url);
const TITLES = new Set(['A1C', 'Anemia', 'Asthma', 'Chickenpox', 'Depression', 'Diabetes', 'Flu', 'Food Allergy', 'Headache', 'Heart Attack', 'High Blood Pressure', 'Insomnia', 'Kidney Stones', 'Migraine', 'Osteoporosis', 'Pneumonia', 'Shingles', 'Stroke', 'Suicide']);
const KEYS = { clinic: 'key-clinic-medical-0123456789', strict: 'key-strict-medical-0123456789', other: 'key-other-medical-0123456789', empty: 'key-empty-medical-0123456789', operator: 'key-operator-medical-0123456789' };

function fixtureCorpus(): string {
  const seen = new Set<string>();
  const lines = readFileSync(CORPUS, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line) return false;
      const { title } = JSON.parse(line) as { title: string };
      if (!TITLES.has(title) || seen.has(title)) return false;
      seen.add(title);
      return true;
    });
  const file = join(mkdtempSync(join(tmpdir(), 'parley-medical-')), 'corpus.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const VOICE = { accountSid: `AC${'7'.repeat(32)}`, authToken: 'medical-voice-token', number: '+15557770000' };

let gw: TestGateway;
const corpus = fixtureCorpus();

async function untilLoaded(tenant: keyof typeof KEYS): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', `/v1/tenants/${tenant}/medical-answers`, { key: KEYS[tenant] })).body;
    if (state.lastError) throw new Error(`ingest failed: ${state.lastError.message}`);
    if (state.chunks > 0 && !state.ingest) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tenant ${tenant}: the library did not load`);
}

beforeAll(async () => {
  const pipeline = ['crisis-guard', 'medical-answers', 'keyword-replies'];
  const keywords = { rules: [{ match: ['hours', 'opening times'], reply: 'We are open 8 to 6.' }] };
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [KEYS.operator] },
      // A call's reply is spoken inline; the REST API is never needed, so it points nowhere.
      plugins: ['http', { name: 'twilio-voice', options: { apiBaseUrl: 'http://127.0.0.1:9' } }, 'crisis-guard', 'medical-answers', 'keyword-replies'],
      tenants: [
        {
          id: 'clinic', apiKeys: [KEYS.clinic], pipeline,
          plugins: {
            http: {}, 'crisis-guard': {}, 'keyword-replies': keywords, 'medical-answers': {
              corpus,
              redactions: [{ pattern: 'emergency room', replacement: 'emergency department' }],
              errands: { replies: { refill: 'For refills, call the pharmacy line at 555-0100.', message: 'Thanks, your message is with the care team.' }, handoff: ['message'] },
            },
            'twilio-voice': { accountSid: VOICE.accountSid, authToken: VOICE.authToken, numbers: [VOICE.number] },
          },
        },
        {
          id: 'strict', apiKeys: [KEYS.strict], pipeline,
          plugins: { http: {}, 'crisis-guard': {}, 'keyword-replies': keywords, 'medical-answers': { corpus, minConfidence: 1, passBelow: 0, handoffWhenUnsure: true, fallbackReply: 'Not sure; a nurse will text you.' } },
        },
        { id: 'other', apiKeys: [KEYS.other], pipeline: ['keyword-replies'], plugins: { http: {}, 'keyword-replies': keywords } },
        {
          // No library yet (no corpus configured, nothing ingested): errands still get their replies.
          id: 'empty', apiKeys: [KEYS.empty], pipeline,
          plugins: { http: {}, 'crisis-guard': {}, 'keyword-replies': keywords, 'medical-answers': { offTopicReply: 'I can answer health questions once my library is loaded.', errands: { replies: { refill: 'For refills, call the pharmacy line at 555-0100.' } } } },
        },
      ],
    },
  });
  await Promise.all([untilLoaded('clinic'), untilLoaded('strict')]);
}, 120_000);
afterAll(() => gw?.stop({ cleanup: true }));

const ask = (tenant: 'clinic' | 'strict' | 'empty', from: string, text: string) => gw.send(tenant, { from, text }, KEYS[tenant]);
const annotation = async (tenant: 'clinic' | 'strict' | 'empty', id: string) => (await gw.request('GET', `/v1/tenants/${tenant}/messages/${id}`, { key: KEYS[tenant] })).body.message.annotations['medical-answers'];

describe('the library', () => {
  it('is ingested at start and shown in /readyz and the status route', async () => {
    const state = await untilLoaded('clinic');
    expect(state).toMatchObject({ docs: 19, ingest: null, lastError: null });
    expect(state.mode).toBe(process.env.PARLEY_TEST_BACKEND === 'external' ? 'lexical' : 'hybrid');
    const ready = await gw.request('GET', '/readyz');
    expect(ready.body.components['medical-answers']).toMatchObject({ ok: true, info: { clinic: { docs: 19 } } });
    expect(await gw.metrics()).toMatch(/parley_rag_chunks\{tenant="clinic"\} [1-9]/);
  });
});

describe('a health question', () => {
  it('gets an answer from the right document, with its source, within the budget', async () => {
    const r = await ask('clinic', '+15557770001', 'whats a normal a1c number?');
    expect(r.replies).toHaveLength(1);
    const text = r.replies[0]!.text;
    expect(text).toContain('5.7');
    expect(text).toMatch(/Source: A1C https:\/\/www\.nlm\.nih\.gov\/medlineplus\/a1c\.html/);
    expect(text.length).toBeLessThanOrEqual(900);
    const note = await annotation('clinic', r.message.id);
    expect(note).toMatchObject({ outcome: 'answered', answerer: 'extractive', citations: [{ docId: 'mplus-0000001', title: 'A1C' }] });
    expect(note.confidence).toBeGreaterThanOrEqual(0.35);
  });

  it('is answered aloud on a call with the source\'s title, and no link read out', async () => {
    const params = {
      AccountSid: VOICE.accountSid, ApiVersion: '2010-04-01', CallSid: `CA${'5'.repeat(32)}`, CallStatus: 'in-progress', Direction: 'inbound',
      From: '+15557770009', To: VOICE.number, Called: VOICE.number, Caller: '+15557770009', SpeechResult: 'whats a normal a1c number', Confidence: '0.93',
    };
    const url = `${gw.url}/twilio/voice/gather?turn=1`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilio.getExpectedTwilioSignature(VOICE.authToken, url, params) },
      body: new URLSearchParams(params),
    });
    expect(res.status).toBe(200);
    const twiml = await res.text();
    expect(twiml).toContain('5.7');
    expect(twiml).toMatch(/Source: A1C\s/);
    expect(twiml).not.toContain('nlm.nih.gov');
  });

  it('follows up within the conversation: "is it contagious?" after shingles is about shingles', async () => {
    const from = '+15557770002';
    await ask('clinic', from, 'my dad has shingles');
    const r = await ask('clinic', from, 'is it contagious?');
    const note = await annotation('clinic', r.message.id);
    expect(note.citations[0]).toMatchObject({ title: 'Shingles' });
    expect(r.replies[0]!.text).toContain('Source: Shingles');
  });

  it('answers a repeated question from the cache', async () => {
    const before = await gw.metrics();
    const hits = (m: string) => Number(/parley_rag_cache_requests_total\{tenant="clinic",result="hit"\} (\d+)/.exec(m)?.[1] ?? 0);
    const a = await ask('clinic', '+15557770003', 'What are the symptoms of a heart attack?');
    const b = await ask('clinic', '+15557770004', 'what are the symptoms of a heart attack');
    expect(b.replies[0]!.text).toBe(a.replies[0]!.text);
    expect(hits(await gw.metrics())).toBe(hits(before) + 1);
  });

  it("applies the tenant's replacements and the built-in ones to every answer", async () => {
    const r = await ask('clinic', '+15557770005', 'what should I do if someone talks about suicide? is there a lifeline');
    const text = r.replies.map((x) => x.text).join('\n');
    expect(text).not.toMatch(/273-TALK|273-8255/);
    expect(text).not.toContain('emergency room');
  });

  it('falls back below the confidence threshold and hands the conversation to a person', async () => {
    const r = await ask('strict', '+15557770006', 'how do i know if i have the flu');
    expect(r.replies.map((x) => x.text)).toEqual(['Not sure; a nurse will text you.']);
    expect(await annotation('strict', r.message.id)).toMatchObject({ outcome: 'fallback' });
    const handoff = await gw.request('GET', `/v1/tenants/strict/conversations/${r.message.conversationId}/handoff`, { key: KEYS.strict });
    expect(handoff.body.handoff).toMatchObject({ state: 'human' });
  });

  it("is not answered from another page when the tenant's small library does not cover it", async () => {
    // The clinic's library has 19 pages, none about bruises, appendicitis, gum disease or a short neck
    // from birth: every question still finds some page first (Headache for the neck, answered at 0.121
    // before a topic the library does not hold was read, engine/elsewhere.ts; 0.075 now).
    for (const [i, question] of ['how long does a bruise take to fade', 'what age do people usually get appendicitis', 'my gums bleed every time i brush my teeth, what can i do', 'my boy has a very short neck and a low hairline and cant turn his head well, why'].entries()) {
      const r = await ask('clinic', `+1555777003${i}`, question);
      const note = await annotation('clinic', r.message.id);
      expect(note, question).toMatchObject({ outcome: 'fallback', citations: [] });
      expect(r.replies.map((x) => x.text)).toEqual([settingsSchema.parse({}).fallbackReply]);
    }
  });

  it("answers a question about one of the small library's pages in a person's own words", async () => {
    // Out of 19 pages, "baby", "toddler" and "hold" are in none: alone, the library took them for its
    // rarest words, and the page asked about ranked as a poor match (engine/README.md, idf).
    for (const [i, question] of ['my mom has shingles, can my toddler catch it from her?', 'my husband got shingles, is it safe for him to hold our baby'].entries()) {
      const r = await ask('clinic', `+1555777004${i}`, question);
      const note = await annotation('clinic', r.message.id);
      expect(note, question).toMatchObject({ outcome: 'answered', citations: [expect.objectContaining({ title: 'Shingles' })] });
    }
  });
});

describe('other messages', () => {
  it('pass on to later stages when they are not health questions', async () => {
    const r = await ask('clinic', '+15557770007', 'what are your opening times?');
    expect(r.replies.map((x) => x.text)).toEqual(['We are open 8 to 6.']);
    expect(await annotation('clinic', r.message.id)).toMatchObject({ outcome: 'passed' });
  });

  it("answer a clinic errand in the tenant's words, and hand a message for the care team to a person", async () => {
    const refill = await ask('clinic', '+15557770021', 'can you send a refill of my metformin to the cvs on main st');
    expect(refill.replies.map((x) => x.text)).toEqual(['For refills, call the pharmacy line at 555-0100.']);
    expect(await annotation('clinic', refill.message.id)).toMatchObject({ outcome: 'passed', errand: 'refill' });
    const message = await ask('clinic', '+15557770022', 'can you ask the nurse to call me back today');
    expect(message.replies.map((x) => x.text)).toEqual(['Thanks, your message is with the care team.']);
    expect(await annotation('clinic', message.message.id)).toMatchObject({ outcome: 'passed', errand: 'message' });
    const handoff = await gw.request('GET', `/v1/tenants/clinic/conversations/${message.message.conversationId}/handoff`, { key: KEYS.clinic });
    expect(handoff.body.handoff).toMatchObject({ state: 'human' });
    // An errand the tenant has no reply for, answered by no later stage, is left to the default (silence here).
    const billing = await ask('clinic', '+15557770023', 'can i pay my bill online');
    expect(billing.replies).toEqual([]);
    expect(await annotation('clinic', billing.message.id)).toMatchObject({ outcome: 'passed', errand: 'billing' });
    // The answer log keeps the errand (no text): operators list a kind of errand and see last week's counts.
    const refills = await gw.request('GET', '/v1/tenants/clinic/medical-answers/answers?errand=refill', { key: KEYS.clinic });
    expect(refills.body.answers.map((a: { messageId: string }) => a.messageId)).toEqual([refill.message.id]);
    expect(refills.body.answers[0]).toMatchObject({ outcome: 'passed', errand: 'refill' });
    expect((await gw.request('GET', '/v1/tenants/clinic/medical-answers/answers?errand=refills', { key: KEYS.clinic })).status).toBe(400);
    const status = (await gw.request('GET', '/v1/tenants/clinic/medical-answers', { key: KEYS.clinic })).body;
    expect(status.errandsLast7Days).toMatchObject({ refill: 1, message: 1, billing: 1 });
  });

  it('answer an errand by its words alone when the tenant has no library yet', async () => {
    const refill = await ask('empty', '+15557770024', 'can you send a refill of my metformin to the cvs on main st');
    expect(refill.replies.map((x) => x.text)).toEqual(['For refills, call the pharmacy line at 555-0100.']);
    const question = await ask('empty', '+15557770025', 'whats a normal a1c number?');
    expect(question.replies.map((x) => x.text)).toEqual(['I can answer health questions once my library is loaded.']);
  });

  it('never answer a person in danger with a search result', async () => {
    const r = await ask('clinic', '+15557770008', 'I took a whole bottle of my sleeping pills');
    const texts = r.replies.map((x) => x.text);
    expect(texts).toHaveLength(1);
    expect(texts[0]).toContain('911');
    expect(texts[0]).not.toContain('Source:');
    expect(await annotation('clinic', r.message.id)).toMatchObject({ outcome: 'crisis' });
  });
});

describe('routes', () => {
  it('search shows what retrieval finds, for the tenant only', async () => {
    const r = await gw.request('POST', '/v1/tenants/clinic/medical-answers/search', { key: KEYS.clinic, body: { query: 'is there a vaccine for chickenpox', k: 3 } });
    expect(r.status).toBe(200);
    expect(r.body.hits[0]).toMatchObject({ title: 'Chickenpox', docId: expect.any(String) });
    expect(r.body.hits.length).toBeLessThanOrEqual(3);
    expect((await gw.request('POST', '/v1/tenants/clinic/medical-answers/search', { key: KEYS.clinic, body: { query: '' } })).status).toBe(400);
  });

  it('keeps each tenant to its own library and log (isolation matrix)', async () => {
    for (const path of ['/v1/tenants/clinic/medical-answers', '/v1/tenants/clinic/medical-answers/answers']) {
      expect((await gw.request('GET', path, { key: KEYS.strict })).status).toBe(403);
      expect((await gw.request('GET', path)).status).toBe(401);
      expect((await gw.request('GET', path, { key: KEYS.operator })).status).toBe(200);
    }
    expect((await gw.request('POST', '/v1/tenants/clinic/medical-answers/search', { key: KEYS.other, body: { query: 'flu' } })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/other/medical-answers', { key: KEYS.other })).status).toBe(404);
  });

  it('lists the answer log without question or answer text', async () => {
    const r = await gw.request('GET', '/v1/tenants/clinic/medical-answers/answers?outcome=answered', { key: KEYS.clinic });
    expect(r.body.answers.length).toBeGreaterThanOrEqual(3);
    expect(r.body.answers.every((a: { outcome: string }) => a.outcome === 'answered')).toBe(true);
    expect(JSON.stringify(r.body)).not.toMatch(/a1c number|contagious/i);
  });
});

describe('data subjects', () => {
  it("exports and erases one person's answer log, nobody else's", async () => {
    const subject = { tenantId: 'clinic', addresses: ['+15557770001'] };
    const exported = await gw.gateway.exportSubject(subject);
    const mine = exported.find((e) => e.provider === 'medical-answers.answer-log')!;
    expect(mine.records).toHaveLength(1);
    expect(mine.records[0]).toMatchObject({ kind: 'medical-answer', outcome: 'answered', docIds: ['mplus-0000001'] });
    const erased = await gw.gateway.eraseSubject(subject, 'test-operator');
    expect(erased['medical-answers.answer-log']).toBe(1);
    const left = (await gw.request('GET', '/v1/tenants/clinic/medical-answers/answers', { key: KEYS.clinic })).body.answers;
    expect(left.length).toBeGreaterThanOrEqual(3);
  });
});

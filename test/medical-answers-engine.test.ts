/**
 * The medical-answers engine on a 12-document fixture (test-fixtures/corpus-small.jsonl): ingest and
 * re-ingest, resumption, hybrid and lexical-only search, follow-up condensation, answers (budget,
 * citation, redaction). Embedded PGlite by default; PARLEY_TEST_BACKEND=external runs it on PostgreSQL
 * (without pgvector there, the store runs lexical-only and the hybrid-only assertions adapt).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../core/storage/migrations.js';
import { TEST_BACKEND, externalServices, freshDatabase } from './backend.js';
import { linkCode, matchLexemes, MedicalStore } from '../plugins/medical-answers/engine/store.js';
import { condenseFollowUp } from '../plugins/medical-answers/engine/query.js';
import { composeAnswer, DEFAULT_REDACTIONS, render, sourceLine, unitsOf } from '../plugins/medical-answers/engine/answer.js';
import { parseGrounded } from '../plugins/medical-answers/model-answer.js';
import { linksFor } from '../plugins/medical-answers/stage.js';
import type { CorpusDoc, Hit } from '../plugins/medical-answers/engine/types.js';
import { BUILT_IN_LAY_PHRASES, layPhrasesFor } from '../plugins/medical-answers/engine/lay.js';

const fixture = fileURLToPath(new URL('../plugins/medical-answers/test-fixtures/corpus-small.jsonl', import.meta.url));
const corpus: CorpusDoc[] = readFileSync(fixture, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CorpusDoc);
const skip = TEST_BACKEND === 'external' ? await externalServices() : null;

describe.skipIf(skip)(`medical-answers engine on the ${TEST_BACKEND} backend`, () => {
  let db: Database;
  let dir: string | undefined;
  let drop: (() => Promise<void>) | undefined;
  let store: MedicalStore;
  let mode: 'hybrid' | 'lexical';
  const log = pino({ level: 'warn' });

  beforeAll(async () => {
    if (TEST_BACKEND === 'external') {
      const fresh = await freshDatabase();
      drop = fresh.drop;
      db = await openDatabase({ databaseUrl: fresh.url, dataDir: '.', poolSize: 4, log });
    } else {
      dir = mkdtempSync(join(tmpdir(), 'medical-engine-'));
      db = await openDatabase({ dataDir: dir, poolSize: 4, log });
    }
    await ensureMigrationTable(db.pool);
    await applyMigrations(db.pool, 'medical-answers', MedicalStore.migrations());
    store = new MedicalStore(db.pool, { log });
    const init = await store.init();
    mode = init.mode;
    if (db.vectorAvailable) expect(init.mode).toBe('hybrid');
    else expect(init).toMatchObject({ mode: 'lexical', reason: expect.stringContaining('pgvector') });
  });

  afterAll(async () => {
    await db?.close();
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("gives every page its short-link code, and the migration gives rows written before it the same one", async () => {
    await store.ingest('t-links', corpus.slice(0, 3));
    const codes = async () => (await db.pool.query<{ doc_id: string; link_code: string | null }>("SELECT doc_id, link_code FROM medical_answers_docs WHERE tenant_id = 't-links' ORDER BY doc_id")).rows;
    const written = await codes();
    expect(written.map((r) => r.link_code)).toEqual(written.map((r) => linkCode('t-links', r.doc_id)));
    // A row from before the column: the migration's UPDATE fills it with what ingest writes.
    await db.pool.query("UPDATE medical_answers_docs SET link_code = NULL WHERE tenant_id = 't-links'");
    const update = MedicalStore.migrations().find((m) => m.id === '002_doc_link_codes')!.sql.split('\n').find((line) => line.trim().startsWith('UPDATE'))!;
    await db.pool.query(update);
    expect(await codes()).toEqual(written);
    const first = corpus[0]!;
    expect(await store.resolveLink(linkCode('t-links', first.id), ['t-links'])).toEqual({ tenantId: 't-links', docId: first.id, url: first.url });
    // Only among the tenants asked about, and only a well-formed code.
    expect(await store.resolveLink(linkCode('t-links', first.id), ['t1'])).toBeNull();
    expect(await store.resolveLink("x' OR '1'='1", ['t-links'])).toBeNull();
    // Only a web page: a link of another scheme is not redirected to.
    await db.pool.query("UPDATE medical_answers_docs SET url = 'javascript:alert(1)' WHERE tenant_id = 't-links' AND doc_id = $1", [first.id]);
    expect(await store.resolveLink(linkCode('t-links', first.id), ['t-links'])).toBeNull();
    await store.eraseTenant('t-links');
    expect(await store.resolveLink(linkCode('t-links', first.id), ['t-links'])).toBeNull();
  });

  it('migrations are plain SQL without the vector type', () => {
    for (const m of MedicalStore.migrations()) {
      expect(m.id).toMatch(/^\d{3}_/);
      expect(m.sql).not.toMatch(/\bvector\b/i);
    }
  });

  it('ingests the corpus, chunked along sections, and reports status', async () => {
    const phases = new Set<string>();
    const r = await store.ingest('t1', corpus, { onProgress: (p) => phases.add(p.phase) });
    expect(r).toMatchObject({ added: 12, updated: 0, unchanged: 0, removed: 0 });
    expect(r.chunks).toBeGreaterThan(12);
    expect(r.corpusVersion).toMatch(/^[0-9a-f]{16}$/);
    expect(phases.has('embed')).toBe(true);
    const status = await store.status('t1');
    expect(status).toMatchObject({ docs: 12, chunks: r.chunks, corpusVersion: r.corpusVersion, mode });
    expect(status.lastIngestAt).toBeInstanceOf(Date);
    if (mode === 'hybrid') expect(status.embedder).toMatch(/^local-lsa-/);
    const { rows } = await db.pool.query<{ section: string }>("SELECT DISTINCT section FROM medical_answers_chunks WHERE tenant_id = 't1' AND doc_id = 'ninds-0000148'");
    expect(rows.map((r) => r.section)).toEqual(expect.arrayContaining(['Overview', 'Treatment', 'Outlook']));
  });

  it('re-ingest: unchanged documents are skipped, changed ones rewritten, vanished ones removed', async () => {
    const again = await store.ingest('t1', corpus);
    expect(again).toMatchObject({ added: 0, updated: 0, unchanged: 12, removed: 0, reembedded: 0 });
    const changed = corpus
      .filter((d) => d.id !== 'mplus-0000005')
      .map((d) => (d.id === 'mplus-0000173' ? { ...d, text: `${d.text}\nChickenpox vaccine is recommended for children.` } : d));
    const r = await store.ingest('t1', changed);
    expect(r).toMatchObject({ added: 0, updated: 1, unchanged: 10, removed: 1 });
    expect(r.corpusVersion).not.toBe(again.corpusVersion);
    const hits = await store.search('t1', 'pimples acne breakouts', { k: 5 });
    expect(hits.map((h) => h.docId)).not.toContain('mplus-0000005');
    await store.ingest('t1', corpus);
  });

  it('two ingests of one tenant at once run one after the other', async () => {
    const [a, b] = await Promise.all([store.ingest('t-twice', corpus.slice(0, 5)), store.ingest('t-twice', corpus.slice(0, 5))]);
    expect(a).toMatchObject({ added: 5 });
    expect(b).toMatchObject({ added: 0, unchanged: 5 });
    await store.eraseTenant('t-twice');
  });

  it('an interrupted ingest resumes where it stopped', async () => {
    const ac = new AbortController();
    await expect(
      store.ingest('t-resume', corpus, { batchSize: 4, signal: ac.signal, onProgress: (p) => p.phase === 'embed' && p.done >= 4 && ac.abort() }),
    ).rejects.toThrow();
    expect((await store.status('t-resume')).docs).toBe(4);
    const r = await store.ingest('t-resume', corpus, { batchSize: 4 });
    expect(r).toMatchObject({ added: 8, unchanged: 4, removed: 0 });
    await store.eraseTenant('t-resume');
    expect((await store.status('t-resume')).docs).toBe(0);
  });

  it('finds the right document for lay questions', async () => {
    const cases: [string, string][] = [
      ['whats a normal a1c number?', 'mplus-0000001'],
      ['what does a heart attack feel like', 'mplus-0000442'],
      ['my bp was 145/92 at the pharmacy, is that high', 'mplus-0000471'],
      ['cant hold my pee when i cough', 'mplus-0000931'],
    ];
    for (const [q, id] of cases) {
      const hits = await store.search('t1', q, { k: 3 });
      expect(hits[0]?.docId, q).toBe(id);
      expect(hits[0]).toMatchObject({ title: expect.any(String), chunkId: expect.stringContaining(id), score: expect.any(Number) });
      expect(hits[0]!.lexicalRank !== null || hits[0]!.vectorRank !== null).toBe(true);
    }
    // Each document appears once.
    const hits = await store.search('t1', 'shingles', { k: 10 });
    expect(new Set(hits.map((h) => h.docId)).size).toBe(hits.length);
  });

  it('picks the section that matches the question type', async () => {
    const hits = await store.search('t1', 'What are the treatments for Shingles?', { k: 3 });
    const ninds = hits.find((h) => h.docId === 'ninds-0000148');
    expect(ninds?.section).toBe('Treatment');
  });

  it('condenses a follow-up with the topic of the earlier message', async () => {
    const q = condenseFollowUp('is it contagious?', ['my dad has shingles']);
    expect(q.toLowerCase()).toContain('shingles');
    const hits = await store.search('t1', q, { k: 3 });
    expect(hits[0]?.title).toBe('Shingles');
    expect(condenseFollowUp('what are the symptoms of chickenpox?', ['my dad has shingles'])).toBe('what are the symptoms of chickenpox?');
    expect(condenseFollowUp('is it contagious?', [])).toBe('is it contagious?');
  });

  it('answers within the SMS budget, with a citation, and never shows the retired crisis line', async () => {
    const hits = await store.search('t1', 'who can i call if someone talks about suicide', { k: 5 });
    expect(hits[0]?.docId).toBe('mplus-0000861');
    const answer = composeAnswer('who can i call if someone talks about suicide', hits, { maxChars: 306, minConfidence: 0 });
    expect(answer).not.toBeNull();
    expect(answer!.text.length).toBeLessThanOrEqual(306);
    expect(answer!.text).not.toMatch(/273/);
    expect(answer!.text).toContain('988 (call or text)');
    expect(answer!.text).toMatch(/Source: Suicide https:\/\//);
    expect(answer!.citations[0]).toMatchObject({ docId: 'mplus-0000861', title: 'Suicide' });
    expect(answer!.confidence).toBeGreaterThan(0);
    expect(answer!.confidence).toBeLessThanOrEqual(1);
    // Hits that merely contain the old number are redacted too, and a deployment's own rules apply.
    const fake = [{ ...hits[0]!, sections: undefined, text: 'Call 1-800-273-8255 or see Dr. Who.' }];
    const custom = composeAnswer('suicide line', fake, { maxChars: 160, minConfidence: 0, redactions: [{ pattern: String.raw`Dr\. Who`, replacement: 'your doctor' }] });
    expect(custom!.text).toContain('988 (call or text)');
    expect(custom!.text).toContain('your doctor');
    expect(custom!.text.length).toBeLessThanOrEqual(160);
    expect(DEFAULT_REDACTIONS.length).toBeGreaterThan(0);
  });

  it('returns null below the confidence floor and keeps long answers within budget', async () => {
    const hits = await store.search('t1', 'What is (are) Myasthenia Gravis?', { k: 5 });
    expect(hits[0]?.title).toBe('Myasthenia Gravis');
    expect(composeAnswer('What is (are) Myasthenia Gravis?', hits, { maxChars: 306, minConfidence: 1.01 })).toBeNull();
    const a = composeAnswer('What is (are) Myasthenia Gravis?', hits, { maxChars: 120, minConfidence: 0 })!;
    expect(a.text.length).toBeLessThanOrEqual(120);
    expect(a.text).toContain('Source: Myasthenia Gravis');
    expect(composeAnswer('anything', [], { maxChars: 306, minConfidence: 0 })).toBeNull();
  });

  it('answers what a typed question asks from a summary page, not the sentence that merely names the topic', async () => {
    const q = 'does high blood pressure give you any symptoms';
    const hits = await store.search('t1', q, { k: 3 });
    expect(hits[0]?.docId).toBe('mplus-0000471');
    const answer = composeAnswer(q, hits, { maxChars: 286, minConfidence: 0 })!;
    // Not the list of readings that "high" alone used to ask for.
    expect(answer.text).toContain('usually has no symptoms');
  });

  it('leads with what the question asks: a quoted reading gets the ranges, a list is quoted as the source wrote it', async () => {
    for (const [q, want] of [
      ['my a1c came back 6.1 does that mean im diabetic', 'Prediabetes is between 5.7 to 6.4'],
      ['whats a normal a1c number?', 'A normal A1C level is below 5.7'],
    ] as const) {
      const hits = await store.search('t1', q, { k: 3 });
      expect(hits[0]?.docId).toBe('mplus-0000001');
      const answer = composeAnswer(q, hits, { maxChars: 286, minConfidence: 0 })!;
      // The first sentence of the reply holds the numbers ("A1C" and "type 2" are not numbers to it).
      expect(answer.text.split('\n')[0]!.slice(0, 160)).toContain(want);
    }
  });

  it("keeps a list together past an item's own sentences, and quotes the items a question asks about when not all fit", () => {
    const causes = unitsOf('People lose a limb for several reasons. Common ones include - Poor circulation from diabetes. It may make an amputation necessary. - Injuries from accidents - Cancer - Birth defects Most people adapt well.');
    expect(causes.filter((u) => u.items.length)).toEqual([{ text: 'Common ones include', items: ['Poor circulation from diabetes', 'Injuries from accidents', 'Cancer', 'Birth defects'] }]);
    expect(causes.map((u) => u.text)).toContain('It may make an amputation necessary.');
    // A sentence that ends with a colon introduces a list of its own.
    const steps = unitsOf('Signs include - Pale skin - Numbness If you have signs, get care. If care is not near, here are steps to take: - Get warm - Do not rub the skin with snow');
    expect(steps.filter((u) => u.items.length).map((u) => u.text)).toEqual(['Signs include', 'If care is not near, here are steps to take:']);
    // Items in lower case after a full sentence are a list without an introduction, not an introduction
    // and its items; a lone one stays a unit of its own.
    const signs = unitsOf('Some of the most common signs are listed below. - feeling nervous or empty - feelings of guilt - trouble sleeping Treatment helps most people.');
    expect(signs.filter((u) => u.items.length)).toEqual([{ text: '', items: ['feeling nervous or empty', 'feelings of guilt', 'trouble sleeping'] }]);
    expect(render(signs.find((u) => u.items.length)!, 200)).toBe('Feeling nervous or empty - feelings of guilt - trouble sleeping.');
    expect(render(signs.find((u) => u.items.length)!, 30)).toBeNull();
    expect(unitsOf('New treatments are compared. - to standard care').map((u) => u.text)).toEqual(['New treatments are compared.', 'to standard care']);
    // The agency a page credits is not part of the list that ends the page.
    expect(unitsOf('To keep mosquitoes out: - Use screens - Close unscreened doors and windows NIH: National Institute of Allergy and Infectious Diseases').at(-1)).toEqual({ text: 'To keep mosquitoes out:', items: ['Use screens', 'Close unscreened doors and windows'] });
    const text = 'Frostnip is a mild cold injury. If help is far away, here are steps to take: - Get into a warm room as soon as you can - Do not walk on numb feet unless you must - Put the numb area in warm water for twenty minutes - Warm it with body heat, for example in an armpit - Do not rub the area with snow or massage it - Do not use a heating pad or a stove to warm it.';
    const hit: Hit = { docId: 'x', chunkId: 'x-0', title: 'Frostnip', url: null, source: null, section: 'Overview', text, score: 30, bm25f: 30, lexicalRank: 1, vectorRank: 1, coverage: 1, titleMatch: 1, sections: [{ heading: 'Overview', text }] };
    const reply = composeAnswer('my fingers went numb in the cold, should i rub them with snow', [hit], { maxChars: 200, minConfidence: 0 })!.text;
    expect(reply).toContain('Do not rub the area with snow or massage it');
    expect(reply).toMatch(/^If help is far away, here are steps to take: Get into a warm room/);
  });

  it('answers who gets it and how serious it is, in the words of the page rather than the question', () => {
    const hit = (title: string, text: string): Hit => ({ docId: 'x', chunkId: 'x-0', title, url: null, source: null, section: 'Overview', text, score: 30, bm25f: 30, lexicalRank: 1, vectorRank: 1, coverage: 1, titleMatch: 1, sections: [{ heading: 'Overview', text }] });
    const depression = hit('Depression', 'Depression is a serious medical illness. It causes sadness that lasts for weeks. Depression can happen at any age, but it often begins in teens and young adults. Treatment works for most people.');
    // "teenagers" and "teens" are one family the stemmer keeps apart; "can teenagers get" asks who gets it.
    expect(composeAnswer('can teenagers get depression or is it a grown up thing', [depression], { maxChars: 160, minConfidence: 0 })!.text.split('\n')[0]).toMatch(/^Depression can happen at any age/);
    const cysts = hit('Ovarian Cysts', 'An ovarian cyst is a sac filled with fluid that forms on or inside an ovary. Birth control pills can help prevent new cysts. Cysts are rarely cancerous in women under 50.');
    expect(composeAnswer('ultrasound found a cyst on my ovary, should i be scared', [cysts], { maxChars: 140, minConfidence: 0 })!.text.split('\n')[0]).toMatch(/^Cysts are rarely cancerous/);
    // A short sentence that says something is an answer, not a fragment to pass over.
    const rosacea = hit('Rosacea', 'Rosacea is a long-term disease that affects the skin of the face. It is most common in women. In most cases, it only affects the face. Symptoms can include - Redness of the face, or flushing - Small, red lines under the skin - Acne. Rosacea is not dangerous. Treatments can help.');
    expect(composeAnswer('is rosacea dangerous? my face is always red and flushed', [rosacea], { maxChars: 160, minConfidence: 0 })!.text).toContain('Rosacea is not dangerous.');
    // "How common is it" wants a share; "is there anything that fixes it" asks about treatment.
    const pouches = hit('Diverticulosis', 'Diverticulosis is a condition in which small pouches form in the wall of the colon. It becomes more common as people age. About half of all people over age 60 have it. Most people with it have no symptoms.');
    expect(composeAnswer('colonoscopy said i have diverticulosis. how common is that', [pouches], { maxChars: 110, minConfidence: 0 })!.text).toContain('About half of all people over age 60');
    const colour = hit('Color Blindness', 'Most color blindness is inherited. People with it cannot tell some colors apart, often red and green. There is no treatment, but most people adjust. Special lenses may help some people.');
    expect(composeAnswer('my son cant tell red from green. is there anything that fixes that', [colour], { maxChars: 110, minConfidence: 0 })!.text).toMatch(/^There is no treatment/);
  });

  it('answers what age and whether it is inherited in the words of the page, over a sentence that merely holds a number', () => {
    const hit = (title: string, text: string): Hit => ({ docId: 'x', chunkId: 'x-0', title, url: null, source: null, section: 'Overview', text, score: 30, bm25f: 30, lexicalRank: 1, vectorRank: 1, coverage: 1, titleMatch: 1, sections: [{ heading: 'Overview', text }] });
    const first = (q: string, h: Hit) => composeAnswer(q, [h], { maxChars: 110, minConfidence: 0 })!.text.split('\n')[0];
    const shingles = hit('Shingles', 'Shingles is a disease caused by the same virus that causes chickenpox. About 1 in 3 people will get shingles. It is most common in older adults. A vaccine can lower your risk.');
    expect(first('what age do people usually get shingles', shingles)).toMatch(/^It is most common in older adults/);
    const huntington = hit('Huntington Disease', 'Huntington disease is a brain disorder that affects movement, thinking and mood. Symptoms usually start at age 30 to 50 and worsen over 10 to 25 years. It runs in families. There is no cure.');
    expect(first('my mom has huntingtons, is it hereditary', huntington)).toMatch(/^It runs in families/);
  });

  it("finds a title by a person's word the stemmer does not join with it (safe / Safety)", async () => {
    const docs: CorpusDoc[] = [
      { id: 'v-1', title: 'Food Safety', url: 'https://example.org/food-safety', source: 'test', text: 'Overview\nLeave cooked food out for no more than two hours. Chill leftovers right away.' },
      { id: 'v-2', title: 'Food Allergy', url: 'https://example.org/food-allergy', source: 'test', text: 'Overview\nA food allergy is a reaction of the immune system to a food. Many foods can cause it; old food is no different.' },
    ];
    await store.ingest('t-variants', docs);
    const hits = await store.search('t-variants', 'is old food safe to eat', { k: 2 });
    expect(hits[0]?.docId).toBe('v-1');
    await store.eraseTenant('t-variants');
  });

  it('finds a page by the words people use for its topic, indexed with it but never quoted', async () => {
    const docs: CorpusDoc[] = [
      { id: 'l-1', title: 'Osteoarthritis', url: 'https://example.org/oa', source: 'test', synonyms: ['OA'], text: 'Overview\nOsteoarthritis is the most common form of arthritis. It causes pain, swelling and reduced motion in your joints.' },
      { id: 'l-2', title: 'Sports Injuries', url: 'https://example.org/sports', source: 'test', text: 'Overview\nSports injuries happen when you play or exercise. A knee can be hurt by a fall or a hard walk on stairs.' },
    ];
    const question = 'my knees grind and creak when i walk up stairs';
    await store.ingest('t-lay', docs, { layPhrases: null });
    expect((await store.search('t-lay', question, { k: 2 }))[0]?.docId).toBe('l-2');
    // A vocabulary that changes re-indexes the documents it touches, and only those.
    const vocabulary = { osteoarthritis: ['knees grind and creak', 'stiff achy joints in the morning'] };
    expect(await store.ingest('t-lay', docs, { layPhrases: vocabulary })).toMatchObject({ updated: 1, unchanged: 1 });
    const hits = await store.search('t-lay', question, { k: 2 });
    expect(hits[0]?.docId).toBe('l-1');
    // Found by the phrase, answered from the page's own text; the document keeps its own synonyms.
    const answer = composeAnswer(question, hits, { maxChars: 306, minConfidence: 0 });
    expect(answer?.citations[0]?.docId).toBe('l-1');
    expect(answer?.text).not.toMatch(/creak|grind/);
    const { rows } = await db.pool.query<{ synonyms: string[] }>("SELECT synonyms FROM medical_answers_docs WHERE tenant_id = 't-lay' AND doc_id = 'l-1'");
    expect(rows[0]?.synonyms).toEqual(['OA']);
    // Matched by a synonym as well as by the title.
    expect(layPhrasesFor({ title: 'Degenerative joint disease', synonyms: ['Osteoarthritis'] }, vocabulary)).toEqual(vocabulary.osteoarthritis);
    // The built-in vocabulary is the default (it has both topics).
    expect(layPhrasesFor({ title: "Crohn's Disease" }, BUILT_IN_LAY_PHRASES).length).toBeGreaterThan(0);
    expect(await store.ingest('t-lay', docs)).toMatchObject({ updated: 2 });
    await store.eraseTenant('t-lay');
  });

  it('finds a page by a misspelt word and by two words its title writes as one', async () => {
    const docs: CorpusDoc[] = [
      { id: 's-1', title: 'Tetanus', url: 'https://example.org/tetanus', source: 'test', text: 'Overview\nTetanus is a serious illness caused by bacteria in a wound. A booster shot every ten years protects you.' },
      { id: 's-2', title: 'Bedbugs', url: 'https://example.org/bedbugs', source: 'test', text: 'Overview\nBedbugs bite people while they sleep. They are not known to spread disease.' },
      { id: 's-3', title: 'Wounds and Injuries', url: 'https://example.org/wounds', source: 'test', text: 'Overview\nClean a wound and cover it. A deep wound may need a shot and stitches; insects can bite a wound too.' },
      { id: 's-4', title: 'Lupus', url: 'https://example.org/lupus', source: 'test', text: 'Overview\nLupus is a disease in which the immune system attacks your own tissues. It can cause joint pain, a rash and tiredness.' },
      { id: 's-5', title: 'Appendicitis', url: 'https://example.org/appendicitis', source: 'test', text: 'Overview\nAppendicitis is an inflammation of the appendix. It causes pain in the lower right belly and needs surgery.' },
    ];
    await store.ingest('t-spelling', docs);
    expect((await store.search('t-spelling', 'stepped on a nail, do i need a tetnus shot', { k: 2 }))[0]?.docId).toBe('s-1');
    expect((await store.search('t-spelling', 'found bed bugs, do they bite', { k: 2 }))[0]?.docId).toBe('s-2');
    // A short word (its stem four letters), and a word of a page's text rather than of its title.
    expect((await store.search('t-spelling', 'how do they test for lupis', { k: 2 }))[0]?.docId).toBe('s-4');
    expect((await store.search('t-spelling', 'does a deep cut need stiches', { k: 2 }))[0]?.docId).toBe('s-3');
    // The stemmer cuts "appendiciis" and "appendicitis" far apart: the word as written is near the title's.
    expect((await store.search('t-spelling', 'can appendiciis come back', { k: 2 }))[0]?.docId).toBe('s-5');
    // The misspelt word goes once a page's word stands in for it: it no longer counts as a part of the
    // question no page covers.
    const misspelt = (await store.search('t-spelling', 'is lupis contagious', { k: 2 }))[0]!;
    const spelt = (await store.search('t-spelling', 'is lupus contagious', { k: 2 }))[0]!;
    expect(misspelt.docId).toBe('s-4');
    expect(misspelt.coverage ?? 0).toBeGreaterThan(0.6 * (spelt.coverage ?? 1));
    await store.eraseTenant('t-spelling');
  });

  it("matches in process what the full-text index matches, from the documents' lexemes and PostgreSQL's tsquery", async () => {
    const { rows } = await db.pool.query<{ doc_id: string; lexemes: string[] }>("SELECT doc_id, tsvector_to_array(tsv) AS lexemes FROM medical_answers_docs WHERE tenant_id = 't1'");
    expect(rows.length).toBeGreaterThan(5);
    const lexemes = new Map<string, string[]>();
    for (const r of rows) for (const l of r.lexemes) lexemes.set(l, [...(lexemes.get(l) ?? []), r.doc_id]);
    for (const words of ['a1c | diabetes', 'shingles | contagious | rash', 'the | of', 'fever', 'nosuchword | flu', 'running | runs | infections']) {
      const { rows: q } = await db.pool.query<{ q: string }>("SELECT to_tsquery('english', $1)::text AS q", [words]);
      const { rows: gin } = await db.pool.query<{ doc_id: string }>("SELECT doc_id FROM medical_answers_docs WHERE tenant_id = 't1' AND tsv @@ to_tsquery('english', $1)", [words]);
      expect(matchLexemes(q[0]!.q, lexemes)?.sort(), words).toEqual(gin.map((r) => r.doc_id).sort());
      if (words === 'a1c | diabetes') expect(gin.length).toBeGreaterThan(0);
    }
    // More matches than the limit, or a query that is not an OR of lexemes: the index decides.
    const all = matchLexemes(`'${[...lexemes.keys()].join("' | '")}'`, lexemes)!;
    expect(all.length).toBe(rows.length);
    expect(matchLexemes(`'${[...lexemes.keys()].join("' | '")}'`, lexemes, all.length - 1)).toBeNull();
    expect(matchLexemes("'fever' & 'rash'", lexemes)).toBeNull();
    expect(matchLexemes("'fever':*", lexemes)).toBeNull();
  });

  it('runs lexical-only when vectors are disabled', async () => {
    const lexical = new MedicalStore(db.pool, { log });
    expect(await lexical.init({ vector: false })).toEqual({ mode: 'lexical', reason: expect.any(String) });
    const r = await lexical.ingest('t-lex', corpus);
    expect(r.added).toBe(12);
    const hits = await lexical.search('t-lex', 'whats a normal a1c number?', { k: 3 });
    expect(hits[0]?.docId).toBe('mplus-0000001');
    expect(hits[0]?.vectorRank).toBeNull();
    expect(await lexical.status('t-lex')).toMatchObject({ docs: 12, mode: 'lexical', embedder: null });
    // Tenants are isolated.
    expect((await store.search('t-other', 'a1c')).length).toBe(0);
    await lexical.eraseTenant('t-lex');
    expect((await lexical.status('t-lex')).docs).toBe(0);
  });

  it('takes a page whose whole title the question names as a candidate, even when its words are too common to pick candidates', async () => {
    const lexical = new MedicalStore(db.pool, { log });
    await lexical.init({ vector: false });
    // "cancer", "common" and "children" (what "kids" also looks for) are in most pages of this library, so
    // only "kids" picks full-text candidates.
    const docs: CorpusDoc[] = [
      { id: 'c-1', title: 'Cancer in Children', url: null, source: 'test', text: 'Overview\nLeukemia is the most common cancer in children and teens.' },
      ...['Lung Cancer', 'Skin Cancer', 'Breast Cancer', 'Colon Cancer'].map((title, i) => ({ id: `c-${i + 2}`, title, url: null, source: 'test', text: `Overview\n${title} is a common cancer in adults, and rare in children.` })),
      { id: 'c-6', title: 'Child Care', url: null, source: 'test', text: 'Overview\nKids need a safe place while their parents work.' },
    ];
    await lexical.ingest('t-title', docs);
    const hits = await lexical.search('t-title', 'whats the most common cancer in kids', { k: 3 });
    expect(hits[0]?.docId).toBe('c-1');
    await lexical.eraseTenant('t-title');
  });
});

describe('answer units of crawled text', () => {
  it("splits off a sentence the crawl glued to a list's last item, and keeps proper nouns inside items", () => {
    const units = unitsOf(
      'Signs of dehydration in adults include - Being thirsty - Dark-colored urine - Dizziness and fainting Signs of dehydration in babies and young children include a dry mouth and no wet diapers for 3 hours or more. Some people are at higher risk. They include - African-Americans over age 40 - everyone over age 60, especially Hispanic-Americans',
    );
    expect(units[0]).toEqual({ text: 'Signs of dehydration in adults include', items: ['Being thirsty', 'Dark-colored urine', 'Dizziness and fainting'] });
    expect(units[1]?.text).toBe('Signs of dehydration in babies and young children include a dry mouth and no wet diapers for 3 hours or more.');
    // What follows a dash in lower case where the items start in capitals stays with its item (a term and
    // its definition); the list reads as the source wrote it.
    expect(units.at(-1)?.items).toEqual(['African-Americans over age 40 - everyone over age 60, especially Hispanic-Americans']);
    expect(unitsOf('Common kinds are - Insomnia - a hard time falling asleep - Sleep apnea - breathing interruptions during sleep - Narcolepsy').at(-1)?.items).toEqual([
      'Insomnia - a hard time falling asleep',
      'Sleep apnea - breathing interruptions during sleep',
      'Narcolepsy',
    ]);
    // A question glued to the last item is the page's next heading.
    const flu = unitsOf('They may include - Chills - Sore throat Is it a cold or the flu? Colds rarely cause a fever.');
    expect(flu.map((u) => u.text)).toEqual(['They may include', 'Is it a cold or the flu?', 'Colds rarely cause a fever.']);
    expect(flu[0]!.items).toEqual(['Chills', 'Sore throat']);
    // A link's caption the crawl kept ("More on: Head Lice Treatment") is no sentence.
    expect(unitsOf('Clothing should be laundered using hot water. More on: Head Lice Treatment').map((u) => u.text)).toEqual(['Clothing should be laundered using hot water.']);
    // A short sentence glued to a list's last item is split off too when a verb follows its first word.
    const hiccups = unitsOf("You can try - Breathing into a paper bag - Holding your breath Hiccups aren't usually serious. Contact your provider if they last for more than a few days.");
    expect(hiccups.map((u) => u.text)).toEqual(['You can try', "Hiccups aren't usually serious.", 'Contact your provider if they last for more than a few days.']);
    expect(hiccups[0]!.items).toEqual(['Breathing into a paper bag', 'Holding your breath']);
    expect(unitsOf('Risk factors include - Travel to the desert - People with weak immune systems Valley Fever is often mild.').map((u) => u.text)).toEqual(['Risk factors include', 'Valley Fever is often mild.']);
    // A subheading the crawl left on the sentence's own line is left out; a sentence that starts with a name stays whole.
    expect(unitsOf('It often goes away. Depression in Older Adults Important life changes may cause sadness. How Our Sense of Taste Works Our sense of taste is part of our chemical senses.').map((u) => u.text)).toEqual([
      'It often goes away.',
      'Important life changes may cause sadness.',
      'Our sense of taste is part of our chemical senses.',
    ]);
    expect(unitsOf('The National Cancer Institute Cancer Information Service can answer questions. Diagnostic Tests See the General Information section for tests.').map((u) => u.text)).toEqual([
      'The National Cancer Institute Cancer Information Service can answer questions.',
      'Diagnostic Tests',
      'See the General Information section for tests.',
    ]);
    // A full stop the crawl left without its space still ends a sentence.
    expect(unitsOf('Certain factors affect prognosis (chance of recovery) and treatment options.The prognosis depends on the stage.').map((u) => u.text)).toEqual([
      'Certain factors affect prognosis (chance of recovery) and treatment options.',
      'The prognosis depends on the stage.',
    ]);
    // A full stop the crawl doubled is one full stop, with or without its space; an ellipsis stays.
    expect(unitsOf('Symptoms include weakness of the neck or arm.. Arterial TOS is rare. It can be treated..Most people recover... in time.').map((u) => u.text)).toEqual([
      'Symptoms include weakness of the neck or arm.',
      'Arterial TOS is rare.',
      'It can be treated.',
      'Most people recover... in time.',
    ]);
    // Nor is the agency a page credits on its last line, with or without "NIH:".
    expect(unitsOf('Children and adults can benefit from them. National Institute on Deafness and Other Communication Disorders').map((u) => u.text)).toEqual(['Children and adults can benefit from them.']);
    expect(unitsOf('Wash your hands often. Centers for Disease Control and Prevention').map((u) => u.text)).toEqual(['Wash your hands often.']);
  });

  it('leaves out a section\'s subheadings on lines of their own, and reads a list of lines as a list', () => {
    // The shape of NHLBI's pages (nhlbi-0000047, "Cough"; the goals of treatment of its pericarditis page).
    const units = unitsOf(
      'Other treatments, such as medicines and a vaporizer, can help relieve the cough itself.\n\nTreating the Cause of a Cough\n\nAcute and Subacute Cough\n\nAn acute cough lasts less than 3 weeks.\n\nThe goals of treatment include:\n\nReducing pain and inflammation\n\nTreating the underlying cause, if it\'s known\n\nFatigue\n\nMost people recover.',
    );
    expect(units.map((u) => u.text)).toEqual([
      'Other treatments, such as medicines and a vaporizer, can help relieve the cough itself.',
      'An acute cough lasts less than 3 weeks.',
      'The goals of treatment include:',
      'Most people recover.',
    ]);
    // A one-word item in title case ("Fatigue") is still an item, not a subheading.
    expect(units[2]!.items).toEqual(['Reducing pain and inflammation', "Treating the underlying cause, if it's known", 'Fatigue']);
    // A subheading after a list's last line ends the list; a title-case line inside prose stays.
    expect(unitsOf('Causes include:\n\nSmoking\n\nRisk Factors in Children\n\nChildren who live with smokers are at risk.').map((u) => [u.text, u.items.length])).toEqual([
      ['Causes include:', 1],
      ['Children who live with smokers are at risk.', 0],
    ]);
  });
});

describe('the source line within the budget', () => {
  // NIDDK's pages have links of 150–200 characters and long titles (niddk-0000049, niddk-0000011).
  const title = 'Monogenic Forms of Diabetes: Neonatal Diabetes Mellitus and Maturity-onset Diabetes of the Young';
  const longUrl = 'http://www.niddk.nih.gov/health-information/health-topics/Diabetes/monogenic-forms-diabetes-neonatal-diabetes-mellitus-maturity-onset-diabetes-young/Pages/index.aspx';
  const text = 'NDM is a monogenic form of diabetes that occurs in the first 6 months of life. It is a rare condition occurring in only one in 100,000 to 500,000 live births. Specific genes that can cause NDM have been identified.';
  const page = (url: string | null): Hit => ({ docId: 'niddk-0000049', chunkId: 'c', title, url, source: null, section: 'Overview', text, score: 30, bm25f: 30, lexicalRank: 1, vectorRank: 1, coverage: 1, titleMatch: 1, sections: [{ heading: 'Overview', text }] });

  it('keeps a short source whole, and shortens a long one to the title\'s main part, then drops a link that leaves no room', () => {
    expect(sourceLine({ title: 'A1C', url: 'https://www.nlm.nih.gov/medlineplus/a1c.html' }, 286)).toBe('Source: A1C https://www.nlm.nih.gov/medlineplus/a1c.html');
    const mid = 'http://www.niddk.nih.gov/health-information/health-topics/Diabetes/mody/Pages/index.aspx';
    expect(sourceLine({ title, url: mid }, 286)).toBe(`Source: Monogenic Forms of Diabetes ${mid}`);
    expect(sourceLine({ title, url: longUrl }, 286)).toBe('Source: Monogenic Forms of Diabetes');
    // WhatsApp's budget has room for all of it.
    expect(sourceLine({ title, url: longUrl }, 880)).toBe(`Source: ${title} ${longUrl}`);
  });

  it('an SMS answer from a page with a long source keeps its answer and its length', () => {
    for (const url of [longUrl, null]) {
      const answer = composeAnswer('what is neonatal diabetes', [page(url)], { maxChars: 286, minConfidence: 0 })!;
      expect(answer.text.length).toBeLessThanOrEqual(286);
      expect(answer.text).toMatch(/^NDM is a monogenic form of diabetes that occurs in the first 6 months of life\./);
      expect(answer.text.split('\n').at(-1)).toMatch(/^Source: Monogenic Forms of Diabetes/);
      expect(answer.citations[0]).toMatchObject({ docId: 'niddk-0000049', url });
    }
    // A model's grounded answer gets the same source line.
    const grounded = parseGrounded(`${text} [1]`, [page(longUrl)], 286);
    expect(grounded.ok && grounded.text.length <= 286 && grounded.text.endsWith('\nSource: Monogenic Forms of Diabetes')).toBe(true);
  });

  it('a short link in place of a long one leaves room for the whole title, and the citation the page\'s own', () => {
    const links = linksFor('twilio-sms', 'clinic', 'auto', 'https://clinic.example.org');
    const short = `https://clinic.example.org/l/${linkCode('clinic', 'niddk-0000049')}`;
    const answer = composeAnswer('what is neonatal diabetes', [page(longUrl)], { maxChars: 286, minConfidence: 0, links })!;
    expect(answer.text.split('\n').at(-1)).toBe(`Source: ${title} ${short}`);
    expect(answer.citations[0]).toMatchObject({ url: longUrl });
    const grounded = parseGrounded(`${text} [1]`, [page(longUrl)], 286, links);
    expect(grounded.ok && grounded.text.endsWith(`\nSource: ${title} ${short}`) && grounded.citations[0]!.url === longUrl).toBe(true);
    // A page whose own link is shorter keeps it; a page without one gets none; a call reads no link;
    // WhatsApp keeps the page's link unless the tenant asks for short links everywhere.
    expect(composeAnswer('what is neonatal diabetes', [page('https://a.gov/x')], { maxChars: 286, minConfidence: 0, links })!.text).toMatch(/Source: .* https:\/\/a\.gov\/x$/);
    expect(composeAnswer('what is neonatal diabetes', [page(`ftp://files.example.org/${'x'.repeat(60)}`)], { maxChars: 880, minConfidence: 0, links })!.text).toContain('ftp://files.example.org/');
    expect(composeAnswer('what is neonatal diabetes', [page(null)], { maxChars: 286, minConfidence: 0, links })!.text).toMatch(/Source: Monogenic Forms of Diabetes: Neonatal Diabetes Mellitus and Maturity-onset Diabetes of the Young$/);
    expect(linksFor('twilio-voice', 'clinic', 'all', 'https://clinic.example.org')).toBe(false);
    expect(linksFor('whatsapp-cloud', 'clinic', 'auto', 'https://clinic.example.org')).toBe(true);
    expect(typeof linksFor('whatsapp-cloud', 'clinic', 'all', 'https://clinic.example.org')).toBe('function');
    expect(linksFor('twilio-sms', 'clinic', 'auto', null)).toBe(true);
    expect(linksFor('twilio-sms', 'clinic', 'off', 'https://clinic.example.org')).toBe(true);
  });
});

/**
 * Fits medical-answers' confidence (`plugins/medical-answers/engine/confidence.ts`) and writes
 * `plugins/medical-answers/engine/confidence-weights.ts`.
 *
 *   npx tsx eval/fit-confidence.ts --data-dir DIR [--write] [--test FILE ...] [--min-confidence X]
 *
 * 1. The text part (`plugins/medical-answers/train/text-model.ts`): a logistic regression over the
 *    question's word stems and stem pairs, health questions (hand-written ones, the templated ones at
 *    half weight) against texts that are not health questions (clinic errands, chit-chat, abuse), the
 *    files `CONFIDENCE_SETS` names, less the half of `off_topic_b` and `_c` kept for testing (by a hash
 *    of the id). Deterministic (`confidence.test.ts` refits it and compares).
 * 2. The product: p = sigmoid(retrieval part over the top hit's signals) × sigmoid(scale × text logit
 *    + bias), fitted by maximum likelihood, target "the first hit is an expected document" (0 for
 *    every errand), with the text part's logit 5-fold cross-validated for the training rows (so it is
 *    not trusted more than it deserves). The rows: every training text searched in the full corpus,
 *    and again in libraries of 30 and of 100 of its pages (`smallLibraryRows`), for the deployments that ingest a
 *    few dozen pages. Needs DIR, an embedded database with the corpus ingested as tenant `eval` (made
 *    on first use, about 20 s; the small library in DIR-small-HASH, a few seconds).
 * `--library FILE` (a JSONL corpus, repeatable; or a number N: the first N of the pages the `--test`
 * questions expect, ordered by a hash of their id) searches the `--test` files again in that library and
 * prints how many health questions each weighting answers, how many from an expected page, how many of
 * those whose page is in the library, and how many errands (the library's store in DIR-library-HASH).
 * `--test FILE` prints, for question files, fallback and citation accuracy at the default threshold
 * (or X), and for errand files how many would be answered, with the fitted and with the shipped
 * weights; then, pooled over the test files, how many errands each would answer at the thresholds
 * that send 2–5% of the hand-written questions to the fallback.
 */
import { createHash } from 'node:crypto';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConfidenceWeights, confidenceOf, healthLogit, retrievalSignals } from '../plugins/medical-answers/engine/confidence.js';
import { CONFIDENCE_WEIGHTS } from '../plugins/medical-answers/engine/confidence-weights.js';
import type { MedicalStore } from '../plugins/medical-answers/engine/store.js';
import type { Hit } from '../plugins/medical-answers/engine/types.js';
import { settingsSchema } from '../plugins/medical-answers/settings.js';
import { fitText, heldOut, readRows, rel, SETS, type TextRow, trainingRows } from '../plugins/medical-answers/train/text-model.js';
import { argValues, CORPUS, openStore } from './fitting.js';

const OUT = fileURLToPath(new URL('../plugins/medical-answers/engine/confidence-weights.ts', import.meta.url));

interface ProductRow {
  /** `retrievalSignals` of the top hit. */
  x: number[];
  /** The text part's logit (cross-validated for training rows). */
  g: number;
  /** A health question (its `y` is whether the first hit is expected); an errand's `y` is 0. */
  health: boolean;
  y: number;
  weight: number;
}

/**
 * The retrieval part and the health factor together: maximum likelihood of "the first hit is an
 * expected document" under p = sigmoid(w·x + b) × sigmoid(scale × g + c), by gradient descent from
 * the retrieval part fitted on the health questions alone (scale 1, c 0).
 */
function fitProduct(rows: ProductRow[], epochs = 4000): Pick<ConfidenceWeights, 'health' | 'retrieval'> {
  const d = rows[0]!.x.length;
  const w = new Array<number>(d + 3).fill(0); // d weights, bias, scale, c
  w[d + 1] = 1;
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  for (const [stage, free] of [['retrieval', d + 1], ['joint', d + 3]] as const) {
    const fit = stage === 'retrieval' ? rows.filter((r) => r.health) : rows;
    const n = fit.reduce((m, r) => m + r.weight, 0);
    for (let epoch = 0; epoch < epochs; epoch++) {
      const g = new Array<number>(d + 3).fill(0);
      for (const r of fit) {
        const a = sig(w[d]! + r.x.reduce((t, x, j) => t + x * w[j]!, 0));
        const h = stage === 'retrieval' ? 1 : sig(w[d + 1]! * r.g + w[d + 2]!);
        const p = Math.min(1 - 1e-9, Math.max(1e-9, a * h));
        const dp = (r.y / p - (1 - r.y) / (1 - p)) * r.weight; // dL/dp
        const da = dp * a * (1 - a) * h;
        r.x.forEach((x, j) => (g[j]! -= da * x));
        g[d]! -= da;
        if (stage === 'joint') {
          const dh = dp * h * (1 - h) * a;
          g[d + 1]! -= dh * r.g;
          g[d + 2]! -= dh;
        }
      }
      for (let j = 0; j < free; j++) w[j]! -= 0.5 * (g[j]! / n + (j < d ? 1e-3 * w[j]! : 0));
    }
  }
  const round = (x: number) => Math.round(x * 100) / 100;
  return { retrieval: { bias: round(w[d]!), weights: w.slice(0, d).map(round) }, health: { scale: round(w[d + 1]!), bias: round(w[d + 2]!) } };
}

/** The plugin test's library (plugins/medical-answers/index.test.ts), kept out of the small library here so that it stays a test. */
const TEST_LIBRARY = new Set(['A1C', 'Anemia', 'Asthma', 'Chickenpox', 'Depression', 'Diabetes', 'Flu', 'Food Allergy', 'Headache', 'Heart Attack', 'High Blood Pressure', 'Insomnia', 'Kidney Stones', 'Migraine', 'Osteoporosis', 'Pneumonia', 'Shingles', 'Stroke', 'Suicide']);
/** The small libraries the training texts are searched in again (the first 30 of the hash order, then the first 100). */
const SMALL_LIBRARY_PAGES = [30, 100];
/**
 * What a health question whose page is not in a small library weighs there (it should get the
 * fallback). A quarter until 2026-12-03's seventh session: a 30-page library then answered 1,094 of
 * the 1,600 test questions, 38 from the right page (eval/README.md).
 */
const OUT_OF_LIBRARY_WEIGHT = 0.5;

/**
 * The training rows searched in STORE, as rows of the product's fit. A health question without its
 * expected pages (`health_texts_*`) teaches the text part only, and is left out.
 */
async function searchedRows(store: MedicalStore, rows: readonly TextRow[], logit: (r: TextRow) => number, weightOf: (r: TextRow) => number): Promise<ProductRow[]> {
  const out: ProductRow[] = [];
  for (const r of rows) {
    if (r.health && !r.expected) continue;
    const hits = await store.search('eval', r.text, { k: 10 });
    if (!hits[0]) continue;
    out.push({ x: retrievalSignals(hits), g: logit(r), health: r.health === 1, y: r.expected?.includes(hits[0].docId) ? 1 : 0, weight: weightOf(r) });
  }
  return out;
}

/**
 * The same training rows searched in a library of SIZE pages, for the deployments that ingest a few
 * dozen pages of their own: there every question finds some page first, and a stray word ("opening")
 * finds one page that beats the rest, signals the full corpus never shows. The pages: those the
 * training questions expect, ordered by a hash of their id, the first SIZE (none of the plugin test's
 * library). Errands weigh a half; a health question whose page is in the library 1, one whose page is
 * not (it should get the fallback there) `OUT_OF_LIBRARY_WEIGHT`.
 */
async function smallLibraryRows(dataDir: string, rows: readonly TextRow[], logit: (r: TextRow) => number, size: number): Promise<ProductRow[]> {
  const pages = readFileSync(CORPUS, 'utf8').split('\n').filter(Boolean).map((line) => ({ line, ...(JSON.parse(line) as { id: string; title: string }) }));
  const expected = new Set(rows.filter((r) => r.weight === 1).flatMap((r) => r.expected ?? []));
  const hash = (id: string) => createHash('sha256').update(`small:${id}`).digest('hex');
  const picked = pages.filter((p) => expected.has(p.id) && !TEST_LIBRARY.has(p.title)).sort((a, b) => hash(a.id).localeCompare(hash(b.id))).slice(0, size);
  const ids = new Set(picked.map((p) => p.id));
  const file = join(tmpdir(), `parley-small-library-${process.pid}.jsonl`);
  writeFileSync(file, `${picked.map((p) => p.line).join('\n')}\n`);
  const { store, close } = await openStore(`${dataDir}-small-${createHash('sha256').update([...ids].join()).digest('hex').slice(0, 8)}`, file);
  try {
    return await searchedRows(store, rows, logit, (r) => (!r.health ? 0.5 : r.expected?.some((id) => ids.has(id)) ? r.weight : r.weight * OUT_OF_LIBRARY_WEIGHT));
  } finally {
    await close();
    unlinkSync(file);
  }
}

/** The first N of the pages that the test files' hand-written questions expect, in the order of a hash of their id: corpus lines. */
function heldOutLibrary(tests: readonly string[], n: number): string[] {
  const expected = new Set(tests.flatMap(readRows).filter((r) => r.health && r.weight === 1).flatMap((r) => r.expected ?? []));
  const hash = (id: string) => createHash('sha256').update(`holdout:${id}`).digest('hex');
  return readFileSync(CORPUS, 'utf8').split('\n').filter(Boolean).map((line) => ({ line, id: (JSON.parse(line) as { id: string }).id })).filter((p) => expected.has(p.id)).sort((a, b) => hash(a.id).localeCompare(hash(b.id))).slice(0, n).map((p) => p.line);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dataDir = argValues('--data-dir')[0];
  if (!dataDir) throw new Error('--data-dir DIR is required');
  const rows = trainingRows();
  const text = fitText(rows);
  // Cross-validated text logits for the retrieval fit.
  const fold = (id: string) => createHash('sha256').update(`cv:${id}`).digest()[0]! % 5;
  const cvText = new Map<string, ConfidenceWeights['text']>();
  for (let k = 0; k < 5; k++) cvText.set(String(k), fitText(rows.filter((r) => fold(r.id) !== k)));
  const { store, close } = await openStore(dataDir);
  try {
    const hitsOf = async (text: string): Promise<Hit[]> => store.search('eval', text, { k: 10 });
    const cvLogit = (r: TextRow) => healthLogit(r.text, { text: cvText.get(String(fold(r.id)))! });
    const retrievalRows = await searchedRows(store, rows, cvLogit, (r) => r.weight);
    for (const size of SMALL_LIBRARY_PAGES) retrievalRows.push(...(await smallLibraryRows(dataDir, rows, cvLogit, size)));
    const weights: ConfidenceWeights = { text, ...fitProduct(retrievalRows) };
    console.log(`text part: ${Object.keys(text.weights).length} features from ${rows.length} texts; retrieval part: bias ${weights.retrieval.bias}, weights ${weights.retrieval.weights.join(', ')}; health factor: scale ${weights.health.scale}, bias ${weights.health.bias}`);
    const min = Number(argValues('--min-confidence')[0] ?? settingsSchema.parse({}).minConfidence);
    const tests = argValues('--test');
    const halves = ['off_topic_b.jsonl', 'off_topic_c.jsonl'].map((f) => [`sets/${f}, held-out half`, readRows(`${SETS}${f}`).filter(heldOut)] as const);
    // Every hand-written test question's and errand's confidence (fitted, shipped), for the pooled curve.
    const pooled: { health: boolean; right: boolean; c: [number, number] }[] = [];
    for (const [name, test] of [...tests.map((f) => [rel(f), readRows(f)] as const), ...halves]) {
      // The fitted weights, then the shipped ones (`confidence-weights.ts` as it stands) on the same searches.
      const answered = [0, 0];
      const right = [0, 0];
      for (const r of test) {
        const hits = await hitsOf(r.text);
        const isRight = !!hits[0] && !!r.expected?.includes(hits[0].docId);
        const c: [number, number] = [confidenceOf(hits, r.text, weights), confidenceOf(hits, r.text, CONFIDENCE_WEIGHTS)];
        if (r.weight === 1) pooled.push({ health: r.health === 1, right: isRight, c });
        if (!hits[0]) continue;
        c.forEach((ci, i) => {
          if (ci < min) return;
          answered[i]!++;
          if (isRight) right[i]!++;
        });
      }
      const line = (i: number) =>
        test[0]?.health ? `fallback ${(1 - answered[i]! / test.length).toFixed(3)}, first cited expected ${(right[i]! / Math.max(1, answered[i]!)).toFixed(3)}` : `answered ${answered[i]} of ${test.length}`;
      console.log(`${name}: ${line(0)} (shipped weights: ${line(1)})${test[0]?.health ? ` (n ${test.length})` : ''}`);
    }
    // The same curve for both: at the threshold that sends a given share of the pooled hand-written test
    // questions to the fallback, how many errands get an answer and how many answers cite an expected page.
    const health = pooled.filter((p) => p.health);
    const errands = pooled.filter((p) => !p.health);
    if (health.length && errands.length) {
      for (const share of [0.02, 0.03, 0.035, 0.04, 0.05]) {
        const at = (i: 0 | 1) => {
          const th = health.map((p) => p.c[i]).sort((a, b) => a - b)[Math.floor(share * health.length)]!;
          const answered = health.filter((p) => p.c[i] >= th);
          return `threshold ${th.toFixed(3)}, errands answered ${errands.filter((p) => p.c[i] >= th).length}, first cited expected ${(answered.filter((p) => p.right).length / answered.length).toFixed(3)}`;
        };
        console.log(`pooled fallback ${share} of ${health.length} questions (${errands.length} errands): fitted ${at(0)}; shipped ${at(1)}`);
      }
    }
    for (const library of argValues('--library')) {
      const lines = /^\d+$/.test(library) ? heldOutLibrary(tests, Number(library)) : readFileSync(library, 'utf8').split('\n').filter(Boolean);
      const file = join(tmpdir(), `parley-library-${process.pid}.jsonl`);
      writeFileSync(file, `${lines.join('\n')}\n`);
      const ids = new Set(lines.map((line) => (JSON.parse(line) as { id: string }).id));
      const lib = await openStore(`${dataDir}-library-${createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 8)}`, file);
      try {
        const tally = [0, 1].map(() => ({ answered: 0, right: 0, inLibrary: 0, inLibraryAnswered: 0, errands: 0 }));
        for (const r of tests.flatMap(readRows)) {
          if (r.weight !== 1) continue;
          const hits = await lib.store.search('eval', r.text, { k: 10 });
          const isRight = !!hits[0] && !!r.expected?.includes(hits[0].docId);
          const inLibrary = !!r.expected?.some((id) => ids.has(id));
          [confidenceOf(hits, r.text, weights), confidenceOf(hits, r.text, CONFIDENCE_WEIGHTS)].forEach((c, i) => {
            const t = tally[i]!;
            if (inLibrary) t.inLibrary++;
            if (c < min) return;
            if (!r.health) t.errands++;
            else {
              t.answered++;
              if (isRight) t.right++;
              if (inLibrary) t.inLibraryAnswered++;
            }
          });
        }
        const line = (i: number) => `answered ${tally[i]!.answered} (${tally[i]!.right} from an expected page), of those whose page is there ${tally[i]!.inLibraryAnswered} of ${tally[i]!.inLibrary}, errands ${tally[i]!.errands}`;
        console.log(`library ${rel(library)} (${ids.size} pages): ${line(0)} (shipped weights: ${line(1)})`);
      } finally {
        await lib.close();
        unlinkSync(file);
      }
    }
    if (process.argv.includes('--write')) {
      writeFileSync(
        OUT,
        `/**\n * Fitted by eval/fit-confidence.ts (${new Date().toISOString().slice(0, 10)}); do not edit by hand. Text part: ${Object.keys(text.weights).length} features\n * from ${rows.length} texts; health factor; retrieval part over RETRIEVAL_SIGNALS (confidence.ts).\n */\nimport type { ConfidenceWeights } from './confidence.js';\n\nexport const CONFIDENCE_WEIGHTS: ConfidenceWeights = ${JSON.stringify(weights)};\n`,
      );
      console.log(`wrote ${rel(OUT)}`);
    }
  } finally {
    await close();
  }
}

/**
 * Fits medical-answers' confidence (`../engine/confidence.ts`) and writes `../engine/confidence-weights.ts`.
 *
 *   npx tsx plugins/medical-answers/train/fit-confidence.ts --data-dir DIR [--write] [--test FILE ...]
 *
 * 1. The text part: a logistic regression over the question's word stems and stem pairs, hand-written
 *    health questions (the dev set's and `sets/questions_*.jsonl`) against
 *    texts that are not health questions (`sets/off_topic_*.jsonl`, except the half of `off_topic_b`
 *    kept for testing, by a hash of the id). Full-batch gradient descent with Adam and L2, fixed order:
 *    deterministic (`confidence.test.ts` refits it and compares).
 * 2. The retrieval part: a logistic regression over the top hit's signals and the text part's logit
 *    (5-fold cross-validated for the training rows, so it is not trusted more than it deserves),
 *    target "the first hit is an expected document" (0 for every off-topic text). Needs every training
 *    question searched: DIR is an embedded database with the corpus ingested as tenant `eval` (made
 *    on first use, about 20 s).
 * `--test FILE` prints, for question files, fallback and citation accuracy at the default threshold,
 * and for off-topic files how many would be answered.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../../../core/storage/migrations.js';
import { type ConfidenceWeights, confidenceOf, questionFeatures, retrievalSignals } from '../engine/confidence.js';
import { MedicalStore } from '../engine/store.js';
import type { Hit } from '../engine/types.js';
import { settingsSchema } from '../settings.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SETS = fileURLToPath(new URL('./sets/', import.meta.url));
const OUT = fileURLToPath(new URL('../engine/confidence-weights.ts', import.meta.url));
const rel = (p: string) => p.replace(ROOT, '');

export interface TextRow {
  id: string;
  text: string;
  /** 1: a health question; 0: not. */
  health: 0 | 1;
  weight: number;
  expected: string[] | null;
  file: string;
}

/** The off-topic half kept out of training, for `--test`. */
export const heldOut = (row: { id: string; file: string }) => row.file.endsWith('off_topic_b.jsonl') && createHash('sha256').update(row.id).digest()[0]! % 2 === 1;

function readRows(path: string): TextRow[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => {
    const r = JSON.parse(line) as { id: string; question?: string; text?: string; expected_doc_ids?: string[]; origin?: string };
    const question = r.question !== undefined;
    return { id: r.id, text: (r.question ?? r.text)!, health: question ? 1 : 0, weight: r.origin === 'medquad_template' ? 0.25 : 1, expected: r.expected_doc_ids ?? null, file: rel(path) };
  });
}

export function trainingRows(): TextRow[] {
  const files = [`${ROOT}corpora/medquad/dev_eval.jsonl`, ...readdirSync(SETS).filter((f) => f.endsWith('.jsonl')).sort().map((f) => `${SETS}${f}`)];
  return files.flatMap(readRows).filter((r) => !heldOut(r));
}

/** The text part: weighted L2 logistic regression over `questionFeatures`, features seen at least twice. */
export function fitText(allRows: readonly TextRow[], epochs = 400): ConfidenceWeights['text'] {
  // The templated questions ("What is (are) Scars?") are not how people text: the text part learns from the hand-written ones.
  const rows = allRows.filter((r) => r.weight === 1);
  const feats = rows.map((r) => questionFeatures(r.text));
  const counts = new Map<string, number>();
  for (const fs of feats) for (const f of fs) counts.set(f, (counts.get(f) ?? 0) + 1);
  const names = [...counts].filter(([, n]) => n >= 2).map(([f]) => f).sort();
  const index = new Map(names.map((f, i) => [f, i]));
  const X = feats.map((fs) => fs.map((f) => index.get(f)).filter((i): i is number => i !== undefined));
  // Health questions and the rest weigh the same in total.
  const pos = rows.reduce((n, r) => n + (r.health ? r.weight : 0), 0);
  const neg = rows.reduce((n, r) => n + (r.health ? 0 : r.weight), 0);
  const sw = rows.map((r) => r.weight * (r.health ? 0.5 / pos : 0.5 / neg));
  const w = new Float64Array(names.length + 1);
  const m = new Float64Array(w.length);
  const v = new Float64Array(w.length);
  const l2 = 1e-3;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const g = new Float64Array(w.length);
    rows.forEach((r, n) => {
      let z = w[names.length]!;
      for (const j of X[n]!) z += w[j]!;
      const d = (1 / (1 + Math.exp(-z)) - r.health) * sw[n]!;
      for (const j of X[n]!) g[j]! += d;
      g[names.length]! += d;
    });
    for (let j = 0; j < w.length; j++) {
      const grad = g[j]! + (j < names.length ? l2 * w[j]! : 0);
      m[j] = 0.9 * m[j]! + 0.1 * grad;
      v[j] = 0.999 * v[j]! + 0.001 * grad * grad;
      w[j]! -= (0.05 * (m[j]! / (1 - 0.9 ** epoch))) / (Math.sqrt(v[j]! / (1 - 0.999 ** epoch)) + 1e-8);
    }
  }
  const round = (x: number) => Math.round(x * 1e4) / 1e4 || 0;
  const weights: Record<string, number> = {};
  names.forEach((f, j) => {
    if (Math.abs(w[j]!) >= 0.005) weights[f] = round(w[j]!);
  });
  return { bias: round(w[names.length]!), weights };
}

/** The retrieval part, over `retrievalSignals` (with the text part given). */
function fitRetrieval(rows: { x: number[]; y: number; weight: number }[], epochs = 4000): ConfidenceWeights['retrieval'] {
  const d = rows[0]!.x.length;
  const w = new Array<number>(d + 1).fill(0);
  const total = rows.reduce((n, r) => n + r.weight, 0);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const g = new Array<number>(d + 1).fill(0);
    for (const r of rows) {
      const z = w[d]! + r.x.reduce((a, x, j) => a + x * w[j]!, 0);
      const e = (1 / (1 + Math.exp(-z)) - r.y) * r.weight;
      r.x.forEach((x, j) => (g[j]! += e * x));
      g[d]! += e;
    }
    for (let j = 0; j <= d; j++) w[j]! -= 0.5 * (g[j]! / total + (j < d ? 1e-3 * w[j]! : 0));
  }
  return { bias: Math.round(w[d]! * 100) / 100, weights: w.slice(0, d).map((x) => Math.round(x * 100) / 100) };
}

export async function openStore(dataDir: string): Promise<{ store: MedicalStore; close: () => Promise<void> }> {
  const fresh = !existsSync(dataDir);
  mkdirSync(dataDir, { recursive: true });
  const log = pino({ level: 'warn' });
  const db = await openDatabase({ dataDir, poolSize: 4, log });
  await ensureMigrationTable(db.pool);
  await applyMigrations(db.pool, 'medical-answers', MedicalStore.migrations());
  const store = new MedicalStore(db.pool, { log });
  await store.init({});
  if (fresh) {
    const { readCorpus } = await import('../../../eval/medical-answers.js');
    await store.ingest('eval', readCorpus(`${ROOT}corpora/medquad/corpus.jsonl`));
  }
  return { store, close: () => db.close() };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const many = (flag: string) => args.flatMap((a, i) => (a === flag && args[i + 1] ? [args[i + 1]!] : []));
  const dataDir = many('--data-dir')[0];
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
    const retrievalRows: { x: number[]; y: number; weight: number }[] = [];
    for (const r of rows) {
      const hits = await hitsOf(r.text);
      if (!hits[0]) continue;
      const cv: ConfidenceWeights = { text: cvText.get(String(fold(r.id)))!, retrieval: { bias: 0, weights: [] } };
      retrievalRows.push({ x: retrievalSignals(hits, r.text, cv), y: r.expected ? (r.expected.includes(hits[0].docId) ? 1 : 0) : 0, weight: r.weight });
    }
    const weights: ConfidenceWeights = { text, retrieval: fitRetrieval(retrievalRows) };
    console.log(`text part: ${Object.keys(text.weights).length} features from ${rows.length} texts; retrieval part: bias ${weights.retrieval.bias}, weights ${weights.retrieval.weights.join(', ')}`);
    const min = settingsSchema.parse({}).minConfidence;
    const tests = many('--test');
    const offTopicHalf = readRows(`${SETS}off_topic_b.jsonl`).filter(heldOut);
    for (const [name, test] of [...tests.map((f) => [rel(f), readRows(f)] as const), ['sets/off_topic_b.jsonl, held-out half', offTopicHalf] as const]) {
      let answered = 0;
      let right = 0;
      for (const r of test) {
        const hits = await hitsOf(r.text);
        if (!hits[0] || confidenceOf(hits, r.text, weights) < min) continue;
        answered++;
        if (r.expected?.includes(hits[0].docId)) right++;
      }
      console.log(test[0]?.health ? `${name}: fallback ${(1 - answered / test.length).toFixed(3)}, first cited expected ${(right / Math.max(1, answered)).toFixed(3)} (n ${test.length})` : `${name}: answered ${answered} of ${test.length}`);
    }
    if (args.includes('--write')) {
      writeFileSync(
        OUT,
        `/**\n * Fitted by train/fit-confidence.ts (${new Date().toISOString().slice(0, 10)}); do not edit by hand. Text part: ${Object.keys(text.weights).length} features\n * from ${rows.length} texts; retrieval part over RETRIEVAL_SIGNALS (confidence.ts).\n */\nimport type { ConfidenceWeights } from './confidence.js';\n\nexport const CONFIDENCE_WEIGHTS: ConfidenceWeights = ${JSON.stringify(weights)};\n`,
      );
      console.log(`wrote ${rel(OUT)}`);
    }
  } finally {
    await close();
  }
}

/**
 * Fits medical-answers' confidence (`plugins/medical-answers/engine/confidence.ts`) and writes
 * `plugins/medical-answers/engine/confidence-weights.ts`.
 *
 *   npx tsx eval/fit-confidence.ts --data-dir DIR [--write] [--test FILE ...] [--min-confidence X]
 *
 * 1. The text part (`plugins/medical-answers/train/text-model.ts`): a logistic regression over the
 *    question's word stems and stem pairs, hand-written health questions (the dev set's and
 *    `train/sets/questions_a` / `_b`) against texts that are not health questions
 *    (`train/sets/off_topic_*.jsonl`, except the half of `off_topic_b` and `_c` kept for testing, by a
 *    hash of the id): the files `CONFIDENCE_SETS` names (text-model.ts says why not the others).
 *    Deterministic (`confidence.test.ts` refits it and compares).
 * 2. The retrieval part: a logistic regression over the top hit's signals and the text part's logit
 *    (5-fold cross-validated for the training rows, so it is not trusted more than it deserves),
 *    target "the first hit is an expected document" (0 for every off-topic text). Needs every training
 *    question searched: DIR is an embedded database with the corpus ingested as tenant `eval` (made
 *    on first use, about 20 s).
 * `--test FILE` prints, for question files, fallback and citation accuracy at the default threshold
 * (or X), and for off-topic files how many would be answered, with the fitted and with the shipped
 * weights.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ConfidenceWeights, confidenceOf, retrievalSignals } from '../plugins/medical-answers/engine/confidence.js';
import { CONFIDENCE_WEIGHTS } from '../plugins/medical-answers/engine/confidence-weights.js';
import type { Hit } from '../plugins/medical-answers/engine/types.js';
import { settingsSchema } from '../plugins/medical-answers/settings.js';
import { fitText, heldOut, readRows, rel, SETS, trainingRows } from '../plugins/medical-answers/train/text-model.js';
import { argValues, openStore } from './fitting.js';

const OUT = fileURLToPath(new URL('../plugins/medical-answers/engine/confidence-weights.ts', import.meta.url));

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
    const retrievalRows: { x: number[]; y: number; weight: number }[] = [];
    for (const r of rows) {
      const hits = await hitsOf(r.text);
      if (!hits[0]) continue;
      const cv: ConfidenceWeights = { text: cvText.get(String(fold(r.id)))!, retrieval: { bias: 0, weights: [] } };
      retrievalRows.push({ x: retrievalSignals(hits, r.text, cv), y: r.expected ? (r.expected.includes(hits[0].docId) ? 1 : 0) : 0, weight: r.weight });
    }
    const weights: ConfidenceWeights = { text, retrieval: fitRetrieval(retrievalRows) };
    console.log(`text part: ${Object.keys(text.weights).length} features from ${rows.length} texts; retrieval part: bias ${weights.retrieval.bias}, weights ${weights.retrieval.weights.join(', ')}`);
    const min = Number(argValues('--min-confidence')[0] ?? settingsSchema.parse({}).minConfidence);
    const tests = argValues('--test');
    const halves = ['off_topic_b.jsonl', 'off_topic_c.jsonl'].map((f) => [`sets/${f}, held-out half`, readRows(`${SETS}${f}`).filter(heldOut)] as const);
    for (const [name, test] of [...tests.map((f) => [rel(f), readRows(f)] as const), ...halves]) {
      // The fitted weights, then the shipped ones (`confidence-weights.ts` as it stands) on the same searches.
      const answered = [0, 0];
      const right = [0, 0];
      for (const r of test) {
        const hits = await hitsOf(r.text);
        if (!hits[0]) continue;
        [weights, CONFIDENCE_WEIGHTS].forEach((w, i) => {
          if (confidenceOf(hits, r.text, w) < min) return;
          answered[i]!++;
          if (r.expected?.includes(hits[0]!.docId)) right[i]!++;
        });
      }
      const line = (i: number) =>
        test[0]?.health ? `fallback ${(1 - answered[i]! / test.length).toFixed(3)}, first cited expected ${(right[i]! / Math.max(1, answered[i]!)).toFixed(3)}` : `answered ${answered[i]} of ${test.length}`;
      console.log(`${name}: ${line(0)} (shipped weights: ${line(1)})${test[0]?.health ? ` (n ${test.length})` : ''}`);
    }
    if (process.argv.includes('--write')) {
      writeFileSync(
        OUT,
        `/**\n * Fitted by eval/fit-confidence.ts (${new Date().toISOString().slice(0, 10)}); do not edit by hand. Text part: ${Object.keys(text.weights).length} features\n * from ${rows.length} texts; retrieval part over RETRIEVAL_SIGNALS (confidence.ts).\n */\nimport type { ConfidenceWeights } from './confidence.js';\n\nexport const CONFIDENCE_WEIGHTS: ConfidenceWeights = ${JSON.stringify(weights)};\n`,
      );
      console.log(`wrote ${rel(OUT)}`);
    }
  } finally {
    await close();
  }
}

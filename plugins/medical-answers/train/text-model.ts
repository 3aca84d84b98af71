/**
 * The text part of medical-answers' confidence (is this a health question at all?): the training rows
 * and the fit. Pure (files and arithmetic), so `confidence.test.ts` can refit it; the retrieval part,
 * which needs a searched corpus, is fitted by `eval/fit-confidence.ts`, which writes both.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ConfidenceWeights, questionFeatures } from '../engine/confidence.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SETS = fileURLToPath(new URL('./sets/', import.meta.url));
export const rel = (p: string) => p.replace(ROOT, '');

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
export const heldOut = (row: { id: string; file: string }) => /off_topic_[bc]\.jsonl$/.test(row.file) && createHash('sha256').update(row.id).digest()[0]! % 2 === 1;

export function readRows(path: string): TextRow[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => {
    const r = JSON.parse(line) as { id: string; question?: string; text?: string; expected_doc_ids?: string[]; origin?: string };
    const question = r.question !== undefined;
    return { id: r.id, text: (r.question ?? r.text)!, health: question ? 1 : 0, weight: r.origin === 'medquad_template' ? 0.25 : 1, expected: r.expected_doc_ids ?? null, file: rel(path) };
  });
}

/**
 * The confidence's sets, named. `off_topic_d` and `_e` are test errands and stay out, as does half
 * of `_b` and `_c` (`heldOut`). The `questions_t*` files were kept out until 1,397 more errands
 * (`_f`–`_j`) balanced their 600 health questions (README.md).
 */
export const CONFIDENCE_SETS = [
  'off_topic_a.jsonl',
  'off_topic_b.jsonl',
  'off_topic_c.jsonl',
  'off_topic_f.jsonl',
  'off_topic_g.jsonl',
  'off_topic_h.jsonl',
  'off_topic_i.jsonl',
  'off_topic_j.jsonl',
  'questions_a.jsonl',
  'questions_b.jsonl',
  'questions_t1.jsonl',
  'questions_t2.jsonl',
  'questions_t3.jsonl',
  'questions_t4.jsonl',
  'questions_t5.jsonl',
  'questions_t6.jsonl',
  'health_texts_a.jsonl',
  'health_texts_b.jsonl',
  'health_texts_c.jsonl',
];

export function trainingRows(): TextRow[] {
  const files = [`${ROOT}corpora/medquad/dev_eval.jsonl`, ...CONFIDENCE_SETS.map((f) => `${SETS}${f}`)];
  return files.flatMap(readRows).filter((r) => !heldOut(r));
}

/**
 * The templated questions' weight in the text part. They are not how most people text ("What is (are)
 * Scars?"), but one of their forms is: "Do you have information about Breastfeeding" reads as an
 * errand ("do you ...") to a text part that never saw it, and the product confidence then sends a
 * tenth of them to the fallback.
 */
export const TEMPLATED_TEXT_WEIGHT = 0.5;

/** The `questionFeatures` of texts seen in at least two of them (sorted), and each text's as indices into that list. */
export function indexFeatures(texts: readonly string[]): { names: string[]; X: number[][] } {
  const feats = texts.map(questionFeatures);
  const counts = new Map<string, number>();
  for (const fs of feats) for (const f of fs) counts.set(f, (counts.get(f) ?? 0) + 1);
  const names = [...counts].filter(([, n]) => n >= 2).map(([f]) => f).sort();
  const index = new Map(names.map((f, i) => [f, i]));
  return { names, X: feats.map((fs) => fs.map((f) => index.get(f)).filter((i): i is number => i !== undefined)) };
}

/** The text part: weighted L2 logistic regression over `questionFeatures`, features seen at least twice. */
export function fitText(allRows: readonly TextRow[], epochs = 400, templatedWeight = TEMPLATED_TEXT_WEIGHT): ConfidenceWeights['text'] {
  const rows = allRows.map((r) => (r.weight === 1 ? r : { ...r, weight: templatedWeight })).filter((r) => r.weight > 0);
  const { names, X } = indexFeatures(rows.map((r) => r.text));
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

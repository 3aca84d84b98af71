/**
 * The errand model's training rows and fit (`engine/errands.ts`). Pure (files and arithmetic), so
 * `errands.test.ts` can refit it and check the shipped weights; `eval/fit-errands.ts` writes them and
 * measures the fit with each writer's file left out in turn.
 */
import { readFileSync } from 'node:fs';
import { ERRAND_INTENTS, type ErrandIntent, type ErrandWeights } from '../engine/errands.js';
import { indexFeatures, SETS } from './text-model.js';

/** The labelled errands: one file per writer (train/README.md). */
export const ERRAND_SETS = ['off_topic_f.jsonl', 'off_topic_g.jsonl', 'off_topic_h.jsonl', 'off_topic_i.jsonl', 'off_topic_j.jsonl'];

export interface ErrandRow {
  id: string;
  text: string;
  intent: ErrandIntent;
  file: string;
}

export function errandRows(files: readonly string[] = ERRAND_SETS): ErrandRow[] {
  return files.flatMap((file) =>
    readFileSync(`${SETS}${file}`, 'utf8').split('\n').filter(Boolean).map((line) => {
      const r = JSON.parse(line) as { id: string; text: string; intent: string };
      if (!(ERRAND_INTENTS as readonly string[]).includes(r.intent)) throw new Error(`${file} ${r.id}: unknown intent ${r.intent}`);
      return { id: r.id, text: r.text, intent: r.intent as ErrandIntent, file };
    }),
  );
}

/** L2 weight of the fit (chosen with each writer left out in turn: eval/fit-errands.ts --cv). */
export const ERRAND_L2 = 1e-4;

/**
 * Multinomial logistic regression over `questionFeatures` seen at least twice, by full-batch Adam
 * (deterministic: fixed order, no sampling); weights rounded to three decimals.
 */
export function fitErrands(rows: readonly ErrandRow[], opts: { l2?: number; epochs?: number } = {}): ErrandWeights {
  const l2 = opts.l2 ?? ERRAND_L2;
  const epochs = opts.epochs ?? 300;
  const K = ERRAND_INTENTS.length;
  const { names, X } = indexFeatures(rows.map((r) => r.text));
  const y = rows.map((r) => ERRAND_INTENTS.indexOf(r.intent));
  const B = names.length * K;
  const w = new Float64Array(B + K);
  const m = new Float64Array(w.length);
  const v = new Float64Array(w.length);
  const z = new Float64Array(K);
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const g = new Float64Array(w.length);
    X.forEach((xs, n) => {
      for (let k = 0; k < K; k++) {
        z[k] = w[B + k]!;
        for (const j of xs) z[k]! += w[j * K + k]!;
      }
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, z[k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += z[k] = Math.exp(z[k]! - max);
      for (let k = 0; k < K; k++) {
        const d = (z[k]! / sum - (y[n] === k ? 1 : 0)) / X.length;
        for (const j of xs) g[j * K + k]! += d;
        g[B + k]! += d;
      }
    });
    for (let i = 0; i < w.length; i++) {
      const grad = g[i]! + (i < B ? l2 * w[i]! : 0);
      m[i] = 0.9 * m[i]! + 0.1 * grad;
      v[i] = 0.999 * v[i]! + 0.001 * grad * grad;
      w[i]! -= (0.05 * (m[i]! / (1 - 0.9 ** epoch))) / (Math.sqrt(v[i]! / (1 - 0.999 ** epoch)) + 1e-8);
    }
  }
  const round = (x: number) => Math.round(x * 1000) / 1000 || 0;
  const weights: Record<string, number[]> = {};
  names.forEach((f, j) => {
    const row = Array.from({ length: K }, (_, k) => round(w[j * K + k]!));
    if (row.some((x) => x !== 0)) weights[f] = row;
  });
  return { bias: Array.from({ length: K }, (_, k) => round(w[B + k]!)), weights };
}

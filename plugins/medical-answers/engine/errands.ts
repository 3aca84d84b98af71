/**
 * What a text that is not a health question is about, so the tenant can answer the common clinic
 * errands in its own words ("For refills, call the pharmacy line at ...") instead of one off-topic
 * reply: a multinomial logistic regression over the same word features as the confidence's text part
 * (`questionFeatures`: stems and adjacent pairs, function words kept), fitted on 1,397 labelled errands
 * (`train/sets/off_topic_f` … `_j`) by `eval/fit-errands.ts` and shipped in `errand-weights.ts`.
 */
import { questionFeatures } from './confidence.js';
import { ERRAND_WEIGHTS } from './errand-weights.js';

/** The errands the model tells apart, as the training sets label them. */
export const ERRAND_INTENTS = ['appointment', 'refill', 'results', 'billing', 'service', 'message', 'social'] as const;
export type ErrandIntent = (typeof ERRAND_INTENTS)[number];

export interface ErrandWeights {
  /** One bias per intent, in `ERRAND_INTENTS` order. */
  bias: number[];
  /** Feature → one weight per intent (features whose weights all rounded to 0 are left out). */
  weights: Record<string, number[]>;
}

/** Each intent's probability, in `ERRAND_INTENTS` order. */
export function errandProbabilities(text: string, model: ErrandWeights = ERRAND_WEIGHTS): number[] {
  const z = [...model.bias];
  for (const f of questionFeatures(text)) {
    const w = model.weights[f];
    if (w) for (let k = 0; k < z.length; k++) z[k]! += w[k]!;
  }
  const max = Math.max(...z);
  const e = z.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** The likeliest errand and its probability. */
export function errandIntent(text: string, model: ErrandWeights = ERRAND_WEIGHTS): { intent: ErrandIntent; probability: number } {
  const p = errandProbabilities(text, model);
  let best = 0;
  for (let k = 1; k < p.length; k++) if (p[k]! > p[best]!) best = k;
  return { intent: ERRAND_INTENTS[best]!, probability: Math.round(p[best]! * 1000) / 1000 };
}

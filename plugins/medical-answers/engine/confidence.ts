/**
 * How sure an answer is, in [0, 1]: a logistic model over the search's own signals (how fully the
 * question names the top page's title, its BM25F and its margin over the runner-up, how much of the
 * question it covers, whether the two retrievers agree) and one signal from the question's words:
 * whether it reads like a health question at all ("what number is normal for triglycerides") or like
 * the other things people text a clinic ("can i move my appt to thurs", "is my refill ready"). The
 * search signals alone could not tell a question that does not name its condition ("my daughters eye
 * is red and goopy") from a text that is not a health question: both name no title.
 *
 * Both parts are fitted by `eval/fit-confidence.ts` (deterministic; the text part is checked by a
 * test that refits it) and ship in `confidence-weights.ts`.
 */
import type { Hit } from './types.js';
import { CONFIDENCE_WEIGHTS } from './confidence-weights.js';
import { normalise, stem } from './text.js';

export interface ConfidenceWeights {
  /** The question's words: stem and stem-pair features → weight; `bias` first. */
  text: { bias: number; weights: Record<string, number> };
  /** Over `RETRIEVAL_SIGNALS` and the text part's logit (scaled by 1/4). */
  retrieval: { bias: number; weights: number[] };
}

export const RETRIEVAL_SIGNALS = ['titleMatch', 'bm25f', 'marginByBm25f', 'coverage', 'lexicalFirst', 'vectorTop3', 'healthText'] as const;

/** The question's features for the text part: word stems and adjacent pairs (function words kept: "can i", "my appt"). */
export function questionFeatures(question: string): string[] {
  const words = normalise(question)
    .replace(/'/g, '')
    .split(/[^a-z0-9]+/)
    .filter(Boolean)
    .map((w) => (/^\d+$/.test(w) ? '<num>' : stem(w)));
  const out = new Set<string>();
  for (let i = 0; i < words.length; i++) {
    out.add(`w:${words[i]}`);
    if (i + 1 < words.length) out.add(`b:${words[i]} ${words[i + 1]}`);
  }
  if (words.length <= 2) out.add('short');
  return [...out];
}

/** Log-odds that a text is a health question (not scheduling, billing, chit-chat). */
export function healthLogit(question: string, weights: ConfidenceWeights = CONFIDENCE_WEIGHTS): number {
  let z = weights.text.bias;
  for (const f of questionFeatures(question)) z += weights.text.weights[f] ?? 0;
  return z;
}

export function retrievalSignals(hits: readonly Hit[], question: string, weights: ConfidenceWeights = CONFIDENCE_WEIGHTS): number[] {
  const top = hits[0]!;
  // A lone candidate (lexical-only search over a small library: one page holds the one word that
  // matched, "opening") says nothing about how clearly it beats the rest: its margin counts as even.
  const margin = !hits[1] ? 0.5 : top.score > 0 ? Math.max(0, (top.score - hits[1].score) / top.score) : 0;
  // The top page's BM25F, not its ranking score: that score's scale moves whenever the ranking's
  // weights are refitted, and the confidence would silently mean something else.
  const bm25f = Math.min(Math.max(top.bm25f, 0), 40) / 40;
  return [
    top.titleMatch ?? 0.5,
    bm25f,
    // The margin counts as far as the page's own match backs it. In a library of a few dozen pages a
    // stray word ("opening") finds one page and beats the rest by a wide margin; over 1,710 pages the
    // same word finds many, and only a real match stands out.
    margin * bm25f,
    top.coverage ?? 0.5,
    top.lexicalRank === 1 ? 1 : 0,
    top.vectorRank !== null && top.vectorRank <= 3 ? 1 : 0,
    Math.max(-3, Math.min(3, healthLogit(question, weights) / 4)),
  ];
}

export function confidenceOf(hits: readonly Hit[], question: string, weights: ConfidenceWeights = CONFIDENCE_WEIGHTS): number {
  if (!hits[0]) return 0;
  const x = retrievalSignals(hits, question, weights);
  let z = weights.retrieval.bias;
  for (let i = 0; i < x.length; i++) z += weights.retrieval.weights[i]! * x[i]!;
  return Math.round((1 / (1 + Math.exp(-z))) * 1000) / 1000;
}

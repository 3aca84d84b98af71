/**
 * How sure an answer is, in [0, 1]: the chance that the text is a health question at all, times the
 * chance that the top page answers it if it is one.
 *
 * - The first factor reads the question's words only: whether it reads like a health question ("what
 *   number is normal for triglycerides") or like the other things people text a clinic ("can i move my
 *   appt to thurs", "is my refill ready", "do you take medicaid"). The search signals alone could not
 *   tell a question that does not name its condition ("my daughters eye is red and goopy") from a text
 *   that is not a health question: both name no title.
 * - The second factor is a logistic model over the search's own signals: how fully the question names
 *   the top page's title, its BM25F and its margin over the runner-up, how much of the question it
 *   covers, whether the two retrievers agree.
 *
 * A product, not one sum: an errand that names a page's title ("do you accept medicaid" finds
 * Medicaid) has no chance of being answered right however well the page matches, and a sum let a
 * strong match outvote the words (eval/README.md, 2026-12-03, fifth session).
 *
 * Fitted by `eval/fit-confidence.ts` (deterministic; the text part is checked by a test that refits
 * it) and shipped in `confidence-weights.ts`.
 */
import type { Hit } from './types.js';
import { CONFIDENCE_WEIGHTS } from './confidence-weights.js';
import { normalise, stem } from './text.js';

export interface ConfidenceWeights {
  /** The question's words: stem and stem-pair features → weight; `bias` first (`healthLogit`). */
  text: { bias: number; weights: Record<string, number> };
  /** The chance that a text is a health question: sigmoid(scale × healthLogit + bias). */
  health: { scale: number; bias: number };
  /** The chance that the top page answers a health question: a logistic model over `RETRIEVAL_SIGNALS`. */
  retrieval: { bias: number; weights: number[] };
}

export const RETRIEVAL_SIGNALS = ['titleMatch', 'bm25f', 'marginByBm25f', 'coverage', 'lexicalFirst', 'vectorTop3', 'smallLibrary', 'smallLibraryUnnamed', 'elsewhere'] as const;

/**
 * How small the searched library is, in [0, 1]: 0 from a thousand pages up (or when unknown), 0.51 for
 * 30 pages, 0.64 for 12. In a small library the top page is some page whatever the question ("how long
 * does a bruise take to fade" finds Shingles among 12), so being first, lexically or by vector, says little.
 */
export function smallLibrary(docs: number | undefined): number {
  return docs && docs > 1 ? Math.max(0, 1 - Math.log(docs) / Math.log(1000)) : 0;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

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

/** Log-odds that a text is a health question (not scheduling, billing, chit-chat), health questions and the rest weighing the same. */
export function healthLogit(question: string, weights: Pick<ConfidenceWeights, 'text'> = CONFIDENCE_WEIGHTS): number {
  let z = weights.text.bias;
  for (const f of questionFeatures(question)) z += weights.text.weights[f] ?? 0;
  return z;
}

export function retrievalSignals(hits: readonly Hit[]): number[] {
  const top = hits[0]!;
  // A lone candidate (lexical-only search over a small library: one page holds the one word that
  // matched, "opening") says nothing about how clearly it beats the rest: its margin counts as even.
  const margin = !hits[1] ? 0.5 : top.score > 0 ? Math.max(0, (top.score - hits[1].score) / top.score) : 0;
  // The top page's BM25F, not its ranking score: that score's scale moves whenever the ranking's
  // weights are refitted, and the confidence would silently mean something else.
  const bm25f = Math.min(Math.max(top.bm25f, 0), 40) / 40;
  const small = smallLibrary(top.libraryDocs);
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
    // A small library, and a small library whose top page the question does not name at all.
    small,
    (top.titleMatch ?? 0.5) > 0 ? 0 : small,
    // A health topic the library does not hold names more of the question than its top pages do.
    top.elsewhere ?? 0,
  ];
}

/** The two factors: the chance that the text is a health question, and that the top page answers it if so. */
export function confidenceParts(hits: readonly Hit[], question: string, weights: ConfidenceWeights = CONFIDENCE_WEIGHTS): { health: number; retrieval: number } {
  const health = sigmoid(weights.health.scale * healthLogit(question, weights) + weights.health.bias);
  if (!hits[0]) return { health, retrieval: 0 };
  const z = retrievalSignals(hits).reduce((sum, x, i) => sum + (weights.retrieval.weights[i] ?? 0) * x, weights.retrieval.bias);
  return { health, retrieval: sigmoid(z) };
}

export function confidenceOf(hits: readonly Hit[], question: string, weights: ConfidenceWeights = CONFIDENCE_WEIGHTS): number {
  if (!hits[0]) return 0;
  const { health, retrieval } = confidenceParts(hits, question, weights);
  return Math.round(health * retrieval * 1000) / 1000;
}

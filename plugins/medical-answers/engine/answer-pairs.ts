/**
 * Learned word pairs for the answer composer: a word of the question and a word of a sentence that go
 * together when that sentence is the answer ("forever" / "life", "catch" / "spread", "age" / "old"),
 * where the two share no word. Learned by `eval/fit-answer.ts` from hand-written questions whose
 * evidence phrases mark the unit that answers; shipped in `answer-weights.ts`.
 *
 * A pair's value is the log of how much more often it joins a question to its answering unit than to
 * any unit of the same list, smoothed (`PAIR_SMOOTHING`), and kept only when it did so for at least
 * `PAIR_MIN_QUESTIONS` different questions: a pair seen with one question is that question's, not language.
 */

/** Question stem → unit stem → value. */
export type PairTable = ReadonlyMap<string, ReadonlyMap<string, number>>;

export interface PairList {
  /** The question's own content stems, less the page's title stems. */
  question: readonly string[];
  /** Each unit's stems (less the title's) and whether it holds an evidence phrase. */
  units: readonly { stems: readonly string[]; good: boolean }[];
}

export const PAIR_SMOOTHING = 3;
export const PAIR_MIN_QUESTIONS = 2;

export function learnPairs(lists: readonly PairList[], opts: { smoothing?: number; minQuestions?: number } = {}): Map<string, Map<string, number>> {
  const smoothing = opts.smoothing ?? PAIR_SMOOTHING;
  const minQuestions = opts.minQuestions ?? PAIR_MIN_QUESTIONS;
  // Each list counts once in all: a unit's share is 1/n of the list, an answering unit's 1/good.
  const seen = new Map<string, { answering: number; all: number; questions: number }>();
  for (const list of lists) {
    const good = list.units.filter((u) => u.good).length;
    if (!good) continue;
    const n = list.units.length;
    const answered = new Set<string>();
    for (const unit of list.units) {
      for (const a of list.question) {
        for (const b of unit.stems) {
          if (a === b) continue;
          const key = `${a} ${b}`;
          const s = seen.get(key) ?? { answering: 0, all: 0, questions: 0 };
          s.all += 1 / n;
          if (unit.good) {
            s.answering += 1 / good;
            answered.add(key);
          }
          seen.set(key, s);
        }
      }
    }
    for (const key of answered) seen.get(key)!.questions++;
  }
  const table = new Map<string, Map<string, number>>();
  for (const [key, s] of seen) {
    if (s.questions < minQuestions) continue;
    const value = Math.round(Math.log((s.answering + smoothing) / (s.all + smoothing)) * 1000) / 1000;
    if (value <= 0) continue;
    const [a, b] = key.split(' ') as [string, string];
    let inner = table.get(a);
    if (!inner) table.set(a, (inner = new Map()));
    inner.set(b, value);
  }
  return table;
}

/** For each question stem, the best pair it makes with one of the unit's (distinct) stems; summed. */
export function pairScore(table: PairTable, question: readonly string[], unit: Iterable<string>): number {
  let score = 0;
  for (const a of question) {
    const inner = table.get(a);
    if (!inner) continue;
    let best = 0;
    for (const b of unit) {
      const v = inner.get(b);
      if (v !== undefined && v > best) best = v;
    }
    score += best;
  }
  return score;
}

/** The table as text, one `question unit value` line per pair, sorted (what `answer-weights.ts` ships). */
export function serialisePairs(table: PairTable): string {
  const lines: string[] = [];
  for (const [a, inner] of table) for (const [b, v] of inner) lines.push(`${a} ${b} ${v}`);
  return lines.sort().join('\n');
}

export function parsePairs(text: string): Map<string, Map<string, number>> {
  const table = new Map<string, Map<string, number>>();
  for (const line of text.split('\n')) {
    const [a, b, v] = line.split(' ');
    if (!a || !b || v === undefined) continue;
    let inner = table.get(a);
    if (!inner) table.set(a, (inner = new Map()));
    inner.set(b, Number(v));
  }
  return table;
}

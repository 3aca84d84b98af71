/**
 * The everyday words people write to the clinic that the bundled corpus does not hold ("anyway",
 * "gonna", "hubby"): stems of the words of the hand-written training texts (`sets/`, questions and
 * errands) and of the built-in lay phrases, each in at least two of them (a typo is rarely made twice),
 * less those of the reference table (`engine/reference-df.ts`). A stem in neither a library nor these
 * is taken for a misspelling (`engine/store.ts`, `corrections`). `eval/everyday-stems.ts` writes
 * `engine/everyday-stems.ts` from this; `engine/everyday-stems.test.ts` checks it.
 */
import { readdirSync } from 'node:fs';
import { BUILT_IN_LAY_PHRASES } from '../engine/lay.js';
import { REFERENCE_DF } from '../engine/reference-df.js';
import { docTerms } from '../engine/text.js';
import { readRows, SETS } from './text-model.js';

export function everydayStems(): string[] {
  const texts = readdirSync(SETS).filter((f) => f.endsWith('.jsonl')).flatMap((f) => readRows(`${SETS}${f}`).map((r) => r.text));
  for (const phrases of Object.values(BUILT_IN_LAY_PHRASES)) texts.push(...phrases);
  const seen = new Map<string, number>();
  for (const text of texts) for (const s of new Set(docTerms(text))) seen.set(s, (seen.get(s) ?? 0) + 1);
  return [...seen].filter(([s, n]) => n >= 2 && s.length >= 4 && REFERENCE_DF.df[s] === undefined && !/\d/.test(s)).map(([s]) => s).sort();
}

/**
 * `npm run eval -- --typos`: each hand-written question with one typo, as people make them, in its
 * rarest content word of five letters or more (by the reference table's document frequencies): a
 * letter left out, two letters swapped, a vowel written for another, or a double letter written once
 * (a single one twice). Never the first letter. Deterministic: the hash of the question's id chooses.
 * Templated questions are left as they are.
 */
import { createHash } from 'node:crypto';
import { REFERENCE_DF } from '../plugins/medical-answers/engine/reference-df.js';
import { STOP_WORDS, stem, words } from '../plugins/medical-answers/engine/text.js';

const VOWELS = 'aeiou';

/** The question with one typo, and the word it changed; null when it has no word to change. */
export function withTypo(id: string, question: string): { question: string; typo: string } | null {
  const h = createHash('sha256').update(`typo:${id}`).digest();
  const candidates = words(question).filter((w) => w.length >= 5 && !STOP_WORDS.has(w) && /^[a-z]+$/.test(w));
  if (!candidates.length) return null;
  const word = candidates.sort((a, b) => (REFERENCE_DF.df[stem(a)] ?? 0) - (REFERENCE_DF.df[stem(b)] ?? 0) || b.length - a.length)[0]!;
  const i = 1 + (h[1]! % (word.length - 2));
  let typo: string;
  switch (h[0]! % 4) {
    case 0:
      typo = word.slice(0, i) + word.slice(i + 1);
      break;
    case 1:
      typo = word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2);
      break;
    case 2: {
      const v = [...word].findIndex((c, j) => j >= 1 && VOWELS.includes(c));
      const j = v < 0 ? i : v;
      const c = word[j]!;
      typo = word.slice(0, j) + (VOWELS.includes(c) ? VOWELS[(VOWELS.indexOf(c) + 1 + (h[2]! % 4)) % 5]! : c) + word.slice(j + 1);
      break;
    }
    default:
      typo = /(.)\1/.test(word) ? word.replace(/(.)\1/, '$1') : word.slice(0, i) + word[i] + word.slice(i);
  }
  if (typo === word) return null;
  // The first occurrence of the word as a whole word (the question is lower-cased by `words`; keep its case elsewhere).
  const at = new RegExp(`\\b${word}\\b`, 'i').exec(question);
  if (!at) return null;
  return { question: question.slice(0, at.index) + typo + question.slice(at.index + word.length), typo: `${word} -> ${typo}` };
}

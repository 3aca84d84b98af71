/**
 * Whether a question names a topic the library does not hold better than anything it holds: the
 * confidence's `elsewhere` signal. The reference is the built-in lay vocabulary (`lay-phrases.ts`):
 * 1,537 health topics, each named by its title and the phrases people use for it. A library of a few
 * dozen pages answers every question from some page; "my gums are red and bleed every time i brush"
 * found Crimean-Congo Hemorrhagic Fever, whose body mentions bleeding gums, among 100 pages, while the
 * reference names "bleeding gums" under Gum Disease, which the library does not hold.
 */
import { BUILT_IN_LAY_PHRASES, layKey } from './lay.js';
import { docTerms } from './text.js';

/** The topics' keys (`layKey` of their titles), and each key's index. */
const KEYS = Object.keys(BUILT_IN_LAY_PHRASES);
const INDEX = new Map(KEYS.map((k, i) => [k, i]));

let byStem: Map<string, number[]> | undefined;

/**
 * Each name stem with the topics whose title or phrases hold it, made on the first question a library
 * that lacks some topic is asked (about 0.25 s); a library that holds every topic never needs it.
 */
function topicsByStem(): Map<string, number[]> {
  if (byStem) return byStem;
  const index = new Map<string, number[]>();
  KEYS.forEach((key, i) => {
    for (const stem of new Set(docTerms([key, ...BUILT_IN_LAY_PHRASES[key]!].join(' ; ')))) {
      const list = index.get(stem);
      if (list) list.push(i);
      else index.set(stem, [i]);
    }
  });
  return (byStem = index);
}

/** The reference topics a library holds: those whose key is one of its pages' titles or synonyms. */
export function heldTopics(names: Iterable<string>): Set<number> {
  const held = new Set<number>();
  for (const name of names) {
    const i = INDEX.get(layKey(name));
    if (i !== undefined) held.add(i);
  }
  return held;
}

/**
 * How much more of the question (its own words, idf-weighted, as a share of them all) the best
 * reference topic the library does not hold names than the best of the library's top pages does, by
 * their names (title, synonyms, lay phrases): 0 when a held page names as much. Over a library that
 * holds every reference topic it is always 0.
 */
export function elsewhere(terms: readonly { term: string; weight: number }[], held: ReadonlySet<number>, pageNames: readonly ((term: string) => boolean)[]): number {
  if (held.size >= KEYS.length) return 0;
  const stems = topicsByStem();
  let total = 0;
  const outside = new Map<number, number>();
  for (const { term, weight } of terms) {
    total += weight;
    for (const topic of stems.get(term) ?? []) if (!held.has(topic)) outside.set(topic, (outside.get(topic) ?? 0) + weight);
  }
  if (total <= 0 || outside.size === 0) return 0;
  let best = 0;
  for (const v of outside.values()) if (v > best) best = v;
  let inside = 0;
  for (const names of pageNames) {
    let v = 0;
    for (const { term, weight } of terms) if (names(term)) v += weight;
    if (v > inside) inside = v;
  }
  return Math.max(0, best - inside) / total;
}

import { describe, expect, it } from 'vitest';
import { BUILT_IN_LAY_PHRASES } from './lay.js';
import { elsewhere, heldTopics } from './elsewhere.js';
import { docTerms } from './text.js';

/** The question's stems, each weighing 1 (the store weighs them by idf). */
const terms = (q: string) => [...new Set(docTerms(q))].map((term) => ({ term, weight: 1 }));
/** A page's names (title, synonyms, lay phrases) as the store's test. */
const page = (...names: string[]) => {
  const stems = new Set(docTerms(names.join(' ; ')));
  return (term: string) => stems.has(term);
};

describe('medical-answers: a topic the library does not hold', () => {
  const shingles = page('Shingles', ...BUILT_IN_LAY_PHRASES['shingles']!);

  it('is read from the built-in topics a question names better than the library\'s top pages do', () => {
    const held = heldTopics(['Shingles', 'Crimean-Congo Hemorrhagic Fever (CCHF)']);
    expect(held.size).toBe(2);
    // Gum Disease ("bleeding gums") is not held: the question's words name it, not the pages found.
    expect(elsewhere(terms('my gums are red and bleed every time i brush'), held, [page('Crimean-Congo Hemorrhagic Fever (CCHF)'), shingles])).toBeGreaterThan(0.3);
    // A question about a held topic names nothing better elsewhere.
    expect(elsewhere(terms('my grandma has shingles, can my baby catch it'), held, [shingles])).toBe(0);
  });

  it('is never read over a library that holds every topic, or for a question of no topic', () => {
    const all = heldTopics(Object.keys(BUILT_IN_LAY_PHRASES));
    expect(elsewhere(terms('my gums are red and bleed every time i brush'), all, [shingles])).toBe(0);
    expect(elsewhere([], heldTopics([]), [shingles])).toBe(0);
    expect(elsewhere(terms('zzqx qqzx'), heldTopics([]), [])).toBe(0);
  });

  it('knows a library topic by its title or a synonym, as the lay phrases are given', () => {
    expect(heldTopics(['Herpes Zoster', 'Shingles']).size).toBe(1);
    expect(heldTopics(['Our clinic\'s opening hours'])).toEqual(new Set());
  });
});

import { describe, expect, it } from 'vitest';
import { TermCounts, TermDictionary } from './term-counts.js';

describe('TermCounts', () => {
  it("answers each document's counts as the objects held them, across pages sharing one dictionary", () => {
    const dictionary = new TermDictionary();
    const first: Record<string, number>[] = [{ zoster: 3, shingl: 7, rash: 1 }, {}, { rash: 2, contagi: 1 }];
    const second: Record<string, number>[] = [{ contagi: 4, aaa: 1, zoster: 2 }];
    const packed = [...TermCounts.pack(dictionary, first), ...TermCounts.pack(dictionary, second)];
    [...first, ...second].forEach((doc, i) => {
      const counts = packed[i]!;
      expect(counts.size).toBe(Object.keys(doc).length);
      for (const [term, n] of Object.entries(doc)) {
        expect(counts.get(term)).toBe(n);
        expect(counts.has(term)).toBe(true);
      }
      for (const term of ['zoster', 'shingl', 'rash', 'contagi', 'aaa', 'never']) if (!(term in doc)) expect([counts.get(term), counts.has(term)]).toEqual([undefined, false]);
    });
    expect(dictionary.ids.size).toBe(5);
  });

  it('finds every term of a long document (the binary search over ids)', () => {
    const doc = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`t${(i * 7919) % 1000}`, i + 1]));
    const dictionary = new TermDictionary();
    for (let i = 999; i >= 0; i -= 3) dictionary.id(`t${i}`); // ids in another order than the object's keys
    const [counts] = TermCounts.pack(dictionary, [doc]);
    for (const [term, n] of Object.entries(doc)) expect(counts!.get(term)).toBe(n);
    expect(counts!.get('t1000')).toBeUndefined();
  });
});

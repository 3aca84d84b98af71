import { describe, expect, it } from 'vitest';
import { referenceTable } from '../train/reference-df.js';
import { REFERENCE_DF } from './reference-df.js';
import { documentFrequencies, idf, PRIOR_DOCS } from './store.js';

describe('medical-answers reference document frequencies', () => {
  it('ships the table the shipped corpus gives (npx tsx eval/reference-df.ts writes it)', () => {
    expect(referenceTable()).toEqual(REFERENCE_DF);
  }, 60_000);

  it('lets a small library weigh a word it lacks as the reference does, not as the rarest word there is', () => {
    // Twelve pages, three of which say "shingles" and none "baby": alone, the library would give
    // "baby" (which a fifth of the reference's pages hold) a higher idf than the title asked about.
    const library = { n: 12, df: { shingl: 3 } };
    expect(REFERENCE_DF.df.babi).toBeGreaterThan(100);
    expect(idf(library, 'shingl')).toBeGreaterThan(idf(library, 'babi'));
    // A word neither holds stays the rarest.
    expect(idf(library, 'zzqx')).toBeGreaterThan(idf(library, 'shingl'));
  });

  it('changes nothing over the reference corpus itself, and gives way to a large library of its own', () => {
    const own = (df: number, n: number) => Math.log(1 + (n - df + 0.5) / (df + 0.5));
    for (const term of ['shingl', 'babi', 'diabet', 'type']) {
      const df = REFERENCE_DF.df[term]!;
      expect(Math.abs(idf({ n: REFERENCE_DF.n, df: { [term]: df } }, term) - own(df, REFERENCE_DF.n))).toBeLessThan(0.01);
    }
    // A clinic's 5,000 pages, every one of which names the clinic: the word says nothing there.
    const big = { n: 5000, df: { clinic: 5000 } };
    expect(idf(big, 'clinic')).toBeLessThan(0.1);
    expect(PRIOR_DOCS).toBeLessThan(1000);
  });

  it('counts documents as ingest does: title, synonyms, lay phrases, body', () => {
    const { n, df } = documentFrequencies(
      [
        { id: 'a', title: 'Shingles', text: 'A painful rash.', synonyms: ['herpes zoster'] },
        { id: 'b', title: 'Chickenpox', text: 'An itchy rash.' },
      ],
      { shingles: ['band of blisters'] },
    );
    expect(n).toBe(2);
    expect(df).toMatchObject({ shingl: 1, rash: 2, zoster: 1, blister: 1, chickenpox: 1 });
  });
});

import { describe, expect, it } from 'vitest';
import { everydayStems } from '../train/everyday-stems.js';
import { EVERYDAY_STEMS } from './everyday-stems.js';
import { REFERENCE_DF } from './reference-df.js';
import { corrections, respell } from './store.js';

describe('medical-answers spelling corrections', () => {
  it('ships the everyday words the training texts give (npx tsx eval/everyday-stems.ts writes them)', () => {
    expect([...EVERYDAY_STEMS]).toEqual(everydayStems());
  }, 60_000);

  it("reads a word no page holds as the library's nearest words, the most frequent first", () => {
    const library = { df: { lupu: 4, arthriti: 9, tetanu: 2, lumpi: 1 } };
    expect(corrections('lupi', library)).toEqual(['lupu', 'lumpi']);
    // Two edits for a long word, one for a short one; nothing under four letters.
    expect(corrections('arthrtiti', library)).toEqual(['arthriti']);
    expect(corrections('tetnu', library)).toEqual(['tetanu']);
    expect(corrections('tnu', library)).toEqual([]);
    expect(corrections('lxpxs', library)).toEqual([]);
  });

  it('leaves alone a word of the reference corpus or of everyday writing that the library lacks', () => {
    // "baby" among a dozen pages about other things, "anyway" anywhere: words, not misspellings.
    expect(REFERENCE_DF.df.babi).toBeGreaterThan(100);
    expect(corrections('babi', { df: { babe: 3 } })).toEqual([]);
    expect(EVERYDAY_STEMS.has('anywai')).toBe(true);
    expect(corrections('anywai', { df: { airwai: 5 } })).toEqual([]);
  });

  it('gives the local embedder the question with each misspelt word as the word meant', () => {
    expect(respell("Is LUPIS contagious? my mom's lupis flared", [['lupi', 'lupu']])).toBe("Is lupu contagious? my mom's lupu flared");
    expect(respell('nothing to change here', [['lupi', 'lupu']])).toBe('nothing to change here');
  });
});

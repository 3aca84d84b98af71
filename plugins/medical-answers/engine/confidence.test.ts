import { describe, expect, it } from 'vitest';
import { fitText, trainingRows } from '../train/text-model.js';
import { CONFIDENCE_WEIGHTS } from './confidence-weights.js';
import { confidenceOf, confidenceParts, healthLogit, retrievalSignals } from './confidence.js';
import type { Hit } from './types.js';
import { settingsSchema } from '../settings.js';

const hit = (over: Partial<Hit>): Hit => ({ docId: 'd1', chunkId: 'c1', title: 'Pinkeye', url: null, source: null, section: 'Overview', text: '', score: 30, bm25f: 30, lexicalRank: 1, vectorRank: 1, coverage: 0.6, titleMatch: 0, ...over });

describe('medical-answers confidence', () => {
  it('ships the text part its training sets give (refit after changing them: train/README.md)', () => {
    expect(fitText(trainingRows())).toEqual(CONFIDENCE_WEIGHTS.text);
  }, 60_000);

  it('reads whether a text is a health question at all', () => {
    for (const text of ['my sons eye is crusty and red, does he need drops', 'how long does strep last', 'is it bad to take ibuprofen every day']) expect(healthLogit(text), text).toBeGreaterThan(0);
    for (const text of ['can i come in at 4 instead', 'do you guys take blue cross', 'thank you!!', 'where do i park']) expect(healthLogit(text), text).toBeLessThan(0);
  });

  it('is surer of a health question than of a clinic errand that finds the same page', () => {
    const hits = [hit({}), hit({ docId: 'd2', score: 20, lexicalRank: 2, vectorRank: 3 })];
    const question = confidenceOf(hits, 'my daughters eye is red and goopy, will it go away on its own');
    const errand = confidenceOf(hits, 'can i move my eye appointment to friday');
    expect(question).toBeGreaterThan(errand);
    expect(confidenceOf([], 'anything')).toBe(0);
  });

  it('gives an errand that names a page little confidence however well the page matches (a product, not a sum)', () => {
    const strong = [hit({ titleMatch: 1, bm25f: 40, coverage: 1 }), hit({ docId: 'd2', score: 5, bm25f: 5, lexicalRank: 2, vectorRank: 3 })];
    const errand = 'is my lisinopril refill ready for pickup at the pharmacy';
    const question = 'can lisinopril give you a dry cough';
    expect(confidenceParts(strong, errand).retrieval).toBe(confidenceParts(strong, question).retrieval);
    expect(confidenceParts(strong, errand).retrieval).toBeGreaterThan(0.9);
    expect(confidenceOf(strong, errand)).toBeLessThan(settingsSchema.parse({}).minConfidence);
    expect(confidenceOf(strong, question)).toBeGreaterThan(settingsSchema.parse({}).minConfidence);
    expect(confidenceParts([], question).retrieval).toBe(0);
  });

  it('reads a lone candidate as no evidence of a margin (lexical-only search over a small library)', () => {
    const margin = (hits: Hit[]) => {
      const [, bm25f, backed] = retrievalSignals(hits);
      return backed! / bm25f!;
    };
    expect(margin([hit({})])).toBe(0.5);
    expect(margin([hit({}), hit({ docId: 'd2', score: 15 })])).toBe(0.5);
    expect(margin([hit({}), hit({ docId: 'd2', score: 3 })])).toBeCloseTo(0.9);
  });

  it("counts a margin only as far as the top page's own match backs it", () => {
    const strong = retrievalSignals([hit({ bm25f: 32 }), hit({ docId: 'd2', score: 15 })]);
    const stray = retrievalSignals([hit({ bm25f: 4 }), hit({ docId: 'd2', score: 15 })]);
    expect(strong[2]).toBeCloseTo(0.5 * 0.8);
    expect(stray[2]).toBeCloseTo(0.5 * 0.1);
  });
});

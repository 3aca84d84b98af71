import { describe, expect, it } from 'vitest';
import { answerUnits, composeAnswer, shippedPairTable, UNIT_FEATURES } from './answer.js';
import { learnPairs, pairScore, parsePairs, serialisePairs, type PairList } from './answer-pairs.js';
import type { Hit } from './types.js';

const list = (question: string[], units: [string[], boolean][]): PairList => ({ question, units: units.map(([stems, good]) => ({ stems, good })) });

describe('learned word pairs of the answer composer', () => {
  it('keeps a pair that joined questions to their answers more than once, and not a word with itself', () => {
    const lists = [
      list(['forev', 'med'], [[['life', 'rest'], true], [['test', 'lab'], false], [['symptom'], false]]),
      list(['forev', 'drug'], [[['life', 'long'], true], [['caus'], false]]),
      // Seen with one question only: that question's, not language.
      list(['catch'], [[['spread', 'contact'], true], [['caus'], false]]),
      list(['forev'], [[['forev', 'life'], false], [['cure'], true]]),
    ];
    const table = learnPairs(lists);
    expect(table.get('forev')?.get('life')).toBeGreaterThan(0);
    expect(table.get('catch')).toBeUndefined();
    expect(table.get('forev')?.get('forev')).toBeUndefined();
    // A pair that goes with answers no more than with any unit is left out.
    expect(table.get('forev')?.get('caus')).toBeUndefined();
    expect(parsePairs(serialisePairs(table))).toEqual(table);
    // Each question stem counts its best pair once.
    const v = table.get('forev')!.get('life')!;
    expect(pairScore(table, ['forev', 'med'], new Set(['life', 'rest']))).toBeCloseTo(v + (table.get('med')?.get('rest') ?? table.get('med')?.get('life') ?? 0));
    expect(pairScore(table, ['unknown'], new Set(['life']))).toBe(0);
  });

  it('scores a unit by the pairs it makes with the question, so an answer in other words than the question leads', () => {
    const text = 'Addison disease is a disorder of the adrenal glands. Lab tests can confirm that you have Addison disease. You will need to take hormone pills for the rest of your life.';
    const hit: Hit = { docId: 'x', chunkId: 'x-0', title: 'Addison Disease', url: null, source: null, section: 'Overview', text, score: 30, bm25f: 30, lexicalRank: 1, vectorRank: 1, coverage: 1, titleMatch: 1, sections: [{ heading: 'Overview', text }] };
    const question = 'my sister has addison disease, will she need meds indefinitely';
    const table = parsePairs('indefinit life 1.5\nindefinit rest 0.5');
    const { units, questionStems } = answerUnits(question, hit, 200, [], table);
    expect(questionStems).toContain('indefinit');
    const pairs = UNIT_FEATURES.indexOf('pairs');
    expect(units.map((u) => u.features[pairs])).toEqual([0, 0, 1.5]);
    const lead = (pairsTable: typeof table) => composeAnswer(question, [hit], { maxChars: 140, minConfidence: 0, pairs: pairsTable })!.text.split('\n')[0];
    expect(lead(table)).toMatch(/^You will need to take hormone pills for the rest of your life/);
    expect(lead(new Map())).not.toMatch(/^You will need/);
    // The shipped table is read from answer-weights.ts.
    expect(shippedPairTable().size).toBeGreaterThan(100);
  });
});

import { describe, expect, it } from 'vitest';
import { errandRows, fitErrands } from '../train/errand-model.js';
import { settingsSchema } from '../settings.js';
import { ERRAND_WEIGHTS } from './errand-weights.js';
import { ERRAND_INTENTS, errandIntent, errandProbabilities } from './errands.js';

describe('medical-answers errand model', () => {
  it('ships the weights its training sets give (refit after changing them: eval/fit-errands.ts --write)', () => {
    expect(fitErrands(errandRows())).toEqual(ERRAND_WEIGHTS);
  }, 60_000);

  it('reads which errand a text is, on texts no training set holds', () => {
    const cases: [string, (typeof ERRAND_INTENTS)[number]][] = [
      ['can you send a refill of my metformin to the cvs on main st', 'refill'],
      ['i need to reschedule my physical to next week', 'appointment'],
      ['did my blood work come back yet', 'results'],
      ['can i pay my bill online', 'billing'],
      ['do you have a spanish speaking doctor', 'service'],
      ['can you ask the nurse to call me back today', 'message'],
      ['thanks so much, you are all wonderful', 'social'],
    ];
    for (const [text, intent] of cases) expect(errandIntent(text), text).toMatchObject({ intent });
  });

  it('gives a probability per intent that sums to one', () => {
    const p = errandProbabilities('hello?');
    expect(p).toHaveLength(ERRAND_INTENTS.length);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    expect(errandIntent('').probability).toBeGreaterThan(0);
  });

  it("refuses a reply for an errand it does not know, naming the key (the tenant's settings fail at start)", () => {
    const result = settingsSchema.safeParse({ errands: { replies: { refils: 'Call the pharmacy.' } } });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain('refils');
    expect(settingsSchema.parse({ errands: { replies: { refill: 'Call the pharmacy.' }, handoff: ['message'] } }).errands).toEqual({ replies: { refill: 'Call the pharmacy.' }, minProbability: 0.7, handoff: ['message'] });
  });
});

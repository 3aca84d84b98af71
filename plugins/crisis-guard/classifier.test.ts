import { describe, expect, it } from 'vitest';
import { shippedModel } from './classifier.js';
import { detectCrisis } from './detector.js';
import { fit, toModel, trainingRows } from './train/train.js';

describe('crisis classifier', () => {
  it('ships the model its training data and rules give (retrain after changing either: train/README.md)', () => {
    const shipped = shippedModel();
    expect(shipped).not.toBeNull();
    const { rows, files } = trainingRows();
    const retrained = toModel(fit(rows), shipped!.threshold, files);
    expect(retrained.trainedOn).toEqual(shipped!.trainedOn);
    expect(Object.keys(retrained.weights).length).toBe(Object.keys(shipped!.weights).length);
    expect(retrained).toEqual(shipped);
  }, 60_000);

  it('finds danger in words no rule lists, and names its category', () => {
    const cases: [string, string][] = [
      ['the world would be quieter without me in it and tonight i mean to make it so', 'suicidal_ideation'],
      ['i sat on the roof ledge for an hour tonight and im still up here', 'suicidal_ideation'],
      ['my husband ate some of the wild mushrooms he picked and now he is sweating and cant stop vomiting', 'overdose_poisoning'],
    ];
    for (const [text, category] of cases) {
      expect(detectCrisis(text, { model: null }).crisis, text).toBe(false);
      const verdict = detectCrisis(text);
      expect(verdict, text).toMatchObject({ crisis: true, categories: [category] });
      expect(verdict.ruleIds).toContain('classifier');
      expect(verdict.modelScore).toBeGreaterThanOrEqual(shippedModel()!.threshold);
    }
  });

  it('keeps everyday messages calm and reports its score', () => {
    for (const text of ['what should i eat after a stomach bug', 'i feel sad since my divorce, any tips for sleeping', 'my knee has been sore since yesterdays run']) {
      const verdict = detectCrisis(text);
      expect(verdict.crisis, text).toBe(false);
      expect(verdict.modelScore).toBeLessThan(shippedModel()!.threshold);
    }
  });

  it('respects a tenant that acts on some categories only', () => {
    const text = 'i sat on the roof ledge for an hour tonight and im still up here';
    expect(detectCrisis(text, { categories: ['stroke_signs'] }).crisis).toBe(false);
    expect(detectCrisis(text, { categories: ['suicidal_ideation'] }).crisis).toBe(true);
  });

  it('never keeps the text in its verdict', () => {
    expect(JSON.stringify(detectCrisis('i sat on the roof ledge for an hour tonight and im still up here'))).not.toContain('roof');
  });
});

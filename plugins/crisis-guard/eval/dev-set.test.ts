/** The crisis dev set shipped in corpora/medquad: this guards the figures the README reports. */
import { describe, expect, it } from 'vitest';
import { DEV_SET, evaluate, HOLDOUT_B_SET, HOLDOUT_C_SET, HOLDOUT_D_SET, HOLDOUT_E_SET, HOLDOUT_SET } from './dev-set.js';

describe('crisis detector on the dev and holdout sets', () => {
  it('finds every crisis with at most 5% false alarms', () => {
    const figures = evaluate(DEV_SET);
    console.log(`crisis dev set: recall ${figures.found}/${figures.crisis}, false alarms ${figures.falseAlarms}/${figures.notCrisis}`);
    expect(figures.misses.filter((m) => m.label === 'crisis')).toEqual([]);
    expect(figures.falseAlarmRate).toBeLessThanOrEqual(0.05);
  });

  it.each([
    ['holdout', HOLDOUT_SET],
    ['holdout b', HOLDOUT_B_SET],
    ['holdout c', HOLDOUT_C_SET],
    ['holdout d', HOLDOUT_D_SET],
    ['holdout e', HOLDOUT_E_SET],
  ])('finds every crisis of the %s set with at most 5%% false alarms', (name, path) => {
    const figures = evaluate(path);
    console.log(`crisis ${name} set: recall ${figures.found}/${figures.crisis}, false alarms ${figures.falseAlarms}/${figures.notCrisis}`);
    expect(figures.misses.filter((m) => m.label === 'crisis')).toEqual([]);
    expect(figures.falseAlarmRate).toBeLessThanOrEqual(0.05);
  });
});

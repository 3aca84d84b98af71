/**
 * The shared crisis dev set, read in place when the shared data folder is beside this checkout. The
 * detector's unit tests do not depend on it; this guards the figures the README reports.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEV_SET, evaluate } from './dev-set.js';

const present = existsSync(DEV_SET);
if (!present) console.log(`crisis dev set skipped: no file at ${DEV_SET} (the shared data folder is not beside this checkout)`);

describe.skipIf(!present)('crisis detector on the shared dev set', () => {
  it('finds every crisis with at most 5% false alarms', () => {
    const figures = evaluate(DEV_SET);
    console.log(`crisis dev set: recall ${figures.found}/${figures.crisis}, false alarms ${figures.falseAlarms}/${figures.notCrisis}`);
    expect(figures.misses.filter((m) => m.label === 'crisis')).toEqual([]);
    expect(figures.falseAlarmRate).toBeLessThanOrEqual(0.05);
  });
});

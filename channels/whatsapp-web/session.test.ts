import { describe, expect, it } from 'vitest';
import { restartDelay } from './session.js';

describe('restartDelay', () => {
  it('doubles from the initial delay and stops at the maximum', () => {
    const top = () => 1;
    expect([0, 1, 2, 3, 4, 5, 10, 60].map((n) => restartDelay(n, 2_000, 60_000, top))).toEqual([2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('spreads restarts between half and all of the delay', () => {
    expect(restartDelay(2, 2_000, 60_000, () => 0)).toBe(4_000);
    expect(restartDelay(2, 2_000, 60_000, () => 0.5)).toBe(6_000);
  });
});

import { describe, expect, it } from 'vitest';
import { Batcher } from '../core/storage/batcher.js';

/** A statement whose batches are recorded and which finishes when the test says so. */
function gatedRun() {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const run = (items: number[]) =>
    new Promise<number[]>((resolve) => {
      batches.push(items);
      gates.push(() => resolve(items.map((i) => i * 10)));
    });
  /** Lets the oldest unfinished batch finish, then waits for the batcher to start the next. */
  const release = async () => {
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { batches, run, release };
}

describe('Batcher', () => {
  it('runs a call at once when idle, and the calls that arrive meanwhile together in the next batch', async () => {
    const { batches, run, release } = gatedRun();
    const batcher = new Batcher(run);
    const first = batcher.submit(1);
    expect(batches).toEqual([[1]]);
    const rest = [2, 3, 4].map((i) => batcher.submit(i));
    // One batch in flight: the three wait for it rather than starting a second statement beside it.
    expect(batches).toEqual([[1]]);
    await release();
    expect(await first).toBe(10);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    await release();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  });

  it('keeps as many batches in flight as it is given, and no batch larger than its maximum', async () => {
    const { batches, run, release } = gatedRun();
    const batcher = new Batcher(run, { maxBatch: 2, maxInFlight: 2 });
    const all = [1, 2, 3, 4, 5, 6].map((i) => batcher.submit(i));
    expect(batches).toEqual([[1], [2]]);
    await release();
    expect(batches).toEqual([[1], [2], [3, 4]]);
    await release();
    expect(batches).toEqual([[1], [2], [3, 4], [5, 6]]);
    await release();
    await release();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('retries a failing batch item by item, so only the bad item fails', async () => {
    const failures: number[] = [];
    const batcher = new Batcher(async (items: number[]) => {
      if (items.includes(-1)) throw new Error('bad row');
      return items.map((i) => i * 10);
    }, { onBatchError: (_error, size) => failures.push(size) });
    const gate = batcher.submit(0);
    const calls = [7, -1, 8].map((i) => batcher.submit(i).then((v) => ({ v }), (e: Error) => ({ e: e.message })));
    expect(await gate).toBe(0);
    expect(await Promise.all(calls)).toEqual([{ v: 70 }, { e: 'bad row' }, { v: 80 }]);
    expect(failures).toEqual([3]);
  });
});

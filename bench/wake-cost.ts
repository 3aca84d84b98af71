/**
 * `npx tsx bench/wake-cost.ts [--external]`: what one database round trip costs when it comes alone.
 * A trivial prepared `SELECT 1` through the gateway's own path (a pg pool on the embedded database's
 * wire server, or PostgreSQL with `--external`), sent back to back, then after 1, 5 and 20 ms of
 * unrelated computation (arithmetic that touches no memory) and after a 20 ms sleep. The same gaps
 * before a small piece of JavaScript (a JSON round trip) are the control. At a fixed rate every message
 * arrives alone and its statements run one at a time, so this is the floor under the fixed-rate
 * latencies (bench/README.md, step 8).
 */
import { openMessageDatabase } from './message-database.js';

const external = process.argv.includes('--external');
const ROUNDS = Number(process.env.WAKE_ROUNDS ?? 200);

/** Busy for `ms` without touching memory or calling the kernel. */
function compute(ms: number): void {
  const until = performance.now() + ms;
  let x = 1;
  while (performance.now() < until) for (let i = 0; i < 10_000; i++) x = (x * 1_103_515_245 + 12_345) | 0;
  if (x === 42) console.log(''); // keeps the loop from being optimised away
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

async function measure(label: string, gap: (() => Promise<void> | void) | undefined, work: () => Promise<unknown> | unknown): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    if (gap) await gap();
    const t = performance.now();
    await work();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return `  ${label.padEnd(34)} p50 ${percentile(times, 0.5).toFixed(3)} ms  p90 ${percentile(times, 0.9).toFixed(3)} ms`;
}

const { db, close } = await openMessageDatabase({ external, poolSize: 1 });
try {
  const select = () => db.pool.query({ name: 'wake_cost_select', text: 'SELECT 1' });
  const payload = { from: '+15550000000', text: 'what are your hours?', media: [], attributes: { segments: 1 } };
  const js = () => JSON.parse(JSON.stringify(payload));
  for (let i = 0; i < 500; i++) await select(); // warm: prepared, compiled, cached
  const gaps: [string, (() => Promise<void> | void) | undefined][] = [
    ['back to back', undefined],
    ['after 1 ms of computation', () => compute(1)],
    ['after 5 ms of computation', () => compute(5)],
    ['after 20 ms of computation', () => compute(20)],
    ['after a 20 ms sleep', () => new Promise((r) => setTimeout(r, 20))],
  ];
  console.log(`one round trip, ${external ? 'PostgreSQL (pg client)' : 'embedded PGlite (pg client on its wire server)'}, ${ROUNDS} rounds each:`);
  for (const [label, gap] of gaps) console.log(await measure(`SELECT 1 ${label}`, gap, select));
  console.log('control, a JSON round trip of a small message in JavaScript:');
  for (const [label, gap] of gaps) console.log(await measure(`JSON ${label}`, gap, js));
} finally {
  await close();
}

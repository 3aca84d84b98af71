/**
 * `npx tsx bench/wake-cost.ts [--external]`: what one database round trip costs when it comes alone.
 * A trivial prepared `SELECT 1` through the gateway's own path (a pg pool on the embedded database's
 * wire server, or PostgreSQL with `--external`), sent back to back, then after 1, 5 and 20 ms of
 * unrelated computation (arithmetic that touches no memory) and after a 20 ms sleep. The same gaps
 * before a small piece of JavaScript (a JSON round trip) are the control. At a fixed rate every message
 * arrives alone and its statements run one at a time, so this is the floor under the fixed-rate
 * latencies (bench/README.md, step 8).
 */
import { fileURLToPath } from 'node:url';
import { openMessageDatabase } from './message-database.js';
import { percentile } from './paced.js';

/** Busy for `ms` without touching memory or calling the kernel. */
function compute(ms: number): void {
  const until = performance.now() + ms;
  let x = 1;
  while (performance.now() < until) for (let i = 0; i < 10_000; i++) x = (x * 1_103_515_245 + 12_345) | 0;
  if (x === 42) console.log(''); // keeps the loop from being optimised away
}

/** p50 and p90 (ms) of `work`, each call after `gap`. */
async function timed(rounds: number, gap: (() => Promise<unknown> | void) | undefined, work: () => Promise<unknown> | unknown): Promise<{ p50: number; p90: number }> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    if (gap) await gap();
    const t = performance.now();
    await work();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p90: percentile(times, 90) };
}

const GAPS: [string, (() => Promise<unknown> | void) | undefined][] = [
  ['back to back', undefined],
  ['after 1 ms of computation', () => compute(1)],
  ['after 5 ms of computation', () => compute(5)],
  ['after 20 ms of computation', () => compute(20)],
  ['after a 20 ms sleep', () => new Promise((r) => setTimeout(r, 20))],
];

export interface WakeCost {
  /** Per gap (as labelled above): p50/p90 of the statement, and of the JavaScript control. */
  rows: { gap: string; select: { p50: number; p90: number }; js: { p50: number; p90: number } }[];
}

/**
 * Measures one backend (`external`: PostgreSQL at BENCH_PG_URL, else an embedded scratch database);
 * `gaps`: only these (labels as above).
 */
export async function wakeCost(external: boolean, { rounds = 200, gaps }: { rounds?: number; gaps?: string[] } = {}): Promise<WakeCost> {
  const { db, close } = await openMessageDatabase({ external, poolSize: 1 });
  try {
    const select = () => db.pool.query({ name: 'wake_cost_select', text: 'SELECT 1' });
    const payload = { from: '+15550000000', text: 'what are your hours?', media: [], attributes: { segments: 1 } };
    const js = () => JSON.parse(JSON.stringify(payload));
    for (let i = 0; i < 500; i++) await select(); // warm: prepared, compiled, cached
    const rows: WakeCost['rows'] = [];
    for (const [gap, wait] of GAPS.filter(([g]) => !gaps || gaps.includes(g))) rows.push({ gap, select: await timed(rounds, wait, select), js: await timed(rounds, wait, js) });
    return { rows };
  } finally {
    await close();
  }
}

/** The two gaps the bench's fixed-rate section prints. */
export const BENCH_GAPS = ['back to back', 'after 20 ms of computation'];

/** One line for the bench's fixed-rate section: the statement back to back and after 20 ms of computation. */
export function wakeCostLine(cost: WakeCost): string {
  const [alone, cold] = BENCH_GAPS.map((gap) => cost.rows.find((r) => r.gap === gap)!.select.p50) as [number, number];
  return `one SELECT 1 through the gateway's pool, p50: ${alone.toFixed(2)} ms back to back, ${cold.toFixed(2)} ms after 20 ms of other computation (${(cold / alone).toFixed(1)}x: the caches a message that comes alone finds; bench/wake-cost.ts)`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const external = process.argv.includes('--external');
  const rounds = Number(process.env.WAKE_ROUNDS ?? 200);
  const { rows } = await wakeCost(external, { rounds });
  const fmt = (label: string, t: { p50: number; p90: number }) => `  ${label.padEnd(34)} p50 ${t.p50.toFixed(3)} ms  p90 ${t.p90.toFixed(3)} ms`;
  console.log(`one round trip, ${external ? 'PostgreSQL (pg client)' : 'embedded PGlite (pg client on its wire server)'}, ${rounds} rounds each:`);
  for (const r of rows) console.log(fmt(`SELECT 1 ${r.gap}`, r.select));
  console.log('control, a JSON round trip of a small message in JavaScript:');
  for (const r of rows) console.log(fmt(`JSON ${r.gap}`, r.js));
}

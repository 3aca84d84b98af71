/**
 * `npx tsx bench/explain-plans.ts [count] [--external] [--no-analyze]`: the plans of the statements every message runs
 * (record, finish), on a database holding `count` stored messages (default 200,000), embedded PGlite
 * or (with --external) a scratch database on BENCH_PG_URL. Each statement runs under
 * `EXPLAIN (ANALYZE, BUFFERS)` through the real message-store functions, so a plan that scans the
 * stored messages (a sequential scan or a hash join over parley_inbound) shows up with its row counts.
 */
import { finishInboundMany, recordInboundMany } from '../core/storage/message-store.js';

type Queryable = Parameters<typeof recordInboundMany>[0];
import { preloadMessages } from './stored-data.js';
import { openMessageDatabase } from './message-database.js';

const count = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 200_000);
const external = process.argv.includes('--external');
/** --no-analyze: plans as the embedded database made them before the maintenance job (never analyzed). */
const analyze = !process.argv.includes('--no-analyze');
const { db, close } = await openMessageDatabase({ external, poolSize: 2 });
try {
  await preloadMessages(db.pool, count);
  if (analyze) await db.pool.query('VACUUM (ANALYZE)');

  /** Runs each statement as EXPLAIN ANALYZE and prints the plan; the statement's effects happen too. */
  const explaining: Queryable = {
    async query(statement: string | { text: string; values?: unknown[] }, values?: unknown[]) {
      // The store's statements are named (prepared); EXPLAIN runs their text unnamed.
      const sql = typeof statement === 'string' ? statement : statement.text;
      const params = typeof statement === 'string' ? values : statement.values;
      const { rows } = await db.pool.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) ${sql}`, params);
      console.log(rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n'), '\n');
      return db.pool.query(sql, params) as never;
    },
  } as Queryable;
  const batch = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => ({
      tenantId: 'demo',
      draft: { channel: 'twilio-sms', from: `+1555${String(i).padStart(7, '0')}`, to: '+15558880001', text: 'what are your hours?', providerMessageId: `SMexplain${tag}${i}` },
    }));
  for (const n of [1, 8]) {
    console.log(`=== ${db.kind}, ${count.toLocaleString('en')} stored, record ${n} message(s)`);
    // EXPLAIN ANALYZE runs the statement; running it again then records duplicates, as a retried webhook would.
    await recordInboundMany(explaining, batch(n, `a${n}-`));
    const fresh = await recordInboundMany(db.pool, batch(n, `b${n}-`));
    console.log(`=== ${db.kind}, finish ${n} message(s)`);
    await finishInboundMany(
      explaining,
      fresh.flatMap((r) =>
        r.duplicate
          ? []
          : [{ tenantId: 'demo', inbound: r.message, claim: r.claim, status: 'processed' as const, stopReason: null, error: null, stages: [], annotations: {}, replies: [{ text: 'We are open.' }], via: 'inline' as const }],
      ),
    );
  }
} finally {
  await close();
}

/**
 * `npx tsx bench/maintenance-cost.ts [--external] [--messages=N]`: how long `ANALYZE` (and, once,
 * `VACUUM`) of each table every message writes take (wall time: on PGlite each one holds the single session, and
 * every message waits), on a scratch database holding N stored messages (default 20,000, bulk-loaded
 * as the bench's "stored data" section does), with the statistics targets of migration
 * 009_hot_table_statistics and then with PostgreSQL's default target restored on every column.
 */
import { openMessageDatabase } from './message-database.js';
import { preloadMessages } from './stored-data.js';
import { HOT_TABLES } from '../core/storage/maintenance.js';

const external = process.argv.includes('--external');
const MESSAGES = Number(process.argv.find((a) => a.startsWith('--messages='))?.slice('--messages='.length) ?? 20_000);
const RUNS = 3;

const { db, close } = await openMessageDatabase({ external, poolSize: 1 });
try {
  await preloadMessages(db.pool, MESSAGES);
  // Dead rows and changes as the per-message updates leave them: a tenth of the messages processed again.
  await db.pool.query(`UPDATE parley_inbound SET processed_at = now() WHERE id IN (SELECT id FROM parley_inbound LIMIT ${Math.ceil(MESSAGES / 10)})`);
  const time = async (sql: string) => {
    const t0 = performance.now();
    await db.pool.query(sql);
    return Math.round(performance.now() - t0);
  };
  // VACUUM reads no statistics target: timed once, on the dead rows of the update.
  const vacuum: string[] = [];
  for (const table of HOT_TABLES) vacuum.push(`${table} ${await time(`VACUUM ${table}`)} ms`);
  console.log(`${db.kind}, VACUUM after the update: ${vacuum.join(', ')}`);
  const measure = async (label: string) => {
    console.log(`${db.kind}, ${MESSAGES.toLocaleString('en')} messages stored, ${label}:`);
    for (const table of HOT_TABLES) {
      const analyze: number[] = [];
      for (let i = 0; i < RUNS; i++) analyze.push(await time(`ANALYZE ${table}`));
      console.log(`  ${table.padEnd(22)} ANALYZE ${analyze.join(', ')} ms`);
    }
  };
  await measure('statistics targets of 009_hot_table_statistics (0 on payload columns, 10 on the rest)');
  const { rows } = await db.pool.query<{ table: string; column: string }>(
    `SELECT c.relname AS table, a.attname AS column FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relname = ANY($1::text[]) AND c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped`,
    [HOT_TABLES],
  );
  for (const r of rows) await db.pool.query(`ALTER TABLE ${r.table} ALTER COLUMN "${r.column}" SET STATISTICS -1`);
  await measure('PostgreSQL\'s default statistics target (100) on every column');
} finally {
  await close();
}

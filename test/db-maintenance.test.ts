/**
 * The embedded database's upkeep: PGlite runs single-user and never autovacuums, so the kernel's
 * `db-maintenance` job vacuums and analyzes the tables every message writes once they pass a
 * threshold, and `parley_db_dead_rows{table}` reports what is left to clean on both backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';
import { TEST_BACKEND, externalServices } from './backend.js';
import { HOT_TABLES, autovacuumRuns, dueFor, hotTableStats, isDue } from '../core/storage/maintenance.js';

const THRESHOLD = 40;
let gw: TestGateway;
const skip = TEST_BACKEND === 'external' ? await externalServices() : null;

beforeAll(async () => {
  if (skip) return;
  gw = await startTestGateway({
    config: { ...twoTenants({ pipeline: ['probe.echo'] }), storage: { maintenance: { cron: '*/1 * * * * *', deadRows: THRESHOLD } } },
    catalogue,
    logLevel: 'warn',
  });
  await sendMany('hello', 3 * THRESHOLD);
});

/** Each message writes and deletes a claim, updates its inbound and outbox rows: dead rows on every table. */
async function sendMany(prefix: string, count: number): Promise<void> {
  const sent = await Promise.all(
    Array.from({ length: count }, (_, i) => gw.send('acme', { from: `+1555000${String(i % 7).padStart(4, '0')}`, text: `${prefix} ${i}`, id: `maint-${prefix}-${i}` }, KEYS.acme)),
  );
  expect(sent.map((s) => s.status)).toEqual(sent.map(() => 200));
}
afterAll(() => gw?.stop({ cleanup: true }));

interface Stat {
  table: string;
  dead: number;
  vacuums: number;
  analyzes: number;
}
const stats = async (): Promise<Stat[]> =>
  (
    await gw.gateway.db.pool.query<Stat>(
      `SELECT relname AS table, n_dead_tup::int AS dead, vacuum_count::int AS vacuums, analyze_count::int AS analyzes
         FROM pg_stat_user_tables WHERE relname = ANY($1::text[])`,
      [HOT_TABLES],
    )
  ).rows;

/**
 * The job counts as completed once it has gone through every table, a moment after the claims table's
 * vacuum shows in the statistics: the metrics, read until they say so.
 */
const JOB_DONE = /parley_jobs_completed_total\{queue="db-maintenance"\} [1-9]/;
const jobCompleted = () => until(() => gw.metrics(), (text) => JOB_DONE.test(text));

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 300 && !done(value); i++) {
    await new Promise((r) => setTimeout(r, 100));
    value = await read();
  }
  return value;
}

describe('a table is due for vacuum', () => {
  it('once its dead rows pass the threshold, or a fifth of its live rows', () => {
    const table = { table: 't', liveRows: 100, deadRows: 0, modifiedSinceAnalyze: 0 };
    expect(isDue({ ...table, deadRows: 999 }, 1000)).toBe(false);
    expect(isDue({ ...table, deadRows: 1000 }, 1000)).toBe(true);
    expect(isDue({ ...table, liveRows: 100_000, deadRows: 19_999 }, 1000)).toBe(false);
    expect(isDue({ ...table, liveRows: 100_000, deadRows: 20_000 }, 1000)).toBe(true);
  });

  it('once the rows changed since its last analyze pass the threshold (its row estimates are stale)', () => {
    expect(isDue({ table: 't', liveRows: 500, deadRows: 0, modifiedSinceAnalyze: 1000 }, 1000)).toBe(true);
  });

  it('for each of vacuum and analyze on its own: a table only read more rarely is not analyzed with every vacuum', () => {
    const table = { table: 't', liveRows: 100_000, deadRows: 0, modifiedSinceAnalyze: 0 };
    expect(dueFor({ ...table, deadRows: 20_000, modifiedSinceAnalyze: 9_999 }, 1000)).toEqual({ vacuum: true, analyze: false });
    expect(dueFor({ ...table, deadRows: 19_999, modifiedSinceAnalyze: 10_000 }, 1000)).toEqual({ vacuum: false, analyze: true });
    expect(dueFor({ ...table, deadRows: 20_000, modifiedSinceAnalyze: 20_000 }, 1000)).toEqual({ vacuum: true, analyze: true });
  });
});

describe.skipIf(skip)(`dead rows on the ${TEST_BACKEND} backend`, () => {
  it('are reported for every table a message writes', async () => {
    const metrics = await gw.metrics();
    for (const table of HOT_TABLES) expect(metrics).toMatch(new RegExp(`parley_db_dead_rows\\{table="${table}"\\} \\d+`));
  });

  it.runIf(TEST_BACKEND === 'embedded')('are vacuumed away by the maintenance job, and the tables analyzed', async () => {
    const claims = await until(
      async () => (await stats()).find((s) => s.table === 'parley_inbound_claims')!,
      (s) => s.vacuums > 0 && s.analyzes > 0 && s.dead < THRESHOLD,
    );
    expect(claims).toMatchObject({ vacuums: expect.any(Number), analyzes: expect.any(Number) });
    expect(claims.vacuums).toBeGreaterThan(0);
    expect(claims.analyzes).toBeGreaterThan(0);
    expect(claims.dead).toBeLessThan(THRESHOLD);
    const inbound = (await stats()).find((s) => s.table === 'parley_inbound')!;
    expect(inbound.analyzes).toBeGreaterThan(0);
    const metrics = await jobCompleted();
    expect(metrics).toMatch(JOB_DONE);
    // How long each statement held the single session, for the operator.
    expect(metrics).toMatch(/parley_db_maintenance_seconds_count\{[^}]*table="parley_inbound_claims"[^}]*operation="vacuum"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/parley_db_maintenance_seconds_count\{[^}]*table="parley_inbound"[^}]*operation="analyze"[^}]*\} [1-9]/);
  });

  // ANALYZE samples 300 rows per unit of a table's largest statistics target and computes statistics
  // for every column: the hot tables keep a small target, and none on their payload columns.
  it('keeps the statistics of the hot tables to their keys and states, so ANALYZE stays cheap', async () => {
    const { rows } = await gw.gateway.db.pool.query<{ table: string; column: string; type: string; target: number | null }>(
      `SELECT c.relname AS table, a.attname AS column, t.typname AS type, a.attstattarget::int AS target
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
        WHERE c.relname = ANY($1::text[]) AND c.relnamespace = current_schema()::regnamespace AND a.attnum > 0 AND NOT a.attisdropped`,
      [HOT_TABLES],
    );
    expect(new Set(rows.map((r) => r.table))).toEqual(new Set(HOT_TABLES));
    // A column added later without a target (-1, or NULL from PostgreSQL 17) would bring back the default sample.
    expect(rows.filter((r) => r.target === null || r.target < 0 || r.target > 10).map((r) => `${r.table}.${r.column}`)).toEqual([]);
    expect(rows.filter((r) => r.type === 'jsonb' || r.column === 'body').every((r) => r.target === 0)).toBe(true);
    await gw.gateway.db.pool.query('ANALYZE parley_inbound');
    const { rows: analyzed } = await gw.gateway.db.pool.query<{ column: string }>(`SELECT attname AS column FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'parley_inbound'`);
    const columns = analyzed.map((r) => r.column);
    expect(columns).toEqual(expect.arrayContaining(['conversation_id', 'provider_message_id', 'status']));
    expect(columns).not.toContain('raw');
    expect(columns).not.toContain('body');
  });

  it.runIf(TEST_BACKEND === 'embedded')('keeps the claims table bounded under further load', async () => {
    const before = (await stats()).find((s) => s.table === 'parley_inbound_claims')!.vacuums;
    await sendMany('again', 2 * THRESHOLD);
    const claims = await until(
      async () => (await stats()).find((s) => s.table === 'parley_inbound_claims')!,
      (s) => s.vacuums > before && s.dead < THRESHOLD,
    );
    expect(claims.vacuums).toBeGreaterThan(before);
    expect(claims.dead).toBeLessThan(THRESHOLD);
  });

  // A PostgreSQL server may have autovacuum switched off (this machine's has): the kernel's job runs there
  // too, else the claims table grows a dead row per message without end. With autovacuum on, it does not.
  it.runIf(TEST_BACKEND === 'external')('are vacuumed by the kernel on a PostgreSQL whose autovacuum is off, and left to autovacuum otherwise', async () => {
    if (await autovacuumRuns(gw.gateway.db.pool)) {
      expect(await gw.metrics()).not.toMatch(JOB_DONE);
      return;
    }
    const claims = await until(
      async () => (await stats()).find((s) => s.table === 'parley_inbound_claims')!,
      (s) => s.vacuums > 0 && s.dead < THRESHOLD,
    );
    expect(claims.vacuums).toBeGreaterThan(0);
    expect(claims.dead).toBeLessThan(THRESHOLD);
    expect(await jobCompleted()).toMatch(JOB_DONE);
  });

  // PGlite opens with its statistics counters empty (as pg_stat_reset leaves them): a table's size must
  // still scale its threshold, or a restart sends the largest tables to VACUUM after a few changes.
  it.runIf(TEST_BACKEND === 'embedded')('scales the threshold by the rows a table holds after the statistics are reset', async () => {
    const { rows } = await gw.gateway.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM parley_inbound');
    await gw.gateway.db.pool.query('SELECT pg_stat_reset()');
    const inbound = (await hotTableStats(gw.gateway.db.pool)).find((t) => t.table === 'parley_inbound')!;
    expect((await stats()).find((s) => s.table === 'parley_inbound')!.vacuums).toBe(0);
    expect(inbound.liveRows).toBeGreaterThanOrEqual(3 * THRESHOLD);
    expect(inbound.liveRows).toBeLessThanOrEqual(rows[0]!.n);
  });
});

/**
 * Upkeep of the tables every message writes. PGlite runs PostgreSQL single-user, where autovacuum
 * never runs: without this job the claims, inbound and outbox tables keep every dead row version
 * (each message inserts and deletes a claim, updates its inbound row and outbox row) and their
 * planner statistics stay those of an empty table, so scans and plans grow with the data. On the
 * embedded backend the kernel schedules `VACUUM` and `ANALYZE` of each hot table that passed a threshold;
 * PostgreSQL's own autovacuum does it on a server, unless it is switched off there, when the kernel's
 * job runs on the server too (said at start). Both backends report dead rows as a metric.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { ScheduleDefinition } from '../plugin.js';

/** The tables written on every message: claims, inbound, outbox, outbox events, conversations. */
export const HOT_TABLES = ['parley_inbound_claims', 'parley_inbound', 'parley_outbox', 'parley_outbox_events', 'parley_conversations'] as const;

export interface TableStats {
  table: string;
  liveRows: number;
  deadRows: number;
  /** Rows inserted, updated or deleted since the table was last analyzed. */
  modifiedSinceAnalyze: number;
}

/**
 * Row counts from `pg_stat_user_tables` (PostgreSQL reports them about a second late). Live rows are
 * also read from the catalogue (`pg_class.reltuples`, which vacuum and analyze store with the table):
 * PGlite starts with its statistics counters empty on every open, so `n_live_tup` says 0 for a table
 * of a million rows until that table is vacuumed again, and a threshold scaled by it would send the
 * largest tables to `VACUUM (ANALYZE)` after the first thousand changes of every restart (seconds of
 * the single session each, bench/README.md step 6). Autovacuum scales by `reltuples` for the same reason.
 */
export async function hotTableStats(db: pg.Pool): Promise<TableStats[]> {
  const { rows } = await db.query<{ table: string; live: string; dead: string; modified: string }>(
    `SELECT s.relname AS table, GREATEST(s.n_live_tup, c.reltuples::bigint) AS live, s.n_dead_tup AS dead, s.n_mod_since_analyze AS modified
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])`,
    [HOT_TABLES],
  );
  return rows.map((r) => ({ table: r.table, liveRows: Number(r.live), deadRows: Number(r.dead), modifiedSinceAnalyze: Number(r.modified) }));
}

/**
 * Whether a table is due: its dead rows passed `deadRows`, or, like autovacuum's scale factors, a
 * fifth of its live rows (dead) or a tenth (changed since the last analyze, which keeps row
 * estimates, and so the plans, in step with the data).
 */
export function isDue(stats: TableStats, deadRows: number): boolean {
  const due = dueFor(stats, deadRows);
  return due.vacuum || due.analyze;
}

/** What a table is due for: vacuum (dead rows), analyze (rows changed since the last analyze), or both. */
export function dueFor(stats: TableStats, deadRows: number): { vacuum: boolean; analyze: boolean } {
  return { vacuum: stats.deadRows >= Math.max(deadRows, stats.liveRows * 0.2), analyze: stats.modifiedSinceAnalyze >= Math.max(deadRows, stats.liveRows * 0.1) };
}

/**
 * Vacuums and analyzes the hot tables that are due; returns the tables it cleaned. Vacuum and analyze
 * are separate statements, each only when due: on PGlite each holds the single session, and messages
 * that arrive meanwhile run between two statements, so the longest wait is one statement, not a
 * table's both. `timed`: how long each statement held the database.
 */
export async function vacuumHotTables(db: pg.Pool, deadRows: number, timed?: (table: string, operation: 'vacuum' | 'analyze', seconds: number) => void): Promise<{ vacuumed: string[] }> {
  const due = (await hotTableStats(db)).map((t) => ({ table: t.table, ...dueFor(t, deadRows) })).filter((t) => t.vacuum || t.analyze);
  // One statement at a time: on PGlite each holds the single session (and the event loop).
  for (const { table, vacuum, analyze } of due) {
    for (const operation of [...(vacuum ? (['vacuum'] as const) : []), ...(analyze ? (['analyze'] as const) : [])]) {
      const t0 = performance.now();
      await db.query(`${operation.toUpperCase()} ${table}`);
      timed?.(table, operation, (performance.now() - t0) / 1000);
    }
  }
  return { vacuumed: due.map((t) => t.table) };
}

/**
 * Whether PostgreSQL's autovacuum keeps this server's tables: it needs `autovacuum` and `track_counts`
 * both on. A server with it switched off gets the embedded database's job instead.
 */
export async function autovacuumRuns(db: pg.Pool): Promise<boolean> {
  const { rows } = await db.query<{ runs: boolean }>(`SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on' AS runs`);
  return rows[0]?.runs ?? true;
}

export interface MaintenanceSettings {
  /** When the job checks the tables (cron; six fields put seconds first). */
  cron: string;
  /** Dead (or changed, for analyze) rows that make a table due, at least. */
  deadRows: number;
}

/** The kernel's recurring maintenance job for the embedded database; `registry` gets `parley_db_maintenance_seconds{table}`. */
export function maintenanceSchedule(db: pg.Pool, settings: MaintenanceSettings, registry?: Registry): ScheduleDefinition {
  const held = registry
    ? new Histogram({
        name: 'parley_db_maintenance_seconds',
        help: 'How long one maintenance statement (vacuum or analyze of a hot table) held the embedded database, by table and operation: messages wait meanwhile',
        labelNames: ['table', 'operation'] as const,
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      })
    : undefined;
  return { name: 'db-maintenance', cron: settings.cron, attempts: 1, process: () => vacuumHotTables(db, settings.deadRows, held && ((table, operation, seconds) => held.observe({ table, operation }, seconds))) };
}

/** `parley_db_dead_rows{table}`, read from the database when scraped. */
export function registerDeadRowsMetric(registry: Registry, db: () => pg.Pool, log: Logger): void {
  new Gauge({
    name: 'parley_db_dead_rows',
    help: 'Dead row versions in the tables written on every message, by table (from pg_stat_user_tables; vacuum removes them)',
    labelNames: ['table'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      try {
        for (const t of await hotTableStats(db())) this.set({ table: t.table }, t.deadRows);
      } catch (error) {
        // The rest of /metrics still answers while the database is unreachable (readiness reports it).
        log.warn({ err: error }, 'reading dead rows for parley_db_dead_rows failed');
      }
    },
  });
}

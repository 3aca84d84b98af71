/**
 * A scratch database with the tables every message touches (the kernel's and the twilio-sms segment
 * ledger), embedded in a temporary directory or (external) a fresh database on BENCH_PG_URL, for the
 * scripts that measure the per-message statements alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDatabase, type Database } from '../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../core/storage/migrations.js';
import { coreMigrations } from '../core/storage/schema.js';
import { ledgerMigrations } from '../channels/twilio-sms/ledger.js';
import { freshDatabase } from '../test/backend.js';

export async function openMessageDatabase(opts: { external: boolean; poolSize: number }): Promise<{ db: Database; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-db-'));
  const scratch = opts.external ? await freshDatabase(process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test') : undefined;
  const db = await openDatabase({ databaseUrl: scratch?.url, dataDir: dir, poolSize: opts.poolSize, log: pino({ level: 'warn' }) });
  const close = async () => {
    await db.close();
    await scratch?.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ensureMigrationTable(db.pool);
    await applyMigrations(db.pool, 'core', coreMigrations);
    await applyMigrations(db.pool, 'twilio-sms', ledgerMigrations);
  } catch (error) {
    await close();
    throw error;
  }
  return { db, close };
}

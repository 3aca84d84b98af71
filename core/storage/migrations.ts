/**
 * Per-plugin schema migrations. Each plugin's pending migrations are applied in id order, each in its
 * own transaction, under a transaction-scoped advisory lock, so two instances starting at once apply
 * each migration exactly once and a re-run is a no-op.
 */
import type { Pool } from 'pg';
import { createHash } from 'node:crypto';
import type { Migration } from '../plugin.js';
import { ParleyError } from '../errors.js';

const LOCK_KEY = 0x5041524c; // "PARL"

export async function ensureMigrationTable(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS parley_migrations (
      plugin text NOT NULL,
      id text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (plugin, id)
    )`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export async function applyMigrations(pool: Pool, plugin: string, migrations: Migration[]): Promise<string[]> {
  const sorted = [...migrations].sort((a, b) => a.id.localeCompare(b.id));
  const ids = new Set<string>();
  for (const m of sorted) {
    if (ids.has(m.id)) throw new ParleyError('PARLEY_MIGRATION_FAILED', `Plugin "${plugin}" has two migrations with id "${m.id}"`, 500, { plugin });
    ids.add(m.id);
  }
  const checksumOf = (m: Migration) => createHash('sha256').update(m.sql).digest('hex').slice(0, 16);
  // A restart finds every migration applied: one read says so, without a transaction and lock per
  // migration (a committed row never goes away, so only the missing ones need the locked path).
  const { rows: known } = await pool.query<{ id: string; checksum: string }>('SELECT id, checksum FROM parley_migrations WHERE plugin = $1', [plugin]);
  const appliedBefore = new Map(known.map((r) => [r.id, r.checksum]));
  const applied: string[] = [];
  for (const m of sorted) {
    const checksum = checksumOf(m);
    const before = appliedBefore.get(m.id);
    if (before !== undefined) {
      if (before !== checksum) throw changedAfterApplied(plugin, m.id);
      continue;
    }
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      const { rows } = await client.query<{ checksum: string }>('SELECT checksum FROM parley_migrations WHERE plugin = $1 AND id = $2', [plugin, m.id]);
      if (rows[0]) {
        await client.query('COMMIT');
        if (rows[0].checksum !== checksum) throw changedAfterApplied(plugin, m.id);
        continue;
      }
      await client.query(m.sql);
      await client.query('INSERT INTO parley_migrations (plugin, id, checksum) VALUES ($1, $2, $3)', [plugin, m.id, checksum]);
      await client.query('COMMIT');
      applied.push(m.id);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (error instanceof ParleyError) throw error;
      throw new ParleyError('PARLEY_MIGRATION_FAILED', `Migration ${plugin}/${m.id} failed: ${(error as Error).message}`, 500, { cause: error, plugin });
    } finally {
      client.release();
    }
  }
  return applied;
}

function changedAfterApplied(plugin: string, id: string): ParleyError {
  return new ParleyError('PARLEY_MIGRATION_FAILED', `Migration ${plugin}/${id} was changed after it was applied to this database; add a new migration instead of editing an applied one`, 500, { plugin });
}

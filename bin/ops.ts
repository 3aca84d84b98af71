/**
 * `parley backup | restore | backup verify | audit verify`: the operations commands, kept out of the
 * CLI's argument parsing. Storage comes from the configuration (`storage.databaseUrl`/`dataDir`, or
 * DATABASE_URL / PARLEY_DATA_DIR); the backup key from PARLEY_BACKUP_KEY.
 */
import { resolve } from 'node:path';
import pg from 'pg';
import { backupEmbeddedDir, backupFileName, backupKey, backupPostgres, embeddedLockHolder, restoreEmbedded, restorePostgres, verifyBackup, writeEmbeddedBackup, type BackupManifest } from '../core/backup.js';
import { recordedHead, verifyAuditChain } from '../core/audit.js';

export interface OpsTarget {
  databaseUrl: string | undefined;
  dataDir: string;
  /** The running gateway's URL and operator key, for an embedded backup while it runs. */
  url?: string | undefined;
  key?: string | undefined;
  /** Where the audit chain's head is recorded outside the database (backups folder, log file). */
  headSources?: string[];
}

export async function backupCommand(t: OpsTarget, out: string | undefined, say: (s: string) => void): Promise<BackupManifest> {
  const file = resolve(out ?? backupFileName());
  const key = backupKey();
  const t0 = performance.now();
  let manifest: BackupManifest;
  if (t.databaseUrl) manifest = await backupPostgres(t.databaseUrl, file, key);
  else if (embeddedLockHolder(t.dataDir)) {
    // The data directory is locked by the running gateway: it takes the dump itself.
    const url = (t.url ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`).replace(/\/$/, '');
    if (!t.key) throw new Error('The gateway is running: parley backup needs the operator key (--key or PARLEY_OPERATOR_KEY) to ask it for a dump');
    const res = await fetch(`${url}/v1/backup`, { headers: { authorization: `Bearer ${t.key}` } });
    if (!res.ok) throw new Error(`The gateway at ${url} refused the backup: ${res.status} ${await res.text()}`);
    const header = JSON.parse(Buffer.from(res.headers.get('x-parley-backup-manifest') ?? '', 'base64').toString('utf8'));
    manifest = await writeEmbeddedBackup(file, { manifest: header, payload: Buffer.from(await res.arrayBuffer()) }, key);
  } else manifest = await backupEmbeddedDir(t.dataDir, file, key);
  say(`Wrote ${file} (${manifest.backend}, ${Object.keys(manifest.counts).length} tables, ${Object.values(manifest.counts).reduce((a, b) => a + b, 0)} rows${key ? ', encrypted' : ''}) in ${Math.round(performance.now() - t0)} ms`);
  return manifest;
}

export async function restoreCommand(t: OpsTarget, file: string, say: (s: string) => void): Promise<void> {
  const key = backupKey();
  const t0 = performance.now();
  if (t.databaseUrl) await restorePostgres(t.databaseUrl, resolve(file), key);
  else {
    const { previous } = await restoreEmbedded(t.dataDir, resolve(file), key);
    if (previous) say(`The data directory before the restore was kept in ${previous}`);
  }
  say(`Restored ${file} in ${Math.round(performance.now() - t0)} ms`);
}

export async function verifyBackupCommand(t: OpsTarget, file: string, say: (s: string) => void): Promise<boolean> {
  const r = await verifyBackup(resolve(file), backupKey(), t.databaseUrl);
  for (const m of r.mismatches) say(`  ${m.table}: ${m.expected} rows in the backup's manifest, ${m.restored ?? 'missing'} restored`);
  say(r.ok ? `${file}: restored into a scratch database in ${r.restoreMs} ms; ${r.tables} tables, every row count matches` : `${file}: ${r.mismatches.length} table(s) differ`);
  return r.ok;
}

export async function auditVerifyCommand(t: OpsTarget, expectHead: string | undefined, say: (s: string) => void): Promise<boolean> {
  let pool: pg.Pool;
  let close: () => Promise<void>;
  if (t.databaseUrl) {
    pool = new pg.Pool({ connectionString: t.databaseUrl, max: 1 });
    close = () => pool.end();
  } else {
    // A stopped embedded gateway's directory, opened read-only in spirit (nothing is written).
    if (embeddedLockHolder(t.dataDir)) throw new Error('The embedded database is in use by the running gateway: stop it, or run the check on PostgreSQL');
    const { openDatabase } = await import('../core/storage/database.js');
    const { createLogger } = await import('../core/logger.js');
    const db = await openDatabase({ dataDir: t.dataDir, poolSize: 1, log: createLogger('silent') });
    pool = db.pool;
    close = () => db.close();
  }
  try {
    const sources = expectHead ? [expectHead] : (t.headSources ?? []);
    const head = await recordedHead(sources);
    if (expectHead && !head) throw new Error(`--expect-head ${expectHead}: no audit head found there (<seq>:<hash>, a backup file, a folder of backups or a log file)`);
    const r = await verifyAuditChain(pool, head ? { expectHead: head } : {});
    say(
      head
        ? `checked against the head recorded in ${head.from}: seq ${head.seq}`
        : `no head recorded outside the database (${sources.join(', ') || 'no backups folder or log file'}): deleting the newest rows would not be noticed`,
    );
    for (const p of r.problems) say(`  seq ${p.seq ?? '-'} (id ${p.id}): ${p.problem}: ${p.detail}`);
    say(r.ok ? `audit chain intact: ${r.rows} rows, head ${r.head ? `${r.head.seq}:${r.head.hash}` : '(empty)'}` : `audit chain BROKEN: ${r.problems.length} problem(s) in ${r.rows} rows`);
    return r.ok;
  } finally {
    await close();
  }
}

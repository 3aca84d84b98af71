/**
 * Backups of either backend, `parley backup | restore | backup verify` and the scheduled backup job.
 *
 * A backup file is one JSON header line (the manifest: format, backend, time, row count of every
 * table, the audit chain's head, whether and how it is encrypted) followed by the payload: PGlite's
 * data directory as a gzipped tar (`dumpDataDir`) for the embedded database, or `pg_dump --format=custom`
 * for PostgreSQL. With a key (PARLEY_BACKUP_KEY: 32 bytes as 64 hex characters or base64) the payload
 * is AES-256-GCM encrypted and its 16-byte tag is appended; the header is authenticated with it.
 *
 * The embedded database is locked by the running gateway (one process only): a backup of a running
 * embedded gateway is taken by that gateway (`dumpEmbedded`, served to the CLI on the operator route
 * `GET /v1/backup`); a stopped one is opened directly. Restore needs the gateway stopped.
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, fstatSync } from 'node:fs';
import { once } from 'node:events';
import { join, resolve, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
import pg from 'pg';
import { ParleyError } from './errors.js';

export interface BackupManifest {
  format: 'parley-backup/1';
  backend: 'embedded' | 'postgres';
  createdAt: string;
  /** Row count of every table (schema.table), taken right before the dump. */
  counts: Record<string, number>;
  auditHead: { seq: string; hash: string } | null;
  encryption: null | { alg: 'aes-256-gcm'; iv: string };
}

export function backupKey(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const raw = env.PARLEY_BACKUP_KEY?.trim();
  if (!raw) return undefined;
  const key = /^[0-9a-f]{64}$/i.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32) throw new ParleyError('PARLEY_CONFIG_INVALID', 'PARLEY_BACKUP_KEY must be 32 bytes: 64 hex characters or base64');
  return key;
}

/** Row counts of every table the user can read (excluding the system catalogues). */
export async function tableCounts(query: (sql: string) => Promise<{ rows: any[] }>): Promise<Record<string, number>> {
  const { rows } = await query(`SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`);
  const counts: Record<string, number> = {};
  for (const r of rows) {
    const { rows: n } = await query(`SELECT count(*)::int AS n FROM "${String(r.s).replace(/"/g, '""')}"."${String(r.t).replace(/"/g, '""')}"`);
    counts[`${r.s}.${r.t}`] = Number(n[0].n);
  }
  return counts;
}

async function auditHead(query: (sql: string) => Promise<{ rows: any[] }>): Promise<BackupManifest['auditHead']> {
  try {
    // Ordered by the bigint column: ordered by the text alias, seq 9 would come before seq 10.
    const { rows } = await query('SELECT seq::text AS seq, hash FROM parley_audit WHERE seq IS NOT NULL ORDER BY parley_audit.seq DESC LIMIT 1');
    return rows[0] ? { seq: rows[0].seq, hash: rows[0].hash } : null;
  } catch {
    return null;
  }
}

/** Writes header + (encrypted) payload to `out`, atomically (a temporary file renamed at the end). */
async function writeBackup(out: string, manifest: Omit<BackupManifest, 'encryption'>, payload: Readable, key: Buffer | undefined): Promise<BackupManifest> {
  mkdirSync(dirname(resolve(out)), { recursive: true });
  const tmp = `${out}.partial`;
  const iv = randomBytes(12);
  const full: BackupManifest = { ...manifest, encryption: key ? { alg: 'aes-256-gcm', iv: iv.toString('base64') } : null };
  const header = `${JSON.stringify(full)}\n`;
  const file = createWriteStream(tmp, { mode: 0o600 });
  file.write(header);
  if (key) {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(header));
    await pipeline(payload, cipher, file, { end: false });
    file.end(cipher.getAuthTag());
  } else {
    await pipeline(payload, file, { end: false });
    file.end();
  }
  await once(file, 'close');
  renameSync(tmp, out);
  return full;
}

export function readManifest(path: string): { manifest: BackupManifest; headerBytes: number } {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(1 << 20, fstatSync(fd).size));
    readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.indexOf(10);
    if (nl < 0) throw new ParleyError('PARLEY_CONFIG_INVALID', `${path} is not a Parley backup (no header)`);
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(buf.subarray(0, nl).toString('utf8')) as BackupManifest;
    } catch {
      throw new ParleyError('PARLEY_CONFIG_INVALID', `${path} is not a Parley backup (its header is not JSON)`);
    }
    if (manifest?.format !== 'parley-backup/1') throw new ParleyError('PARLEY_CONFIG_INVALID', `${path} is not a Parley backup (format ${String(manifest.format)})`);
    return { manifest, headerBytes: nl + 1 };
  } finally {
    closeSync(fd);
  }
}

/** What a payload that fails authentication means, without the cipher's own words. */
function unreadable(path: string, cause: unknown): ParleyError {
  return new ParleyError('PARLEY_BACKUP_UNREADABLE', `${path} cannot be decrypted: PARLEY_BACKUP_KEY is not the key it was written with, or the file was altered`, 500, { cause });
}

/**
 * The payload of a backup file, decrypted and authenticated when it was encrypted. A wrong key or an
 * altered byte makes the stream fail with `PARLEY_BACKUP_UNREADABLE` (GCM checks the tag at the end,
 * so consumers must not act on the payload before the stream has ended).
 */
export function openPayload(path: string, key: Buffer | undefined): { manifest: BackupManifest; stream: Readable } {
  const { manifest, headerBytes } = readManifest(path);
  const size = statSync(path).size;
  if (!manifest.encryption) return { manifest, stream: createReadStream(path, { start: headerBytes }) };
  if (!key) throw new ParleyError('PARLEY_CONFIG_INVALID', `${path} is encrypted: set PARLEY_BACKUP_KEY`);
  const tag = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  readSync(fd, tag, 0, 16, size - 16);
  const header = Buffer.alloc(headerBytes);
  readSync(fd, header, 0, headerBytes, 0);
  closeSync(fd);
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(manifest.encryption.iv, 'base64'));
  decipher.setAAD(header);
  decipher.setAuthTag(tag);
  const body = size - 16 - headerBytes;
  if (body < 0) throw unreadable(path, new Error('shorter than its authentication tag'));
  const source = body > 0 ? createReadStream(path, { start: headerBytes, end: size - 17 }) : Readable.from([]);
  const stream = new PassThrough();
  source.on('error', (error: Error) => stream.destroy(error));
  decipher.on('error', (error: Error) => stream.destroy(unreadable(path, error)));
  source.pipe(decipher).pipe(stream);
  return { manifest, stream };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

function run(cmd: string, args: string[], opts: { stdin?: Readable; stdout?: 'pipe' | 'ignore' } = {}): { stdout: Readable | null; done: Promise<void> } {
  const child = spawn(cmd, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', opts.stdout ?? 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
  if (opts.stdin) opts.stdin.pipe(child.stdin!);
  const done = new Promise<void>((res, rej) => {
    // A payload that fails to decrypt (tampered, wrong key) stops the restore.
    opts.stdin?.on('error', (e) => {
      child.kill();
      rej(e instanceof ParleyError ? e : new ParleyError('PARLEY_BACKUP_UNREADABLE', `The backup cannot be read: ${e.message}`, 500, { cause: e }));
    });
    child.on('error', (e) => rej(new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `${cmd} could not start: ${e.message} (install the PostgreSQL client tools, version >= the server's)`)));
    child.on('close', (code) => {
      if (code === 0) return res();
      const failed = new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `${cmd} exited with ${code}: ${stderr.trim()}`);
      const input = opts.stdin;
      if (!input || input.readableEnded || input.destroyed) return rej(failed);
      // A wrong key decrypts to bytes pg_restore refuses before GCM checks the tag at the end of the
      // payload: read the rest, so that case is reported as what it is (the error handler above).
      input.unpipe();
      input.on('end', () => rej(failed));
      input.resume();
    });
  });
  return { stdout: child.stdout, done };
}

// ---- PostgreSQL ------------------------------------------------------------------------------------

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function backupPostgres(url: string, out: string, key: Buffer | undefined): Promise<BackupManifest> {
  const { counts, head } = await withClient(url, async (c) => ({ counts: await tableCounts((s) => c.query(s)), head: await auditHead((s) => c.query(s)) }));
  const dump = run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', '--dbname', url], { stdout: 'pipe' });
  const [manifest] = await Promise.all([writeBackup(out, { format: 'parley-backup/1', backend: 'postgres', createdAt: new Date().toISOString(), counts, auditHead: head }, dump.stdout!, key), dump.done]);
  return manifest;
}

export async function restorePostgres(url: string, file: string, key: Buffer | undefined): Promise<BackupManifest> {
  const { manifest, stream } = openPayload(file, key);
  if (manifest.backend !== 'postgres') throw new ParleyError('PARLEY_CONFIG_INVALID', `${file} is a backup of the embedded database: restore it with PARLEY_DATA_DIR, without DATABASE_URL`);
  const r = run('pg_restore', ['--clean', '--if-exists', '--no-owner', '--no-privileges', '--single-transaction', '--dbname', url], { stdin: stream });
  await r.done;
  return manifest;
}

// ---- embedded --------------------------------------------------------------------------------------

/** What a running embedded gateway gives the backup: its PGlite (locked to that process). */
export interface EmbeddedHandle {
  query(sql: string): Promise<{ rows: any[] }>;
  /** PGlite's tar of its data directory; `none`: not compressed (compressing is left to the caller). */
  dumpDataDir(compression?: 'none' | 'gzip'): Promise<Blob>;
  /** Runs with the session to itself (the embedded server's turn-taking); absent: already alone. */
  exclusive?<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * A gzipped tar of the data directory taken through the running PGlite, with the counts before it.
 * Only the counts, the head and the uncompressed tar are taken with the session held (`heldMs`);
 * the tar is gzipped afterwards, on zlib's thread pool, while other clients run.
 */
export async function dumpEmbedded(db: EmbeddedHandle): Promise<{ manifest: Omit<BackupManifest, 'encryption'>; payload: Buffer; heldMs: number }> {
  const alone = db.exclusive ?? (<T>(fn: () => Promise<T>) => fn());
  let heldMs = 0;
  const { counts, head, blob } = await alone(async () => {
    const t0 = performance.now();
    const taken = { counts: await tableCounts((s) => db.query(s)), head: await auditHead((s) => db.query(s)), blob: await db.dumpDataDir('none') };
    heldMs = Math.round(performance.now() - t0);
    return taken;
  });
  const payload = await gzipAsync(Buffer.from(await blob.arrayBuffer()));
  return { manifest: { format: 'parley-backup/1', backend: 'embedded', createdAt: new Date().toISOString(), counts, auditHead: head }, payload, heldMs };
}

export async function writeEmbeddedBackup(out: string, dump: { manifest: Omit<BackupManifest, 'encryption'>; payload: Buffer }, key: Buffer | undefined): Promise<BackupManifest> {
  return writeBackup(out, dump.manifest, Readable.from([dump.payload]), key);
}

async function openPGlite(options: { dir?: string; loadDataDir?: Blob }) {
  const [{ PGlite }, { vector }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-pgvector')]);
  return PGlite.create(options.dir, { extensions: { vector }, ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}) });
}

function lockedBy(dataDir: string): number | null {
  const lock = join(dataDir, 'parley.pid');
  if (!existsSync(lock)) return null;
  const pid = Number(readFileSync(lock, 'utf8').trim());
  if (!pid || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

/** The pid of a live gateway holding the embedded data directory, if any. */
export function embeddedLockHolder(dataDir: string): number | null {
  return lockedBy(resolve(dataDir));
}

/** Backup of a stopped embedded gateway's data directory, opened directly. */
export async function backupEmbeddedDir(dataDir: string, out: string, key: Buffer | undefined): Promise<BackupManifest> {
  const holder = embeddedLockHolder(dataDir);
  if (holder) throw new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `The data directory ${dataDir} is in use by process ${holder}: back it up through the running gateway (parley backup --url)`);
  const db = await openPGlite({ dir: join(resolve(dataDir), 'pglite') });
  try {
    await db.exec('SET search_path TO public, bullmq');
    return await writeEmbeddedBackup(out, await dumpEmbedded({ query: (s) => db.query(s), dumpDataDir: (c) => db.dumpDataDir(c ?? 'gzip') }), key);
  } finally {
    await db.close();
  }
}

/** Restores a backup into a stopped embedded gateway's data directory (the old one is kept aside). */
export async function restoreEmbedded(dataDir: string, file: string, key: Buffer | undefined): Promise<{ manifest: BackupManifest; previous: string | null }> {
  const holder = embeddedLockHolder(dataDir);
  if (holder) throw new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `The data directory ${dataDir} is in use by process ${holder}: stop the gateway before restoring`);
  const { manifest, stream } = openPayload(file, key);
  if (manifest.backend !== 'embedded') throw new ParleyError('PARLEY_CONFIG_INVALID', `${file} is a PostgreSQL backup: restore it with DATABASE_URL set`);
  const payload = await readAll(stream);
  const dir = join(resolve(dataDir), 'pglite');
  let previous: string | null = null;
  if (existsSync(dir) && readdirSync(dir).length) {
    previous = `${dir}.before-restore-${Date.now()}`;
    renameSync(dir, previous);
  }
  mkdirSync(dir, { recursive: true });
  const db = await openPGlite({ dir, loadDataDir: new Blob([payload]) });
  await db.close();
  return { manifest, previous };
}

// ---- verify ----------------------------------------------------------------------------------------

export interface VerifyResult {
  ok: boolean;
  backend: BackupManifest['backend'];
  tables: number;
  mismatches: { table: string; expected: number; restored: number | null }[];
  restoreMs: number;
}

function compare(expected: Record<string, number>, restored: Record<string, number>): VerifyResult['mismatches'] {
  const out: VerifyResult['mismatches'] = [];
  for (const [table, n] of Object.entries(expected)) if (restored[table] !== n) out.push({ table, expected: n, restored: restored[table] ?? null });
  return out;
}

/**
 * Restores the backup into a scratch database (a fresh in-memory PGlite, or a new database on the
 * PostgreSQL server at `serverUrl`, dropped afterwards) and compares every table's row count with
 * the counts recorded when the backup was taken.
 */
export async function verifyBackup(file: string, key: Buffer | undefined, serverUrl?: string): Promise<VerifyResult> {
  const { manifest } = readManifest(file);
  const t0 = performance.now();
  let restored: Record<string, number>;
  if (manifest.backend === 'embedded') {
    const payload = await readAll(openPayload(file, key).stream);
    const db = await openPGlite({ loadDataDir: new Blob([payload]) });
    try {
      restored = await tableCounts((s) => db.query(s));
    } finally {
      await db.close();
    }
  } else {
    if (!serverUrl) throw new ParleyError('PARLEY_CONFIG_INVALID', 'Verifying a PostgreSQL backup needs DATABASE_URL (a server where a scratch database can be created)');
    const name = `parley_verify_${randomBytes(5).toString('hex')}`;
    await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    try {
      await restorePostgres(url.toString(), file, key);
      restored = await withClient(url.toString(), (c) => tableCounts((s) => c.query(s)));
    } finally {
      await withClient(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined);
    }
  }
  const mismatches = compare(manifest.counts, restored);
  return { ok: mismatches.length === 0, backend: manifest.backend, tables: Object.keys(manifest.counts).length, mismatches, restoreMs: Math.round(performance.now() - t0) };
}

/** Keeps the newest `keep` backups (`parley-*.backup`) in `dir`. */
export function pruneBackups(dir: string, keep: number): string[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).filter((f) => /^parley-.*\.backup$/.test(f)).sort();
  const removed = files.slice(0, Math.max(0, files.length - keep));
  for (const f of removed) rmSync(join(dir, f), { force: true });
  return removed;
}

export function backupFileName(now = new Date()): string {
  return `parley-${now.toISOString().replace(/[:.]/g, '-')}.backup`;
}


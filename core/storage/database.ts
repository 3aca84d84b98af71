/**
 * One code path for SQL: a `pg.Pool`. With no database URL, PGlite (with pgvector) runs in-process on
 * a data directory and is served on a unix socket beside it (pglite-server.ts), so the pool and BullMQ
 * speak the PostgreSQL wire protocol to it exactly as they would to a server.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ParleyError } from '../errors.js';
import { servePGlite, socketPathFits } from './pglite-server.js';
import { cacheDir, seedFromTemplate } from './pglite-template.js';

export interface Database {
  pool: pg.Pool;
  /** A connection string other clients (BullMQ) can use. */
  connectionString: string;
  kind: 'embedded' | 'external';
  /** True when the pgvector extension can be created. */
  vectorAvailable: boolean;
  /** The embedded database only: its PGlite, for consistent backups while running (core/backup.ts). */
  embedded?: { query(sql: string): Promise<{ rows: any[] }>; dumpDataDir(compression?: 'none' | 'gzip'): Promise<Blob>; exclusive<T>(fn: () => Promise<T>): Promise<T> };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolSize: number;
  log: Logger;
  /** Where the embedded database server's error counter is registered. */
  registry?: Registry | undefined;
  /** Where a fresh embedded database's template is kept (default: PARLEY_CACHE_DIR, else ~/.cache/parley). */
  cacheDir?: string | undefined;
  /** How long a client waits for the embedded database's session held by another (default: PARLEY_DB_BUSY_TIMEOUT_MS, else 5000 ms). */
  busyTimeoutMs?: number | undefined;
  /** The embedded database's `shared_buffers` (default: PARLEY_DB_SHARED_BUFFERS, else 16MB). */
  sharedBuffers?: string | undefined;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openExternal(opts.databaseUrl, opts) : openEmbedded(opts);
}

function makePool(connectionString: string, max: number, log: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its connection (database restart) must not crash the process.
  pool.on('error', (error) => log.warn({ err: error }, 'database connection lost; the pool will reconnect'));
  return pool;
}

async function openExternal(url: string, opts: DatabaseOptions): Promise<Database> {
  const pool = makePool(url, opts.poolSize, opts.log);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `Cannot reach PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}`, 503, { cause: error });
  }
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'vector'");
  return {
    pool,
    connectionString: url,
    kind: 'external',
    vectorAvailable: (rows[0]?.n ?? 0) > 0,
    close: () => pool.end(),
  };
}

/** The embedded database's `shared_buffers` unless PARLEY_DB_SHARED_BUFFERS says otherwise (PostgreSQL's default is 128MB). */
const EMBEDDED_SHARED_BUFFERS = '16MB';

async function openEmbedded(opts: DatabaseOptions): Promise<Database> {
  const dir = resolve(opts.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  const releaseLock = lockDataDir(resolve(opts.dataDir));
  try {
    const [{ PGlite }, { vector }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-pgvector')]);
    // PostgreSQL's default 128 MB of shared buffers is touched into PGlite's WASM memory as pages are
    // read and stays resident; a gateway's working set fits in far less (bench/README.md, step 4.1).
    const sharedBuffers = opts.sharedBuffers ?? (process.env.PARLEY_DB_SHARED_BUFFERS || EMBEDDED_SHARED_BUFFERS);
    if (!/^\d+(kB|MB|GB)$/.test(sharedBuffers)) throw new ParleyError('PARLEY_CONFIG_INVALID', `PARLEY_DB_SHARED_BUFFERS must be a size such as 16MB, not "${sharedBuffers}"`, 500);
    const options = { extensions: { vector }, startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`] };
    // A fresh directory is copied from a template made once per PGlite version, instead of initdb.
    await seedFromTemplate(dir, opts.cacheDir ?? cacheDir(), (path) => PGlite.create(path, options), opts.log);
    const db = await PGlite.create(dir, options);
    // Every client shares PGlite's single session (see pglite-server.ts), so per-connection startup
    // options (BullMQ pins its schema with `-c search_path=bullmq`) never apply. One session-wide
    // search path serves both: Parley's tables live in public (all prefixed parley_), BullMQ's in bullmq.
    await db.exec('SET search_path TO public, bullmq');
    const errors = opts.registry
      ? new Counter({ name: 'parley_database_server_errors_total', help: 'Errors the embedded database server handled: client_error, exec_error, busy, refused', labelNames: ['event'] as const, registers: [opts.registry] })
      : undefined;
    const socketDir = embeddedSocketDir(resolve(opts.dataDir));
    const server = await servePGlite(db, { socketDir: socketDir.path, busyTimeoutMs: opts.busyTimeoutMs ?? (Number(process.env.PARLEY_DB_BUSY_TIMEOUT_MS) || undefined), log: opts.log, onEvent: (event) => errors?.inc({ event }) });
    const { connectionString } = server;
    const pool = makePool(connectionString, opts.poolSize, opts.log);
    return {
      pool,
      connectionString,
      kind: 'embedded',
      vectorAvailable: true,
      // Straight to PGlite, between the socket server's statements: a dump is one consistent copy.
      embedded: { query: (sql) => db.query(sql), dumpDataDir: (compression) => db.dumpDataDir(compression ?? 'gzip'), exclusive: (fn) => server.exclusive(fn) },
      async close() {
        await pool.end().catch(() => undefined);
        await server.stop().catch(() => undefined);
        await db.close().catch(() => undefined);
        socketDir.remove();
        releaseLock();
      },
    };
  } catch (error) {
    releaseLock();
    throw error;
  }
}

/**
 * The socket lives in the data directory; when that path is too long for a unix socket, in a private
 * (0700) temporary directory instead.
 */
function embeddedSocketDir(dataDir: string): { path: string; remove(): void } {
  const preferred = join(dataDir, 'socket');
  if (socketPathFits(preferred)) return { path: preferred, remove: () => undefined };
  const path = mkdtempSync(join(tmpdir(), 'parley-db-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** PGlite is single-process: a second Parley on the same data directory would corrupt it. */
function lockDataDir(dataDir: string): () => void {
  const lockFile = join(dataDir, 'parley.pid');
  if (existsSync(lockFile)) {
    const pid = Number(readFileSync(lockFile, 'utf8').trim());
    if (pid && pid !== process.pid && isAlive(pid)) {
      throw new ParleyError(
        'PARLEY_STORAGE_UNAVAILABLE',
        `The data directory ${dataDir} is in use by process ${pid}. Stop it, choose another PARLEY_DATA_DIR, or set DATABASE_URL to share a PostgreSQL server.`,
        503,
      );
    }
  }
  writeFileSync(lockFile, String(process.pid));
  return () => {
    try {
      if (existsSync(lockFile) && readFileSync(lockFile, 'utf8').trim() === String(process.pid)) rmSync(lockFile);
    } catch {
      // Best effort: a stale lock of a dead process is ignored at the next start.
    }
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:***@');
}

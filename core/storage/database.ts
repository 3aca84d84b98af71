/**
 * One code path for SQL: a `pg.Pool`. With no database URL, PGlite (with pgvector) runs on a data
 * directory in a thread of its own (pglite-worker.ts) and is served on a unix socket beside it
 * (pglite-server.ts), so the pool and BullMQ speak the PostgreSQL wire protocol to it exactly as they
 * would to a server, and the gateway's event loop does none of the database's work.
 */
import pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ParleyError } from '../errors.js';
import { embeddedThread } from './embedded-thread.js';

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

async function openEmbedded(opts: DatabaseOptions): Promise<Database> {
  const errors = opts.registry
    ? new Counter({ name: 'parley_database_server_errors_total', help: 'Errors the embedded database server handled: client_error, exec_error, busy, refused', labelNames: ['event'] as const, registers: [opts.registry] })
    : undefined;
  // The thread `parley start` launched while the gateway's modules loaded, or a new one.
  const thread = await embeddedThread({ dataDir: opts.dataDir, cacheDir: opts.cacheDir, busyTimeoutMs: opts.busyTimeoutMs, sharedBuffers: opts.sharedBuffers });
  thread.attach(opts.log, (event) => errors?.inc({ event }));
  try {
    const connectionString = await thread.ready;
    const pool = makePool(connectionString, opts.poolSize, opts.log);
    return {
      pool,
      connectionString,
      kind: 'embedded',
      vectorAvailable: true,
      // Straight to PGlite, between the socket server's statements: a dump is one consistent copy.
      embedded: {
        query: async (sql) => ({ rows: (await thread.request({ op: 'query', sql })) as any[] }),
        dumpDataDir: async (compression) => new Blob([(await thread.request({ op: 'dump', compression: compression ?? 'gzip' })) as ArrayBuffer]),
        async exclusive(fn) {
          const id = await thread.acquire();
          try {
            return await fn();
          } finally {
            thread.release(id);
          }
        },
      },
      async close() {
        await pool.end().catch(() => undefined);
        await thread.stop();
      },
    };
  } catch (error) {
    await thread.abort();
    throw error;
  }
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:***@');
}

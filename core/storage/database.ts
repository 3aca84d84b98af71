/**
 * One code path for SQL: a `pg.Pool`. With no database URL, PGlite (with pgvector) runs on a data
 * directory in a thread of its own (pglite-worker.ts) and is served on a unix socket beside it
 * (pglite-server.ts), so the pool and BullMQ speak the PostgreSQL wire protocol to it exactly as they
 * would to a server, and the gateway's event loop does none of the database's work.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ParleyError } from '../errors.js';
import { socketPathFits } from './pglite-server.js';
import { cacheDir } from './pglite-template.js';
import type { PGliteWorkerData, WorkerAsk, WorkerMessage, WorkerRequest } from './pglite-worker.js';

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
  let socketDir: { path: string; remove(): void } | undefined;
  let thread: ReturnType<typeof startWorker> | undefined;
  try {
    // PostgreSQL's default 128 MB of shared buffers is touched into PGlite's WASM memory as pages are
    // read and stays resident; a gateway's working set fits in far less (bench/README.md, step 4.1).
    const sharedBuffers = opts.sharedBuffers ?? (process.env.PARLEY_DB_SHARED_BUFFERS || EMBEDDED_SHARED_BUFFERS);
    if (!/^\d+(kB|MB|GB)$/.test(sharedBuffers)) throw new ParleyError('PARLEY_CONFIG_INVALID', `PARLEY_DB_SHARED_BUFFERS must be a size such as 16MB, not "${sharedBuffers}"`, 500);
    const errors = opts.registry
      ? new Counter({ name: 'parley_database_server_errors_total', help: 'Errors the embedded database server handled: client_error, exec_error, busy, refused', labelNames: ['event'] as const, registers: [opts.registry] })
      : undefined;
    socketDir = embeddedSocketDir(resolve(opts.dataDir));
    const data: PGliteWorkerData = {
      dir,
      cacheDir: opts.cacheDir ?? cacheDir(),
      sharedBuffers,
      socketDir: socketDir.path,
      busyTimeoutMs: opts.busyTimeoutMs ?? (Number(process.env.PARLEY_DB_BUSY_TIMEOUT_MS) || undefined),
    };
    const database = (thread = startWorker(data, opts.log, (event) => errors?.inc({ event })));
    const connectionString = await database.ready;
    const pool = makePool(connectionString, opts.poolSize, opts.log);
    const removeSocketDir = socketDir.remove;
    return {
      pool,
      connectionString,
      kind: 'embedded',
      vectorAvailable: true,
      // Straight to PGlite, between the socket server's statements: a dump is one consistent copy.
      embedded: {
        query: async (sql) => ({ rows: (await database.request({ op: 'query', sql })) as any[] }),
        dumpDataDir: async (compression) => new Blob([(await database.request({ op: 'dump', compression: compression ?? 'gzip' })) as ArrayBuffer]),
        async exclusive(fn) {
          const id = await database.acquire();
          try {
            return await fn();
          } finally {
            database.release(id);
          }
        },
      },
      async close() {
        await pool.end().catch(() => undefined);
        await database.stop();
        removeSocketDir();
        releaseLock();
      },
    };
  } catch (error) {
    await thread?.worker.terminate().catch(() => undefined);
    socketDir?.remove();
    releaseLock();
    throw error;
  }
}

/** The database thread, and the requests the parent makes of it (pglite-worker.ts). */
function startWorker(data: PGliteWorkerData, log: Logger, onEvent: (event: Extract<WorkerMessage, { type: 'event' }>['event']) => void) {
  // From the sources (tests, tsx) the worker is TypeScript too: it registers tsx's loader first.
  const typescript = import.meta.url.endsWith('.ts');
  const entry = new URL(`./pglite-worker.${typescript ? 'ts' : 'js'}`, import.meta.url);
  const worker = typescript
    ? new Worker(`import(${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry.href)}, ${JSON.stringify(import.meta.url)}))`, { eval: true, workerData: data })
    : new Worker(entry, { workerData: data });
  let nextId = 1;
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let failed: Error | undefined;
  let started = false;
  let stopping = false;
  const failAll = (error: Error) => {
    failed ??= error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  const ready = new Promise<string>((resolveReady, rejectReady) => {
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') {
        started = true;
        resolveReady(message.connectionString);
      } else if (message.type === 'failed') rejectReady(new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `The embedded database did not start: ${message.message}`, 503));
      else if (message.type === 'event') onEvent(message.event);
      else if (message.type === 'log') log[message.level](message.fields, message.message);
      else {
        const p = pending.get(message.id);
        if (!p) return;
        pending.delete(message.id);
        if (message.ok) p.resolve(message.value);
        else p.reject(Object.assign(new Error(message.message), message.code ? { code: message.code } : {}));
      }
    });
    worker.on('error', (error) => {
      rejectReady(error);
      failAll(error);
    });
    worker.on('exit', (code) => {
      const error = new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `The embedded database thread stopped (exit code ${code})`, 503);
      rejectReady(error);
      failAll(error);
      // A database that died under a running gateway leaves it holding the data directory with nothing
      // to serve: exit as a crash of the database would have, so the supervisor starts it again.
      if (started && !stopping) {
        log.fatal({ code }, 'the embedded database thread stopped unexpectedly; exiting');
        process.exit(1);
      }
    });
  });
  const send = (request: WorkerRequest) => worker.postMessage(request);
  /** Sends a request and waits for its reply (after a failure, fails at once). */
  const call = (request: Exclude<WorkerAsk, { op: 'release' }>) => {
    const id = nextId++;
    const reply = failed
      ? Promise.reject(failed)
      : new Promise<unknown>((resolveReply, reject) => {
          pending.set(id, { resolve: resolveReply, reject });
          send({ ...request, id });
        });
    return { id, reply };
  };
  return {
    worker,
    ready,
    request: (request: Extract<WorkerAsk, { op: 'query' | 'dump' }>) => call(request).reply,
    /** Holds the database's session for the parent (a backup's consistent view); `release` gives it back. */
    async acquire(): Promise<number> {
      const { id, reply } = call({ op: 'exclusive' });
      await reply;
      return id;
    },
    release: (id: number) => send({ id, op: 'release' }),
    /** Closes the database and ends the thread. */
    async stop(): Promise<void> {
      stopping = true;
      await call({ op: 'close' }).reply.catch(() => undefined);
      await worker.terminate().catch(() => undefined);
    },
  };
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

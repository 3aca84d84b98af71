/**
 * The embedded database's thread (pglite-worker.ts) with what it holds: the data directory's lock and
 * the directory of its socket. database.ts opens one for a gateway. `parley start` launches it as soon
 * as the configuration names the data directory (`launchEarly`), so PGlite starts on the second core
 * while the gateway's own modules load, and the gateway's `openDatabase` adopts that thread instead of
 * starting another (bench/README.md, step 17).
 *
 * This module stays light (no pg, no prom-client): the command line imports it before the rest.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ParleyError } from '../errors.js';
import { socketPathFits } from './pglite-server.js';
import type { ServerEvent } from './pglite-server.js';
import { cacheDir } from './pglite-template.js';
import type { PGliteWorkerData, WorkerAsk, WorkerMessage, WorkerRequest } from './pglite-worker.js';

/** The embedded database's `shared_buffers` unless PARLEY_DB_SHARED_BUFFERS says otherwise (PostgreSQL's default is 128MB). */
const EMBEDDED_SHARED_BUFFERS = '16MB';

export interface EmbeddedSettings {
  dataDir: string;
  /** Where a fresh embedded database's template is kept (default: PARLEY_CACHE_DIR, else ~/.cache/parley). */
  cacheDir?: string | undefined;
  /** How long a client waits for the session held by another (default: PARLEY_DB_BUSY_TIMEOUT_MS, else 5000 ms). */
  busyTimeoutMs?: number | undefined;
  /** PostgreSQL's `shared_buffers` (default: PARLEY_DB_SHARED_BUFFERS, else 16MB). */
  sharedBuffers?: string | undefined;
}

/** The settings with every default applied: what the thread is started with. */
type Resolved = Omit<PGliteWorkerData, 'socketDir'> & { root: string };

function resolveSettings(settings: EmbeddedSettings): Resolved {
  // PostgreSQL's default 128 MB of shared buffers is touched into PGlite's WASM memory as pages are
  // read and stays resident; a gateway's working set fits in far less (bench/README.md, step 4.1).
  const sharedBuffers = settings.sharedBuffers ?? (process.env.PARLEY_DB_SHARED_BUFFERS || EMBEDDED_SHARED_BUFFERS);
  if (!/^\d+(kB|MB|GB)$/.test(sharedBuffers)) throw new ParleyError('PARLEY_CONFIG_INVALID', `PARLEY_DB_SHARED_BUFFERS must be a size such as 16MB, not "${sharedBuffers}"`, 500);
  const root = resolve(settings.dataDir);
  return {
    root,
    dir: resolve(root, 'pglite'),
    cacheDir: settings.cacheDir ?? cacheDir(),
    sharedBuffers,
    busyTimeoutMs: settings.busyTimeoutMs ?? (Number(process.env.PARLEY_DB_BUSY_TIMEOUT_MS) || undefined),
  };
}

const sameSettings = (a: Resolved, b: Resolved) => a.root === b.root && a.cacheDir === b.cacheDir && a.sharedBuffers === b.sharedBuffers && a.busyTimeoutMs === b.busyTimeoutMs;

export interface EmbeddedThread {
  /** The connection string of the thread's socket server, once PGlite has started. */
  readonly ready: Promise<string>;
  /** Where the thread's log lines and server events go; until then they wait. */
  attach(log: Logger, onEvent: (event: ServerEvent) => void): void;
  /** A query on PGlite's session outside the socket server, or a dump of the data directory. */
  request(request: Extract<WorkerAsk, { op: 'query' | 'dump' }>): Promise<unknown>;
  /** Holds the database's session for the parent (a backup's consistent view); `release` gives it back. */
  acquire(): Promise<number>;
  release(id: number): void;
  /** Closes the database, ends the thread, and gives the data directory back. */
  stop(): Promise<void>;
  /** Ends the thread without closing the database (it never started, or its start failed). */
  abort(): Promise<void>;
}

/** Locks the data directory and starts the database's thread; throws when the directory is in use. */
function launch(resolved: Resolved): EmbeddedThread & { settings: Resolved } {
  mkdirSync(resolved.dir, { recursive: true });
  const unlock = lockDataDir(resolved.root);
  // A process that exits without closing the database (a configuration the gateway then refuses,
  // after `launchEarly` took the directory) leaves no lock behind.
  const releaseLock = () => {
    process.off('exit', unlock);
    unlock();
  };
  process.on('exit', unlock);
  let socketDir: { path: string; remove(): void } | undefined;
  try {
    socketDir = embeddedSocketDir(resolved.root);
    const { root: _root, ...data } = resolved;
    const thread = startWorker({ ...data, socketDir: socketDir.path });
    const removeSocketDir = socketDir.remove;
    return {
      ...thread,
      settings: resolved,
      async stop() {
        await thread.stop();
        removeSocketDir();
        releaseLock();
      },
      async abort() {
        await thread.kill();
        removeSocketDir();
        releaseLock();
      },
    };
  } catch (error) {
    socketDir?.remove();
    releaseLock();
    throw error;
  }
}

/** The thread `parley start` launched before the gateway's modules loaded, until a gateway adopts it. */
let early: (EmbeddedThread & { settings: Resolved }) | undefined;

/**
 * Starts the embedded database ahead of the gateway that will open it. Anything that goes wrong is
 * left for that gateway's own `openDatabase` to meet and report (a directory in use, bad settings).
 */
export function launchEarly(settings: EmbeddedSettings): void {
  if (early) return;
  try {
    early = launch(resolveSettings(settings));
    // Its failure is the adopting gateway's to report; until then it must not be an unhandled rejection.
    early.ready.catch(() => undefined);
  } catch {
    early = undefined;
  }
}

/** The thread launched early for these settings, else a new one. */
export async function embeddedThread(settings: EmbeddedSettings): Promise<EmbeddedThread> {
  const resolved = resolveSettings(settings);
  const found = early;
  early = undefined;
  if (found) {
    if (sameSettings(found.settings, resolved)) return found;
    // Put away cleanly: a started database is closed, not cut off.
    await found.ready.then(
      () => found.stop(),
      () => found.abort(),
    );
  }
  return launch(resolved);
}

/** The database thread, and the requests the parent makes of it (pglite-worker.ts). */
function startWorker(data: PGliteWorkerData) {
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
  // Log lines and events wait for `attach` (a thread launched early has no logger yet).
  let sink: { log: Logger; onEvent: (event: ServerEvent) => void } | undefined;
  const waiting: ((to: NonNullable<typeof sink>) => void)[] = [];
  const deliver = (fn: (to: NonNullable<typeof sink>) => void) => (sink ? fn(sink) : waiting.push(fn));
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
      else if (message.type === 'event') deliver((to) => to.onEvent(message.event));
      else if (message.type === 'log') deliver((to) => to.log[message.level](message.fields, message.message));
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
        if (sink) sink.log.fatal({ code }, 'the embedded database thread stopped unexpectedly; exiting');
        else process.stderr.write(`the embedded database thread stopped unexpectedly (exit code ${code}); exiting\n`);
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
    ready,
    attach(log: Logger, onEvent: (event: ServerEvent) => void) {
      sink = { log, onEvent };
      for (const fn of waiting.splice(0)) fn(sink);
    },
    request: (request: Extract<WorkerAsk, { op: 'query' | 'dump' }>) => call(request).reply,
    async acquire(): Promise<number> {
      const { id, reply } = call({ op: 'exclusive' });
      await reply;
      return id;
    },
    release: (id: number) => send({ id, op: 'release' }),
    async stop(): Promise<void> {
      stopping = true;
      await call({ op: 'close' }).reply.catch(() => undefined);
      await worker.terminate().catch(() => undefined);
    },
    /** Ends the thread at once, without closing the database. */
    async kill(): Promise<void> {
      stopping = true;
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

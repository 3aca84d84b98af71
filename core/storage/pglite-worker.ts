/**
 * The embedded database in a thread of its own (database.ts starts it): PGlite and the server that
 * shares its one session among the gateway's clients (pglite-server.ts) run here, on the unix socket
 * they always used, so the gateway's event loop spends no time in PostgreSQL's WebAssembly and on two
 * cores the database and the HTTP work run side by side.
 *
 * The parent asks over the worker's message port for what it cannot do through the socket: a query
 * on the session outside the multiplexer (inside `exclusive`), a dump of the data directory, holding
 * the session for a backup, and closing. Replies carry the request's id.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from 'pino';
import { servePGlite, type ServerEvent } from './pglite-server.js';
import { seedFromTemplate } from './pglite-template.js';

export interface PGliteWorkerData {
  dir: string;
  cacheDir: string;
  sharedBuffers: string;
  socketDir: string;
  busyTimeoutMs: number | undefined;
}

type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** What the parent asks; each request carries an id its reply repeats. */
export type WorkerAsk = { op: 'query'; sql: string } | { op: 'dump'; compression: 'none' | 'gzip' } | { op: 'exclusive' } | { op: 'release' } | { op: 'close' };
export type WorkerRequest = WorkerAsk & { id: number };

/** To the parent. */
export type WorkerMessage =
  | { type: 'ready'; connectionString: string }
  | { type: 'failed'; message: string }
  | { type: 'event'; event: ServerEvent }
  | { type: 'log'; level: LogLevel; fields: Record<string, unknown>; message: string }
  | { type: 'reply'; id: number; ok: true; value?: unknown }
  | { type: 'reply'; id: number; ok: false; message: string; code?: string };

const port = parentPort!;
const data = workerData as PGliteWorkerData;
const post = (message: WorkerMessage, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

async function main(): Promise<void> {
  // What the server and the template log goes to the gateway's own logger (the parent's).
  const logAt = (level: LogLevel) => (fields: Record<string, unknown>, message: string) => post({ type: 'log', level, fields, message });
  const log = { error: logAt('error'), warn: logAt('warn'), info: logAt('info'), debug: logAt('debug') } as unknown as Logger;
  const [{ PGlite }, { vector }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-pgvector')]);
  const options = { extensions: { vector }, startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${data.sharedBuffers}`] };
  // A fresh directory is copied from a template made once per PGlite version, instead of initdb.
  await seedFromTemplate(data.dir, data.cacheDir, (path) => PGlite.create(path, options), log);
  const db = await PGlite.create(data.dir, options);
  // Every client shares PGlite's single session (see pglite-server.ts), so per-connection startup
  // options (BullMQ pins its schema with `-c search_path=bullmq`) never apply. One session-wide
  // search path serves both: Parley's tables live in public (all prefixed parley_), BullMQ's in bullmq.
  await db.exec('SET search_path TO public, bullmq');
  const server = await servePGlite(db, { socketDir: data.socketDir, busyTimeoutMs: data.busyTimeoutMs, log, onEvent: (event) => post({ type: 'event', event }) });
  /** Sessions held for the parent (`exclusive`), released by its `release`. */
  const held = new Map<number, () => void>();
  port.on('message', (request: WorkerRequest) => {
    const reply = async (work: () => Promise<{ value?: unknown; transfer?: ArrayBuffer[] }>) => {
      try {
        const { value, transfer } = await work();
        post({ type: 'reply', id: request.id, ok: true, value }, transfer);
      } catch (error) {
        post({ type: 'reply', id: request.id, ok: false, message: (error as Error).message, code: (error as { code?: string }).code });
      }
    };
    switch (request.op) {
      case 'query':
        void reply(async () => ({ value: (await db.query(request.sql)).rows }));
        break;
      case 'dump':
        void reply(async () => {
          const buffer = await (await db.dumpDataDir(request.compression)).arrayBuffer();
          return { value: buffer, transfer: [buffer] };
        });
        break;
      case 'exclusive':
        // Answered once the session is ours; held until the parent's `release`.
        void server
          .exclusive(() => new Promise<void>((release) => {
            held.set(request.id, release);
            post({ type: 'reply', id: request.id, ok: true });
          }))
          .catch((error: unknown) => post({ type: 'reply', id: request.id, ok: false, message: (error as Error).message }));
        break;
      case 'release':
        held.get(request.id)?.();
        held.delete(request.id);
        break;
      case 'close':
        void reply(async () => {
          for (const release of held.values()) release();
          await server.stop().catch(() => undefined);
          await db.close().catch(() => undefined);
          return {};
        });
        break;
    }
  });
  post({ type: 'ready', connectionString: server.connectionString });
}

// While PGlite starts, this thread's event loop holds nothing open: it only awaits WebAssembly
// compilation, which runs on V8's background threads. Node treats a loop with nothing open as about to
// exit and blocks until every background task is done, including the optimising recompilation of the
// functions PostgreSQL's start ran: 0.2-0.4 s in which the thread answers nothing (bench/README.md,
// step 17). A timer held until the server listens keeps the loop open.
const starting = setInterval(() => undefined, 2 ** 30);
main()
  .catch((error: unknown) => post({ type: 'failed', message: (error as Error).message }))
  .finally(() => clearInterval(starting));

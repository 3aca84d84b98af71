/**
 * Serves an in-process PGlite to any number of PostgreSQL clients (`pg.Pool`, BullMQ) on a unix socket.
 *
 * PGlite is one PostgreSQL session, so the clients take turns. A client's messages are grouped into
 * units ending at Sync, a simple Query, Flush or a COPY message, and each unit runs whole. A client
 * keeps the session, and the others queue, until the session is idle again (ReadyForQuery 'I'):
 * through a transaction, and through an extended query left open at Flush (a pg-cursor or
 * pg-query-stream portal). A client that waits longer than `busyTimeoutMs` for a session held by
 * another gets SQLSTATE 55P03 `PARLEY_DB_BUSY` naming the holder, instead of hanging (the classic
 * case: a transaction on one pool client, then a query through another from the same code path).
 *
 * What PostgreSQL keeps per session is kept per client: named statements and portals are renamed
 * into the client's namespace (and closed when it disconnects); settings a client changes are saved
 * and restored when the session changes hands; session state that cannot be per client (temporary
 * tables, cursors WITH HOLD, ...) is refused with `PARLEY_DB_SESSION_STATE` (session-guard.ts).
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import {
  MSG,
  authenticationOk,
  backendKeyData,
  closeStatement,
  errorResponse,
  namespaced,
  parseName,
  readyForQuery,
  renameInMessage,
  scanOutput,
  simpleQuery,
  sqlOf,
  startupMessage,
  startupParams,
  sync,
  targetOf,
} from './pg-wire.js';
import { classifySql } from './session-guard.js';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const PROTOCOL_3 = 196608;
/** pg connects to `<host>/.s.PGSQL.<port>`; 5432 is its default port. */
export const SOCKET_FILE = '.s.PGSQL.5432';
/** sun_path is 108 bytes on Linux and 104 on macOS. */
const MAX_SOCKET_PATH = 103;

export type ServerEvent = 'client_error' | 'exec_error' | 'busy' | 'refused';

export interface PGliteServerOptions {
  /** Directory of the unix socket; created, and restricted to this user (0700). */
  socketDir: string;
  /** How long a client may wait for the session while another client holds it. */
  busyTimeoutMs?: number;
  log?: Logger;
  /** Called for every error the server handles itself, for metrics. */
  onEvent?: (event: ServerEvent) => void;
}

export interface PGliteServer {
  /** pg's `host` for this server (the socket's directory). */
  socketDir: string;
  /** postgres:// URL for pg and BullMQ. */
  connectionString: string;
  /**
   * Runs `fn` with the session to itself: after the current holder's transaction ended and before any
   * queued client (a backup's row counts and `dumpDataDir` see one state, inside no one's transaction).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

type UnitEnd = 'sync' | 'query' | 'flush' | 'copy';

interface Unit {
  conn: Connection;
  data: Buffer;
  end: UnitEnd;
  enqueuedAt: number;
  settings: boolean;
  listen: boolean;
  refused: string | undefined;
  /** The multiplexer's own clean-up after a client left; its output goes nowhere. */
  internal?: boolean;
}

const UNIT_ENDS: Record<number, UnitEnd> = {
  [MSG.sync]: 'sync',
  [MSG.query]: 'query',
  [MSG.flush]: 'flush',
  [MSG.copyData]: 'copy',
  [MSG.copyDone]: 'copy',
  [MSG.copyFail]: 'copy',
};

/** Whether a unix socket in `dir` fits the operating system's path limit. */
export function socketPathFits(dir: string): boolean {
  return Buffer.byteLength(join(dir, SOCKET_FILE)) <= MAX_SOCKET_PATH;
}

class Connection {
  readonly prefix: string;
  readonly connectedAt = Date.now();
  applicationName = '';
  listening = false;
  /** After an error in an extended query, PostgreSQL ignores messages until Sync; so does this. */
  discarding = false;
  /** Draining: the socket's buffer is full, so its next units wait for 'drain'. */
  draining = false;
  closed = false;
  /** This client's named statements (namespaced), closed when it disconnects. */
  readonly statements = new Set<string>();
  /** Settings this client changed, kept while another client has the session. */
  savedSettings: [string, string][] | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  private pending: Buffer[] = [];
  private pendingSettings = false;
  private pendingListen = false;
  private pendingRefused: string | undefined;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    private readonly mux: Multiplexer,
  ) {
    this.prefix = `c${id}.`;
    socket.setNoDelay?.(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      mux.report('client_error', { client: id, code: error.code }, 'database client connection error');
      this.close();
    });
    socket.on('close', () => this.close());
  }

  write(data: Buffer): void {
    if (this.closed || !this.socket.writable || data.length === 0) return;
    if (this.socket.write(data) || this.draining) return;
    this.draining = true;
    this.socket.once('drain', () => {
      this.draining = false;
      this.mux.wake();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.mux.closed(this);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (!this.closed) {
      if (!this.started) {
        if (this.buffer.length < 8) return;
        const len = this.buffer.readInt32BE(0);
        if (this.buffer.length < len) return;
        const code = this.buffer.readInt32BE(4);
        const msg = this.buffer.subarray(0, len);
        this.buffer = this.buffer.subarray(len);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          this.write(Buffer.from('N'));
          continue;
        }
        // CancelRequest (cannot interrupt PGlite) or an unknown protocol.
        if (code !== PROTOCOL_3) return this.close();
        this.started = true;
        this.applicationName = startupParams(msg).application_name ?? '';
        this.write(this.mux.greeting(this));
        continue;
      }
      if (this.buffer.length < 5) return;
      const type = this.buffer[0]!;
      const len = this.buffer.readInt32BE(1) + 1;
      if (this.buffer.length < len) return;
      let msg = this.buffer.subarray(0, len);
      this.buffer = this.buffer.subarray(len);
      if (type === MSG.terminate) return this.close();
      msg = this.track(type, msg);
      this.pending.push(msg);
      const end = UNIT_ENDS[type];
      if (end) this.enqueue(end);
    }
  }

  /** Notes what a message does to session state and moves its names into this client's namespace. */
  private track(type: number, msg: Buffer): Buffer {
    if (type === MSG.parse || type === MSG.query) {
      const verdict = classifySql(sqlOf(msg));
      this.pendingSettings ||= verdict.settings;
      this.pendingListen ||= verdict.listen;
      this.pendingRefused ??= verdict.refused;
      if (type === MSG.query) return msg;
      const name = parseName(msg);
      if (name) this.statements.add(namespaced(this.prefix, name));
    } else if (type === MSG.close) {
      const target = targetOf(msg);
      if (target.kind === 'S' && target.name) this.statements.delete(namespaced(this.prefix, target.name));
    }
    return renameInMessage(msg, this.prefix);
  }

  private enqueue(end: UnitEnd): void {
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const unit: Unit = { conn: this, data, end, enqueuedAt: Date.now(), settings: this.pendingSettings, listen: this.pendingListen, refused: this.pendingRefused };
    this.pending = [];
    this.pendingSettings = this.pendingListen = false;
    this.pendingRefused = undefined;
    this.mux.enqueue(unit);
  }
}

/** Codes from the catalogue, carried at the start of the message of a PostgreSQL ErrorResponse. */
const BUSY: ErrorCode = 'PARLEY_DB_BUSY';
const SESSION_STATE: ErrorCode = 'PARLEY_DB_SESSION_STATE';
const BUSY_HINT =
  'The embedded database (PGlite) has one session: a client holding a transaction or an open cursor makes the others wait. Query through the client that holds it, finish it first, or set DATABASE_URL to a PostgreSQL server.';
const SESSION_HINT = 'The embedded database (PGlite) is one session shared by every client. Set DATABASE_URL to a PostgreSQL server for this.';

/** Settings PostgreSQL reports as changed by the session but which set_config cannot restore. */
const UNRESTORABLE = new Set(['transaction_isolation', 'transaction_read_only', 'transaction_deferrable', 'role', 'session_authorization', 'is_superuser']);

class Multiplexer {
  readonly connections = new Set<Connection>();
  private queue: Unit[] = [];
  private running = false;
  /** The client that holds the session (a transaction or an unfinished extended query), and since when. */
  private holder: Connection | null = null;
  private holderSince = 0;
  /** When the holder's last unit finished: how long it has kept the others waiting without working. */
  private holderIdleSince = 0;
  private holderStatus: 'T' | 'E' | null = null;
  /** The client whose changed settings are in effect in the session. */
  private settingsOwner: Connection | null = null;
  private busyTimer: NodeJS.Timeout | undefined;
  private parameterStatus: Buffer = Buffer.alloc(0);
  private baseline = new Map<string, string>();

  constructor(
    private readonly db: PGlite,
    private readonly opts: Required<Pick<PGliteServerOptions, 'busyTimeoutMs'>> & PGliteServerOptions,
  ) {}

  /** Reads what every client is told at connection (ParameterStatus) and the session's own settings. */
  async init(): Promise<void> {
    const hello = Buffer.from(await this.db.execProtocolRaw(startupMessage({ user: 'postgres', database: 'postgres' }), { syncToFs: false }));
    const statuses: Buffer[] = [];
    for (let offset = 0; offset + 5 <= hello.length; ) {
      const end = offset + hello.readInt32BE(offset + 1) + 1;
      if (hello[offset] === MSG.parameterStatus) statuses.push(hello.subarray(offset, end));
      offset = end;
    }
    this.parameterStatus = Buffer.concat(statuses);
    this.baseline = new Map((await this.sessionSettings()).filter((s) => s.source === 'session').map((s) => [s.name, s.setting]));
  }

  /** What PostgreSQL sends after a StartupMessage; the client never waits for the session to connect. */
  greeting(conn: Connection): Buffer {
    return Buffer.concat([authenticationOk(), this.parameterStatus, backendKeyData(conn.id, randomInt(2 ** 31)), readyForQuery('I')]);
  }

  report(event: ServerEvent, fields: Record<string, unknown>, message: string): void {
    this.opts.onEvent?.(event);
    this.opts.log?.warn({ event, ...fields }, message);
  }

  enqueue(unit: Unit): void {
    const conn = unit.conn;
    if (conn.discarding) return this.discard(unit);
    this.queue.push(unit);
    void this.pump();
  }

  wake(): void {
    void this.pump();
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running || this.holder) await new Promise((r) => setTimeout(r, 5));
    this.running = true;
    try {
      return await fn();
    } finally {
      this.running = false;
      void this.pump();
    }
  }

  closed(conn: Connection): void {
    this.connections.delete(conn);
    this.queue = this.queue.filter((u) => u.conn !== conn);
    this.cleanUpAfter(conn);
    void this.pump();
  }

  /** Ends what a departed client left in the session: its transaction, COPY or portal, and its statements. */
  private cleanUpAfter(conn: Connection): void {
    const holds = this.holder === conn;
    if (!holds && conn.statements.size === 0) return;
    const parts: Buffer[] = [];
    // CopyFail and a Sync end a COPY or an extended query (PostgreSQL ignores them otherwise).
    if (holds) parts.push(Buffer.from([MSG.copyFail, 0, 0, 0, 5, 0]), sync(), simpleQuery('ROLLBACK'));
    for (const name of conn.statements) parts.push(closeStatement(name));
    parts.push(sync());
    conn.statements.clear();
    const unit: Unit = { conn, data: Buffer.concat(parts), end: 'sync', enqueuedAt: Date.now(), settings: false, listen: false, refused: undefined, internal: true };
    if (holds) this.queue.unshift(unit);
    else this.queue.push(unit);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let unit = this.next(); unit; unit = this.next()) await this.run(unit);
    } finally {
      this.running = false;
    }
    this.armBusyTimer();
  }

  private next(): Unit | undefined {
    for (let i = 0; i < this.queue.length; i++) {
      const unit = this.queue[i]!;
      if (this.holder && unit.conn !== this.holder) continue;
      if (unit.conn.draining && !unit.internal) {
        if (this.holder) return undefined;
        continue;
      }
      this.queue.splice(i, 1);
      return unit;
    }
    return undefined;
  }

  private async run(unit: Unit): Promise<void> {
    const conn = unit.conn;
    if (conn.closed && !unit.internal) return;
    if (unit.refused && this.holder !== conn) return this.refuse(unit);
    if (!unit.internal) await this.switchSettings(conn);
    // A refused statement inside a held session still goes to PGlite, as an error, so that a
    // transaction is aborted exactly as PostgreSQL would abort it.
    const data = unit.refused ? simpleQuery(raiseSql(unit.refused)) : unit.data;
    const out: Uint8Array[] = [];
    try {
      await this.db.runExclusive(() => this.db.execProtocolRawStream(data, { onRawData: (chunk) => void out.push(chunk.slice()) }));
    } catch (error) {
      this.opts.onEvent?.('exec_error');
      this.opts.log?.error({ event: 'exec_error', client: conn.id, err: { name: (error as Error).name, message: (error as Error).message } }, 'embedded database failed to run a client request; closing that client');
      conn.close();
    }
    const scan = scanOutput(out.length === 1 ? Buffer.from(out[0]!.buffer, out[0]!.byteOffset, out[0]!.byteLength) : Buffer.concat(out));
    if (unit.refused) this.report('refused', { client: conn.id, reason: unit.refused }, 'refused session-level statement on the embedded database');
    if (!unit.internal) {
      conn.write(scan.own);
      if (unit.refused && unit.end !== 'sync' && unit.end !== 'query') conn.discarding = true;
    }
    if (scan.notifications.length) {
      const notes = Buffer.concat(scan.notifications);
      for (const c of this.connections) if (c.listening) c.write(notes);
    }
    if (scan.parameters.application_name !== undefined) conn.applicationName = scan.parameters.application_name;
    if (unit.listen) conn.listening = true;
    if (unit.settings) this.settingsOwner = conn;
    const holds = !unit.internal && scan.status !== 'I';
    if (holds && this.holder !== conn) this.holderSince = Date.now();
    this.holder = holds ? conn : null;
    this.holderIdleSince = Date.now();
    this.holderStatus = scan.status === 'T' || scan.status === 'E' ? scan.status : null;
    if (holds && conn.closed) this.cleanUpAfter(conn);
  }

  /** A refused statement from a client that holds nothing: answered without touching the session. */
  private refuse(unit: Unit): void {
    this.report('refused', { client: unit.conn.id, reason: unit.refused }, 'refused session-level statement on the embedded database');
    this.fail(unit, { code: '0A000', message: `${SESSION_STATE}: ${unit.refused}`, hint: SESSION_HINT });
  }

  /** Answers a unit with an error as PostgreSQL would: ReadyForQuery now, or after the client's Sync. */
  private fail(unit: Unit, error: Parameters<typeof errorResponse>[0]): void {
    const conn = unit.conn;
    conn.write(errorResponse(error));
    if (unit.end === 'sync' || unit.end === 'query') return conn.write(readyForQuery('I'));
    conn.discarding = true;
    const rest = this.queue.filter((u) => u.conn === conn);
    this.queue = this.queue.filter((u) => u.conn !== conn);
    for (const u of rest) {
      if (conn.discarding) this.discard(u);
      else this.queue.push(u);
    }
  }

  private discard(unit: Unit): void {
    if (unit.end !== 'sync') return;
    unit.conn.discarding = false;
    unit.conn.write(readyForQuery('I'));
  }

  /** Saves the previous client's changed settings and restores this client's, when they differ. */
  private async switchSettings(conn: Connection): Promise<void> {
    try {
      const owner = this.settingsOwner;
      if (owner && owner !== conn) {
        this.settingsOwner = null;
        // What differs from the baseline: settings the owner SET, and baseline settings it RESET.
        const changed = (await this.sessionSettings()).filter((s) => !UNRESTORABLE.has(s.name) && (s.source === 'session' ? this.baseline.get(s.name) !== s.setting : this.baseline.has(s.name)));
        if (!owner.closed) owner.savedSettings = changed.map((s) => [s.name, s.setting]);
        await this.applySettings(changed.map((s) => [s.name, this.baseline.get(s.name) ?? s.reset_val]));
      }
      if (conn.savedSettings) {
        await this.applySettings(conn.savedSettings);
        conn.savedSettings = null;
        this.settingsOwner = conn;
      }
    } catch (error) {
      this.report('exec_error', { client: conn.id, err: { message: (error as Error).message } }, 'could not switch session settings between clients');
    }
  }

  /** The settings the session changed, and the baseline ones (which a client may have RESET). */
  private async sessionSettings(): Promise<{ name: string; setting: string; reset_val: string; source: string }[]> {
    const { rows } = await this.db.query<{ name: string; setting: string; reset_val: string; source: string }>(
      "SELECT name, setting, reset_val, source FROM pg_settings WHERE source = 'session' OR name = ANY($1::text[])",
      [[...this.baseline.keys()]],
    );
    return rows;
  }

  private async applySettings(settings: [string, string][]): Promise<void> {
    if (!settings.length) return;
    await this.db.query('SELECT set_config(name, value, false) FROM unnest($1::text[], $2::text[]) AS s(name, value)', [settings.map((s) => s[0]), settings.map((s) => s[1])]);
  }

  /**
   * Waiting behind a holder that keeps working is normal (a long migration); waiting behind one that
   * has sent nothing for `busyTimeoutMs` is the deadlock of a transaction waiting on another client.
   */
  private armBusyTimer(): void {
    clearTimeout(this.busyTimer);
    const holder = this.holder;
    if (!holder || !this.queue.some((u) => u.conn !== holder)) return;
    this.busyTimer = setTimeout(() => this.expireWaiting(), Math.max(0, this.holderIdleSince + this.opts.busyTimeoutMs - Date.now()));
    this.busyTimer.unref();
  }

  /** Fails the waiting clients once the holder has been idle too long. */
  private expireWaiting(): void {
    const holder = this.holder;
    if (!holder || this.running) return;
    const now = Date.now();
    if (now - this.holderIdleSince < this.opts.busyTimeoutMs) return this.armBusyTimer();
    const state = this.holderStatus === 'T' ? 'in a transaction' : this.holderStatus === 'E' ? 'in a failed transaction' : 'with an unfinished query or open cursor';
    const app = holder.applicationName ? ` (application_name "${holder.applicationName}")` : '';
    const waiting = new Set<Connection>();
    for (const unit of [...this.queue]) {
      // Only a client's first waiting unit fails; those after it wait on (or are discarded until Sync).
      if (unit.conn === holder || waiting.has(unit.conn)) continue;
      waiting.add(unit.conn);
      this.queue.splice(this.queue.indexOf(unit), 1);
      const message = `${BUSY}: waited ${now - unit.enqueuedAt} ms for the embedded database, held by client #${holder.id}${app} ${state} since ${new Date(this.holderSince).toISOString()} and idle for ${now - this.holderIdleSince} ms`;
      this.report('busy', { client: unit.conn.id, holder: holder.id, holderApplication: holder.applicationName, heldMs: now - this.holderSince }, 'client waited too long for the embedded database');
      this.fail(unit, { code: '55P03', message, detail: `Waiting client #${unit.conn.id}${unit.conn.applicationName ? ` (application_name "${unit.conn.applicationName}")` : ''}.`, hint: BUSY_HINT });
    }
    this.armBusyTimer();
  }

  /** Closes every client and lets their clean-up finish, so PGlite is idle when it is closed. */
  async stop(): Promise<void> {
    clearTimeout(this.busyTimer);
    for (const c of [...this.connections]) c.close();
    for (const deadline = Date.now() + 2000; (this.running || this.queue.length) && Date.now() < deadline; ) await delay(5);
  }
}

/** A statement that fails with the refusal as its message, SQLSTATE 0A000 (feature_not_supported). */
function raiseSql(reason: string): string {
  const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
  return `DO $parley$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = ${literal(`${SESSION_STATE}: ${reason}`)}, HINT = ${literal(SESSION_HINT)}; END$parley$`;
}

/**
 * Serves `db` on a unix socket in `socketDir`.
 *
 * A unix socket rather than a loopback port: a loopback port without a password lets every local
 * user read every tenant's messages with psql, while the socket's directory (0700) lets in only the
 * user running Parley, with no secret to generate, store or rotate; it is also faster than TCP.
 */
export async function servePGlite(db: PGlite, options: PGliteServerOptions): Promise<PGliteServer> {
  const { socketDir } = options;
  if (!socketPathFits(socketDir)) throw new Error(`The socket path in ${socketDir} is longer than the operating system allows`);
  mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  chmodSync(socketDir, 0o700);
  const socketPath = join(socketDir, SOCKET_FILE);
  // A socket file left by a process that died (the data directory's lock says none is running).
  rmSync(socketPath, { force: true });
  const mux = new Multiplexer(db, { ...options, busyTimeoutMs: options.busyTimeoutMs ?? 5000 });
  await mux.init();
  let nextId = 1;
  const server: Server = createServer((socket) => {
    const conn = new Connection(nextId++, socket, mux);
    mux.connections.add(conn);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return {
    exclusive: (fn) => mux.exclusive(fn),
    socketDir,
    connectionString: `postgres://postgres@/postgres?host=${encodeURIComponent(socketDir)}`,
    async stop() {
      await mux.stop();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(socketPath, { force: true });
    },
  };
}

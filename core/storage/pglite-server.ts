/**
 * Serves an in-process PGlite on a loopback port to any number of PostgreSQL clients.
 *
 * PGlite has one session. pglite-socket (0.2.x) interleaves clients message by message, so two
 * clients using the extended protocol overwrite each other's unnamed statement and portal
 * ("unnamed prepared statement does not exist" under concurrency). Here a client's messages are
 * grouped into units that end at Sync or a simple Query and each unit runs whole; while a unit leaves
 * a transaction open, only that client's units run, so transactions never interleave.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
const LISTEN = /\bLISTEN\s/i;

interface Unit {
  conn: Connection;
  data: Uint8Array;
}

class Connection {
  private buffer: Buffer = Buffer.alloc(0);
  /** Issued LISTEN: notifications are delivered to it, whichever client caused them. */
  listening = false;
  private started = false;
  private pending: Buffer[] = [];
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly mux: Multiplexer,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  write(data: Uint8Array): void {
    if (!this.closed && this.socket.writable) this.socket.write(data);
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
        if (code === CANCEL_REQUEST) return this.close();
        if (code !== PROTOCOL_3) return this.close();
        this.started = true;
        this.mux.enqueue({ conn: this, data: new Uint8Array(msg) });
        continue;
      }
      if (this.buffer.length < 5) return;
      const type = this.buffer[0]!;
      const len = this.buffer.readInt32BE(1) + 1;
      if (this.buffer.length < len) return;
      const msg = this.buffer.subarray(0, len);
      this.buffer = this.buffer.subarray(len);
      if (type === 0x58 /* X: Terminate */) return this.close();
      this.pending.push(msg);
      // Sync, simple Query, Flush and COPY data end a unit of work.
      if (type === 0x53 || type === 0x51 || type === 0x48 || type === 0x64 || type === 0x63 || type === 0x66) {
        const data = this.pending.length === 1 ? msg : Buffer.concat(this.pending);
        this.pending = [];
        this.mux.enqueue({ conn: this, data: new Uint8Array(data) });
      }
    }
  }
}

class Multiplexer {
  private queue: Unit[] = [];
  private running = false;
  /** The connection whose open transaction must finish before anyone else runs. */
  private owner: Connection | null = null;

  constructor(private readonly db: PGlite) {}

  enqueue(unit: Unit): void {
    this.queue.push(unit);
    void this.pump();
  }

  closed(conn: Connection): void {
    this.queue = this.queue.filter((u) => u.conn !== conn);
    if (this.owner === conn) {
      this.owner = null;
      void this.db
        .exec('ROLLBACK')
        .catch(() => undefined)
        .finally(() => void this.pump());
    }
  }

  readonly connections = new Set<Connection>();

  /**
   * PGlite writes a NotificationResponse into the output of whichever client ran the NOTIFY. Those are
   * moved to every client that issued LISTEN (clients filter by channel), so BullMQ workers wake at once.
   */
  private deliver(conn: Connection, output: Buffer): void {
    if (output.indexOf(0x41) === -1) return conn.write(output);
    const own: Buffer[] = [];
    const notes: Buffer[] = [];
    let offset = 0;
    while (offset + 5 <= output.length) {
      const len = output.readInt32BE(offset + 1) + 1;
      const msg = output.subarray(offset, offset + len);
      (output[offset] === 0x41 ? notes : own).push(msg);
      offset += len;
    }
    if (offset < output.length) own.push(output.subarray(offset));
    conn.write(Buffer.concat(own));
    if (!notes.length) return;
    const payload = Buffer.concat(notes);
    for (const c of this.connections) if (c.listening) c.write(payload);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const index = this.owner ? this.queue.findIndex((u) => u.conn === this.owner) : 0;
        if (index === -1) break;
        const [unit] = this.queue.splice(index, 1);
        if (!unit || unit.conn.closed) continue;
        if (!unit.conn.listening && LISTEN.test(Buffer.from(unit.data.buffer, unit.data.byteOffset, unit.data.byteLength).toString('latin1'))) unit.conn.listening = true;
        const out: Uint8Array[] = [];
        try {
          await this.db.runExclusive(() => this.db.execProtocolRawStream(unit.data, { onRawData: (chunk) => out.push(chunk.slice()) }));
        } catch {
          unit.conn.close();
        }
        this.deliver(unit.conn, Buffer.concat(out));
        this.owner = this.db.isInTransaction() && !unit.conn.closed ? unit.conn : null;
        if (this.db.isInTransaction() && unit.conn.closed) await this.db.exec('ROLLBACK').catch(() => undefined);
      }
    } finally {
      this.running = false;
    }
  }
}

export interface PGliteServer {
  port: number;
  stop(): Promise<void>;
}

export async function servePGlite(db: PGlite, host = '127.0.0.1', port = 0): Promise<PGliteServer> {
  const mux = new Multiplexer(db);
  const connections = new Set<Connection>();
  const server: Server = createServer((socket) => {
    const conn = new Connection(socket, mux);
    connections.add(conn);
    mux.connections.add(conn);
    socket.on('close', () => {
      connections.delete(conn);
      mux.connections.delete(conn);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('PGlite server has no TCP address');
  return {
    port: address.port,
    async stop() {
      for (const c of connections) c.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * The embedded database server (core/storage/pglite-server.ts) serves one PGlite session to many
 * clients. Each case runs on it and, where the behaviour must be PostgreSQL's, on the machine's
 * PostgreSQL too (skipped with a warning when unreachable, failing under CI=true).
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import QueryStream from 'pg-query-stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../core/storage/database.js';
import { SOCKET_FILE } from '../core/storage/pglite-server.js';
import { TEST_PG_URL } from './backend.js';

const BUSY_TIMEOUT_MS = 400;

async function postgresProblem(): Promise<string | null> {
  const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    return null;
  } catch (error) {
    const problem = `PostgreSQL at ${TEST_PG_URL} is unreachable: ${(error as Error).message}`;
    if (process.env.CI === 'true') throw new Error(`${problem} (CI=true: these comparisons must not be skipped)`);
    console.warn(`[pglite-server tests] skipping the PostgreSQL half: ${problem}`);
    return problem;
  }
}
const postgresMissing = (await postgresProblem()) !== null;

interface Backend {
  pool: pg.Pool;
  connectionString: string;
  close(): Promise<void>;
}

/** The embedded database exactly as the gateway opens it, with a short busy timeout. */
async function embedded(): Promise<Backend & { db: Database; dataDir: string; logs: Record<string, unknown>[]; registry: Registry }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-pglite-'));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  const registry = new Registry();
  const db = await openDatabase({ dataDir, poolSize: 6, log: pino({ level: 'warn' }, sink), registry, busyTimeoutMs: BUSY_TIMEOUT_MS });
  return {
    db,
    dataDir,
    logs,
    registry,
    pool: db.pool,
    connectionString: db.connectionString,
    async close() {
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function postgres(): Promise<Backend> {
  const pool = new pg.Pool({ connectionString: TEST_PG_URL, max: 6 });
  return { pool, connectionString: TEST_PG_URL, close: () => pool.end() };
}

// PGlite takes seconds to open; the specifications share one instance (each uses its own clients).
let sharedEmbedded: ReturnType<typeof embedded> | undefined;
const openShared = () => (sharedEmbedded ??= embedded());
afterAll(async () => {
  await (await sharedEmbedded)?.close();
});

const backends = [
  { name: 'embedded PGlite', open: async (): Promise<Backend> => ({ ...(await openShared()), close: async () => undefined }), skip: false },
  { name: 'PostgreSQL', open: postgres, skip: postgresMissing },
];

/** Reads `count` rows from a stream and leaves it open (the cursor stays on the server). */
async function take(stream: QueryStream, count: number): Promise<{ n: number }[]> {
  const rows: { n: number }[] = [];
  while (rows.length < count) {
    const row = stream.read() as { n: number } | null;
    if (row === null) await once(stream, 'readable');
    else rows.push(row);
  }
  return rows;
}

/** pg's own paging: a Query with `rows` executes its portal `rows` at a time until done. */
function pagedQuery(client: pg.PoolClient, text: string, rows: number): Promise<number[]> {
  const query = new pg.Query({ text, rows } as pg.QueryConfig);
  const values: number[] = [];
  query.on('row', (row: { n: number }) => values.push(row.n));
  return new Promise((resolve, reject) => {
    query.on('end', () => resolve(values));
    query.on('error', reject);
    void client.query(query as never);
  });
}

for (const backend of backends) {
  describe.skipIf(backend.skip)(`on ${backend.name}`, () => {
    let b: Backend;
    beforeAll(async () => {
      b = await backend.open();
    });
    afterAll(async () => {
      await b?.close();
    });

    it('paged queries (Query with rows) on two clients at once each return every row', async () => {
      const [a, c] = [await b.pool.connect(), await b.pool.connect()];
      try {
        const [x, y] = await Promise.all([
          pagedQuery(a, 'SELECT n FROM generate_series(1, 250) AS n', 7),
          pagedQuery(c, 'SELECT n * 2 AS n FROM generate_series(1, 250) AS n', 5),
        ]);
        expect(x).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
        expect(y).toEqual(Array.from({ length: 250 }, (_, i) => 2 * (i + 1)));
      } finally {
        a.release();
        c.release();
      }
    });

    it('pg-query-stream streams a large result in batches while another client waits its turn', async () => {
      const a = await b.pool.connect();
      try {
        const stream = a.query(new QueryStream('SELECT n::int AS n FROM generate_series(1, 5000) AS n', [], { batchSize: 100 }));
        const first = await take(stream, 150);
        const other = b.pool.query('SELECT 42 AS answer');
        const rest: number[] = [];
        for await (const row of stream) rest.push((row as { n: number }).n);
        expect(first.map((r) => r.n)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
        expect(first.length + rest.length).toBe(5000);
        expect((await other).rows[0].answer).toBe(42);
      } finally {
        a.release();
      }
    });

    it('a SQL cursor is fetched page by page inside a transaction', async () => {
      const a = await b.pool.connect();
      try {
        await a.query('BEGIN');
        await a.query('DECLARE c CURSOR FOR SELECT n FROM generate_series(1, 30) AS n');
        const pages: number[][] = [];
        for (let page = await a.query('FETCH 10 FROM c'); page.rowCount; page = await a.query('FETCH 10 FROM c')) pages.push(page.rows.map((r) => r.n));
        await a.query('COMMIT');
        expect(pages).toHaveLength(3);
      } finally {
        a.release();
      }
    });

    it('two clients use the same prepared statement name for different statements', async () => {
      const [a, c] = [await b.pool.connect(), await b.pool.connect()];
      try {
        const one = await a.query({ name: 'q1', text: 'SELECT $1::int + 1 AS v', values: [1] });
        const two = await c.query({ name: 'q1', text: "SELECT $1::text || '!' AS v", values: ['hi'] });
        const again = await a.query({ name: 'q1', text: 'SELECT $1::int + 1 AS v', values: [41] });
        expect([one.rows[0].v, two.rows[0].v, again.rows[0].v]).toEqual([2, 'hi!', 42]);
      } finally {
        a.release();
        c.release();
      }
    });

    it("a client's prepared statements are gone once it disconnects", async () => {
      const a = await b.pool.connect();
      await a.query({ name: 'leaves_with_me', text: 'SELECT 1' });
      a.release(true);
      const deadline = Date.now() + 5000;
      let left = 1;
      while (left && Date.now() < deadline) {
        left = (await b.pool.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE '%leaves_with_me'")).rows[0].n;
      }
      expect(left).toBe(0);
    });

    it("one client's SET is invisible to another and still in effect for itself", async () => {
      const [a, c] = [await b.pool.connect(), await b.pool.connect()];
      try {
        await a.query("SET statement_timeout = '4321ms'");
        expect((await c.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('0');
        expect((await a.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('4321ms');
        await a.query("SELECT set_config('lock_timeout', '1500ms', false)");
        expect((await c.query('SHOW lock_timeout')).rows[0].lock_timeout).toBe('0');
        expect((await a.query('SHOW lock_timeout')).rows[0].lock_timeout).toBe('1500ms');
        await a.query('RESET ALL');
        expect((await a.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('0');
      } finally {
        a.release(true);
        c.release();
      }
    });

    it('a temporary table dropped at commit works inside a transaction', async () => {
      const a = await b.pool.connect();
      try {
        await a.query('BEGIN');
        await a.query('CREATE TEMP TABLE scratch (x int) ON COMMIT DROP');
        await a.query('INSERT INTO scratch VALUES (1), (2)');
        expect((await a.query('SELECT sum(x)::int AS s FROM scratch')).rows[0].s).toBe(3);
        await a.query('COMMIT');
        expect((await a.query("SELECT to_regclass('pg_temp.scratch') AS t")).rows[0].t).toBeNull();
      } finally {
        a.release();
      }
    });
  });
}

describe('embedded PGlite, where one session cannot behave like many', () => {
  let e: Awaited<ReturnType<typeof embedded>>;
  beforeAll(async () => {
    e = await openShared();
  });

  it("runs outside the gateway's event loop: a long query leaves it free to serve", async () => {
    // In the same thread, PGlite's WebAssembly would hold the loop for the whole query (no turn taken).
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    await e.pool.query('SELECT count(*) FROM generate_series(1, 3000000) AS g(n) WHERE n % 7 = 0');
    spinning = false;
    expect(turns).toBeGreaterThan(20);
  });

  it('a query through another client while a transaction is open fails fast with PARLEY_DB_BUSY naming the holder', async () => {
    const holder = await e.pool.connect();
    try {
      await holder.query("SET application_name = 'export-job'");
      await holder.query('BEGIN');
      const started = Date.now();
      const error = await e.pool.query('SELECT 1').then(
        () => null,
        (err: unknown) => err as pg.DatabaseError,
      );
      expect(error?.code).toBe('55P03');
      expect(error?.message).toMatch(/^PARLEY_DB_BUSY: .*client #\d+ \(application_name "export-job"\) in a transaction since /);
      expect(Date.now() - started).toBeLessThan(BUSY_TIMEOUT_MS + 2000);
      await holder.query('COMMIT');
      expect((await e.pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      holder.release(true);
    }
  });

  it('a client waiting behind an open cursor fails fast, and the cursor reads on', async () => {
    const a = await e.pool.connect();
    try {
      const stream = a.query(new QueryStream('SELECT n::int AS n FROM generate_series(1, 1000) AS n', [], { batchSize: 10 }));
      await take(stream, 5);
      await expect(e.pool.query('SELECT 1')).rejects.toMatchObject({ code: '55P03', message: expect.stringMatching(/open cursor/) });
      let count = 5;
      for await (const _ of stream) count += 1;
      expect(count).toBe(1000);
    } finally {
      a.release();
    }
  });

  it('a busy wait is logged without SQL and counted', async () => {
    const holder = await e.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT 'secret text' AS body");
      await expect(e.pool.query("SELECT 'another secret'")).rejects.toMatchObject({ code: '55P03' });
      await holder.query('ROLLBACK');
    } finally {
      holder.release();
    }
    const line = e.logs.find((l) => l.event === 'busy');
    expect(line).toMatchObject({ event: 'busy', holder: expect.any(Number) });
    expect(JSON.stringify(e.logs)).not.toMatch(/secret/);
    expect(await e.registry.getSingleMetricAsString('parley_database_server_errors_total')).toMatch(/event="busy"} [1-9]/);
  });

  it('session state that cannot be kept per client is refused with PARLEY_DB_SESSION_STATE', async () => {
    for (const sql of ['CREATE TEMP TABLE kept (x int)', 'PREPARE p AS SELECT 1', 'SELECT pg_advisory_lock(7)', 'DISCARD ALL']) {
      await expect(e.pool.query(sql), sql).rejects.toMatchObject({ code: '0A000', message: expect.stringMatching(/^PARLEY_DB_SESSION_STATE: /) });
    }
    const a = await e.pool.connect();
    try {
      await a.query('BEGIN');
      await expect(a.query('CREATE TEMP TABLE kept (x int)')).rejects.toMatchObject({ code: '0A000' });
      await expect(a.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await a.query('ROLLBACK');
    } finally {
      a.release();
    }
    expect((await e.pool.query("SELECT to_regclass('pg_temp.kept') AS t")).rows[0].t).toBeNull();
  });

  it('is served on a unix socket only this user can reach, and pg connects to it', async () => {
    const socketDir = new URLSearchParams(e.connectionString.split('?')[1]).get('host')!;
    expect(socketDir.startsWith(e.dataDir)).toBe(true);
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(socketDir, SOCKET_FILE)).mode & 0o777).toBe(0o600);
    const client = new pg.Client({ connectionString: e.connectionString });
    await client.connect();
    expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await client.end();
  });

  it.skipIf(process.getuid?.() !== 0)('another local user cannot connect', () => {
    const socketPath = join(new URLSearchParams(e.connectionString.split('?')[1]).get('host')!, SOCKET_FILE);
    const probe = `require('net').connect(${JSON.stringify(socketPath)}).on('connect', () => { console.log('connected'); process.exit(0) }).on('error', (e) => { console.log(e.code); process.exit(0) })`;
    const result = spawnSync(process.execPath, ['-e', probe], { uid: 65534, gid: 65534, encoding: 'utf8' });
    expect(result.stdout.trim()).toBe('EACCES');
  });

  it('BullMQ on its PostgreSQL backend runs a job through the connection string', async () => {
    const { withBackend, createPostgresBackend } = await import('bullmq');
    const bull = withBackend(createPostgresBackend);
    const connection = { connectionString: e.connectionString, max: 2, schema: 'bullmq', migrate: true };
    const queue = new bull.Queue('pglite-server-test', { connection });
    const worker = new bull.Worker('pglite-server-test', async (job: { data: { x: number } }) => job.data.x * 2, { connection, autorun: true });
    try {
      const done = new Promise((resolve) => worker.on('completed', (_job: unknown, value: unknown) => resolve(value)));
      await queue.add('double', { x: 21 });
      expect(await done).toBe(42);
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});

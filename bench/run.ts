/**
 * `npm run bench`: Parley's speed and memory figures, each next to a baseline measured in the same run.
 *
 * - boot to ready of `parley start` on the embedded default (fresh data dir, then a restart);
 * - http channel, and signed Twilio SMS webhooks answered in TwiML, through the full demo pipeline with
 *   persistence, embedded PGlite and (when reachable) PostgreSQL + Redis, against a bare express
 *   handler returning a fixed reply;
 * - resident memory of the gateway under that load.
 * Servers run as child processes; autocannon drives them from this process. The demo's Twilio
 * channels are switched on with a made-up number and public URL, and their REST calls (replies that
 * miss the inline budget) go to a local fake of Twilio's API: nothing leaves the machine.
 */
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freshDatabase } from '../test/backend.js';
import { benchScenarios, type BenchTwilio, type RequestPool } from './scenarios.js';
import { startFakeTwilio } from '../test/fakes/twilio-api.js';
import { preloadMessages } from './stored-data.js';
import { botkitModules } from './peer-install.js';
import { cpuMs } from './proc-cpu.js';
import { gatewayNodeFlags } from './node-flags.js';
import { paced, type PacedResult } from './paced.js';
import { BENCH_GAPS, wakeCost, wakeCostLine } from './wake-cost.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const KEY = 'bench-key-0123456789';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The demo tenant's Twilio number and the public URL Twilio would call (never contacted). */
const TWILIO_NUMBER = '+15558880001';
const PUBLIC_BASE_URL = 'https://parley-bench.example.invalid';
/**
 * `npm run bench -- --only=boot,library,load,fixed,sustained,stored,scaleout,peers`: some sections (default:
 * all but `peers`, which installs Botkit into a scratch folder the first time; `--peers` adds it).
 */
type Section = 'boot' | 'library' | 'load' | 'fixed' | 'sustained' | 'stored' | 'scaleout' | 'peers';
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const run = (section: Section) => (only ? only.includes(section) : section !== 'peers' || process.argv.includes('--peers'));
const BOOT_RUNS = Number(process.env.BENCH_BOOT_RUNS ?? 5);
const SUSTAINED_SECONDS = Number(process.env.BENCH_SUSTAINED_SECONDS ?? 60);
/** Fixed rates (messages/s) of the latency scenario, embedded and on PostgreSQL + Redis. */
const RATE_EMBEDDED = Number(process.env.BENCH_RATE_EMBEDDED ?? 100);
const RATE_EXTERNAL = Number(process.env.BENCH_RATE_EXTERNAL ?? 300);
/** Messages stored before the "stored data" scenario. */
const STORED_EMBEDDED = Number(process.env.BENCH_STORED_EMBEDDED ?? 1_000_000);
const STORED_EXTERNAL = Number(process.env.BENCH_STORED_EXTERNAL ?? 1_000_000);
/**
 * Distinct requests made before each run, per second of it (requests/s it can measure): a run
 * stops early, and says so, when they run out. The fixed-rate runs make what their rate needs.
 */
const POOL_RATE = Number(process.env.BENCH_POOL_RATE ?? 3_000);
const poolSize = (seconds: number, perSecond = POOL_RATE) => Math.ceil(perSecond * seconds) + CONNECTIONS;
/** A fixed-rate run's pool: its rate, and a little for autocannon's rounding. */
const ratePool = (rate: number) => poolSize(DURATION, rate * 1.05);
/** Load before each measured run: a gateway's first requests compile its code (and CPU per request would count that). */
const WARM_UP_SECONDS = Number(process.env.BENCH_WARM_UP_SECONDS ?? 3);
/**
 * `BENCH_ROUNDS` (1): rounds of bare express then Parley for each load scenario. This machine's speed
 * moves by half within minutes, so one pair's ratio can be off by as much; with several rounds every
 * pair is printed and the ratio is their median.
 */
const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_ROUNDS ?? 1)));
/** The line that sums up several rounds: their ratios and its median. */
const roundsLine = (ratios: number[], target: string) => `  ratio over ${ratios.length} rounds: median ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(', ')})${target}`;
const READY = /Parley is ready on http:\/\/[\d.]+:(\d+)/;

interface Started {
  child: ChildProcess;
  port: number;
  readyMs: number;
  /** CPU time the process used to get ready: steadier than readyMs on shared cores. */
  readyCpuMs: number;
}

function startProcess(args: string[], readyPattern: RegExp, env: NodeJS.ProcessEnv, cwd = ROOT): Promise<Started> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      const m = readyPattern.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve({ child, port: Number(m[1]), readyMs: performance.now() - t0, readyCpuMs: cpuMs(child.pid!) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`process exited (${code}) before ready:\n${out}`)));
    setTimeout(() => reject(new Error(`not ready after 60 s:\n${out}`)), 60_000).unref();
  });
}

/** `BENCH_TRACE=1`: each start, stop and cleanup step on stderr, with the time, to find where a run hangs. */
const trace = (step: string) => {
  if (process.env.BENCH_TRACE) process.stderr.write(`[bench ${new Date().toISOString()}] ${step}\n`);
};

/** SIGTERM, then SIGKILL if the process has not exited within 20 s (and the run says so). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  trace(`stopping pid ${child.pid}`);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 20_000)))]);
  clearTimeout(timer);
  if (late) {
    console.error(`pid ${child.pid} (${child.spawnargs.slice(1).join(' ')}) did not exit within 20 s of SIGTERM: killed`);
    child.kill('SIGKILL');
    await exited;
  }
  trace(`pid ${child.pid} exited`);
}

/**
 * CPU time (ms) used so far by each PostgreSQL backend serving `databaseUrl`'s database: only the
 * gateway's own connections, not the other clients of a PostgreSQL these cores share.
 */
async function databaseCpuMs(databaseUrl: string): Promise<Map<number, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    const used = new Map<number, number>();
    for (const { pid } of rows) {
      try {
        used.set(pid, cpuMs(pid));
      } catch {
        // the backend ended while we looked
      }
    }
    return used;
  } finally {
    await client.end();
  }
}

/**
 * Waits (at most 20 s) until the server used under 10% of a core for half a second: the requests a
 * previous run left in flight when it stopped are handed to the send job (their connections closed),
 * and that work must not be counted in the next run's CPU per request.
 */
async function idle(pid: number): Promise<void> {
  const until = performance.now() + 20_000;
  let last = cpuMs(pid);
  while (performance.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cpuMs(pid);
    if (now - last < 50) return;
    last = now;
  }
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export interface LoadResult {
  /** The 1-minute load average when the run ended: other work on these cores makes figures noisy. */
  load: number;
  /** Server CPU per request (ms; all of the servers' together), and the local PostgreSQL's when it is the store. */
  cpuPerRequest?: number;
  dbCpuPerRequest?: number;
  rps: number;
  p50: number;
  p99: number;
  /** Requests answered with a 2xx. */
  accepted: number;
  non2xx: number;
  errors: number;
  /** The largest resident memory of any one server during the run. */
  peakRssMb?: number;
  /** The pool ran out before the time was up, and the run stopped there. */
  ranOutAfterS?: number;
  /** A fixed-rate run's own figures (p90, max, how late the generator sent). */
  paced?: PacedResult;
}

/**
 * Drives `url` (several: each connection is bound to one of them in turn) with the requests of
 * `pool`, in order over all connections. `rate`: a fixed rate (requests/s over all connections)
 * instead of as fast as the servers answer. `pids`: the servers, for CPU and resident memory (each is
 * first waited on until idle). `database`: the gateway's PostgreSQL database, whose backends' CPU is
 * counted per request too.
 */
export async function load(url: string | string[], pool: RequestPool, pids: number | number[] = [], opts: { rate?: number; seconds?: number; database?: string; onStart?: () => void | Promise<void> } = {}): Promise<LoadResult> {
  const servers = ([] as number[]).concat(pids);
  trace(`load ${([] as string[]).concat(url).join(' ')}${opts.rate ? ` at ${opts.rate}/s` : ''}: waiting for idle`);
  for (const pid of servers) await idle(pid);
  trace('load: running');
  await opts.onStart?.();
  const peaks = servers.map(() => 0);
  const sampler = servers.length ? setInterval(() => servers.forEach((pid, i) => (peaks[i] = Math.max(peaks[i]!, rssMb(pid)))), 250) : undefined;
  const cpu = () => servers.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const { requests, cycle } = pool;
  let sent = 0;
  let ranOutAt: number | undefined;
  let instance: autocannon.Instance | undefined;
  const t0 = performance.now();
  const next = () => {
    if (sent === requests.length) {
      if (cycle) sent = 0;
      else {
        // Requests still being set up reuse the last one until autocannon stops: a few duplicates.
        ranOutAt ??= (performance.now() - t0) / 1000;
        instance?.stop();
        return requests[requests.length - 1]!;
      }
    }
    return requests[sent++]!;
  };
  const cpu0 = cpu();
  const db0 = opts.database ? await databaseCpuMs(opts.database) : undefined;
  /** What either generator measured; CPU, memory and the load average are taken the same way after. */
  let measured: Pick<LoadResult, 'rps' | 'p50' | 'p99' | 'accepted' | 'non2xx' | 'errors' | 'paced'> & { total: number };
  if (opts.rate && process.env.BENCH_RATE_GENERATOR !== 'autocannon') {
    // An even rate (autocannon's overallRate sends each second's budget in a burst; see paced.ts).
    const urls = ([] as string[]).concat(url);
    if (urls.length > 1) throw new Error('a fixed-rate run drives one URL');
    const r = await paced(urls[0]!, next, { rate: opts.rate, seconds: opts.seconds ?? DURATION, connections: CONNECTIONS });
    measured = { total: r.sent, rps: r.rps, p50: r.p50, p99: r.p99, accepted: r.accepted, non2xx: r.non2xx, errors: r.errors, paced: r };
  } else {
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      instance = autocannon(
        {
          // Several URLs are supported by autocannon (connection i goes to url[i % n]); its types say one.
          url: url as string,
          connections: CONNECTIONS,
          duration: opts.seconds ?? DURATION,
          ...(opts.rate ? { overallRate: opts.rate } : {}),
          method: 'POST',
          requests: [{ setupRequest: (req) => ({ ...req, ...next() }) }],
        },
        (error, done) => (error ? reject(error) : resolve(done)),
      );
    });
    const { requests: r, latency } = result;
    measured = { total: r.total, rps: Math.round(r.average), p50: latency.p50, p99: latency.p99, accepted: result['2xx'], non2xx: result.non2xx, errors: result.errors + result.timeouts };
  }
  if (sampler) clearInterval(sampler);
  const { total, ...figures } = measured;
  const per = total || 1;
  let dbCpu = 0;
  if (opts.database && db0) for (const [backend, ms] of await databaseCpuMs(opts.database)) dbCpu += (ms - (db0.get(backend) ?? 0)) / per;
  return {
    load: loadavg()[0]!,
    ...(servers.length ? { cpuPerRequest: (cpu() - cpu0) / per } : {}),
    ...(dbCpu > 0.01 ? { dbCpuPerRequest: dbCpu } : {}),
    ...figures,
    ...(servers.length ? { peakRssMb: Math.max(...peaks) } : {}),
    ...(ranOutAt !== undefined ? { ranOutAfterS: Math.round(ranOutAt) } : {}),
  };
}

/**
 * What happened to every inbound SMS of a database, once nothing is in flight: `accepted` (2xx
 * answers the load generator counted) against the messages stored, replies per message, duplicates
 * (a reply stored twice for the same message and position, or a REST send the outbox did not record:
 * sent twice from the recipient's view) and lost ones (accepted and not stored, or stored and never
 * answered). `restSids`: the SIDs of the messages the fake Twilio API accepted meanwhile.
 */
async function replyAccounting(url: string, accepted: number, restSids: string[]) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const inFlight = async () => {
      const { rows } = await client.query<{ n: number }>(`SELECT (SELECT count(*) FROM parley_inbound_claims)::int + (SELECT count(*) FROM parley_outbox WHERE status IN ('pending', 'sending'))::int AS n`);
      return rows[0]!.n;
    };
    const deadline = Date.now() + 60_000;
    while ((await inFlight()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    const { rows: perMessage } = await client.query<{ replies: number; messages: number }>(`
      SELECT replies, count(*)::int AS messages FROM (
        SELECT i.id, count(o.id) FILTER (WHERE o.status = 'sent')::int AS replies
          FROM parley_inbound i LEFT JOIN parley_outbox o ON o.inbound_id = i.id
         WHERE i.channel = 'twilio-sms' GROUP BY i.id) m
      GROUP BY replies ORDER BY replies`);
    const { rows: [twice] } = await client.query<{ n: number }>(`
      SELECT coalesce(sum(n - 1), 0)::int AS n FROM (
        SELECT count(*) AS n FROM parley_outbox WHERE inbound_id IS NOT NULL AND status <> 'dead' GROUP BY inbound_id, seq) r`);
    const { rows: recorded } = await client.query<{ sid: string }>(`SELECT provider_message_id AS sid FROM parley_outbox WHERE via = 'api' AND provider_message_id IS NOT NULL`);
    const known = new Set(recorded.map((r) => r.sid));
    const inbound = perMessage.reduce((sum, r) => sum + r.messages, 0);
    return {
      accepted,
      inbound,
      perMessage: Object.fromEntries(perMessage.map((r) => [r.replies, r.messages])),
      duplicates: twice!.n + restSids.filter((sid) => !known.has(sid)).length,
      lost: Math.max(0, accepted - inbound) + (perMessage.find((r) => r.replies === 0)?.messages ?? 0),
      unsettled: await inFlight(),
    };
  } finally {
    await client.end();
  }
}

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}


const fmt = (r: LoadResult) => `${String(r.rps).padStart(6)} req/s  p50 ${String(r.p50).padStart(3)} ms  p99 ${String(r.p99).padStart(4)} ms  non-2xx ${r.non2xx}  errors ${r.errors}${r.peakRssMb ? `  peak RSS ${r.peakRssMb} MB` : ''}${r.cpuPerRequest ? `  CPU/req ${r.cpuPerRequest.toFixed(2)} ms` : ''}${r.dbCpuPerRequest ? ` (+ PostgreSQL ${r.dbCpuPerRequest.toFixed(2)} ms)` : ''}${r.paced ? `  (even rate: p90 ${r.paced.p90} ms, max ${r.paced.max} ms, generator late by ${r.paced.sendLagP99} ms at p99)` : ''}  load ${r.load.toFixed(1)}${r.ranOutAfterS !== undefined ? `  (request pool ran out after ${r.ranOutAfterS} s: raise BENCH_POOL_RATE)` : ''}`;

/** Server (and PostgreSQL) CPU per request of `a` over `b`: steadier than requests/s on shared cores. */
const cpuRatio = (a: LoadResult, b: LoadResult) => (((a.cpuPerRequest ?? 0) + (a.dbCpuPerRequest ?? 0)) / ((b.cpuPerRequest ?? 0) + (b.dbCpuPerRequest ?? 0) || 1)).toFixed(2);
/** The middle value; with an even count, the mean of the two middle ones (not the upper, which would flatter). */
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const loadNow = () => `load ${loadavg()[0]!.toFixed(1)}`;

/** The gateway's /metrics, as text. */
const metricsText = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/**
 * Where the gateway's memory is at the end of a run, from its /metrics: the main thread's V8 heap
 * (reserved and in use) and what it holds outside it (buffers). PGlite and its WASM memory live in the
 * database thread (core/storage/pglite-worker.ts), which these figures do not cover: they count in the
 * process's resident size only.
 */
async function memoryParts(port: number): Promise<string> {
  const text = await metricsText(port);
  const mb = (name: string) => Math.round(Number(new RegExp(`^parley_${name} ([\\d.e+]+)$`, 'm').exec(text)?.[1] ?? 0) / 1_048_576);
  return `memory at the end: V8 heap ${mb('nodejs_heap_size_total_bytes')} MB (${mb('nodejs_heap_size_used_bytes')} MB in use), outside it ${mb('nodejs_external_memory_bytes')} MB allocated (buffers), resident ${mb('process_resident_memory_bytes')} MB with the database thread`;
}

/** `parley_db_dead_rows` by table, from the gateway's /metrics. */
async function deadRows(port: number): Promise<Record<string, number>> {
  const text = await metricsText(port);
  const rows: Record<string, number> = {};
  for (const m of text.matchAll(/^parley_db_dead_rows\{table="parley_([a-z_]+)"\} (\d+)/gm)) rows[m[1]!] = Number(m[2]);
  return rows;
}

/**
 * What the embedded maintenance job did so far (`parley_db_maintenance_seconds`): statements, the time
 * they held the database, and how many held it longer than 100 ms, over all tables.
 */
async function maintenanceStats(port: number): Promise<{ count: number; sum: number; long: number }> {
  const text = await metricsText(port);
  let count = 0;
  let sum = 0;
  let upTo100ms = 0;
  for (const m of text.matchAll(/^parley_db_maintenance_seconds_(count|sum)\{[^}]*\} ([\d.e+-]+)/gm)) {
    if (m[1] === 'count') count += Number(m[2]);
    else sum += Number(m[2]);
  }
  for (const m of text.matchAll(/^parley_db_maintenance_seconds_bucket\{le="0\.1",[^}]*\} (\d+)/gm)) upTo100ms += Number(m[1]);
  return { count, sum, long: count - upTo100ms };
}
const held = (a: { count: number; sum: number; long: number }, b = { count: 0, sum: 0, long: 0 }) =>
  `maintenance job meanwhile: ${a.count - b.count} vacuum and analyze statements holding the database ${Math.round((a.sum - b.sum) * 1000)} ms in all, ${a.long - b.long} of them over 100 ms`;

async function main() {
  // Production runs compiled JavaScript (`npm start` builds dist/ when stale): measure that, not tsx.
  const build = spawnSync(process.execPath, [join(ROOT, 'bin/build.js'), '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('the build failed');
  const work = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  say(`Parley bench: ${CONNECTIONS} connections, ${DURATION} s per run, Node ${process.version}, ${cpus().length} cores, ${loadNow()} at start`);
  const twilioApi = await startFakeTwilio();
  const children: ChildProcess[] = [];
  try {
    const twilio: BenchTwilio = { accountSid: twilioApi.accountSid, authToken: twilioApi.authToken, number: TWILIO_NUMBER, publicBaseUrl: PUBLIC_BASE_URL };
    const parleyArgs = [...gatewayNodeFlags(ROOT), join(ROOT, 'bin/parley.js'), 'start'];
    const env = {
      PORT: '0',
      PARLEY_DEMO_KEY: KEY,
      // The throughput figures compare the channel path; the health library is measured by `npm run eval`.
      PARLEY_DEMO_CORPUS: '',
      // The demo's twilio-sms (and twilio-voice) channel is on once these four are set.
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      DEMO_TWILIO_NUMBER: twilio.number,
      PUBLIC_BASE_URL: twilio.publicBaseUrl,
      TWILIO_API_BASE_URL: twilioApi.baseUrl,
    };
    const start = async (dataDir: string, extra: NodeJS.ProcessEnv = {}) => {
      const started = await startProcess(parleyArgs, READY, { ...env, PARLEY_DATA_DIR: dataDir, ...extra }, work);
      children.push(started.child);
      return started;
    };

    if (run('boot')) {
      // Boot to ready, from spawn: fresh data directories (initdb + migrations), then restarts on one.
      const fresh: Started[] = [];
      const restart: Started[] = [];
      for (let i = 0; i < BOOT_RUNS; i++) {
        const booted = await start(join(work, `boot-${i}`));
        fresh.push(booted);
        await stop(booted.child);
      }
      for (let i = 0; i < BOOT_RUNS; i++) {
        const booted = await start(join(work, 'boot-0'));
        restart.push(booted);
        await stop(booted.child);
      }
      const all = (runs: Started[]) => `${Math.round(median(runs.map((r) => r.readyMs)))} ms [${runs.map((r) => Math.round(r.readyMs)).join(', ')}], CPU ${Math.round(median(runs.map((r) => r.readyCpuMs)))} ms`;
      say(`boot to ready (embedded, ${BOOT_RUNS} runs each, medians): fresh data dir ${all(fresh)} (target < 3000 ms), restart ${all(restart)} (target < 1500 ms)  ${loadNow()}`);
    }

    if (run('library')) {
      // The embedded default as `npm start` runs it, with the demo's health library (the other
      // sections leave it out to measure the channel path): ingest on a fresh data directory, then a
      // restart, its memory when ready, after the first health question and after 20 more.
      const withLibrary = { PARLEY_DEMO_CORPUS: join(ROOT, 'corpora/medquad/corpus.jsonl') };
      const dir = join(work, 'library');
      const ingesting = await start(dir, withLibrary);
      const libraryUrl = `http://127.0.0.1:${ingesting.port}`;
      const t0 = performance.now();
      let peak = 0;
      for (;;) {
        peak = Math.max(peak, rssMb(ingesting.child.pid!));
        const ready = (await (await fetch(`${libraryUrl}/readyz`)).json()) as { components?: Record<string, { info?: { demo?: { lastIngestAt?: string | null } } }> };
        if (ready.components?.['medical-answers']?.info?.demo?.lastIngestAt) break;
        if (performance.now() - t0 > 600_000) throw new Error('the health library was not ingested within 10 minutes');
        await new Promise((r) => setTimeout(r, 250));
      }
      const ingestS = (performance.now() - t0) / 1000;
      await stop(ingesting.child);
      const restarted = await start(dir, withLibrary);
      const restartUrl = `http://127.0.0.1:${restarted.port}`;
      await new Promise((r) => setTimeout(r, 1000));
      const atReady = rssMb(restarted.child.pid!);
      const questions = readFileSync(join(ROOT, 'corpora/medquad/dev_eval.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { question: string }).question);
      const ask = async (text: string, i: number) => {
        const t = performance.now();
        const res = await fetch(`${restartUrl}/v1/tenants/demo/messages`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ from: `+1555000${String(i).padStart(4, '0')}`, text }) });
        if (!res.ok) throw new Error(`a health question got ${res.status}: ${await res.text()}`);
        return performance.now() - t;
      };
      const firstMs = await ask(questions[0]!, 0);
      const afterFirst = rssMb(restarted.child.pid!);
      const later: number[] = [];
      for (let i = 1; i <= 20; i++) later.push(await ask(questions[i * 20]!, i));
      const afterMore = rssMb(restarted.child.pid!);
      say(`\n[health library: the embedded default as npm start runs it, with the demo's MedQuAD corpus]`);
      say(`  ingest on a fresh data directory: ${ingestS.toFixed(1)} s after ready (target < 60 s), peak RSS ${peak} MB  ${loadNow()}`);
      say(`  restart: ready in ${Math.round(restarted.readyMs)} ms; resident ${atReady} MB when ready, ${afterFirst} MB after the first question (${Math.round(firstMs)} ms, loads the library), ${afterMore} MB after 20 more (median ${Math.round(median(later))} ms) (target < 250 MB)  ${loadNow()}`);
      await stop(restarted.child);
    }

    const bare = await startProcess(['--import', 'tsx', join(ROOT, 'bench/bare-server.ts')], /BARE_READY (\d+)/, {});
    children.push(bare.child);
    const scenarios = benchScenarios({ key: KEY, twilio });
    const sms = scenarios.find((s) => s.name.startsWith('signed Twilio SMS'))!;
    /** Replies sent through the REST API (to the fake) during a run: they missed the inline budget. */
    const restReplies = async (go: (onStart: () => void) => Promise<LoadResult>) => {
      // Counted from the start of the measured run: what a previous run left in flight (its
      // connections closed when it stopped) is handed to the REST API while this one waits for idle.
      let before = twilioApi.requests.length;
      const result = await go(() => (before = twilioApi.requests.length));
      return { result, rest: twilioApi.requests.length - before };
    };
    const late = (n: number) => (n ? `  (${n} replies went through the REST API during the run: they missed the inline budget, or their connection closed first)` : '');

    /** Requests/s of the SMS scenario on an empty database, then with `count` messages stored. */
    const storedData = async (label: string, count: number, target: { url?: string; dataDir: string; preload: (count: number) => Promise<void> }) => {
      const extra = target.url ? { DATABASE_URL: target.url, REDIS_URL } : {};
      const measure = async () => {
        const gw = await start(target.dataDir, extra);
        await load(`http://127.0.0.1:${gw.port}`, sms.pool(poolSize(WARM_UP_SECONDS)), gw.child.pid, { seconds: WARM_UP_SECONDS });
        const measured = await restReplies((onStart) => load(`http://127.0.0.1:${gw.port}`, sms.pool(poolSize(DURATION)), gw.child.pid, { ...(target.url ? { database: target.url } : {}), onStart }));
        await stop(gw.child);
        return measured;
      };
      const { result: empty, rest: emptyRest } = await measure();
      const t0 = performance.now();
      await target.preload(count);
      const loadedIn = Math.round((performance.now() - t0) / 1000);
      const { result: full, rest: fullRest } = await measure();
      say(`\n[stored data: signed Twilio SMS, ${label}]`);
      say(`  empty database      ${fmt(empty)}${late(emptyRest)}`);
      say(`  ${`${count.toLocaleString('en')} stored`.padEnd(19)} ${fmt(full)}   ratio ${(full.rps / empty.rps).toFixed(2)} (target >= 0.90), CPU/req ratio ${cpuRatio(full, empty)} (preload by bulk SQL took ${loadedIn} s)${late(fullRest)}`);
    };

    if (run('load') || run('fixed') || run('sustained')) {
      const embedded = await start(join(work, 'data'));
      const url = `http://127.0.0.1:${embedded.port}`;
      say(`\nresident memory of the embedded gateway when ready: ${rssMb(embedded.child.pid!)} MB (target < 250 MB)`);
      if (run('load')) {
        for (const scenario of scenarios) {
          say(`\n[${scenario.name}]`);
          const ratios: number[] = [];
          for (let round = 1; round <= ROUNDS; round++) {
            const baseline = await load(`http://127.0.0.1:${bare.port}`, scenario.barePool(), bare.child.pid);
            await load(url, scenario.pool(poolSize(WARM_UP_SECONDS)), embedded.child.pid, { seconds: WARM_UP_SECONDS });
            const { result, rest } = await restReplies((onStart) => load(url, scenario.pool(poolSize(DURATION)), embedded.child.pid, { onStart }));
            ratios.push(result.rps / baseline.rps);
            say(`  bare express        ${fmt(baseline)}`);
            say(`  parley (PGlite)     ${fmt(result)}   ratio ${(result.rps / baseline.rps).toFixed(2)} (target >= 0.25)${late(rest)}`);
          }
          if (ROUNDS > 1) say(roundsLine(ratios, ' (target >= 0.25)'));
          say(`  ${await memoryParts(embedded.port)}`);
        }
      }
      if (run('fixed')) {
        await load(url, sms.pool(poolSize(WARM_UP_SECONDS)), embedded.child.pid, { seconds: WARM_UP_SECONDS });
        let maintenance0 = { count: 0, sum: 0, long: 0 };
        const { result, rest } = await restReplies((onStart) =>
          load(url, sms.pool(ratePool(RATE_EMBEDDED)), embedded.child.pid, {
            rate: RATE_EMBEDDED,
            onStart: async () => {
              onStart();
              maintenance0 = await maintenanceStats(embedded.port);
            },
          }),
        );
        say(`\n[signed Twilio SMS at a fixed ${RATE_EMBEDDED} messages/s, PGlite]`);
        say(`  parley (PGlite)     ${fmt(result)}   (target p99 < 20 ms)${late(rest)}`);
        say(`  ${held(await maintenanceStats(embedded.port), maintenance0)}`);
        say(`  machine: ${wakeCostLine(await wakeCost(false, { rounds: 100, gaps: BENCH_GAPS }))}`);
      }
      if (run('sustained')) {
        // Dead rows while the load runs: the maintenance job must keep them bounded.
        const samples: { s: number; rows: Record<string, number> }[] = [];
        const t0 = performance.now();
        const sampler = setInterval(() => {
          deadRows(embedded.port).then((rows) => samples.push({ s: Math.round((performance.now() - t0) / 1000), rows }), () => undefined);
        }, 5_000);
        const maintenance0 = await maintenanceStats(embedded.port);
        // Enough signed requests for the embedded gateway's rate with PGlite in its own thread (about
        // 1,700/s on a quiet hour), not the 3,000/s of the short runs: a minute of them is memory.
        const result = await load(url, sms.pool(poolSize(SUSTAINED_SECONDS, Math.min(POOL_RATE, 2_500))), embedded.child.pid, { seconds: SUSTAINED_SECONDS });
        clearInterval(sampler);
        await new Promise((r) => setTimeout(r, 1_500)); // statistics arrive about a second late
        samples.push({ s: Math.round((performance.now() - t0) / 1000), rows: await deadRows(embedded.port) });
        say(`\n[sustained load: signed Twilio SMS for ${SUSTAINED_SECONDS} s, PGlite; dead rows every 5 s]`);
        say(`  parley (PGlite)     ${fmt(result)}`);
        const tables = Object.keys(samples.at(-1)?.rows ?? {});
        for (const table of tables) say(`  ${table.padEnd(18)} ${samples.map((x) => x.rows[table] ?? '-').join(' ')}  (max ${Math.max(...samples.map((x) => x.rows[table] ?? 0))})`);
        say(`  ${held(await maintenanceStats(embedded.port), maintenance0)}`);
      }
      await stop(embedded.child);
    }
    if (run('stored')) {
      const dataDir = join(work, 'data-stored');
      await storedData(`PGlite, ${STORED_EMBEDDED.toLocaleString('en')} messages`, STORED_EMBEDDED, {
        dataDir,
        async preload(count) {
          const [{ PGlite }, { vector }] = await Promise.all([import('@electric-sql/pglite'), import('@electric-sql/pglite-pgvector')]);
          const db = await PGlite.create(join(dataDir, 'pglite'), { extensions: { vector } });
          await preloadMessages(db, count);
          // What the maintenance job does within its first tick on a restarted gateway; then the bulk
          // load's writes are flushed, so the measurement does not pay for them.
          await db.exec('VACUUM (ANALYZE)');
          await db.exec('CHECKPOINT');
          await db.close();
        },
      });
    }

    if ((run('load') || run('fixed') || run('stored')) && (await pgReachable())) {
      if (run('load') || run('fixed')) {
        const db = await freshDatabase(PG_URL);
        const ext = await start(join(work, 'data-ext'), { DATABASE_URL: db.url, REDIS_URL });
        const url = `http://127.0.0.1:${ext.port}`;
        say(`\nboot to ready (PostgreSQL + Redis): ${Math.round(ext.readyMs)} ms`);
        if (run('load')) {
          for (const scenario of scenarios) {
            say(`\n[${scenario.name}, PostgreSQL 15 + Redis]`);
            const ratios: number[] = [];
            for (let round = 1; round <= ROUNDS; round++) {
              const baseline = await load(`http://127.0.0.1:${bare.port}`, scenario.barePool(), bare.child.pid);
              await load(url, scenario.pool(poolSize(WARM_UP_SECONDS)), ext.child.pid, { seconds: WARM_UP_SECONDS });
              const { result, rest } = await restReplies((onStart) => load(url, scenario.pool(poolSize(DURATION)), ext.child.pid, { database: db.url, onStart }));
              ratios.push(result.rps / baseline.rps);
              say(`  bare express        ${fmt(baseline)}`);
              say(`  parley (external)   ${fmt(result)}   ratio ${(result.rps / baseline.rps).toFixed(2)} (target >= 0.5, p99 < 20 ms)${late(rest)}`);
            }
            if (ROUNDS > 1) say(roundsLine(ratios, ' (target >= 0.5)'));
          }
        }
        if (run('fixed')) {
          await load(url, sms.pool(poolSize(WARM_UP_SECONDS)), ext.child.pid, { seconds: WARM_UP_SECONDS });
          const { result, rest } = await restReplies((onStart) => load(url, sms.pool(ratePool(RATE_EXTERNAL)), ext.child.pid, { rate: RATE_EXTERNAL, database: db.url, onStart }));
          say(`\n[signed Twilio SMS at a fixed ${RATE_EXTERNAL} messages/s, PostgreSQL 15 + Redis]`);
          say(`  parley (external)   ${fmt(result)}   (target p99 < 20 ms)${late(rest)}`);
          say(`  machine: ${wakeCostLine(await wakeCost(true, { rounds: 100, gaps: BENCH_GAPS }))}`);
        }
        await stop(ext.child);
        trace('dropping the scratch database');
        await db.drop();
        trace('dropped');
      }
      if (run('stored')) {
        const db = await freshDatabase(PG_URL);
        try {
          await storedData(`PostgreSQL 15 + Redis, ${STORED_EXTERNAL.toLocaleString('en')} messages`, STORED_EXTERNAL, {
            url: db.url,
            dataDir: join(work, 'data-ext-stored'),
            async preload(count) {
              const client = new pg.Client({ connectionString: db.url });
              await client.connect();
              await preloadMessages(client, count);
              // What autovacuum does within a minute of a bulk load; then the load's writes are
              // flushed, so the measurement does not pay for a checkpoint of a gigabyte.
              await client.query('VACUUM (ANALYZE)');
              await client.query('CHECKPOINT');
              await client.end();
            },
          });
        } finally {
          await db.drop();
        }
      }
    } else if (run('load') || run('fixed') || run('stored')) say(`\nPostgreSQL at ${PG_URL} unreachable: external-backend figures skipped.`);

    if (run('peers')) {
      // The peer first, then Parley on the same requests (each run its own pool of fresh MessageSids).
      const peer = await startProcess([join(ROOT, 'bench/peer-botkit.cjs')], /PEER_READY (\d+)/, {
        PORT: '0',
        PEER_MODULES: botkitModules(say),
        TWILIO_ACCOUNT_SID: twilio.accountSid,
        TWILIO_AUTH_TOKEN: twilio.authToken,
        PEER_TWILIO_NUMBER: twilio.number,
        PEER_VALIDATION_URL: `${twilio.publicBaseUrl}/twilio/sms`,
        PEER_TWILIO_API_BASE_URL: twilioApi.baseUrl,
      });
      children.push(peer.child);
      const peerUrl = `http://127.0.0.1:${peer.port}`;
      await load(peerUrl, sms.pool(poolSize(WARM_UP_SECONDS)), peer.child.pid, { seconds: WARM_UP_SECONDS }); // warm-up
      say('\n[signed Twilio SMS webhook: Parley vs Botkit 4.15 + botbuilder-adapter-twilio-sms 1.0.8, a fixed reply through the REST API to the local fake]');
      // Botkit stays up while each Parley runs: every round measures the two one after the other.
      const against = async (label: string, target: string, dataDir: string, extra: NodeJS.ProcessEnv = {}) => {
        const gw = await start(dataDir, extra);
        const url = `http://127.0.0.1:${gw.port}`;
        await load(url, sms.pool(poolSize(WARM_UP_SECONDS)), gw.child.pid, { seconds: WARM_UP_SECONDS }); // warm-up
        const ratios: number[] = [];
        for (let round = 1; round <= ROUNDS; round++) {
          const sentBefore = twilioApi.sent.length;
          const botkit = await load(peerUrl, sms.pool(poolSize(DURATION)), peer.child.pid);
          const botkitReplies = twilioApi.sent.length - sentBefore;
          const { result, rest } = await restReplies((onStart) => load(url, sms.pool(poolSize(DURATION)), gw.child.pid, { onStart }));
          ratios.push(result.rps / botkit.rps);
          say(`  botkit              ${fmt(botkit)}  (${botkit.accepted} answered; the fake Twilio API received ${botkitReplies} replies, with those of requests still in flight when the warm-up or the run ended)`);
          say(`  ${label} ${fmt(result)}   ratio Parley/Botkit ${(result.rps / botkit.rps).toFixed(2)}${target}, CPU/req ratio ${cpuRatio(result, botkit)}${late(rest)}`);
        }
        if (ROUNDS > 1) say(roundsLine(ratios, target));
        await stop(gw.child);
      };
      if (await pgReachable()) {
        const db = await freshDatabase(PG_URL);
        try {
          await against('parley (external)  ', ' (target >= 1.5)', join(work, 'data-peers-ext'), { DATABASE_URL: db.url, REDIS_URL });
        } finally {
          await db.drop();
        }
      } else say(`  PostgreSQL at ${PG_URL} unreachable: Parley on PostgreSQL + Redis skipped.`);
      await against('parley (PGlite)    ', '', join(work, 'data-peers'));
      await stop(peer.child);
    }

    if (run('scaleout')) {
      if (await pgReachable()) {
        // Two gateways on one database and one Redis; autocannon binds its connections to the two URLs
        // in turn (half each, kept alive), as a round-robin load balancer over persistent connections does.
        const db = await freshDatabase(PG_URL);
        try {
          const extra = { DATABASE_URL: db.url, REDIS_URL };
          const a = await start(join(work, 'data-scale-a'), extra);
          const b = await start(join(work, 'data-scale-b'), extra);
          const urls = [a, b].map((gw) => `http://127.0.0.1:${gw.port}`);
          const pids = [a.child.pid!, b.child.pid!];
          const sentBefore = twilioApi.sent.length;
          const warm = await load(urls, sms.pool(poolSize(WARM_UP_SECONDS)), pids, { seconds: WARM_UP_SECONDS });
          const one = await load(urls[0]!, sms.pool(poolSize(DURATION)), pids[0]);
          const { result: two, rest } = await restReplies((onStart) => load(urls, sms.pool(poolSize(DURATION)), pids, { onStart }));
          const replies = await replyAccounting(db.url, warm.accepted + one.accepted + two.accepted, twilioApi.sent.slice(sentBefore).map((m) => m.sid));
          await stop(a.child);
          await stop(b.child);
          say('\n[scale-out: signed Twilio SMS, two gateway processes on one PostgreSQL 15 + Redis, connections split between them]');
          say(`  one process         ${fmt(one)}`);
          say(`  two processes       ${fmt(two)}   ratio to one ${(two.rps / one.rps).toFixed(2)}${late(rest)}`);
          say(`  every run (warm-up, one, two): ${replies.accepted} accepted, ${replies.inbound} stored (the rest of them in flight when a run ended), replies per message ${JSON.stringify(replies.perMessage)}; duplicate replies ${replies.duplicates} (must be 0), lost ${replies.lost} (must be 0)${replies.unsettled ? `, ${replies.unsettled} still in flight after 60 s` : ''}`);
        } finally {
          await db.drop();
        }
      } else say(`\nPostgreSQL at ${PG_URL} unreachable: scale-out skipped.`);
    }
    await stop(bare.child);
    writeFileSync(join(ROOT, 'bench', 'last-run.txt'), `${new Date().toISOString()}\n${lines.join('\n')}\n`);
  } finally {
    for (const child of children) await stop(child);
    trace('closing the fake Twilio API');
    await twilioApi.close();
    trace('removing the scratch folder');
    rmSync(work, { recursive: true, force: true });
    trace('done');
  }
}

await main();
// Every figure is printed and every child stopped: a handle left open (a kept-alive socket, a timer of
// a library) must not keep the run from ending. BENCH_TRACE names what was still open.
if (process.env.BENCH_TRACE) {
  const open = (process as unknown as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo?.() ?? [];
  // Node's own list, for what each handle is (a child's pid and command, a server's port).
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.() ?? [];
  const described = handles.map((h) => {
    const handle = h as { constructor?: { name?: string }; pid?: number; spawnargs?: string[]; address?: () => unknown };
    if (handle.pid) return `child ${handle.pid} (${handle.spawnargs?.join(' ')})`;
    if (typeof handle.address === 'function') return `${handle.constructor?.name} ${JSON.stringify(handle.address())}`;
    return handle.constructor?.name ?? typeof h;
  });
  trace(`still open at the end: ${open.join(', ') || 'nothing'}; handles: ${described.join('; ') || 'none'}`);
}
process.exit(0);

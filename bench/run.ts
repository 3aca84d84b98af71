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
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freshDatabase } from '../test/backend.js';
import { benchScenarios, type BenchTwilio } from './scenarios.js';
import { startFakeTwilio } from '../test/fakes/twilio-api.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const KEY = 'bench-key-0123456789';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The demo tenant's Twilio number and the public URL Twilio would call (never contacted). */
const TWILIO_NUMBER = '+15558880001';
const PUBLIC_BASE_URL = 'https://parley-bench.example.invalid';

interface Started {
  child: ChildProcess;
  port: number;
  readyMs: number;
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
        resolve({ child, port: Number(m[1]), readyMs: performance.now() - t0 });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`process exited (${code}) before ready:\n${out}`)));
    setTimeout(() => reject(new Error(`not ready after 60 s:\n${out}`)), 60_000).unref();
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/** CPU time (ms) used so far by a process. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time (ms) used so far by every local PostgreSQL server process. */
function postgresCpuMs(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.includes('(postgres)')) total += cpuMs(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export interface LoadResult {
  /** Server CPU per request (ms), and the local PostgreSQL's when it is the store. */
  cpuPerRequest?: number;
  dbCpuPerRequest?: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  peakRssMb?: number;
}

export async function load(url: string, request: () => { method: 'POST'; path: string; headers: Record<string, string>; body: string }, pid?: number): Promise<LoadResult> {
  let peak = 0;
  const sampler = pid ? setInterval(() => (peak = Math.max(peak, rssMb(pid))), 250) : undefined;
  const first = request();
  const cpu0 = pid ? cpuMs(pid) : 0;
  const db0 = postgresCpuMs();
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION,
    method: first.method,
    requests: [{ setupRequest: (req) => ({ ...req, ...request() }) }],
  });
  if (sampler) clearInterval(sampler);
  const total = result.requests.total || 1;
  const dbCpu = (postgresCpuMs() - db0) / total;
  return {
    ...(pid ? { cpuPerRequest: (cpuMs(pid) - cpu0) / total } : {}),
    ...(dbCpu > 0.01 ? { dbCpuPerRequest: dbCpu } : {}),
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    ...(pid ? { peakRssMb: peak } : {}),
  };
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


const fmt = (r: LoadResult) => `${String(r.rps).padStart(6)} req/s  p50 ${String(r.p50).padStart(3)} ms  p99 ${String(r.p99).padStart(4)} ms  non-2xx ${r.non2xx}  errors ${r.errors}${r.peakRssMb ? `  peak RSS ${r.peakRssMb} MB` : ''}${r.cpuPerRequest ? `  CPU/req ${r.cpuPerRequest.toFixed(2)} ms` : ''}${r.dbCpuPerRequest ? ` (+ PostgreSQL ${r.dbCpuPerRequest.toFixed(2)} ms)` : ''}`;

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  say(`Parley bench: ${CONNECTIONS} connections, ${DURATION} s per run, Node ${process.version}, ${(await import('node:os')).cpus().length} cores`);
  const twilioApi = await startFakeTwilio();
  try {
    const twilio: BenchTwilio = { accountSid: twilioApi.accountSid, authToken: twilioApi.authToken, number: TWILIO_NUMBER, publicBaseUrl: PUBLIC_BASE_URL };
    // Boot to ready: a fresh data directory (initdb + migrations), then a restart on it.
    const dataDir = join(work, 'data');
    const parleyArgs = [join(ROOT, 'bin/parley.js'), 'start'];
    const env = {
      PORT: '0',
      PARLEY_DATA_DIR: dataDir,
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
    const fresh = await startProcess(parleyArgs, /Parley is ready on http:\/\/[\d.]+:(\d+)/, env, work);
    await stop(fresh.child);
    const restart = await startProcess(parleyArgs, /Parley is ready on http:\/\/[\d.]+:(\d+)/, env, work);
    say(`boot to ready (embedded): fresh data dir ${Math.round(fresh.readyMs)} ms, restart ${Math.round(restart.readyMs)} ms (target < 1500 ms)`);

    const bare = await startProcess(['--import', 'tsx', join(ROOT, 'bench/bare-server.ts')], /BARE_READY (\d+)/, {});
    const scenarios = benchScenarios({ key: KEY, twilio });
    /** Replies sent through the REST API (to the fake) during a run: they missed the inline budget. */
    const restReplies = async (run: () => Promise<LoadResult>) => {
      const before = twilioApi.requests.length;
      const result = await run();
      return { result, rest: twilioApi.requests.length - before };
    };
    const late = (n: number) => (n ? `  (${n} replies missed the inline budget and went through the REST API)` : '');
    for (const scenario of scenarios) {
      const baseline = await load(`http://127.0.0.1:${bare.port}`, scenario.bareRequest, bare.child.pid);
      const { result: embedded, rest } = await restReplies(() => load(`http://127.0.0.1:${restart.port}`, scenario.request(), restart.child.pid));
      say(`\n[${scenario.name}]`);
      say(`  bare express        ${fmt(baseline)}`);
      say(`  parley (PGlite)     ${fmt(embedded)}   ratio ${(embedded.rps / baseline.rps).toFixed(2)} (target >= 0.25)${late(rest)}`);
      scenario.embedded = embedded;
      scenario.baseline = baseline;
    }
    await stop(restart.child);

    if (await pgReachable()) {
      const db = await freshDatabase(PG_URL);
      const ext = await startProcess(parleyArgs, /Parley is ready on http:\/\/[\d.]+:(\d+)/, { ...env, DATABASE_URL: db.url, REDIS_URL, PARLEY_DATA_DIR: join(work, 'data-ext') }, work);
      say(`\nboot to ready (PostgreSQL + Redis): ${Math.round(ext.readyMs)} ms`);
      for (const scenario of scenarios) {
        const baseline = await load(`http://127.0.0.1:${bare.port}`, scenario.bareRequest, bare.child.pid);
        const { result: external, rest } = await restReplies(() => load(`http://127.0.0.1:${ext.port}`, scenario.request(), ext.child.pid));
        say(`\n[${scenario.name}, PostgreSQL 15 + Redis]`);
        say(`  bare express        ${fmt(baseline)}`);
        say(`  parley (external)   ${fmt(external)}   ratio ${(external.rps / baseline.rps).toFixed(2)} (target >= 0.5, p99 < 20 ms)${late(rest)}`);
      }
      await stop(ext.child);
      await db.drop();
    } else say(`\nPostgreSQL at ${PG_URL} unreachable: external-backend figures skipped.`);
    await stop(bare.child);
    writeFileSync(join(ROOT, 'bench', 'last-run.txt'), `${new Date().toISOString()}\n${lines.join('\n')}\n`);
  } finally {
    await twilioApi.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

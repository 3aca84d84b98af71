/**
 * `npx tsx bench/cpu-share.ts [DATABASE_URL]`: where the two cores go while signed Twilio SMS webhooks
 * load the compiled gateway (embedded PGlite, or PostgreSQL + Redis with a URL): cores used by the
 * gateway (every thread), by this load generator and by the whole machine, CPU per request, and the
 * gateway's busiest threads. A thread that takes work off the gateway's main thread (PGlite in a
 * worker) can only raise requests/s when the machine has idle CPU for it: see bench/README.md.
 * The gateway runs with `npm start`'s node options; `BENCH_NODE_FLAGS` adds to them (`--cpu-prof --cpu-prof-dir=DIR` for a profile).
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchScenarios } from './scenarios.js';
import { startFakeTwilio } from '../test/fakes/twilio-api.js';
import { cpuMs, cpuOfStat } from './proc-cpu.js';
import { gatewayNodeFlags } from './node-flags.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const KEY = 'bench-key-0123456789';

/** CPU (ms) per thread of a process, by name and id. */
const threadCpu = (pid: number) =>
  new Map(
    readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return [`${/\((.*?)\)/.exec(stat)![1]}:${tid}`, cpuOfStat(stat)] as const;
    }),
  );
/** Busy and total CPU (ms, all cores) of the machine. */
const machineCpu = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const all = f.reduce((a, b) => a + b, 0);
  return { busy: (all - f[3]! - f[4]!) * 10, all: all * 10 };
};

const api = await startFakeTwilio();
const twilio = { accountSid: api.accountSid, authToken: api.authToken, number: '+15558880001', publicBaseUrl: 'https://parley-bench.example.invalid' };
const dataDir = mkdtempSync(join(tmpdir(), 'parley-cpu-share-'));
const external = process.argv[2] ? { DATABASE_URL: process.argv[2], REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' } : {};
const child = spawn(process.execPath, [...gatewayNodeFlags(join(import.meta.dirname, '..')), join(import.meta.dirname, '../dist/bin/parley.js'), 'start'], {
  env: { ...process.env, LOG_LEVEL: 'warn', PORT: '0', PARLEY_DEMO_KEY: KEY, PARLEY_DEMO_CORPUS: '', TWILIO_ACCOUNT_SID: twilio.accountSid, TWILIO_AUTH_TOKEN: twilio.authToken, DEMO_TWILIO_NUMBER: twilio.number, PUBLIC_BASE_URL: twilio.publicBaseUrl, TWILIO_API_BASE_URL: api.baseUrl, PARLEY_DATA_DIR: dataDir, ...external },
  stdio: ['ignore', 'pipe', 'inherit'],
});
try {
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /ready on http:\/\/[\d.]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before ready`)));
  });
  const sms = benchScenarios({ key: KEY, twilio }).find((s) => s.name.startsWith('signed Twilio SMS'))!;
  // Requests signed before the run (signing costs as much as serving), a fresh MessageSid each.
  const { requests } = sms.pool(3_000 * (SECONDS + 3) + 50);
  let sent = 0;
  const next = () => requests[Math.min(sent++, requests.length - 1)]!;
  const drive = (duration: number) => autocannon({ url: `http://127.0.0.1:${port}`, connections: 50, duration, method: 'POST', requests: [{ setupRequest: (req) => ({ ...req, ...next() }) }] });
  await drive(3); // warm-up
  await new Promise((r) => setTimeout(r, 3_000)); // the warm-up's abandoned requests go to the send job
  const gateway0 = cpuMs(child.pid!);
  const self0 = cpuMs(process.pid);
  const machine0 = machineCpu();
  const threads0 = threadCpu(child.pid!);
  const t0 = performance.now();
  const result = await drive(SECONDS);
  const wall = performance.now() - t0;
  const gateway = cpuMs(child.pid!) - gateway0;
  const self = cpuMs(process.pid) - self0;
  const machine = machineCpu();
  const cores = (machine.busy - machine0.busy) / (machine.all - machine0.all);
  const n = result.requests.total || 1;
  console.log(`${external.DATABASE_URL ? 'PostgreSQL + Redis' : 'embedded PGlite'}: ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms, ${n} requests`);
  console.log(`cores used over ${(wall / 1000).toFixed(1)} s: gateway ${(gateway / wall).toFixed(2)}, load generator ${(self / wall).toFixed(2)}, whole machine ${(cores * 2).toFixed(2)} of 2 (fraction of all cores busy: ${cores.toFixed(2)})`);
  console.log(`CPU per request: gateway ${(gateway / n).toFixed(2)} ms (all threads), load generator ${(self / n).toFixed(2)} ms`);
  const threads = [...threadCpu(child.pid!)].map(([name, ms]) => [name, ms - (threads0.get(name) ?? 0)] as const).filter(([, ms]) => ms > 0);
  console.log(`gateway threads, ms CPU per request: ${threads.sort((a, b) => b[1] - a[1]).slice(0, 6).map(([name, ms]) => `${name} ${(ms / n).toFixed(2)}`).join(', ')}`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await api.close();
  rmSync(dataDir, { recursive: true, force: true });
}

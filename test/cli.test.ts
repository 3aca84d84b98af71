/** The `parley` command as a user runs it: real processes, real signals. */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startTestGateway } from './harness.js';
import { KEYS, PROBE, PROBE_CHANNEL } from './fixtures/configs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const env = (extra: Record<string, string> = {}) => {
  const e: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', PARLEY_DEMO_CORPUS: '', ...extra };
  delete e.PARLEY_DEMO_KEY;
  delete e.DATABASE_URL;
  delete e.REDIS_URL;
  return e;
};

function parley(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return spawnSync(process.execPath, [join(ROOT, 'bin/parley.js'), ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? env(), encoding: 'utf8', input: opts.input ?? '', timeout: 60_000 });
}

function startParley(args: string[], e: NodeJS.ProcessEnv, cwd: string): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/parley.js'), 'start', ...args], { cwd, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`parley did not start: ${out}`)), 90_000);
    child.stdout!.on('data', () => {
      const m = /Parley is ready on (http:\/\/[\d.:]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, output: () => out });
      }
    });
    child.on('exit', (code) => reject(new Error(`parley exited with ${code}: ${out}`)));
  });
}

const burstConfig = (dataDir: string) =>
  stringify({
    server: { port: 0 },
    storage: { dataDir },
    plugins: ['http', 'keyword-replies'],
    tenants: [{ id: 'acme', apiKeys: [KEYS.acme], pipeline: ['keyword-replies'], plugins: { http: {}, 'keyword-replies': { defaultReply: 'got it' } } }],
  });

describe('the parley command', () => {
  it('prints help for itself and each command', () => {
    const main = parley(['--help']);
    expect(main.status).toBe(0);
    for (const cmd of ['start', 'validate', 'init', 'plugins', 'chat']) {
      expect(main.stdout).toContain(cmd);
      const r = parley([cmd, '--help']);
      expect(r.status, cmd).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`Usage: parley ${cmd}`));
    }
    expect(parley(['frobnicate']).status).toBe(2);
  });

  it('init writes a starter config that validate accepts, and refuses to overwrite it', () => {
    const dir = tmp();
    expect(parley(['init'], { cwd: dir }).status).toBe(0);
    expect(readFileSync(join(dir, 'parley.yaml'), 'utf8')).toContain('tenants:');
    expect(parley(['init'], { cwd: dir }).status).toBe(2);
    const ok = parley(['validate'], { cwd: dir, env: env({ ACME_API_KEY: 'k' }) });
    expect(ok.stdout + ok.stderr).toContain('is valid');
    expect(ok.status).toBe(0);
  });

  it('validate names the tenant, plugin and key of a bad setting and exits 2', () => {
    const dir = tmp();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, stringify({ tenants: [{ id: 'acme', pipeline: ['keyword-replies'], plugins: { 'keyword-replies': { rules: [{ match: 'hi' }] } } }] }));
    const r = parley(['validate', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('tenants[0] (acme).plugins.keyword-replies.rules[0].reply');
  });

  it('start refuses a bad setting the same way, and leaves the data directory it had begun to open unlocked', () => {
    const dir = tmp();
    const file = join(dir, 'bad.yaml');
    // The embedded database is launched as soon as the configuration names its directory, before the
    // plugins' settings are read: the refusal must give the directory back.
    writeFileSync(file, stringify({ storage: { dataDir: join(dir, 'data') }, tenants: [{ id: 'acme', pipeline: ['keyword-replies'], plugins: { 'keyword-replies': { rules: [{ match: 'hi' }] } } }] }));
    const r = parley(['start', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('tenants[0] (acme).plugins.keyword-replies.rules[0].reply');
    expect(existsSync(join(dir, 'data', 'pglite'))).toBe(true);
    expect(existsSync(join(dir, 'data', 'parley.pid'))).toBe(false);
  });

  it('plugins lists the built-in plugins with their settings', () => {
    const r = parley(['plugins', '--json']);
    expect(r.status).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; settings: unknown }[];
    expect(list.map((p) => p.name)).toEqual(expect.arrayContaining(['http', 'keyword-replies']));
    expect(JSON.stringify(list.find((p) => p.name === 'keyword-replies')!.settings)).toContain('defaultReply');
  });

  it('starts on the embedded default with a generated demo key, chats, and exits 0 on SIGTERM', async () => {
    const dir = tmp();
    const { child, url, output } = await startParley([], env({ PORT: '0', PARLEY_DATA_DIR: join(dir, 'data') }), dir);
    const key = /export PARLEY_DEMO_KEY=(\S+)/.exec(output())![1]!;
    const chat = spawnSync(process.execPath, [join(ROOT, 'bin/parley.js'), 'chat', '--tenant', 'demo', '--url', url, '--key', key], {
      input: 'what are your hours?\nhello\n',
      encoding: 'utf8',
      env: env(),
      timeout: 90_000,
    });
    expect(chat.stdout).toContain("demo> We're open Monday to Friday");
    expect(chat.stdout).toContain('demo> Hello!');
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
    expect(existsSync(join(dir, 'data', 'parley.pid'))).toBe(false);
  }, 120_000);

  it('runs a message again after SIGKILL cut its processing short', async () => {
    const dir = tmp();
    const dataDir = join(dir, 'data');
    const config = stringify({
      server: { port: 0 },
      storage: { dataDir },
      plugins: ['http', { name: 'probe', module: PROBE }, { name: 'probe-channel', module: PROBE_CHANNEL }],
      tenants: [{ id: 'acme', apiKeys: [KEYS.acme], pipeline: ['probe.slow', 'probe.echo'], plugins: { http: { replyBudgetMs: 200 }, probe: { prefix: 'done: ' }, 'probe-channel': { number: '+15550001111' } } }],
    });
    writeFileSync(join(dir, 'parley.yaml'), config);
    const { child, url } = await startParley([], env(), dir);
    const res = await fetch(`${url}/v1/tenants/acme/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.acme}` },
      body: JSON.stringify({ from: 'kim', text: 'slow:5000 please', id: 'killed-mid-pipeline' }),
    });
    expect(res.status).toBe(202);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = await startTestGateway({ config, dataDir, recoverAfterMs: 0, baseDir: dir });
    try {
      const items = await after.waitForOutbox('acme', (all) => all.some((i) => i.text === 'done: slow:5000 please' && i.status === 'delivered'), 20_000);
      expect(items.filter((i) => i.text === 'done: slow:5000 please')).toHaveLength(1);
      const { rows } = await after.gateway.db.pool.query(`SELECT status FROM parley_inbound WHERE provider_message_id = 'killed-mid-pipeline'`);
      expect(rows).toEqual([{ status: 'processed' }]);
    } finally {
      await after.stop();
    }
  }, 120_000);

  it('loses no accepted message when SIGTERM arrives during a burst', async () => {
    const dir = tmp();
    const dataDir = join(dir, 'data');
    writeFileSync(join(dir, 'parley.yaml'), burstConfig(dataDir));
    const { child, url } = await startParley([], env(), dir);
    const accepted: string[] = [];
    const statuses = new Map<number | string, number>();
    let sent = 0;
    const fire = async (i: number) => {
      const id = `burst-${i}`;
      try {
        const res = await fetch(`${url}/v1/tenants/acme/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.acme}` },
          body: JSON.stringify({ from: `p${i % 7}`, text: `message ${i}`, id }),
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.ok) accepted.push(id);
      } catch {
        statuses.set('network', (statuses.get('network') ?? 0) + 1);
      }
    };
    const workers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < 400; i += 16) {
        sent++;
        if (sent === 120) child.kill('SIGTERM');
        await fire(i);
      }
    });
    await Promise.all(workers);
    const code = await new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.on('exit', r)));
    expect(code).toBe(0);
    expect(accepted.length).toBeGreaterThan(50);
    const after = await startTestGateway({ config: burstConfig(dataDir), dataDir });
    try {
      const { rows } = await after.gateway.db.pool.query(
        `SELECT i.provider_message_id AS id, i.status, count(o.id)::int AS replies FROM parley_inbound i LEFT JOIN parley_outbox o ON o.inbound_id = i.id GROUP BY 1, 2`,
      );
      const byId = new Map(rows.map((r) => [r.id as string, r]));
      for (const id of accepted) {
        expect(byId.get(id), id).toMatchObject({ status: 'processed', replies: 1 });
      }
    } finally {
      await after.stop();
    }
  }, 120_000);
});

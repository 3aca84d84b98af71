/**
 * `npm start` as Docker and systemd run it: SIGTERM goes to the top process (npm), and the gateway must
 * shut down cleanly with exit 0 instead of being orphaned while it keeps serving.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNodeFlags } from '../bench/node-flags.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'parley-npm-start-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** Every process below `pid`, with its command line. */
function descendants(pid: number): { pid: number; args: string }[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [, p, args] = /^\s*(\d+)\s+(.*)$/.exec(line)!;
      return { pid: Number(p), args: args! };
    })
    .flatMap((child) => [child, ...descendants(child.pid)]);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start', () => {
  it('runs the compiled gateway in one node process, and SIGTERM to npm stops it with exit 0 and nothing left behind', async () => {
    // The demo as the README runs it, its health library included: the compiled gateway must find the
    // corpus the bundled configuration names (it starts ingesting it after ready; SIGTERM stops that too).
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', PARLEY_DATA_DIR: dataDir, PARLEY_DEMO_KEY: 'pk_demo_npm_start', LOG_LEVEL: 'warn' };
    delete env.PARLEY_DEMO_CORPUS;
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const npm = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    npm.stdout!.on('data', (d) => (output += d));
    npm.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.on('exit', (code, signal) => resolve({ code, signal })));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start was not ready: ${output}`)), 150_000);
      npm.stdout!.on('data', () => {
        const m = /Parley is ready on (http:\/\/[\d.:]+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void exited.then(({ code }) => reject(new Error(`npm start exited with ${code}: ${output}`)));
    });
    const tree = descendants(npm.pid!);
    // The compiled entry point, with the start script's node options (bench/README.md, step 14).
    expect(tree.map((p) => p.args).join('\n')).toContain(`node ${startNodeFlags(ROOT).join(' ')} dist/bin/parley.js start`);
    expect(tree.map((p) => p.args).join('\n')).not.toMatch(/tsx/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    npm.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    const gatewayGone = async () => {
      for (let i = 0; i < 50 && tree.some((p) => alive(p.pid)); i++) await new Promise((r) => setTimeout(r, 100));
      return tree.filter((p) => alive(p.pid)).map((p) => p.args);
    };
    const left = await gatewayGone();
    for (const p of tree) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    expect(left).toEqual([]);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 200_000);
});

/**
 * "Writing a plugin" in README.md, followed literally outside this repository: Parley packed as npm
 * would publish it, installed into a folder under os.tmpdir() beside zod, the README's greeter plugin
 * and parley.yaml written verbatim from its code blocks (so the test fails when the README drifts),
 * `npx parley validate` and `npx parley start --config parley.yaml` run there, and a message sent
 * through the http channel comes back greeted.
 *
 * A real `npm install` of the tarball takes over a minute on the project's machines, so by default the
 * tarball is unpacked into node_modules/parley as npm would, with its declared dependencies and the zod
 * peer linked from this repository's node_modules (only declared ones: an undeclared import fails here
 * as it would for a user). PARLEY_CONTRACT_NPM_INSTALL=1 runs the real `npm install` instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const project = mkdtempSync(join(tmpdir(), 'parley-plugin-contract-'));
afterAll(() => rmSync(project, { recursive: true, force: true }));

/** The first fenced block of `lang` in the README's "Writing a plugin" section. */
function readmeBlock(lang: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Writing a plugin'), readme.indexOf('\n## ', readme.indexOf('## Writing a plugin') + 3));
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!block) throw new Error(`README "Writing a plugin" has no \`\`\`${lang} block`);
  return block[1]!;
}

function installParley(tarball: string): void {
  if (process.env.PARLEY_CONTRACT_NPM_INSTALL === '1') {
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', 'zod', tarball], { cwd: project, stdio: 'pipe', env: { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1' } });
    return;
  }
  const installed = join(project, 'node_modules', 'parley');
  mkdirSync(installed, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; peerDependencies: Record<string, string>; bin: Record<string, string> };
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
    const link = join(project, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', name), link, 'dir');
  }
  mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
  for (const [command, file] of Object.entries(manifest.bin)) symlinkSync(join('..', 'parley', file), join(project, 'node_modules', '.bin', command));
}

const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, ACME_API_KEY: 'acme-contract-key', PORT: '0', LOG_LEVEL: 'warn' };
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'PARLEY_DATA_DIR', 'NODE_OPTIONS', 'VITEST', 'TSX_TSCONFIG_PATH']) delete e[key];
  return e;
};

beforeAll(() => {
  const pack = spawnSync('npm', ['pack', '--json', '--pack-destination', project], { cwd: ROOT, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
  const { filename } = (JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string }[])[0]!;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'greeter-deployment', private: true, type: 'module' }, null, 2));
  installParley(join(project, filename));
  writeFileSync(join(project, 'greeter.ts'), readmeBlock('ts'));
  writeFileSync(join(project, 'parley.yaml'), readmeBlock('yaml'));
}, 240_000);

describe('the README plugin, outside the repository', () => {
  it('installs without the repository: the package ships compiled JavaScript and no TypeScript sources', () => {
    const installed = join(project, 'node_modules', 'parley');
    expect(readdirSync(join(installed, 'dist', 'core'))).toContain('public.js');
    expect(readdirSync(join(installed, 'bin'))).not.toContain('parley.ts');
  });

  it('validates with `npx parley validate`', () => {
    const r = spawnSync('npx', ['--no-install', 'parley', 'validate', '--config', 'parley.yaml'], { cwd: project, env: env(), encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toContain('is valid');
    expect(r.status).toBe(0);
  });

  it('starts with `npx parley start --config parley.yaml` and greets a first-time sender through the http channel', async () => {
    // Its own process group, as in a terminal: Ctrl-C signals npx, its shell and the gateway together
    // (npx itself does not wait for its child; supervisors should run `npm start` or the bin directly).
    const child: ChildProcess = spawn('npx', ['--no-install', 'parley', 'start', '--config', 'parley.yaml'], { cwd: project, env: env(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let url = '';
    try {
      url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`parley did not start: ${output}`)), 90_000);
        child.stdout!.on('data', () => {
          const m = /Parley is ready on (http:\/\/[\d.:]+)/.exec(output);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then((code) => reject(new Error(`parley exited with ${code}: ${output}`)));
      });
      const res = await fetch(`${url}/v1/tenants/acme/messages`, {
        method: 'POST',
        headers: { authorization: 'Bearer acme-contract-key', 'content-type': 'application/json' },
        body: JSON.stringify({ from: '+15551234567', text: 'hello' }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { message: { status: string }; replies: { text: string }[] };
      expect(body.message.status).toBe('processed');
      expect(body.replies.map((r) => r.text)).toEqual(['Hi! This is Acme.']);
    } finally {
      process.kill(-child.pid!, 'SIGINT');
    }
    await exited;
    const groupAlive = () => {
      try {
        process.kill(-child.pid!, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 300 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 100));
    const leftOver = groupAlive();
    if (leftOver) process.kill(-child.pid!, 'SIGKILL');
    expect(leftOver).toBe(false);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 150_000);
});

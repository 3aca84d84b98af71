/**
 * The scratch install of the Botkit peer (`npm run bench -- --peers`), outside the repository's
 * node_modules and reused across runs: `BENCH_PEER_DIR`, else `bench-peer-botkit` in Parley's cache
 * folder (`PARLEY_CACHE_DIR`, `$XDG_CACHE_HOME/parley` or `~/.cache/parley`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../core/storage/pglite-template.js';

/** The versions the profile compared with. */
const PACKAGES = { botkit: '4.15', 'botbuilder-adapter-twilio-sms': '1.0.8' } as const;

function installedVersion(dir: string, name: string): string | undefined {
  const manifest = join(dir, 'node_modules', name, 'package.json');
  return existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version : undefined;
}

const matches = (dir: string) => Object.entries(PACKAGES).every(([name, wanted]) => installedVersion(dir, name) === wanted || installedVersion(dir, name)?.startsWith(`${wanted}.`));

/** The folder whose node_modules holds Botkit and the Twilio SMS adapter; installs them when missing. */
export function botkitModules(say: (line: string) => void): string {
  const dir = process.env.BENCH_PEER_DIR || join(cacheDir(), 'bench-peer-botkit');
  if (matches(dir)) return join(dir, 'node_modules');
  mkdirSync(dir, { recursive: true });
  // Its own package.json, so npm installs here and not into a package found further up.
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), '{ "name": "parley-bench-peer", "private": true }\n');
  say(`installing the Botkit peer into ${dir} (once)`);
  // --ignore-scripts: a plain install fails on an install script of one of botbuilder's dependencies.
  const specs = Object.entries(PACKAGES).map(([name, version]) => `${name}@${version}`);
  const npm = spawnSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', ...specs], { cwd: dir, stdio: 'inherit' });
  if (npm.status !== 0 || !matches(dir)) throw new Error(`installing ${specs.join(' ')} into ${dir} failed`);
  return join(dir, 'node_modules');
}

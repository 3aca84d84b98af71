#!/usr/bin/env node
/**
 * Compiles the TypeScript sources to dist/ with tsc (tsconfig.build.json) and copies the YAML the CLI
 * reads, then stamps dist/. `node bin/build.js --if-stale` (npm's `prestart` and `prepack`) builds only
 * when a source is newer than the stamp, so `npm start` never runs stale JavaScript and a warm start
 * costs a few stats. Builds take a lock, so concurrent starts and packs do not write dist/ together.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.built');
const LOCK = join(ROOT, '.dist-build.lock');
const SOURCES = ['core', 'channels', 'plugins', 'config', 'bin/parley.ts', 'test/harness.ts', 'test/backend.ts', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

function newestMtime(path) {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(path).reduce((max, name) => Math.max(max, newestMtime(join(path, name))), s.mtimeMs);
}

/** True when dist/ was built after the last change to any source (false in a checkout never built). */
export function isBuildCurrent() {
  const stamp = statSync(STAMP, { throwIfNoEntry: false });
  return !!stamp && SOURCES.every((p) => newestMtime(join(ROOT, p)) <= stamp.mtimeMs);
}

export function build() {
  rmSync(DIST, { recursive: true, force: true });
  let typescript;
  try {
    typescript = dirname(createRequire(import.meta.url).resolve('typescript/package.json'));
  } catch {
    throw new Error('dist/ is missing or older than the sources, and TypeScript (a dev dependency) is not installed: run `npm run build` before `npm prune --omit=dev` / `npm ci --omit=dev`');
  }
  const tscBin = join(typescript, 'bin', 'tsc');
  const tsc = spawnSync(process.execPath, [tscBin, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error(`tsc failed (exit ${tsc.status ?? tsc.signal}); dist/ was not built`);
  mkdirSync(join(DIST, 'config'), { recursive: true });
  for (const name of readdirSync(join(ROOT, 'config')).filter((n) => n.endsWith('.yaml'))) cpSync(join(ROOT, 'config', name), join(DIST, 'config', name));
  // The console's page assets are read next to its compiled module.
  cpSync(join(ROOT, 'core', 'console', 'assets'), join(DIST, 'core', 'console', 'assets'), { recursive: true });
  // The crisis detector's trained weights are read next to its compiled module.
  cpSync(join(ROOT, 'plugins', 'crisis-guard', 'model.json'), join(DIST, 'plugins', 'crisis-guard', 'model.json'));
  // And the words of its training messages, which it never reads as misspelt (detector.ts, `respell`).
  cpSync(join(ROOT, 'plugins', 'crisis-guard', 'train', 'sets'), join(DIST, 'plugins', 'crisis-guard', 'train', 'sets'), { recursive: true });
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Runs `fn` holding a directory lock; a lock whose process died is taken over. */
function withBuildLock(fn) {
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(join(LOCK, 'pid'), { encoding: 'utf8', flag: 'a+' }));
      if (owner && !alive(owner)) rmSync(LOCK, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const ifStale = process.argv.includes('--if-stale');
  if (ifStale && !existsSync(join(ROOT, 'tsconfig.build.json'))) process.exit(0); // an installed copy ships dist/
  if (ifStale && isBuildCurrent()) process.exit(0);
  const t0 = performance.now();
  try {
    const built = withBuildLock(() => (ifStale && isBuildCurrent() ? false : (build(), true)));
    if (built) console.log(`Built dist/ in ${Math.round(performance.now() - t0)} ms`);
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}

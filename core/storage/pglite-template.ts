/**
 * A fresh embedded database starts from a copy of a pristine one. PGlite's initdb takes 4-5 s on these
 * machines, a copy of its result (about 40 MB, a thousand files) well under one: the first fresh start
 * of an installed PGlite version makes the template in the user's cache, every later one copies it.
 * Only an initdb'd, cleanly closed cluster goes there (no Parley tables: migrations run on the copy).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';

type Create = (dir: string) => Promise<{ close(): Promise<void> }>;

/** Where templates live: PARLEY_CACHE_DIR, else $XDG_CACHE_HOME/parley, else ~/.cache/parley. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PARLEY_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'parley');
}

/** A data directory made by another PGlite build may not open: templates are kept per version. */
function pgliteVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** True when `dir` already holds a database cluster. */
function hasCluster(dir: string): boolean {
  return existsSync(join(dir, 'PG_VERSION'));
}

/**
 * Fills the empty (or missing) `dir` from the template, making the template first when there is none,
 * so the PGlite opened on it next skips initdb. Returns false when `dir` holds anything already, or no
 * template could be used (a cache that cannot be written): PGlite then runs initdb on `dir` itself.
 */
export async function seedFromTemplate(dir: string, cache: string, create: Create, log: Logger): Promise<boolean> {
  if (existsSync(dir) && readdirSync(dir).length) return false;
  try {
    const template = join(cache, `pglite-${pgliteVersion()}`);
    if (!hasCluster(template)) {
      mkdirSync(dirname(template), { recursive: true });
      // Made beside its final place and renamed: a concurrent first start never sees half a template.
      const scratch = mkdtempSync(`${template}.tmp-`);
      try {
        const db = await create(join(scratch, 'pgdata'));
        await db.close();
        renameSync(join(scratch, 'pgdata'), template);
      } catch (error) {
        // Another process made it first (theirs is as good as ours), or making it failed.
        if (!hasCluster(template)) throw error;
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }
    cpSync(template, dir, { recursive: true });
    return true;
  } catch (error) {
    log.info({ err: error, cache }, 'no embedded database template (is the cache writable?): initialising the data directory in place');
    // `dir` was empty: whatever a failed copy left in it goes.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return false;
  }
}

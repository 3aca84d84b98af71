/**
 * A fresh embedded database is a copy of a template made once per PGlite version in the user's cache,
 * so only the first fresh start on a machine pays for initdb.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDatabase } from '../core/storage/database.js';
import { seedFromTemplate } from '../core/storage/pglite-template.js';

const root = mkdtempSync(join(tmpdir(), 'parley-template-'));
const log = pino({ level: 'silent' });
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the embedded database template', () => {
  const cache = join(root, 'cache');

  it('is made by the first fresh start, and later fresh data directories are separate copies of it', async () => {
    const first = await openDatabase({ dataDir: join(root, 'a'), poolSize: 2, log, cacheDir: cache });
    await first.pool.query('CREATE TABLE only_in_a (id int)');
    await first.close();
    expect(readdirSync(cache).filter((name) => name.startsWith('pglite-'))).toHaveLength(1);

    const second = await openDatabase({ dataDir: join(root, 'b'), poolSize: 2, log, cacheDir: cache });
    const { rows } = await second.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'only_in_a'");
    expect(rows[0]!.n).toBe(0);
    await second.pool.query('CREATE TABLE only_in_b (id int)');
    await second.close();
  });

  it('runs with 16MB of shared buffers unless told otherwise, and refuses a size it cannot read', async () => {
    const small = await openDatabase({ dataDir: join(root, 'buffers-default'), poolSize: 1, log, cacheDir: cache });
    expect((await small.pool.query('SHOW shared_buffers')).rows[0].shared_buffers).toBe('16MB');
    await small.close();
    const raised = await openDatabase({ dataDir: join(root, 'buffers-raised'), poolSize: 1, log, cacheDir: cache, sharedBuffers: '32MB' });
    expect((await raised.pool.query('SHOW shared_buffers')).rows[0].shared_buffers).toBe('32MB');
    await raised.close();
    await expect(openDatabase({ dataDir: join(root, 'buffers-bad'), poolSize: 1, log, cacheDir: cache, sharedBuffers: 'lots' })).rejects.toMatchObject({ code: 'PARLEY_CONFIG_INVALID' });
  });

  it('fills a fresh directory without running initdb once the template exists', async () => {
    const dir = join(root, 'c', 'pglite');
    const seeded = await seedFromTemplate(dir, cache, () => Promise.reject(new Error('initdb must not run')), log);
    expect(seeded).toBe(true);
    expect(existsSync(join(dir, 'PG_VERSION'))).toBe(true);
  });

  it('never touches a directory that holds anything', async () => {
    const dir = join(root, 'd');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    expect(await seedFromTemplate(dir, cache, () => Promise.reject(new Error('unused')), log)).toBe(false);
    expect(readdirSync(dir)).toEqual(['keep.txt']);
  });

  it('leaves initdb to PGlite when the cache cannot be written', async () => {
    const blocked = join(root, 'not-a-directory');
    writeFileSync(blocked, 'a file where the cache would go');
    const db = await openDatabase({ dataDir: join(root, 'e'), poolSize: 2, log, cacheDir: blocked });
    const { rows } = await db.pool.query<{ one: number }>('SELECT 1 AS one');
    expect(rows[0]!.one).toBe(1);
    await db.close();
  });
});

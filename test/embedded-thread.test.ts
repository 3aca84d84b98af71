/**
 * `parley start` launches the embedded database as soon as the configuration names its data
 * directory, while the gateway's modules load; the gateway's openDatabase adopts that thread when it
 * was started for the same directory and settings, and otherwise puts it away and starts its own.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openDatabase } from '../core/storage/database.js';
import { launchEarly } from '../core/storage/embedded-thread.js';

/** Resolves once the database thread on `dir` serves its socket, that is, has started. */
async function listening(dir: string): Promise<void> {
  for (const until = Date.now() + 60_000; !existsSync(join(dir, 'socket', '.s.PGSQL.5432')); ) {
    if (Date.now() > until) throw new Error(`nothing listens in ${dir}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const root = mkdtempSync(join(tmpdir(), 'parley-early-'));
const log = pino({ level: 'silent' });
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the embedded database launched before the gateway opens it', () => {
  it('is adopted for the same directory: what it logged while starting reaches the gateway', async () => {
    const dir = join(root, 'same');
    const blocked = join(root, 'not-a-cache');
    writeFileSync(blocked, 'a file where the template cache would go');
    launchEarly({ dataDir: dir, cacheDir: blocked });
    // The directory is the launch's at once: a second process is refused from here on.
    expect(readFileSync(join(dir, 'parley.pid'), 'utf8')).toBe(String(process.pid));
    // Once it listens, its start (initdb in place, which it logged) is done: a second thread started
    // now would find the directory made and log nothing.
    await listening(dir);
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const db = await openDatabase({ dataDir: dir, poolSize: 2, log: capture, cacheDir: blocked });
    expect((await db.pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    expect(lines.some((line) => line.includes('no embedded database template'))).toBe(true);
    await db.close();
    expect(existsSync(join(dir, 'parley.pid'))).toBe(false);
  });

  it('is put away when the gateway asks for other settings, and its directory is free again', async () => {
    const early = join(root, 'early');
    launchEarly({ dataDir: early, sharedBuffers: '32MB' });
    expect(existsSync(join(early, 'parley.pid'))).toBe(true);
    const db = await openDatabase({ dataDir: join(root, 'other'), poolSize: 1, log });
    expect(existsSync(join(early, 'parley.pid'))).toBe(false);
    expect((await db.pool.query('SHOW shared_buffers')).rows[0].shared_buffers).toBe('16MB');
    await db.close();

    // Started for other settings on the same directory: closed, and the gateway's own opens it.
    const dir = join(root, 'buffers');
    launchEarly({ dataDir: dir, sharedBuffers: '32MB' });
    await listening(dir);
    const again = await openDatabase({ dataDir: dir, poolSize: 1, log });
    expect((await again.pool.query('SHOW shared_buffers')).rows[0].shared_buffers).toBe('16MB');
    await again.close();
  });

  it('leaves a directory in use by another process to the gateway, which says so', async () => {
    const dir = join(root, 'taken');
    mkdirSync(dir, { recursive: true });
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'parley.pid'), String(other.pid));
      expect(() => launchEarly({ dataDir: dir })).not.toThrow();
      await expect(openDatabase({ dataDir: dir, poolSize: 1, log })).rejects.toMatchObject({
        code: 'PARLEY_STORAGE_UNAVAILABLE',
        message: expect.stringContaining(`in use by process ${other.pid}`),
      });
    } finally {
      other.kill();
    }
  });
});

/**
 * Backups on both backends: a running gateway writes one (the embedded data directory through its own
 * PGlite, or pg_dump), encrypted; `verify` restores it into a scratch database and compares row counts;
 * restore into a fresh data directory or database gives identical row counts; the CLI's commands run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { startTestGateway, type TestGateway } from './harness.js';
import { TEST_BACKEND, freshDatabase } from './backend.js';
import { backupFileName, readManifest, restoreEmbedded, restorePostgres, tableCounts, verifyBackup } from '../core/backup.js';

const KEY = 'key-backup-0123456789';
const OP = 'key-operator-backup-0123456789';
const BACKUP_KEY = Buffer.alloc(32, 7);
const config = { operator: { apiKeys: [OP] }, plugins: ['http', 'keyword-replies', 'dsar'], tenants: [{ id: 'acme', apiKeys: [KEY], pipeline: ['dsar', 'keyword-replies'], plugins: { http: {}, dsar: {}, 'keyword-replies': { defaultReply: 'Thanks.' } } }] };

let gw: TestGateway;
const dir = mkdtempSync(join(tmpdir(), 'parley-backups-'));
beforeAll(async () => {
  gw = await startTestGateway({ config });
  for (let i = 0; i < 20; i++) await gw.send('acme', { from: `+1555020${String(i).padStart(4, '0')}`, text: `message ${i}` });
  await gw.request('POST', '/v1/tenants/acme/data-subjects/requests', { key: KEY, body: { type: 'erase', subject: { addresses: ['+15550200001'] }, requestedBy: 'x' } });
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  rmSync(dir, { recursive: true, force: true });
});

async function liveCounts(url: string | undefined): Promise<Record<string, number>> {
  if (!url) throw new Error('no url');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await tableCounts((s) => c.query(s));
  } finally {
    await c.end();
  }
}

/** `parley` as a child process, awaited asynchronously: a gateway it calls may run in this process. */
function cli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/parley.ts', ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe(`backups (${TEST_BACKEND})`, () => {
  it('backs up the running gateway encrypted, verifies it in a scratch database, and restores identical row counts', async () => {
    const file = join(dir, 'one.backup');
    const t0 = performance.now();
    const manifest = await gw.gateway.backup(file, BACKUP_KEY);
    const backupMs = performance.now() - t0;
    expect(manifest.backend).toBe(TEST_BACKEND === 'external' ? 'postgres' : 'embedded');
    expect(manifest.encryption?.alg).toBe('aes-256-gcm');
    expect(manifest.counts['public.parley_inbound']).toBe(20);
    expect(manifest.counts['public.dsar_requests']).toBe(1);
    expect(manifest.auditHead?.hash).toMatch(/^[0-9a-f]{64}$/);
    // The payload is ciphertext: no message text in the clear.
    expect(readFileSync(file).includes(Buffer.from('message 1'))).toBe(false);

    await expect(verifyBackup(file, undefined, gw.databaseUrl)).rejects.toThrow(/PARLEY_BACKUP_KEY/);
    const verified = await verifyBackup(file, BACKUP_KEY, gw.databaseUrl);
    expect(verified).toMatchObject({ ok: true, mismatches: [] });

    const t1 = performance.now();
    let restored: Record<string, number>;
    if (TEST_BACKEND === 'external') {
      const target = await freshDatabase();
      try {
        await restorePostgres(target.url, file, BACKUP_KEY);
        restored = await liveCounts(target.url);
      } finally {
        await target.drop();
      }
    } else {
      const dataDir = mkdtempSync(join(tmpdir(), 'parley-restore-'));
      await restoreEmbedded(dataDir, file, BACKUP_KEY);
      const second = await startTestGateway({ config, dataDir });
      try {
        restored = await tableCounts((s) => second.gateway.db.pool.query(s));
        expect((await second.request('GET', '/v1/tenants/acme/data-subjects/requests', { key: KEY })).body.requests).toHaveLength(1);
      } finally {
        await second.stop({ cleanup: true });
      }
    }
    const restoreMs = performance.now() - t1;
    for (const [table, n] of Object.entries(manifest.counts)) if (!table.startsWith('bullmq.')) expect({ table, n: restored[table] }).toEqual({ table, n });
    console.log(`[backup ${TEST_BACKEND}] backup ${Math.round(backupMs)} ms, verify ${verified.restoreMs} ms, restore ${Math.round(restoreMs)} ms, ${readFileSync(file).length} bytes`);
  });

  it('a tampered backup fails authentication', async () => {
    const file = join(dir, 'two.backup');
    await gw.gateway.backup(file, BACKUP_KEY);
    const bytes = readFileSync(file);
    const { headerBytes } = readManifest(file);
    bytes[headerBytes + 10] = bytes[headerBytes + 10]! ^ 0xff;
    const bad = join(dir, 'bad.backup');
    (await import('node:fs')).writeFileSync(bad, bytes);
    await expect(verifyBackup(bad, BACKUP_KEY, gw.databaseUrl)).rejects.toMatchObject({ code: 'PARLEY_BACKUP_UNREADABLE' });
  });

  it('a wrong PARLEY_BACKUP_KEY makes restore and backup verify say so and exit 3, without a stack trace, changing nothing', async () => {
    const file = join(dir, 'keyed.backup');
    await gw.gateway.backup(file, BACKUP_KEY);
    await expect(verifyBackup(file, Buffer.alloc(32, 9), gw.databaseUrl)).rejects.toMatchObject({ code: 'PARLEY_BACKUP_UNREADABLE' });
    const target = TEST_BACKEND === 'external' ? await freshDatabase() : null;
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-wrong-key-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_DATA_DIR: dataDir, PARLEY_BACKUP_KEY: Buffer.alloc(32, 9).toString('hex'), PARLEY_DEMO_KEY: 'cli-demo-key-0123456789' };
      if (target) env.DATABASE_URL = target.url;
      else delete env.DATABASE_URL;
      for (const args of [['restore', file], ['backup', 'verify', file]]) {
        const r = await cli(env, ...args);
        expect({ args, status: r.status }).toEqual({ args, status: 3 });
        expect(r.stderr).toMatch(/cannot be decrypted: PARLEY_BACKUP_KEY is not the key it was written with, or the file was altered/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      // Nothing was restored.
      if (target) expect(await liveCounts(target.url)).toEqual({});
      else expect(readdirSync(dataDir).filter((f) => f.startsWith('pglite'))).toEqual([]);
    } finally {
      await target?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('parley audit verify reports the newest rows missing against the newest backup, with no head given', async () => {
    const older = join(dir, 'older.backup');
    const first = await gw.gateway.backup(older, undefined);
    await gw.gateway.db.pool.query(`INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ('acme', 'operator', 'test.after-backup', '{}')`);
    // The database is put back to the older state: its chain is valid, but ends before the newest backup's head.
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-audit-cli-'));
    const target = TEST_BACKEND === 'external' ? await freshDatabase() : null;
    try {
      const newest = await gw.gateway.backup(join(dataDir, 'backups', backupFileName()), undefined);
      expect(BigInt(newest.auditHead!.seq)).toBeGreaterThan(BigInt(first.auditHead!.seq));
      if (target) await restorePostgres(target.url, older, undefined);
      else await restoreEmbedded(dataDir, older, undefined);
      const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_DATA_DIR: dataDir, PARLEY_DEMO_KEY: 'cli-demo-key-0123456789' };
      if (target) env.DATABASE_URL = target.url;
      else delete env.DATABASE_URL;
      const r = await cli(env, 'audit', 'verify');
      expect(r.stdout).toContain(`checked against the head recorded in ${join(dataDir, 'backups')}`);
      expect(r.stdout).toMatch(new RegExp(`seq ${newest.auditHead!.seq} .*truncated: the chain ends at seq ${first.auditHead!.seq}`));
      expect(r.status).toBe(1);
      const given = await cli(env, 'audit', 'verify', '--expect-head', `${first.auditHead!.seq}:${first.auditHead!.hash}`);
      expect(given.stdout).toMatch(/audit chain intact/);
      expect(given.status).toBe(0);
    } finally {
      await target?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(TEST_BACKEND === 'embedded')('the CLI backs up a running embedded gateway through it, and verifies the file', async () => {
    const file = join(dir, 'cli.backup');
    const env: NodeJS.ProcessEnv = { ...process.env, PARLEY_DATA_DIR: gw.dataDir, PARLEY_BACKUP_KEY: BACKUP_KEY.toString('hex'), PARLEY_DEMO_KEY: 'cli-demo-key-0123456789' };
    delete env.DATABASE_URL;
    const made = await cli(env, 'backup', '--out', file, '--url', gw.url, '--key', OP);
    expect(made.stderr).toBe('');
    expect(made.stdout).toMatch(/embedded, \d+ tables/);
    const checked = await cli(env, 'backup', 'verify', file);
    expect(checked.stdout).toMatch(/every row count matches/);
    expect(checked.status).toBe(0);
  }, 180_000);
});

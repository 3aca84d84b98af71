/** The scheduled backup (`options.backup`): one file per tick in `dir`, the newest `keep` kept. */
import { join } from 'node:path';
import { readdirSync, rmSync, existsSync } from 'node:fs';

export interface BackupCapable {
  backup(out: string, key: Buffer | undefined): Promise<{ counts: Record<string, number>; auditHead: { seq: string; hash: string } | null }>;
}

function backupKey(): Buffer | undefined {
  const raw = process.env.PARLEY_BACKUP_KEY?.trim();
  if (!raw) return undefined;
  return /^[0-9a-f]{64}$/i.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
}

export async function runScheduledBackup(gateway: BackupCapable, opts: { dir: string; keep: number; encrypt: boolean }, log: { info(o: object, m: string): void }): Promise<{ file: string; removed: string[] }> {
  const key = opts.encrypt ? backupKey() : undefined;
  if (opts.encrypt && !key) throw new Error('backup.encrypt is set but PARLEY_BACKUP_KEY is not');
  const file = join(opts.dir, `parley-${new Date().toISOString().replace(/[:.]/g, '-')}.backup`);
  const t0 = Date.now();
  const manifest = await gateway.backup(file, key);
  const files = existsSync(opts.dir) ? readdirSync(opts.dir).filter((f) => /^parley-.*\.backup$/.test(f)).sort() : [];
  const removed = files.slice(0, Math.max(0, files.length - opts.keep));
  for (const f of removed) rmSync(join(opts.dir, f), { force: true });
  log.info({ file, tables: Object.keys(manifest.counts).length, ms: Date.now() - t0, removed: removed.length, auditHead: manifest.auditHead }, 'backup written');
  return { file, removed };
}

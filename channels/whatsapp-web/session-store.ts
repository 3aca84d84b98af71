/**
 * A whatsapp-web.js `RemoteAuth` store on the Parley database, so the instance that takes a number
 * over (see lease.ts) restores the WhatsApp Web login instead of asking for a new QR code.
 *
 * How RemoteAuth (whatsapp-web.js 1.34) uses its store, which this class follows:
 * - `sessionExists({ session })` before restoring, after 'ready' and before deleting;
 * - `save({ session })` right after it zipped the profile to `<dataPath>/<session>.zip`: the store
 *   must read that file itself (RemoteAuth passes no path), then RemoteAuth deletes the file;
 * - `extract({ session, path })`: write the zip to `path`, which RemoteAuth then unzips and deletes;
 * - `delete({ session })` on logout.
 * `session` is `RemoteAuth-<clientId>`. Rows are keyed by (tenant, session): one row per session,
 * replaced on every backup.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Pool } from 'pg';

/** The store interface whatsapp-web.js's `RemoteAuth` calls (its `Store` type, narrowed to promises). */
export interface RemoteAuthStore {
  sessionExists(options: { session: string }): Promise<boolean>;
  save(options: { session: string }): Promise<void>;
  extract(options: { session: string; path: string }): Promise<void>;
  delete(options: { session: string }): Promise<void>;
}

/** Session names RemoteAuth builds: `RemoteAuth` or `RemoteAuth-<clientId>` (letters, digits, `_`, `-`). */
const SESSION_NAME = /^[-_\w]+$/;

function checkSession(session: string): string {
  // The name becomes a file name below: refuse anything that could leave the data folder.
  if (!SESSION_NAME.test(session)) throw new Error(`Invalid WhatsApp Web session name: ${JSON.stringify(session)}`);
  return session;
}

/**
 * RemoteAuth store in `whatsapp_web_auth`, scoped to one tenant.
 *
 * @example
 * const store = new PostgresSessionStore(pool, 'clinic', '/var/lib/parley/whatsapp-web');
 * new RemoteAuth({ clientId: 'clinic-15550001111', dataPath: '/var/lib/parley/whatsapp-web', store, backupSyncIntervalMs: 300_000 });
 */
export class PostgresSessionStore implements RemoteAuthStore {
  /** Where RemoteAuth writes `<session>.zip` before calling `save` (its `dataPath`, resolved as it does). */
  readonly dataPath: string;

  constructor(
    private readonly db: Pool,
    readonly tenantId: string,
    dataPath: string,
  ) {
    this.dataPath = resolve(dataPath);
  }

  async sessionExists({ session }: { session: string }): Promise<boolean> {
    const { rows } = await this.db.query('SELECT 1 FROM whatsapp_web_auth WHERE tenant_id = $1 AND session = $2', [this.tenantId, checkSession(session)]);
    return rows.length > 0;
  }

  async save({ session }: { session: string }): Promise<void> {
    const data = await readFile(join(this.dataPath, `${checkSession(session)}.zip`));
    await this.db.query(
      `INSERT INTO whatsapp_web_auth (tenant_id, session, data, updated_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (tenant_id, session) DO UPDATE SET data = EXCLUDED.data, updated_at = now()`,
      [this.tenantId, session, data],
    );
  }

  async extract({ session, path }: { session: string; path: string }): Promise<void> {
    const { rows } = await this.db.query<{ data: Buffer }>('SELECT data FROM whatsapp_web_auth WHERE tenant_id = $1 AND session = $2', [this.tenantId, checkSession(session)]);
    const row = rows[0];
    if (!row) throw new Error(`No stored WhatsApp Web session ${session} for tenant ${this.tenantId}`);
    await writeFile(path, Buffer.from(row.data));
  }

  async delete({ session }: { session: string }): Promise<void> {
    await this.db.query('DELETE FROM whatsapp_web_auth WHERE tenant_id = $1 AND session = $2', [this.tenantId, checkSession(session)]);
  }
}

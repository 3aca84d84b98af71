/**
 * The RemoteAuth store on a real migrated database (the harness's PGlite or external PostgreSQL),
 * driven the way whatsapp-web.js's RemoteAuth drives it, and the real factory's RemoteAuth choice.
 * No browser starts: clients are built, never initialised.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wwebjs from 'whatsapp-web.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { fakeWhatsAppWeb } from './fixtures/whatsapp-web-fake.js';
import { applyMigrations } from '../core/storage/migrations.js';
import { createRealClient, type RealClientOptions } from '../channels/whatsapp-web/client-like.js';
import { realClientFactory } from '../channels/whatsapp-web/index.js';
import { migrations } from '../channels/whatsapp-web/lease.js';
import { PostgresSessionStore, type RemoteAuthStore } from '../channels/whatsapp-web/session-store.js';
import { optionsSchema } from '../channels/whatsapp-web/types.js';

const { Client, LocalAuth, RemoteAuth } = wwebjs;
const FIXTURE = fileURLToPath(new URL('./fixtures/whatsapp-web-fake.ts', import.meta.url));

// Never called: tsc proves our store fits the library's RemoteAuth `store` option.
export function typeLevelProofs(store: PostgresSessionStore): void {
  const libraryStore: ConstructorParameters<typeof RemoteAuth>[0] = { store, backupSyncIntervalMs: 60_000 };
  const ours: RemoteAuthStore = store;
  const options: RealClientOptions = { clientId: 'x', dataPath: '/x', executablePath: '/x', auth: { kind: 'database', store, backupSyncIntervalMs: 60_000 } };
  void libraryStore;
  void ours;
  void options;
}

let gw: TestGateway;
let dir: string;

beforeAll(async () => {
  // The plugin with the fake client (no browser) and auth: database; the kernel applies its migrations.
  gw = await startTestGateway({
    config: {
      plugins: [{ name: 'whatsapp-web', options: { auth: 'database', backupSyncIntervalMs: 60_000 } }],
      tenants: [{ id: 'clinic', apiKeys: ['clinic-key'], pipeline: [], plugins: { 'whatsapp-web': { number: '+15550001111' } } }],
    },
    catalogue: { 'whatsapp-web': FIXTURE },
  });
  // Applied already: a re-run is a no-op, which also proves the migration is in the plugin's list.
  expect(await applyMigrations(gw.gateway.db.pool, 'whatsapp-web', migrations)).toEqual([]);
  dir = await mkdtemp(join(tmpdir(), 'parley-wwebjs-auth-'));
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Writes zip-like bytes to `<dataPath>/<session>.zip`, where RemoteAuth leaves its zip before `save`. */
async function zipProfile(dataPath: string, session: string): Promise<Buffer> {
  const bytes = Buffer.concat([Buffer.from('PK\u0003\u0004'), randomBytes(64 * 1024), Buffer.from([0, 255, 0, 254])]);
  await writeFile(join(dataPath, `${session}.zip`), bytes);
  return bytes;
}

describe('PostgresSessionStore', () => {
  it('saves the zip RemoteAuth left in dataPath, reports it, extracts identical bytes and deletes it', async () => {
    const dataPath = join(dir, 'save');
    await mkdir(dataPath, { recursive: true });
    const store = new PostgresSessionStore(gw.gateway.db.pool, 'acme', dataPath);
    const session = 'RemoteAuth-acme-15550001111';

    expect(await store.sessionExists({ session })).toBe(false);
    const zip = await zipProfile(dataPath, session);
    await store.save({ session });
    expect(await store.sessionExists({ session })).toBe(true);

    const target = join(dir, 'restored.zip');
    await store.extract({ session, path: target });
    expect((await readFile(target)).equals(zip)).toBe(true);

    // A later backup replaces the row: one row per session.
    await rm(join(dataPath, `${session}.zip`));
    const second = await zipProfile(dataPath, session);
    await store.save({ session });
    const { rows } = await gw.gateway.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM whatsapp_web_auth WHERE tenant_id = $1 AND session = $2', ['acme', session]);
    expect(rows[0]!.n).toBe(1);
    const target2 = join(dir, 'restored-2.zip');
    await store.extract({ session, path: target2 });
    expect((await readFile(target2)).equals(second)).toBe(true);

    await store.delete({ session });
    expect(await store.sessionExists({ session })).toBe(false);
    await expect(store.extract({ session, path: join(dir, 'gone.zip') })).rejects.toThrow(/No stored WhatsApp Web session/);
    await expect(stat(join(dir, 'gone.zip'))).rejects.toThrow();
  });

  it('keeps tenants apart: another tenant neither sees, restores nor deletes the session', async () => {
    const dataPath = join(dir, 'isolation');
    await mkdir(dataPath, { recursive: true });
    const a = new PostgresSessionStore(gw.gateway.db.pool, 'tenant-a', dataPath);
    const b = new PostgresSessionStore(gw.gateway.db.pool, 'tenant-b', dataPath);
    const session = 'RemoteAuth-shared-name';
    const zip = await zipProfile(dataPath, session);
    await a.save({ session });

    expect(await a.sessionExists({ session })).toBe(true);
    expect(await b.sessionExists({ session })).toBe(false);
    await expect(b.extract({ session, path: join(dir, 'stolen.zip') })).rejects.toThrow();
    await b.delete({ session });
    expect(await a.sessionExists({ session })).toBe(true);

    await a.extract({ session, path: join(dir, 'a.zip') });
    expect((await readFile(join(dir, 'a.zip'))).equals(zip)).toBe(true);
    await a.delete({ session });
    expect(await a.sessionExists({ session })).toBe(false);
  });

  it('round-trips a profile through whatsapp-web.js RemoteAuth itself: zipped by one instance, restored by another', async () => {
    // Two "instances" with their own data folders, sharing only the database.
    type Strategy = { userDataDir: string; sessionName: string; storeRemoteSession(): Promise<void>; extractRemoteSession(): Promise<void> };
    const strategy = (dataPath: string) => {
      const store = new PostgresSessionStore(gw.gateway.db.pool, 'acme', dataPath);
      const auth = new RemoteAuth({ clientId: 'acme-15550003333', dataPath, store, backupSyncIntervalMs: 60_000 }) as unknown as Strategy;
      // What beforeBrowserInitialized sets before the browser starts.
      auth.sessionName = 'RemoteAuth-acme-15550003333';
      auth.userDataDir = join(dataPath, auth.sessionName);
      return { auth, store };
    };
    const owner = strategy(join(dir, 'owner'));
    const profileFile = join(owner.auth.userDataDir, 'Default', 'Local Storage', 'leveldb', 'CURRENT');
    await mkdir(join(owner.auth.userDataDir, 'Default', 'Local Storage', 'leveldb'), { recursive: true });
    await writeFile(profileFile, 'MANIFEST-000001\n');
    await owner.auth.storeRemoteSession();
    expect(await owner.store.sessionExists({ session: owner.auth.sessionName })).toBe(true);
    await expect(stat(join(dir, 'owner', `${owner.auth.sessionName}.zip`))).rejects.toThrow(); // RemoteAuth removed its zip

    const successor = strategy(join(dir, 'successor'));
    await mkdir(join(dir, 'successor'), { recursive: true });
    await successor.auth.extractRemoteSession();
    // RemoteAuth resolves on unzipper's 'finish', which fires once the zip is parsed, before the last
    // files are flushed (unzipper 0.12 signals that with 'close'): wait for the file briefly.
    const restored = join(successor.auth.userDataDir, 'Default', 'Local Storage', 'leveldb', 'CURRENT');
    for (let i = 0; i < 100 && !(await stat(restored).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await readFile(restored, 'utf8')).toBe('MANIFEST-000001\n');
    await successor.store.delete({ session: successor.auth.sessionName });
  });

  it('refuses session names that are not RemoteAuth folder names', async () => {
    const store = new PostgresSessionStore(gw.gateway.db.pool, 'acme', dir);
    await expect(store.save({ session: '../escape' })).rejects.toThrow(/Invalid WhatsApp Web session name/);
    await expect(store.sessionExists({ session: 'a/b' })).rejects.toThrow(/Invalid WhatsApp Web session name/);
  });
});

type RealClient = InstanceType<typeof Client> & {
  authStrategy: { clientId: string; dataPath: string; store?: unknown; backupSyncIntervalMs?: number };
  pupBrowser: unknown;
};

describe('auth: database', () => {
  it('hands the client factory a RemoteAuth choice with a tenant-scoped store under sessionDir', () => {
    const call = fakeWhatsAppWeb.created.find((c) => c.tenantId === 'clinic');
    expect(call).toMatchObject({ clientId: 'clinic-15550001111', dataPath: join(gw.dataDir, 'whatsapp-web'), auth: { kind: 'database', backupSyncIntervalMs: 60_000 } });
    const auth = call!.auth!;
    if (auth.kind !== 'database') throw new Error('expected auth: database');
    expect(auth.store).toBeInstanceOf(PostgresSessionStore);
    expect(auth.store).toMatchObject({ tenantId: 'clinic', dataPath: join(gw.dataDir, 'whatsapp-web') });
  });

  it('makes the real factory build a Client with RemoteAuth on the store, without starting a browser', () => {
    const store = new PostgresSessionStore(gw.gateway.db.pool, 'clinic', '/nonexistent/whatsapp-web');
    const client = realClientFactory({
      clientId: 'clinic-15550001111',
      dataPath: '/nonexistent/whatsapp-web',
      executablePath: '/usr/bin/chromium',
      auth: { kind: 'database', store, backupSyncIntervalMs: 300_000 },
      tenantId: 'clinic',
      number: '+15550001111',
    }) as unknown as RealClient;
    expect(client).toBeInstanceOf(Client);
    expect(client.authStrategy).toBeInstanceOf(RemoteAuth);
    expect(client.authStrategy).not.toBeInstanceOf(LocalAuth);
    expect(client.authStrategy).toMatchObject({ clientId: 'clinic-15550001111', dataPath: '/nonexistent/whatsapp-web', backupSyncIntervalMs: 300_000 });
    expect(client.authStrategy.store).toBe(store);
    expect(client.pupBrowser).toBeFalsy();
  });

  it('keeps LocalAuth by default and for auth: local', () => {
    const base = { clientId: 'clinic-1', dataPath: '/nonexistent/whatsapp-web', executablePath: '/usr/bin/chromium' };
    expect((createRealClient(base) as unknown as RealClient).authStrategy).toBeInstanceOf(LocalAuth);
    expect((createRealClient({ ...base, auth: { kind: 'local' } }) as unknown as RealClient).authStrategy).toBeInstanceOf(LocalAuth);
  });

  it('is an option defaulting to local, with RemoteAuth\'s one-minute backup minimum', () => {
    expect(optionsSchema.parse({})).toMatchObject({ auth: 'local', backupSyncIntervalMs: 300_000 });
    expect(optionsSchema.parse({ auth: 'database', backupSyncIntervalMs: 60_000 })).toMatchObject({ auth: 'database', backupSyncIntervalMs: 60_000 });
    expect(optionsSchema.safeParse({ auth: 'database', backupSyncIntervalMs: 59_999 }).success).toBe(false);
    expect(optionsSchema.safeParse({ auth: 'remote' }).success).toBe(false);
    // The library enforces the same minimum, so a lower value would only fail at client creation.
    const store = new PostgresSessionStore(gw.gateway.db.pool, 'clinic', '/nonexistent');
    expect(() => createRealClient({ clientId: 'c', dataPath: '/nonexistent', executablePath: '/x', auth: { kind: 'database', store, backupSyncIntervalMs: 59_999 } })).toThrow(/backupSyncIntervalMs/);
  });
});

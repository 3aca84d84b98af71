/**
 * Which storage a test gateway uses. `PARLEY_TEST_BACKEND=external` runs on the machine's PostgreSQL
 * (a fresh database per gateway) and Redis (a fresh prefix); the default is embedded PGlite with jobs
 * on it. Under CI=true an unreachable service fails the run loudly; elsewhere those tests skip.
 */
import pg from 'pg';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';

export const TEST_BACKEND: 'embedded' | 'external' = process.env.PARLEY_TEST_BACKEND === 'external' ? 'external' : 'embedded';
export const TEST_PG_URL = process.env.PARLEY_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.PARLEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function reachable(): Promise<string | null> {
  try {
    const c = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
    await c.connect();
    await c.end();
  } catch (error) {
    return `PostgreSQL at ${TEST_PG_URL} is unreachable: ${(error as Error).message}`;
  }
  const r = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await r.connect();
    await r.ping();
  } catch (error) {
    return `Redis at ${TEST_REDIS_URL} is unreachable: ${(error as Error).message}`;
  } finally {
    r.disconnect();
  }
  return null;
}

let checked: Promise<string | null> | undefined;

/** Resolves when external services are usable; throws under CI, returns a skip reason otherwise. */
export async function externalServices(): Promise<string | null> {
  checked ??= reachable();
  const problem = await checked;
  if (problem && process.env.CI === 'true') throw new Error(`${problem} (CI=true: the external-backend tests must not be skipped)`);
  if (problem) console.warn(`[parley tests] skipping external-backend tests: ${problem}`);
  return problem;
}

/** A fresh, empty database on the server at `serverUrl`, dropped by the returned cleanup. */
export async function freshDatabase(serverUrl = TEST_PG_URL): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `parley_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * The plugin author kit: boot a real gateway in-process (embedded PGlite by default, or the external
 * PostgreSQL + Redis when PARLEY_TEST_BACKEND=external) with a given configuration, then send
 * messages and read replies, the outbox and metrics.
 *
 * @example
 * const gw = await startTestGateway({ config: { tenants: [{ id: 'acme', apiKeys: ['k'], pipeline: ['echo'], plugins: { http: {} } }], plugins: [{ name: 'echo', module: './echo.ts' }] } });
 * const { replies } = await gw.send('acme', { from: 'alice', text: 'hi' });
 * await gw.stop();
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Writable } from 'node:stream';
import { Gateway } from '../core/gateway.js';
import { parseConfig, type LoadedConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { builtinPlugins } from '../config/builtins.js';
import type { OutboundMessage } from '../core/message.js';
import { TEST_BACKEND, TEST_REDIS_URL, freshDatabase } from './backend.js';

export interface TestGatewayOptions {
  /** A config object (as the YAML would be) or YAML text. `server`/`storage` get test defaults. */
  config: Record<string, unknown> | string;
  /** Extra catalogue entries (name -> module path). */
  catalogue?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  /** Reuse a data directory (to test restarts); by default a fresh temp dir. */
  dataDir?: string;
  /** Reuse an external database URL (restarts on the external backend). */
  databaseUrl?: string;
  /** Where config-relative module paths resolve from. */
  baseDir?: string;
  logLevel?: string;
  sweepIntervalMs?: number;
  stageTimeoutMs?: number;
  recoverAfterMs?: number;
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  dataDir: string;
  databaseUrl: string | undefined;
  /** Captured log lines (JSON objects). */
  logs: Record<string, unknown>[];
  request(method: string, path: string, opts?: { key?: string; body?: unknown; form?: Record<string, string>; headers?: Record<string, string>; raw?: string }): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  send(tenant: string, message: { from: string; text: string; id?: string }, key?: string): Promise<{ status: number; replies: { id: string; text: string; status: string }[]; message: any }>;
  outbox(tenant: string, status?: string): Promise<OutboundMessage[]>;
  waitForOutbox(tenant: string, predicate: (items: OutboundMessage[]) => boolean, timeoutMs?: number): Promise<OutboundMessage[]>;
  metrics(): Promise<string>;
  /** Stops the gateway; keeps data unless `{ cleanup: true }`. */
  stop(opts?: { cleanup?: boolean }): Promise<void>;
}

export async function startTestGateway(opts: TestGatewayOptions): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  const raw = typeof opts.config === 'string' ? opts.config : stringify(opts.config);
  const config = parseConfig(raw, 'test-config', { ...process.env, ...opts.env });
  config.server.port = 0;
  config.server.host = '127.0.0.1';
  config.storage.dataDir = dataDir;
  config.log.level = (opts.logLevel ?? 'info') as typeof config.log.level;
  let dropDatabase: (() => Promise<void>) | undefined;
  let databaseUrl = opts.databaseUrl;
  if (TEST_BACKEND === 'external' && !config.storage.databaseUrl) {
    if (!databaseUrl) {
      const db = await freshDatabase();
      databaseUrl = db.url;
      dropDatabase = db.drop;
    }
    config.storage.databaseUrl = databaseUrl;
    config.storage.redisUrl = TEST_REDIS_URL;
    // Test files share one Redis: each gateway's queues live under a prefix of its own (storage.jobsPrefix).
    config.storage.jobsPrefix ??= `parley-${databaseUrl.split('/').pop()}`;
  }
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  const configFile = join(dataDir, 'parley.test.yaml');
  writeFileSync(configFile, raw);
  const loaded: LoadedConfig = { config, baseDir: opts.baseDir ?? process.cwd(), source: configFile };
  const gateway = await Gateway.boot({
    loaded,
    catalogue: { ...builtinPlugins, ...opts.catalogue },
    // With log.file the gateway builds its logger, so it can keep (and redact) the file; lines are captured as well.
    ...(config.log.file ? { logDestination: sink } : { logger: createLogger(config.log.level, sink) }),
    sweepIntervalMs: opts.sweepIntervalMs ?? 60_000,
    ...(opts.stageTimeoutMs ? { stageTimeoutMs: opts.stageTimeoutMs } : {}),
    ...(opts.recoverAfterMs !== undefined ? { recoverAfterMs: opts.recoverAfterMs } : {}),
  });
  const url = gateway.url;

  const request: TestGateway['request'] = async (method, path, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    let body: string | undefined;
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    if (o.raw !== undefined) body = o.raw;
    else if (o.form) {
      headers['content-type'] ??= 'application/x-www-form-urlencoded';
      body = new URLSearchParams(o.form).toString();
    } else if (o.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(o.body);
    }
    const res = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  };

  const keyFor = (tenant: string) => config.tenants.find((t) => t.id === tenant)?.apiKeys[0];

  const outbox: TestGateway['outbox'] = async (tenant, status) => {
    const { rows } = await gateway.db.pool.query(
      `SELECT * FROM parley_outbox WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) ORDER BY created_at, seq`,
      [tenant, status ?? null],
    );
    const { toOutbound } = await import('../core/storage/message-store.js');
    return rows.map(toOutbound);
  };

  return {
    gateway,
    url,
    dataDir,
    databaseUrl,
    logs,
    request,
    async send(tenant, message, key) {
      const r = await request('POST', `/v1/tenants/${tenant}/messages`, { key: key ?? keyFor(tenant), body: message });
      return { status: r.status, replies: r.body?.replies ?? [], message: r.body?.message ?? r.body };
    },
    outbox,
    async waitForOutbox(tenant, predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const items = await outbox(tenant);
        if (predicate(items)) return items;
        if (Date.now() > deadline) throw new Error(`outbox of ${tenant} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(items.map((i) => ({ status: i.status, error: i.errorCode, attempts: i.attempts })))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    metrics: () => gateway.registry.metrics(),
    async stop(o = {}) {
      await gateway.stop();
      if (o.cleanup) {
        rmSync(dataDir, { recursive: true, force: true });
        await dropDatabase?.();
      }
    },
  };
}

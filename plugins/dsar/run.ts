/**
 * Runs a request (the `dsar-run` job, payload `{ requestId }` only): an export streams every
 * provider's records, page by page, into a JSON document on disk (0600) with the purposes,
 * recipients, retention and source of each provider and a CSV per kind of record; an erasure runs
 * every provider and then scans for what is left.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { DataSubject } from 'parley';
import type { RequestStore } from './store.js';
import type { ScanResult } from './scan.js';
import type { DsarMetrics } from './metrics.js';
import type { DsarRequest } from './types.js';

export interface ExportStream {
  provider: string;
  plugin: string;
  about: { purpose: string; recipients: string[]; retention: string; source: string };
  batches: AsyncIterable<Record<string, unknown>[]>;
}

export interface RunDeps {
  store: RequestStore;
  metrics: DsarMetrics;
  exportDir: string;
  downloadTtlMs: number;
  secret: () => Promise<string>;
  exportStream(subject: DataSubject): Iterable<ExportStream>;
  erase(subject: DataSubject, actor: string): Promise<Record<string, number>>;
  scan(subject: DataSubject): Promise<ScanResult>;
  /** The link sent to a person who asked on their channel, or null when the tenant does not send it. */
  notify(request: DsarRequest & { replyFrom: string | null }, addresses: string[], link: string): Promise<void>;
  linkBase(): string;
  alert(request: DsarRequest, title: string, detail: string): void;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `<id>.<nonce>.<expires ms>.<hmac>`: the link is the credential, valid until it expires and used once. */
export function signLink(secret: string, id: string, nonce: string, expiresAt: Date): string {
  const body = `${id}.${nonce}.${expiresAt.getTime()}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

export function readLink(secret: string, token: string): { id: string; nonce: string; expiresAt: Date } | 'invalid' | 'expired' {
  const parts = token.split('.');
  if (parts.length !== 4) return 'invalid';
  const [id, nonce, exp, mac] = parts as [string, string, string, string];
  const expected = createHmac('sha256', secret).update(`${id}.${nonce}.${exp}`).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
  const expiresAt = new Date(Number(exp));
  if (!(expiresAt.getTime() > Date.now())) return 'expired';
  return { id, nonce, expiresAt };
}

export async function runRequest(deps: RunDeps, requestId: string): Promise<void> {
  const { store } = deps;
  const started = await store.transition(requestId, ['queued'], 'running', 'dsar', 'started');
  if (!started) return; // already run, rejected, or not approved: a retried job does nothing
  const request = (await store.byId(requestId))!;
  const actor = `dsar:${request.id}`;
  const t0 = Date.now();
  try {
    if (!request.addresses?.length) throw new Error('the request has no subject addresses left');
    const subject: DataSubject = { tenantId: request.tenantId, addresses: request.addresses };
    if (request.type === 'export') {
      const { path, counts } = await writeExport(deps, request, subject);
      const nonce = randomBytes(12).toString('base64url');
      const expiresAt = new Date(Date.now() + deps.downloadTtlMs);
      const done = await store.finish(requestId, { status: 'completed', result: { records: counts }, exportPath: path, downloadNonce: nonce, downloadExpiresAt: expiresAt }, actor, { records: counts });
      deps.metrics.completed.inc({ tenant: request.tenantId, type: 'export', outcome: 'completed' });
      deps.metrics.duration.observe({ type: 'export' }, (Date.now() - t0) / 1000);
      if (done && request.requestedVia === 'channel') {
        const link = `${deps.linkBase()}/v1/dsar/downloads/${signLink(await deps.secret(), request.id, nonce, expiresAt)}`;
        await deps.notify({ ...done, replyFrom: request.replyFrom }, request.addresses, link);
      }
      deps.log.info({ requestId, tenant: request.tenantId, providers: Object.keys(counts).length }, 'data-subject export written');
      return;
    }
    const erased = await deps.erase(subject, actor);
    await store.progress(requestId, 70);
    const verification = await deps.scan(subject);
    for (const [provider, n] of Object.entries(erased)) deps.metrics.erasedRows.inc({ tenant: request.tenantId, provider }, n);
    const ok = verification.remaining === 0;
    await store.finish(
      requestId,
      { status: ok ? 'completed' : 'failed', result: { erased, verification }, error: ok ? null : `verification found ${verification.remaining} match(es) in ${verification.found.map((f) => f.where).join(', ')}` },
      actor,
      { erased, remaining: verification.remaining, found: verification.found.map((f) => f.where), retained: verification.retained.map((r) => r.where) },
    );
    deps.metrics.completed.inc({ tenant: request.tenantId, type: 'erase', outcome: ok ? 'completed' : 'failed' });
    deps.metrics.duration.observe({ type: 'erase' }, (Date.now() - t0) / 1000);
    if (!ok) deps.alert(request, 'erasure verification found data left', `request ${request.id}: ${verification.remaining} match(es) remain (${verification.found.map((f) => f.where).join(', ')})`);
    deps.log.info({ requestId, tenant: request.tenantId, remaining: verification.remaining }, 'data-subject erasure finished');
  } catch (error) {
    await store.finish(requestId, { status: 'failed', error: (error as Error).message.slice(0, 500) }, actor, { error: 'run failed' }).catch(() => undefined);
    deps.metrics.completed.inc({ tenant: request.tenantId, type: request.type, outcome: 'failed' });
    deps.alert(request, `data-subject ${request.type} failed`, `request ${request.id}: ${(error as Error).message.slice(0, 200)}`);
    throw error;
  }
}

async function writeExport(deps: RunDeps, request: DsarRequest, subject: DataSubject): Promise<{ path: string; counts: Record<string, number> }> {
  const dir = join(deps.exportDir, request.tenantId);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${request.id}.json`);
  const out = createWriteStream(path, { mode: 0o600 });
  const csvFiles = new Map<string, { path: string; out: WriteStream; columns: string[] }>();
  const counts: Record<string, number> = {};
  const streams = [...deps.exportStream(subject)];
  try {
    await write(out, `{"request":${JSON.stringify({ id: request.id, tenant: request.tenantId, type: request.type, createdAt: request.createdAt, dueAt: request.dueAt, subjectHashes: request.subjectHashes })},`);
    await write(out, `"generatedAt":${JSON.stringify(new Date().toISOString())},"providers":[`);
    let i = 0;
    for (const s of streams) {
      await write(out, `${i ? ',' : ''}{"provider":${JSON.stringify(s.provider)},"plugin":${JSON.stringify(s.plugin)},"about":${JSON.stringify(s.about)},"records":[`);
      let n = 0;
      for await (const batch of s.batches) {
        for (const record of batch) {
          await write(out, `${n ? ',' : ''}${JSON.stringify(record)}`);
          n += 1;
          const kind = typeof record.kind === 'string' ? record.kind : 'record';
          const key = `${s.provider}.${kind}`.replace(/[^a-z0-9._-]/gi, '_');
          let csv = csvFiles.get(key);
          if (!csv) {
            const columns = Object.keys(record);
            const p = join(dir, `${request.id}.${key}.csv.tmp`);
            csv = { path: p, out: createWriteStream(p, { mode: 0o600 }), columns };
            csvFiles.set(key, csv);
            await write(csv.out, `${columns.map(csvCell).join(',')}\n`);
          }
          await write(csv.out, `${csv.columns.map((c) => csvCell(record[c])).join(',')}\n`);
        }
      }
      counts[s.provider] = n;
      await write(out, ']}');
      i += 1;
      await deps.store.progress(request.id, (i / streams.length) * 90);
    }
    await write(out, '],"notes":[');
    await write(out, JSON.stringify('Opt-outs: when you stop messages, the opt-out is kept even after your data is erased, as a SHA-256 hash of your number only, so you are never messaged again (the law requires honouring it).'));
    await write(out, '],"csv":{');
    // Each kind of record again as CSV (one table per kind), copied from disk into the document.
    let first = true;
    for (const [key, csv] of csvFiles) {
      csv.out.end();
      await once(csv.out, 'close');
      await write(out, `${first ? '' : ','}${JSON.stringify(`${key}.csv`)}:"`);
      first = false;
      for await (const chunk of createReadStream(csv.path, 'utf8')) await write(out, JSON.stringify(chunk as string).slice(1, -1));
      await write(out, '"');
    }
    await write(out, '}}\n');
    out.end();
    await once(out, 'close');
    return { path, counts };
  } catch (error) {
    out.destroy();
    rmSync(path, { force: true });
    throw error;
  } finally {
    for (const csv of csvFiles.values()) {
      csv.out.destroy();
      rmSync(csv.path, { force: true });
    }
  }
}

export function removeExport(path: string): void {
  rmSync(path, { force: true });
  void dirname;
}

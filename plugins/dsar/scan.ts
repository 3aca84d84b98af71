/**
 * Erasure verification: looks for a person in every place the gateway writes. Every text, JSON and
 * array column of every table of every schema the database user can read (the kernel's, every
 * plugin's, BullMQ's when jobs run on the database), restricted to the tenant where the table has a
 * `tenant_id`; every job payload in the job backend (Redis included); and the gateway's log file.
 * It looks for each form of each address (`+1555...`, `whatsapp:+1555...`, `1555...@c.us`, bare
 * digits) and each hash the gateway writes for it (`ph_...`).
 *
 * Some rows keep a hash by design and are reported under `retained`, not `found`: the audit trail
 * (proof that the request was honoured), the request itself, and the opt-out suppression record.
 */
import type { Pool } from 'pg';
import type { DataSubject } from 'parley';

export interface ScanHit {
  where: string;
  matches: number;
}

export interface ScanResult {
  /** Places where the person was found: must be empty after an erasure. */
  found: ScanHit[];
  remaining: number;
  /** Rows kept on purpose, with why. */
  retained: { where: string; rows: number; why: string }[];
  scanned: { tables: number; columns: number; jobs: boolean; logFile: boolean };
}

export interface ScanSources {
  db: Pool;
  jobs: { findPayloads(needles: readonly string[]): Promise<{ queue: string; jobId: string; state: string }[]> };
  logFile: { scan(needles: readonly string[]): Promise<{ matches: number }> } | undefined;
  needles(addresses: string[]): { raw: string[]; hashes: string[] };
  suppressionHash(address: string): string;
}

/** Tables whose rows hold a subject hash on purpose. */
const RETAINED: Record<string, string> = {
  'public.parley_audit': 'the audit trail keeps the hash of the subject as proof the request was honoured (append-only, hash-chained)',
  'public.dsar_requests': 'the request keeps only the hashes of the subject, as proof and for the deadline record',
};

const TEXTUAL = new Set(['text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED', 'bytea', 'name']);

function likePattern(needle: string): string {
  return `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export async function scanSubject(src: ScanSources, subject: DataSubject): Promise<ScanResult> {
  const { raw, hashes } = src.needles(subject.addresses);
  const needles = [...raw, ...hashes];
  const patterns = needles.map(likePattern);
  const { rows: columns } = await src.db.query<{ schema: string; table: string; column: string; type: string }>(
    `SELECT c.table_schema AS schema, c.table_name AS "table", c.column_name AS column, c.data_type AS type
       FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      ORDER BY 1, 2, c.ordinal_position`,
  );
  const tables = new Map<string, { schema: string; table: string; columns: string[]; tenant: boolean }>();
  for (const c of columns) {
    const key = `${c.schema}.${c.table}`;
    let t = tables.get(key);
    if (!t) tables.set(key, (t = { schema: c.schema, table: c.table, columns: [], tenant: false }));
    if (c.column === 'tenant_id') t.tenant = true;
    if (TEXTUAL.has(c.type) && c.type !== 'USER-DEFINED') t.columns.push(c.column);
  }
  const found: ScanHit[] = [];
  const retained: ScanResult['retained'] = [];
  let columnCount = 0;
  const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
  for (const [key, t] of tables) {
    if (!t.columns.length) continue;
    columnCount += t.columns.length;
    const where = t.columns.map((c) => `${ident(c)}::text LIKE ANY($1)`).join(' OR ');
    const sql = `SELECT count(*)::int AS n FROM ${ident(t.schema)}.${ident(t.table)} WHERE (${where})${t.tenant ? ' AND tenant_id::text = $2' : ''}`;
    const { rows } = await src.db.query<{ n: number }>(sql, t.tenant ? [patterns, subject.tenantId] : [patterns]);
    const n = rows[0]?.n ?? 0;
    if (!n) continue;
    if (RETAINED[key]) retained.push({ where: `table ${key}`, rows: n, why: RETAINED[key]! });
    else found.push({ where: `table ${key}`, matches: n });
  }
  const bare = [...new Set(subject.addresses.map((a) => src.suppressionHash(a)))];
  const { rows: suppressed } = await src.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM parley_consent WHERE tenant_id = $1 AND address = ANY($2) AND status = 'opted-out'`, [subject.tenantId, bare]);
  if (suppressed[0]?.n) retained.push({ where: 'table public.parley_consent', rows: suppressed[0].n, why: 'the opt-out is kept as a hashed suppression record (SHA-256 of the number) so the person is never messaged again' });

  const jobs = await src.jobs.findPayloads(needles);
  for (const j of jobs) found.push({ where: `job ${j.queue}/${j.jobId} (${j.state})`, matches: 1 });
  if (src.logFile) {
    const logs = await src.logFile.scan(needles);
    if (logs.matches) found.push({ where: 'log file', matches: logs.matches });
  }
  return { found, remaining: found.reduce((sum, h) => sum + h.matches, 0), retained, scanned: { tables: tables.size, columns: columnCount, jobs: true, logFile: Boolean(src.logFile) } };
}

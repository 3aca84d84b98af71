/**
 * Erasure verification: looks for a person in every place the gateway writes. The string, JSON and
 * array columns of every table of every schema the database user can read (the kernel's, every
 * plugin's, BullMQ's when jobs run on the database), restricted to the tenant where the table has a
 * `tenant_id`; every job payload in the job backend (Redis included); and the gateway's log file
 * with its rotated copies (plain or gzip). It looks for each form of each address (`+1555...`,
 * `whatsapp:+1555...`, `1555...@c.us`, bare digits) and each hash the gateway writes for it (`ph_...`),
 * reduced to the needles no other needle contains (the bare digits cover every phone form).
 *
 * Tables are read in ranges of heap pages, one short query per range, each row's candidate columns
 * joined into one string matched once: the cost is one pass over those columns, and the embedded
 * database's single session is never held for a whole table. `bench/erasure-scan.ts` measures it.
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
  /** What was read: tables and columns that can hold a person's data, and their rows (every tenant's: the pages are read whole). */
  scanned: { tables: number; columns: number; rows: number; jobs: boolean; logFile: boolean };
}

export interface ScanSources {
  db: Pool;
  jobs: { findPayloads(needles: readonly string[]): Promise<{ queue: string; jobId: string; state: string }[]> };
  logFile: { scan(needles: readonly string[]): Promise<{ files: { file: string; matches: number }[] }> } | undefined;
  needles(addresses: string[]): { raw: string[]; hashes: string[] };
  suppressionHash(address: string): string;
  /** Heap pages read per query (default 1000, about 8 MB). */
  batchPages?: number;
}

/** Tables whose rows hold a subject hash on purpose. */
const RETAINED: Record<string, string> = {
  'public.parley_audit': 'the audit trail keeps the hash of the subject as proof the request was honoured (append-only, hash-chained)',
  'public.dsar_requests': 'the request keeps only the hashes of the subject, as proof and for the deadline record',
};

/** Heap pages read per query: short statements, so the embedded database's one session is shared between batches. */
const BATCH_PAGES = 1000;


/**
 * The needles a row must contain one of, with every needle that contains another one dropped: a row
 * holding `whatsapp:+15551234567` also holds `15551234567`, so matching the shorter finds the same rows.
 */
export function coveringNeedles(needles: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of [...new Set(needles)].sort((a, b) => a.length - b.length)) if (!out.some((o) => n.includes(o))) out.push(n);
  return out;
}

function likePattern(needle: string): string {
  return `%${needle.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

interface ScanTable {
  key: string;
  relation: string;
  columns: string[];
  tenant: boolean;
}

/**
 * Every ordinary table (partitions one by one, never through their parent) with the columns a person's
 * data can be in: strings (text, varchar, char), json, jsonb, and arrays of them. Numbers, dates, ids,
 * booleans, vectors and binary columns cannot hold an address or a `ph_` hash as text and are skipped.
 */
async function candidateTables(db: Pool): Promise<ScanTable[]> {
  const { rows } = await db.query<{ schema: string; table: string; oid: string; columns: string[]; tenant: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS "table", c.oid::text AS oid,
            array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attname <> 'tenant_id' AND (t.typcategory = 'S' OR t.typname IN ('json', 'jsonb')
              OR (t.typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND (e.typcategory = 'S' OR e.typname IN ('json', 'jsonb')))))) AS columns,
            bool_or(a.attname = 'tenant_id') AS tenant
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_type t ON t.oid = a.atttypid
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%'
        AND has_table_privilege(c.oid, 'SELECT')
      GROUP BY n.nspname, c.relname, c.oid ORDER BY 1, 2`,
  );
  const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return rows
    .filter((r) => r.columns?.length)
    .map((r) => ({ key: `${r.schema}.${r.table}`, relation: `${ident(r.schema)}.${ident(r.table)}`, columns: r.columns.map(ident), tenant: r.tenant }));
}

/**
 * Matching rows of one table, read in ranges of heap pages (`ctid` ranges: a TID range scan reads only
 * those pages, whatever the table's key). The page count is read again at the end, so rows written
 * past the first count during the scan are read too.
 */
async function scanTable(db: Pool, t: ScanTable, patterns: string[], tenantId: string, batchPages: number): Promise<{ matches: number; rows: number }> {
  // One string per row (NULLs skipped; \x1f cannot be part of a needle), so each row is matched once.
  const text = `concat_ws(chr(31), ${t.columns.map((c) => `${c}::text`).join(', ')})`;
  const sql = `SELECT count(*)::int AS rows, count(*) FILTER (WHERE ${t.tenant ? 'tenant_id::text = $4 AND ' : ''}${text} LIKE ANY($3))::int AS matches
                 FROM ONLY ${t.relation} WHERE ctid >= $1::tid AND ctid < $2::tid`;
  const pagesSql = `SELECT (pg_relation_size('${t.relation.replace(/'/g, "''")}') / current_setting('block_size')::int)::bigint AS pages`;
  let matches = 0;
  let rows = 0;
  let from = 0;
  for (;;) {
    const pages = Number((await db.query<{ pages: string }>(pagesSql)).rows[0]!.pages);
    if (from >= pages) break;
    while (from < pages) {
      const to = Math.min(pages, from + batchPages);
      const r = (await db.query<{ rows: number; matches: number }>(sql, t.tenant ? [`(${from},0)`, `(${to},0)`, patterns, tenantId] : [`(${from},0)`, `(${to},0)`, patterns])).rows[0]!;
      matches += r.matches;
      rows += r.rows;
      from = to;
    }
  }
  return { matches, rows };
}

export async function scanSubject(src: ScanSources, subject: DataSubject): Promise<ScanResult> {
  const { raw, hashes } = src.needles(subject.addresses);
  const needles = [...raw, ...hashes];
  const patterns = coveringNeedles(needles).map(likePattern);
  const tables = await candidateTables(src.db);
  const found: ScanHit[] = [];
  const retained: ScanResult['retained'] = [];
  let rowsScanned = 0;
  for (const t of tables) {
    const { matches, rows } = await scanTable(src.db, t, patterns, subject.tenantId, src.batchPages ?? BATCH_PAGES);
    rowsScanned += rows;
    if (!matches) continue;
    if (RETAINED[t.key]) retained.push({ where: `table ${t.key}`, rows: matches, why: RETAINED[t.key]! });
    else found.push({ where: `table ${t.key}`, matches });
  }
  const bare = [...new Set(subject.addresses.map((a) => src.suppressionHash(a)))];
  const { rows: suppressed } = await src.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM parley_consent WHERE tenant_id = $1 AND address = ANY($2) AND status = 'opted-out'`, [subject.tenantId, bare]);
  if (suppressed[0]?.n) retained.push({ where: 'table public.parley_consent', rows: suppressed[0].n, why: 'the opt-out is kept as a hashed suppression record (SHA-256 of the number) so the person is never messaged again' });

  const jobs = await src.jobs.findPayloads(needles);
  for (const j of jobs) found.push({ where: `job ${j.queue}/${j.jobId} (${j.state})`, matches: 1 });
  if (src.logFile) {
    const logs = await src.logFile.scan(needles);
    for (const f of logs.files) found.push({ where: `log file ${f.file}`, matches: f.matches });
  }
  return { found, remaining: found.reduce((sum, h) => sum + h.matches, 0), retained, scanned: { tables: tables.length, columns: tables.reduce((n, t) => n + t.columns.length, 0), rows: rowsScanned, jobs: true, logFile: Boolean(src.logFile) } };
}

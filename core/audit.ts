/**
 * The audit trail's integrity check. `parley_audit` is append-only and hash-chained by a trigger
 * (migration 007): each row carries `seq` (chain order), `prev_hash` (the previous row's hash, or
 * `genesis`) and `hash`, the SHA-256 of its fields and `prev_hash`. This module recomputes every hash
 * in JavaScript, independently of the database's functions, reading the trail in pages by `seq`.
 *
 * What it detects: an edited row (its hash no longer matches), a deleted or inserted-out-of-band row
 * (the next row's `prev_hash` no longer links, or `seq` skips). The newest rows deleted with nothing
 * after them leave a shorter, valid chain: that is detected only against a head recorded outside the
 * table, which the gateway writes to every backup's manifest (`auditHead`) and, with the dsar plugin,
 * periodically to the log file (`"auditHead"` lines) and the metric `parley_audit_head_seq`.
 * `recordedHead` reads the newest such record; rows written after it and deleted are still invisible.
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readManifest } from './backup.js';
import { readLogLines, rotatedCopies } from './log-file.js';

export interface AuditProblem {
  seq: string | null;
  id: string;
  problem: 'hash-mismatch' | 'broken-link' | 'seq-gap' | 'unchained' | 'truncated';
  detail: string;
}

export interface AuditVerification {
  ok: boolean;
  rows: number;
  head: { seq: string; hash: string } | null;
  problems: AuditProblem[];
}

function field(value: string | null): string {
  return value === null ? '-;' : `${Buffer.byteLength(value, 'utf8')}:${value}`;
}

/** The hash the chain trigger computes, from the row's text forms. */
export function auditRowHash(row: { id: string; tenant_id: string | null; actor: string; action: string; subject_hash: string | null; detail: string; at: string; prev_hash: string }): string {
  const text = [row.id, row.tenant_id, row.actor, row.action, row.subject_hash, row.detail, row.at, row.prev_hash].map(field).join('');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Walks the whole chain in pages of `pageSize`; stops collecting problems after `maxProblems`. */
export async function verifyAuditChain(db: Pool, opts: { pageSize?: number; maxProblems?: number; expectHead?: { seq: string; hash: string } } = {}): Promise<AuditVerification> {
  const pageSize = opts.pageSize ?? 1000;
  const maxProblems = opts.maxProblems ?? 100;
  const problems: AuditProblem[] = [];
  const { rows: unchained } = await db.query<{ id: string }>('SELECT id::text FROM parley_audit WHERE seq IS NULL OR hash IS NULL ORDER BY id LIMIT $1', [maxProblems]);
  for (const r of unchained) problems.push({ seq: null, id: r.id, problem: 'unchained', detail: 'a row without seq/hash: written around the chain trigger' });
  let prevHash = 'genesis';
  let prevSeq = 0n;
  let count = 0;
  let head: AuditVerification['head'] = null;
  for (;;) {
    const { rows } = await db.query<{ seq: string; id: string; tenant_id: string | null; actor: string; action: string; subject_hash: string | null; detail: string; at: string; prev_hash: string; hash: string }>(
      `SELECT seq::text, id::text, tenant_id, actor, action, subject_hash, detail::text AS detail,
              to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, prev_hash, hash
         FROM parley_audit WHERE parley_audit.seq > $1 ORDER BY parley_audit.seq LIMIT $2`,
      [prevSeq.toString(), pageSize],
    );
    for (const row of rows) {
      count += 1;
      const seq = BigInt(row.seq);
      if (problems.length < maxProblems) {
        if (seq !== prevSeq + 1n) problems.push({ seq: row.seq, id: row.id, problem: 'seq-gap', detail: `seq ${prevSeq + 1n}..${seq - 1n} missing: rows were deleted` });
        if (row.prev_hash !== prevHash) problems.push({ seq: row.seq, id: row.id, problem: 'broken-link', detail: 'prev_hash does not match the previous row: a row before it was deleted or changed' });
        if (auditRowHash(row) !== row.hash) problems.push({ seq: row.seq, id: row.id, problem: 'hash-mismatch', detail: 'the row was changed after it was written' });
      }
      prevHash = row.hash;
      prevSeq = seq;
      head = { seq: row.seq, hash: row.hash };
    }
    if (rows.length < pageSize) break;
  }
  if (opts.expectHead && problems.length < maxProblems) {
    const { rows } = await db.query<{ hash: string }>('SELECT hash FROM parley_audit WHERE seq = $1', [opts.expectHead.seq]);
    if (!rows[0])
      problems.push({ seq: opts.expectHead.seq, id: '', problem: 'truncated', detail: `the chain ends at seq ${head?.seq ?? 0}, but seq ${opts.expectHead.seq} was recorded: the newest rows were deleted` });
    else if (rows[0].hash !== opts.expectHead.hash) problems.push({ seq: opts.expectHead.seq, id: '', problem: 'broken-link', detail: 'the row at the recorded head differs from the recorded hash: rows at or before it were changed or replaced' });
  }
  return { ok: problems.length === 0, rows: count, head, problems };
}

export interface RecordedHead {
  seq: string;
  hash: string;
  /** Where it was read: a backup file, a log file, or `argument`. */
  from: string;
}

/** The newest of Parley's backups (`parley-*.backup`, named by time) in `dir` that records a head. */
function headFromBackups(dir: string): RecordedHead | null {
  const files = readdirSync(dir).filter((f) => /^parley-.*\.backup$/.test(f)).sort().reverse();
  for (const f of files) {
    try {
      const { manifest } = readManifest(join(dir, f));
      if (manifest.auditHead) return { ...manifest.auditHead, from: join(dir, f) };
    } catch {
      // Not a readable backup (a partial file): the next older one.
    }
  }
  return null;
}

/** The last `"auditHead"` line of a log file and its rotated copies (highest seq wins). */
async function headFromLog(path: string): Promise<RecordedHead | null> {
  let best: RecordedHead | null = null;
  for (const file of [path, ...rotatedCopies(path)]) {
    if (!existsSync(file)) continue;
    for await (const line of readLogLines(file)) {
      if (!line.includes('"auditHead"')) continue;
      let head: { seq?: unknown; hash?: unknown } | undefined;
      try {
        head = (JSON.parse(line) as { auditHead?: { seq?: unknown; hash?: unknown } }).auditHead;
      } catch {
        continue;
      }
      if (typeof head?.seq !== 'string' || typeof head.hash !== 'string') continue;
      if (!best || BigInt(head.seq) > BigInt(best.seq)) best = { seq: head.seq, hash: head.hash, from: file };
    }
  }
  return best;
}

/**
 * The newest head recorded outside the table among `sources`: `<seq>:<hash>`, a backup file, a
 * folder of backups (the newest one), or a log file (and its rotated copies). Missing paths are skipped.
 *
 * @example
 * const head = await recordedHead(['/var/lib/parley/backups', '/var/lib/parley/parley.log']);
 * const result = await verifyAuditChain(pool, head ? { expectHead: head } : {});
 */
export async function recordedHead(sources: readonly string[]): Promise<RecordedHead | null> {
  let best: RecordedHead | null = null;
  for (const source of sources) {
    let head: RecordedHead | null = null;
    const given = /^(\d+):([0-9a-f]{64})$/.exec(source);
    if (given) head = { seq: given[1]!, hash: given[2]!, from: 'argument' };
    else if (!existsSync(source)) continue;
    else if (statSync(source).isDirectory()) head = headFromBackups(source);
    else {
      let manifest: ReturnType<typeof readManifest>['manifest'] | null = null;
      try {
        manifest = readManifest(source).manifest;
      } catch {
        manifest = null;
      }
      head = manifest ? (manifest.auditHead ? { ...manifest.auditHead, from: source } : null) : await headFromLog(source);
    }
    if (head && (!best || BigInt(head.seq) > BigInt(best.seq))) best = head;
  }
  return best;
}

/** The chain's current head, or null when the trail is empty. */
export async function currentAuditHead(db: Pool): Promise<{ seq: string; hash: string } | null> {
  const { rows } = await db.query<{ seq: string; hash: string }>('SELECT seq::text AS seq, hash FROM parley_audit WHERE seq IS NOT NULL ORDER BY parley_audit.seq DESC LIMIT 1');
  return rows[0] ?? null;
}

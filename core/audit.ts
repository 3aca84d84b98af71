/**
 * The audit trail's integrity check. `parley_audit` is append-only and hash-chained by a trigger
 * (migration 007): each row carries `seq` (chain order), `prev_hash` (the previous row's hash, or
 * `genesis`) and `hash`, the SHA-256 of its fields and `prev_hash`. This module recomputes every hash
 * in JavaScript, independently of the database's functions, reading the trail in pages by `seq`.
 *
 * What it detects: an edited row (its hash no longer matches), a deleted or inserted-out-of-band row
 * (the next row's `prev_hash` no longer links, or `seq` skips). What it cannot detect alone: the newest
 * rows deleted together with nothing after them; compare the printed head (`seq` and `hash`) with one
 * kept elsewhere (`--expect-head`, or the head recorded in a backup's manifest).
 */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';

export interface AuditProblem {
  seq: string | null;
  id: string;
  problem: 'hash-mismatch' | 'broken-link' | 'seq-gap' | 'unchained';
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
    if (rows[0]?.hash !== opts.expectHead.hash) problems.push({ seq: opts.expectHead.seq, id: '', problem: 'broken-link', detail: 'the expected head is missing or differs: rows at or before it were deleted or changed' });
  }
  return { ok: problems.length === 0, rows: count, head, problems };
}

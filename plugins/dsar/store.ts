/**
 * Data-subject requests and their audit. A request keeps the subject's addresses only while it needs
 * them (until its export or erasure finishes, or it is rejected or expires); afterwards only their
 * hashes (`ph_...`, as the logs write them), so the request itself is proof, not a copy of the data.
 * Every step is written to the kernel's hash-chained `parley_audit` (action `dsar.<step>`, detail with
 * the request id and counts, never an address).
 */
import type { Pool, PoolClient } from 'pg';
import { fromMicros, hashAddress, inTransaction, microsOf, subjectHashes, type Migration } from 'parley';
import type { DsarRequest, RequestStatus, RequestType } from './types.js';

export const migrations: Migration[] = [
  {
    id: '001_create_dsar_requests',
    sql: `
      CREATE TABLE dsar_requests (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        type text NOT NULL CHECK (type IN ('export', 'erase')),
        status text NOT NULL,
        -- Cleared when the request is finished: only the hashes stay.
        subject_addresses text[],
        subject_hashes text[] NOT NULL,
        contact_id text,
        reason text NOT NULL DEFAULT '',
        requester_name text,
        language text NOT NULL DEFAULT 'en',
        requested_by text NOT NULL,
        requested_via text NOT NULL,
        channel text,
        reply_from text,
        approved_by text,
        decided_by text,
        decision_note text,
        progress int NOT NULL DEFAULT 0,
        result jsonb,
        error text,
        code_hash text,
        code_expires_at timestamptz,
        code_attempts int NOT NULL DEFAULT 0,
        export_path text,
        download_nonce text,
        download_expires_at timestamptz,
        downloaded_at timestamptz,
        due_at timestamptz NOT NULL,
        warned_at timestamptz,
        overdue_alerted_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        completed_at timestamptz
      );
      CREATE INDEX dsar_requests_tenant ON dsar_requests (tenant_id, created_at DESC);
      CREATE INDEX dsar_requests_open ON dsar_requests (due_at) WHERE status NOT IN ('completed', 'rejected', 'failed', 'expired');
      CREATE INDEX dsar_requests_subject ON dsar_requests USING gin (subject_hashes);
      CREATE TABLE dsar_secrets (name text PRIMARY KEY, value text NOT NULL);
      CREATE TABLE dsar_retention_runs (
        id bigserial PRIMARY KEY,
        tenant_id text NOT NULL,
        kind text NOT NULL,
        dry_run boolean NOT NULL,
        rows int NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

const COLUMNS = `id, tenant_id AS "tenantId", type, status, subject_hashes AS "subjectHashes", contact_id AS "contactId", reason,
  requested_by AS "requestedBy", requester_name AS "requesterName", language, requested_via AS "requestedVia", channel, approved_by AS "approvedBy", decided_by AS "decidedBy",
  decision_note AS "decisionNote", progress, result, error, due_at AS "dueAt", created_at AS "createdAt", updated_at AS "updatedAt",
  completed_at AS "completedAt", download_expires_at AS "downloadExpiresAt", downloaded_at AS "downloadedAt"`;

type Row = Omit<DsarRequest, 'download'> & { downloadExpiresAt: Date | null; downloadedAt: Date | null };

function toRequest({ downloadExpiresAt, downloadedAt, ...row }: Row): DsarRequest {
  return { ...row, download: downloadExpiresAt ? { expiresAt: downloadExpiresAt, downloadedAt } : null };
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const OPEN_STATUSES: RequestStatus[] = ['unverified', 'pending-approval', 'queued', 'running'];

/** The hash the audit rows carry for a subject (the kernel's form: `ph_` of the sorted addresses). */
export function auditSubjectHash(addresses: string[]): string {
  return hashAddress([...addresses].sort().join(','));
}

export class RequestStore {
  constructor(private readonly db: Pool) {}

  async create(input: {
    tenantId: string;
    type: RequestType;
    status: RequestStatus;
    addresses: string[];
    contactId?: string | null;
    reason: string;
    requestedBy: string;
    requesterName?: string | null;
    language?: 'en' | 'es';
    requestedVia: 'api' | 'channel';
    channel?: string | null;
    replyFrom?: string | null;
    dueAt: Date;
    codeHash?: string | null;
    codeExpiresAt?: Date | null;
  }): Promise<DsarRequest> {
    return inTransaction(this.db, async (client) => {
      const { rows } = await client.query<Row>(
        `INSERT INTO dsar_requests (tenant_id, type, status, subject_addresses, subject_hashes, contact_id, reason, requested_by, requested_via, channel, reply_from, due_at, code_hash, code_expires_at, requester_name, language)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING ${COLUMNS}`,
        [input.tenantId, input.type, input.status, input.addresses, subjectHashes({ tenantId: input.tenantId, addresses: input.addresses }), input.contactId ?? null, input.reason, input.requestedBy, input.requestedVia, input.channel ?? null, input.replyFrom ?? null, input.dueAt, input.codeHash ?? null, input.codeExpiresAt ?? null, input.requesterName ?? null, input.language ?? 'en'],
      );
      const request = toRequest(rows[0]!);
      await this.audit(client, request, input.requestedBy, 'requested', { type: input.type, via: input.requestedVia, status: input.status, dueAt: input.dueAt.toISOString(), contactId: input.contactId ?? null }, input.addresses);
      return request;
    });
  }

  async get(tenantId: string, id: string): Promise<DsarRequest | null> {
    if (!UUID.test(id)) return null;
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM dsar_requests WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0] ? toRequest(rows[0]) : null;
  }

  async byId(id: string): Promise<(DsarRequest & { addresses: string[] | null; exportPath: string | null; replyFrom: string | null }) | null> {
    if (!UUID.test(id)) return null;
    const { rows } = await this.db.query<Row & { addresses: string[] | null; exportPath: string | null; replyFrom: string | null }>(
      `SELECT ${COLUMNS}, subject_addresses AS addresses, export_path AS "exportPath", reply_from AS "replyFrom" FROM dsar_requests WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) return null;
    const { addresses, exportPath, replyFrom, ...rest } = row;
    return { ...toRequest(rest), addresses, exportPath, replyFrom };
  }

  /** Newest first; `after` is the sort key of the last request of the previous page (`sortAt`, id). */
  async list(tenantId: string, q: { status?: string | undefined; subjectHashes?: string[] | undefined; limit: number; after?: readonly [string, string] | null }): Promise<{ request: DsarRequest; sortAt: string }[]> {
    const { rows } = await this.db.query<Row & { sortAt: string }>(
      `SELECT ${COLUMNS}, ${microsOf('created_at')} AS "sortAt" FROM dsar_requests WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text[] IS NULL OR subject_hashes && $3)
          AND ($5::text IS NULL OR (created_at, id) < (${fromMicros('$5')}, $6::uuid))
        ORDER BY created_at DESC, id DESC LIMIT $4`,
      [tenantId, q.status ?? null, q.subjectHashes ?? null, q.limit, q.after?.[0] ?? null, q.after?.[1] ?? null],
    );
    return rows.map((r) => ({ request: toRequest(r), sortAt: r.sortAt }));
  }

  /** Moves a request from one of `from` to `to`, once (a conditional update), and audits it. */
  async transition(id: string, from: RequestStatus[], to: RequestStatus, actor: string, step: string, extra: { approvedBy?: string; decidedBy?: string; note?: string | null; detail?: Record<string, unknown> } = {}): Promise<DsarRequest | null> {
    return inTransaction(this.db, async (client) => {
      const { rows } = await client.query<Row & { addresses: string[] | null }>(
        `UPDATE dsar_requests SET status = $3, updated_at = now(),
            approved_by = COALESCE($4, approved_by), decided_by = COALESCE($5, decided_by), decision_note = COALESCE($6, decision_note),
            subject_addresses = CASE WHEN $3 IN ('rejected', 'expired') THEN NULL ELSE subject_addresses END,
            completed_at = CASE WHEN $3 IN ('rejected', 'expired') THEN now() ELSE completed_at END
          WHERE id = $1 AND status = ANY($2) RETURNING ${COLUMNS}, subject_addresses AS addresses`,
        [id, from, to, extra.approvedBy ?? null, extra.decidedBy ?? null, extra.note ?? null],
      );
      const row = rows[0];
      // Nothing matched: nothing was written, so ending the transaction either way is the same.
      if (!row) return null;
      const { addresses: _a, ...rest } = row;
      const request = toRequest(rest);
      await this.audit(client, request, actor, step, { status: to, ...(extra.note ? { noteLength: extra.note.length } : {}), ...extra.detail }, null);
      return request;
    });
  }

  async progress(id: string, progress: number): Promise<void> {
    await this.db.query('UPDATE dsar_requests SET progress = $2, updated_at = now() WHERE id = $1', [id, Math.min(100, Math.max(0, Math.round(progress)))]);
  }

  /** Finishes a request: result, status, addresses dropped (hashes stay), audited. */
  async finish(id: string, outcome: { status: 'completed' | 'failed'; result?: Record<string, unknown> | null; error?: string | null; exportPath?: string | null; downloadNonce?: string | null; downloadExpiresAt?: Date | null }, actor: string, detail: Record<string, unknown>): Promise<DsarRequest | null> {
    return inTransaction(this.db, async (client) => {
      const { rows } = await client.query<Row>(
        `UPDATE dsar_requests SET status = $2, result = $3, error = $4, export_path = COALESCE($5, export_path), download_nonce = COALESCE($6, download_nonce),
            download_expires_at = COALESCE($7, download_expires_at), progress = CASE WHEN $2 = 'completed' THEN 100 ELSE progress END,
            subject_addresses = CASE WHEN $2 = 'completed' THEN NULL ELSE subject_addresses END,
            completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE NULL END, updated_at = now()
          WHERE id = $1 AND status = 'running' RETURNING ${COLUMNS}`,
        [id, outcome.status, outcome.result ?? null, outcome.error ?? null, outcome.exportPath ?? null, outcome.downloadNonce ?? null, outcome.downloadExpiresAt ?? null],
      );
      if (!rows[0]) return null;
      const request = toRequest(rows[0]);
      await this.audit(client, request, actor, outcome.status === 'completed' ? (request.type === 'export' ? 'exported' : 'erased') : 'failed', detail, null);
      return request;
    });
  }

  /** A failed request may be retried: back to queued. */
  async requeue(id: string): Promise<void> {
    await this.db.query(`UPDATE dsar_requests SET status = 'queued', updated_at = now() WHERE id = $1 AND status IN ('failed', 'running')`, [id]);
  }

  /** Marks the download as taken, once, while the link is valid. */
  async takeDownload(id: string, nonce: string): Promise<{ exportPath: string; tenantId: string } | 'expired' | 'used' | null> {
    const { rows } = await this.db.query<{ export_path: string; tenant_id: string }>(
      `UPDATE dsar_requests SET downloaded_at = now(), updated_at = now()
        WHERE id = $1 AND download_nonce = $2 AND downloaded_at IS NULL AND download_expires_at > now() RETURNING export_path, tenant_id`,
      [id, nonce],
    );
    if (rows[0]) return { exportPath: rows[0].export_path, tenantId: rows[0].tenant_id };
    const { rows: why } = await this.db.query<{ downloaded_at: Date | null; expired: boolean }>(
      'SELECT downloaded_at, download_expires_at <= now() AS expired FROM dsar_requests WHERE id = $1 AND download_nonce = $2',
      [id, nonce],
    );
    if (!why[0]) return null;
    return why[0].downloaded_at ? 'used' : 'expired';
  }

  async newLink(id: string, nonce: string, expiresAt: Date): Promise<boolean> {
    const r = await this.db.query(`UPDATE dsar_requests SET download_nonce = $2, download_expires_at = $3, downloaded_at = NULL WHERE id = $1 AND status = 'completed' AND type = 'export' AND export_path IS NOT NULL`, [id, nonce, expiresAt]);
    return (r.rowCount ?? 0) > 0;
  }

  /** The end user's pending request for an address, awaiting its code. */
  async unverifiedFor(tenantId: string, address: string): Promise<{ id: string; codeHash: string; expired: boolean; attempts: number; type: RequestType; language: 'en' | 'es' } | null> {
    const { rows } = await this.db.query<{ id: string; code_hash: string; expired: boolean; code_attempts: number; type: RequestType; language: 'en' | 'es' }>(
      `SELECT id, code_hash, code_expires_at <= now() AS expired, code_attempts, type, language FROM dsar_requests
        WHERE tenant_id = $1 AND status = 'unverified' AND $2 = ANY(subject_addresses) ORDER BY created_at DESC LIMIT 1`,
      [tenantId, address],
    );
    const r = rows[0];
    return r ? { id: r.id, codeHash: r.code_hash, expired: r.expired, attempts: r.code_attempts, type: r.type, language: r.language } : null;
  }

  async countAttempt(id: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('UPDATE dsar_requests SET code_attempts = code_attempts + 1 WHERE id = $1 RETURNING code_attempts AS n', [id]);
    return rows[0]?.n ?? 0;
  }

  async setCode(id: string, codeHash: string): Promise<void> {
    await this.db.query('UPDATE dsar_requests SET code_hash = $2 WHERE id = $1', [id, codeHash]);
  }

  async clearCode(id: string): Promise<void> {
    await this.db.query('UPDATE dsar_requests SET code_hash = NULL, code_expires_at = NULL WHERE id = $1', [id]);
  }

  /** Open requests due before `before` that have not had that alert yet. */
  async dueSoon(before: Date, kind: 'warned' | 'overdue'): Promise<DsarRequest[]> {
    const column = kind === 'warned' ? 'warned_at' : 'overdue_alerted_at';
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM dsar_requests WHERE status = ANY($1) AND due_at <= $2 AND ${column} IS NULL ORDER BY due_at`, [OPEN_STATUSES, before]);
    return rows.map(toRequest);
  }

  async markAlerted(id: string, kind: 'warned' | 'overdue'): Promise<boolean> {
    const column = kind === 'warned' ? 'warned_at' : 'overdue_alerted_at';
    const r = await this.db.query(`UPDATE dsar_requests SET ${column} = now() WHERE id = $1 AND ${column} IS NULL`, [id]);
    return (r.rowCount ?? 0) > 0;
  }

  async counts(): Promise<{ tenant_id: string; status: string; overdue: boolean; n: number }[]> {
    const { rows } = await this.db.query<{ tenant_id: string; status: string; overdue: boolean; n: number }>(
      `SELECT tenant_id, status, (status = ANY($1) AND due_at < now()) AS overdue, count(*)::int AS n FROM dsar_requests GROUP BY 1, 2, 3`,
      [OPEN_STATUSES],
    );
    return rows;
  }

  /** Oldest first, `limit` rows after the audit row `afterSeq`. */
  async auditTrail(tenantId: string, id: string, page: { limit: number; afterSeq?: string | null }): Promise<({ seq: string } & Record<string, unknown>)[]> {
    const { rows } = await this.db.query(
      `SELECT seq::text AS seq, action, actor, subject_hash AS "subjectHash", detail, at, prev_hash AS "prevHash", hash FROM parley_audit
        WHERE tenant_id = $1 AND action LIKE 'dsar.%' AND detail->>'requestId' = $2 AND ($4::text IS NULL OR seq > $4::bigint) ORDER BY parley_audit.seq LIMIT $3`,
      [tenantId, id, page.limit, page.afterSeq ?? null],
    );
    return rows;
  }

  /** A signing key kept in the database (the same for every instance), made on first use. */
  async secret(name: string, make: () => string): Promise<string> {
    await this.db.query('INSERT INTO dsar_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, make()]);
    const { rows } = await this.db.query<{ value: string }>('SELECT value FROM dsar_secrets WHERE name = $1', [name]);
    return rows[0]!.value;
  }

  /** An audit row for a step that changes no status (a new download link). */
  note(request: Pick<DsarRequest, 'id' | 'tenantId' | 'subjectHashes'>, actor: string, step: string, detail: Record<string, unknown>): Promise<void> {
    return this.audit(this.db, request, actor, step, detail, null);
  }

  async audit(db: Pool | PoolClient, request: Pick<DsarRequest, 'id' | 'tenantId' | 'subjectHashes'>, actor: string, step: string, detail: Record<string, unknown>, addresses: string[] | null): Promise<void> {
    const subjectHash = addresses ? auditSubjectHash(addresses) : (request.subjectHashes[0] ?? null);
    await db.query('INSERT INTO parley_audit (tenant_id, actor, action, subject_hash, detail) VALUES ($1, $2, $3, $4, $5)', [request.tenantId, actor, `dsar.${step}`, subjectHash, { requestId: request.id, ...detail }]);
  }
}

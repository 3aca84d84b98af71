/**
 * The review queue: one item per held (or recorded-for-review) message or reply, with its flags and
 * scores (never the text: the message stays where the kernel keeps it, and is read with its context
 * when a moderator opens the item), status, assignee, notes and timestamps; and the audit of every
 * decision. Status changes are conditional updates, so a decision is taken once.
 */
import type { Pool } from 'pg';
import { consentAddress, fromMicros, microsOf, type DataSubject, type DataSubjectProvider, type Migration } from 'parley';
import type { Category, Flag } from './types.js';

export const migrations: Migration[] = [
  {
    id: '001_create_moderation_queue',
    sql: `
      CREATE TABLE moderation_items (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        -- inbound: the message id; outbound: the reply stage key (reply:<inbound id>:<seq> or out:<outbox id>)
        ref text NOT NULL,
        message_id uuid,
        outbox_id uuid,
        conversation_id uuid,
        channel text NOT NULL,
        participant text NOT NULL,
        categories text[] NOT NULL,
        flags jsonb NOT NULL,
        confidence double precision NOT NULL,
        held_stage text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'in_review', 'approved', 'rejected', 'escalated', 'dismissed')),
        assignee text,
        notes text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        claimed_at timestamptz,
        decided_at timestamptz,
        decided_by text,
        decision_reason text,
        auto boolean NOT NULL DEFAULT false,
        settled_at timestamptz,
        UNIQUE (tenant_id, ref)
      );
      CREATE INDEX moderation_items_queue ON moderation_items (tenant_id, status, created_at);
      CREATE INDEX moderation_items_participant ON moderation_items (tenant_id, participant);
      CREATE TABLE moderation_audit (
        id bigserial PRIMARY KEY,
        tenant_id text NOT NULL,
        item_id uuid REFERENCES moderation_items (id) ON DELETE SET NULL,
        actor text NOT NULL,
        action text NOT NULL,
        from_status text,
        to_status text,
        reason text,
        notes text,
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX moderation_audit_item ON moderation_audit (item_id, id);
      CREATE INDEX moderation_audit_tenant ON moderation_audit (tenant_id, at);
    `,
  },
];

export const OPEN_STATUSES = ['pending', 'in_review', 'escalated'] as const;
export type ItemStatus = 'pending' | 'in_review' | 'approved' | 'rejected' | 'escalated' | 'dismissed';
export type Decision = 'approved' | 'rejected' | 'dismissed' | 'escalated';

export interface QueueItem {
  id: string;
  tenantId: string;
  direction: 'inbound' | 'outbound';
  ref: string;
  messageId: string | null;
  outboxId: string | null;
  conversationId: string | null;
  channel: string;
  participant: string;
  categories: Category[];
  flags: Flag[];
  confidence: number;
  heldStage: string | null;
  status: ItemStatus;
  assignee: string | null;
  notes: string | null;
  createdAt: Date;
  updatedAt: Date;
  claimedAt: Date | null;
  decidedAt: Date | null;
  decidedBy: string | null;
  decisionReason: string | null;
  auto: boolean;
  settledAt: Date | null;
}

const COLUMNS = `id, tenant_id AS "tenantId", direction, ref, message_id AS "messageId", outbox_id AS "outboxId", conversation_id AS "conversationId", channel,
  participant, categories, flags, confidence, held_stage AS "heldStage", status, assignee, notes, created_at AS "createdAt", updated_at AS "updatedAt",
  claimed_at AS "claimedAt", decided_at AS "decidedAt", decided_by AS "decidedBy", decision_reason AS "decisionReason", auto, settled_at AS "settledAt"`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ListQuery {
  status?: ItemStatus[];
  direction?: 'inbound' | 'outbound';
  category?: Category;
  assignee?: string;
  minConfidence?: number;
  maxConfidence?: number;
  limit: number;
  /** The old way of paging; `after` is the way now. */
  offset: number;
  /** Items after this sort key (`sortAt` of created_at, id), in (created_at, id) order. */
  after?: readonly [string, string] | null;
}

export class QueueStore {
  constructor(private readonly db: Pool) {}

  /** The item for `ref`, created with these findings the first time (a re-run finds the same item). */
  async ensure(input: Omit<QueueItem, 'id' | 'status' | 'assignee' | 'notes' | 'createdAt' | 'updatedAt' | 'claimedAt' | 'decidedAt' | 'decidedBy' | 'decisionReason' | 'auto' | 'settledAt'>): Promise<{ item: QueueItem; created: boolean }> {
    const { rows } = await this.db.query<QueueItem & { created: boolean }>(
      `WITH ins AS (
         INSERT INTO moderation_items (tenant_id, direction, ref, message_id, outbox_id, conversation_id, channel, participant, categories, flags, confidence, held_stage)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12) ON CONFLICT (tenant_id, ref) DO NOTHING RETURNING *
       )
       SELECT ${COLUMNS}, true AS created FROM ins
       UNION ALL SELECT ${COLUMNS}, false FROM moderation_items WHERE tenant_id = $1 AND ref = $3 AND NOT EXISTS (SELECT 1 FROM ins)`,
      [input.tenantId, input.direction, input.ref, input.messageId, input.outboxId, input.conversationId, input.channel, input.participant, input.categories, JSON.stringify(input.flags), input.confidence, input.heldStage],
    );
    const { created, ...item } = rows[0]!;
    return { item, created };
  }

  async get(tenantId: string, id: string): Promise<QueueItem | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await this.db.query<QueueItem>(`SELECT ${COLUMNS} FROM moderation_items WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0];
  }

  /** Oldest first; `total` counts every match (without `after`); `sortAts` are the items' sort times, for cursors. */
  async list(tenantId: string, q: ListQuery): Promise<{ items: QueueItem[]; total: number; sortAts: string[] }> {
    const where = `tenant_id = $1 AND ($2::text[] IS NULL OR status = ANY($2)) AND ($3::text IS NULL OR direction = $3) AND ($4::text IS NULL OR $4 = ANY(categories))
      AND ($5::text IS NULL OR assignee = $5) AND ($6::float8 IS NULL OR confidence >= $6) AND ($7::float8 IS NULL OR confidence < $7)`;
    const params = [tenantId, q.status ?? null, q.direction ?? null, q.category ?? null, q.assignee ?? null, q.minConfidence ?? null, q.maxConfidence ?? null];
    const [{ rows }, count] = await Promise.all([
      this.db.query<QueueItem & { sortAt: string }>(
        `SELECT ${COLUMNS}, ${microsOf('created_at')} AS "sortAt" FROM moderation_items WHERE ${where}
           AND ($10::text IS NULL OR (created_at, id) > (${fromMicros('$10')}, $11::uuid))
         ORDER BY created_at, id LIMIT $8 OFFSET $9`,
        [...params, q.limit, q.offset, q.after?.[0] ?? null, q.after?.[1] ?? null],
      ),
      this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM moderation_items WHERE ${where}`, params),
    ]);
    return { items: rows.map(({ sortAt: _, ...item }) => item), total: count.rows[0]!.n, sortAts: rows.map((r) => r.sortAt) };
  }

  /** Claim or assign an open item: `in_review` with the assignee (escalated items keep their status). */
  async claim(tenantId: string, id: string, actor: string, assignee: string, notes: string | null): Promise<{ item: QueueItem; changed: boolean } | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await this.db.query<QueueItem & { prev: string }>(
      `WITH prev AS (SELECT id, status FROM moderation_items WHERE tenant_id = $1 AND id = $2 FOR UPDATE),
       upd AS (
         UPDATE moderation_items m SET status = CASE WHEN m.status = 'escalated' THEN 'escalated' ELSE 'in_review' END, assignee = $4,
                claimed_at = COALESCE(m.claimed_at, now()), notes = COALESCE($5, m.notes), updated_at = now()
           FROM prev WHERE m.id = prev.id AND m.status IN ('pending', 'in_review', 'escalated') RETURNING m.*, prev.status AS prev
       ), audit AS (
         INSERT INTO moderation_audit (tenant_id, item_id, actor, action, from_status, to_status, notes)
         SELECT $1, id, $3, 'claim', prev, status, $5 FROM upd
       )
       SELECT ${COLUMNS}, prev FROM upd`,
      [tenantId, id, actor, assignee, notes],
    );
    if (rows[0]) {
      const { prev: _prev, ...item } = rows[0];
      return { item, changed: true };
    }
    const item = await this.get(tenantId, id);
    return item ? { item, changed: false } : undefined;
  }

  /**
   * Decide an open item, once: the conditional update from an open status lets one caller through
   * (two moderators at once: the second gets `changed: false`). The audit row is in the same statement.
   */
  async decide(tenantId: string, id: string, to: Decision, by: { actor: string; reason: string | null; notes: string | null; auto?: boolean; assignee?: string | null }): Promise<{ item: QueueItem; changed: boolean } | undefined> {
    if (!UUID.test(id)) return undefined;
    const from = to === 'escalated' ? ['pending', 'in_review'] : [...OPEN_STATUSES];
    const final = to !== 'escalated';
    const { rows } = await this.db.query<QueueItem & { prev: string }>(
      `WITH prev AS (SELECT id, status FROM moderation_items WHERE tenant_id = $1 AND id = $2 FOR UPDATE),
       upd AS (
         UPDATE moderation_items m SET status = $3, updated_at = now(), notes = COALESCE($6, m.notes), assignee = COALESCE($8, m.assignee),
                decided_at = CASE WHEN $9 THEN now() ELSE m.decided_at END, decided_by = CASE WHEN $9 THEN $4 ELSE m.decided_by END,
                decision_reason = CASE WHEN $9 THEN $5 ELSE m.decision_reason END, auto = $7
           FROM prev WHERE m.id = prev.id AND m.status = ANY($10::text[]) RETURNING m.*, prev.status AS prev
       ), audit AS (
         INSERT INTO moderation_audit (tenant_id, item_id, actor, action, from_status, to_status, reason, notes)
         SELECT $1, id, $4, CASE WHEN $7 THEN 'auto-' ELSE '' END || $3, prev, status, $5, $6 FROM upd
       )
       SELECT ${COLUMNS}, prev FROM upd`,
      [tenantId, id, to, by.actor, by.reason, by.notes, by.auto ?? false, by.assignee ?? null, final, from],
    );
    if (rows[0]) {
      const { prev: _prev, ...item } = rows[0];
      return { item, changed: true };
    }
    const item = await this.get(tenantId, id);
    return item ? { item, changed: false } : undefined;
  }

  /** Open items below a confidence (and older than `olderThanHours`, when given): their ids, for one decision each. */
  async lowConfidence(tenantId: string, belowConfidence: number, olderThanHours: number | null, limit = 500): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      `SELECT id FROM moderation_items WHERE tenant_id = $1 AND status IN ('pending', 'in_review') AND confidence < $2
         AND ($3::float8 IS NULL OR created_at < now() - make_interval(secs => $3 * 3600)) ORDER BY created_at LIMIT $4`,
      [tenantId, belowConfidence, olderThanHours, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Decided items whose effect (resume, release) has not been recorded as done: a crash in between. */
  async unsettled(tenantId: string): Promise<QueueItem[]> {
    const { rows } = await this.db.query<QueueItem>(
      `SELECT ${COLUMNS} FROM moderation_items WHERE tenant_id = $1 AND status IN ('approved', 'rejected', 'dismissed') AND settled_at IS NULL AND decided_at < now() - interval '30 seconds' ORDER BY decided_at LIMIT 100`,
      [tenantId],
    );
    return rows;
  }

  async markSettled(tenantId: string, id: string, outboxId?: string | null): Promise<void> {
    await this.db.query(`UPDATE moderation_items SET settled_at = COALESCE(settled_at, now()), outbox_id = COALESCE(outbox_id, $3) WHERE tenant_id = $1 AND id = $2`, [tenantId, id, outboxId ?? null]);
  }

  async audit(tenantId: string, itemId: string): Promise<Record<string, unknown>[]> {
    const { rows } = await this.db.query(
      `SELECT actor, action, from_status AS "fromStatus", to_status AS "toStatus", reason, notes, at FROM moderation_audit WHERE tenant_id = $1 AND item_id = $2 ORDER BY id`,
      [tenantId, itemId],
    );
    return rows;
  }

  /** Previous messages of the item's conversation (both directions), oldest first, and the item's own text. */
  async context(item: QueueItem, limit: number): Promise<{ text: string | null; previous: { direction: 'in' | 'out'; text: string; at: Date }[] }> {
    let text: string | null = null;
    let before: Date = item.createdAt;
    if (item.direction === 'inbound' && item.messageId) {
      const { rows } = await this.db.query<{ body: string; received_at: Date }>(`SELECT body, received_at FROM parley_inbound WHERE tenant_id = $1 AND id = $2`, [item.tenantId, item.messageId]);
      text = rows[0]?.body ?? null;
      before = rows[0]?.received_at ?? before;
    } else if (item.outboxId) {
      const { rows } = await this.db.query<{ body: string; created_at: Date }>(`SELECT body, created_at FROM parley_outbox WHERE tenant_id = $1 AND id = $2`, [item.tenantId, item.outboxId]);
      text = rows[0]?.body ?? null;
      before = rows[0]?.created_at ?? before;
    }
    if (!item.conversationId || limit === 0) return { text, previous: [] };
    const { rows } = await this.db.query<{ direction: 'in' | 'out'; text: string; at: Date }>(
      `SELECT * FROM (
         SELECT 'in' AS direction, body AS text, received_at AS at FROM parley_inbound WHERE tenant_id = $1 AND conversation_id = $2 AND received_at < $3 AND id IS DISTINCT FROM $5
         UNION ALL
         SELECT 'out', body, created_at FROM parley_outbox WHERE tenant_id = $1 AND conversation_id = $2 AND created_at < $3 AND status NOT IN ('blocked', 'held') AND id IS DISTINCT FROM $6
         ORDER BY at DESC LIMIT $4
       ) h ORDER BY at ASC`,
      [item.tenantId, item.conversationId, before, limit, item.messageId, item.outboxId],
    );
    return { text, previous: rows };
  }

  async stats(tenantId: string): Promise<{ pending: number; inReview: number; escalated: number; oldestPendingSeconds: number | null; decisions: Record<string, number>; timeToDecisionSeconds: { avg: number | null; p50: number | null; p90: number | null } }> {
    const { rows } = await this.db.query(
      `SELECT
         count(*) FILTER (WHERE status = 'pending')::int AS pending,
         count(*) FILTER (WHERE status = 'in_review')::int AS "inReview",
         count(*) FILTER (WHERE status = 'escalated')::int AS escalated,
         EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status IN ('pending', 'in_review', 'escalated')))::float8 AS "oldestPendingSeconds"
       FROM moderation_items WHERE tenant_id = $1`,
      [tenantId],
    );
    const decided = await this.db.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM moderation_items WHERE tenant_id = $1 AND status IN ('approved', 'rejected', 'dismissed') GROUP BY status`,
      [tenantId],
    );
    const times = await this.db.query(
      `SELECT avg(s)::float8 AS avg, percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::float8 AS p50, percentile_cont(0.9) WITHIN GROUP (ORDER BY s)::float8 AS p90
         FROM (SELECT EXTRACT(EPOCH FROM decided_at - created_at) AS s FROM moderation_items WHERE tenant_id = $1 AND decided_at IS NOT NULL) t`,
      [tenantId],
    );
    const r = rows[0] ?? {};
    return {
      pending: r.pending ?? 0,
      inReview: r.inReview ?? 0,
      escalated: r.escalated ?? 0,
      oldestPendingSeconds: r.oldestPendingSeconds ?? null,
      decisions: Object.fromEntries(decided.rows.map((d) => [d.status, d.n])),
      timeToDecisionSeconds: { avg: times.rows[0]?.avg ?? null, p50: times.rows[0]?.p50 ?? null, p90: times.rows[0]?.p90 ?? null },
    };
  }

  /** Pending counts and oldest open age of every tenant, for the gauges and the SLA check. */
  async backlog(): Promise<{ tenantId: string; open: number; oldestSeconds: number }[]> {
    const { rows } = await this.db.query(
      `SELECT tenant_id AS "tenantId", count(*)::int AS open, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS "oldestSeconds"
         FROM moderation_items WHERE status IN ('pending', 'in_review', 'escalated') GROUP BY tenant_id`,
    );
    return rows;
  }

  /** A person's items (by the address their conversation is with), with the audit of each. */
  dataSubjectProvider(): DataSubjectProvider {
    const forms = (s: DataSubject) => [...new Set(s.addresses.flatMap((a) => [a, consentAddress(a), `whatsapp:${consentAddress(a)}`]))];
    return {
      name: 'moderation.queue',
      describe: () => ({
        purpose: 'Content moderation: a record that a message you sent, or a reply to you, was held or flagged for review (which categories, the scores, the decision, who took it and why). The message text is kept with the conversation, not here.',
        recipients: ["The service's moderators"],
        retention: 'Kept with the conversation records; erased on request.',
        source: 'The moderation stages screening messages in both directions.',
      }),
      export: async (s) => {
        const { rows } = await this.db.query<QueueItem>(`SELECT ${COLUMNS} FROM moderation_items WHERE tenant_id = $1 AND participant = ANY($2) ORDER BY created_at`, [s.tenantId, forms(s)]);
        const out: Record<string, unknown>[] = [];
        for (const item of rows) out.push({ kind: 'moderation-item', ...item, audit: await this.audit(s.tenantId, item.id) });
        return out;
      },
      erase: async (s) => {
        // The audit keeps who decided what (item id set null, notes dropped: they may describe the person).
        await this.db.query(
          `UPDATE moderation_audit SET notes = NULL, reason = NULL WHERE tenant_id = $1 AND item_id IN (SELECT id FROM moderation_items WHERE tenant_id = $1 AND participant = ANY($2))`,
          [s.tenantId, forms(s)],
        );
        const { rowCount } = await this.db.query(`DELETE FROM moderation_items WHERE tenant_id = $1 AND participant = ANY($2)`, [s.tenantId, forms(s)]);
        return { erased: rowCount ?? 0 };
      },
    };
  }
}

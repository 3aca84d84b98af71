/**
 * SQL for conversations, inbound messages and the outbox. Every query names the tenant.
 */
import type { Pool, PoolClient } from 'pg';
import type { HistoryEntry, InboundDraft, InboundMessage, MediaAttachment, OutboundMessage, OutboxStatus, ReplyDraft } from '../message.js';
import type { StageRecord } from '../plugin.js';

type Queryable = Pool | PoolClient;

/** Provider statuses only move forward; `read` is final even when `failed` arrives late. */
export const STATUS_RANK: Record<OutboxStatus, number> = {
  pending: 0,
  retrying: 1,
  sending: 2,
  blocked: 3,
  dead: 3,
  sent: 4,
  undelivered: 5,
  failed: 5,
  delivered: 6,
  read: 7,
};

interface OutboxRow {
  id: string;
  tenant_id: string;
  channel: string;
  conversation_id: string | null;
  inbound_id: string | null;
  to_address: string;
  from_address: string;
  body: string;
  media: MediaAttachment[];
  options: Record<string, unknown>;
  status: OutboxStatus;
  via: 'inline' | 'api' | null;
  attempts: number;
  provider_message_id: string | null;
  error_code: string | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
}

export function toOutbound(row: OutboxRow): OutboundMessage {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    channel: row.channel,
    conversationId: row.conversation_id,
    inboundId: row.inbound_id,
    to: row.to_address,
    from: row.from_address,
    text: row.body,
    media: row.media,
    options: row.options,
    status: row.status,
    via: row.via,
    attempts: row.attempts,
    providerMessageId: row.provider_message_id,
    errorCode: row.error_code,
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type RecordInboundResult =
  | { duplicate: false; message: InboundMessage }
  | { duplicate: true; inboundId: string; status: string };

/** Stores the message once: the unique (tenant, channel, provider id) makes a replay a no-op. */
export async function recordInbound(db: Queryable, tenantId: string, draft: InboundDraft): Promise<RecordInboundResult> {
  const threadKey = draft.threadKey ?? draft.from;
  const receivedAt = draft.receivedAt ?? new Date();
  const { rows } = await db.query<{ id: string; conversation_id: string; inserted: boolean; status: string }>(
    `WITH conv AS (
       INSERT INTO parley_conversations (tenant_id, channel, thread_key, participant, last_message_at)
       VALUES ($1, $2, $3, $4, $9)
       ON CONFLICT (tenant_id, channel, thread_key) DO UPDATE SET last_message_at = EXCLUDED.last_message_at
       RETURNING id
     ), ins AS (
       INSERT INTO parley_inbound (tenant_id, channel, provider_message_id, conversation_id, from_address, to_address, body, media, attributes, raw, received_at, status)
       SELECT $1, $2, $5, conv.id, $4, $6, $7, $8::jsonb, $10::jsonb, $11::jsonb, $9, 'processing' FROM conv
       ON CONFLICT (tenant_id, channel, provider_message_id) DO NOTHING
       RETURNING id, conversation_id, status
     )
     SELECT id, conversation_id, true AS inserted, status FROM ins
     UNION ALL
     SELECT id, conversation_id, false, status FROM parley_inbound
       WHERE tenant_id = $1 AND channel = $2 AND provider_message_id = $5 AND NOT EXISTS (SELECT 1 FROM ins)`,
    [
      tenantId,
      draft.channel,
      threadKey,
      draft.from,
      draft.providerMessageId,
      draft.to,
      draft.text,
      JSON.stringify(draft.media ?? []),
      receivedAt,
      JSON.stringify(draft.attributes ?? {}),
      draft.raw === undefined ? null : JSON.stringify(draft.raw),
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('recordInbound returned no row');
  if (!row.inserted) return { duplicate: true, inboundId: row.id, status: row.status };
  return {
    duplicate: false,
    message: {
      id: row.id,
      tenantId,
      conversationId: row.conversation_id,
      channel: draft.channel,
      from: draft.from,
      to: draft.to,
      text: draft.text,
      media: draft.media ?? [],
      providerMessageId: draft.providerMessageId,
      receivedAt,
      raw: draft.raw ?? null,
      attributes: draft.attributes ?? {},
    },
  };
}

export interface FinishInbound {
  tenantId: string;
  inbound: InboundMessage;
  status: 'processed' | 'stopped' | 'failed';
  stopReason: string | null;
  error: string | null;
  stages: StageRecord[];
  annotations: Record<string, unknown>;
  replies: ReplyDraft[];
  /** `inline`: the replies go back in the webhook response and are recorded as sent. */
  via: 'inline' | 'api';
}

/** Marks the inbound message done and writes its replies to the outbox in one statement. */
export async function finishInbound(db: Queryable, f: FinishInbound): Promise<OutboundMessage[]> {
  const replies = f.replies.map((r, seq) => ({ seq, body: r.text, media: r.media ?? [], options: r.options ?? {} }));
  const status = f.via === 'inline' ? 'sent' : 'pending';
  const { rows } = await db.query<OutboxRow>(
    `WITH upd AS (
       UPDATE parley_inbound SET status = $3, stop_reason = $4, error = $5, stages = $6::jsonb, annotations = $7::jsonb, processed_at = now()
       WHERE tenant_id = $1 AND id = $2
     ), r AS (
       SELECT * FROM jsonb_to_recordset($8::jsonb) AS x(seq int, body text, media jsonb, options jsonb)
     ), ins AS (
       INSERT INTO parley_outbox (tenant_id, channel, conversation_id, inbound_id, seq, to_address, from_address, body, media, options, status, via, sent_at)
       SELECT $1, $9, $10, $2, r.seq, $11, $12, r.body, r.media, r.options, $13, $14, CASE WHEN $13 = 'sent' THEN now() END FROM r
       RETURNING *
     ), ev AS (
       INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, detail)
       SELECT id, tenant_id, status, jsonb_build_object('via', via) FROM ins
     )
     SELECT * FROM ins ORDER BY seq`,
    [
      f.tenantId,
      f.inbound.id,
      f.status,
      f.stopReason,
      f.error,
      JSON.stringify(f.stages),
      JSON.stringify(f.annotations),
      JSON.stringify(replies),
      f.inbound.channel,
      f.inbound.conversationId,
      f.inbound.from,
      f.inbound.to,
      status,
      f.via,
    ],
  );
  return rows.map(toOutbound);
}

export async function repliesFor(db: Queryable, tenantId: string, inboundId: string): Promise<OutboundMessage[]> {
  const { rows } = await db.query<OutboxRow>('SELECT * FROM parley_outbox WHERE tenant_id = $1 AND inbound_id = $2 ORDER BY seq', [tenantId, inboundId]);
  return rows.map(toOutbound);
}

export async function insertOutbound(
  db: Queryable,
  m: { tenantId: string; channel: string; to: string; from: string; text: string; media: MediaAttachment[]; options: Record<string, unknown>; conversationId: string | null },
): Promise<OutboundMessage> {
  const { rows } = await db.query<OutboxRow>(
    `WITH ins AS (
       INSERT INTO parley_outbox (tenant_id, channel, conversation_id, to_address, from_address, body, media, options, status, via)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, 'pending', 'api') RETURNING *
     ), ev AS (INSERT INTO parley_outbox_events (outbox_id, tenant_id, status) SELECT id, tenant_id, 'pending' FROM ins)
     SELECT * FROM ins`,
    [m.tenantId, m.channel, m.conversationId, m.to, m.from, m.text, JSON.stringify(m.media), JSON.stringify(m.options)],
  );
  return toOutbound(rows[0]!);
}

export async function loadOutbound(db: Queryable, tenantId: string, id: string): Promise<OutboundMessage | undefined> {
  const { rows } = await db.query<OutboxRow>('SELECT * FROM parley_outbox WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  return rows[0] ? toOutbound(rows[0]) : undefined;
}

/**
 * Claims an outbox item for a send attempt. Returns the item and whether an earlier attempt was cut
 * off mid-send (status still `sending`: the provider may or may not have accepted it).
 */
export async function claimForSend(db: Queryable, tenantId: string, id: string): Promise<{ message: OutboundMessage; interrupted: boolean } | { skip: OutboxStatus } | undefined> {
  const { rows } = await db.query<OutboxRow & { prev_status: OutboxStatus }>(
    `UPDATE parley_outbox o SET status = 'sending', attempts = o.attempts + 1, updated_at = now()
       FROM (SELECT id, status AS prev_status FROM parley_outbox WHERE tenant_id = $1 AND id = $2 FOR UPDATE) p
     WHERE o.id = p.id AND p.prev_status IN ('pending', 'retrying', 'sending')
     RETURNING o.*, p.prev_status`,
    [tenantId, id],
  );
  const row = rows[0];
  if (row) return { message: toOutbound(row), interrupted: row.prev_status === 'sending' };
  const current = await loadOutbound(db, tenantId, id);
  return current ? { skip: current.status } : undefined;
}

export async function markOutbox(
  db: Queryable,
  tenantId: string,
  id: string,
  update: { status: OutboxStatus; providerMessageId?: string | null; errorCode?: string | null; error?: string | null; details?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `WITH upd AS (
       UPDATE parley_outbox SET status = $3,
         provider_message_id = COALESCE($4, provider_message_id),
         error_code = $5, error = $6,
         details = details || $7::jsonb,
         sent_at = CASE WHEN $3 IN ('sent', 'delivered') AND sent_at IS NULL THEN now() ELSE sent_at END,
         updated_at = now()
       WHERE tenant_id = $1 AND id = $2 RETURNING id, tenant_id
     )
     INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, error_code, detail)
     SELECT id, tenant_id, $3, $5, jsonb_strip_nulls(jsonb_build_object('error', $6::text, 'providerMessageId', $4::text)) FROM upd
     ON CONFLICT DO NOTHING`,
    [tenantId, id, update.status, update.providerMessageId ?? null, update.errorCode ?? null, update.error ?? null, JSON.stringify(update.details ?? {})],
  );
}

/** Applies a provider status callback; keyed on (message, status) so a replay is a no-op. */
export async function applyDeliveryStatus(
  db: Queryable,
  u: { tenantId: string; channel: string; providerMessageId: string; status: OutboxStatus; errorCode?: string | null; error?: string | null; at?: Date; raw?: unknown },
): Promise<{ updated: boolean; outboxId: string | null }> {
  const ranks = Object.entries(STATUS_RANK);
  const { rows } = await db.query<{ id: string; updated: boolean }>(
    `WITH target AS (
       SELECT id, status FROM parley_outbox WHERE tenant_id = $1 AND channel = $2 AND provider_message_id = $3 LIMIT 1
     ), rank AS (SELECT * FROM jsonb_each_text($8::jsonb) AS r(status, rank)),
     ev AS (
       INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, error_code, detail, at)
       SELECT id, $1, $4, $5, jsonb_strip_nulls(jsonb_build_object('error', $6::text, 'raw', $9::jsonb)), $7 FROM target
       ON CONFLICT DO NOTHING
       RETURNING outbox_id
     ), upd AS (
       UPDATE parley_outbox o SET status = $4, error_code = COALESCE($5, o.error_code), error = COALESCE($6, o.error), updated_at = now()
       FROM target t
       WHERE o.id = t.id
         AND (SELECT rank::int FROM rank WHERE rank.status = $4) > COALESCE((SELECT rank::int FROM rank WHERE rank.status = t.status), 0)
       RETURNING o.id
     )
     SELECT t.id, EXISTS (SELECT 1 FROM upd) AS updated FROM target t`,
    [u.tenantId, u.channel, u.providerMessageId, u.status, u.errorCode ?? null, u.error ?? null, u.at ?? new Date(), JSON.stringify(Object.fromEntries(ranks)), u.raw === undefined ? null : JSON.stringify(u.raw)],
  );
  const row = rows[0];
  return { updated: row?.updated ?? false, outboxId: row?.id ?? null };
}

export async function loadHistory(db: Queryable, tenantId: string, conversationId: string, beforeInboundId: string, limit: number): Promise<HistoryEntry[]> {
  const { rows } = await db.query<{ direction: 'in' | 'out'; text: string; at: Date }>(
    `SELECT * FROM (
       SELECT 'in' AS direction, body AS text, received_at AS at FROM parley_inbound
         WHERE tenant_id = $1 AND conversation_id = $2 AND id <> $3
       UNION ALL
       SELECT 'out', body, created_at FROM parley_outbox
         WHERE tenant_id = $1 AND conversation_id = $2 AND status NOT IN ('blocked', 'dead')
       ORDER BY at DESC LIMIT $4
     ) h ORDER BY at ASC`,
    [tenantId, conversationId, beforeInboundId, limit],
  );
  return rows;
}

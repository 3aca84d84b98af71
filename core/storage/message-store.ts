/**
 * SQL for conversations, inbound messages and the outbox. Every query names the tenant.
 */
import type { Pool, PoolClient } from 'pg';
import type { HistoryEntry, InboundDraft, InboundMessage, MediaAttachment, OutboundMessage, OutboxStatus, ReplyDraft } from '../message.js';
import type { HandoffChange, HandoffState, ReplyVerdict, StageRecord } from '../plugin.js';
import { consentAddress, SUPPRESSION_HASH_SQL } from '../consent.js';
import { usageRowsInsertSql } from '../usage.js';

type Queryable = Pool | PoolClient;

/** Provider statuses only move forward; `read` is final even when `failed` arrives late. */
export const STATUS_RANK: Record<OutboxStatus, number> = {
  pending: 0,
  retrying: 1,
  sending: 2,
  blocked: 3,
  held: 3,
  dead: 3,
  sent: 4,
  undelivered: 5,
  failed: 5,
  delivered: 6,
  read: 7,
};

export interface OutboxRow {
  id: string;
  seq: number;
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
  details: Record<string, unknown> | null;
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
    details: row.details ?? {},
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The columns of an {@link OutboxRow}, for RETURNING: never `*`, which a prepared statement cannot keep
 * returning once a migration adds a column ("cached plan must not change result type").
 */
const OUTBOX_COLUMNS = 'id, seq, tenant_id, channel, conversation_id, inbound_id, to_address, from_address, body, media, options, status, via, attempts, provider_message_id, error_code, error, details, created_at, updated_at';
const outboxColumnsOf = (alias: string) => OUTBOX_COLUMNS.split(', ').map((c) => `${alias}.${c}`).join(', ');

/**
 * A new message comes with the claim its run holds: the token `finishInboundMany` must present.
 * A duplicate comes with the original's id and status.
 */
export type RecordInboundResult =
  | { duplicate: false; message: InboundMessage; claim: string; handoff: HandoffState }
  | { duplicate: true; inboundId: string; status: string };

/**
 * Stores messages once each: the unique (tenant, channel, provider id) makes a replay a no-op. One
 * statement for the whole batch: conversations are upserted (one row per thread), messages inserted.
 * The planner guesses 100 rows for any `jsonb_to_recordset` and joins a batch that size by hashing
 * the other side (a scan of every row of a bloated claims table, say); `LIMIT <the batch's length>`
 * keeps every row and gives it the true count, so it looks rows up by index instead.
 */
export async function recordInboundMany(db: Queryable, items: { tenantId: string; draft: InboundDraft }[]): Promise<RecordInboundResult[]> {
  const input = items.map(({ tenantId, draft }, idx) => ({
    idx,
    tenant_id: tenantId,
    channel: draft.channel,
    thread_key: draft.threadKey ?? draft.from,
    participant: draft.from,
    pmid: draft.providerMessageId,
    to_address: draft.to,
    body: draft.text,
    media: draft.media ?? [],
    attributes: draft.attributes ?? {},
    raw: draft.raw ?? null,
    received_at: (draft.receivedAt ?? new Date()).toISOString(),
  }));
  const { rows } = await db.query<{ idx: number; id: string | null; conversation_id: string | null; inserted: boolean; status: string | null; claim: string | null; handoff: HandoffState | null }>({
    // Named: prepared once per connection, so PostgreSQL parses and plans it once, not per batch.
    name: 'parley_record_inbound',
    text: `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(idx int, tenant_id text, channel text, thread_key text, participant text, pmid text,
         to_address text, body text, media jsonb, attributes jsonb, raw jsonb, received_at timestamptz)
       LIMIT $2 -- every row: tells the planner the batch's size (see recordInboundMany)
     ), conv AS (
       INSERT INTO parley_conversations (tenant_id, channel, thread_key, participant, last_message_at)
       SELECT DISTINCT ON (tenant_id, channel, thread_key) tenant_id, channel, thread_key, participant, received_at
         FROM input ORDER BY tenant_id, channel, thread_key, received_at DESC
       ON CONFLICT (tenant_id, channel, thread_key) DO UPDATE SET last_message_at = GREATEST(parley_conversations.last_message_at, EXCLUDED.last_message_at)
       RETURNING id, tenant_id, channel, thread_key, handoff
     ), ins AS (
       INSERT INTO parley_inbound (tenant_id, channel, provider_message_id, conversation_id, from_address, to_address, body, media, attributes, raw, received_at, status)
       SELECT DISTINCT ON (i.tenant_id, i.channel, i.pmid) i.tenant_id, i.channel, i.pmid, c.id, i.participant, i.to_address, i.body, i.media, i.attributes, i.raw, i.received_at, 'processing'
         FROM input i JOIN conv c ON c.tenant_id = i.tenant_id AND c.channel = i.channel AND c.thread_key = i.thread_key
         ORDER BY i.tenant_id, i.channel, i.pmid, i.idx
       ON CONFLICT (tenant_id, channel, provider_message_id) DO NOTHING
       RETURNING id, conversation_id, tenant_id, channel, provider_message_id, status
     ), claim AS (
       INSERT INTO parley_inbound_claims (inbound_id, tenant_id) SELECT id, tenant_id FROM ins RETURNING inbound_id, token
     )
     SELECT i.idx, COALESCE(n.id, e.id) AS id, COALESCE(n.conversation_id, e.conversation_id) AS conversation_id, n.id IS NOT NULL AS inserted, COALESCE(n.status, e.status) AS status, c.token AS claim,
            (SELECT v.handoff FROM conv v WHERE v.id = n.conversation_id) AS handoff
       FROM input i
       LEFT JOIN ins n ON n.tenant_id = i.tenant_id AND n.channel = i.channel AND n.provider_message_id = i.pmid
       LEFT JOIN claim c ON c.inbound_id = n.id
       LEFT JOIN parley_inbound e ON n.id IS NULL AND e.tenant_id = i.tenant_id AND e.channel = i.channel AND e.provider_message_id = i.pmid
     ORDER BY i.idx`,
    values: [JSON.stringify(input), input.length],
  });
  await findConcurrentWinners(db, input, rows);
  const claimed = new Set<string>();
  return items.map(({ tenantId, draft }, idx) => {
    const row = rows[idx];
    if (!row || row.idx !== idx || !row.id || (row.inserted && !row.claim)) throw new Error('recordInboundMany: missing result row');
    // Two copies of one provider id in the same batch: only the first runs the pipeline.
    const firstInBatch = !claimed.has(row.id);
    claimed.add(row.id);
    if (!row.inserted || !firstInBatch) return { duplicate: true, inboundId: row.id, status: row.status ?? 'processing' };
    return {
      duplicate: false,
      claim: row.claim!,
      handoff: row.handoff ?? 'bot',
      message: {
        id: row.id,
        tenantId,
        conversationId: row.conversation_id!,
        channel: draft.channel,
        from: draft.from,
        to: draft.to,
        text: draft.text,
        media: draft.media ?? [],
        providerMessageId: draft.providerMessageId,
        receivedAt: new Date(input[idx]!.received_at),
        raw: draft.raw ?? null,
        attributes: draft.attributes ?? {},
      },
    };
  });
}

/**
 * A copy that lost the insert race to a transaction committed after this statement's snapshot (another
 * instance, another batch) finds nothing in the statement's own join: look the winner up again, in a
 * new statement that sees it.
 */
async function findConcurrentWinners(
  db: Queryable,
  input: { idx: number; tenant_id: string; channel: string; pmid: string }[],
  rows: { idx: number; id: string | null; conversation_id: string | null; inserted: boolean; status: string | null }[],
): Promise<void> {
  const missing = rows.filter((r) => !r.id).map((r) => input[r.idx]!);
  if (!missing.length) return;
  const { rows: found } = await db.query<{ tenant_id: string; channel: string; provider_message_id: string; id: string; conversation_id: string; status: string }>({
    name: 'parley_find_inbound_winners',
    text: `SELECT e.tenant_id, e.channel, e.provider_message_id, e.id, e.conversation_id, e.status
       FROM (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, channel text, pmid text) LIMIT $2 /* the batch's size, for the planner */) x
       JOIN parley_inbound e ON e.tenant_id = x.tenant_id AND e.channel = x.channel AND e.provider_message_id = x.pmid`,
    values: [JSON.stringify(missing.map(({ tenant_id, channel, pmid }) => ({ tenant_id, channel, pmid }))), missing.length],
  });
  const key = (tenant: string, channel: string, pmid: string) => `${tenant}\u0000${channel}\u0000${pmid}`;
  const byKey = new Map(found.map((f) => [key(f.tenant_id, f.channel, f.provider_message_id), f]));
  for (const row of rows) {
    if (row.id) continue;
    const i = input[row.idx]!;
    const winner = byKey.get(key(i.tenant_id, i.channel, i.pmid));
    if (winner) Object.assign(row, { id: winner.id, conversation_id: winner.conversation_id, inserted: false, status: winner.status });
  }
}

/** A reply after the reply stages: its final text, their annotations and, when one stopped it, the verdict. */
export interface OutgoingReply extends ReplyDraft {
  verdict?: ReplyVerdict | null;
  annotations?: Record<string, unknown>;
}

/** How a reply stage's verdict is recorded on the outbox item. */
export function verdictColumns(verdict: ReplyVerdict | null | undefined): { status: 'blocked' | 'held' | null; error_code: string | null; error: string | null } {
  return verdict ? { status: verdict.status, error_code: verdict.stage, error: verdict.reason } : { status: null, error_code: null, error: null };
}

export interface FinishInbound {
  tenantId: string;
  inbound: InboundMessage;
  /** The claim token of the run that is finishing: refused when the claim has moved on. */
  claim: string;
  status: 'processed' | 'stopped' | 'held' | 'failed';
  stopReason: string | null;
  error: string | null;
  /** The stage that held the message (status `held`). */
  heldStage?: string | null;
  /** The first reply's sequence number: a resumed run's replies follow the ones the held run wrote. */
  seqBase?: number;
  stages: StageRecord[];
  annotations: Record<string, unknown>;
  replies: OutgoingReply[];
  /** `inline`: the replies go back in the webhook response and are recorded as sent. */
  via: 'inline' | 'api';
  /** Inline replies the channel confirms once its response finished: recorded as `sending` until then (`settleInlineSentMany`, `handOverInline`). */
  provisional?: boolean;
  /** A handoff a stage asked for: stored on the conversation in the same statement. */
  handoff?: HandoffChange | undefined;
}

/**
 * What finishing wrote: the replies, or `superseded` when this run no longer held the message's claim
 * (the recovery sweep gave it to a newer run, which alone may finish it) and nothing was written.
 */
export type FinishResult = { superseded: false; replies: OutboundMessage[] } | { superseded: true };

/**
 * Marks inbound messages done and writes their replies to the outbox, in one statement, for the runs
 * that still hold their claim: the claim row is deleted only when its token matches, and everything
 * else hangs off that delete. A run overtaken by recovery writes nothing. An item's first status
 * (`sent` or provisionally `sending` inline, or `pending`) is its row's own; `parley_outbox_events`
 * holds what happened after.
 */
export async function finishInboundMany(db: Queryable, items: FinishInbound[]): Promise<FinishResult[]> {
  const done = items.map((f) => ({
    tenant_id: f.tenantId, id: f.inbound.id, conversation_id: f.inbound.conversationId, claim: f.claim, status: f.status, stop_reason: f.stopReason, error: f.error, stages: f.stages, annotations: f.annotations, held_stage: f.heldStage ?? null,
    handoff: f.handoff?.state ?? null, handoff_reason: f.handoff?.reason ?? null, handoff_by: f.handoff ? `stage:${f.handoff.stage}` : null,
  }));
  const replies = items.flatMap((f) =>
    f.replies.map((r, i) => ({
      seq: (f.seqBase ?? 0) + i,
      tenant_id: f.tenantId,
      channel: f.inbound.channel,
      conversation_id: f.inbound.conversationId,
      inbound_id: f.inbound.id,
      to_address: f.inbound.from,
      from_address: f.inbound.to,
      body: r.text,
      media: r.media ?? [],
      options: r.options ?? {},
      status: f.via === 'inline' ? (f.provisional ? 'sending' : 'sent') : 'pending',
      via: f.via,
      // Inline replies skip the send job, so its consent check happens here, in the same statement.
      consent_address: f.via === 'inline' && r.options?.consentNotice !== true && r.options?.inSession !== true ? consentAddress(f.inbound.from) : null,
      verdict: verdictColumns(r.verdict),
      details: r.annotations && Object.keys(r.annotations).length ? { annotations: r.annotations } : {},
    })),
  );
  const { rows } = await db.query<OutboxRow & { held_id: string }>({
    name: 'parley_finish_inbound',
    text: `WITH f AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, id uuid, conversation_id uuid, claim uuid, status text, stop_reason text, error text, stages jsonb, annotations jsonb,
         handoff text, handoff_reason text, handoff_by text, held_stage text)
       LIMIT $3 -- every row: tells the planner the batch's size (see recordInboundMany)
     ), held AS (
       DELETE FROM parley_inbound_claims c USING f WHERE c.inbound_id = f.id AND c.token = f.claim RETURNING c.inbound_id
     ), handoff AS (
       UPDATE parley_conversations c SET handoff = f.handoff, handoff_reason = f.handoff_reason, handoff_by = f.handoff_by, handoff_at = now()
       FROM f JOIN held h ON h.inbound_id = f.id WHERE f.handoff IS NOT NULL AND c.tenant_id = f.tenant_id AND c.id = f.conversation_id
     ), upd AS (
       UPDATE parley_inbound i SET status = f.status, stop_reason = f.stop_reason, error = f.error, processed_at = now(),
         -- A resumed run adds to what the held run recorded.
         stages = CASE WHEN i.resume_after IS NULL THEN f.stages ELSE i.stages || f.stages END,
         annotations = CASE WHEN i.resume_after IS NULL THEN f.annotations ELSE i.annotations || f.annotations END,
         held_stage = COALESCE(f.held_stage, i.held_stage)
       FROM f JOIN held h ON h.inbound_id = f.id WHERE i.tenant_id = f.tenant_id AND i.id = f.id
     ), r AS (
       SELECT x.* FROM (
         SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(seq int, tenant_id text, channel text, conversation_id uuid, inbound_id uuid, to_address text,
           from_address text, body text, media jsonb, options jsonb, status text, via text, consent_address text, verdict jsonb, details jsonb)
         LIMIT $4 -- every row: tells the planner the batch's size (see recordInboundMany)
       ) x JOIN held h ON h.inbound_id = x.inbound_id
     ), rs AS MATERIALIZED (
       -- A reply stage's verdict first; consent is the kernel's, after every reply stage. Materialized:
       -- inlined, the consent lookup ran once for each of the four places stopped_by is read.
       SELECT r.*, CASE WHEN r.verdict->>'status' IS NOT NULL THEN 'verdict' WHEN r.consent_address IS NOT NULL AND EXISTS (
           SELECT 1 FROM parley_consent c WHERE c.tenant_id = r.tenant_id AND c.address IN (r.consent_address, ${SUPPRESSION_HASH_SQL('r.consent_address')}) AND c.status = 'opted-out'
         ) THEN 'consent' END AS stopped_by
       FROM r
     ), ins AS (
       INSERT INTO parley_outbox (tenant_id, channel, conversation_id, inbound_id, seq, to_address, from_address, body, media, options, status, via, sent_at, error_code, error, details)
       SELECT tenant_id, channel, conversation_id, inbound_id, seq, to_address, from_address, body, media, options,
         CASE stopped_by WHEN 'verdict' THEN verdict->>'status' WHEN 'consent' THEN 'blocked' ELSE status END, via,
         CASE WHEN stopped_by IS NULL AND status = 'sent' THEN now() END,
         CASE stopped_by WHEN 'verdict' THEN verdict->>'error_code' WHEN 'consent' THEN 'opted-out' END,
         CASE stopped_by WHEN 'verdict' THEN verdict->>'error' WHEN 'consent' THEN 'The recipient opted out' END,
         details
       FROM rs
       ON CONFLICT (inbound_id, seq) WHERE inbound_id IS NOT NULL DO NOTHING
       RETURNING ${OUTBOX_COLUMNS}
     )
     SELECT h.inbound_id AS held_id, ${outboxColumnsOf('ins')} FROM held h LEFT JOIN ins ON ins.inbound_id = h.inbound_id`,
    values: [JSON.stringify(done), JSON.stringify(replies), done.length, replies.length],
  });
  const held = new Map<string, OutboundMessage[]>();
  for (const row of rows.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))) {
    const list = held.get(row.held_id) ?? [];
    if (row.id) list.push(toOutbound(row));
    held.set(row.held_id, list);
  }
  return items.map((f) => {
    const written = held.get(f.inbound.id);
    return written ? { superseded: false, replies: written } : { superseded: true };
  });
}

/**
 * Hands provisional inline replies (`sending`, via `inline`) whose response never finished to the send
 * job: `pending` via `api`. Only items still provisional change, so a late or second hand-over (a
 * duplicate's response, the recovery sweep's claim) is a no-op. Returns the items it changed.
 */
export async function handOverInline(db: Queryable, tenantId: string, ids: readonly string[]): Promise<OutboundMessage[]> {
  if (!ids.length) return [];
  const { rows } = await db.query<OutboxRow>({
    name: 'parley_hand_over_inline',
    text: `WITH upd AS (
       UPDATE parley_outbox SET status = 'pending', via = 'api', sent_at = NULL, updated_at = now(),
         details = details || '{"inline": "response-not-written"}'::jsonb
       WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND status = 'sending' AND via = 'inline' RETURNING ${OUTBOX_COLUMNS}
     ), ev AS (
       INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, detail)
       SELECT id, tenant_id, status, jsonb_build_object('via', via) FROM upd
       ON CONFLICT DO NOTHING
     )
     SELECT * FROM upd ORDER BY seq`,
    values: [tenantId, ids],
  });
  return rows.map(toOutbound);
}

/**
 * Provisional inline replies whose response finished become `sent`, for many responses at once. One statement per batch (see Batcher), as for the writes that
 * record and finish messages, so confirming what went out inline costs no round trip per message.
 * With `meter` (the gateway's way), the same statement meters each reply it settles (`messages.out` in
 * `parley_usage`, under the plugin named in `plugins`, parallel to `ids`): a reply is never settled
 * without being metered, and the meter costs no statement of its own. Without it, the settle alone
 * (the gateway's fallback when the metered statement fails: the meter must never keep a reply
 * `sending`, which the recovery sweep would send again).
 */
export async function settleInlineSentMany(
  db: Queryable,
  items: readonly { tenantId: string; ids: readonly string[]; plugins: readonly string[] }[],
  { meter = true }: { meter?: boolean } = {},
): Promise<OutboundMessage[][]> {
  const triples = items.flatMap((item) => item.ids.map((id, i) => [item.tenantId, id, item.plugins[i] ?? ''] as const));
  if (!triples.length) return items.map(() => []);
  // With the meter: the settled rows' messages.out usage, in the same statement.
  const metered = meter
    ? `, metered AS (
       SELECT u.tenant_id, 'messages.out' AS kind, 1 AS quantity, 'message' AS unit, NULL::numeric AS cost_usd, x.plugin, u.id::text AS ref,
              jsonb_build_object('channel', u.channel, 'via', 'inline') AS attributes
         FROM upd u JOIN x ON x.tenant_id = u.tenant_id AND x.id = u.id
     ), usage AS (
       ${usageRowsInsertSql('metered')}
     )`
    : '';
  const { rows } = await db.query<OutboxRow>({
    name: meter ? 'parley_settle_inline' : 'parley_settle_inline_unmetered',
    text: `WITH x AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[]) AS x(tenant_id, id, plugin)), upd AS (
       UPDATE parley_outbox o SET status = 'sent', sent_at = now(), updated_at = now()
       FROM x WHERE o.tenant_id = x.tenant_id AND o.id = x.id AND o.status = 'sending' AND o.via = 'inline' RETURNING ${outboxColumnsOf('o')}
     ), ev AS (
       INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, detail)
       SELECT id, tenant_id, status, jsonb_build_object('via', via) FROM upd
       ON CONFLICT DO NOTHING
     )${metered}
     SELECT * FROM upd ORDER BY seq`,
    values: [triples.map(([t]) => t), triples.map(([, id]) => id), triples.map(([, , plugin]) => plugin)],
  });
  const byId = new Map(rows.map((r) => [r.id, toOutbound(r)]));
  return items.map((item) => item.ids.flatMap((id) => byId.get(id) ?? []));
}

/**
 * A held item (a reply stage's `hold`) becomes `pending` for the send job (via `api`, optionally with
 * new text) or `blocked` with a reason: only from `held`, so a second or concurrent call changes
 * nothing and returns undefined.
 */
export async function releaseHeldOutbound(db: Queryable, tenantId: string, id: string, decision: { send: true; text: string | null } | { send: false; reason: string }): Promise<OutboundMessage | undefined> {
  const { rows } = await db.query<OutboxRow>(
    `WITH upd AS (
       UPDATE parley_outbox SET status = CASE WHEN $3 THEN 'pending' ELSE 'blocked' END, via = CASE WHEN $3 THEN 'api' ELSE via END,
         body = COALESCE($4, body), error_code = CASE WHEN $3 THEN NULL ELSE 'released' END, error = CASE WHEN $3 THEN NULL ELSE $5 END,
         details = details || jsonb_build_object('released', CASE WHEN $3 THEN 'send' ELSE 'block' END, 'heldBy', error_code), updated_at = now()
       WHERE tenant_id = $1 AND id = $2 AND status = 'held' RETURNING *
     ), ev AS (
       INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, error_code, detail)
       SELECT id, tenant_id, status, error_code, '{"released": true}'::jsonb FROM upd
     )
     SELECT * FROM upd`,
    [tenantId, id, decision.send, decision.send ? decision.text : null, decision.send ? null : decision.reason],
  );
  return rows[0] ? toOutbound(rows[0]) : undefined;
}

/**
 * Withdraws an outgoing message not yet handed to its channel: a conditional update from `pending` or
 * `retrying` to `blocked` (error code `cancelled`). The row lock orders it with the send job's claim:
 * a claim first leaves it `sending` and this changes nothing; this first makes the claim skip it.
 */
export async function cancelPendingOutbound(db: Queryable, tenantId: string, id: string, reason: string): Promise<OutboundMessage | undefined> {
  const { rows } = await db.query<OutboxRow>(
    `WITH upd AS (
       UPDATE parley_outbox SET status = 'blocked', error_code = 'cancelled', error = $3, updated_at = now()
       WHERE tenant_id = $1 AND id = $2 AND status IN ('pending', 'retrying') RETURNING *
     ), ev AS (
       INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, error_code, detail)
       SELECT id, tenant_id, 'blocked', 'cancelled', jsonb_build_object('error', $3::text) FROM upd
     )
     SELECT * FROM upd`,
    [tenantId, id, reason],
  );
  return rows[0] ? toOutbound(rows[0]) : undefined;
}

export async function repliesFor(db: Queryable, tenantId: string, inboundId: string): Promise<OutboundMessage[]> {
  const { rows } = await db.query<OutboxRow>({ name: 'parley_replies_for', text: `SELECT ${OUTBOX_COLUMNS} FROM parley_outbox WHERE tenant_id = $1 AND inbound_id = $2 ORDER BY seq`, values: [tenantId, inboundId] });
  return rows.map(toOutbound);
}

export async function insertOutbound(
  db: Queryable,
  m: { id?: string; tenantId: string; channel: string; to: string; from: string; text: string; media: MediaAttachment[]; options: Record<string, unknown>; conversationId: string | null; verdict?: ReplyVerdict | null; annotations?: Record<string, unknown>; once?: false },
): Promise<OutboundMessage>;
/** With `once`, an item whose id exists already is left alone and undefined is returned. */
export async function insertOutbound(
  db: Queryable,
  m: { id: string; tenantId: string; channel: string; to: string; from: string; text: string; media: MediaAttachment[]; options: Record<string, unknown>; conversationId: string | null; verdict?: ReplyVerdict | null; annotations?: Record<string, unknown>; once?: boolean },
): Promise<OutboundMessage | undefined>;
export async function insertOutbound(
  db: Queryable,
  m: { id?: string; tenantId: string; channel: string; to: string; from: string; text: string; media: MediaAttachment[]; options: Record<string, unknown>; conversationId: string | null; verdict?: ReplyVerdict | null; annotations?: Record<string, unknown>; once?: boolean },
): Promise<OutboundMessage | undefined> {
  const v = verdictColumns(m.verdict);
  const details = m.annotations && Object.keys(m.annotations).length ? { annotations: m.annotations } : {};
  const { rows } = await db.query<OutboxRow>(
    `INSERT INTO parley_outbox (id, tenant_id, channel, conversation_id, to_address, from_address, body, media, options, status, via, error_code, error, details)
     VALUES (COALESCE($1::uuid, parley_uuid_v7()), $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, COALESCE($10, 'pending'), 'api', $11, $12, $13::jsonb)${m.once ? ' ON CONFLICT (id) DO NOTHING' : ''} RETURNING *`,
    [m.id ?? null, m.tenantId, m.channel, m.conversationId, m.to, m.from, m.text, JSON.stringify(m.media), JSON.stringify(m.options), v.status, v.error_code, v.error, JSON.stringify(details)],
  );
  return rows[0] ? toOutbound(rows[0]) : undefined;
}

export async function loadOutbound(db: Queryable, tenantId: string, id: string): Promise<OutboundMessage | undefined> {
  const { rows } = await db.query<OutboxRow>('SELECT * FROM parley_outbox WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  return rows[0] ? toOutbound(rows[0]) : undefined;
}

/**
 * Claims an outbox item for a send attempt. Returns the item and whether an earlier attempt was cut
 * off mid-send (status still `sending`: the provider may or may not have accepted it). A provisional
 * inline reply (its process died before the response settled it) is claimed too and goes via `api`.
 */
export async function claimForSend(db: Queryable, tenantId: string, id: string): Promise<{ message: OutboundMessage; interrupted: boolean } | { skip: OutboxStatus } | undefined> {
  const { rows } = await db.query<OutboxRow & { prev_status: OutboxStatus }>(
    `UPDATE parley_outbox o SET status = 'sending', attempts = o.attempts + 1, updated_at = now(), via = 'api',
       details = CASE WHEN o.via = 'inline' THEN o.details || '{"inline": "unconfirmed"}'::jsonb ELSE o.details END
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
/** Provider statuses recorded as history only: they never change an outbox item's status. */
export type ProviderOnlyStatus = 'queued' | 'accepted' | 'scheduled' | 'sending';

export async function applyDeliveryStatus(
  db: Queryable,
  u: { tenantId: string; channel: string; providerMessageId: string; status: OutboxStatus | ProviderOnlyStatus; errorCode?: string | null; error?: string | null; at?: Date; raw?: unknown },
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
       WHERE o.id = t.id AND $4 NOT IN ('queued', 'accepted', 'scheduled', 'sending')
         AND COALESCE((SELECT rank::int FROM rank WHERE rank.status = $4), -1) > COALESCE((SELECT rank::int FROM rank WHERE rank.status = t.status), 0)
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

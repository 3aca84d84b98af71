/**
 * The zod schemas of the kernel's admin API: the queries and bodies its handlers validate, and the
 * responses they write. The route contracts (admin-api.ts) point at them, `/v1/openapi.json` is built
 * from them, and the typed client (`parley/client`) infers its types from them.
 */
import { z } from 'zod';
import { NextPage, pageQuery } from './paging.js';

/** Dates are written as ISO 8601 strings (`2026-12-01T13:59:29.000Z`). */
export const Timestamp = z.iso.datetime({ offset: true });
const id = z.string().describe('A UUID');

/** `before`: the old way of paging these lists, kept working within `/v1`; `cursor` (from `next`) is the way now. */
const Before = z.iso.datetime({ offset: true }).optional().describe('Old way of paging (use `cursor`): only items older than this time (ISO 8601). Items that share the time of a page\'s last item may be skipped; still answered within `/v1`');

export const ListQuery = pageQuery().extend({
  before: Before,
  status: z.string().regex(/^[a-z-]+$/).optional().describe('Only items with this status'),
});
export const PageQuery = ListQuery.omit({ status: true });
export const ConversationsQuery = PageQuery.extend({
  participant: z.string().min(3).max(64).optional().describe('Only the conversations with this address (`+15551234567`, a WhatsApp id)'),
  handoff: z.enum(['bot', 'human']).optional().describe('Only conversations in this handoff state'),
  mask: z.enum(['true', 'false']).default('false').describe('`true`: addresses shown as their last digits and hash (the console\'s default); `POST …/reveal` shows one, audited'),
});
export const ConversationMessagesQuery = PageQuery.extend({ mask: ConversationsQuery.shape.mask });
export const ActivityQuery = z.object({
  minutes: z.coerce.number().int().min(5).max(1440).default(60).describe('How far back (5-1440, default 60)'),
  bucketMinutes: z.coerce.number().int().min(1).max(60).default(5).describe('Width of a bucket (default 5)'),
});
export const PersonReplyBody = z.object({
  text: z.string().trim().min(1).max(1600).describe('What the person answers, sent on the conversation\'s channel through the outbox (consent and reply stages apply)'),
  by: z.string().trim().min(1).max(100).optional().describe('Who answers (recorded on the outbox item and in the audit trail)'),
});
export const RevealBody = z.object({ reason: z.string().trim().max(500).optional() });

export const UsageQuery = z.object({
  from: z.coerce.date().optional().meta({ type: 'string', format: 'date-time', description: 'Start (ISO date or time); default 30 days before `to`' }),
  to: z.coerce.date().optional().meta({ type: 'string', format: 'date-time', description: 'End (ISO date or time); default now' }),
  groupBy: z.enum(['kind', 'day']).default('kind').describe('`day`: one row per day in the tenant\'s time zone'),
  kind: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/).optional().describe('Only this usage kind (`sms.segments`)'),
});

export const HandoffBody = z.object({ state: z.enum(['bot', 'human']), reason: z.string().max(500).optional() });
export const KeyBody = z.object({ label: z.string().max(100).default('') });

export const TenantSummary = z.object({ id: z.string(), name: z.string(), locale: z.string(), pipeline: z.array(z.string()) }).meta({ id: 'TenantSummary' });
export const Tenant = TenantSummary.extend({ timezone: z.string() }).meta({ id: 'Tenant' });

export const Conversation = z
  .object({
    id,
    channel: z.string(),
    participant: z.string().describe('The address, or its last digits (`••••4567`) with `mask=true`'),
    participantHash: z.string().describe('`ph_…`, the hash logs and parked webhooks use for the address'),
    handoff: z.enum(['bot', 'human']),
    handoffReason: z.string().nullable(),
    createdAt: Timestamp,
    lastMessageAt: Timestamp,
  })
  .meta({ id: 'Conversation' });

export const ConversationMessage = z
  .object({ id, direction: z.enum(['in', 'out']), channel: z.string(), from: z.string(), to: z.string(), text: z.string(), status: z.string(), at: Timestamp })
  .meta({ id: 'ConversationMessage' });

export const Handoff = z
  .object({ state: z.enum(['bot', 'human']), reason: z.string().nullable(), by: z.string().nullable().describe('`stage:<name>`, `operator` or `key:<id>`; null while it never changed hands'), at: Timestamp.nullable() })
  .meta({ id: 'Handoff' });

export const Media = z.object({ url: z.string(), contentType: z.string().optional(), filename: z.string().optional(), caption: z.string().optional() }).meta({ id: 'Media' });

export const OutboxStatus = z.enum(['pending', 'sending', 'retrying', 'sent', 'delivered', 'read', 'undelivered', 'failed', 'dead', 'blocked', 'held']).meta({ id: 'OutboxStatus' });

export const OutboxItem = z
  .object({
    id,
    tenantId: z.string(),
    channel: z.string(),
    conversationId: z.string().nullable(),
    inboundId: z.string().nullable(),
    to: z.string(),
    from: z.string(),
    text: z.string(),
    media: z.array(Media),
    options: z.record(z.string(), z.unknown()),
    status: OutboxStatus,
    via: z.enum(['inline', 'api']).nullable(),
    attempts: z.number().int(),
    providerMessageId: z.string().nullable(),
    errorCode: z.string().nullable(),
    error: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).optional(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  })
  .meta({ id: 'OutboxItem', description: 'An outgoing message: a reply or a send that is not a reply' });

export const OutboxEvent = z
  .object({ status: z.string(), errorCode: z.string().nullable(), detail: z.record(z.string(), z.unknown()).nullable(), at: Timestamp })
  .meta({ id: 'OutboxEvent' });

export const InboundRecord = z
  .looseObject({
    id,
    channel: z.string(),
    providerMessageId: z.string(),
    conversationId: z.string().nullable(),
    from: z.string(),
    to: z.string(),
    text: z.string(),
    media: z.unknown(),
    attributes: z.unknown(),
    status: z.string(),
    stopReason: z.string().nullable(),
    error: z.string().nullable(),
    stages: z.array(z.record(z.string(), z.unknown())).nullable().describe('One record per stage: stage, plugin, outcome, selfMs, reason?'),
    annotations: z.record(z.string(), z.unknown()).nullable(),
    receivedAt: Timestamp,
    processedAt: Timestamp.nullable(),
  })
  .meta({ id: 'InboundMessage', description: 'An inbound message as stored, with what each stage did' });

export const ConsentRecord = z.object({
  address: z.string(),
  status: z.enum(['opted-in', 'opted-out']),
  history: z.array(z.object({ status: z.string(), source: z.string(), channel: z.string().nullable(), at: Timestamp })),
});

export const UsageRow = z.object({ kind: z.string(), unit: z.string(), day: z.string().optional(), quantity: z.number(), costUsd: z.number(), events: z.number().int() }).meta({ id: 'UsageRow' });

export const ApiKey = z.object({ id, label: z.string(), createdAt: Timestamp, revokedAt: Timestamp.nullable() }).meta({ id: 'ApiKey' });

export const Alert = z
  .looseObject({
    key: z.string(),
    severity: z.enum(['info', 'warning', 'critical']),
    summary: z.string(),
    tenantId: z.string().optional(),
    details: z.record(z.string(), z.unknown()).optional(),
    source: z.string().describe('The plugin that raised it'),
    state: z.enum(['firing', 'resolved']),
    at: Timestamp,
    firstAt: Timestamp,
  })
  .meta({ id: 'Alert' });

export const Parked = z
  .object({ id, tenantId: z.string().nullable(), channel: z.string(), reason: z.string(), payload: z.unknown(), addressHashes: z.array(z.string()).nullable(), parkedAt: Timestamp })
  .meta({ id: 'ParkedWebhook' });

/**
 * The http channel's message (`POST /v1/tenants/:tenant/messages`): kept here, not in channels/http,
 * so the typed client (`parley/client`) shares it; the channel imports it from `parley`.
 */
export const MessageBody = z.object({
  from: z.string().min(1).max(256),
  text: z.string().max(4096),
  /** Client-chosen id: sending the same id twice runs the pipeline once. */
  id: z.string().min(1).max(200).optional().describe('Client-chosen id: sending the same id twice runs the pipeline once'),
  media: z.array(z.object({ url: z.string().url(), contentType: z.string().optional() })).max(10).optional(),
});

/** The answer to a message (200, or 202 when the replies come later through the outbox). */
export const MessageResult = z.object({
  message: z.object({
    id: z.string().describe('The stored inbound message'),
    conversationId: z.string().nullable(),
    status: z.enum(['processed', 'stopped', 'held', 'failed', 'duplicate', 'deferred']).describe('`deferred` with 202'),
    stopReason: z.string().optional(),
  }),
  replies: z.array(z.object({ id: z.string(), text: z.string(), media: z.array(z.looseObject({ url: z.string() })), status: z.string() })),
});

/** Responses, by route. */
export const Responses = {
  tenants: z.object({ tenants: z.array(TenantSummary), next: NextPage }),
  tenant: z.object({ tenant: Tenant }),
  conversations: z.object({ conversations: z.array(Conversation), next: NextPage }),
  conversationMessages: z.object({ messages: z.array(ConversationMessage).describe('Oldest first'), next: NextPage.describe('The older messages before these, or null') }),
  revealed: z.object({ participant: z.string() }),
  activity: z.object({
    since: Timestamp,
    bucketSeconds: z.number().int(),
    series: z.array(z.object({ channel: z.string(), direction: z.enum(['in', 'out']), counts: z.array(z.number().int()).describe('Messages per bucket, oldest first') })),
  }),
  handoff: z.object({ handoff: Handoff }),
  message: z.object({ message: InboundRecord, replies: z.array(OutboxItem) }),
  outbox: z.object({ outbox: z.array(OutboxItem), next: NextPage }),
  deadLetters: z.object({ deadLetters: z.array(OutboxItem), next: NextPage }),
  outboxItem: z.object({ item: OutboxItem, events: z.array(OutboxEvent).describe('The status history, oldest first') }),
  retried: z.object({ item: OutboxItem }),
  consent: ConsentRecord,
  usage: z.object({ from: Timestamp, to: Timestamp, groupBy: z.enum(['kind', 'day']), usage: z.array(UsageRow) }),
  keys: z.object({ keys: z.array(ApiKey), next: NextPage }),
  createdKey: z.object({ key: z.object({ id, label: z.string(), createdAt: Timestamp, secret: z.string().describe('Shown once; only its hash is stored') }) }),
  plugins: z.object({ plugins: z.array(z.object({ name: z.string(), kind: z.string(), description: z.string() })), next: NextPage }),
  alerts: z.object({ alerts: z.array(Alert), next: NextPage }),
  parked: z.object({ parked: z.array(Parked), next: NextPage }),
} as const;

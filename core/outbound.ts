/**
 * The outbound path for messages that are not replies (reminders, campaigns, scheduled sends): the
 * tenant's reply stages screen the message, it is written to the outbox (as `blocked` or `held` when a
 * stage said so), then its send job is queued. Replies take the inbound path.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { ParleyError } from './errors.js';
import type { GatewayServices } from './plugin.js';
import type { OutboundMessage } from './message.js';
import type { TenantDirectory, TenantInfo } from './tenancy.js';
import type { OutboxSender } from './outbox.js';
import type { CoreMetrics } from './metrics.js';
import { screenOutgoing, type ResolvedReplyStage } from './reply-stages.js';
import { insertOutbound, loadOutbound } from './storage/message-store.js';

export type OutboundRequest = Parameters<GatewayServices['enqueueOutbound']>[0];

export interface OutboundDeps {
  db: Pool;
  log: Logger;
  metrics: CoreMetrics;
  tenants: TenantDirectory;
  outbox: OutboxSender;
  replyStagesFor(tenant: TenantInfo): ResolvedReplyStage[];
  stageTimeoutMs: number;
}

export async function enqueueOutbound(deps: OutboundDeps, m: OutboundRequest): Promise<OutboundMessage> {
  const tenant = deps.tenants.get(m.tenantId);
  if (!tenant) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Unknown tenant "${m.tenantId}"`, 404);
  if (!deps.outbox.hasSender(m.channel)) throw new ParleyError('PARLEY_SENDER_MISSING', `No channel "${m.channel}" can send messages`, 400);
  // The id is chosen first so reply stages get a key that names this item. With an idempotency key it
  // is derived from the key, so a repeated call finds the item the first one stored (and reply stages
  // that meter by `out:<id>` see one key for both).
  const id = m.idempotencyKey === undefined ? uuidV7() : outboxIdFor(tenant.id, m.idempotencyKey);
  if (m.idempotencyKey !== undefined) {
    const existing = await loadOutbound(deps.db, tenant.id, id);
    if (existing) return requeueIfPending(deps, existing, m.delayMs);
  }
  const draft = { tenant, channel: m.channel, to: m.to, from: m.from ?? '', text: m.text, media: m.media ?? [], options: m.options ?? {}, inbound: null, key: `out:${id}` };
  const log = deps.log.child({ tenant: tenant.id, channel: m.channel, outboxId: id });
  const screened = await screenOutgoing(deps.replyStagesFor(tenant), draft, { log, timeoutMs: deps.stageTimeoutMs, metrics: deps.metrics });
  const item = await insertOutbound(deps.db, {
    id,
    tenantId: tenant.id,
    channel: m.channel,
    to: m.to,
    from: draft.from,
    text: screened.text,
    media: draft.media,
    options: draft.options,
    conversationId: m.conversationId ?? null,
    verdict: screened.verdict,
    annotations: screened.annotations,
    ...(m.idempotencyKey !== undefined ? { once: true } : {}),
  });
  if (!item) {
    // A concurrent call with the same key stored it first.
    const existing = await loadOutbound(deps.db, tenant.id, id);
    if (!existing) throw new ParleyError('PARLEY_INTERNAL', `Outbox item for idempotency key of tenant "${tenant.id}" vanished`);
    return requeueIfPending(deps, existing, m.delayMs);
  }
  if (item.status === 'pending') await deps.outbox.enqueue([item], 0, m.delayMs);
  else deps.metrics.messagesOut.inc({ tenant: tenant.id, channel: m.channel, status: item.status });
  return item;
}

/**
 * A time-ordered id (RFC 9562 UUIDv7: 48 bits of Unix milliseconds, version 7, variant 10, 74 random
 * bits), as the database's `parley_uuid_v7()` makes for inbound messages and replies: new outbox keys
 * append to the indexes instead of landing on random pages (migration 010_time_ordered_ids).
 */
export function uuidV7(now = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The outbox id an idempotency key stands for: a UUID-shaped SHA-256 of the tenant and the key. */
export function outboxIdFor(tenantId: string, idempotencyKey: string): string {
  if (idempotencyKey.length === 0 || idempotencyKey.length > 200) throw new ParleyError('PARLEY_BAD_REQUEST', 'idempotencyKey must be 1 to 200 characters', 400);
  const h = createHash('sha256').update(`parley-outbox\u0000${tenantId}\u0000${idempotencyKey}`).digest('hex');
  // Version nibble 8 (RFC 9562 custom UUID), variant 10xx.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A repeated call finds its item; one still pending has its send job queued again (a no-op when the job exists). */
async function requeueIfPending(deps: OutboundDeps, item: OutboundMessage, delayMs?: number): Promise<OutboundMessage> {
  if (item.status === 'pending') await deps.outbox.enqueue([item], 0, delayMs);
  return item;
}

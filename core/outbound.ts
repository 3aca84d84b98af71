/**
 * The outbound path for messages that are not replies (reminders, campaigns, scheduled sends): the
 * tenant's reply stages screen the message, it is written to the outbox (as `blocked` or `held` when a
 * stage said so), then its send job is queued. Replies take the inbound path.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { ParleyError } from './errors.js';
import type { GatewayServices } from './plugin.js';
import type { OutboundMessage } from './message.js';
import { runWithTenant, type TenantDirectory, type TenantInfo } from './tenancy.js';
import type { OutboxSender } from './outbox.js';
import type { CoreMetrics } from './metrics.js';
import { screenOutgoing, type ResolvedReplyStage } from './reply-stages.js';
import { insertOutbound } from './storage/message-store.js';

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
  // The id is chosen first so reply stages get a key that names this item.
  const id = randomUUID();
  const draft = { tenant, channel: m.channel, to: m.to, from: m.from ?? '', text: m.text, media: m.media ?? [], options: m.options ?? {}, inbound: null, key: `out:${id}` };
  const log = deps.log.child({ tenant: tenant.id, channel: m.channel, outboxId: id });
  const screened = await runWithTenant(tenant, () => screenOutgoing(deps.replyStagesFor(tenant), draft, { log, timeoutMs: deps.stageTimeoutMs, metrics: deps.metrics }));
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
  });
  if (item.status === 'pending') await deps.outbox.enqueue([item]);
  else deps.metrics.messagesOut.inc({ tenant: tenant.id, channel: m.channel, status: item.status });
  return item;
}

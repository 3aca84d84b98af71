/**
 * The outbound path for messages that are not replies (reminders, campaigns, scheduled sends): the
 * item is written to the outbox, then its send job is queued. Replies take the inbound path.
 */
import type { Pool } from 'pg';
import { ParleyError } from './errors.js';
import type { GatewayServices } from './plugin.js';
import type { OutboundMessage } from './message.js';
import type { TenantDirectory } from './tenancy.js';
import type { OutboxSender } from './outbox.js';
import { insertOutbound } from './storage/message-store.js';

export type OutboundRequest = Parameters<GatewayServices['enqueueOutbound']>[0];

export interface OutboundDeps {
  db: Pool;
  tenants: TenantDirectory;
  outbox: OutboxSender;
}

export async function enqueueOutbound(deps: OutboundDeps, m: OutboundRequest): Promise<OutboundMessage> {
  if (!deps.tenants.get(m.tenantId)) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Unknown tenant "${m.tenantId}"`, 404);
  if (!deps.outbox.hasSender(m.channel)) throw new ParleyError('PARLEY_SENDER_MISSING', `No channel "${m.channel}" can send messages`, 400);
  const item = await insertOutbound(deps.db, { tenantId: m.tenantId, channel: m.channel, to: m.to, from: m.from ?? '', text: m.text, media: m.media ?? [], options: m.options ?? {}, conversationId: m.conversationId ?? null });
  await deps.outbox.enqueue([item]);
  return item;
}

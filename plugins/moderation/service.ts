/**
 * Decisions and their effects, and the backlog work of each tick. A decision is a conditional update
 * of the item (one caller wins); its effect goes through the kernel's own exactly-once guards:
 * `gateway.resume` for a held inbound message, `gateway.releaseHeld` for a held reply. An item whose
 * effect was cut off (a crash between the two) is settled again by the next tick.
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { hashAddress, type AlertApi, type GatewayServices, type TenantInfo } from 'parley';
import type { ModerationMetrics } from './metrics.js';
import type { Decision, QueueItem, QueueStore } from './store.js';
import type { ModerationSettings } from './types.js';

export interface ServiceDeps {
  db: Pool;
  store: QueueStore;
  metrics: ModerationMetrics;
  gateway: GatewayServices;
  alerts: AlertApi;
  log: Logger;
  tenants(): { tenant: TenantInfo; settings: ModerationSettings }[];
  settingsFor(tenantId: string): ModerationSettings | undefined;
  publicBaseUrl: string | undefined;
}

export interface DecisionResult {
  item: QueueItem;
  changed: boolean;
  /** What happened to the held content: the pipeline continued, a reply was released, nothing yet. */
  effect?: string;
}

export class ModerationService {
  constructor(private readonly deps: ServiceDeps) {}

  async decide(tenantId: string, id: string, to: Decision, by: { actor: string; reason: string | null; notes: string | null; auto?: boolean; assignee?: string | null }): Promise<DecisionResult | undefined> {
    const r = await this.deps.store.decide(tenantId, id, to, by);
    if (!r || !r.changed) return r;
    const outcome = by.auto ? `auto-${to}` : to;
    this.deps.metrics.decisions.inc({ tenant: tenantId, outcome });
    this.deps.log.info({ tenant: tenantId, itemId: id, outcome, actor: by.actor }, 'moderation decision');
    if (to === 'escalated') {
      this.deps.alerts.raise({
        key: `moderation.escalated:${id}`,
        tenantId,
        severity: 'warning',
        summary: `${tenantId}: a moderation item (${r.item.categories.join(', ')}) from ${hashAddress(r.item.participant)} was escalated${r.item.assignee ? ` to ${r.item.assignee}` : ''}`,
        details: { tenant: tenantId, itemId: id, link: `${this.deps.publicBaseUrl?.replace(/\/$/, '') ?? ''}/v1/tenants/${encodeURIComponent(tenantId)}/moderation/queue/${id}` },
      });
      return { ...r, effect: 'none' };
    }
    this.deps.metrics.timeToDecision.observe({ tenant: tenantId, outcome }, (Date.now() - new Date(r.item.createdAt).getTime()) / 1000);
    const effect = await this.settle(r.item);
    return { ...r, effect };
  }

  /** Applies a final decision to the held content, once (the kernel's guards), and records it as settled. */
  async settle(item: QueueItem): Promise<string> {
    const { gateway, store, log } = this.deps;
    const release = item.status === 'approved' || item.status === 'dismissed';
    try {
      if (item.direction === 'inbound') {
        if (!item.messageId) return 'none';
        if (release) {
          const r = await gateway.resume(item.tenantId, item.messageId, item.heldStage ? { afterStage: item.heldStage } : {});
          await store.markSettled(item.tenantId, item.id);
          return r.resumed ? `continued:${r.result.status}` : `not-held:${r.status}`;
        }
        const r = await gateway.resume(item.tenantId, item.messageId, { stop: 'moderation: rejected' });
        const reply = this.deps.settingsFor(item.tenantId)?.rejectReply;
        // Also when an earlier settle stopped the message and was cut off before the reply: the key
        // makes the reply go out once however many times this runs.
        if (reply && (r.resumed || r.status === 'stopped')) {
          const { rows } = await this.deps.db.query<{ to_address: string; from_address: string; conversation_id: string }>('SELECT to_address, from_address, conversation_id FROM parley_inbound WHERE tenant_id = $1 AND id = $2', [item.tenantId, item.messageId]);
          const m = rows[0];
          if (m) await gateway.enqueueOutbound({ tenantId: item.tenantId, channel: item.channel, to: m.from_address, from: m.to_address, text: reply, conversationId: m.conversation_id, options: { moderation: 'rejected' }, idempotencyKey: `moderation:rejected:${item.id}` });
        }
        await store.markSettled(item.tenantId, item.id);
        return r.resumed ? 'stopped' : `not-held:${r.status}`;
      }
      const outboxId = item.outboxId ?? (await this.outboxIdOf(item));
      if (!outboxId) {
        // The reply was never stored (its run was superseded): nothing to send or block.
        await store.markSettled(item.tenantId, item.id);
        return 'no-reply';
      }
      const r = await gateway.releaseHeld(item.tenantId, outboxId, release ? { send: true } : { send: false, reason: 'moderation: rejected by a moderator' });
      await store.markSettled(item.tenantId, item.id, outboxId);
      return r.changed ? (release ? 'released' : 'blocked') : `not-held:${r.item?.status ?? 'missing'}`;
    } catch (error) {
      log.warn({ err: error, tenant: item.tenantId, itemId: item.id }, 'moderation: applying a decision failed; the next tick tries again');
      return 'pending';
    }
  }

  private async outboxIdOf(item: QueueItem): Promise<string | null> {
    const m = /^reply:([0-9a-f-]{36}):(\d+)$/i.exec(item.ref);
    if (!m) return null;
    const { rows } = await this.deps.db.query<{ id: string }>('SELECT id FROM parley_outbox WHERE tenant_id = $1 AND inbound_id = $2 AND seq = $3', [item.tenantId, m[1], Number(m[2])]);
    return rows[0]?.id ?? null;
  }

  /** Dismisses open items below `belowConfidence` (older than `olderThanHours` when given), one decision each. */
  async bulkDismiss(tenantId: string, belowConfidence: number, by: { actor: string; reason: string | null; auto?: boolean }, olderThanHours: number | null = null): Promise<QueueItem[]> {
    const done: QueueItem[] = [];
    for (const id of await this.deps.store.lowConfidence(tenantId, belowConfidence, olderThanHours)) {
      const r = await this.decide(tenantId, id, 'dismissed', { ...by, notes: null });
      if (r?.changed) done.push(r.item);
    }
    return done;
  }

  /** One backlog tick: auto-dismiss, settle cut-off decisions, the SLA alert of every tenant. */
  async tick(): Promise<void> {
    const backlog = new Map((await this.deps.store.backlog()).map((b) => [b.tenantId, b]));
    for (const { tenant, settings } of this.deps.tenants()) {
      const auto = settings.review.autoDismiss;
      if (auto) await this.bulkDismiss(tenant.id, auto.belowConfidence, { actor: 'auto-dismiss', reason: `confidence below ${auto.belowConfidence} after ${auto.afterHours} h`, auto: true }, auto.afterHours);
      for (const item of await this.deps.store.unsettled(tenant.id)) await this.settle(item);
      const b = backlog.get(tenant.id);
      const key = 'moderation.sla';
      const slaSeconds = settings.review.slaMinutes * 60;
      if (b && b.oldestSeconds > slaSeconds) {
        this.deps.alerts.raise({
          key,
          tenantId: tenant.id,
          severity: 'warning',
          summary: `${tenant.id}: the oldest moderation item has waited ${Math.round(b.oldestSeconds / 60)} min (SLA ${settings.review.slaMinutes} min); ${b.open} open`,
          details: { tenant: tenant.id, open: b.open, oldestMinutes: Math.round(b.oldestSeconds / 60), slaMinutes: settings.review.slaMinutes, link: `${this.deps.publicBaseUrl?.replace(/\/$/, '') ?? ''}/v1/tenants/${encodeURIComponent(tenant.id)}/moderation/queue?status=pending` },
        });
      } else this.deps.alerts.resolve(key, tenant.id);
    }
  }
}

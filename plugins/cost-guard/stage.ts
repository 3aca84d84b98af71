/**
 * The `cost-guard` pipeline stage (inbound: sender blocks, the tenant's inbound limit, per-sender
 * limits with one polite "slow down" reply per window) and reply stage (paid sends: reserve their
 * estimated cost against the messaging budget; hold or block them at 100%). Crisis messages (the
 * `crisis` annotation of crisis-guard) and crisis replies are never limited, blocked or held.
 */
import { consentAddress, hashAddress, type ReplyStageDefinition, type StageDefinition } from 'parley';
import type { Budgets } from './budgets.js';
import type { Limits } from './limits.js';
import type { CostMetrics } from './metrics.js';
import type { CostStore } from './store.js';
import type { CostGuardSettings } from './types.js';

export const COST_STAGE = 'cost-guard';
const CRISIS_ANNOTATION = 'crisis';

/** The key rate limits and blocks use for a sender: a hash of the address, never the address. */
export const senderKey = (address: string) => hashAddress(consentAddress(address));

export interface BlockCache {
  senders(tenantId: string): Promise<Set<string>>;
}

export function inboundStage(deps: { limits: Pick<Limits, 'take'>; blocks: BlockCache; metrics: CostMetrics }): StageDefinition<CostGuardSettings> {
  return {
    name: COST_STAGE,
    runsDuringHandoff: true,
    async handle(stage, next) {
      if (stage.annotations[CRISIS_ANNOTATION]) return next();
      const { tenant, message, settings } = stage;
      const sender = senderKey(message.from);
      if ((await deps.blocks.senders(tenant.id)).has(sender)) {
        deps.metrics.rateLimited.inc({ tenant: tenant.id, scope: 'sender-blocked' });
        stage.log.info({ from: sender }, 'cost-guard: message from a blocked sender dropped');
        return stage.stop('cost-guard: sender blocked');
      }
      const limits = settings.rateLimits;
      if (limits.inbound) {
        const t = await deps.limits.take('inbound', tenant.id, limits.inbound.perMinute, 60);
        if (!t.ok) {
          deps.metrics.rateLimited.inc({ tenant: tenant.id, scope: 'inbound' });
          return stage.stop('cost-guard: tenant inbound rate limit');
        }
      }
      const windows = [
        ...(limits.user?.perMinute ? [{ scope: 'user-minute', points: limits.user.perMinute, seconds: 60 }] : []),
        ...(limits.user?.perDay ? [{ scope: 'user-day', points: limits.user.perDay, seconds: 86_400 }] : []),
      ];
      for (const w of windows) {
        const t = await deps.limits.take(w.scope, `${tenant.id}:${sender}`, w.points, w.seconds);
        if (t.ok) continue;
        deps.metrics.rateLimited.inc({ tenant: tenant.id, scope: w.scope });
        // One "slow down" per sender per window; silence after.
        const notice = await deps.limits.take(`notice-${w.scope}`, `${tenant.id}:${sender}`, 1, w.seconds);
        if (notice.ok) stage.reply(settings.slowDownReply);
        stage.log.info({ from: sender, scope: w.scope, noticed: notice.ok }, 'cost-guard: sender over their rate limit');
        return stage.stop(`cost-guard: sender rate limit (${w.scope === 'user-minute' ? 'per minute' : 'per day'})`);
      }
      await next();
    },
  };
}

/** Segments a text needs on SMS (GSM-7: 160, or 153 per part; other text: 70, or 67). */
export function smsSegments(text: string): number {
  // eslint-disable-next-line no-control-regex
  const gsm = /^[\x20-\x7E\n\r£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà€]*$/u.test(text);
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  return text.length <= single ? 1 : Math.ceil(text.length / multi);
}

/** What one send is expected to cost: the channel's per-message price and its SMS segments. */
export async function sendEstimate(store: Pick<CostStore, 'unitPrice'>, tenantId: string, channel: string, text: string): Promise<number> {
  const perMessage = await store.unitPrice(tenantId, 'messages.out', channel);
  const perSegment = await store.unitPrice(tenantId, 'sms.segments.out', channel);
  return perMessage + perSegment * smsSegments(text);
}

export function replyStage(deps: { store: CostStore; budgets: Budgets; metrics: CostMetrics; ttlSeconds: number; background(work: Promise<unknown>, what: string): void }): ReplyStageDefinition<CostGuardSettings> {
  return {
    name: COST_STAGE,
    async handle(out, next) {
      if (out.options.crisisGuard) return next();
      const { tenant, settings } = out;
      const estimate = await sendEstimate(deps.store, tenant.id, out.channel, out.text);
      if (estimate <= 0) return next();
      const force = settings.action === 'notify-only' || settings.action === 'degrade';
      const r = await deps.budgets.reserve(tenant.id, 'messaging', estimate, force, deps.ttlSeconds);
      // The reservation id lets the ledger trigger release it when this send is metered (messages.out).
      out.annotate('costGuard', { estimateUsd: Math.round(estimate * 1e6) / 1e6, ...(r.id ? { reservation: r.id } : {}), ...(r.ok ? {} : { overBudget: true }) });
      deps.background(deps.budgets.check(tenant.id), 'check budget thresholds');
      if (r.ok || force) {
        if (!r.ok) deps.metrics.budgetRefusals.inc({ tenant: tenant.id, what: 'send', action: settings.action });
        return next();
      }
      const over = r.counters.find((c) => c.limit !== null && c.spent + c.reserved + estimate > c.limit);
      const reason = `cost-guard: the ${over?.period === 'month' ? 'monthly' : 'daily'} ${over?.category ?? 'messaging'} budget${over?.limit != null ? ` ($${+over.limit.toFixed(6)})` : ''} is spent`;
      deps.metrics.budgetRefusals.inc({ tenant: tenant.id, what: 'send', action: settings.paidSends });
      if (settings.paidSends === 'block') out.block(reason);
      else out.hold(reason);
    },
  };
}

/**
 * Budget checks for model calls and paid sends: reserve an estimate before (atomic across instances,
 * see CostStore.reserve), release after the usage is in the ledger; alerts at the warning threshold, at
 * 100% and on a spike. Windows are the tenant's day and month in its time zone.
 */
import type { AlertApi, TenantInfo } from 'parley';
import type { Logger } from 'pino';
import { CostStore, windowKeys, type CounterKey, type CounterState } from './store.js';
import { PERIODS, type Category, type CostGuardSettings } from './types.js';

/** The smallest reservation: a call with no price still needs room under a spent budget. */
const MIN_RESERVATION = 0.000001;

export class Budgets {
  constructor(
    private readonly deps: {
      store: CostStore;
      alerts: AlertApi;
      log: Logger;
      ttlSeconds: number;
      tenant(id: string): TenantInfo | undefined;
      settings(id: string): CostGuardSettings | undefined;
    },
  ) {}

  /** The counters a spend of `category` touches, with the limits from settings. */
  keys(tenantId: string, category: Exclude<Category, 'total'>): CounterKey[] {
    const tz = this.deps.tenant(tenantId)?.timezone ?? 'UTC';
    const w = windowKeys(tz);
    const budgets = this.deps.settings(tenantId)?.budgets ?? {};
    const limit = (c: Category, p: 'day' | 'month') => (p === 'day' ? budgets[c]?.daily : budgets[c]?.monthly) ?? null;
    return (['total', category] as const).flatMap((c) => PERIODS.map((p) => ({ category: c, period: p, window_key: p === 'day' ? w.day : w.month, limit_usd: limit(c, p) })));
  }

  async reserve(tenantId: string, category: 'ai' | 'messaging', amount: number, force: boolean, ttlSeconds = this.deps.ttlSeconds) {
    const r = await this.deps.store.reserve(tenantId, this.keys(tenantId, category), Math.max(MIN_RESERVATION, amount), { force, ttlSeconds });
    if (!r.ok) {
      const over = r.counters.filter((c) => c.limit !== null && c.spent + c.reserved + amount > c.limit);
      for (const c of over) this.reached(tenantId, c, amount);
    }
    return r;
  }

  /**
   * Whether a spend of `amount` in `category` fits now (what `reserve` would decide, without reserving),
   * and the smallest room left over the budgets it touches (null: no budget limits it).
   */
  async room(tenantId: string, category: 'ai' | 'messaging', amount: number): Promise<{ fits: boolean; remainingUsd: number | null }> {
    const counters = await this.deps.store.counters(tenantId, this.keys(tenantId, category));
    const limited = counters.filter((c) => c.limit !== null);
    const remaining = limited.length ? Math.min(...limited.map((c) => c.limit! - c.spent - c.reserved)) : null;
    return { fits: limited.every((c) => c.spent + c.reserved + Math.max(MIN_RESERVATION, amount) <= c.limit!), remainingUsd: remaining === null ? null : round(Math.max(0, remaining)) };
  }

  /** Every budget of the tenant's current windows (ai, messaging, total x day, month). */
  async state(tenantId: string): Promise<CounterState[]> {
    const keys = [...this.keys(tenantId, 'ai'), ...this.keys(tenantId, 'messaging').filter((k) => k.category !== 'total')];
    return this.deps.store.counters(tenantId, keys);
  }

  /** 100%: spent, or the next call's estimate (`needs`) would pass the limit. */
  private reached(tenantId: string, c: CounterState, needs?: number): void {
    const action = this.deps.settings(tenantId)?.action ?? 'block';
    const spentAll = c.spent >= c.limit!;
    this.deps.alerts.raise({
      tenantId,
      key: `cost-guard.budget:${c.category}:${c.period}:${c.windowKey}:reached`,
      severity: action === 'notify-only' ? 'warning' : 'critical',
      summary: `${tenantId}: the ${c.period === 'day' ? 'daily' : 'monthly'} ${c.category} budget of $${c.limit!.toFixed(2)} is ${spentAll ? 'spent' : 'reached'} ($${c.spent.toFixed(4)} spent${spentAll || needs === undefined ? '' : `, $${c.reserved.toFixed(4)} reserved, the next call needs about $${needs.toFixed(4)}`}); action: ${action}`,
      details: { tenant: tenantId, category: c.category, period: c.period, window: c.windowKey, limitUsd: c.limit, spentUsd: round(c.spent), reservedUsd: round(c.reserved), ...(needs !== undefined ? { neededUsd: round(needs) } : {}), action },
    });
  }

  /** After spend: the warning threshold, 100% under notify-only, and the spike alert. Never throws. */
  async check(tenantId: string): Promise<void> {
    const settings = this.deps.settings(tenantId);
    if (!settings) return;
    try {
      const counters = await this.state(tenantId);
      for (const c of counters) {
        if (c.limit === null) continue;
        if (c.spent >= c.limit) this.reached(tenantId, c);
        else if (c.spent >= settings.warnAt * c.limit) {
          this.deps.alerts.raise({
            tenantId,
            key: `cost-guard.budget:${c.category}:${c.period}:${c.windowKey}:warning`,
            severity: 'warning',
            summary: `${tenantId}: ${Math.floor((c.spent / c.limit) * 100)}% of the ${c.period === 'day' ? 'daily' : 'monthly'} ${c.category} budget ($${c.limit.toFixed(2)}) is spent`,
            details: { tenant: tenantId, category: c.category, period: c.period, window: c.windowKey, limitUsd: c.limit, spentUsd: round(c.spent), warnAt: settings.warnAt },
          });
        }
      }
      const today = counters.find((c) => c.category === 'total' && c.period === 'day');
      if (!today) return;
      const previous = await this.deps.store.previousDays(tenantId, today.windowKey, settings.spike.days);
      const average = previous.reduce((a, b) => a + b, 0) / settings.spike.days;
      const bySpike = today.spent > Math.max(settings.spike.minUsd, settings.spike.factor * average) && average > 0;
      const byAmount = settings.spike.dailyUsd !== undefined && today.spent > settings.spike.dailyUsd;
      if (bySpike || byAmount) {
        this.deps.alerts.raise({
          tenantId,
          key: `cost-guard.spike:${today.windowKey}`,
          severity: 'warning',
          summary: bySpike
            ? `${tenantId}: today's spend $${today.spent.toFixed(2)} is ${(today.spent / average).toFixed(1)}x the ${settings.spike.days}-day average ($${average.toFixed(2)})`
            : `${tenantId}: today's spend $${today.spent.toFixed(2)} passed the spike threshold of $${settings.spike.dailyUsd!.toFixed(2)}`,
          details: { tenant: tenantId, day: today.windowKey, spentUsd: round(today.spent), averageUsd: round(average), factor: settings.spike.factor, days: settings.spike.days, ...(settings.spike.dailyUsd ? { dailyUsd: settings.spike.dailyUsd } : {}) },
        });
      }
    } catch (error) {
      this.deps.log.error({ err: error, tenant: tenantId }, 'cost-guard: budget check failed');
    }
  }
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

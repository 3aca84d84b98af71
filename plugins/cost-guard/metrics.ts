/**
 * The plugin's Prometheus metrics (listed in the README). Spend, tokens and remaining budget are read
 * from the rollup and the counters at scrape time: every instance reports the same deployment-wide
 * figures (aggregate with max, not sum). Rate limits and cache results are counted per instance.
 */
import type { Gauge } from 'prom-client';
import type { PluginMetrics } from 'parley';
import type { CostStore } from './store.js';
import type { Budgets } from './budgets.js';

type Totals = Awaited<ReturnType<CostStore['totals']>>;

/** Sets a gauge to the sum of `value` per label set (rows without labels are left out). */
function setSums<L extends string>(gauge: Gauge<L>, rows: Totals, labelsOf: (r: Totals[number]) => Record<L, string> | null, value: (r: Totals[number]) => number): void {
  gauge.reset();
  const sums = new Map<string, { labels: Record<L, string>; value: number }>();
  for (const r of rows) {
    const labels = labelsOf(r);
    if (!labels) continue;
    const key = JSON.stringify(labels);
    const cur = sums.get(key) ?? { labels, value: 0 };
    cur.value += value(r);
    sums.set(key, cur);
  }
  for (const s of sums.values()) gauge.set(s.labels, s.value);
}

export function costMetrics(metrics: PluginMetrics, deps: { store: CostStore; budgets: Budgets; tenants: () => string[] }) {
  const DIRECTION: Record<string, string> = { 'model.tokens.input': 'in', 'model.tokens.output': 'out', 'model.tokens.embedding': 'embedding' };
  // Both ledger gauges read the same totals: a scrape collects them together and shares one query.
  let pending: ReturnType<CostStore['totals']> | undefined;
  const totals = () =>
    (pending ??= deps.store.totals().finally(() => {
      pending = undefined;
    }));
  return {
    cost: metrics.gauge({
      name: 'parley_cost_usd_total',
      help: 'Spend recorded in the usage ledger, in USD, by tenant, category (ai, messaging, other), provider and model (read from the rollup at scrape; the same on every instance)',
      labelNames: ['tenant', 'category', 'provider', 'model'] as const,
      async collect() {
        setSums(this, await totals(), (r) => ({ tenant: r.tenant_id, category: r.category, provider: r.provider || r.channel, model: r.model }), (r) => r.cost);
      },
    }),
    tokens: metrics.gauge({
      name: 'parley_ai_tokens_total',
      help: 'Model tokens recorded in the usage ledger by tenant, model and direction (in, out, embedding)',
      labelNames: ['tenant', 'model', 'direction'] as const,
      async collect() {
        setSums(this, await totals(), (r) => (DIRECTION[r.kind] ? { tenant: r.tenant_id, model: r.model, direction: DIRECTION[r.kind]! } : null), (r) => r.quantity);
      },
    }),
    remaining: metrics.gauge({
      name: 'parley_budget_remaining_usd',
      help: 'What is left of each budget in its current window (limit - spent - reserved), by tenant, category and period',
      labelNames: ['tenant', 'category', 'period'] as const,
      async collect() {
        this.reset();
        for (const tenant of deps.tenants()) {
          for (const c of await deps.budgets.state(tenant)) {
            if (c.limit !== null) this.set({ tenant, category: c.category, period: c.period }, c.limit - c.spent - c.reserved);
          }
        }
      },
    }),
    rateLimited: metrics.counter({ name: 'parley_rate_limited_total', help: 'Requests and messages refused by a rate limit or a block, by tenant and scope (api, inbound, user-minute, user-day, sender-blocked, ip-blocked)', labelNames: ['tenant', 'scope'] as const }),
    budgetRefusals: metrics.counter({ name: 'parley_budget_actions_total', help: 'Budget actions taken at 100%, by tenant, what (model, embeddings, send) and action (block, degrade, notify-only, hold)', labelNames: ['tenant', 'what', 'action'] as const }),
    cache: metrics.counter({ name: 'parley_cost_cache_requests_total', help: 'Response cache lookups by tenant and result (hit, miss)', labelNames: ['tenant', 'result'] as const }),
    cacheSaved: metrics.counter({ name: 'parley_cost_cache_saved_usd_total', help: 'What cached answers saved, in USD (the cost of the call that made the answer), by tenant', labelNames: ['tenant'] as const }),
  };
}

export type CostMetrics = ReturnType<typeof costMetrics>;

/**
 * The plugin's Prometheus metrics (listed in the README). Spend, tokens and remaining budget are read
 * from the rollup and the counters at scrape time: every instance reports the same deployment-wide
 * figures (aggregate with max, not sum). Rate limits and cache results are counted per instance.
 */
import type { PluginMetrics } from 'parley';
import type { CostStore } from './store.js';
import type { Budgets } from './budgets.js';

export function costMetrics(metrics: PluginMetrics, deps: { store: CostStore; budgets: Budgets; tenants: () => string[] }) {
  const DIRECTION: Record<string, string> = { 'model.tokens.input': 'in', 'model.tokens.output': 'out', 'model.tokens.embedding': 'embedding' };
  return {
    cost: metrics.gauge({
      name: 'parley_cost_usd_total',
      help: 'Spend recorded in the usage ledger, in USD, by tenant, category (ai, messaging, other), provider and model (read from the rollup at scrape; the same on every instance)',
      labelNames: ['tenant', 'category', 'provider', 'model'] as const,
      async collect() {
        this.reset();
        const sums = new Map<string, { labels: { tenant: string; category: string; provider: string; model: string }; value: number }>();
        for (const r of await deps.store.totals()) {
          const labels = { tenant: r.tenant_id, category: r.category, provider: r.provider || r.channel, model: r.model };
          const k = JSON.stringify(labels);
          const cur = sums.get(k) ?? { labels, value: 0 };
          cur.value += r.cost;
          sums.set(k, cur);
        }
        for (const s of sums.values()) this.set(s.labels, s.value);
      },
    }),
    tokens: metrics.gauge({
      name: 'parley_ai_tokens_total',
      help: 'Model tokens recorded in the usage ledger by tenant, model and direction (in, out, embedding)',
      labelNames: ['tenant', 'model', 'direction'] as const,
      async collect() {
        this.reset();
        const sums = new Map<string, { labels: { tenant: string; model: string; direction: string }; value: number }>();
        for (const r of await deps.store.totals()) {
          const direction = DIRECTION[r.kind];
          if (!direction) continue;
          const labels = { tenant: r.tenant_id, model: r.model, direction };
          const k = JSON.stringify(labels);
          const cur = sums.get(k) ?? { labels, value: 0 };
          cur.value += r.quantity;
          sums.set(k, cur);
        }
        for (const s of sums.values()) this.set(s.labels, s.value);
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

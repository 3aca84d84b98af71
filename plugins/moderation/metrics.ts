/** The plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';
import type { QueueStore } from './store.js';

export function moderationMetrics(metrics: PluginMetrics, store: QueueStore) {
  let backlog: Promise<Awaited<ReturnType<QueueStore['backlog']>>> | null = null;
  // Both gauges of one scrape (collected concurrently) share the query in flight; the next scrape reads afresh.
  const read = () => (backlog ??= store.backlog().finally(() => (backlog = null)));
  return {
    flags: metrics.counter({ name: 'parley_moderation_flags_total', help: 'Findings that reached their threshold, by tenant, direction, category and the action taken', labelNames: ['tenant', 'direction', 'category', 'action'] as const }),
    actions: metrics.counter({ name: 'parley_moderation_actions_total', help: 'Screened messages by tenant, direction and resulting action (allow, flag, redact, hold, block)', labelNames: ['tenant', 'direction', 'action'] as const }),
    redactions: metrics.counter({ name: 'parley_moderation_redactions_total', help: 'Inbound texts masked before storage, by tenant', labelNames: ['tenant'] as const }),
    decisions: metrics.counter({ name: 'parley_moderation_decisions_total', help: 'Review decisions by tenant and outcome (approved, rejected, escalated, dismissed, auto-dismissed)', labelNames: ['tenant', 'outcome'] as const }),
    timeToDecision: metrics.histogram({ name: 'parley_moderation_time_to_decision_seconds', help: 'From hold to decision, by tenant and outcome', labelNames: ['tenant', 'outcome'] as const, buckets: [60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600] }),
    modelChecks: metrics.counter({ name: 'parley_moderation_model_checks_total', help: 'Model detector calls by result (flagged, clean, failed, unavailable)', labelNames: ['result'] as const }),
    pending: metrics.gauge({
      name: 'parley_moderation_queue_open',
      help: 'Open review items (pending, in review, escalated) by tenant',
      labelNames: ['tenant'] as const,
      async collect() {
        this.reset();
        for (const b of await read()) this.set({ tenant: b.tenantId }, b.open);
      },
    }),
    oldest: metrics.gauge({
      name: 'parley_moderation_queue_oldest_seconds',
      help: 'Age of the oldest open review item by tenant',
      labelNames: ['tenant'] as const,
      async collect() {
        this.reset();
        for (const b of await read()) this.set({ tenant: b.tenantId }, Math.round(b.oldestSeconds));
      },
    }),
  };
}

export type ModerationMetrics = ReturnType<typeof moderationMetrics>;

/**
 * The rule loop: every `evaluateEveryMs`, a snapshot of the gateway's metrics (and, for the rules
 * that need them, outbox counts from the database) goes through the `RuleEvaluator`; its decisions
 * raise or resolve alerts, then the sink retries what Slack has not shown yet. One round at a time.
 */
import type { PluginContext } from 'parley';
import type { SlackMetrics } from './metrics.js';
import { RuleEvaluator, flattenMetrics, needsCounts, ruleName, type Snapshot } from './rules.js';
import type { SlackAlertSink } from './sink.js';
import type { SlackAlertsOptions } from './types.js';

export function createRuleLoop(deps: { ctx: Pick<PluginContext, 'db' | 'log' | 'metrics' | 'alerts'>; options: Pick<SlackAlertsOptions, 'rules' | 'evaluateEveryMs'>; sink: SlackAlertSink | undefined; metrics: SlackMetrics; now: () => number }) {
  const { ctx, options, sink } = deps;
  const evaluator = new RuleEvaluator(options.rules);
  const countRules = options.rules.filter(needsCounts);

  async function snapshot(): Promise<Snapshot> {
    const samples = flattenMetrics(await ctx.metrics.registry.getMetricsAsJSON());
    const counts: Snapshot['counts'] = {};
    for (const rule of countRules) {
      // Read-only queries on the kernel's outbox: global across instances, unlike in-process metrics.
      const { rows } =
        rule.kind === 'outbox-backlog'
          ? await ctx.db.query<{ tenant_id: string; n: number }>(
              `SELECT tenant_id, count(*)::int AS n FROM parley_outbox WHERE status IN ('pending', 'retrying', 'sending') AND created_at < now() - $1 * interval '1 millisecond' GROUP BY tenant_id`,
              [rule.olderThanMs],
            )
          : await ctx.db.query<{ tenant_id: string; n: number }>(
              `SELECT tenant_id, count(*)::int AS n FROM parley_outbox WHERE status = 'dead' AND updated_at > now() - $1 * interval '1 millisecond' GROUP BY tenant_id`,
              [rule.windowMs],
            );
      counts[ruleName(rule)] = Object.fromEntries(rows.map((r) => [r.tenant_id, r.n]));
    }
    return { at: deps.now(), samples, counts };
  }

  let ticking: Promise<void> | undefined;
  async function tick(): Promise<void> {
    try {
      for (const decision of evaluator.evaluate(await snapshot())) {
        if (decision.action === 'raise') ctx.alerts.raise(decision.alert);
        else ctx.alerts.resolve(decision.key, decision.tenantId);
      }
      deps.metrics.evaluations.inc({ result: 'ok' });
    } catch (error) {
      deps.metrics.evaluations.inc({ result: 'error' });
      ctx.log.warn({ err: error }, 'alert rule evaluation failed; will try again');
    }
    await sink?.reconcile().catch((error: unknown) => ctx.log.warn({ err: error }, 'Slack alert reconcile failed'));
  }

  let timer: NodeJS.Timeout | undefined;
  return {
    start(): void {
      timer = setInterval(() => {
        if (ticking) return;
        ticking = tick().finally(() => (ticking = undefined));
      }, options.evaluateEveryMs);
      timer.unref();
    },
    /** Stops the timer and waits for the round in progress. */
    async stop(): Promise<void> {
      clearInterval(timer);
      await ticking;
    },
  };
}

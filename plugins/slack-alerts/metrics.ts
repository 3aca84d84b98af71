/** The plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';

export function slackMetrics(metrics: PluginMetrics) {
  return {
    deliveries: metrics.counter({ name: 'parley_slack_alerts_deliveries_total', help: 'Slack alert deliveries by result (posted, updated, escalated, reminded, suppressed by the quiet period, failed)', labelNames: ['result'] as const }),
    acks: metrics.counter({ name: 'parley_slack_alerts_acknowledged_total', help: 'Alerts acknowledged from Slack' }),
    evaluations: metrics.counter({ name: 'parley_slack_alerts_rule_evaluations_total', help: 'Rule evaluation rounds by result', labelNames: ['result'] as const }),
  };
}

export type SlackMetrics = ReturnType<typeof slackMetrics>;

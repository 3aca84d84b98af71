/**
 * `slack-alerts`: Slack as a sink of the kernel's alerts, rules over Parley's own metrics, and the
 * Acknowledge button (an interactive request Bolt verifies) at `POST /slack/actions`.
 */
import { randomUUID } from 'node:crypto';
import { definePlugin, type PluginContext } from 'parley';
import { alertDataSubjects } from './data-subjects.js';
import { boltLogger, createSlackClient } from './client.js';
import { slackMetrics, type SlackMetrics } from './metrics.js';
import { alertRouting } from './routing.js';
import { createRuleLoop } from './rule-loop.js';
import { SlackAlertSink, migrations } from './sink.js';
import { optionsSchema, settingsSchema, slackConnection, type ConnectedOptions, type SlackAlertsOptions, type SlackAlertsSettings } from './types.js';
import { createActionsWebhook } from './webhook.js';

export { renderAlert, ACK_ACTION_ID } from './blocks.js';
export { RuleEvaluator } from './rules.js';
export type { SlackAlertsOptions, SlackAlertsSettings, Rule } from './types.js';
export { ACTIONS_PATH } from './webhook.js';

export interface SlackAlertsDeps {
  /** Clock for rule windows (milliseconds since the epoch). */
  now?: () => number;
}

/**
 * Builds the plugin. The default export is `createSlackAlerts()`.
 * @example
 * // parley.yaml
 * // plugins:
 * //   - name: slack-alerts
 * //     options: { token: '${SLACK_BOT_TOKEN}', signingSecret: '${SLACK_SIGNING_SECRET}', defaultChannel: C0OPS }
 */
export function createSlackAlerts(deps: SlackAlertsDeps = {}) {
  const now = deps.now ?? (() => Date.now());
  return definePlugin({
    name: 'slack-alerts',
    kind: 'capability',
    description: 'Posts alerts to Slack (Block Kit, quiet periods, resolve in place, Acknowledge button) and raises alerts from rules over the gateway metrics.',
    optionsSchema,
    settingsSchema,
    setup(ctx) {
      const { options, log } = ctx;
      const metrics = slackMetrics(ctx.metrics);
      ctx.migrations(migrations);
      ctx.dataSubjects(alertDataSubjects(ctx.db));
      const slack = slackConnection(options);
      if (!slack.on) log.warn({ reason: slack.reason }, 'slack-alerts: Slack is off; alerts and rule alerts go to the log only');
      const sink = slack.on ? connectSlack(ctx, slack.options, metrics) : undefined;
      const rules = createRuleLoop({ ctx, options, sink, metrics, now });

      ctx.health({
        name: 'slack-alerts',
        // Slack being unreachable must not take the gateway out of a load balancer.
        critical: false,
        async check() {
          if (!sink) return { ok: true, detail: `off: ${slack.on ? '' : slack.reason}`, info: { slack: 'off', rules: options.rules.length } };
          const { unsynced, lastError } = await sink.backlog();
          return { ok: unsynced === 0, ...(lastError ? { detail: `Slack: ${lastError}` } : {}), info: { unsynced, rules: options.rules.length } };
        },
      });

      return {
        start: rules.start,
        async stop() {
          await rules.stop();
          await sink?.idle();
        },
      };
    },
  });
}

/** Slack as an alert sink, the reminder schedule and the Acknowledge route: only with credentials. */
function connectSlack(ctx: PluginContext<SlackAlertsOptions, SlackAlertsSettings>, options: ConnectedOptions, metrics: SlackMetrics): SlackAlertSink {
  const slackLog = boltLogger(ctx.log.child({ component: 'slack' }));
  const sink = new SlackAlertSink({
    db: ctx.db,
    web: createSlackClient(options, slackLog),
    log: ctx.log,
    instanceId: randomUUID(),
    minSeverity: options.minSeverity,
    ...alertRouting(options, (tenantId) => ctx.settingsFor(tenantId)),
    observe: (result) => metrics.deliveries.inc({ result }),
  });
  ctx.alerts.sink({ name: 'slack', deliver: (event) => sink.deliver(event) });
  if (options.remindUnacknowledged) {
    ctx.schedule({ name: 'slack-alerts-remind', cron: options.remindUnacknowledged.cron, timezone: options.remindUnacknowledged.timezone, process: () => sink.remindUnacknowledged() });
  }
  const actions = createActionsWebhook({ options, slackLog, log: ctx.log, sink, metrics, background: ctx.background });
  ctx.routes(actions.routes);
  return sink;
}

export default createSlackAlerts();

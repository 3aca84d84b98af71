/**
 * `slack-alerts`: Slack as a sink of the kernel's alerts, rules over Parley's own metrics, and the
 * Acknowledge button (an interactive request Bolt verifies) at `POST /slack/actions`.
 */
import { randomUUID } from 'node:crypto';
import { definePlugin } from 'parley';
import { alertDataSubjects } from './data-subjects.js';
import { boltLogger, createSlackClient } from './client.js';
import { slackMetrics } from './metrics.js';
import { alertRouting } from './routing.js';
import { createRuleLoop } from './rule-loop.js';
import { SlackAlertSink, migrations } from './sink.js';
import { optionsSchema, settingsSchema } from './types.js';
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
      const slackLog = boltLogger(log.child({ component: 'slack' }));
      const metrics = slackMetrics(ctx.metrics);
      const sink = new SlackAlertSink({
        db: ctx.db,
        web: createSlackClient(options, slackLog),
        log,
        instanceId: randomUUID(),
        minSeverity: options.minSeverity,
        ...alertRouting(options, (tenantId) => ctx.settingsFor(tenantId)),
        observe: (result) => metrics.deliveries.inc({ result }),
      });
      ctx.migrations(migrations);
      ctx.dataSubjects(alertDataSubjects(ctx.db));
      ctx.alerts.sink({ name: 'slack', deliver: (event) => sink.deliver(event) });
      if (options.remindUnacknowledged) {
        ctx.schedule({ name: 'slack-alerts-remind', cron: options.remindUnacknowledged.cron, timezone: options.remindUnacknowledged.timezone, process: () => sink.remindUnacknowledged() });
      }

      const actions = createActionsWebhook({ options, slackLog, log, sink, metrics, background: ctx.background });
      ctx.routes(actions.routes);
      const rules = createRuleLoop({ ctx, options, sink, metrics, now });

      ctx.health({
        name: 'slack-alerts',
        // Slack being unreachable must not take the gateway out of a load balancer.
        critical: false,
        async check() {
          const { unsynced, lastError } = await sink.backlog();
          return { ok: unsynced === 0, ...(lastError ? { detail: `Slack: ${lastError}` } : {}), info: { unsynced, rules: options.rules.length } };
        },
      });

      return {
        start: rules.start,
        async stop() {
          await rules.stop();
          await sink.idle();
        },
      };
    },
  });
}

export default createSlackAlerts();

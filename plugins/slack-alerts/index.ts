/**
 * `slack-alerts`: Slack as a sink of the kernel's alerts, rules over Parley's own metrics, and the
 * Acknowledge button (an interactive request Bolt verifies) at `POST /slack/actions`.
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import { App, ExpressReceiver, LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from 'pino';
import { definePlugin } from '../../core/plugin.js';
import { ACK_ACTION_ID, LINK_ACTION_ID } from './blocks.js';
import { RuleEvaluator, flattenMetrics, needsCounts, ruleName, type Snapshot } from './rules.js';
import { SlackAlertSink, migrations } from './sink.js';
import { optionsSchema, settingsSchema } from './types.js';

export { renderAlert, ACK_ACTION_ID } from './blocks.js';
export { RuleEvaluator } from './rules.js';
export type { SlackAlertsOptions, SlackAlertsSettings, Rule } from './types.js';

/** Where Slack sends interactivity requests (set it as the app's Request URL). */
export const ACTIONS_PATH = '/slack/actions';

export interface SlackAlertsDeps {
  /** Clock for rule windows (milliseconds since the epoch). */
  now?: () => number;
}

/** Adapts pino to the logger interface Bolt and the Web API client expect. */
function boltLogger(log: Logger): BoltLogger {
  const line = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.debug(line(msg)),
    info: (...msg: unknown[]) => log.info(line(msg)),
    warn: (...msg: unknown[]) => log.warn(line(msg)),
    error: (...msg: unknown[]) => log.error(line(msg)),
    setLevel: () => undefined,
    getLevel: () => LogLevel.INFO,
    setName: () => undefined,
  };
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
      const { options } = ctx;
      const instanceId = randomUUID();
      const log = ctx.log;
      const slackLog = boltLogger(log.child({ component: 'slack' }));
      const web = new webApi.WebClient(options.token, {
        slackApiUrl: options.apiUrl,
        logger: slackLog,
        rejectRateLimitedCalls: false,
        retryConfig: { retries: options.retries, factor: 2, minTimeout: 500, maxTimeout: 30_000, randomize: true },
        timeout: 15_000,
      });

      const deliveries = ctx.metrics.counter({ name: 'parley_slack_alerts_deliveries_total', help: 'Slack alert deliveries by result (posted, updated, escalated, reminded, suppressed by the quiet period, failed)', labelNames: ['result'] as const });
      const acks = ctx.metrics.counter({ name: 'parley_slack_alerts_acknowledged_total', help: 'Alerts acknowledged from Slack' });
      const evaluations = ctx.metrics.counter({ name: 'parley_slack_alerts_rule_evaluations_total', help: 'Rule evaluation rounds by result', labelNames: ['result'] as const });

      const quietByRule = new Map(options.rules.map((r) => [`rule.${ruleName(r)}`, r.quietPeriodMs ?? options.quietPeriodMs]));
      const quietPeriodFor = (key: string) => {
        for (const [prefix, ms] of quietByRule) if (key === prefix || key.startsWith(`${prefix}.`)) return ms;
        return options.quietPeriodMs;
      };

      const sink = new SlackAlertSink({
        db: ctx.db,
        web,
        log,
        instanceId,
        minSeverity: options.minSeverity,
        channelFor: (tenantId) => (tenantId ? (ctx.settingsFor(tenantId)?.channel ?? options.tenantChannels[tenantId]) : undefined) ?? options.defaultChannel,
        quietPeriodFor,
        renderOptionsFor: (tenantId) => {
          const mention = (tenantId ? ctx.settingsFor(tenantId)?.criticalMention : undefined) ?? options.criticalMention;
          return { ...(options.dashboardUrl ? { dashboardUrl: options.dashboardUrl } : {}), ...(mention ? { mention } : {}) };
        },
        observe: (result) => deliveries.inc({ result }),
      });
      ctx.migrations(migrations);
      ctx.alerts.sink({ name: 'slack', deliver: (event) => sink.deliver(event) });
      if (options.remindUnacknowledged) {
        ctx.schedule({ name: 'slack-alerts-remind', cron: options.remindUnacknowledged.cron, timezone: options.remindUnacknowledged.timezone, process: () => sink.remindUnacknowledged() });
      }

      // Bolt verifies the request signature (v0, 5-minute timestamp window) from the raw body the
      // kernel keeps in `req.rawBody`, and answers 401 when it does not match.
      const slackRouter = express.Router();
      const receiver = new ExpressReceiver({
        signingSecret: options.signingSecret,
        router: slackRouter,
        endpoints: ACTIONS_PATH,
        processBeforeResponse: true,
        logger: slackLog,
      });
      const bolt = new App({
        token: options.token,
        receiver,
        logger: slackLog,
        convoStore: false,
        tokenVerificationEnabled: false,
        clientOptions: { slackApiUrl: options.apiUrl, logger: slackLog },
      });
      bolt.action({ action_id: ACK_ACTION_ID, type: 'block_actions' }, async ({ ack, action, body }) => {
        const alertId = action.type === 'button' ? action.value : undefined;
        if (!alertId) {
          await ack();
          return;
        }
        const container = body.container as { channel_id?: string; message_ts?: string } | undefined;
        // Recorded before Slack gets its answer; the message is edited after, within Slack's 3 s.
        const known = await sink.acknowledge({
          alertId,
          userId: body.user.id,
          ...(body.user.name ?? body.user.username ? { userName: body.user.name ?? body.user.username } : {}),
          ...(container?.channel_id ? { channel: container.channel_id } : {}),
          ...(container?.message_ts ? { ts: container.message_ts } : {}),
        });
        await ack();
        if (!known) return;
        acks.inc();
        ctx.background(
          sink.sync(alertId).catch((error: unknown) => log.warn({ err: error, alert: alertId }, 'could not show the acknowledgement in Slack; will retry')),
          'show the acknowledgement in Slack',
        );
      });
      bolt.action({ action_id: LINK_ACTION_ID, type: 'block_actions' }, async ({ ack }) => {
        await ack();
      });
      bolt.error(async (error) => {
        log.error({ err: error }, 'Slack interaction failed');
      });
      ctx.routes((router) => {
        router.use(slackRouter);
      });

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
        return { at: now(), samples, counts };
      }

      let ticking: Promise<void> | undefined;
      async function tick(): Promise<void> {
        try {
          for (const decision of evaluator.evaluate(await snapshot())) {
            if (decision.action === 'raise') ctx.alerts.raise(decision.alert);
            else ctx.alerts.resolve(decision.key, decision.tenantId);
          }
          evaluations.inc({ result: 'ok' });
        } catch (error) {
          evaluations.inc({ result: 'error' });
          log.warn({ err: error }, 'alert rule evaluation failed; will try again');
        }
        await sink.reconcile().catch((error: unknown) => log.warn({ err: error }, 'Slack alert reconcile failed'));
      }

      ctx.health({
        name: 'slack-alerts',
        // Slack being unreachable must not take the gateway out of a load balancer.
        critical: false,
        async check() {
          const { unsynced, lastError } = await sink.backlog();
          return { ok: unsynced === 0, ...(lastError ? { detail: `Slack: ${lastError}` } : {}), info: { unsynced, rules: options.rules.length } };
        },
      });

      let timer: NodeJS.Timeout | undefined;
      return {
        start() {
          timer = setInterval(() => {
            if (ticking) return;
            ticking = tick().finally(() => (ticking = undefined));
          }, options.evaluateEveryMs);
          timer.unref();
        },
        async stop() {
          clearInterval(timer);
          await ticking;
          await sink.idle();
        },
      };
    },
  });
}

export default createSlackAlerts();

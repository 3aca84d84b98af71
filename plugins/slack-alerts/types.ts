/** Configuration of `slack-alerts`: the Slack app, where alerts go, and the rules over Parley's metrics. */
import { z } from 'zod';

export const severities = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof severities)[number];
export const severityRank: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

const ruleBase = {
  /** Names the alert key (`rule.<name>`); defaults to the kind. Two rules of one kind need names. */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/).optional(),
  severity: z.enum(severities).default('warning'),
  /** Overrides the plugin's quiet period for this rule's alerts. */
  quietPeriodMs: z.number().int().min(0).optional(),
};

const windowMs = z.number().int().min(1_000).default(300_000);

/** Share of inbound messages whose pipeline failed, per tenant, over a sliding window. */
export const errorRateRule = z.object({ ...ruleBase, kind: z.literal('error-rate'), windowMs, threshold: z.number().gt(0).max(1).default(0.05), minMessages: z.number().int().min(1).default(20) });
/** p95 of the whole pipeline (or of one stage) per tenant over a sliding window. */
export const latencyRule = z.object({ ...ruleBase, kind: z.literal('p95-latency'), windowMs, thresholdMs: z.number().positive().default(5_000), stage: z.string().optional(), minMessages: z.number().int().min(1).default(20) });
/** Outbox items still waiting to be sent after `olderThanMs`, per tenant. */
export const backlogRule = z.object({ ...ruleBase, kind: z.literal('outbox-backlog'), threshold: z.number().int().min(1).default(100), olderThanMs: z.number().int().min(0).default(60_000) });
/** Outbox items that became dead letters within the window, per tenant. */
export const deadLetterRule = z.object({ ...ruleBase, kind: z.literal('dead-letters'), windowMs: z.number().int().min(1_000).default(3_600_000), threshold: z.number().int().min(1).default(1) });
/**
 * A channel is down for a tenant when its sends all fail within the window (at least `minFailures`,
 * none sent), or when a channel session gauge (`parley_*_session_state`, e.g. WhatsApp Web) has
 * been out of `ready` for `sessionDownForMs`.
 */
export const channelDownRule = z.object({ ...ruleBase, kind: z.literal('channel-down'), windowMs, minFailures: z.number().int().min(1).default(5), sessionDownForMs: z.number().int().min(0).default(300_000) });
/** Webhook signature failures (forged or misconfigured callers) over the window, per tenant when known. */
export const signatureFailuresRule = z.object({
  ...ruleBase,
  kind: z.literal('signature-failures'),
  windowMs,
  threshold: z.number().int().min(1).default(20),
  metrics: z.array(z.string().regex(/^parley_[a-z0-9_]+$/)).default(['parley_twilio_signature_failures_total', 'parley_whatsapp_cloud_signature_failures_total']),
});

export const ruleSchema = z.discriminatedUnion('kind', [errorRateRule, latencyRule, backlogRule, deadLetterRule, channelDownRule, signatureFailuresRule]);
export type Rule = z.output<typeof ruleSchema>;

/** Rules used when the configuration lists none. */
export const DEFAULT_RULES: z.input<typeof ruleSchema>[] = [
  { kind: 'error-rate', severity: 'critical' },
  { kind: 'p95-latency', severity: 'warning' },
  { kind: 'outbox-backlog', severity: 'warning' },
  { kind: 'dead-letters', severity: 'warning' },
  { kind: 'channel-down', severity: 'critical' },
  { kind: 'signature-failures', severity: 'warning' },
];

const channelId = z.string().min(1).max(80);

export const optionsSchema = z
  .object({
    /**
     * Bot token (`xoxb-...`) with the `chat:write` scope. Missing (with `signingSecret` or
     * `defaultChannel`): Slack is off, said in the log and `/readyz`; the rules still raise alerts to the log.
     */
    token: z.string().min(1).optional(),
    /** Signs the interactivity requests (the Acknowledge button). */
    signingSecret: z.string().min(1).optional(),
    /** Web API root; tests point it at a local fake. */
    apiUrl: z.string().url().default('https://slack.com/api/'),
    /** Where alerts go when their tenant has no channel of its own, and alerts without a tenant. */
    defaultChannel: channelId.optional(),
    /** Per-tenant channels (a tenant's own `slack-alerts.channel` setting wins). */
    tenantChannels: z.record(z.string(), channelId).default({}),
    /** The same alert key is posted at most once per quiet period; later firings edit that message. */
    quietPeriodMs: z.number().int().min(0).default(15 * 60_000),
    /** Alerts below this severity stay in the log. */
    minSeverity: z.enum(severities).default('warning'),
    /** Link on every alert; `{tenant}` and `{key}` are replaced. */
    dashboardUrl: z.string().url().optional(),
    /** Prepended to critical alerts, e.g. `<!here>` or `<!subteam^S0123>`. */
    criticalMention: z.string().optional(),
    /** How often rules are evaluated and undelivered Slack updates retried. */
    evaluateEveryMs: z.number().int().min(50).default(30_000),
    /**
     * Reminds, in its thread, of every alert still firing that nobody acknowledged, on this cron
     * schedule (`0 9 * * 1-5`: weekdays at 09:00 in `timezone`). Runs once per tick across instances.
     */
    remindUnacknowledged: z.object({ cron: z.string().min(1), timezone: z.string().default('UTC') }).optional(),
    /** Web API retries (429 answers are retried after their Retry-After). */
    retries: z.number().int().min(0).max(10).default(5),
    rules: z.array(ruleSchema).prefault(DEFAULT_RULES),
  })
  .superRefine((o, ctx) => {
    const names = new Set<string>();
    o.rules.forEach((r, i) => {
      const name = r.name ?? r.kind;
      if (names.has(name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `two rules are named "${name}": give one a distinct name` });
      names.add(name);
    });
  });
export type SlackAlertsOptions = z.output<typeof optionsSchema>;
/** The options once Slack's credentials and channel are known to be there. */
export type ConnectedOptions = SlackAlertsOptions & { token: string; signingSecret: string; defaultChannel: string };

/** Slack's credentials and default channel, or why Slack stays off (the rules still raise alerts to the log). */
export function slackConnection(options: SlackAlertsOptions): { on: true; options: ConnectedOptions } | { on: false; reason: string } {
  const { token, signingSecret, defaultChannel } = options;
  if (token && signingSecret && defaultChannel) return { on: true, options: { ...options, token, signingSecret, defaultChannel } };
  const missing = [!token && 'token (SLACK_BOT_TOKEN)', !signingSecret && 'signingSecret (SLACK_SIGNING_SECRET)', !defaultChannel && 'defaultChannel'].filter(Boolean);
  return { on: false, reason: `missing ${missing.join(', ')}` };
}

export const settingsSchema = z.object({
  /** This tenant's Slack channel id (`C0123...`). */
  channel: channelId.optional(),
  /** Prepended to this tenant's critical alerts. */
  criticalMention: z.string().optional(),
});
export type SlackAlertsSettings = z.output<typeof settingsSchema>;

/**
 * The plugin contract. A plugin is a plain typed object made by `definePlugin`; its `setup` receives a
 * `PluginContext` and registers what the plugin brings. The kernel validates names, dependencies and
 * settings at boot and wraps every error a plugin throws with the plugin's name.
 */
import type { Router, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { z } from 'zod';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InboundDraft, InboundMessage, MediaAttachment, OutboundMessage, ReplyDraft, HistoryEntry } from './message.js';
import type { TenantInfo } from './tenancy.js';
import type { ServerResponse } from 'node:http';
import type { InlineOutcome, ReceiveOptions, ReceiveResult } from './gateway-types.js';
import type { AlertInput } from './alerts.js';
import type { ParkWebhook } from './parking.js';
import type { AiService } from './ai/types.js';
import type { RouteContract } from './http/contract.js';

export type PluginKind = 'channel' | 'capability';

/** A typed tsyringe injection token (a symbol that remembers the type it stands for). */
export type Token<T> = symbol & { readonly __type?: T };

/**
 * Makes a typed token for `ctx.provide` / `ctx.inject`. The key names the token: two calls with one key
 * (in two plugins, or two copies of Parley) make the same token, so a plugin can inject a dependency's
 * service without importing its files. Use `<plugin>.<service>` keys.
 */
export function token<T>(key: string): Token<T> {
  return Symbol.for(key) as Token<T>;
}

/** A schema migration: applied once per database, in id order, inside a transaction. */
export interface Migration {
  /** Sortable, unique within the plugin: `001_create_consent`. */
  id: string;
  sql: string;
}

// ---- pipeline -------------------------------------------------------------------------------------

/**
 * What a stage did: `passed` (called `next()`, no reply), `replied` (queued a reply), `handled` (returned
 * without `next()`, a reply or `stop`: the pipeline ended there), `stopped` (`stop(reason)`), `held`
 * (`hold(reason)`: the message waits for `gateway.resume`), `failed` (threw).
 */
export type StageOutcome = 'passed' | 'replied' | 'handled' | 'stopped' | 'held' | 'failed';

/** Who answers a conversation: the tenant's bot stages, or a person (the bot stages are skipped meanwhile). */
export type HandoffState = 'bot' | 'human';

/** A change of a conversation's handoff state asked for by a stage. */
export interface HandoffChange {
  state: HandoffState;
  reason: string;
  stage: string;
}

export interface StageRecord {
  stage: string;
  plugin: string;
  outcome: StageOutcome;
  /** Time spent in this stage itself, excluding later stages. */
  selfMs: number;
  reason?: string;
  error?: string;
}

/** What every stage receives. `settings` is the tenant's settings for the stage's plugin. */
export interface StageContext<S = unknown> {
  readonly message: InboundMessage;
  readonly tenant: TenantInfo;
  readonly settings: S;
  readonly log: Logger;
  readonly db: Pool;
  /** Earlier messages of this conversation, oldest first (loaded on first call). */
  history(limit?: number): Promise<HistoryEntry[]>;
  /**
   * Whether this run still holds the message. A message whose run outlives the recovery window (or
   * whose instance looks dead) is run again, and only the newest run may finish it: the older run's
   * replies are discarded. A stage with a side effect outside the reply (a billing meter, a reminder)
   * should key it by `message.id`, so a re-run repeats nothing, or ask this right before acting.
   * @example
   * if (await stage.isCurrentRun()) await meters.record({ key: stage.message.id, units: 1 });
   */
  isCurrentRun(): Promise<boolean>;
  /**
   * Queue a reply. Stored in the outbox when the pipeline ends; never sent by the stage itself. A reply
   * to an opted-out sender is recorded as `blocked`, unless `options.consentNotice` is true (the one
   * confirmation of an opt-out or opt-in that carriers require).
   */
  reply(reply: ReplyDraft | string): void;
  /** Attach a fact for later stages and for the message record (`moderation.verdict`, ...). */
  annotate(key: string, value: unknown): void;
  readonly annotations: Readonly<Record<string, unknown>>;
  readonly replies: readonly ReplyDraft[];
  /** End the pipeline here: later stages do not run; replies queued so far are still sent. */
  stop(reason: string): void;
  readonly stopped: { reason: string } | null;
  /**
   * End this run here and keep the message waiting: it is finished with status `held`, the reason and
   * this stage's name; replies queued so far are still sent (a "we are looking at it" notice). Later
   * stages run only when someone calls `ctx.gateway.resume(tenantId, message.id)`, which continues the
   * pipeline from the stage after this one, once, under the message's claim. A re-run of the message
   * (recovery) runs this stage again, so decide from state keyed by `message.id`.
   * @example
   * const item = await queue.findOrCreate(stage.message.id);
   * if (item.status === 'approved') return next();
   * stage.reply('Thanks, a person will look at your message.');
   * return stage.hold('moderation: held for review');
   */
  hold(reason: string): void;
  readonly held: { reason: string } | null;
  /** Raise an operations alert (Slack, log...). */
  alert(alert: Omit<AlertInput, 'tenantId' | 'source'>): void;
  /** The conversation's handoff state when this message arrived. */
  readonly conversation: { readonly handoff: HandoffState };
  /**
   * Hand the conversation to a person (`human`: from the next message on, only channel first stages
   * and stages with `runsDuringHandoff` run) or back to the bot. Stored when the message finishes,
   * with the reason; the last call wins.
   * @example
   * if (/\b(agent|human|person)\b/i.test(stage.message.text)) {
   *   stage.reply('Connecting you with a member of our team.');
   *   stage.handoff('human', 'asked for a person');
   *   return stage.stop('handed off');
   * }
   */
  handoff(state: HandoffState, reason: string): void;
}

export type Next = () => Promise<void>;

/**
 * A named pipeline stage. Runs onion-style: call `await next()` to pass the message to the later
 * stages (code after it sees their replies). Returning without calling `next()` ends the pipeline
 * there, as in Koa or Hono: the message is processed with the replies queued so far. `stop(reason)`
 * ends it too, with a recorded reason. Throwing fails the message (the tenant's fallback reply is sent).
 * @example
 * ctx.stage({
 *   name: 'greeter',
 *   async handle(stage, next) {
 *     if ((await stage.history(1)).length === 0) stage.reply('Welcome!');
 *     await next(); // let later stages answer too
 *   },
 * });
 */
export interface StageDefinition<S = unknown> {
  name: string;
  /**
   * Run while a person has the conversation (`handoff` is `human`) too. Default false: bot stages
   * (answers, keyword replies) stay quiet; screening stages (consent, crisis, moderation, cost) say true.
   */
  runsDuringHandoff?: boolean;
  handle(ctx: StageContext<S>, next: Next): Promise<void> | void;
}

// ---- inbound filters ------------------------------------------------------------------------------

/** Where an inbound filter's text comes from. */
export type InboundFilterField = 'text' | 'raw' | 'attributes' | 'media' | 'parked';

/**
 * Rewrites inbound text before the kernel stores anything of the message (a redaction of a card
 * number). The kernel applies it to the message text and to every string of the provider payload
 * (`raw`), the attributes and the media captions, and to the payload of a webhook it parks for the
 * tenant, so the value it removes reaches no table, job payload or log. It runs before every stage,
 * crisis-guard included: stages see the filtered text. Filters run in plugin order.
 *
 * It must be pure, synchronous and cheap (it runs on every string of every webhook): return the new
 * text, or undefined to keep it. A filter that throws fails the message (`PARLEY_INBOUND_FILTER_FAILED`,
 * 500, so the provider retries): unfiltered text is never stored because a filter failed. A message
 * whose text a filter changed carries `attributes.filteredBy: [<filter name>, ...]`.
 * @example
 * ctx.inboundFilter({
 *   name: 'mask-cards',
 *   transform: (text, { tenant }) => (ctx.settingsFor(tenant.id) ? text.replace(/\b(?:\d[ -]?){13,19}\b/g, '[card]') : undefined),
 * });
 */
export interface InboundFilter {
  name: string;
  transform(text: string, context: { tenant: TenantInfo; channel: string; field: InboundFilterField }): string | undefined | void;
  /**
   * The same for a payload no tenant owns: a signed webhook the kernel parks before it knows the tenant
   * (a number or WhatsApp phone number id no tenant has, a batch spanning tenants). Without it, such a
   * payload is stored with its addresses hashed and nothing else changed. Same rules as `transform`.
   */
  unattributed?(text: string, context: { channel: string }): string | undefined | void;
}

/** What `gateway.resume` did. */
export type ResumeResult =
  /** The message was not held (already resumed, never held, unknown): nothing ran. */
  | { resumed: false; status: string | null }
  /** It continued (`afterStage` given) or was closed (`stop`). */
  | { resumed: true; result: ReceiveResult };

// ---- reply stages ----------------------------------------------------------------------------------

/** Why an outgoing message was not sent: `blocked` for good, `held` for someone to review. */
export interface ReplyVerdict {
  status: 'blocked' | 'held';
  reason: string;
  /** The reply stage that decided. */
  stage: string;
}

/**
 * One outgoing message on its way to the outbox, as a reply stage sees it: a reply to an inbound
 * message (`inbound` is set) or a send that is not a reply (`ctx.gateway.enqueueOutbound`, scheduled
 * sends; `inbound` is null). Consent is checked by the kernel after every reply stage.
 */
export interface ReplyStageContext<S = unknown> {
  readonly tenant: TenantInfo;
  readonly channel: string;
  readonly to: string;
  readonly from: string;
  /** The text as it stands now: earlier reply stages may have rewritten it. */
  readonly text: string;
  readonly media: readonly MediaAttachment[];
  readonly options: Readonly<Record<string, unknown>>;
  /** The message this answers, or null for a send that is not a reply. */
  readonly inbound: InboundMessage | null;
  /**
   * Stable across re-runs of the same outgoing message (`reply:<inbound id>:<n>` or `out:<outbox id>`):
   * use it as the `ref` of a usage record so a recovered run meters nothing twice.
   */
  readonly key: string;
  readonly settings: S;
  readonly log: Logger;
  /** Replace the text that will be sent (a redaction, a signature). Inline replies carry the new text. */
  rewrite(text: string): void;
  /** Attach a fact, kept on the outbox item under `details.annotations`. */
  annotate(key: string, value: unknown): void;
  readonly annotations: Readonly<Record<string, unknown>>;
  /** Never send it: the item is recorded as `blocked` with this reason. Later reply stages do not run. */
  block(reason: string): void;
  /** Keep it for review: the item is recorded as `held` with this reason and not sent. Later reply stages do not run. */
  hold(reason: string): void;
  readonly verdict: ReplyVerdict | null;
}

/**
 * A stage that runs on every outgoing message of the tenants that list it in `replyPipeline`, before
 * the message is written to the outbox. Runs onion-style like a pipeline stage; one that returns
 * without calling `next` passes on unless it blocked or held. One that throws holds the message
 * (fail closed: unscreened text is never sent because a screen failed).
 * @example
 * ctx.replyStage({
 *   name: 'signature',
 *   handle(out, next) {
 *     if (out.inbound) out.rewrite(`${out.text}\n-- ${out.tenant.name}`);
 *     return next();
 *   },
 * });
 */
export interface ReplyStageDefinition<S = unknown> {
  name: string;
  handle(out: ReplyStageContext<S>, next: Next): Promise<void> | void;
}

// ---- channels and the outbox -----------------------------------------------------------------------

export interface SendResult {
  providerMessageId: string;
  /** Provider status right after acceptance (Twilio: queued/accepted). Defaults to `sent`. */
  status?: 'sent' | 'delivered';
  /** Facts worth keeping (segments, price estimate...). */
  details?: Record<string, unknown>;
}

/** How a channel delivers outbox items. Throw `SendError` to choose retry or dead letter. */
export interface ChannelSender<S = unknown> {
  channel: string;
  send(message: OutboundMessage, settings: S): Promise<SendResult>;
}

// ---- jobs ----------------------------------------------------------------------------------------

export interface JobDefinition<D = unknown> {
  /** Queue name, unique in the gateway (letters, digits, `-`). */
  name: string;
  /** Job payloads hold ids, never personal data: Redis keeps them in clear. */
  process(data: D, job: { id: string | undefined; attemptsMade: number; name: string; scheduledAt?: Date }): Promise<unknown>;
  concurrency?: number;
  attempts?: number;
  backoffMs?: number;
}

/**
 * A recurring job: BullMQ's job scheduler runs one job per tick across every instance sharing the
 * job backend, and keeps the schedule in the backend, so it survives restarts. The pattern and time
 * zone are checked at setup (`PARLEY_SCHEDULE_INVALID`). A tick's job payload is empty: read what it
 * works on from the database.
 * @example
 * ctx.schedule({
 *   name: 'daily-digest',
 *   cron: '0 9 * * 1-5',          // 09:00 on weekdays; six fields put seconds first
 *   timezone: 'Europe/Paris',
 *   async process(tick) { await postDigest(tick.scheduledAt); },
 * });
 */
export interface ScheduleDefinition {
  /** Unique among jobs and schedules in the gateway (lower-case letters, digits, `-`). */
  name: string;
  /** Cron pattern: five fields, or six with seconds first (`*\/10 * * * * *`). */
  cron: string;
  /** IANA time zone the pattern is read in (default `UTC`). */
  timezone?: string;
  process(tick: { scheduledAt: Date; jobId: string | undefined; attemptsMade: number }): Promise<unknown>;
  /** Attempts per tick (default 3) and the base of the exponential backoff between them. */
  attempts?: number;
  backoffMs?: number;
}

export interface JobScheduler {
  add<D>(queue: string, data: D, opts?: { jobId?: string; delayMs?: number; attempts?: number; backoffMs?: number }): Promise<void>;
}

// ---- usage ---------------------------------------------------------------------------------------

/** One cost event of one tenant. Never personal data: no addresses, no message bodies. */
export interface UsageRecord {
  tenantId: string;
  /** What was used, dotted lower-case: `sms.segments`, `model.tokens.output`, `voice.minutes`. */
  kind: string;
  quantity: number;
  /** `segment`, `token`, `minute`, `message`... Summaries never add quantities of different units. */
  unit: string;
  /** What it cost, when known. */
  costUsd?: number;
  /**
   * What it was for (a message id, an outbox id, `ReplyStageContext.key`). Unique per tenant and kind:
   * recording the same ref again records nothing, so a re-run keyed by message id counts once.
   */
  ref?: string;
  /** When it happened (default now). */
  at?: Date;
  /** Small facts for breakdowns (`{ model: 'gpt-4o-mini', direction: 'out' }`), never personal data. */
  attributes?: Record<string, string | number | boolean>;
}

export interface UsageSummaryRow {
  kind: string;
  unit: string;
  /** The day (`YYYY-MM-DD`, in the tenant's time zone) when grouped by day. */
  day?: string;
  quantity: number;
  costUsd: number;
  /** How many records were summed. */
  events: number;
}

/**
 * The usage ledger. Writes are batched with other concurrent writes (one statement per batch).
 * @example
 * await ctx.usage.record({ tenantId: stage.tenant.id, kind: 'model.tokens.output', quantity: 312, unit: 'token', costUsd: 0.0002, ref: stage.message.id });
 * const month = await ctx.usage.summary({ tenantId: 'acme', from: new Date('2026-12-01'), to: new Date('2027-01-01'), groupBy: 'kind' });
 * const spent = month.reduce((sum, row) => sum + row.costUsd, 0);
 */
export interface UsageLedger {
  /** Records one event under this plugin's name; `recorded` is false when its ref was already recorded. */
  record(usage: UsageRecord): Promise<{ recorded: boolean }>;
  /** Totals of `[from, to)` by kind and unit, or by day, kind and unit. */
  summary(query: { tenantId: string; from: Date; to: Date; groupBy?: 'kind' | 'day'; kind?: string }): Promise<UsageSummaryRow[]>;
  /**
   * For a plugin that writes its own rows and the usage they meter together: the body of a
   * data-modifying CTE recording the rows of `source` (a CTE name or parenthesised subquery with the
   * columns tenant_id, kind, quantity, unit, cost_usd, ref, attributes) under this plugin's name, at
   * the statement's time, idempotent on (tenant, kind, ref) as `record` is; it returns tenant_id, kind
   * and ref of the rows it recorded. One statement instead of two round trips, both or neither
   * committed. Unlike `record` it validates nothing: kinds, units and tenants are the caller's to
   * check.
   * @example
   * const sql = `WITH mine AS (INSERT INTO my_rows ... RETURNING tenant_id, ref, n),
   *   used AS (SELECT tenant_id, 'my.kind' AS kind, n AS quantity, 'unit' AS unit, NULL::numeric AS cost_usd, ref, '{}'::jsonb AS attributes FROM mine),
   *   usage AS (${ctx.usage.insertSql('used')})
   *   SELECT ref FROM mine`;
   */
  insertSql(source: string): string;
}

// ---- health, data subjects ---------------------------------------------------------------------

export interface HealthResult {
  ok: boolean;
  detail?: string;
  /** Extra facts shown in /readyz (session state, queue depth...). */
  info?: Record<string, unknown>;
}

export interface HealthCheck {
  name: string;
  /** A check that fails makes /readyz answer 503 unless `critical` is false. */
  critical?: boolean;
  check(): Promise<HealthResult>;
}

/** A subject is one person, identified by a channel address within a tenant. */
export interface DataSubject {
  tenantId: string;
  /** Addresses in every form the plugin may have stored (`+15551234567`, `whatsapp:+15551234567`). */
  addresses: string[];
}

/** Every plugin that stores personal data provides one, so export and erasure reach everything. */
export interface DataSubjectProvider {
  name: string;
  /** What is kept and why, for the export's purposes/recipients/retention section. */
  describe(): { purpose: string; recipients: string[]; retention: string; source: string };
  export(subject: DataSubject): Promise<Record<string, unknown>[]>;
  /**
   * Optional: the same records in pages, for a provider that may keep a long history (messages,
   * calls). Export jobs prefer it, so a large history is never held in memory at once.
   */
  exportBatches?(subject: DataSubject): AsyncIterable<Record<string, unknown>[]>;
  erase(subject: DataSubject): Promise<{ erased: number }>;
}

// ---- the context setup receives ---------------------------------------------------------------

export interface PluginMetrics {
  readonly registry: Registry;
  counter<L extends string>(cfg: { name: string; help: string; labelNames?: readonly L[] }): Counter<L>;
  gauge<L extends string>(cfg: { name: string; help: string; labelNames?: readonly L[]; collect?: (this: Gauge<L>) => void | Promise<void> }): Gauge<L>;
  histogram<L extends string>(cfg: { name: string; help: string; labelNames?: readonly L[]; buckets?: number[] }): Histogram<L>;
}

export interface GatewayServices {
  /** Run an inbound message through its tenant's pipeline (idempotent on provider message id). */
  receive(draft: InboundDraft, options?: ReceiveOptions): Promise<ReceiveResult>;
  /**
   * Queue an outbound message that is not a reply (reminders, campaigns, alerts to users).
   *
   * `idempotencyKey` (per tenant, any string up to 200 characters) makes the call safe to repeat: the
   * first call with a key stores and queues the message, every later call with the same key (on any
   * instance, after a restart, concurrently) stores nothing, runs no reply stage and returns the item
   * the first call stored, whatever its status now. Use what the message is for as the key (a
   * reminder's occurrence, a campaign run and its recipient), so a job retried or run twice sends once.
   * @example
   * const key = `reminder:${reminder.id}:${occurrence.toISOString()}`;
   * const item = await ctx.gateway.enqueueOutbound({ tenantId, channel: 'twilio-sms', to, text, idempotencyKey: key });
   * // a second call with `key` returns the same item (same id), nothing new is sent
   */
  enqueueOutbound(message: {
    tenantId: string;
    channel: string;
    to: string;
    from?: string;
    text: string;
    media?: ReplyDraft['media'];
    options?: Record<string, unknown>;
    conversationId?: string | null;
    idempotencyKey?: string;
    /**
     * Pacing: the item is stored now (`pending`) and its send job waits this many milliseconds, so a
     * batch can be spread at a channel's throughput (`i * 1000 / perSecond` for the i-th). The wait is
     * the job backend's (BullMQ delayed job): it survives a restart, and the recovery sweep's re-enqueue
     * of a pending item finds the delayed job and adds nothing. A repeated call with the same
     * `idempotencyKey` queues a missing job with this delay.
     */
    delayMs?: number;
  }): Promise<OutboundMessage>;
  /** Update an outbox item from a provider status callback. Later statuses are never overwritten. */
  recordDeliveryStatus(update: {
    tenantId: string;
    channel: string;
    providerMessageId: string;
    /** `queued`/`accepted`/`scheduled`/`sending` are kept in the history without changing the status. */
    status: OutboundMessage['status'] | 'queued' | 'accepted' | 'scheduled' | 'sending';
    errorCode?: string | null;
    error?: string | null;
    at?: Date;
    raw?: unknown;
  }): Promise<{ updated: boolean; outboxId: string | null }>;
  /** Keep a signed webhook that cannot be stored (see `isPoisonInput`), so the provider can be answered 200. */
  park(entry: ParkWebhook): Promise<{ id: string }>;
  /**
   * Continues a message a stage held (`stage.hold`), exactly once: the first call moves it from `held`
   * to processing under a new claim (a conditional update), every other call, concurrent or later,
   * gets `{ resumed: false }`. The pipeline continues from the stage after `afterStage` (default: the
   * stage that held it); replies go through the reply stages and the outbox. A process that dies while
   * it runs leaves it to the recovery sweep, which continues it from the same point. `{ stop: reason }`
   * closes it instead (status `stopped`, no stage runs).
   * @example
   * if ((await queue.decide(itemId, 'approved')).changed) await ctx.gateway.resume(tenantId, item.messageId);
   */
  resume(tenantId: string, messageId: string, options?: { afterStage?: string } | { stop: string }): Promise<ResumeResult>;
  /**
   * Settles an outgoing message a reply stage held, exactly once (a conditional update from `held`):
   * `send` queues it for sending (optionally with new text; consent is still checked before the
   * send), otherwise it is recorded as `blocked` with the reason. `changed` is false when it was not held.
   * @example
   * await ctx.gateway.releaseHeld('acme', outboxId, { send: true });
   * await ctx.gateway.releaseHeld('acme', outboxId, { send: false, reason: 'rejected by a moderator' });
   */
  releaseHeld(tenantId: string, outboxId: string, decision: { send: true; text?: string } | { send: false; reason: string }): Promise<{ changed: boolean; item: OutboundMessage | null }>;
  /**
   * Withdraws an outgoing message that has not gone yet (`pending`, or `retrying` between attempts):
   * it is recorded `blocked` with error code `cancelled` and the reason, and its send job, when it
   * runs, skips it. `changed` is false when it was already being sent, sent, or settled otherwise (a
   * message the channel took cannot be called back); `item` is its state then.
   * @example
   * const { changed } = await ctx.gateway.cancelOutbound('acme', occurrence.outboxId, 'the reminder was cancelled');
   */
  cancelOutbound(tenantId: string, outboxId: string, reason: string): Promise<{ changed: boolean; item: OutboundMessage | null }>;
  /**
   * Writes the webhook response that carries `result.inline` and settles those replies by how it
   * ends: `sent` once the response finished, handed to the outbox (sent through the provider API,
   * once) when the connection closed first. `write` gets the replies as the person will have them
   * and must write the whole response. A process that dies in between leaves them to the recovery
   * sweep, which sends them through the outbox: a reply may then arrive twice, never not at all.
   * @example
   * const result = await ctx.gateway.receive(draft, { inline: { budgetMs: 4000, confirm: true } });
   * await ctx.gateway.deliverInline(res, result, (replies) => res.type('text/xml').send(twiml(replies)));
   */
  deliverInline(res: ServerResponse, result: ReceiveResult, write: (inline: OutboundMessage[]) => void): Promise<InlineOutcome>;
  consent: ConsentStore;
}

export interface ConsentStore {
  /** `opted-out` blocks every later send to that address from that tenant, on every channel. */
  set(input: { tenantId: string; address: string; status: 'opted-in' | 'opted-out'; source: string; channel?: string; detail?: string }): Promise<{ changed: boolean }>;
  isOptedOut(tenantId: string, address: string): Promise<boolean>;
  history(tenantId: string, address: string): Promise<{ status: string; source: string; channel: string | null; at: Date }[]>;
}

export interface PluginContext<O = unknown, S = unknown> {
  readonly name: string;
  /** Deployment-wide options from `plugins[].options`, validated with `optionsSchema`. */
  readonly options: O;
  readonly log: Logger;
  readonly db: Pool;
  readonly metrics: PluginMetrics;
  readonly gateway: GatewayServices;
  readonly dataDir: string;
  /**
   * The folder of the configuration file. Resolve file paths from options and settings against it, so
   * a deployment works from any working directory.
   * @example const corpus = resolve(ctx.configDir, settings.corpus);
   */
  readonly configDir: string;
  readonly publicBaseUrl: string | undefined;
  /**
   * Where this plugin's configuration is, named as the kernel's configuration errors name it, for a
   * plugin's own `ConfigError`: its options without a tenant, else the tenant's `plugins.<name>`
   * section, or `key` of the tenant (`pipeline`).
   * @example
   * ctx.configPath()                    // 'plugins[2] (whatsapp-web).options'
   * ctx.configPath('acme')              // 'tenants[3] (acme).plugins.twilio-sms'
   * ctx.configPath('acme', 'pipeline')  // 'tenants[3] (acme).pipeline'
   */
  configPath(tenantId?: string, key?: string): string;
  /** Tenants that enabled this plugin, with their validated settings. */
  tenants(): { tenant: TenantInfo; settings: S }[];
  settingsFor(tenantId: string): S | undefined;
  /** Claim a channel address (a phone number) for a tenant, so inbound messages resolve to it. */
  claimAddress(channel: string, address: string, tenantId: string): void;
  resolveTenant(channel: string, address: string): TenantInfo | undefined;

  routes(register: (router: Router, helpers: RouteHelpers) => void): void;
  /** Guard every tenant route of the API (rate limits, blocks): see `ApiGuard`. */
  apiGuard(guard: ApiGuard): void;
  stage(stage: StageDefinition<S>): void;
  /**
   * Stages that run before every tenant's pipeline for messages of `channel` (e.g. `twilio-sms.consent`,
   * so STOP and HELP never reach the tenant's stages). When one stops, the tenant's pipeline does not run.
   */
  channelStages(channel: string, stageNames: string[]): void;
  /**
   * A reply stage (see `ReplyStageDefinition`): runs on every outgoing message of the tenants whose
   * `replyPipeline` names it, replies and other sends alike, before the outbox.
   */
  replyStage(stage: ReplyStageDefinition<S>): void;
  /** Rewrite inbound text before it is stored (see `InboundFilter`). */
  inboundFilter(filter: InboundFilter): void;
  sender(sender: ChannelSender<S>): void;
  job<D>(job: JobDefinition<D>): void;
  /** A recurring job on a cron pattern in a time zone, run once per tick across instances (see `ScheduleDefinition`). */
  schedule(schedule: ScheduleDefinition): void;
  readonly jobs: JobScheduler;
  migrations(migrations: Migration[]): void;
  health(check: HealthCheck): void;
  dataSubjects(provider: DataSubjectProvider): void;
  /** Alerts: plugins raise and resolve them by key; sinks (log, Slack) deliver them. */
  readonly alerts: AlertApi;
  /**
   * Fire-and-forget work the kernel keeps track of: a failure is logged with this plugin's name and
   * `what`, and counted in `parley_background_failures_total{plugin}`; shutdown waits for it (within
   * `server.shutdownTimeoutMs`) before the plugins' stop hooks run.
   * @example
   * await ack();
   * ctx.background(slack.chat.update({ channel, ts, blocks }), 'show the acknowledgement in Slack');
   */
  background(work: Promise<unknown>, what: string): void;
  /** The per-tenant usage ledger (cost events); records carry this plugin's name. */
  readonly usage: UsageLedger;
  /**
   * The AI model service: each tenant's LangChain chat model and embeddings (null when the tenant runs
   * `local`), with timeouts, retries, a circuit breaker per provider and token usage recorded in the
   * ledger under this plugin's name. Errors carry `PARLEY_AI_*` codes: catch them to answer without a model.
   * `ctx.ai.intercept` guards every chat call and every embeddings request (`call.operation`
   * `'chat'` or `'embeddings'`, with a token estimate from the prompt or the input texts); a refused
   * embeddings request throws `PARLEY_AI_REFUSED` from `embedQuery`/`embedDocuments`.
   * @example
   * const chat = ctx.ai.chat(stage.tenant.id); // null: answer extractively
   * const answer = chat && (await chat.invoke([{ role: 'user', content: question }], { purpose: 'answer', ref: stage.message.id }));
   */
  readonly ai: AiService;
  /**
   * Share a service with plugins that depend on this one (tsyringe, explicit token).
   * @example
   * ctx.provide(token<SmsClients>('twilio-sms.clients'), clients); // in twilio-sms
   * // in twilio-voice, which lists twilio-sms in `dependencies` and declares the type it expects:
   * const clients = ctx.inject(token<SmsClients>('twilio-sms.clients'));
   */
  provide<T>(token: Token<T>, value: T): void;
  /** A kernel service (`TOKENS` in core/tokens.ts) or one a dependency provided. Throws when absent. */
  inject<T>(token: Token<T>): T;
  /**
   * A service another plugin may provide, or `undefined` when none does: for optional integrations
   * that must not be listed in `dependencies` (a plugin that works without it). Call it at use time,
   * not in `setup`: a plugin set up later may provide the token after this one's setup ran.
   * @example
   * const resolve = ctx.tryInject(token<ContactResolver>('contacts.resolver'));
   * if (!resolve) throw badRequest('subject.contactId needs the contacts plugin');
   */
  tryInject<T>(token: Token<T>): T | undefined;
}

export interface AlertApi {
  raise(alert: Omit<AlertInput, 'source'>): void;
  resolve(key: string, tenantId?: string): void;
  /** Add a place alerts go (the log is always one). */
  sink(sink: AlertSink): void;
}

export interface AlertSink {
  name: string;
  deliver(event: import('./alerts.js').AlertEvent): Promise<void>;
}

export interface RouteHelpers {
  /** Requires `Authorization: Bearer <key>` of the tenant in `req.params[param]`, or the operator key. */
  tenantAuth(param?: string): RequestHandler;
  operatorAuth(): RequestHandler;
  /**
   * Registers a route from its contract and publishes it in `/v1/openapi.json` and `/docs`: the auth
   * middleware comes from `contract.auth` (do not add `tenantAuth` yourself), a `deprecated` route
   * answers with `Deprecation`, `Sunset` and `Link` headers. Pass the zod schemas the handler
   * validates with, so the document cannot say something else. A route registered with
   * `router.get(...)` still works, undocumented (test/openapi.test.ts lists those).
   * @example
   * ctx.routes((router, { route }) => {
   *   route({
   *     method: 'get', path: '/v1/tenants/:tenant/widgets/:id', auth: 'tenant',
   *     summary: 'One widget', tags: ['widgets'],
   *     responses: { 200: { description: 'The widget', schema: z.object({ widget: Widget }) } },
   *     errors: ['PARLEY_NOT_FOUND', { code: 'PARLEY_WIDGETS_GONE', status: 410 }],
   *   }, async (req, res) => res.json({ widget: await widgets.get(param(req, 'id')) }));
   * });
   */
  route(contract: RouteContract, ...handlers: RequestHandler[]): void;
}

// ---- API guards ----------------------------------------------------------------------------------

/** One request to a tenant's `/v1` route (kernel or plugin), after its key was checked. */
export interface ApiRequestInfo {
  tenantId: string;
  /** Whose key it is. */
  principal: 'tenant' | 'operator';
  method: string;
  /** The path without the query string. */
  path: string;
  /** The client address (`X-Forwarded-For` only with `server.trustProxy`). */
  ip: string | undefined;
}

/** Let the request through, or answer it: 429 with `Retry-After` (`PARLEY_RATE_LIMITED`) or 403 (`PARLEY_FORBIDDEN`). */
export type ApiGuardVerdict = { allow: true } | { allow: false; status: 429 | 403; reason: string; retryAfterSeconds?: number };

/**
 * Runs on every request to a tenant route (every route behind `tenantAuth`: the kernel's admin API, the
 * http channel, plugin routes), once per request, after the key was checked and before the handler.
 * Guards run in registration order; the first refusal answers. A guard that throws lets the request
 * through (fail open: a limiter outage must not take the API down) and is logged.
 * @example
 * ctx.apiGuard({
 *   name: 'per-tenant-rate',
 *   async check(req) {
 *     if (req.principal === 'operator') return { allow: true };
 *     const ok = await limiter.take(req.tenantId);
 *     return ok ? { allow: true } : { allow: false, status: 429, reason: 'Too many requests', retryAfterSeconds: 30 };
 *   },
 * });
 */
export interface ApiGuard {
  name: string;
  check(req: ApiRequestInfo): Promise<ApiGuardVerdict | void> | ApiGuardVerdict | void;
}

export interface PluginHooks {
  /** After every plugin's setup, migrations and the database are ready; before HTTP listens. */
  start?(): Promise<void> | void;
  /** On shutdown, in reverse plugin order, after HTTP stopped accepting requests. */
  stop?(): Promise<void> | void;
}

export interface PluginDefinition<OSchema extends z.ZodType = z.ZodType, SSchema extends z.ZodType = z.ZodType> {
  name: string;
  kind: PluginKind;
  description: string;
  /** Deployment-wide options (`plugins: [{ name, options }]`). */
  optionsSchema?: OSchema;
  /** Per-tenant settings (`tenants[].plugins.<name>`). */
  settingsSchema?: SSchema;
  dependencies?: string[];
  setup(ctx: PluginContext<z.output<OSchema>, z.output<SSchema>>): void | PluginHooks | Promise<void | PluginHooks>;
}

/**
 * Identity helper that gives a plugin object its inferred types.
 * @example
 * export default definePlugin({
 *   name: 'echo', kind: 'capability', description: 'Replies with what it got',
 *   settingsSchema: z.object({ prefix: z.string().default('') }),
 *   setup(ctx) { ctx.stage({ name: 'echo', handle: (c) => c.reply(c.settings.prefix + c.message.text) }); },
 * });
 */
export function definePlugin<OSchema extends z.ZodType = z.ZodType<unknown>, SSchema extends z.ZodType = z.ZodType<unknown>>(
  plugin: PluginDefinition<OSchema, SSchema>,
): PluginDefinition<OSchema, SSchema> {
  return plugin;
}

export type AnyPlugin = PluginDefinition<z.ZodType, z.ZodType>;

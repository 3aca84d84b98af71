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
import type { InboundDraft, InboundMessage, OutboundMessage, ReplyDraft, HistoryEntry } from './message.js';
import type { TenantInfo } from './tenancy.js';
import type { ReceiveOptions, ReceiveResult } from './gateway-types.js';
import type { AlertInput } from './alerts.js';
import type { ParkWebhook } from './parking.js';

export type PluginKind = 'channel' | 'capability';

/** A typed tsyringe injection token (a symbol that remembers the type it stands for). */
export type Token<T> = symbol & { readonly __type?: T };

/** Makes a typed token for `ctx.provide` / `ctx.inject`. */
export function token<T>(description: string): Token<T> {
  return Symbol(description) as Token<T>;
}

/** A schema migration: applied once per database, in id order, inside a transaction. */
export interface Migration {
  /** Sortable, unique within the plugin: `001_create_consent`. */
  id: string;
  sql: string;
}

// ---- pipeline -------------------------------------------------------------------------------------

export type StageOutcome = 'passed' | 'replied' | 'stopped' | 'failed';

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
  /** Raise an operations alert (Slack, log...). */
  alert(alert: Omit<AlertInput, 'tenantId' | 'source'>): void;
}

export type Next = () => Promise<void>;

/** A named pipeline stage. Runs onion-style: code after `await next()` sees later stages' replies. */
export interface StageDefinition<S = unknown> {
  name: string;
  handle(ctx: StageContext<S>, next: Next): Promise<void> | void;
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
  process(data: D, job: { id: string | undefined; attemptsMade: number; name: string }): Promise<unknown>;
  concurrency?: number;
  attempts?: number;
  backoffMs?: number;
}

export interface JobScheduler {
  add<D>(queue: string, data: D, opts?: { jobId?: string; delayMs?: number; attempts?: number; backoffMs?: number }): Promise<void>;
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
  /** Queue an outbound message that is not a reply (reminders, campaigns, alerts to users). */
  enqueueOutbound(message: {
    tenantId: string;
    channel: string;
    to: string;
    from?: string;
    text: string;
    media?: ReplyDraft['media'];
    options?: Record<string, unknown>;
    conversationId?: string | null;
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
  readonly publicBaseUrl: string | undefined;
  /** Tenants that enabled this plugin, with their validated settings. */
  tenants(): { tenant: TenantInfo; settings: S }[];
  settingsFor(tenantId: string): S | undefined;
  /** Claim a channel address (a phone number) for a tenant, so inbound messages resolve to it. */
  claimAddress(channel: string, address: string, tenantId: string): void;
  resolveTenant(channel: string, address: string): TenantInfo | undefined;

  routes(register: (router: Router, helpers: RouteHelpers) => void): void;
  stage(stage: StageDefinition<S>): void;
  /**
   * Stages that run before every tenant's pipeline for messages of `channel` (e.g. `twilio-sms.consent`,
   * so STOP and HELP never reach the tenant's stages). When one stops, the tenant's pipeline does not run.
   */
  channelStages(channel: string, stageNames: string[]): void;
  sender(sender: ChannelSender<S>): void;
  job<D>(job: JobDefinition<D>): void;
  readonly jobs: JobScheduler;
  migrations(migrations: Migration[]): void;
  health(check: HealthCheck): void;
  dataSubjects(provider: DataSubjectProvider): void;
  /** Alerts: plugins raise and resolve them by key; sinks (log, Slack) deliver them. */
  readonly alerts: AlertApi;
  /**
   * Share a service with plugins that depend on this one (tsyringe, explicit token).
   * @example
   * export const SMS_CLIENTS = token<SmsClients>('twilio-sms.clients');
   * ctx.provide(SMS_CLIENTS, clients); // in twilio-sms
   * const clients = ctx.inject(SMS_CLIENTS); // in twilio-voice, which lists twilio-sms as a dependency
   */
  provide<T>(token: Token<T>, value: T): void;
  /** A kernel service (`TOKENS` in core/tokens.ts) or one a dependency provided. Throws when absent. */
  inject<T>(token: Token<T>): T;
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

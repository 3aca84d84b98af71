/**
 * The kernel. `Gateway.boot` loads the configured plugins (through the catalogue it is given: it never
 * imports one itself), validates their settings, opens storage, applies migrations, runs each
 * plugin's setup, wires jobs and HTTP, and starts listening. `receive` is the one way a message
 * enters a pipeline.
 */
import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Router } from 'express';
import { z } from 'zod';
import pg from 'pg';
import { type LoadedConfig, type ParleyConfig, type PluginEntry, checkAgainst, normalisePluginEntry, pluginOptionsPath, unknownName } from './config.js';
import { ConfigError, ParleyError, PluginError, describe } from './errors.js';
import type { AnyPlugin, ChannelSender, DataSubjectProvider, GatewayServices, HealthCheck, Migration, PluginContext, PluginHooks, StageDefinition, ConsentStore } from './plugin.js';
import type { InboundDraft, OutboundMessage } from './message.js';
import type { ReceiveOptions, ReceiveResult } from './gateway-types.js';
import { type PluginCatalogue, importPlugin, orderPlugins, withDeadline } from './plugin-loader.js';
import { TenantDirectory, runWithTenant, type TenantInfo } from './tenancy.js';
import { createLogger, hashAddress } from './logger.js';
import { createCoreMetrics, pluginMetrics, type CoreMetrics } from './metrics.js';
import { AlertHub } from './alerts.js';
import { openDatabase, type Database } from './storage/database.js';
import { applyMigrations, ensureMigrationTable } from './storage/migrations.js';
import { coreMigrations } from './storage/schema.js';
import { recordInboundMany, finishInboundMany, repliesFor, type FinishInbound, type FinishResult, type RecordInboundResult, insertOutbound, applyDeliveryStatus, loadHistory } from './storage/message-store.js';
import { JobRunner } from './jobs/job-runner.js';
import { OutboxSender, OUTBOX_QUEUE, type OutboxJob } from './outbox.js';
import { runPipeline, type ResolvedStage } from './pipeline.js';
import { Batcher } from './storage/batcher.js';
import { createConsentStore } from './consent.js';
import { coreDataSubjects } from './data-subjects.js';
import { createHttpApp, type RouteRegistration } from './http/app.js';
import { TOKENS } from './tokens.js';
import { guardInbound } from './inbound-guard.js';
import { ParkingLot } from './parking.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  catalogue: PluginCatalogue;
  logger?: Logger;
  /** Listen for HTTP (default true). Tests may use `gateway.app` without a socket. */
  listen?: boolean;
  /** Seconds between outbox/inbound recovery sweeps (default 15). */
  sweepIntervalMs?: number;
  /** How long a message may sit in processing before the recovery sweep runs it again (default 120 s). */
  recoverAfterMs?: number;
  /** Per-stage time limit (default 30 s). */
  stageTimeoutMs?: number;
  /** Time limit for each plugin's setup and start (default 15 s). */
  setupTimeoutMs?: number;
  /** Redis key prefix / PostgreSQL schema for BullMQ (several deployments on one server). */
  jobNamespace?: string;
}

interface PluginState {
  plugin: AnyPlugin;
  entry: PluginEntry;
  options: unknown;
  settings: Map<string, unknown>;
  hooks: PluginHooks;
}

export class Gateway {
  readonly log: Logger;
  readonly registry = new Registry();
  readonly parking = new ParkingLot({ pool: () => this.db.pool, registry: this.registry, log: () => this.log });
  readonly metrics: CoreMetrics;
  readonly alerts: AlertHub;
  readonly tenants: TenantDirectory;
  readonly config: ParleyConfig;
  /** Per-gateway DI container: a child of the root, which holds only stateless services. */
  readonly container: DependencyContainer;
  db!: Database;
  jobs!: JobRunner;
  outbox!: OutboxSender;
  consent!: ConsentStore;
  server: Server | undefined;
  app!: ReturnType<typeof createHttpApp>;

  private readonly plugins: PluginState[] = [];
  private readonly stages = new Map<string, { plugin: string; definition: StageDefinition<any> }>();
  private readonly routes: RouteRegistration[] = [];
  private readonly migrations: { plugin: string; migrations: Migration[] }[] = [];
  readonly healthChecks: { plugin: string; check: HealthCheck }[] = [];
  readonly dataSubjectProviders: { plugin: string; provider: DataSubjectProvider }[] = [];
  private readonly inflight = new Map<string, Promise<ReceiveResult>>();
  private inboundWriter!: Batcher<{ tenantId: string; draft: InboundDraft }, RecordInboundResult>;
  private finishWriter!: Batcher<FinishInbound, FinishResult>;
  /** Claims this instance's runs hold (inbound id -> token): kept fresh so no sweep takes a live run. */
  private readonly heldClaims = new Map<string, string>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly background = new Set<Promise<unknown>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private state: 'new' | 'booting' | 'ready' | 'stopping' | 'stopped' = 'new';
  readonly startedAt = Date.now();

  private constructor(private readonly opts: GatewayOptions) {
    this.config = opts.loaded.config;
    this.log = opts.logger ?? createLogger(this.config.log.level);
    this.metrics = createCoreMetrics(this.registry);
    this.alerts = new AlertHub(this.log.child({ component: 'alerts' }));
    this.tenants = new TenantDirectory(this.config.tenants, this.config.operator.apiKeys);
    this.container = rootContainer.createChildContainer();
  }

  /** Loads, validates and starts everything; throws `ConfigError`/`PluginError` naming what is wrong. */
  static async boot(opts: GatewayOptions): Promise<Gateway> {
    const gateway = new Gateway(opts);
    try {
      await gateway.start();
    } catch (error) {
      await gateway.stop().catch(() => undefined);
      throw error;
    }
    return gateway;
  }

  get isReady(): boolean {
    return this.state === 'ready';
  }

  get isStopping(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  get port(): number | undefined {
    const address = this.server?.address() as AddressInfo | null | undefined;
    return address?.port;
  }

  get url(): string {
    return `http://${this.config.server.host}:${this.port}`;
  }

  pluginNames(): { name: string; kind: string; description: string }[] {
    return this.plugins.map((p) => ({ name: p.plugin.name, kind: p.plugin.kind, description: p.plugin.description }));
  }

  /**
   * Checks a configuration without starting anything: plugins load, settings validate, setups run
   * against a database that is never connected, and every pipeline names known stages.
   */
  static async validate(opts: GatewayOptions): Promise<{ plugins: string[]; tenants: string[] }> {
    const gateway = new Gateway({ ...opts, listen: false });
    await gateway.prepare(true);
    await gateway.db.close();
    return { plugins: gateway.plugins.map((p) => p.plugin.name), tenants: gateway.tenants.list().map((t) => t.id) };
  }

  private async start(): Promise<void> {
    await this.prepare(false);
    await this.jobs.prepare();
    for (const p of this.plugins) {
      if (p.hooks.start) await withDeadline(Promise.resolve(p.hooks.start()), this.opts.setupTimeoutMs ?? 15_000, p.plugin.name, 'start()');
    }
    await this.jobs.startWorkers();

    this.app = createHttpApp(this, this.routes);
    if (this.opts.listen !== false) {
      this.server = await new Promise<Server>((resolvePromise, reject) => {
        const server = this.app.listen(this.config.server.port, this.config.server.host, (error?: Error) => (error ? reject(error) : resolvePromise(server)));
        server.on('error', reject);
      });
      this.server.keepAliveTimeout = 65_000;
    }
    this.state = 'ready';
    const interval = this.opts.sweepIntervalMs ?? 15_000;
    this.sweepTimer = setInterval(() => this.track(this.sweep()), interval);
    this.sweepTimer.unref();
    const recoverAfter = this.opts.recoverAfterMs ?? 120_000;
    this.heartbeatTimer = setInterval(
      () => this.track(this.heartbeat().catch((error: unknown) => this.log.warn({ err: error }, 'claim heartbeat failed; will try again'))),
      Math.min(30_000, Math.max(1_000, recoverAfter / 4)),
    );
    this.heartbeatTimer.unref();
    this.track(this.sweep());
    this.log.info({ port: this.port, storage: this.db.kind, jobs: this.jobs.kind, plugins: this.plugins.map((p) => p.plugin.name), tenants: this.tenants.list().map((t) => t.id) }, 'parley is ready');
  }

  private async prepare(dryRun: boolean): Promise<void> {
    this.state = 'booting';
    const loaded = await this.loadPlugins();
    const ordered = orderPlugins(loaded.map((l) => l.plugin));
    const entries = new Map(loaded.map((l) => [l.plugin.name, l.entry]));
    this.validateSettings(ordered, entries);

    const dataDir = resolve(this.config.storage.dataDir);
    this.db = dryRun
      ? dryDatabase()
      : await openDatabase({ databaseUrl: this.config.storage.databaseUrl, dataDir, poolSize: this.config.storage.poolSize, log: this.log.child({ component: 'database' }) });
    this.tenants.attachDatabase(this.db.pool);
    const batchFailed = (what: string) => (error: unknown, size: number) =>
      this.log.warn({ err: error, size, code: (error as { code?: string }).code }, `${what}: a batch failed; retrying its items one by one`);
    this.inboundWriter = new Batcher((items) => recordInboundMany(this.db.pool, items), 256, 2, batchFailed('recording inbound messages'));
    this.finishWriter = new Batcher((items) => finishInboundMany(this.db.pool, items), 256, 2, batchFailed('finishing inbound messages'));
    this.consent = createConsentStore(this.db.pool);
    if (!dryRun) {
      await ensureMigrationTable(this.db.pool);
      await applyMigrations(this.db.pool, 'core', coreMigrations);
    }
    this.jobs = new JobRunner({ ...(this.opts.jobNamespace && this.config.storage.redisUrl ? { namespace: this.opts.jobNamespace } : {}), redisUrl: this.config.storage.redisUrl, databaseUrl: this.db.connectionString, log: this.log.child({ component: 'jobs' }), metrics: this.metrics });
    this.outbox = new OutboxSender({
      db: this.db.pool,
      log: this.log.child({ component: 'outbox' }),
      metrics: this.metrics,
      consent: this.consent,
      jobs: this.jobs,
      attempts: this.config.outbox.attempts,
      backoffMs: this.config.outbox.backoffMs,
      settingsFor: (channel, tenantId) => this.settingsOf(channel, tenantId),
    });
    this.jobs.define<OutboxJob>({ name: OUTBOX_QUEUE, concurrency: this.config.outbox.concurrency, attempts: this.config.outbox.attempts, backoffMs: this.config.outbox.backoffMs, process: (data, job) => this.outbox.process(data, job.attemptsMade) }, 'core');

    this.container.register(TOKENS.Logger, { useValue: this.log });
    this.container.register(TOKENS.Pool, { useValue: this.db.pool });
    this.container.register(TOKENS.Consent, { useValue: this.consent });
    this.container.register(TOKENS.Alerts, { useValue: this.alerts });
    this.container.register(TOKENS.Tenants, { useValue: this.tenants });
    this.container.register(TOKENS.Gateway, { useValue: this });

    this.dataSubjectProviders.push({ plugin: 'core', provider: coreDataSubjects(this.db.pool) });
    for (const plugin of ordered) await this.setupPlugin(plugin);
    if (!dryRun) for (const { plugin, migrations } of this.migrations) await applyMigrations(this.db.pool, plugin, migrations);
    this.validatePipelines();

  }

  private async loadPlugins(): Promise<{ plugin: AnyPlugin; entry: PluginEntry }[]> {
    const entries = new Map<string, PluginEntry>();
    for (const raw of this.config.plugins) {
      const entry = normalisePluginEntry(raw);
      if (entries.has(entry.name)) throw new PluginError('PARLEY_PLUGIN_DUPLICATE', `Plugin "${entry.name}" is listed twice in plugins`, 500, { plugin: entry.name });
      entries.set(entry.name, entry);
    }
    // Built-in plugins a tenant configures are loaded without being listed.
    for (const [i, t] of this.config.tenants.entries()) {
      for (const name of Object.keys(t.plugins)) {
        if (entries.has(name)) continue;
        if (!this.opts.catalogue[name]) throw new ConfigError([`tenants[${i}] (${t.id}).plugins.${name}: ${unknownName('plugin', name, Object.keys(this.opts.catalogue))} (built-in: ${Object.keys(this.opts.catalogue).sort().join(', ')}; third-party plugins must be listed under plugins with a module path)`]);
        entries.set(name, { name });
      }
    }
    const loaded: { plugin: AnyPlugin; entry: PluginEntry }[] = [];
    const queue = [...entries.values()];
    while (queue.length) {
      const entry = queue.shift()!;
      const plugin = await importPlugin(entry, this.opts.catalogue, this.opts.loaded.baseDir);
      loaded.push({ plugin, entry });
      for (const dep of plugin.dependencies ?? []) {
        if (!entries.has(dep) && this.opts.catalogue[dep]) {
          const e = { name: dep };
          entries.set(dep, e);
          queue.push(e);
        }
      }
    }
    return loaded;
  }

  private validateSettings(plugins: AnyPlugin[], entries: Map<string, PluginEntry>): void {
    const issues: string[] = [];
    const byName = new Map(plugins.map((p) => [p.name, p]));
    for (const plugin of plugins) {
      const entry = entries.get(plugin.name)!;
      const state: PluginState = { plugin, entry, options: undefined, settings: new Map(), hooks: {} };
      if (plugin.optionsSchema) {
        const parsed = checkAgainst(plugin.optionsSchema, entry.options ?? {}, pluginOptionsPath(this.config, plugin.name));
        if (parsed.success) state.options = parsed.data;
        else issues.push(...parsed.issues);
      } else state.options = entry.options ?? {};
      this.plugins.push(state);
    }
    this.config.tenants.forEach((t, i) => {
      for (const [name, raw] of Object.entries(t.plugins)) {
        const plugin = byName.get(name);
        if (!plugin) continue;
        const schema = plugin.settingsSchema ?? z.unknown();
        const parsed = checkAgainst(schema, raw ?? {}, `tenants[${i}] (${t.id}).plugins.${name}`);
        if (parsed.success) this.plugins.find((p) => p.plugin.name === name)!.settings.set(t.id, parsed.data);
        else issues.push(...parsed.issues);
      }
    });
    if (issues.length) throw new ConfigError(issues);
  }

  private validatePipelines(): void {
    const issues: string[] = [];
    for (const [channel, names] of this.channelFirstStages) {
      for (const n of names) if (!this.stages.has(n)) issues.push(`channel ${channel}: first stage "${n}" is not registered`);
    }
    this.config.tenants.forEach((t, i) => {
      t.pipeline.forEach((stageName, j) => {
        const stage = this.stages.get(stageName);
        if (!stage) {
          issues.push(`tenants[${i}] (${t.id}).pipeline[${j}]: ${unknownName('stage', stageName, [...this.stages.keys()])} (known stages: ${[...this.stages.keys()].sort().join(', ') || 'none'})`);
          return;
        }
        const state = this.plugins.find((p) => p.plugin.name === stage.plugin)!;
        if (!state.settings.has(t.id)) {
          const parsed = checkAgainst(state.plugin.settingsSchema ?? z.unknown(), {}, `tenants[${i}] (${t.id}).plugins.${stage.plugin}`);
          if (parsed.success) state.settings.set(t.id, parsed.data);
          else issues.push(...parsed.issues.map((issue) => `${issue} (stage "${stageName}" at tenants[${i}] (${t.id}).pipeline[${j}] needs these settings)`));
        }
      });
    });
    if (issues.length) throw new ConfigError(issues);
  }

  /** Settings of a plugin (or of the plugin that owns a channel's sender) for one tenant. */
  settingsOf(pluginOrChannel: string, tenantId: string): unknown {
    const owner = this.channelOwners.get(pluginOrChannel) ?? pluginOrChannel;
    return this.plugins.find((p) => p.plugin.name === owner)?.settings.get(tenantId);
  }

  private readonly channelOwners = new Map<string, string>();
  private readonly channelFirstStages = new Map<string, string[]>();

  private async setupPlugin(plugin: AnyPlugin): Promise<void> {
    const state = this.plugins.find((p) => p.plugin.name === plugin.name)!;
    const log = this.log.child({ plugin: plugin.name });
    const name = plugin.name;
    const wrap = (what: string, error: unknown) =>
      error instanceof ParleyError && error.plugin === name ? error : new PluginError('PARLEY_PLUGIN_SETUP_FAILED', `Plugin "${name}": ${what}: ${describe(error)}`, 500, { plugin: name, cause: error });
    const self = this;
    const ctx: PluginContext<unknown, unknown> = {
      name,
      options: state.options,
      log,
      db: this.db.pool,
      metrics: pluginMetrics(this.registry, name),
      gateway: this.services(),
      dataDir: resolve(this.config.storage.dataDir),
      publicBaseUrl: this.config.server.publicBaseUrl,
      tenants: () => [...state.settings.entries()].map(([id, settings]) => ({ tenant: this.tenants.get(id)!, settings })),
      settingsFor: (tenantId) => state.settings.get(tenantId),
      claimAddress: (channel, address, tenantId) => this.tenants.claimAddress(channel, address, tenantId),
      resolveTenant: (channel, address) => this.tenants.resolve(channel, address),
      routes: (register) => this.routes.push({ plugin: name, register }),
      stage(stage) {
        if (self.stages.has(stage.name)) throw new PluginError('PARLEY_STAGE_DUPLICATE', `Stage "${stage.name}" is registered by "${self.stages.get(stage.name)!.plugin}" and "${name}"`, 500, { plugin: name });
        self.stages.set(stage.name, { plugin: name, definition: stage });
      },
      channelStages(channel, stageNames) {
        if (self.channelFirstStages.has(channel)) throw new PluginError('PARLEY_STAGE_DUPLICATE', `Channel "${channel}" already has first stages`, 500, { plugin: name });
        self.channelFirstStages.set(channel, [...stageNames]);
      },
      sender(sender: ChannelSender<unknown>) {
        self.outbox.register(sender, name);
        self.channelOwners.set(sender.channel, name);
      },
      job: (job) => this.jobs.define(job, name),
      jobs: { add: (queue, data, o) => this.jobs.add(queue, data, o) },
      migrations: (migrations) => this.migrations.push({ plugin: name, migrations }),
      health: (check) => this.healthChecks.push({ plugin: name, check }),
      dataSubjects: (provider) => this.dataSubjectProviders.push({ plugin: name, provider }),
      alerts: this.alerts.apiFor(name),
      provide: (token, value) => {
        if (this.container.isRegistered(token, false)) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}": token ${String(token)} is already provided`, 500, { plugin: name });
        this.container.register(token, { useValue: value });
      },
      inject: (token) => {
        if (!this.container.isRegistered(token, false)) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}": nothing provides ${String(token)} (list the providing plugin in "dependencies")`, 500, { plugin: name });
        return this.container.resolve(token) as never;
      },
    };
    try {
      const hooks = await withDeadline(Promise.resolve(plugin.setup(ctx)), this.opts.setupTimeoutMs ?? 15_000, name, 'setup()');
      state.hooks = hooks ?? {};
    } catch (error) {
      throw wrap('setup failed', error);
    }
  }

  /** What plugins see as `ctx.gateway`. `consent` is read late: storage opens after construction. */
  services(): GatewayServices {
    const gateway = this;
    return {
      receive: (draft, options) => this.receive(draft, options),
      enqueueOutbound: (m) => this.enqueueOutbound(m),
      recordDeliveryStatus: (u) => applyDeliveryStatus(this.db.pool, u),
      park: (entry) => this.parking.park(entry),
      get consent() {
        return gateway.consent;
      },
    };
  }

  /**
   * Runs one inbound message through its tenant's pipeline, exactly once per provider message id.
   * @example
   * const result = await gateway.receive({ channel: 'http', tenantId: 'demo', from: 'alice', to: 'demo', text: 'hours?', providerMessageId: 'm1' }, { inline: { budgetMs: 5000 } });
   */
  async receive(unchecked: InboundDraft, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    const draft = guardInbound(unchecked);
    if (this.state !== 'ready') throw new ParleyError('PARLEY_SHUTTING_DOWN', 'Parley is not accepting messages right now', 503);
    const tenant = draft.tenantId ? this.tenants.get(draft.tenantId) : this.tenants.resolve(draft.channel, draft.to);
    if (!tenant) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `No tenant owns ${draft.channel} address ${draft.tenantId ?? hashAddress(draft.to)}`, 404);
    const key = `${tenant.id}\u0000${draft.channel}\u0000${draft.providerMessageId}`;
    const running = this.inflight.get(key);
    if (running) {
      const first = await running;
      return { ...first, status: 'duplicate' };
    }
    const promise = this.receiveOnce(tenant, draft, options);
    this.inflight.set(key, promise);
    try {
      return await promise;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async receiveOnce(tenant: TenantInfo, draft: InboundDraft, options: ReceiveOptions): Promise<ReceiveResult> {
    const recorded = await this.inboundWriter.submit({ tenantId: tenant.id, draft });
    if (recorded.duplicate) {
      this.metrics.messagesIn.inc({ tenant: tenant.id, channel: draft.channel, result: 'duplicate' });
      const replies = await repliesFor(this.db.pool, tenant.id, recorded.inboundId);
      const sendable = replies.filter((r) => r.status !== 'blocked');
      return { status: 'duplicate', tenantId: tenant.id, inboundId: recorded.inboundId, conversationId: null, inline: sendable.filter((r) => r.via === 'inline'), queued: sendable.filter((r) => r.via !== 'inline'), annotations: {} };
    }
    const message = recorded.message;
    // The inline window: open until the budget runs out, unless the pipeline claims it first. Once
    // claimed, the replies are being written as sent-inline, so the response must wait for them.
    const window: InlineWindow = { open: options.inline !== undefined && options.until !== 'recorded', claimed: false };
    const processing = this.track(this.process(tenant, message, recorded.claim, window, options.replyInSession === true));
    if (options.until === 'recorded') {
      return { status: 'deferred', tenantId: tenant.id, inboundId: message.id, conversationId: message.conversationId, inline: [], queued: [], annotations: {} };
    }
    if (!options.inline) return processing;
    let timer: NodeJS.Timeout | undefined;
    const deferred = new Promise<'deferred'>((r) => {
      timer = setTimeout(() => r('deferred'), options.inline!.budgetMs);
    });
    const winner = await Promise.race([processing, deferred]);
    clearTimeout(timer);
    if (winner !== 'deferred') return winner;
    if (window.claimed) return processing;
    window.open = false;
    return { status: 'deferred', tenantId: tenant.id, inboundId: message.id, conversationId: message.conversationId, inline: [], queued: [], annotations: {} };
  }

  /** Pipeline + persistence. The inline window is claimed (or found closed) when the replies are written. */
  private async process(tenant: TenantInfo, message: import('./message.js').InboundMessage, claim: string, window: InlineWindow, inSession = false): Promise<ReceiveResult> {
    this.heldClaims.set(message.id, claim);
    try {
      return await this.processClaimed(tenant, message, claim, window, inSession);
    } finally {
      if (this.heldClaims.get(message.id) === claim) this.heldClaims.delete(message.id);
    }
  }

  private async processClaimed(tenant: TenantInfo, message: import('./message.js').InboundMessage, claim: string, window: InlineWindow, inSession: boolean): Promise<ReceiveResult> {
    const preStages = this.channelFirstStages.get(message.channel) ?? [];
    const started = performance.now();
    const log = this.log.child({ tenant: tenant.id, channel: message.channel, inboundId: message.id, from: hashAddress(message.from) });
    const stages: ResolvedStage[] = [...preStages, ...tenant.pipeline].map((name) => {
      const s = this.stages.get(name)!;
      return { plugin: s.plugin, definition: s.definition, settings: this.settingsOf(s.plugin, tenant.id), alerts: this.alerts.apiFor(s.plugin) };
    });
    const outcome = await runWithTenant(tenant, () =>
      runPipeline({
        message,
        tenant,
        stages,
        log,
        db: this.db.pool,
        history: (limit) => loadHistory(this.db.pool, tenant.id, message.conversationId, message.id, limit),
        isCurrentRun: () => holdsClaim(this.db.pool, message.id, claim),
        stageTimeoutMs: this.opts.stageTimeoutMs ?? 30_000,
      }),
    );
    for (const r of outcome.records) this.metrics.stageDuration.observe({ tenant: tenant.id, stage: r.stage, outcome: r.outcome }, r.selfMs / 1000);
    let replies = outcome.replies;
    if (outcome.error) {
      log.error({ err: outcome.error, stage: outcome.error.stage }, 'pipeline failed; sending the fallback reply');
      replies = tenant.fallbackReply ? [{ text: tenant.fallbackReply }] : [];
    }
    if (inSession) replies = replies.map((r) => ({ ...r, options: { ...r.options, inSession: true } }));
    const via = window.open ? 'inline' : 'api';
    if (window.open) window.claimed = true;
    const finished = await this.finishWriter.submit({
      tenantId: tenant.id,
      inbound: message,
      claim,
      status: outcome.status,
      stopReason: outcome.stopReason,
      error: outcome.error ? outcome.error.message : null,
      stages: outcome.records,
      annotations: outcome.annotations,
      replies,
      via,
    });
    if (finished.superseded) {
      // The recovery sweep gave this message to a newer run (this one took too long, or another
      // instance thought this one dead): that run alone answers it. Nothing of this run was written.
      window.claimed = false;
      this.metrics.messagesIn.inc({ tenant: tenant.id, channel: message.channel, result: 'superseded' });
      log.warn({ status: outcome.status, replies: replies.length, ms: Math.round(performance.now() - started) }, 'a newer run holds this message; this run\'s replies were discarded');
      return { status: 'deferred', tenantId: tenant.id, inboundId: message.id, conversationId: message.conversationId, inline: [], queued: [], annotations: {} };
    }
    const written = finished.replies;
    this.metrics.messagesIn.inc({ tenant: tenant.id, channel: message.channel, result: outcome.status });
    this.metrics.pipelineDuration.observe({ tenant: tenant.id, channel: message.channel }, (performance.now() - started) / 1000);
    const sendable = written.filter((w) => w.status !== 'blocked');
    if (written.length > sendable.length) this.metrics.messagesOut.inc({ tenant: tenant.id, channel: message.channel, status: 'blocked' }, written.length - sendable.length);
    if (via === 'api' && sendable.length) await this.outbox.enqueue(sendable);
    else if (sendable.length) this.metrics.messagesOut.inc({ tenant: tenant.id, channel: message.channel, status: 'inline' }, sendable.length);
    log.debug({ status: outcome.status, replies: written.length, ms: Math.round(performance.now() - started) }, 'message processed');
    return {
      status: outcome.status,
      tenantId: tenant.id,
      inboundId: message.id,
      conversationId: message.conversationId,
      inline: via === 'inline' ? sendable : [],
      queued: via === 'api' ? sendable : [],
      annotations: outcome.annotations,
      ...(outcome.stopReason ? { stopReason: outcome.stopReason } : {}),
    };
  }

  async enqueueOutbound(m: Parameters<GatewayServices['enqueueOutbound']>[0]): Promise<OutboundMessage> {
    if (!this.tenants.get(m.tenantId)) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Unknown tenant "${m.tenantId}"`, 404);
    if (!this.outbox.hasSender(m.channel)) throw new ParleyError('PARLEY_SENDER_MISSING', `No channel "${m.channel}" can send messages`, 400);
    const item = await insertOutbound(this.db.pool, { tenantId: m.tenantId, channel: m.channel, to: m.to, from: m.from ?? '', text: m.text, media: m.media ?? [], options: m.options ?? {}, conversationId: m.conversationId ?? null });
    await this.outbox.enqueue([item]);
    return item;
  }

  /**
   * Recovery: outbox items whose job was lost (a crash between the commit and the enqueue, a Redis
   * flush) are enqueued again, and inbound messages whose processing was cut off are run again.
   * Both are safe to repeat: the outbox claim and the inbound claim are conditional updates.
   */
  private async sweep(): Promise<void> {
    if (this.state !== 'ready') return;
    try {
      const { rows } = await this.db.pool.query<{ id: string; tenant_id: string }>(
        `SELECT id, tenant_id FROM parley_outbox WHERE status IN ('pending', 'retrying', 'sending') AND updated_at < now() - interval '60 seconds' ORDER BY created_at LIMIT 500`,
      );
      if (rows.length) {
        this.log.warn({ count: rows.length }, 'outbox sweep: re-enqueueing items with no recent progress');
        await this.outbox.enqueue(rows.map((r) => ({ id: r.id, tenantId: r.tenant_id })));
      }
      await this.recoverInbound(`${this.opts.recoverAfterMs ?? 120_000} milliseconds`);
      const counts = await this.db.pool.query<{ tenant_id: string; status: string; n: number }>(
        `SELECT tenant_id, status, count(*)::int AS n FROM parley_outbox WHERE status IN ('pending', 'retrying', 'sending', 'dead') GROUP BY 1, 2`,
      );
      this.metrics.outbox.reset();
      for (const r of counts.rows) this.metrics.outbox.set({ tenant: r.tenant_id, status: r.status }, r.n);
      await this.jobs.counts();
    } catch (error) {
      this.log.warn({ err: error }, 'recovery sweep failed; will try again');
    }
  }

  /**
   * Re-runs inbound messages stuck in processing (their process died, or a run outlived `olderThan`).
   * Each re-run takes the claim with a new token, so an overtaken run can no longer finish the message.
   * Live runs are not taken in practice: the heartbeat keeps their claims younger than the window.
   * Replies go via the outbox.
   */
  async recoverInbound(olderThan: string): Promise<number> {
    const { rows } = await this.db.pool.query<{ id: string; token: string }>(
      `UPDATE parley_inbound_claims SET claimed_at = now(), token = gen_random_uuid() WHERE inbound_id IN (
         SELECT inbound_id FROM parley_inbound_claims WHERE claimed_at < now() - $1::interval ORDER BY claimed_at LIMIT 100 FOR UPDATE SKIP LOCKED
       ) RETURNING inbound_id AS id, token`,
      [olderThan],
    );
    for (const { id, token } of rows) {
      const { rows: msgRows } = await this.db.pool.query(`SELECT * FROM parley_inbound WHERE id = $1`, [id]);
      const r = msgRows[0];
      const tenant = r && this.tenants.get(r.tenant_id);
      if (!r || !tenant) continue;
      this.log.warn({ inboundId: id, tenant: tenant.id }, 'recovering an inbound message whose processing was interrupted');
      await this.process(
        tenant,
        { id: r.id, tenantId: r.tenant_id, conversationId: r.conversation_id, channel: r.channel, from: r.from_address, to: r.to_address, text: r.body, media: r.media, providerMessageId: r.provider_message_id, receivedAt: r.received_at, raw: r.raw, attributes: r.attributes },
        token,
        { open: false, claimed: false },
      );
    }
    return rows.length;
  }

  /** Keeps the claims of this instance's running messages fresh, so no sweep mistakes them for dead. */
  private async heartbeat(): Promise<void> {
    if (!this.heldClaims.size) return;
    const held = [...this.heldClaims];
    await this.db.pool.query(
      `UPDATE parley_inbound_claims c SET claimed_at = now() FROM unnest($1::uuid[], $2::uuid[]) AS h(id, token) WHERE c.inbound_id = h.id AND c.token = h.token`,
      [held.map(([id]) => id), held.map(([, token]) => token)],
    );
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.background.add(promise);
    promise.then(
      () => this.background.delete(promise),
      (error: unknown) => {
        this.background.delete(promise);
        this.log.error({ err: error }, 'background task failed');
      },
    );
    return promise;
  }

  /**
   * Everything every plugin keeps about one person, with what it is kept for. The data-subject
   * request plugin builds on this; it is also what an operator runs by hand.
   */
  async exportSubject(subject: import('./plugin.js').DataSubject): Promise<{ provider: string; plugin: string; about: ReturnType<DataSubjectProvider['describe']>; records: Record<string, unknown>[] }[]> {
    const out = [];
    for (const { plugin, provider } of this.dataSubjectProviders) out.push({ provider: provider.name, plugin, about: provider.describe(), records: await provider.export(subject) });
    return out;
  }

  /** Erases one person's data in every provider, plugins first, and audits it with a hash only. */
  async eraseSubject(subject: import('./plugin.js').DataSubject, actor: string): Promise<Record<string, number>> {
    const erased: Record<string, number> = {};
    for (const { provider } of [...this.dataSubjectProviders].reverse()) erased[provider.name] = (await provider.erase(subject)).erased;
    const subjectHash = hashAddress([...subject.addresses].sort().join(','));
    await this.db.pool.query('INSERT INTO parley_audit (tenant_id, actor, action, subject_hash, detail) VALUES ($1, $2, $3, $4, $5)', [subject.tenantId, actor, 'data-subject.erase', subjectHash, erased]);
    return erased;
  }

  /** Readiness of every component, with latency. */
  async readiness(): Promise<{ ready: boolean; components: Record<string, { ok: boolean; latencyMs: number; detail?: string; info?: Record<string, unknown> }> }> {
    const components: Record<string, { ok: boolean; latencyMs: number; detail?: string; info?: Record<string, unknown> }> = {};
    const timed = async (name: string, critical: boolean, fn: () => Promise<{ ok: boolean; detail?: string; info?: Record<string, unknown> }>) => {
      const t = performance.now();
      try {
        const r = await withDeadline(fn(), 3_000, name, 'health check');
        components[name] = { ...r, latencyMs: Math.round((performance.now() - t) * 10) / 10 };
      } catch (error) {
        components[name] = { ok: false, latencyMs: Math.round(performance.now() - t), detail: describe(error) };
      }
      return critical ? components[name]!.ok : true;
    };
    const results = await Promise.all([
      timed('database', true, async () => {
        await this.db.pool.query('SELECT 1');
        return { ok: true, info: { kind: this.db.kind } };
      }),
      timed('jobs', true, async () => ({ ok: true, info: { backend: this.jobs.kind, queues: await this.jobs.counts() } })),
      ...this.healthChecks.map(({ check }) => timed(check.name, check.critical !== false, () => check.check())),
    ]);
    const ready = this.state === 'ready' && results.every(Boolean);
    return { ready, components };
  }

  /** Stops taking requests, drains in-flight messages and jobs, runs plugin stop hooks, closes storage. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasStarted = this.state !== 'new';
    this.state = 'stopping';
    const deadline = this.config.server.shutdownTimeoutMs;
    clearInterval(this.sweepTimer);
    clearInterval(this.heartbeatTimer);
    if (this.server) {
      const closed = new Promise<void>((r) => this.server!.close(() => r()));
      this.server.closeIdleConnections();
      await Promise.race([closed, sleep(deadline)]);
      this.server.closeAllConnections();
    }
    await Promise.race([Promise.allSettled([...this.background]), sleep(deadline)]);
    if (this.jobs) await this.jobs.close(deadline);
    for (const p of [...this.plugins].reverse()) {
      if (!p.hooks.stop) continue;
      try {
        await withDeadline(Promise.resolve(p.hooks.stop()), deadline, p.plugin.name, 'stop()');
      } catch (error) {
        this.log.error({ err: error, plugin: p.plugin.name }, 'plugin stop failed');
      }
    }
    await this.alerts.flush();
    if (this.db) await this.db.close();
    this.container.clearInstances();
    this.state = 'stopped';
    if (wasStarted) this.log.info('parley stopped');
  }
}

/** Whether the run holding `claim` still holds the message (the recovery sweep has not moved it on). */
async function holdsClaim(db: pg.Pool, inboundId: string, claim: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM parley_inbound_claims WHERE inbound_id = $1 AND token = $2', [inboundId, claim]);
  return rows.length > 0;
}

/** A pool that is never connected: `parley validate` runs setups against it. */
function dryDatabase(): Database {
  const pool = new pg.Pool({ host: '127.0.0.1', port: 1, max: 1 });
  return { pool, connectionString: 'postgres://127.0.0.1:1/validate', kind: 'external', vectorAvailable: false, close: () => pool.end() };
}

interface InlineWindow {
  open: boolean;
  claimed: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * The gateway's lifecycle, and the facade the rest of the code talks to. `Gateway.boot` loads the
 * configured plugins (through the catalogue it is given: it never imports one itself), opens storage,
 * applies migrations, runs each plugin's setup, wires jobs and HTTP and starts listening; `stop` undoes
 * it in reverse. The work itself lives in one module per job: `plugin-host.ts` (plugins and what they
 * registered), `plugin-context.ts` (each plugin's `ctx`), `inbound.ts` (receive and process),
 * `outbound.ts` (messages that are not replies), `recovery.ts` (sweeps and claim heartbeats),
 * `readiness.ts`, `data-subjects.ts` and `background.ts`.
 */
import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import pg from 'pg';
import type { LoadedConfig, ParleyConfig } from './config.js';
import type { ConsentStore, DataSubject, DataSubjectProvider, GatewayServices } from './plugin.js';
import type { InboundDraft, OutboundMessage } from './message.js';
import type { ReceiveOptions, ReceiveResult } from './gateway-types.js';
import type { PluginCatalogue } from './plugin-loader.js';
import { PluginHost } from './plugin-host.js';
import { createPluginContext } from './plugin-context.js';
import { InboundProcessor, filterText, filterUnattributed } from './inbound.js';
import { enqueueOutbound, type OutboundRequest } from './outbound.js';
import { HeldClaims, Recovery } from './recovery.js';
import { checkReadiness, type Readiness } from './readiness.js';
import { BackgroundWork } from './background.js';
import { Usage } from './usage.js';
import { Ai } from './ai/service.js';
import { TenantDirectory } from './tenancy.js';
import { createLogger } from './logger.js';
import { openLogFile, type LogFile } from './log-file.js';
import { autovacuumRuns, maintenanceSchedule, registerDeadRowsMetric } from './storage/maintenance.js';
import { backupPostgres, dumpEmbedded, writeEmbeddedBackup, type BackupManifest } from './backup.js';
import { createCoreMetrics, type CoreMetrics } from './metrics.js';
import { AlertHub } from './alerts.js';
import { openDatabase, type Database } from './storage/database.js';
import { applyMigrations, ensureMigrationTable } from './storage/migrations.js';
import { coreMigrations } from './storage/schema.js';
import { applyDeliveryStatus, cancelPendingOutbound, loadOutbound, releaseHeldOutbound, settleInlineSentMany } from './storage/message-store.js';
import { storableText } from './inbound-guard.js';
import { Batcher } from './storage/batcher.js';
import { JobRunner } from './jobs/job-runner.js';
import { OutboxSender, OUTBOX_QUEUE, type OutboxJob } from './outbox.js';
import { createConsentStore } from './consent.js';
import { coreDataSubjects, eraseSubject, exportSubject, exportSubjectStream, subjectNeedles, type SubjectExport, type SubjectExportStream } from './data-subjects.js';
import { apiCatalogueOf, createHttpApp } from './http/app.js';
import type { ApiCatalogue } from './http/contract.js';
import { TOKENS } from './tokens.js';
import { guardInbound } from './inbound-guard.js';
import { ParkingLot, parkedDataSubjects } from './parking.js';
import { ConsoleSessions } from './console/sessions.js';
import { deliverInline } from './inline-delivery.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  catalogue: PluginCatalogue;
  logger?: Logger;
  /** Listen for HTTP (default true). Tests may use `gateway.app` without a socket. */
  listen?: boolean;
  /** Milliseconds between outbox/inbound recovery sweeps (default 15 s). */
  sweepIntervalMs?: number;
  /** How long a message may sit in processing before the recovery sweep runs it again (default 120 s). */
  recoverAfterMs?: number;
  /** Per-stage time limit (default 30 s). */
  stageTimeoutMs?: number;
  /** Time limit for each plugin's setup and start (default 15 s). */
  setupTimeoutMs?: number;
  /**
   * Where the gateway's own logger writes (default stdout) when no `logger` is given; `log.file` is
   * added beside it. Tests pass their capture stream here to keep a log file too.
   */
  logDestination?: import('pino').DestinationStream;
}

export class Gateway {
  readonly log: Logger;
  readonly registry = new Registry();
  readonly metrics: CoreMetrics;
  readonly alerts: AlertHub;
  readonly tenants: TenantDirectory;
  readonly config: ParleyConfig;
  /** Per-gateway DI container: a child of the root, which holds only stateless services. */
  readonly container: DependencyContainer;
  readonly startedAt = Date.now();
  /** Signed webhooks that can never be stored, kept with hashed addresses (see `isPoisonInput`). */
  readonly parking = new ParkingLot({
    pool: () => this.db.pool,
    registry: this.registry,
    log: () => this.log,
    // A parked payload goes through the inbound filters too (a redacted card number): the tenant's,
    // or, when no tenant owns it, each filter's `unattributed`.
    filter: (tenantId, channel, text) => {
      const tenant = tenantId ? this.tenants.get(tenantId) : undefined;
      return tenant ? filterText(text, tenant, channel, this.host.inboundFilters) : filterUnattributed(text, channel, this.host.inboundFilters);
    },
  });
  /** Sign-ins of the operations console (`/console`): cookie sessions resolved to a principal. */
  readonly consoleSessions: ConsoleSessions;
  db!: Database;
  /** The log file the gateway keeps (`log.file`), which erasure redacts and verification scans. */
  readonly logFile: LogFile | undefined;
  /** Confirms inline replies whose response finished, many responses to a statement. */
  private inlineSettler!: Batcher<{ tenantId: string; ids: readonly string[]; plugins: readonly string[] }, OutboundMessage[]>;
  jobs!: JobRunner;
  outbox!: OutboxSender;
  consent!: ConsentStore;
  /** The usage ledger (`ctx.usage` is its per-plugin view). */
  usage!: Usage;
  /** The AI model service (`ctx.ai` is its per-plugin view). */
  ai!: Ai;
  server: Server | undefined;
  app!: ReturnType<typeof createHttpApp>;

  /** The routes the HTTP app registered and the contracts `/v1/openapi.json` is built from. */
  get api(): ApiCatalogue {
    return apiCatalogueOf(this.app);
  }

  private readonly host: PluginHost;
  private readonly claims = new HeldClaims();
  private readonly background: BackgroundWork;
  private inbound!: InboundProcessor;
  private recovery!: Recovery;
  private state: 'new' | 'booting' | 'ready' | 'stopping' | 'stopped' = 'new';

  private constructor(private readonly opts: GatewayOptions) {
    this.config = opts.loaded.config;
    this.logFile = this.config.log.file ? openLogFile(resolve(this.config.storage.dataDir, this.config.log.file)) : undefined;
    this.log = opts.logger ?? createLogger(this.config.log.level, opts.logDestination, this.logFile);
    this.metrics = createCoreMetrics(this.registry);
    this.alerts = new AlertHub(this.log.child({ component: 'alerts' }));
    this.tenants = new TenantDirectory(this.config.tenants, this.config.operator.apiKeys);
    this.consoleSessions = new ConsoleSessions({ pool: () => this.db.pool, tenants: this.tenants, ttlSeconds: 12 * 3600 });
    this.container = rootContainer.createChildContainer();
    this.host = new PluginHost(this.config, opts.catalogue, opts.loaded.baseDir);
    this.background = new BackgroundWork(this.log, (owner) => this.metrics.backgroundFailures.inc({ plugin: owner.plugin }));
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

  /**
   * Checks a configuration without starting anything: plugins load, settings validate, setups run
   * against a database that is never connected, and every pipeline names known stages.
   */
  static async validate(opts: GatewayOptions): Promise<{ plugins: string[]; tenants: string[] }> {
    const gateway = new Gateway({ ...opts, listen: false });
    await gateway.prepare(true);
    await gateway.db.close();
    return { plugins: gateway.host.plugins.map((p) => p.plugin.name), tenants: gateway.tenants.list().map((t) => t.id) };
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

  get healthChecks(): PluginHost['healthChecks'] {
    return this.host.healthChecks;
  }

  get dataSubjectProviders(): PluginHost['dataSubjectProviders'] {
    return this.host.dataSubjectProviders;
  }

  pluginNames(): { name: string; kind: string; description: string }[] {
    return this.host.names();
  }

  /** Settings of a plugin (or of the plugin that owns a channel's sender) for one tenant. */
  settingsOf(pluginOrChannel: string, tenantId: string): unknown {
    return this.host.settingsOf(pluginOrChannel, tenantId);
  }

  private async start(): Promise<void> {
    await this.prepare(false);
    await this.jobs.prepare();
    await this.host.start(this.opts.setupTimeoutMs ?? 15_000);
    await this.jobs.startWorkers();

    this.app = createHttpApp(this, this.host.routes, this.host.apiGuards);
    if (this.opts.listen !== false) {
      this.server = await new Promise<Server>((resolvePromise, reject) => {
        const server = this.app.listen(this.config.server.port, this.config.server.host, (error?: Error) => (error ? reject(error) : resolvePromise(server)));
        server.on('error', reject);
      });
      this.server.keepAliveTimeout = 65_000;
    }
    this.state = 'ready';
    this.recovery.start();
    this.log.info({ port: this.port, storage: this.db.kind, jobs: this.jobs.kind, plugins: this.host.plugins.map((p) => p.plugin.name), tenants: this.tenants.list().map((t) => t.id) }, 'parley is ready');
  }

  private async prepare(dryRun: boolean): Promise<void> {
    this.state = 'booting';
    const ordered = await this.host.load();
    const dataDir = resolve(this.config.storage.dataDir);
    this.db = dryRun
      ? dryDatabase()
      : await openDatabase({ databaseUrl: this.config.storage.databaseUrl, dataDir, poolSize: this.config.storage.poolSize, log: this.log.child({ component: 'database' }), registry: this.registry });
    const pool = this.db.pool;
    this.inlineSettler = new Batcher((items) => this.settleInline(pool, items), {
      onBatchError: (error, size) => this.log.warn({ err: error, size }, 'confirming inline replies: a batch failed; retrying its items one by one'),
    });
    this.tenants.attachDatabase(pool);
    this.consent = createConsentStore(pool);
    this.usage = new Usage(pool, this.tenants);
    this.ai = new Ai({ config: this.config, usage: this.usage, tenants: this.tenants, alerts: this.alerts, registry: this.registry, log: this.log.child({ component: 'ai' }) });
    await this.ai.loadProviders();
    if (this.config.ai.providers && Object.keys(this.config.ai.providers).length) this.host.healthChecks.push({ plugin: 'core', check: this.ai.health() });
    if (!dryRun) {
      await ensureMigrationTable(pool);
      await applyMigrations(pool, 'core', coreMigrations);
    }
    this.jobs = new JobRunner({ ...(this.config.storage.jobsPrefix && this.config.storage.redisUrl ? { namespace: this.config.storage.jobsPrefix } : {}), redisUrl: this.config.storage.redisUrl, databaseUrl: this.db.connectionString, log: this.log.child({ component: 'jobs' }), metrics: this.metrics });
    this.outbox = new OutboxSender({
      db: pool,
      log: this.log.child({ component: 'outbox' }),
      metrics: this.metrics,
      consent: this.consent,
      jobs: this.jobs,
      attempts: this.config.outbox.attempts,
      backoffMs: this.config.outbox.backoffMs,
      settingsFor: (channel, tenantId) => this.host.settingsOf(channel, tenantId),
      onSent: (message) => this.usage.messagesSent([message], (channel) => this.ownerOf(channel)),
    });
    registerDeadRowsMetric(this.registry, () => pool, this.log.child({ component: 'database' }));
    // PostgreSQL's autovacuum keeps a server's tables; PGlite (single-user) has none, and a server may
    // have it switched off: without vacuum, the claims table a message deletes from grows a dead row
    // per message and every finish statement reads them all.
    const embedded = this.db.kind === 'embedded';
    const autovacuumOff = !embedded && !dryRun && !(await autovacuumRuns(pool));
    if (autovacuumOff) this.log.warn({ cron: this.config.storage.maintenance.cron }, "PostgreSQL's autovacuum is off on this server: the kernel's db-maintenance job vacuums and analyzes the tables every message writes");
    if (embedded || autovacuumOff) this.jobs.schedule(maintenanceSchedule(pool, this.config.storage.maintenance, this.registry), 'core');
    this.jobs.define<OutboxJob>({ name: OUTBOX_QUEUE, concurrency: this.config.outbox.concurrency, attempts: this.config.outbox.attempts, backoffMs: this.config.outbox.backoffMs, process: (data, job) => this.outbox.process(data, job.attemptsMade) }, 'core');
    this.inbound = new InboundProcessor({
      db: pool,
      log: this.log,
      metrics: this.metrics,
      tenants: this.tenants,
      outbox: this.outbox,
      claims: this.claims,
      background: this.background,
      pipelineFor: (tenant, channel, handoff) => this.host.pipelineFor(tenant, channel, this.alerts, handoff),
      replyStagesFor: (tenant) => this.host.replyStagesFor(tenant, this.alerts),
      inboundFilters: () => this.host.inboundFilters,
      countInline: (items) => this.countInline(items),
      isAccepting: () => this.state === 'ready',
      stageTimeoutMs: this.opts.stageTimeoutMs ?? 30_000,
    });
    this.recovery = new Recovery({
      db: pool,
      log: this.log,
      tenants: this.tenants,
      outbox: this.outbox,
      claims: this.claims,
      background: this.background,
      rerun: (tenant, message, claim, handoff, resumeAfter) => this.inbound.process(tenant, message, claim, { handoff, startAfter: resumeAfter }),
      afterSweep: () => this.refreshQueueMetrics(),
      isRunning: () => this.state === 'ready',
      sweepIntervalMs: this.opts.sweepIntervalMs ?? 15_000,
      recoverAfterMs: this.opts.recoverAfterMs ?? 120_000,
    });

    this.container.register(TOKENS.Logger, { useValue: this.log });
    this.container.register(TOKENS.Pool, { useValue: pool });
    this.container.register(TOKENS.Consent, { useValue: this.consent });
    this.container.register(TOKENS.Alerts, { useValue: this.alerts });
    this.container.register(TOKENS.Tenants, { useValue: this.tenants });
    this.container.register(TOKENS.Gateway, { useValue: this });

    this.host.dataSubjectProviders.push({ plugin: 'core', provider: coreDataSubjects(pool) });
    this.host.dataSubjectProviders.push({ plugin: 'core', provider: parkedDataSubjects(pool) });
    this.host.dataSubjectProviders.push({ plugin: 'core', provider: this.jobPayloadSubjects() });
    if (this.logFile) this.host.dataSubjectProviders.push({ plugin: 'core', provider: this.logFileSubjects(this.logFile) });
    const contextDeps = {
      config: this.config,
      host: this.host,
      log: this.log,
      db: pool,
      registry: this.registry,
      services: this.services(),
      dataDir,
      configDir: this.opts.loaded.baseDir,
      publicBaseUrl: this.config.server.publicBaseUrl,
      tenants: this.tenants,
      jobs: this.jobs,
      outbox: this.outbox,
      alerts: this.alerts,
      container: this.container,
      background: this.background,
      usage: this.usage,
      ai: this.ai,
    };
    for (const plugin of ordered) await this.host.setup(plugin.name, (state) => createPluginContext(contextDeps, state), this.opts.setupTimeoutMs ?? 15_000);
    if (!dryRun) for (const { plugin, migrations } of this.host.migrations) await applyMigrations(pool, plugin, migrations);
    this.host.validatePipelines();
  }

  /** What plugins see as `ctx.gateway`. `consent` is read late: storage opens after construction. */
  services(): GatewayServices {
    const gateway = this;
    return {
      receive: (draft, options) => this.receive(draft, options),
      enqueueOutbound: (m) => this.enqueueOutbound(m),
      recordDeliveryStatus: (u) => applyDeliveryStatus(this.db.pool, u),
      park: (entry) => this.parking.park(entry),
      resume: (tenantId, messageId, options) => this.inbound.resume(tenantId, messageId, options),
      releaseHeld: (tenantId, outboxId, decision) => this.releaseHeld(tenantId, outboxId, decision),
      cancelOutbound: (tenantId, outboxId, reason) => this.cancelOutbound(tenantId, outboxId, reason),
      deliverInline: (res, result, write) =>
        deliverInline(
          {
            db: this.db.pool,
            log: this.log,
            outbox: this.outbox,
            countSettled: (items) => this.countInline(items, { metered: true }),
            settleSent: (tenantId, replies) => this.inlineSettler.submit({ tenantId, ids: replies.map((r) => r.id), plugins: replies.map((r) => this.ownerOf(r.channel)) }),
          },
          res,
          result,
          write,
        ),
      get consent() {
        return gateway.consent;
      },
    };
  }

  /**
   * Settles inline replies and meters them in one statement. Should the meter fail (a trigger of a
   * plugin on `parley_usage`, say), the replies are settled alone and metered apart: left `sending`,
   * the recovery sweep would send them a second time.
   */
  private async settleInline(pool: pg.Pool, items: readonly { tenantId: string; ids: readonly string[]; plugins: readonly string[] }[]): Promise<OutboundMessage[][]> {
    try {
      return await settleInlineSentMany(pool, items);
    } catch (error) {
      this.log.warn({ err: error, replies: items.reduce((n, i) => n + i.ids.length, 0) }, 'settling inline replies with their meter failed; settling them alone and metering them apart');
      const settled = await settleInlineSentMany(pool, items, { meter: false });
      const sent = settled.flat();
      if (sent.length) this.meterInline(sent);
      return settled;
    }
  }

  /**
   * Counts and meters replies that went out inline (they never pass the send job); `metered`: the
   * statement that settled them already recorded their `messages.out`.
   */
  private countInline(items: readonly OutboundMessage[], { metered = false } = {}): void {
    for (const item of items) this.metrics.messagesOut.inc({ tenant: item.tenantId, channel: item.channel, status: 'inline' });
    if (!metered) this.meterInline(items);
  }

  /** Records `messages.out` for inline replies in the background (a failure is counted, never thrown). */
  private meterInline(items: readonly OutboundMessage[]): void {
    this.background.track(this.usage.messagesSent(items, (channel) => this.ownerOf(channel)), { plugin: 'core', what: 'meter inline replies' });
  }

  /** The plugin a channel belongs to: usage of its sends is recorded under that name. */
  private ownerOf(channel: string): string {
    return this.host.channelOwners.get(channel) ?? channel;
  }

  /**
   * Runs one inbound message through its tenant's pipeline, exactly once per provider message id.
   * @example
   * const result = await gateway.receive({ channel: 'http', tenantId: 'demo', from: 'alice', to: 'demo', text: 'hours?', providerMessageId: 'm1' }, { inline: { budgetMs: 5000 } });
   */
  async receive(draft: InboundDraft, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    // NUL and lone surrogates become U+FFFD (PostgreSQL refuses them); what can never be stored throws.
    return this.inbound.receive(guardInbound(draft), options);
  }

  enqueueOutbound(m: OutboundRequest): Promise<OutboundMessage> {
    return enqueueOutbound(
      { db: this.db.pool, log: this.log, metrics: this.metrics, tenants: this.tenants, outbox: this.outbox, replyStagesFor: (tenant) => this.host.replyStagesFor(tenant, this.alerts), stageTimeoutMs: this.opts.stageTimeoutMs ?? 30_000 },
      m,
    );
  }

  /** Settles a held outgoing message once: queued for sending, or blocked (see `GatewayServices.releaseHeld`). */
  async releaseHeld(tenantId: string, outboxId: string, decision: { send: true; text?: string } | { send: false; reason: string }): Promise<{ changed: boolean; item: OutboundMessage | null }> {
    const pool = this.db.pool;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(outboxId)) return { changed: false, item: null };
    const item = await releaseHeldOutbound(pool, tenantId, outboxId, decision.send ? { send: true, text: decision.text === undefined ? null : storableText(decision.text) } : { send: false, reason: decision.reason });
    if (!item) return { changed: false, item: (await loadOutbound(pool, tenantId, outboxId)) ?? null };
    if (item.status === 'pending') await this.outbox.enqueue([item], Date.now());
    else this.metrics.messagesOut.inc({ tenant: tenantId, channel: item.channel, status: item.status });
    return { changed: true, item };
  }

  /** Withdraws an outgoing message that has not gone yet (see `GatewayServices.cancelOutbound`). */
  async cancelOutbound(tenantId: string, outboxId: string, reason: string): Promise<{ changed: boolean; item: OutboundMessage | null }> {
    const pool = this.db.pool;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(outboxId)) return { changed: false, item: null };
    const item = await cancelPendingOutbound(pool, tenantId, outboxId, reason.slice(0, 500));
    if (!item) return { changed: false, item: (await loadOutbound(pool, tenantId, outboxId)) ?? null };
    this.metrics.messagesOut.inc({ tenant: tenantId, channel: item.channel, status: 'blocked' });
    return { changed: true, item };
  }

  /** Re-runs inbound messages stuck in processing for longer than `olderThan` (an SQL interval). */
  recoverInbound(olderThan: string): Promise<number> {
    return this.recovery.recoverInbound(olderThan);
  }

  /** Runs one recovery sweep now (the timer runs one every `sweepIntervalMs`). */
  sweep(): Promise<void> {
    return this.recovery.sweep();
  }

  /**
   * Everything every plugin keeps about one person, with what it is kept for. The data-subject
   * request plugin builds on this; it is also what an operator runs by hand.
   */
  exportSubject(subject: DataSubject): Promise<SubjectExport[]> {
    return exportSubject(this.host.dataSubjectProviders, subject);
  }

  /** The export page by page, provider by provider (see `DataSubjectProvider.exportBatches`). */
  exportSubjectStream(subject: DataSubject): Generator<SubjectExportStream> {
    return exportSubjectStream(this.host.dataSubjectProviders, subject);
  }

  /** Job payloads naming a person: they should hold ids only, so erasure removes any that do not. */
  private jobPayloadSubjects(): DataSubjectProvider {
    const needles = (subject: DataSubject) => {
      const n = subjectNeedles(subject.addresses);
      return [...n.raw, ...n.hashes];
    };
    return {
      name: 'core.job-payloads',
      describe: () => ({
        purpose: 'Background jobs that deliver messages and run scheduled work; their payloads hold ids, not your data.',
        recipients: ['Nobody outside this service (the job queue runs on its database or its Redis)'],
        retention: 'Finished jobs are removed after an hour, failed ones after seven days.',
        source: 'Created by the service while handling your messages.',
      }),
      export: async (subject) => (await this.jobs.findPayloads(needles(subject))).map((j) => ({ kind: 'job', queue: j.queue, jobId: j.jobId, state: j.state })),
      erase: async (subject) => ({ erased: (await this.jobs.findPayloads(needles(subject), { remove: true })).filter((j) => j.removed).length }),
    };
  }

  /** Lines of the gateway's log file that name a person (an address, or its hash). */
  private logFileSubjects(file: LogFile): DataSubjectProvider {
    const needles = (subject: DataSubject) => {
      const n = subjectNeedles(subject.addresses);
      return [...n.raw, ...n.hashes];
    };
    return {
      name: 'core.logs',
      describe: () => ({
        purpose: 'Operating and troubleshooting the service; numbers appear only as a short hash, message text never at the info level.',
        recipients: ['The operators of this service'],
        retention: 'Until the operator deletes the file or its rotated copies, or your data is erased (your lines are removed from the file and the copies beside it).',
        source: 'Written by the service while handling your messages.',
      }),
      export: async (subject) => (await file.scan(needles(subject), { collect: 10_000 })).lines.map((line) => ({ kind: 'log-line', line })),
      erase: async (subject) => ({ erased: (await file.redact(needles(subject))).removed }),
    };
  }

  /** Erases one person's data in every provider, plugins first, and audits it with a hash only. */
  eraseSubject(subject: DataSubject, actor: string): Promise<Record<string, number>> {
    return eraseSubject(this.db.pool, this.host.dataSubjectProviders, subject, actor);
  }

  /**
   * Writes a backup of this gateway's database to `out` (see core/backup.ts): the embedded data
   * directory through the running PGlite, or `pg_dump` of DATABASE_URL; encrypted with `key` if given.
   */
  async backup(out: string, key: Buffer | undefined): Promise<BackupManifest> {
    if (this.db.embedded) return writeEmbeddedBackup(out, await dumpEmbedded(this.db.embedded), key);
    return backupPostgres(this.db.connectionString, out, key);
  }

  /** Readiness of every component, with latency. */
  readiness(): Promise<Readiness> {
    return checkReadiness({ db: this.db.pool, dbKind: this.db.kind, jobs: this.jobs, checks: this.host.healthChecks.map((h) => h.check), running: this.state === 'ready' });
  }

  private async refreshQueueMetrics(): Promise<void> {
    const counts = await this.db.pool.query<{ tenant_id: string; status: string; n: number }>(
      `SELECT tenant_id, status, count(*)::int AS n FROM parley_outbox WHERE status IN ('pending', 'retrying', 'sending', 'held', 'dead') GROUP BY 1, 2`,
    );
    this.metrics.outbox.reset();
    for (const r of counts.rows) this.metrics.outbox.set({ tenant: r.tenant_id, status: r.status }, r.n);
    await this.jobs.counts();
  }

  /** Stops taking requests, drains in-flight messages and jobs, runs plugin stop hooks, closes storage. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasStarted = this.state !== 'new';
    this.state = 'stopping';
    const deadline = this.config.server.shutdownTimeoutMs;
    this.recovery?.stop();
    if (this.server) {
      const closed = new Promise<void>((r) => this.server!.close(() => r()));
      this.server.closeIdleConnections();
      await Promise.race([closed, sleep(deadline)]);
      this.server.closeAllConnections();
    }
    if (!(await this.background.drain(deadline))) this.log.warn({ deadlineMs: deadline, tasks: this.background.size }, 'background work did not finish before the shutdown deadline');
    if (this.jobs) await this.jobs.close(deadline);
    await this.host.stop(deadline, this.log);
    await this.alerts.flush();
    if (this.db) await this.db.close();
    this.container.clearInstances();
    this.state = 'stopped';
    if (wasStarted) this.log.info('parley stopped');
  }
}

/** A pool that is never connected: `parley validate` runs setups against it. */
function dryDatabase(): Database {
  const pool = new pg.Pool({ host: '127.0.0.1', port: 1, max: 1 });
  return { pool, connectionString: 'postgres://127.0.0.1:1/validate', kind: 'external', vectorAvailable: false, close: () => pool.end() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

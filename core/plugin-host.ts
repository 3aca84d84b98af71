/**
 * The plugins of one gateway: which are loaded (configured ones, built-ins a tenant configures, their
 * dependencies), their validated options and per-tenant settings, what each registered in `setup`
 * (stages, routes, migrations, health checks, data-subject providers) and their start/stop hooks.
 */
import { z } from 'zod';
import type { Logger } from 'pino';
import { type ParleyConfig, type PluginEntry, checkAgainst, normalisePluginEntry, pluginOptionsPath, unknownName } from './config.js';
import { ConfigError, ParleyError, PluginError, describe } from './errors.js';
import type { AnyPlugin, ApiGuard, InboundFilter, DataSubjectProvider, HealthCheck, Migration, HandoffState, PluginContext, PluginHooks, ReplyStageDefinition, StageDefinition } from './plugin.js';
import { type PluginCatalogue, importPlugin, orderPlugins, withDeadline } from './plugin-loader.js';
import type { ResolvedStage } from './pipeline.js';
import type { ResolvedReplyStage } from './reply-stages.js';
import type { RouteRegistration } from './http/app.js';
import type { TenantInfo } from './tenancy.js';
import type { AlertHub } from './alerts.js';

export interface PluginState {
  plugin: AnyPlugin;
  entry: PluginEntry;
  options: unknown;
  settings: Map<string, unknown>;
  hooks: PluginHooks;
}

export class PluginHost {
  readonly plugins: PluginState[] = [];
  readonly stages = new Map<string, { plugin: string; definition: StageDefinition<any> }>();
  readonly replyStages = new Map<string, { plugin: string; definition: ReplyStageDefinition<any> }>();
  readonly routes: RouteRegistration[] = [];
  readonly apiGuards: { plugin: string; guard: ApiGuard }[] = [];
  readonly inboundFilters: { plugin: string; filter: InboundFilter }[] = [];
  readonly migrations: { plugin: string; migrations: Migration[] }[] = [];
  readonly healthChecks: { plugin: string; check: HealthCheck }[] = [];
  readonly dataSubjectProviders: { plugin: string; provider: DataSubjectProvider }[] = [];
  readonly channelOwners = new Map<string, string>();
  readonly channelFirstStages = new Map<string, string[]>();

  constructor(
    private readonly config: ParleyConfig,
    private readonly catalogue: PluginCatalogue,
    private readonly baseDir: string,
  ) {}

  /** Imports every plugin the configuration needs, orders them by dependency and validates their settings. */
  async load(): Promise<AnyPlugin[]> {
    const loaded = await this.importAll();
    const ordered = orderPlugins(loaded.map((l) => l.plugin));
    this.validateSettings(ordered, new Map(loaded.map((l) => [l.plugin.name, l.entry])));
    return ordered;
  }

  state(name: string): PluginState {
    return this.plugins.find((p) => p.plugin.name === name)!;
  }

  names(): { name: string; kind: string; description: string }[] {
    return this.plugins.map((p) => ({ name: p.plugin.name, kind: p.plugin.kind, description: p.plugin.description }));
  }

  /** Settings of a plugin (or of the plugin that owns a channel's sender) for one tenant. */
  settingsOf(pluginOrChannel: string, tenantId: string): unknown {
    const owner = this.channelOwners.get(pluginOrChannel) ?? pluginOrChannel;
    return this.plugins.find((p) => p.plugin.name === owner)?.settings.get(tenantId);
  }

  addStage(plugin: string, stage: StageDefinition<any>): void {
    if (this.stages.has(stage.name)) throw new PluginError('PARLEY_STAGE_DUPLICATE', `Stage "${stage.name}" is registered by "${this.stages.get(stage.name)!.plugin}" and "${plugin}"`, 500, { plugin });
    this.stages.set(stage.name, { plugin, definition: stage });
  }

  addReplyStage(plugin: string, stage: ReplyStageDefinition<any>): void {
    if (this.replyStages.has(stage.name)) throw new PluginError('PARLEY_STAGE_DUPLICATE', `Reply stage "${stage.name}" is registered by "${this.replyStages.get(stage.name)!.plugin}" and "${plugin}"`, 500, { plugin });
    this.replyStages.set(stage.name, { plugin, definition: stage });
  }

  addChannelStages(plugin: string, channel: string, stageNames: string[]): void {
    if (this.channelFirstStages.has(channel)) throw new PluginError('PARLEY_STAGE_DUPLICATE', `Channel "${channel}" already has first stages`, 500, { plugin });
    this.channelFirstStages.set(channel, [...stageNames]);
  }

  /**
   * The channel's first stages, then the tenant's pipeline, each with its plugin's settings for the
   * tenant. While a person has the conversation, the tenant's stages run only if they say `runsDuringHandoff`.
   */
  pipelineFor(tenant: TenantInfo, channel: string, alerts: AlertHub, handoff: HandoffState = 'bot'): ResolvedStage[] {
    const own = handoff === 'human' ? tenant.pipeline.filter((name) => this.stages.get(name)!.definition.runsDuringHandoff === true) : tenant.pipeline;
    return [...(this.channelFirstStages.get(channel) ?? []), ...own].map((name) => {
      const s = this.stages.get(name)!;
      return { plugin: s.plugin, definition: s.definition, settings: this.settingsOf(s.plugin, tenant.id), alerts: alerts.apiFor(s.plugin) };
    });
  }

  /** The tenant's reply stages, each with its plugin's settings for the tenant. */
  replyStagesFor(tenant: TenantInfo, alerts: AlertHub): ResolvedReplyStage[] {
    return tenant.replyPipeline.map((name) => {
      const s = this.replyStages.get(name)!;
      return { plugin: s.plugin, definition: s.definition, settings: this.settingsOf(s.plugin, tenant.id), alerts: alerts.apiFor(s.plugin) };
    });
  }

  /** Every first stage exists and every tenant's pipeline and reply pipeline name known stages whose plugin has settings. */
  validatePipelines(): void {
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
        issues.push(...this.defaultSettings(stage.plugin, i, t.id).map((issue) => `${issue} (stage "${stageName}" at tenants[${i}] (${t.id}).pipeline[${j}] needs these settings)`));
      });
      t.replyPipeline.forEach((stageName, j) => {
        const stage = this.replyStages.get(stageName);
        if (!stage) {
          issues.push(`tenants[${i}] (${t.id}).replyPipeline[${j}]: ${unknownName('reply stage', stageName, [...this.replyStages.keys()])} (known reply stages: ${[...this.replyStages.keys()].sort().join(', ') || 'none'})`);
          return;
        }
        issues.push(...this.defaultSettings(stage.plugin, i, t.id).map((issue) => `${issue} (reply stage "${stageName}" at tenants[${i}] (${t.id}).replyPipeline[${j}] needs these settings)`));
      });
    });
    if (issues.length) throw new ConfigError(issues);
  }

  /**
   * A tenant that names a plugin's stage without configuring the plugin gets its default settings, if
   * it has any; otherwise the issues of an empty settings block, at the path where it belongs.
   */
  defaultSettings(plugin: string, tenantIndex: number, tenantId: string): string[] {
    const state = this.state(plugin);
    if (state.settings.has(tenantId)) return [];
    const parsed = checkAgainst(state.plugin.settingsSchema ?? z.unknown(), {}, `tenants[${tenantIndex}] (${tenantId}).plugins.${plugin}`);
    if (!parsed.success) return parsed.issues;
    state.settings.set(tenantId, parsed.data);
    return [];
  }

  /** Runs one plugin's `setup` with the context made for it; errors are wrapped with the plugin's name. */
  async setup(name: string, makeContext: (state: PluginState) => PluginContext<unknown, unknown>, timeoutMs: number): Promise<void> {
    const state = this.state(name);
    try {
      const hooks = await withDeadline(Promise.resolve(state.plugin.setup(makeContext(state))), timeoutMs, name, 'setup()');
      state.hooks = hooks ?? {};
    } catch (error) {
      throw error instanceof ParleyError && error.plugin === name ? error : new PluginError('PARLEY_PLUGIN_SETUP_FAILED', `Plugin "${name}": setup failed: ${describe(error)}`, 500, { plugin: name, cause: error });
    }
  }

  async start(timeoutMs: number): Promise<void> {
    for (const p of this.plugins) {
      if (p.hooks.start) await withDeadline(Promise.resolve(p.hooks.start()), timeoutMs, p.plugin.name, 'start()');
    }
  }

  /** Stop hooks in reverse order; one that fails or hangs is logged and the others still run. */
  async stop(deadlineMs: number, log: Logger): Promise<void> {
    for (const p of [...this.plugins].reverse()) {
      if (!p.hooks.stop) continue;
      try {
        await withDeadline(Promise.resolve(p.hooks.stop()), deadlineMs, p.plugin.name, 'stop()');
      } catch (error) {
        log.error({ err: error, plugin: p.plugin.name }, 'plugin stop failed');
      }
    }
  }

  private async importAll(): Promise<{ plugin: AnyPlugin; entry: PluginEntry }[]> {
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
        if (!this.catalogue[name]) throw new ConfigError([`tenants[${i}] (${t.id}).plugins.${name}: ${unknownName('plugin', name, Object.keys(this.catalogue))} (built-in: ${Object.keys(this.catalogue).sort().join(', ')}; third-party plugins must be listed under plugins with a module path)`]);
        entries.set(name, { name });
      }
    }
    const loaded: { plugin: AnyPlugin; entry: PluginEntry }[] = [];
    const queue = [...entries.values()];
    while (queue.length) {
      const entry = queue.shift()!;
      const plugin = await importPlugin(entry, this.catalogue, this.baseDir);
      loaded.push({ plugin, entry });
      for (const dep of plugin.dependencies ?? []) {
        if (!entries.has(dep) && this.catalogue[dep]) {
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
        if (parsed.success) this.state(name).settings.set(t.id, parsed.data);
        else issues.push(...parsed.issues);
      }
    });
    if (issues.length) throw new ConfigError(issues);
  }
}

/**
 * Builds the `ctx` one plugin's `setup` receives: every registration is recorded on the plugin host
 * (or the job runner, outbox, alert hub) under the plugin's name, so errors and metrics can name it.
 */
import type { DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Pool } from 'pg';
import { PluginError } from './errors.js';
import type { ChannelSender, GatewayServices, PluginContext } from './plugin.js';
import { pluginMetrics } from './metrics.js';
import type { PluginHost, PluginState } from './plugin-host.js';
import type { TenantDirectory } from './tenancy.js';
import type { JobRunner } from './jobs/job-runner.js';
import type { OutboxSender } from './outbox.js';
import type { AlertHub } from './alerts.js';
import type { BackgroundWork } from './background.js';
import type { Usage } from './usage.js';
import type { Ai } from './ai/service.js';
import { pluginOptionsPath, tenantPath, type ParleyConfig } from './config.js';

export interface PluginContextDeps {
  config: ParleyConfig;
  host: PluginHost;
  log: Logger;
  db: Pool;
  registry: Registry;
  services: GatewayServices;
  dataDir: string;
  configDir: string;
  publicBaseUrl: string | undefined;
  tenants: TenantDirectory;
  jobs: JobRunner;
  outbox: OutboxSender;
  alerts: AlertHub;
  container: DependencyContainer;
  background: BackgroundWork;
  usage: Usage;
  ai: Ai;
}

export function createPluginContext(deps: PluginContextDeps, state: PluginState): PluginContext<unknown, unknown> {
  const { host, tenants, container } = deps;
  const name = state.plugin.name;
  return {
    name,
    options: state.options,
    log: deps.log.child({ plugin: name }),
    db: deps.db,
    metrics: pluginMetrics(deps.registry, name),
    gateway: deps.services,
    dataDir: deps.dataDir,
    configDir: deps.configDir,
    publicBaseUrl: deps.publicBaseUrl,
    configPath: (tenantId?: string, key = `plugins.${name}`) => (tenantId === undefined ? pluginOptionsPath(deps.config, name) : `${tenantPath(deps.config, tenantId)}.${key}`),
    tenants: () => [...state.settings.entries()].map(([id, settings]) => ({ tenant: tenants.get(id)!, settings })),
    settingsFor: (tenantId) => state.settings.get(tenantId),
    claimAddress: (channel, address, tenantId) => tenants.claimAddress(channel, address, tenantId),
    resolveTenant: (channel, address) => tenants.resolve(channel, address),
    routes: (register) => host.routes.push({ plugin: name, register }),
    apiGuard: (guard) => {
      if (!guard?.name || typeof guard.check !== 'function') throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}": an API guard needs a name and check()`, 500, { plugin: name });
      host.apiGuards.push({ plugin: name, guard });
    },
    stage: (stage) => host.addStage(name, stage),
    replyStage: (stage) => host.addReplyStage(name, stage),
    inboundFilter: (filter) => {
      if (!filter?.name || typeof filter.transform !== 'function') throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}": an inbound filter needs a name and transform()`, 500, { plugin: name });
      host.inboundFilters.push({ plugin: name, filter });
    },
    channelStages: (channel, stageNames) => host.addChannelStages(name, channel, stageNames),
    sender(sender: ChannelSender<unknown>) {
      deps.outbox.register(sender, name);
      host.channelOwners.set(sender.channel, name);
    },
    job: (job) => deps.jobs.define(job, name),
    schedule: (schedule) => deps.jobs.schedule(schedule, name),
    jobs: { add: (queue, data, o) => deps.jobs.add(queue, data, o) },
    migrations: (migrations) => host.migrations.push({ plugin: name, migrations }),
    health: (check) => host.healthChecks.push({ plugin: name, check }),
    dataSubjects: (provider) => host.dataSubjectProviders.push({ plugin: name, provider }),
    alerts: deps.alerts.apiFor(name),
    usage: deps.usage.for(name),
    ai: deps.ai.for(name),
    background: (work, what) => void deps.background.track(work, { plugin: name, what }).catch(() => undefined),
    provide: (token, value) => {
      if (container.isRegistered(token, false)) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}": token ${String(token)} is already provided`, 500, { plugin: name });
      container.register(token, { useValue: value });
    },
    inject: (token) => {
      if (!container.isRegistered(token, false)) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${name}": nothing provides ${String(token)} (list the providing plugin in "dependencies")`, 500, { plugin: name });
      return container.resolve(token) as never;
    },
    tryInject: (token) => (container.isRegistered(token, false) ? (container.resolve(token) as never) : undefined),
  };
}

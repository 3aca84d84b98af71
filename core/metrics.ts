/** One prom-client registry per gateway (so tests can boot several), with the kernel's own metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PluginMetrics } from './plugin.js';
import { PluginError } from './errors.js';

export function createCoreMetrics(registry: Registry) {
  collectDefaultMetrics({ register: registry, prefix: 'parley_' });
  return {
    httpDuration: new Histogram({
      name: 'parley_http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    messagesIn: new Counter({
      name: 'parley_messages_in_total',
      help: 'Inbound messages by tenant, channel and result (processed, stopped, failed, duplicate)',
      labelNames: ['tenant', 'channel', 'result'] as const,
      registers: [registry],
    }),
    messagesOut: new Counter({
      name: 'parley_messages_out_total',
      help: 'Outbound messages by tenant, channel and status (sent, retrying, dead, blocked, inline)',
      labelNames: ['tenant', 'channel', 'status'] as const,
      registers: [registry],
    }),
    stageDuration: new Histogram({
      name: 'parley_pipeline_stage_duration_seconds',
      help: 'Time spent in each pipeline stage itself, by tenant, stage and outcome',
      labelNames: ['tenant', 'stage', 'outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    pipelineDuration: new Histogram({
      name: 'parley_pipeline_duration_seconds',
      help: 'Whole pipeline duration by tenant and channel',
      labelNames: ['tenant', 'channel'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    jobsCompleted: new Counter({
      name: 'parley_jobs_completed_total',
      help: 'Jobs completed by queue',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    jobsFailed: new Counter({
      name: 'parley_jobs_failed_total',
      help: 'Job attempts that failed by queue (final: the job will not be retried)',
      labelNames: ['queue', 'final'] as const,
      registers: [registry],
    }),
    jobCounts: new Gauge({
      name: 'parley_jobs',
      help: 'Jobs by queue and state (waiting, active, delayed, failed)',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
    }),
    backgroundFailures: new Counter({
      name: 'parley_background_failures_total',
      help: 'Tracked fire-and-forget tasks (ctx.background, kernel work) that failed, by plugin',
      labelNames: ['plugin'] as const,
      registers: [registry],
    }),
    handoffs: new Counter({
      name: 'parley_handoffs_total',
      help: 'Conversations handed to a person or back to the bot, by tenant, new state (to) and who changed it (stage, operator)',
      labelNames: ['tenant', 'to', 'by'] as const,
      registers: [registry],
    }),
    replyVerdicts: new Counter({
      name: 'parley_reply_stage_verdicts_total',
      help: 'Outgoing messages a reply stage blocked or held, or held because it failed, by tenant, stage and verdict',
      labelNames: ['tenant', 'stage', 'verdict'] as const,
      registers: [registry],
    }),
    outbox: new Gauge({
      name: 'parley_outbox_messages',
      help: 'Outbox items by tenant and status (pending, retrying, sending, held, dead)',
      labelNames: ['tenant', 'status'] as const,
      registers: [registry],
    }),
  };
}

export type CoreMetrics = ReturnType<typeof createCoreMetrics>;

/** Which plugin registered each plugin metric, per registry; anything else in a registry is the kernel's. */
const metricOwners = new WeakMap<Registry, Map<string, string>>();

/**
 * What a plugin's `ctx.metrics` is: constructors bound to the gateway's registry, names checked. A plugin
 * asking twice for a name gets its own metric back; a name the kernel or another plugin registered is
 * refused (`PARLEY_PLUGIN_METRIC_TAKEN`): plugins share metrics through `ctx.provide`, not by name.
 */
export function pluginMetrics(registry: Registry, plugin: string): PluginMetrics {
  const owners = metricOwners.get(registry) ?? new Map<string, string>();
  metricOwners.set(registry, owners);
  const check = (name: string) => {
    if (!/^parley_[a-z0-9_]+$/.test(name)) throw new PluginError('PARLEY_PLUGIN_INVALID', `Plugin "${plugin}": metric name "${name}" must match parley_[a-z0-9_]+`, 500, { plugin });
    const existing = registry.getSingleMetric(name);
    const owner = owners.get(name);
    if (existing && owner !== plugin) {
      throw new PluginError('PARLEY_PLUGIN_METRIC_TAKEN', `Plugin "${plugin}": metric "${name}" is registered by ${owner ? `plugin "${owner}"` : 'the kernel'}`, 500, { plugin });
    }
    owners.set(name, plugin);
    return existing;
  };
  return {
    registry,
    counter(cfg) {
      return (check(cfg.name) as Counter<never>) ?? new Counter({ ...cfg, labelNames: cfg.labelNames ?? [], registers: [registry] });
    },
    gauge(cfg) {
      return (check(cfg.name) as Gauge<never>) ?? new Gauge({ ...cfg, labelNames: cfg.labelNames ?? [], registers: [registry] });
    },
    histogram(cfg) {
      return (check(cfg.name) as Histogram<never>) ?? new Histogram({ ...cfg, labelNames: cfg.labelNames ?? [], registers: [registry] });
    },
  } as PluginMetrics;
}

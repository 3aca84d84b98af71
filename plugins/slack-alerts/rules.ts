/**
 * The rule evaluator: turns snapshots of the gateway's own metrics (and a few outbox counts) into
 * alerts to raise or resolve. It keeps the history it needs for sliding windows, takes the time from
 * each snapshot, and does no I/O, so tests drive it with hand-made snapshots and a fake clock.
 */
import type { Rule, Severity } from './types.js';

/** One metric value as prom-client reports it (histogram buckets carry their `_bucket` name and `le`). */
export interface MetricSample {
  name: string;
  labels: Record<string, string | number>;
  value: number;
}

export interface Snapshot {
  /** Milliseconds since the epoch. */
  at: number;
  samples: MetricSample[];
  /** Per database-backed rule (by rule name): a count per tenant. */
  counts: Record<string, Record<string, number>>;
}

export interface RuleAlert {
  key: string;
  tenantId?: string;
  severity: Severity;
  summary: string;
  details: Record<string, unknown>;
}

export type RuleDecision = { action: 'raise'; rule: string; alert: RuleAlert } | { action: 'resolve'; rule: string; key: string; tenantId?: string };

/** Readings from prom-client's `getMetricsAsJSON()`, flattened. */
export function flattenMetrics(metrics: { name: string; values: { value: number; labels: Partial<Record<string, string | number>>; metricName?: string }[] }[]): MetricSample[] {
  const out: MetricSample[] = [];
  for (const m of metrics) {
    for (const v of m.values) {
      const labels: Record<string, string | number> = {};
      for (const [k, l] of Object.entries(v.labels)) if (l !== undefined) labels[k] = l;
      out.push({ name: v.metricName ?? m.name, labels, value: v.value });
    }
  }
  return out;
}

export const ruleName = (rule: Rule): string => rule.name ?? rule.kind;

/** Database-backed rules; the plugin fills `Snapshot.counts[ruleName]` for these. */
export function needsCounts(rule: Rule): rule is Extract<Rule, { kind: 'outbox-backlog' | 'dead-letters' }> {
  return rule.kind === 'outbox-backlog' || rule.kind === 'dead-letters';
}

const UP_STATES = new Set(['ready', 'standby']);
const SESSION_GAUGE = /^parley_([a-z0-9_]+)_session_state$/;

export class RuleEvaluator {
  private readonly history: Snapshot[] = [];
  private readonly firing = new Map<string, { rule: string; key: string; tenantId: string | undefined }>();
  /** When a session gauge was first seen out of `ready`, by metric and tenant. */
  private readonly sessionDownSince = new Map<string, number>();
  private readonly maxWindowMs: number;

  constructor(private readonly rules: readonly Rule[]) {
    this.maxWindowMs = Math.max(0, ...rules.map((r) => ('windowMs' in r ? r.windowMs : 0)));
  }

  /** Evaluates every rule on a new snapshot; returns what is firing now and what stopped firing. */
  evaluate(snapshot: Snapshot): RuleDecision[] {
    const decisions: RuleDecision[] = [];
    const active = new Set<string>();
    for (const rule of this.rules) {
      const name = ruleName(rule);
      const alerts = this.evaluateRule(rule, snapshot);
      if (alerts === undefined) {
        // Not enough history yet: whatever this rule has open stays open.
        for (const [id, f] of this.firing) if (f.rule === name) active.add(id);
        continue;
      }
      for (const alert of alerts) {
        const id = alertId(alert.key, alert.tenantId);
        active.add(id);
        this.firing.set(id, { rule: name, key: alert.key, tenantId: alert.tenantId });
        decisions.push({ action: 'raise', rule: name, alert });
      }
    }
    this.history.push(snapshot);
    this.prune(snapshot.at);
    for (const [id, f] of this.firing) {
      if (active.has(id)) continue;
      this.firing.delete(id);
      decisions.push({ action: 'resolve', rule: f.rule, key: f.key, ...(f.tenantId ? { tenantId: f.tenantId } : {}) });
    }
    return decisions;
  }

  private evaluateRule(rule: Rule, s: Snapshot): RuleAlert[] | undefined {
    const name = ruleName(rule);
    const key = `rule.${name}`;
    switch (rule.kind) {
      case 'error-rate': {
        const base = this.baseline(s.at, rule.windowMs);
        if (!base) return undefined;
        const total = deltaBy(s, base, 'parley_messages_in_total', (l) => l['result'] !== 'duplicate');
        const failed = deltaBy(s, base, 'parley_messages_in_total', (l) => l['result'] === 'failed');
        const alerts: RuleAlert[] = [];
        for (const [tenant, n] of total) {
          const f = failed.get(tenant) ?? 0;
          if (n < rule.minMessages || f / n < rule.threshold) continue;
          alerts.push({
            key,
            tenantId: tenant,
            severity: rule.severity,
            summary: `${percent(f / n)} of messages failed in the last ${duration(rule.windowMs)}`,
            details: { 'Error rate': percent(f / n), Failed: f, Messages: n, Threshold: percent(rule.threshold), Window: duration(rule.windowMs) },
          });
        }
        return alerts;
      }
      case 'p95-latency': {
        const base = this.baseline(s.at, rule.windowMs);
        if (!base) return undefined;
        const metric = rule.stage ? 'parley_pipeline_stage_duration_seconds_bucket' : 'parley_pipeline_duration_seconds_bucket';
        const buckets = new Map<string, Map<number, number>>();
        for (const [labels, value] of deltaSamples(s, base, metric, (l) => !rule.stage || l['stage'] === rule.stage)) {
          const tenant = String(labels['tenant'] ?? '*');
          const le = labels['le'] === '+Inf' ? Infinity : Number(labels['le']);
          const byLe = buckets.get(tenant) ?? new Map<number, number>();
          byLe.set(le, (byLe.get(le) ?? 0) + value);
          buckets.set(tenant, byLe);
        }
        const alerts: RuleAlert[] = [];
        for (const [tenant, byLe] of buckets) {
          const count = byLe.get(Infinity) ?? 0;
          if (count < rule.minMessages) continue;
          const p95 = histogramQuantile(0.95, byLe);
          if (p95 * 1000 < rule.thresholdMs) continue;
          const what = rule.stage ? `stage "${rule.stage}"` : 'the pipeline';
          alerts.push({
            key,
            tenantId: tenant,
            severity: rule.severity,
            summary: `p95 latency of ${what} is ${seconds(p95)} (over ${seconds(rule.thresholdMs / 1000)})`,
            details: { p95: seconds(p95), Threshold: seconds(rule.thresholdMs / 1000), Messages: count, Window: duration(rule.windowMs), ...(rule.stage ? { Stage: rule.stage } : {}) },
          });
        }
        return alerts;
      }
      case 'outbox-backlog':
      case 'dead-letters': {
        const counts = s.counts[name];
        if (!counts) return undefined;
        return Object.entries(counts)
          .filter(([, n]) => n >= rule.threshold)
          .map(([tenant, n]) =>
            rule.kind === 'outbox-backlog'
              ? { key, tenantId: tenant, severity: rule.severity, summary: `${n} replies waiting in the outbox for more than ${duration(rule.olderThanMs)}`, details: { Waiting: n, 'Older than': duration(rule.olderThanMs), Threshold: rule.threshold } }
              : { key, tenantId: tenant, severity: rule.severity, summary: `${n} ${n === 1 ? 'reply' : 'replies'} became dead letters in the last ${duration(rule.windowMs)}`, details: { 'Dead letters': n, Window: duration(rule.windowMs), Threshold: rule.threshold } },
          );
      }
      case 'channel-down': {
        const alerts: RuleAlert[] = [];
        const base = this.baseline(s.at, rule.windowMs);
        if (base) {
          const sent = deltaBy(s, base, 'parley_messages_out_total', (l) => l['status'] === 'sent' || l['status'] === 'inline', ['tenant', 'channel']);
          const failed = deltaBy(s, base, 'parley_messages_out_total', (l) => l['status'] === 'retrying' || l['status'] === 'dead', ['tenant', 'channel']);
          for (const [id, n] of failed) {
            if (n < rule.minFailures || (sent.get(id) ?? 0) > 0) continue;
            const [tenant, channel] = id.split('\u0000') as [string, string];
            alerts.push({ key: `${key}.${channel}`, tenantId: tenant, severity: rule.severity, summary: `Every send on ${channel} failed in the last ${duration(rule.windowMs)}`, details: { Channel: channel, 'Failed sends': n, Sent: 0, Window: duration(rule.windowMs) } });
          }
        }
        const seen = new Set<string>();
        for (const sample of s.samples) {
          const m = SESSION_GAUGE.exec(sample.name);
          if (!m || sample.value !== 1 || sample.labels['tenant'] === undefined) continue;
          const tenant = String(sample.labels['tenant']);
          const state = String(sample.labels['state'] ?? 'unknown');
          const id = `${sample.name}\u0000${tenant}`;
          if (UP_STATES.has(state)) continue;
          seen.add(id);
          const since = this.sessionDownSince.get(id) ?? s.at;
          this.sessionDownSince.set(id, since);
          if (s.at - since < rule.sessionDownForMs) continue;
          const channel = m[1]!.replace(/_/g, '-');
          if (alerts.some((a) => a.key === `${key}.${channel}` && a.tenantId === tenant)) continue;
          alerts.push({ key: `${key}.${channel}`, tenantId: tenant, severity: rule.severity, summary: `${channel} session has been ${state} for ${duration(s.at - since)}`, details: { Channel: channel, State: state, 'Down for': duration(s.at - since) } });
        }
        for (const id of this.sessionDownSince.keys()) if (!seen.has(id)) this.sessionDownSince.delete(id);
        return alerts;
      }
      case 'signature-failures': {
        const base = this.baseline(s.at, rule.windowMs);
        if (!base) return undefined;
        const byTenant = new Map<string, number>();
        for (const metric of rule.metrics) {
          for (const [tenant, n] of deltaBy(s, base, metric, () => true)) byTenant.set(tenant, (byTenant.get(tenant) ?? 0) + n);
        }
        return [...byTenant]
          .filter(([, n]) => n >= rule.threshold)
          .map(([tenant, n]) => ({
            key,
            ...(tenant === '*' ? {} : { tenantId: tenant }),
            severity: rule.severity,
            summary: `${n} webhook signature failures in the last ${duration(rule.windowMs)}: forged requests or a wrong secret`,
            details: { 'Signature failures': n, Threshold: rule.threshold, Window: duration(rule.windowMs) },
          }));
      }
    }
  }

  /** The newest snapshot at least `windowMs` old, else the oldest one (a window still filling). */
  private baseline(now: number, windowMs: number): Snapshot | undefined {
    let candidate: Snapshot | undefined;
    for (const h of this.history) {
      if (h.at <= now - windowMs) candidate = h;
      else break;
    }
    return candidate ?? this.history[0];
  }

  private prune(now: number): void {
    // Keep the newest snapshot older than the longest window, so that window always has a baseline.
    while (this.history.length > 1 && this.history[1]!.at <= now - this.maxWindowMs) this.history.shift();
  }
}

function alertId(key: string, tenantId: string | undefined): string {
  return `${tenantId ?? '*'}\u0000${key}`;
}

function labelKey(labels: Record<string, string | number>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

/** Per label set, how much a counter grew between two snapshots (a reset counts from zero). */
function deltaSamples(now: Snapshot, base: Snapshot, name: string, where: (labels: Record<string, string | number>) => boolean): [Record<string, string | number>, number][] {
  const before = new Map<string, number>();
  for (const s of base.samples) if (s.name === name && where(s.labels)) before.set(labelKey(s.labels), s.value);
  const out: [Record<string, string | number>, number][] = [];
  for (const s of now.samples) {
    if (s.name !== name || !where(s.labels)) continue;
    const prev = before.get(labelKey(s.labels)) ?? 0;
    out.push([s.labels, s.value >= prev ? s.value - prev : s.value]);
  }
  return out;
}

/** Counter growth summed by the given labels (joined with NUL); `*` when a label is absent. */
function deltaBy(now: Snapshot, base: Snapshot, name: string, where: (labels: Record<string, string | number>) => boolean, by: string[] = ['tenant']): Map<string, number> {
  const out = new Map<string, number>();
  for (const [labels, value] of deltaSamples(now, base, name, where)) {
    const id = by.map((b) => String(labels[b] ?? '*')).join('\u0000');
    out.set(id, (out.get(id) ?? 0) + value);
  }
  return out;
}

/** Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding the rank. */
export function histogramQuantile(q: number, cumulative: Map<number, number>): number {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  const total = cumulative.get(Infinity) ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const bound of bounds) {
    const count = cumulative.get(bound)!;
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(count - prevCount, 1e-9);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

function percent(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
}

function seconds(s: number): string {
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(1)} s`;
}

export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round((ms / 3_600_000) * 10) / 10} h`;
}

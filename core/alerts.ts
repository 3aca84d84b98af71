/**
 * The kernel's alert API. Plugins raise and resolve alerts by key; sinks deliver them. The log is
 * always a sink; `slack-alerts` adds Slack. A raised key that is already open is not repeated.
 */
import type { Logger } from 'pino';
import type { AlertApi, AlertSink } from './plugin.js';

export type AlertSeverity = 'info' | 'warning' | 'critical';

export interface AlertInput {
  key: string;
  severity: AlertSeverity;
  summary: string;
  tenantId?: string;
  details?: Record<string, unknown>;
  /** The plugin that raised it (filled in by the kernel). */
  source: string;
}

export interface AlertEvent extends AlertInput {
  state: 'firing' | 'resolved';
  at: Date;
  firstAt: Date;
}

export class AlertHub {
  private readonly open = new Map<string, AlertEvent>();
  private readonly sinks: AlertSink[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly log: Logger) {}

  private id(key: string, tenantId?: string): string {
    return `${tenantId ?? '*'}\u0000${key}`;
  }

  addSink(sink: AlertSink): void {
    this.sinks.push(sink);
  }

  openAlerts(): AlertEvent[] {
    return [...this.open.values()];
  }

  raise(input: AlertInput): void {
    const id = this.id(input.key, input.tenantId);
    const existing = this.open.get(id);
    const now = new Date();
    const event: AlertEvent = { ...input, state: 'firing', at: now, firstAt: existing?.firstAt ?? now };
    this.open.set(id, event);
    if (existing && existing.severity === input.severity) return;
    this.dispatch(event);
  }

  resolve(key: string, tenantId?: string): void {
    const id = this.id(key, tenantId);
    const existing = this.open.get(id);
    if (!existing) return;
    this.open.delete(id);
    this.dispatch({ ...existing, state: 'resolved', at: new Date() });
  }

  private dispatch(event: AlertEvent): void {
    const level = event.state === 'resolved' ? 'info' : event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
    this.log[level]({ alert: { key: event.key, tenant: event.tenantId, severity: event.severity, state: event.state, source: event.source, details: event.details } }, `alert ${event.state}: ${event.summary}`);
    for (const sink of this.sinks) {
      const p = sink
        .deliver(event)
        .catch((error: unknown) => this.log.error({ err: error, sink: sink.name, alert: event.key }, 'alert sink failed'))
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  /** Waits for deliveries in flight (shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  apiFor(source: string): AlertApi {
    return {
      raise: (alert) => this.raise({ ...alert, source }),
      resolve: (key, tenantId) => this.resolve(key, tenantId),
      sink: (sink) => this.addSink(sink),
    };
  }
}

/** The reminders plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';
import type { RemindersService } from './service.js';

export function remindersMetrics(metrics: PluginMetrics, counts: () => Promise<Awaited<ReturnType<RemindersService['activeCounts']>>>) {
  let reading: ReturnType<typeof counts> | null = null;
  const read = () => (reading ??= counts().finally(() => (reading = null)));
  return {
    created: metrics.counter({ name: 'parley_reminders_created_total', help: 'Reminders created, by tenant, source (conversation, api) and kind (once, recurring)', labelNames: ['tenant', 'source', 'kind'] as const }),
    cancelled: metrics.counter({ name: 'parley_reminders_cancelled_total', help: 'Reminders cancelled, by tenant', labelNames: ['tenant'] as const }),
    withdrawn: metrics.counter({ name: 'parley_reminders_withdrawn_total', help: 'Queued reminder messages withdrawn from the outbox before they went, because the reminder was cancelled, by tenant', labelNames: ['tenant'] as const }),
    queued: metrics.counter({ name: 'parley_reminders_queued_total', help: 'Reminder occurrences queued to the outbox (consent is checked at send), by tenant', labelNames: ['tenant'] as const }),
    deferred: metrics.counter({ name: 'parley_reminders_quiet_deferred_total', help: 'Reminder occurrences sent at the end of quiet hours instead of their time, by tenant', labelNames: ['tenant'] as const }),
    missed: metrics.counter({ name: 'parley_reminders_missed_total', help: 'Reminder occurrences skipped because they were found later than the grace window, by tenant', labelNames: ['tenant'] as const }),
    failures: metrics.counter({ name: 'parley_reminders_failures_total', help: 'Sends that could not be queued (retried on the next tick), by tenant and what', labelNames: ['tenant', 'what'] as const }),
    commands: metrics.counter({ name: 'parley_reminders_commands_total', help: 'Plain-language commands on a channel, by tenant, command and language', labelNames: ['tenant', 'command', 'lang'] as const }),
    runs: metrics.counter({ name: 'parley_deliveries_runs_total', help: 'Scheduled delivery runs by tenant, trigger (schedule, run-now) and status (started, completed, failed, missed)', labelNames: ['tenant', 'trigger', 'status'] as const }),
    recipients: metrics.counter({ name: 'parley_deliveries_recipients_total', help: 'Scheduled delivery recipients by tenant and result (selected, queued, skipped-opted-out, skipped-once)', labelNames: ['tenant', 'result'] as const }),
    activeReminders: metrics.gauge({
      name: 'parley_reminders_active',
      help: 'Active reminders by tenant',
      labelNames: ['tenant'] as const,
      async collect() {
        this.reset();
        for (const r of (await read()).reminders) this.set({ tenant: r.tenantId }, r.n);
      },
    }),
    activeSchedules: metrics.gauge({
      name: 'parley_deliveries_schedules_active',
      help: 'Active delivery schedules by tenant',
      labelNames: ['tenant'] as const,
      async collect() {
        this.reset();
        for (const r of (await read()).schedules) this.set({ tenant: r.tenantId }, r.n);
      },
    }),
  };
}

export type RemindersMetrics = ReturnType<typeof remindersMetrics>;

/** The plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';

export function dsarMetrics(metrics: PluginMetrics, counts: () => Promise<{ tenant_id: string; status: string; overdue: boolean; n: number }[]>, auditHeadSeq: () => Promise<number>) {
  return {
    requests: metrics.gauge({
      name: 'parley_dsar_requests',
      help: 'Data-subject requests by tenant, status and whether they are overdue',
      labelNames: ['tenant', 'status', 'overdue'] as const,
      async collect() {
        this.reset();
        for (const r of await counts()) this.set({ tenant: r.tenant_id, status: r.status, overdue: String(r.overdue) }, r.n);
      },
    }),
    created: metrics.counter({ name: 'parley_dsar_requests_created_total', help: 'Data-subject requests created, by tenant, type and channel (api or channel)', labelNames: ['tenant', 'type', 'via'] as const }),
    completed: metrics.counter({ name: 'parley_dsar_requests_finished_total', help: 'Data-subject requests finished, by tenant, type and outcome (completed, failed)', labelNames: ['tenant', 'type', 'outcome'] as const }),
    duration: metrics.histogram({ name: 'parley_dsar_run_duration_seconds', help: 'Time to run an export or an erasure', labelNames: ['type'] as const, buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800] }),
    erasedRows: metrics.counter({ name: 'parley_dsar_erased_rows_total', help: 'Rows erased by data-subject erasures, by tenant and provider', labelNames: ['tenant', 'provider'] as const }),
    overdueAlerts: metrics.counter({ name: 'parley_dsar_deadline_alerts_total', help: 'Deadline alerts raised, by tenant and kind (due-soon, overdue)', labelNames: ['tenant', 'kind'] as const }),
    verifications: metrics.counter({ name: 'parley_dsar_code_checks_total', help: 'One-time codes checked for end-user requests, by outcome (verified, wrong, expired, locked)', labelNames: ['outcome'] as const }),
    purged: metrics.counter({ name: 'parley_retention_purged_rows_total', help: 'Rows purged by retention, by tenant and kind', labelNames: ['tenant', 'kind'] as const }),
    auditHead: metrics.gauge({
      name: 'parley_audit_head_seq',
      help: 'The audit chain head seq (newest row of parley_audit): it only grows, so a drop in the scraped series means rows were deleted',
      async collect() {
        this.set(await auditHeadSeq());
      },
    }),
    downloads: metrics.counter({ name: 'parley_dsar_downloads_total', help: 'Export downloads, by outcome (served, expired, used, invalid)', labelNames: ['outcome'] as const }),
  };
}

export type DsarMetrics = ReturnType<typeof dsarMetrics>;

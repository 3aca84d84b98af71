/** The CRM plugin's Prometheus metrics (listed in its README), per tenant. */
import type { PluginMetrics } from 'parley';
import type { AppointmentStore } from './store.js';

export function crmMetrics(metrics: PluginMetrics, store: AppointmentStore) {
  return {
    scheduled: metrics.counter({ name: 'parley_crm_appointments_scheduled_total', help: 'Appointments booked, by tenant and emergency (true/false)', labelNames: ['tenant', 'emergency'] as const }),
    commands: metrics.counter({ name: 'parley_crm_sms_commands_total', help: 'Texts the CRM answered, by tenant and command (confirm, reschedule, schedule-tomorrow, summary-today)', labelNames: ['tenant', 'command'] as const }),
    leads: metrics.counter({ name: 'parley_crm_leads_total', help: 'People tagged as leads (got in touch, never booked), by tenant', labelNames: ['tenant'] as const }),
    exports: metrics.counter({ name: 'parley_crm_exports_total', help: 'CSV exports served, by tenant and export', labelNames: ['tenant', 'export'] as const }),
    appointments: metrics.gauge({
      name: 'parley_crm_appointments',
      help: 'Appointments kept, by tenant and status',
      labelNames: ['tenant', 'status'] as const,
      async collect() {
        this.reset();
        for (const c of await store.counts()) this.set({ tenant: c.tenantId, status: c.status }, c.n);
      },
    }),
  };
}

export type CrmMetrics = ReturnType<typeof crmMetrics>;

/** The contacts plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';
import type { ContactStore } from './store.js';

export function contactsMetrics(metrics: PluginMetrics, store: ContactStore) {
  return {
    created: metrics.counter({ name: 'parley_contacts_created_total', help: 'Contacts made, by tenant and source (conversation, api, import)', labelNames: ['tenant', 'source'] as const }),
    merged: metrics.counter({ name: 'parley_contacts_merged_total', help: 'Contacts joined, by tenant and how (api: a merge; same-number: a new address linked to the contact with its number)', labelNames: ['tenant', 'how'] as const }),
    imported: metrics.counter({ name: 'parley_contacts_import_rows_total', help: 'CSV import rows by tenant and result (created, updated, failed); dry runs not counted', labelNames: ['tenant', 'result'] as const }),
    contacts: metrics.gauge({
      name: 'parley_contacts',
      help: 'Contacts kept, by tenant',
      labelNames: ['tenant'] as const,
      async collect() {
        this.reset();
        for (const c of await store.counts()) this.set({ tenant: c.tenantId }, c.n);
      },
    }),
  };
}

export type ContactsMetrics = ReturnType<typeof contactsMetrics>;

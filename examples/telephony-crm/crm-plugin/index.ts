/**
 * A third-party CRM plugin for seed 003 (the plumbing business's telephony and CRM), loaded by path
 * exactly as an outside author's would be:
 *
 *   plugins:
 *     - contacts
 *     - name: crm
 *       module: ./crm-plugin/index.ts
 *
 * It imports only `parley` (and zod, pg's types). Customers are the `contacts` plugin's contacts,
 * reached through the service it provides (`contacts.directory`, by key, never its files); the CRM
 * keeps the appointments, keeps each customer's `next_appointment` field and `lead`/`customer` tags
 * current (so `reminders` schedules can send 24-hour reminders, lead follow-ups and win-back texts),
 * answers the owner's "schedule tomorrow" / "summary today" texts and the customers' CONFIRM /
 * RESCHEDULE, and serves the owner's API and CSV exports.
 */
import { z } from 'zod';
import { definePlugin, token } from 'parley';
import { AppointmentStore, migrations } from './store.js';
import { crmMetrics } from './metrics.js';
import { crmRoutes } from './routes.js';
import { crmStage } from './stage.js';
import { CustomerSync, type ContactsDirectoryLike } from './customers.js';

const e164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number (+15551234567)');

export const settingsSchema = z.object({
  /** Numbers of the business owner: their "schedule tomorrow" and "summary today" texts are answered. */
  ownerNumbers: z.array(e164).default([]),
  /** The channel of the customers' numbers in `contacts` (a booked customer's address). */
  contactChannel: z.string().min(1).default('twilio-sms'),
  /** The contact field holding the start of the customer's next appointment (ISO), for reminders' `beforeField`. */
  appointmentField: z.string().min(1).max(64).default('next_appointment'),
  /** Tag of a person who wrote or called and has no appointment; replaced by `customerTag` once booked. */
  leadTag: z.string().min(1).max(64).default('lead'),
  customerTag: z.string().min(1).max(64).default('customer'),
  /** Whole-message words (any case) a customer texts to confirm, or to ask for another time. */
  confirmWords: z.array(z.string().min(1)).default(['CONFIRM', 'YES']),
  rescheduleWords: z.array(z.string().min(1)).default(['RESCHEDULE']),
});
export type CrmSettings = z.output<typeof settingsSchema>;

export function createCrmPlugin(options: { now?: () => Date } = {}) {
  const now = options.now ?? (() => new Date());
  return definePlugin({
    name: 'crm',
    kind: 'capability',
    description: "Appointments of a service business: the owner's schedule and summary texts, CONFIRM/RESCHEDULE by text, reminders' fields, CSV exports.",
    dependencies: ['contacts'],
    settingsSchema,
    setup(ctx) {
      const store = new AppointmentStore(ctx.db);
      const metrics = crmMetrics(ctx.metrics, store);
      const customers = new CustomerSync({ directory: () => ctx.inject(token<ContactsDirectoryLike>('contacts.directory')), store, settingsFor: (t) => ctx.settingsFor(t) as CrmSettings, now });
      const tenantOf = (id: string) => ctx.tenants().find((t) => t.tenant.id === id)?.tenant;
      ctx.migrations(migrations);
      ctx.dataSubjects(store.dataSubjectProvider());
      ctx.stage(crmStage({ store, customers, metrics, now }));
      ctx.routes(crmRoutes({ store, customers, metrics, now, tenantOf, enabled: (t) => ctx.settingsFor(t) !== undefined }));
    },
  });
}

export default createCrmPlugin();

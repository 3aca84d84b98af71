/**
 * The `crm` pipeline stage (after `contacts`, which annotates `contacts.id`): the owner's
 * "schedule tomorrow" and "summary today", a customer's CONFIRM and RESCHEDULE of their next
 * appointment, and the lead tag for a person who got in touch without an appointment.
 */
import type { StageDefinition } from 'parley';
import type { CrmSettings } from './index.js';
import type { CrmMetrics } from './metrics.js';
import type { CustomerSync } from './customers.js';
import { UPCOMING, type AppointmentStore } from './store.js';
import { scheduleText, summaryText } from './summaries.js';

const normal = (text: string) => text.trim().replace(/[.!]+$/, '').replace(/\s+/g, ' ').toLowerCase();

export function crmStage(deps: { store: AppointmentStore; customers: CustomerSync; metrics: CrmMetrics; now: () => Date }): StageDefinition<CrmSettings> {
  return {
    name: 'crm',
    async handle(stage, next) {
      const { tenant, settings, message } = stage;
      const text = normal(message.text ?? '');
      const at = deps.now();
      if (settings.ownerNumbers.includes(message.from)) {
        if (text === 'schedule tomorrow') {
          deps.metrics.commands.inc({ tenant: tenant.id, command: 'schedule-tomorrow' });
          stage.reply(scheduleText(await deps.store.ofLocalDay(tenant.id, tenant.timezone, at, 1), new Date(at.getTime() + 86_400_000), tenant.timezone, tenant.locale));
          return;
        }
        if (text === 'summary today') {
          deps.metrics.commands.inc({ tenant: tenant.id, command: 'summary-today' });
          stage.reply(summaryText(await deps.store.ofLocalDay(tenant.id, tenant.timezone, at, 0), at, tenant.timezone, tenant.locale));
          return;
        }
      }
      const confirm = settings.confirmWords.some((w) => normal(w) === text);
      const reschedule = settings.rescheduleWords.some((w) => normal(w) === text);
      if (confirm || reschedule) {
        const appointment = await deps.store.nextOf(tenant.id, message.from, at);
        if (appointment && UPCOMING.includes(appointment.status)) {
          const when = new Intl.DateTimeFormat(tenant.locale, { timeZone: tenant.timezone, weekday: 'long', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' }).format(appointment.startsAt);
          await deps.store.update(tenant.id, appointment.id, { status: confirm ? 'CONFIRMED' : 'PENDING_RESCHEDULE' });
          deps.metrics.commands.inc({ tenant: tenant.id, command: confirm ? 'confirm' : 'reschedule' });
          stage.annotate('crm.appointment', { id: appointment.id, command: confirm ? 'confirm' : 'reschedule' });
          stage.reply(confirm ? `Thanks, your ${appointment.serviceType} appointment on ${when} is confirmed.` : `Thanks, we'll call you to find a new time for your ${appointment.serviceType} appointment on ${when}.`);
          return;
        }
      }
      const contactId = stage.annotations['contacts.id'];
      if (typeof contactId === 'string' && (await deps.customers.markLead(tenant.id, contactId, message.from))) deps.metrics.leads.inc({ tenant: tenant.id });
      await next();
    },
  };
}

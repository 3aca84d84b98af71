/**
 * `reminders`: reminders of one person (set through the admin API or by the person in plain language,
 * English and Spanish, on their channel) and scheduled deliveries to a tenant's audience (cron with a
 * time zone or one-off; audience by tag, field, inactivity, appointment field; follow-ups once per
 * window), all sent through the outbox once per occurrence, with quiet hours, a missed-send grace
 * window and per-channel rates. Depends on `contacts`.
 */
import { ConfigError, consentAddress, definePlugin, token } from 'parley';
import { SEND_BUDGET } from './budget-api.js';
import { CONTACTS_DIRECTORY } from './contacts-api.js';
import { remindersMetrics } from './metrics.js';
import { remindersRoutes } from './routes.js';
import { RemindersService } from './service.js';
import { remindersStage } from './stage.js';
import { migrations } from './store.js';
import { optionsSchema, settingsSchema } from './types.js';

export { RemindersService, PREVIEW_NOTE, render, type Reminder, type Schedule, type RunRecord } from './service.js';
export { parseCommand, reminderText, type Command } from './parse.js';
export { afterQuietHours, inQuietHours, nextCron, nextOccurrence, wallOf, zonedInstant } from './time.js';
export { REMINDERS_STAGE, describeWhen } from './stage.js';
export type { RemindersOptions, RemindersSettings, Audience } from './types.js';

/** The service (tests drive `tick(now)` with it; plugins may create reminders). */
export const REMINDERS_SERVICE = token<RemindersService>('reminders.service');

/**
 * @example
 * // parley.yaml
 * // plugins: [twilio-sms, contacts, reminders]
 * // tenants:
 * //   - id: clinic
 * //     timezone: America/New_York
 * //     pipeline: [crisis-guard, contacts, reminders, answers]
 * //     replyPipeline: [contacts]
 * //     plugins:
 * //       contacts: { defaultChannel: twilio-sms }
 * //       reminders: { quietHours: { start: '21:00', end: '08:00' }, ratePerMinute: { twilio-sms: 60 } }
 */
export default definePlugin({
  name: 'reminders',
  kind: 'capability',
  description: 'Reminders set by people in plain language (English, Spanish) or the admin API, and scheduled deliveries to an audience, sent once per occurrence with quiet hours and time zones.',
  dependencies: ['contacts'],
  optionsSchema,
  settingsSchema,
  setup(ctx) {
    const issues: string[] = [];
    for (const { tenant, settings } of ctx.tenants()) {
      const q = settings.quietHours;
      if (q && q.start === q.end) issues.push(`${ctx.configPath(tenant.id)}.quietHours: start and end are both ${q.start}; use null for no quiet hours`);
    }
    if (issues.length) throw new ConfigError(issues);

    const contacts = ctx.inject(CONTACTS_DIRECTORY);
    for (const { tenant } of ctx.tenants()) {
      if (!contacts.enabled(tenant.id)) throw new ConfigError([`${ctx.configPath(tenant.id)}: reminders needs contacts enabled for this tenant (add "contacts: {}" to its plugins)`]);
    }
    let service!: RemindersService;
    const metrics = remindersMetrics(ctx.metrics, () => service.activeCounts());
    service = new RemindersService({
      db: ctx.db,
      log: ctx.log,
      gateway: ctx.gateway,
      contacts,
      metrics,
      settingsFor: (id) => ctx.settingsFor(id),
      tenant: (id) => ctx.tenants().find((t) => t.tenant.id === id)?.tenant,
      audiencePageSize: ctx.options.audiencePageSize,
      // Asked at use time: cost-guard may be set up after reminders.
      sendBudget: () => ctx.tryInject(SEND_BUDGET),
    });
    ctx.migrations(migrations);
    ctx.provide(REMINDERS_SERVICE, service);
    // One person, two contacts merged: their reminders follow them.
    contacts.onMerge(async (tenantId, { into, from }) => {
      await service.moveReminders(tenantId, from, into);
    });
    ctx.stage(remindersStage({ service, contacts, metrics }));
    ctx.routes(remindersRoutes({ service, contacts, settingsFor: (id) => ctx.settingsFor(id), tenantZone: (id) => ctx.tenants().find((t) => t.tenant.id === id)?.tenant.timezone ?? 'UTC' }));
    ctx.schedule({ name: 'reminders-tick', cron: ctx.options.tickCron, process: () => service.tick(new Date()) });
    ctx.dataSubjects({
      name: 'reminders',
      describe: () => ({
        purpose: 'Reminders you asked for (what, when, in which time zone) and which of them were sent; and the scheduled messages the business sent you (which run, when, whether it was queued or skipped).',
        recipients: ['The messaging provider of your channel (the reminder text, when sent)'],
        retention: 'Reminders until cancelled or done and then with the conversation records; erased on request.',
        source: 'Your messages ("remind me ..."), and the business (admin API, scheduled deliveries).',
      }),
      export: async (s) => {
        const forms = await subjectContacts(s.tenantId, s.addresses);
        if (!forms.length) return [];
        const out: Record<string, unknown>[] = [];
        for (const r of (await ctx.db.query(`SELECT * FROM reminders WHERE tenant_id = $1 AND contact_id = ANY($2) ORDER BY created_at`, [s.tenantId, forms])).rows) {
          out.push({ kind: 'reminder', ...r, occurrences: (await ctx.db.query(`SELECT occurrence_at, status, outbox_id FROM reminder_occurrences WHERE reminder_id = $1 ORDER BY occurrence_at`, [r.id])).rows });
        }
        for (const d of (await ctx.db.query(`SELECT run_id, channel, status, outbox_id FROM delivery_recipients WHERE tenant_id = $1 AND contact_id = ANY($2)`, [s.tenantId, forms])).rows) out.push({ kind: 'scheduled-delivery', ...d });
        return out;
      },
      erase: async (s) => {
        const forms = await subjectContacts(s.tenantId, s.addresses);
        if (!forms.length) return { erased: 0 };
        const a = await ctx.db.query(`DELETE FROM reminders WHERE tenant_id = $1 AND contact_id = ANY($2)`, [s.tenantId, forms]);
        const b = await ctx.db.query(`DELETE FROM delivery_recipients WHERE tenant_id = $1 AND contact_id = ANY($2)`, [s.tenantId, forms]);
        const c = await ctx.db.query(`DELETE FROM delivery_once WHERE contact_id = ANY($1) AND schedule_id IN (SELECT id FROM delivery_schedules WHERE tenant_id = $2)`, [forms, s.tenantId]);
        return { erased: (a.rowCount ?? 0) + (b.rowCount ?? 0) + (c.rowCount ?? 0) };
      },
    });

    /** Contact ids of a subject, found by address (the contacts provider may erase the contact first: reminders keep the contact id and address too). */
    async function subjectContacts(tenantId: string, addresses: string[]): Promise<string[]> {
      const bare = addresses.map((a) => consentAddress(a));
      const { rows } = await ctx.db.query<{ id: string }>(
        `SELECT contact_id AS id FROM contact_addresses WHERE tenant_id = $1 AND bare = ANY($2)
         UNION SELECT contact_id FROM reminders WHERE tenant_id = $1 AND (address = ANY($3) OR address = ANY($2))
         UNION SELECT contact_id FROM delivery_recipients WHERE tenant_id = $1 AND (address = ANY($3) OR address = ANY($2))`,
        [tenantId, bare, addresses],
      );
      return rows.map((r) => r.id);
    }
  },
});

/**
 * `contacts`: one contact per person per tenant (addresses on each channel, name, time zone,
 * language, tags, custom fields, last inbound and outbound time), made from conversations and through
 * the admin API (create, update, search, CSV import with a dry run and a per-row error report).
 * Consent stays the kernel's; contacts show it. Other plugins use the directory (`CONTACTS_DIRECTORY`).
 */
import { definePlugin, token } from 'parley';
import { ContactsDirectory } from './directory.js';
import { contactsMetrics } from './metrics.js';
import { contactsRoutes } from './routes.js';
import { ContactStore, migrations } from './store.js';
import { settingsSchema } from './types.js';

export { ContactsDirectory, type ImportReport } from './directory.js';
export type { Contact, ContactAddress, ContactInput, ContactQuery } from './store.js';
export type { ContactsSettings } from './types.js';
export { parseCsv, readImport } from './csv.js';

/** The directory service: `ctx.inject(CONTACTS_DIRECTORY)` in a plugin that lists `contacts` in its dependencies. */
export const CONTACTS_DIRECTORY = token<ContactsDirectory>('contacts.directory');
/**
 * A contact's addresses by id, for plugins that take a `contactId` (dsar's data-subject requests):
 * null when the tenant has no such contact. The shape `dsar` expects under this token.
 */
export const CONTACTS_RESOLVER = token<(tenantId: string, contactId: string) => Promise<string[] | null>>('contacts.resolver');
/** The stage and reply stage name. */
export const CONTACTS_STAGE = 'contacts';

/**
 * @example
 * // parley.yaml
 * // plugins: [twilio-sms, contacts]
 * // tenants:
 * //   - id: clinic
 * //     pipeline: [crisis-guard, contacts, reminders, answers]
 * //     replyPipeline: [contacts]
 * //     plugins: { contacts: { defaultChannel: twilio-sms } }
 */
export default definePlugin({
  name: 'contacts',
  kind: 'capability',
  description: 'A contact per person per tenant (addresses, name, time zone, language, tags, fields, last message times), from conversations, the admin API and CSV imports.',
  settingsSchema,
  setup(ctx) {
    const store = new ContactStore(ctx.db);
    const metrics = contactsMetrics(ctx.metrics, store);
    const directory = new ContactsDirectory({ store, consent: ctx.gateway.consent, metrics, tenant: (id) => ctx.tenants().find((t) => t.tenant.id === id)?.tenant, settingsFor: (id) => ctx.settingsFor(id) });
    ctx.migrations(migrations);
    ctx.dataSubjects(store.dataSubjectProvider());
    ctx.provide(CONTACTS_DIRECTORY, directory);
    ctx.provide(CONTACTS_RESOLVER, async (tenantId, contactId) => (await directory.get(tenantId, contactId))?.addresses.map((a) => a.address) ?? null);

    // Every inbound message: make or find the contact, record the time, tell later stages who it is.
    ctx.stage({
      name: CONTACTS_STAGE,
      runsDuringHandoff: true,
      async handle(stage, next) {
        const address = { channel: stage.message.channel, address: stage.message.from };
        const at = stage.message.receivedAt;
        if (stage.settings.autoCreate) {
          const contact = await directory.resolve(stage.tenant.id, address);
          if (contact) {
            await directory.touch(stage.tenant.id, address, 'inbound', at);
            stage.annotate('contacts.id', contact.id);
          }
        } else await directory.touch(stage.tenant.id, address, 'inbound', at);
        await next();
      },
    });
    // Every outgoing message of tenants that list it in replyPipeline (replies and scheduled sends alike).
    ctx.replyStage({
      name: CONTACTS_STAGE,
      async handle(out, next) {
        await next();
        if (!out.verdict) await directory.touch(out.tenant.id, { channel: out.channel, address: out.to }, 'outbound');
      },
    });
    ctx.routes(contactsRoutes(directory));
  },
});

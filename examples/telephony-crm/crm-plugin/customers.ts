/**
 * Customers are the `contacts` plugin's contacts. The CRM reaches them through the service that plugin
 * provides under the key `contacts.directory`, typed here by the few methods it calls (a plugin never
 * imports another's files). After every change of a customer's appointments it writes the start of
 * their next one into a contact field and moves the `lead` tag to `customer`: the `reminders`
 * plugin's schedules read both (`beforeField`, `tags`).
 */
import type { AppointmentStore } from './store.js';
import type { CrmSettings } from './index.js';

interface ContactLike {
  id: string;
  name: string | null;
  tags: string[];
  addresses: { channel: string; address: string }[];
}

/** The part of the contacts plugin's `ContactsDirectory` the CRM uses. */
export interface ContactsDirectoryLike {
  resolve(tenantId: string, address: { channel: string; address: string }, opts?: { create?: boolean; source?: 'conversation' | 'api' | 'import' }): Promise<ContactLike | null>;
  get(tenantId: string, id: string): Promise<ContactLike | null>;
  update(tenantId: string, id: string, input: { name?: string | null; tags?: string[]; fields?: Record<string, unknown>; addresses?: { channel: string; address: string }[] }): Promise<ContactLike | null>;
}

export class CustomerSync {
  constructor(private readonly deps: { directory: () => ContactsDirectoryLike; store: AppointmentStore; settingsFor: (tenantId: string) => CrmSettings | undefined; now: () => Date }) {}

  private settings(tenantId: string): CrmSettings {
    const s = this.deps.settingsFor(tenantId);
    if (!s) throw new Error(`crm is not enabled for tenant "${tenantId}"`);
    return s;
  }

  /** The contact of a number being booked (made when new), named when a name is given. */
  async customerFor(tenantId: string, phone: string, name: string | null): Promise<ContactLike> {
    const s = this.settings(tenantId);
    const directory = this.deps.directory();
    const contact = await directory.resolve(tenantId, { channel: s.contactChannel, address: phone }, { create: true, source: 'api' });
    if (!contact) throw new Error(`contacts refused to make a contact for tenant "${tenantId}"`);
    if (name && !contact.name) return (await directory.update(tenantId, contact.id, { name })) ?? contact;
    return contact;
  }

  /** The contact's `next_appointment` field and tags, from its appointments as they are now. */
  async sync(tenantId: string, contactId: string): Promise<void> {
    const s = this.settings(tenantId);
    const directory = this.deps.directory();
    const contact = await directory.get(tenantId, contactId);
    if (!contact) return;
    const next = await this.deps.store.nextStartOfContact(tenantId, contactId, this.deps.now());
    const tags = [...contact.tags.filter((t) => t !== s.leadTag && t !== s.customerTag), s.customerTag];
    await directory.update(tenantId, contactId, { tags, fields: { [s.appointmentField]: next ? next.toISOString() : null } });
  }

  /**
   * A person who got in touch and was never booked becomes a lead (once). A caller's contact also gets
   * their number on the SMS channel, so follow-ups and reminders can text them.
   */
  async markLead(tenantId: string, contactId: string, phone: string): Promise<boolean> {
    const s = this.settings(tenantId);
    const directory = this.deps.directory();
    const contact = await directory.get(tenantId, contactId);
    if (!contact || contact.tags.includes(s.leadTag) || contact.tags.includes(s.customerTag)) return false;
    if (await this.deps.store.hasAny(tenantId, phone)) return false;
    const textable = contact.addresses.some((a) => a.channel === s.contactChannel && a.address === phone);
    const other = textable ? null : await directory.resolve(tenantId, { channel: s.contactChannel, address: phone }, { create: false });
    // The number already texted as another contact: that one is tagged when it writes; this one stays as it is.
    if (other) return false;
    await directory.update(tenantId, contactId, { tags: [...contact.tags, s.leadTag], ...(textable ? {} : { addresses: [{ channel: s.contactChannel, address: phone }] }) });
    return true;
  }
}

/**
 * The service other plugins use (`ctx.inject(CONTACTS_DIRECTORY)`): resolve an address to its contact
 * (made on demand), read and search contacts, record message times, read consent, and the import.
 */
import type { ConsentStore, TenantInfo } from 'parley';
import { readImport, type RowError } from './csv.js';
import type { ContactsMetrics } from './metrics.js';
import { AddressTaken, type Contact, type ContactAddress, type ContactInput, type ContactQuery, type ContactStore } from './store.js';
import type { ContactsSettings } from './types.js';

export interface ImportReport {
  dryRun: boolean;
  rows: number;
  created: number;
  updated: number;
  failed: number;
  /** One entry per refused row: its line in the file and every problem found. */
  errors: RowError[];
}

/** What a plugin that keeps contact ids does when two contacts become one. */
export type MergeListener = (tenantId: string, merge: { into: string; from: string }) => Promise<void>;

export class ContactsDirectory {
  private readonly mergeListeners = new Set<MergeListener>();

  constructor(
    private readonly deps: {
      store: ContactStore;
      consent: ConsentStore;
      metrics: ContactsMetrics;
      tenant(id: string): TenantInfo | undefined;
      settingsFor(tenantId: string): ContactsSettings | undefined;
    },
  ) {}

  /** Whether the tenant enabled contacts. */
  enabled(tenantId: string): boolean {
    return this.deps.settingsFor(tenantId) !== undefined;
  }

  /**
   * The contact of a channel address. With `create` (the default) one is made when there is none,
   * with the tenant's time zone and locale left to apply (stored as null).
   * @example const contact = await directory.resolve('clinic', { channel: 'twilio-sms', address: '+15551234567' });
   */
  async resolve(tenantId: string, address: ContactAddress, opts: { create?: boolean; source?: Contact['source'] } = {}): Promise<Contact | null> {
    if (opts.create === false) return this.deps.store.byAddress(tenantId, address.channel, address.address);
    if (this.deps.settingsFor(tenantId)?.linkSameNumber && !(await this.deps.store.byAddress(tenantId, address.channel, address.address))) {
      const linked = await this.deps.store.linkSameNumber(tenantId, address);
      if (linked) {
        this.deps.metrics.merged.inc({ tenant: tenantId, how: 'same-number' });
        return linked;
      }
    }
    const { contact, created } = await this.deps.store.ensure(tenantId, address, { source: opts.source ?? 'conversation' });
    if (created) this.deps.metrics.created.inc({ tenant: tenantId, source: contact.source });
    return contact;
  }

  get(tenantId: string, id: string): Promise<Contact | null> {
    return this.deps.store.get(tenantId, id);
  }

  search(tenantId: string, query: ContactQuery): Promise<{ contacts: Contact[]; total: number; sortAts: string[] }> {
    return this.deps.store.search(tenantId, query);
  }

  async create(tenantId: string, input: ContactInput): Promise<Contact> {
    const contact = await this.deps.store.create(tenantId, input, 'api');
    this.deps.metrics.created.inc({ tenant: tenantId, source: 'api' });
    return contact;
  }

  update(tenantId: string, id: string, input: ContactInput & { removeAddresses?: ContactAddress[] }): Promise<Contact | null> {
    return this.deps.store.update(tenantId, id, input);
  }

  /**
   * Folds contact `from` into `into` (see `ContactStore.merge`), then tells the plugins that keep
   * contact ids (`onMerge`), so a person's reminders follow them. Null when either is not the tenant's.
   * @example const r = await directory.merge('clinic', smsContactId, whatsappContactId, 'operator');
   */
  async merge(tenantId: string, into: string, from: string, actor: string): Promise<{ contact: Contact; movedAddresses: number } | null> {
    const merged = await this.deps.store.merge(tenantId, into, from, actor);
    if (!merged) return null;
    this.deps.metrics.merged.inc({ tenant: tenantId, how: 'api' });
    for (const listener of this.mergeListeners) await listener(tenantId, { into, from });
    return merged;
  }

  /**
   * Called after each merge, once `from` is gone: move what names it to `into`. Returns its own
   * unregister function. A listener that throws fails the merge call after the merge committed (the
   * caller sees the error; run the listener's work again to finish).
   */
  onMerge(listener: MergeListener): () => void {
    this.mergeListeners.add(listener);
    return () => this.mergeListeners.delete(listener);
  }

  remove(tenantId: string, id: string): Promise<boolean> {
    return this.deps.store.remove(tenantId, id);
  }

  /** Record a message's time (the stage and reply stage do this for every message of enabled tenants). */
  touch(tenantId: string, address: ContactAddress, direction: 'inbound' | 'outbound', at = new Date()): Promise<boolean> {
    return this.deps.store.touch(tenantId, address, direction, at);
  }

  /** The zone to read the contact's times in: its own, else the tenant's. */
  timezoneOf(contact: Pick<Contact, 'timezone' | 'tenantId'>): string {
    return contact.timezone ?? this.deps.tenant(contact.tenantId)?.timezone ?? 'UTC';
  }

  /** The contact's language, else the tenant's locale. */
  languageOf(contact: Pick<Contact, 'language' | 'tenantId'>): string {
    return contact.language ?? this.deps.tenant(contact.tenantId)?.locale ?? 'en-US';
  }

  /** The contact's address on a channel (its first one when no channel is named). */
  addressOn(contact: Contact, channel?: string): ContactAddress | null {
    return contact.addresses.find((a) => !channel || a.channel === channel) ?? null;
  }

  /** Consent as the kernel keeps it, per address (read only: consent stays the kernel's). */
  async consentOf(contact: Contact): Promise<{ channel: string; address: string; optedOut: boolean }[]> {
    const out = [];
    for (const a of contact.addresses) out.push({ ...a, optedOut: await this.deps.consent.isOptedOut(contact.tenantId, a.address) });
    return out;
  }

  /** Checks every row, then (unless a dry run) creates or updates a contact per valid row. */
  async import(tenantId: string, csv: string, dryRun: boolean): Promise<ImportReport> {
    const settings = this.deps.settingsFor(tenantId);
    const { rows, errors } = readImport(csv, { defaultChannel: settings?.defaultChannel, maxRows: settings?.maxImportRows ?? 5000 });
    let created = 0;
    let updated = 0;
    for (const row of rows) {
      const address = row.input.addresses[0]!;
      const existing = await this.deps.store.byAddress(tenantId, address.channel, address.address);
      if (dryRun) {
        existing ? updated++ : created++;
        continue;
      }
      try {
        if (existing) {
          const { addresses: _same, ...rest } = row.input;
          await this.deps.store.update(tenantId, existing.id, { ...rest, ...(row.input.tags ? { tags: [...new Set([...existing.tags, ...row.input.tags])] } : {}) });
          updated++;
        } else {
          await this.deps.store.create(tenantId, row.input, 'import');
          created++;
        }
      } catch (error) {
        errors.push({ line: row.line, errors: [error instanceof AddressTaken ? `address: already used by contact ${error.contactId}` : `not saved: ${(error as Error).message}`] });
      }
    }
    errors.sort((a, b) => a.line - b.line);
    if (!dryRun) {
      this.deps.metrics.imported.inc({ tenant: tenantId, result: 'created' }, created);
      this.deps.metrics.imported.inc({ tenant: tenantId, result: 'updated' }, updated);
      this.deps.metrics.imported.inc({ tenant: tenantId, result: 'failed' }, errors.length);
      if (created) this.deps.metrics.created.inc({ tenant: tenantId, source: 'import' }, created);
    }
    return { dryRun, rows: rows.length + errors.filter((e) => e.line > 1).length, created, updated, failed: errors.length, errors };
  }
}

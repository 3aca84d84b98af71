/**
 * What reminders uses of the `contacts` plugin's directory, declared here: a plugin imports only its own
 * folder and `parley`, and reaches a dependency's service through its token (`contacts.directory`).
 * Structurally the same as `ContactsDirectory` in plugins/contacts.
 */
import { token } from 'parley';

export interface ContactAddress {
  channel: string;
  address: string;
}

export interface Contact {
  id: string;
  tenantId: string;
  name: string | null;
  timezone: string | null;
  language: string | null;
  tags: string[];
  fields: Record<string, unknown>;
  source: 'conversation' | 'api' | 'import';
  addresses: ContactAddress[];
  lastInboundAt: Date | null;
  lastOutboundAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface ContactQuery {
  tags?: string[];
  anyTags?: string[];
  fields?: Record<string, string | number | boolean>;
  inactiveDays?: number;
  sinceLastInboundDays?: number;
  channel?: string;
  q?: string;
  limit?: number;
  offset?: number;
  /** Keyset paging: contacts after this one in (created_at, id) order. */
  after?: { createdAt: Date; id: string };
  /** false: no count (`total` is -1). */
  withTotal?: boolean;
  now?: Date;
}

export interface ContactsDirectory {
  enabled(tenantId: string): boolean;
  resolve(tenantId: string, address: ContactAddress, opts?: { create?: boolean; source?: Contact['source'] }): Promise<Contact | null>;
  get(tenantId: string, id: string): Promise<Contact | null>;
  search(tenantId: string, query: ContactQuery): Promise<{ contacts: Contact[]; total: number }>;
  update(tenantId: string, id: string, input: { language?: string | null }): Promise<Contact | null>;
  timezoneOf(contact: Pick<Contact, 'timezone' | 'tenantId'>): string;
  languageOf(contact: Pick<Contact, 'language' | 'tenantId'>): string;
  addressOn(contact: Contact, channel?: string): ContactAddress | null;
  /** After two contacts became one (`from` is gone): returns its unregister function. */
  onMerge(listener: (tenantId: string, merge: { into: string; from: string }) => Promise<void>): () => void;
}

export const CONTACTS_DIRECTORY = token<ContactsDirectory>('contacts.directory');

/**
 * The contact directory: one row per person per tenant (name, time zone, language, tags, custom
 * fields, last inbound and outbound time) and their addresses, one per channel address. An address
 * belongs to one contact of a tenant (`(tenant, channel, address)` is unique), so a contact made from a
 * conversation and one imported later for the same number are one contact. Every query is scoped by tenant.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { consentAddress, fromMicros, inTransaction, microsOf, type DataSubject, type DataSubjectProvider, type Migration } from 'parley';

export const migrations: Migration[] = [
  {
    id: '001_create_contacts',
    sql: `
      CREATE TABLE contacts (
        id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        name text,
        timezone text,
        language text,
        tags text[] NOT NULL DEFAULT '{}',
        fields jsonb NOT NULL DEFAULT '{}',
        source text NOT NULL,
        last_inbound_at timestamptz,
        last_outbound_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX contacts_tenant ON contacts (tenant_id, created_at);
      CREATE INDEX contacts_tags ON contacts USING gin (tags);
      CREATE TABLE contact_addresses (
        tenant_id text NOT NULL,
        channel text NOT NULL,
        address text NOT NULL,
        -- the address without a channel prefix (consent's form), for data-subject requests
        bare text NOT NULL,
        contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, channel, address)
      );
      CREATE INDEX contact_addresses_contact ON contact_addresses (contact_id);
      CREATE INDEX contact_addresses_bare ON contact_addresses (tenant_id, bare);
    `,
  },
  {
    // Keyset pages go on from the last contact's (created_at, id), which a reader holds as a JavaScript
    // Date: milliseconds. PostgreSQL keeps microseconds, so a cursor read back would sort before its own
    // row and the page would repeat it. Creation times are kept to the millisecond.
    id: '002_created_at_milliseconds',
    sql: `
      ALTER TABLE contacts ALTER COLUMN created_at SET DEFAULT date_trunc('milliseconds', now());
      UPDATE contacts SET created_at = date_trunc('milliseconds', created_at) WHERE created_at <> date_trunc('milliseconds', created_at);
    `,
  },
];

export interface ContactAddress {
  channel: string;
  address: string;
}

export interface Contact {
  id: string;
  tenantId: string;
  name: string | null;
  /** IANA zone, or null: the tenant's. */
  timezone: string | null;
  /** BCP 47 tag, or null: the tenant's locale. */
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

export interface ContactInput {
  name?: string | null;
  timezone?: string | null;
  language?: string | null;
  tags?: string[];
  fields?: Record<string, unknown>;
  addresses?: ContactAddress[];
}

/** Who to find. Every filter is ANDed. */
export interface ContactQuery {
  /** Contacts carrying every one of these tags. */
  tags?: string[];
  /** Contacts carrying at least one of these tags. */
  anyTags?: string[];
  /** Custom fields equal to these values (compared as text). */
  fields?: Record<string, string | number | boolean>;
  /** No message either way for this many days (never messaged counts). */
  inactiveDays?: number;
  /** Last inbound at least this many days ago (contacts that never wrote are left out). */
  sinceLastInboundDays?: number;
  /** Only contacts with an address on this channel. */
  channel?: string;
  /** Name or address contains this text. */
  q?: string;
  /** Page size (ordered by created_at, id). */
  limit?: number;
  /** The old way of paging (the route's `offset`); `after` is the way now. */
  offset?: number;
  /**
   * Keyset paging: only contacts after this one in (created_at, id) order: `{ createdAt, id }` (a reader
   * of a large list, such as a scheduled delivery's audience, passes the last contact of each page, so it
   * never holds more than a page and never skips or repeats one when rows are added meanwhile), or a
   * list cursor's sort key (`sortAt` of created_at in microseconds, id).
   */
  after?: { createdAt: Date; id: string } | readonly [string, string] | null;
  /** Count every match into `total` (default true; false: `total` is -1, and a keyset reader saves a count per page). */
  withTotal?: boolean;
  /** The clock for the day filters (tests pass an explicit time). */
  now?: Date;
}

/** A list cursor's sort key (`[sortAt, id]`), as against a contact to page after. */
const isSortKey = (a: NonNullable<ContactQuery['after']>): a is readonly [string, string] => Array.isArray(a);

type Row = {
  id: string;
  tenant_id: string;
  name: string | null;
  timezone: string | null;
  language: string | null;
  tags: string[];
  fields: Record<string, unknown>;
  source: Contact['source'];
  last_inbound_at: Date | null;
  last_outbound_at: Date | null;
  created_at: Date;
  updated_at: Date;
  addresses: ContactAddress[] | null;
};

const SELECT = `SELECT c.*, (SELECT coalesce(json_agg(json_build_object('channel', a.channel, 'address', a.address) ORDER BY a.created_at, a.channel), '[]'::json) FROM contact_addresses a WHERE a.contact_id = c.id) AS addresses FROM contacts c`;

const toContact = (r: Row): Contact => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  timezone: r.timezone,
  language: r.language,
  tags: r.tags,
  fields: r.fields,
  source: r.source,
  addresses: r.addresses ?? [],
  lastInboundAt: r.last_inbound_at,
  lastOutboundAt: r.last_outbound_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** An address already belongs to another contact of the tenant. */
export class AddressTaken extends Error {
  constructor(
    readonly address: ContactAddress,
    readonly contactId: string,
  ) {
    super(`The ${address.channel} address is already used by contact ${contactId}`);
  }
}

export class ContactStore {
  constructor(private readonly db: Pool) {}

  async get(tenantId: string, id: string): Promise<Contact | null> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
    const { rows } = await this.db.query<Row>(`${SELECT} WHERE c.tenant_id = $1 AND c.id = $2`, [tenantId, id]);
    return rows[0] ? toContact(rows[0]) : null;
  }

  async byAddress(tenantId: string, channel: string, address: string): Promise<Contact | null> {
    const { rows } = await this.db.query<Row>(`${SELECT} WHERE c.tenant_id = $1 AND c.id = (SELECT contact_id FROM contact_addresses WHERE tenant_id = $1 AND channel = $2 AND address = $3)`, [tenantId, channel, address]);
    return rows[0] ? toContact(rows[0]) : null;
  }

  /**
   * The contact of an address, made when there is none (`defaults` for a new one). Safe when two
   * messages of a new person arrive at once: the address insert decides, the loser reads the winner's.
   */
  async ensure(tenantId: string, address: ContactAddress, defaults: { source: Contact['source']; timezone?: string | null; language?: string | null; name?: string | null }): Promise<{ contact: Contact; created: boolean }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const found = await this.byAddress(tenantId, address.channel, address.address);
      if (found) return { contact: found, created: false };
      const id = randomUUID();
      const won = await this.tx(async (c) => {
        await c.query(`INSERT INTO contacts (id, tenant_id, name, timezone, language, source) VALUES ($1, $2, $3, $4, $5, $6)`, [id, tenantId, defaults.name ?? null, defaults.timezone ?? null, defaults.language ?? null, defaults.source]);
        const r = await c.query(
          `INSERT INTO contact_addresses (tenant_id, channel, address, bare, contact_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1`,
          [tenantId, address.channel, address.address, consentAddress(address.address), id],
        );
        if (!r.rowCount) throw new LostRace();
        return true;
      }).catch((error: unknown) => {
        if (error instanceof LostRace) return false;
        throw error;
      });
      if (won) return { contact: (await this.get(tenantId, id))!, created: true };
    }
    throw new Error('Could not create a contact for an address (it kept changing)');
  }

  /**
   * The contact of another channel's address with the same phone number, when exactly one contact has
   * it (an E.164 number: `whatsapp:+15551234567` and `+15551234567` are one person's). The new address
   * is added to that contact; null when no contact, or more than one, has the number.
   */
  async linkSameNumber(tenantId: string, address: ContactAddress): Promise<Contact | null> {
    const bare = consentAddress(address.address);
    if (!/^\+[1-9]\d{6,14}$/.test(bare)) return null;
    const { rows } = await this.db.query<{ contact_id: string }>(`SELECT DISTINCT contact_id FROM contact_addresses WHERE tenant_id = $1 AND bare = $2 AND channel <> $3 LIMIT 2`, [tenantId, bare, address.channel]);
    if (rows.length !== 1) return null;
    const { rowCount } = await this.db.query(
      `INSERT INTO contact_addresses (tenant_id, channel, address, bare, contact_id) SELECT $1, $2, $3, $4, id FROM contacts WHERE tenant_id = $1 AND id = $5 ON CONFLICT DO NOTHING`,
      [tenantId, address.channel, address.address, bare, rows[0]!.contact_id],
    );
    // Lost to a concurrent first message (or the contact went): whoever holds the address now is the answer.
    return rowCount ? this.get(tenantId, rows[0]!.contact_id) : this.byAddress(tenantId, address.channel, address.address);
  }

  /**
   * Folds contact `from` into `into`, in one transaction: `from`'s addresses move to `into`; tags are
   * the union; fields are the union (`into`'s value wins where both have one); name, zone and language
   * are `into`'s unless it has none; the message times are the later of the two. `from` is deleted and
   * the merge is written to the kernel's audit trail (ids and counts only). Both rows are locked in id
   * order, so two merges of the same pair cannot deadlock. Null when either contact is not the tenant's.
   */
  async merge(tenantId: string, into: string, from: string, actor: string): Promise<{ contact: Contact; movedAddresses: number } | null> {
    if (!/^[0-9a-f-]{36}$/i.test(into) || !/^[0-9a-f-]{36}$/i.test(from)) return null;
    const moved = await this.tx(async (c) => {
      const { rows } = await c.query<Row>(`SELECT * FROM contacts WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE`, [tenantId, [into, from]]);
      const a = rows.find((r) => r.id === into);
      const b = rows.find((r) => r.id === from);
      if (!a || !b) return null;
      const addresses = await c.query(`UPDATE contact_addresses SET contact_id = $2 WHERE tenant_id = $1 AND contact_id = $3`, [tenantId, into, from]);
      await c.query(
        `UPDATE contacts SET
           name = coalesce(name, $3), timezone = coalesce(timezone, $4), language = coalesce(language, $5),
           tags = ARRAY(SELECT DISTINCT t FROM unnest(tags || $6::text[]) AS t ORDER BY t),
           fields = $7::jsonb || fields,
           last_inbound_at = GREATEST(last_inbound_at, $8), last_outbound_at = GREATEST(last_outbound_at, $9),
           created_at = LEAST(created_at, $10), updated_at = now()
         WHERE tenant_id = $1 AND id = $2`,
        [tenantId, into, b.name, b.timezone, b.language, b.tags, JSON.stringify(b.fields), b.last_inbound_at, b.last_outbound_at, b.created_at],
      );
      await c.query(`DELETE FROM contacts WHERE tenant_id = $1 AND id = $2`, [tenantId, from]);
      await c.query(`INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ($1, $2, 'contacts.merge', $3)`, [tenantId, actor, { into, from, movedAddresses: addresses.rowCount ?? 0 }]);
      return addresses.rowCount ?? 0;
    });
    if (moved === null) return null;
    return { contact: (await this.get(tenantId, into))!, movedAddresses: moved };
  }

  /** Record a message's time on the contact of an address (`inbound` or `outbound`); later times only. */
  async touch(tenantId: string, address: ContactAddress, direction: 'inbound' | 'outbound', at: Date): Promise<boolean> {
    const column = direction === 'inbound' ? 'last_inbound_at' : 'last_outbound_at';
    const { rowCount } = await this.db.query(
      `UPDATE contacts SET ${column} = GREATEST(coalesce(${column}, $4), $4)
        WHERE tenant_id = $1 AND id = (SELECT contact_id FROM contact_addresses WHERE tenant_id = $1 AND channel = $2 AND address = $3)`,
      [tenantId, address.channel, address.address, at],
    );
    return (rowCount ?? 0) > 0;
  }

  async create(tenantId: string, input: ContactInput, source: Contact['source']): Promise<Contact> {
    const id = randomUUID();
    await this.tx(async (c) => {
      await c.query(`INSERT INTO contacts (id, tenant_id, name, timezone, language, tags, fields, source) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)`, [
        id,
        tenantId,
        input.name ?? null,
        input.timezone ?? null,
        input.language ?? null,
        dedupe(input.tags ?? []),
        JSON.stringify(input.fields ?? {}),
        source,
      ]);
      await this.addAddresses(c, tenantId, id, input.addresses ?? []);
    });
    return (await this.get(tenantId, id))!;
  }

  /** Changes what `input` names; `fields` are merged (a null value removes a field); addresses are added. */
  async update(tenantId: string, id: string, input: ContactInput & { removeAddresses?: ContactAddress[] }): Promise<Contact | null> {
    const found = await this.tx(async (c) => {
      const { rowCount } = await c.query(
        `UPDATE contacts SET
           name = CASE WHEN $3 THEN $4 ELSE name END,
           timezone = CASE WHEN $5 THEN $6 ELSE timezone END,
           language = CASE WHEN $7 THEN $8 ELSE language END,
           tags = CASE WHEN $9 THEN $10::text[] ELSE tags END,
           fields = jsonb_strip_nulls(fields || $11::jsonb),
           updated_at = now()
         WHERE tenant_id = $1 AND id = $2`,
        [
          tenantId,
          id,
          input.name !== undefined,
          input.name ?? null,
          input.timezone !== undefined,
          input.timezone ?? null,
          input.language !== undefined,
          input.language ?? null,
          input.tags !== undefined,
          dedupe(input.tags ?? []),
          JSON.stringify(input.fields ?? {}),
        ],
      );
      if (!rowCount) return false;
      for (const a of input.removeAddresses ?? []) await c.query(`DELETE FROM contact_addresses WHERE tenant_id = $1 AND contact_id = $2 AND channel = $3 AND address = $4`, [tenantId, id, a.channel, a.address]);
      await this.addAddresses(c, tenantId, id, input.addresses ?? []);
      return true;
    });
    return found ? this.get(tenantId, id) : null;
  }

  async remove(tenantId: string, id: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return false;
    const { rowCount } = await this.db.query(`DELETE FROM contacts WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return (rowCount ?? 0) > 0;
  }

  /** `total` counts every match (without `after`); `sortAts` are the contacts' sort times, for cursors. */
  async search(tenantId: string, q: ContactQuery): Promise<{ contacts: Contact[]; total: number; sortAts: string[] }> {
    const where: string[] = ['c.tenant_id = $1'];
    const args: unknown[] = [tenantId];
    const arg = (v: unknown) => `$${args.push(v)}`;
    const now = q.now ?? new Date();
    if (q.tags?.length) where.push(`c.tags @> ${arg(q.tags)}::text[]`);
    if (q.anyTags?.length) where.push(`c.tags && ${arg(q.anyTags)}::text[]`);
    for (const [k, v] of Object.entries(q.fields ?? {})) where.push(`c.fields ->> ${arg(k)} = ${arg(String(v))}`);
    if (q.inactiveDays !== undefined) where.push(`coalesce(GREATEST(c.last_inbound_at, c.last_outbound_at), '-infinity') <= ${arg(now)}::timestamptz - make_interval(days => ${arg(q.inactiveDays)}::int)`);
    if (q.sinceLastInboundDays !== undefined) where.push(`c.last_inbound_at <= ${arg(now)}::timestamptz - make_interval(days => ${arg(q.sinceLastInboundDays)}::int)`);
    if (q.channel) where.push(`EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND a.channel = ${arg(q.channel)})`);
    if (q.q) {
      const like = arg(`%${q.q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`);
      where.push(`(c.name ILIKE ${like} OR EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND a.address ILIKE ${like}))`);
    }
    const filter = where.join(' AND ');
    const total = q.withTotal === false ? -1 : Number((await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM contacts c WHERE ${filter}`, args)).rows[0]!.n);
    const after = q.after;
    const page = !after
      ? ''
      : isSortKey(after)
        ? ` AND (c.created_at, c.id) > (${fromMicros(arg(after[0]))}, ${arg(after[1])}::uuid)`
        : ` AND (c.created_at, c.id) > (${arg(after.createdAt)}::timestamptz, ${arg(after.id)}::uuid)`;
    const { rows } = await this.db.query<Row & { sort_at: string }>(
      `${SELECT.replace(/^SELECT /, `SELECT ${microsOf('c.created_at')} AS sort_at, `)} WHERE ${filter}${page} ORDER BY c.created_at, c.id LIMIT ${arg(q.limit ?? 100)} OFFSET ${arg(q.offset ?? 0)}`,
      args,
    );
    return { contacts: rows.map(toContact), total, sortAts: rows.map((r) => r.sort_at) };
  }

  async counts(): Promise<{ tenantId: string; n: number }[]> {
    const { rows } = await this.db.query<{ tenant_id: string; n: string }>(`SELECT tenant_id, count(*) AS n FROM contacts GROUP BY tenant_id`);
    return rows.map((r) => ({ tenantId: r.tenant_id, n: Number(r.n) }));
  }

  private async addAddresses(c: PoolClient, tenantId: string, id: string, addresses: ContactAddress[]): Promise<void> {
    for (const a of addresses) {
      const r = await c.query<{ contact_id: string }>(
        `INSERT INTO contact_addresses (tenant_id, channel, address, bare, contact_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, channel, address) DO UPDATE SET contact_id = contact_addresses.contact_id RETURNING contact_id`,
        [tenantId, a.channel, a.address, consentAddress(a.address), id],
      );
      if (r.rows[0]!.contact_id !== id) throw new AddressTaken(a, r.rows[0]!.contact_id);
    }
  }

  private tx<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.db, work);
  }

  dataSubjectProvider(): DataSubjectProvider {
    const bare = (s: DataSubject) => [...new Set(s.addresses.map((a) => consentAddress(a)))];
    const ids = async (s: DataSubject) => (await this.db.query<{ contact_id: string }>(`SELECT DISTINCT contact_id FROM contact_addresses WHERE tenant_id = $1 AND bare = ANY($2)`, [s.tenantId, bare(s)])).rows.map((r) => r.contact_id);
    return {
      name: 'contacts.directory',
      describe: () => ({
        purpose: 'Knowing who you are across channels: your name, addresses, time zone, language, tags and fields the business keeps, and when you last wrote or were written to (for reminders and scheduled messages).',
        recipients: ["The business's staff, through the admin API"],
        retention: 'Kept until the business deletes the contact or you ask for erasure.',
        source: 'Your messages (the contact is made on your first message), and the business (admin API, CSV import).',
      }),
      export: async (s) => {
        const list = await ids(s);
        if (!list.length) return [];
        const { rows } = await this.db.query<Row>(`${SELECT} WHERE c.tenant_id = $1 AND c.id = ANY($2) ORDER BY c.created_at`, [s.tenantId, list]);
        return rows.map((r) => ({ kind: 'contact', ...toContact(r) }));
      },
      erase: async (s) => {
        const list = await ids(s);
        if (!list.length) return { erased: 0 };
        const { rowCount } = await this.db.query(`DELETE FROM contacts WHERE tenant_id = $1 AND id = ANY($2)`, [s.tenantId, list]);
        return { erased: rowCount ?? 0 };
      },
    };
  }
}

class LostRace extends Error {}

const dedupe = (tags: string[]) => [...new Set(tags.map((t) => t.trim()).filter(Boolean))];

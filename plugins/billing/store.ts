/**
 * What billing keeps: each person's entitlement per tenant (free allowance, Stripe customer and
 * subscription, an operator's override, the last checkout link) with its history; the free messages
 * counted against the allowance (keyed by message id, so a re-run counts once); the Stripe events
 * handled (deduplicated by event id); paid and failed invoices; and the meter reports of tenant usage.
 */
import type { Pool, PoolClient } from 'pg';
import { fromMicros, inTransaction, microsOf, type Migration } from 'parley';

export const migrations: Migration[] = [
  {
    id: '001_create_billing',
    sql: `
      CREATE TABLE billing_entitlements (
        tenant_id text NOT NULL,
        -- the person, in the form consent is kept under (whatsapp:+1555... and +1555... are one person)
        address text NOT NULL,
        -- where to text them outside a reply (payment failures)
        channel text NOT NULL,
        reply_to text NOT NULL,
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        customer_id text,
        subscription_id text,
        subscription_status text,
        price_id text,
        current_period_end timestamptz,
        -- when the subscription facts were last read from Stripe (newer reads win)
        synced_at timestamptz,
        override text CHECK (override IN ('grant', 'revoke')),
        override_until timestamptz,
        override_reason text,
        last_link_at timestamptz,
        last_session_id text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, address)
      );
      CREATE UNIQUE INDEX billing_entitlements_customer ON billing_entitlements (tenant_id, customer_id) WHERE customer_id IS NOT NULL;
      CREATE TABLE billing_free_messages (
        tenant_id text NOT NULL,
        message_id text NOT NULL,
        address text NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, message_id)
      );
      CREATE INDEX billing_free_messages_address ON billing_free_messages (tenant_id, address);
      CREATE TABLE billing_history (
        id bigserial PRIMARY KEY,
        tenant_id text NOT NULL,
        address text NOT NULL,
        change text NOT NULL,
        status_from text,
        status_to text,
        source text NOT NULL,
        detail jsonb NOT NULL DEFAULT '{}',
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX billing_history_address ON billing_history (tenant_id, address, at);
      CREATE TABLE billing_events (
        event_id text PRIMARY KEY,
        tenant_id text NOT NULL,
        type text NOT NULL,
        outcome text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE billing_invoices (
        tenant_id text NOT NULL,
        invoice_id text NOT NULL,
        customer_id text,
        address text,
        status text NOT NULL,
        amount_paid bigint NOT NULL DEFAULT 0,
        currency text,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, invoice_id, status)
      );
      CREATE INDEX billing_invoices_address ON billing_invoices (tenant_id, address);
      CREATE TABLE billing_meter_cursors (
        tenant_id text NOT NULL,
        meter text NOT NULL,
        reported_until timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, meter)
      );
      CREATE TABLE billing_meter_reports (
        tenant_id text NOT NULL,
        meter text NOT NULL,
        bucket_start timestamptz NOT NULL,
        customer_id text NOT NULL,
        value bigint NOT NULL,
        identifier text NOT NULL UNIQUE,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent')),
        attempts int NOT NULL DEFAULT 0,
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        PRIMARY KEY (tenant_id, meter, bucket_start)
      );
      CREATE INDEX billing_meter_reports_pending ON billing_meter_reports (created_at) WHERE status = 'pending';
    `,
  },
  {
    id: '002_billing_plan_chooser',
    sql: `
      -- the chooser links' signing secret when options.chooser.signingSecret is not set (shared by every instance)
      CREATE TABLE billing_secrets (name text PRIMARY KEY, value text NOT NULL);
      -- one plan chooser link per message that offered one; the token in the URL names the row, never the address
      CREATE TABLE billing_choice_links (
        id text PRIMARY KEY,
        tenant_id text NOT NULL,
        address text NOT NULL,
        message_id text NOT NULL,
        expires_at timestamptz NOT NULL,
        -- Checkout sessions opened from this link (one per plan chosen)
        session_ids text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, message_id)
      );
      CREATE INDEX billing_choice_links_address ON billing_choice_links (tenant_id, address);
    `,
  },
  {
    id: '003_billing_meter_adjustments',
    sql: `
      -- seq 0: the bucket's report; 1, 2, ...: adjustments for ledger rows that arrived after it was reported
      ALTER TABLE billing_meter_reports ADD COLUMN seq int NOT NULL DEFAULT 0;
      ALTER TABLE billing_meter_reports DROP CONSTRAINT billing_meter_reports_pkey;
      ALTER TABLE billing_meter_reports ADD PRIMARY KEY (tenant_id, meter, bucket_start, seq);
    `,
  },
  {
    id: '004_billing_meter_expired',
    sql: `
      -- expired: past Stripe's 35-day meter event window before it was accepted; never billed, never retried
      ALTER TABLE billing_meter_reports DROP CONSTRAINT billing_meter_reports_status_check;
      ALTER TABLE billing_meter_reports ADD CONSTRAINT billing_meter_reports_status_check CHECK (status IN ('pending', 'sent', 'expired'));
    `,
  },
];

export interface Entitlement {
  tenantId: string;
  address: string;
  channel: string;
  replyTo: string;
  firstSeenAt: Date;
  customerId: string | null;
  subscriptionId: string | null;
  subscriptionStatus: string | null;
  priceId: string | null;
  currentPeriodEnd: Date | null;
  syncedAt: Date | null;
  override: 'grant' | 'revoke' | null;
  overrideUntil: Date | null;
  overrideReason: string | null;
  lastLinkAt: Date | null;
  lastSessionId: string | null;
  updatedAt: Date;
}

const COLUMNS = `tenant_id AS "tenantId", address, channel, reply_to AS "replyTo", first_seen_at AS "firstSeenAt", customer_id AS "customerId",
  subscription_id AS "subscriptionId", subscription_status AS "subscriptionStatus", price_id AS "priceId", current_period_end AS "currentPeriodEnd",
  synced_at AS "syncedAt", override, override_until AS "overrideUntil", override_reason AS "overrideReason", last_link_at AS "lastLinkAt",
  last_session_id AS "lastSessionId", updated_at AS "updatedAt"`;

/** A subscription as read from Stripe (null: the customer has none). */
export interface SubscriptionFacts {
  id: string;
  status: string;
  priceId: string | null;
  currentPeriodEnd: Date | null;
}

export class BillingStore {
  constructor(private readonly db: Pool) {}

  private tx<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.db, work);
  }

  /** The person's row, made on their first message. */
  async touch(tenantId: string, address: string, channel: string, replyTo: string): Promise<Entitlement> {
    const { rows } = await this.db.query<Entitlement>(
      `INSERT INTO billing_entitlements (tenant_id, address, channel, reply_to) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, address) DO UPDATE SET channel = EXCLUDED.channel, reply_to = EXCLUDED.reply_to
       RETURNING ${COLUMNS}`,
      [tenantId, address, channel, replyTo],
    );
    return rows[0]!;
  }

  async get(tenantId: string, address: string): Promise<Entitlement | null> {
    const { rows } = await this.db.query<Entitlement>(`SELECT ${COLUMNS} FROM billing_entitlements WHERE tenant_id = $1 AND address = $2`, [tenantId, address]);
    return rows[0] ?? null;
  }

  async byCustomer(tenantId: string, customerId: string): Promise<Entitlement | null> {
    const { rows } = await this.db.query<Entitlement>(`SELECT ${COLUMNS} FROM billing_entitlements WHERE tenant_id = $1 AND customer_id = $2`, [tenantId, customerId]);
    return rows[0] ?? null;
  }

  /** Tenants (among `tenantIds`) that know this customer. */
  async tenantsOfCustomer(tenantIds: string[], customerId: string): Promise<string[]> {
    const { rows } = await this.db.query<{ tenant_id: string }>(`SELECT tenant_id FROM billing_entitlements WHERE tenant_id = ANY($1) AND customer_id = $2`, [tenantIds, customerId]);
    return rows.map((r) => r.tenant_id);
  }

  async list(tenantId: string, limit: number, after?: string): Promise<Entitlement[]> {
    const { rows } = await this.db.query<Entitlement>(
      `SELECT ${COLUMNS} FROM billing_entitlements WHERE tenant_id = $1 AND ($2::text IS NULL OR address > $2) ORDER BY address LIMIT $3`,
      [tenantId, after ?? null, limit],
    );
    return rows;
  }

  /** Counts this message against the free allowance (once per message id) and returns how many were counted. */
  async countFreeMessage(tenantId: string, address: string, messageId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `WITH ins AS (INSERT INTO billing_free_messages (tenant_id, message_id, address) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1)
       SELECT (SELECT count(*) FROM billing_free_messages WHERE tenant_id = $1 AND address = $3)::int + (SELECT count(*) FROM ins)::int AS n`,
      [tenantId, messageId, address],
    );
    return rows[0]!.n;
  }

  async freeMessagesUsed(tenantId: string, address: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM billing_free_messages WHERE tenant_id = $1 AND address = $2`, [tenantId, address]);
    return rows[0]!.n;
  }

  /**
   * Takes the right to send a checkout link now (a conditional update, so two messages at once send one
   * link). Returns the previous time to give back with `releaseLink` when the link could not be made.
   */
  async claimLink(tenantId: string, address: string, everyHours: number): Promise<{ claimed: boolean; previous: Date | null }> {
    const { rows } = await this.db.query<{ previous: Date | null }>(
      `WITH prev AS (SELECT last_link_at FROM billing_entitlements WHERE tenant_id = $1 AND address = $2)
       UPDATE billing_entitlements SET last_link_at = now(), updated_at = now()
        WHERE tenant_id = $1 AND address = $2 AND (last_link_at IS NULL OR last_link_at <= now() - make_interval(secs => $3))
        RETURNING (SELECT last_link_at FROM prev) AS previous`,
      [tenantId, address, everyHours * 3600],
    );
    return rows.length ? { claimed: true, previous: rows[0]!.previous } : { claimed: false, previous: null };
  }

  async releaseLink(tenantId: string, address: string, previous: Date | null): Promise<void> {
    await this.db.query(`UPDATE billing_entitlements SET last_link_at = $3 WHERE tenant_id = $1 AND address = $2`, [tenantId, address, previous]);
  }

  /** The plugin's named secret, made once by whichever instance asks first. */
  async secret(name: string, make: () => string): Promise<string> {
    await this.db.query(`INSERT INTO billing_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [name, make()]);
    const { rows } = await this.db.query<{ value: string }>(`SELECT value FROM billing_secrets WHERE name = $1`, [name]);
    return rows[0]!.value;
  }

  /**
   * The plan chooser link offered for this message: made once (a re-run of the message gets the same
   * link back), recorded in the history. The person's expired links are dropped on the way.
   */
  async chooserLink(tenantId: string, address: string, messageId: string, make: { id: string; expiresAt: Date }): Promise<{ id: string; expiresAt: Date }> {
    return this.tx(async (client) => {
      await client.query(`DELETE FROM billing_choice_links WHERE tenant_id = $1 AND address = $2 AND expires_at < now()`, [tenantId, address]);
      const made = await client.query(
        `INSERT INTO billing_choice_links (id, tenant_id, address, message_id, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, message_id) DO NOTHING`,
        [make.id, tenantId, address, messageId, make.expiresAt],
      );
      if (made.rowCount) await client.query(`INSERT INTO billing_history (tenant_id, address, change, source, detail) VALUES ($1, $2, 'checkout-link', 'stage', $3)`, [tenantId, address, { link: make.id }]);
      const { rows } = await client.query<{ id: string; expiresAt: Date }>(`SELECT id, expires_at AS "expiresAt" FROM billing_choice_links WHERE tenant_id = $1 AND message_id = $2`, [tenantId, messageId]);
      return rows[0]!;
    });
  }

  /**
   * Whom a chooser link was made for, and the Checkout sessions opened from it (oldest first); null
   * when there is no such link (never made, or erased).
   */
  async choiceLink(id: string): Promise<{ tenantId: string; address: string; sessions: { price: string; sessionId: string }[] } | null> {
    const { rows } = await this.db.query<{ tenantId: string; address: string; sessions: string[] }>(`SELECT tenant_id AS "tenantId", address, session_ids AS sessions FROM billing_choice_links WHERE id = $1`, [id]);
    const row = rows[0];
    if (!row) return null;
    // Each entry is `<price>:<session id>` (neither contains a colon).
    return { ...row, sessions: row.sessions.map((entry) => ({ price: entry.slice(0, entry.indexOf(':')), sessionId: entry.slice(entry.indexOf(':') + 1) })) };
  }

  /**
   * A Checkout session was opened from the chooser for this plan. True the first time for this session
   * (a double click gets the same session from Stripe; the row lock makes concurrent clicks record it once).
   */
  async sessionOpened(tenantId: string, address: string, sessionId: string, price: string, link: string): Promise<boolean> {
    return this.tx(async (client) => {
      const entry = `${price}:${sessionId}`;
      const first = await client.query(`UPDATE billing_choice_links SET session_ids = array_append(session_ids, $2) WHERE id = $1 AND NOT ($2 = ANY(session_ids))`, [link, entry]);
      if (!first.rowCount) return false;
      await client.query(`UPDATE billing_entitlements SET last_session_id = $3, updated_at = now() WHERE tenant_id = $1 AND address = $2`, [tenantId, address, sessionId]);
      await client.query(`INSERT INTO billing_history (tenant_id, address, change, source, detail) VALUES ($1, $2, 'checkout-session', 'chooser', $3)`, [tenantId, address, { sessionId, price, link }]);
      return true;
    });
  }

  async setCustomer(tenantId: string, address: string, customerId: string): Promise<void> {
    await this.db.query(`UPDATE billing_entitlements SET customer_id = $3, updated_at = now() WHERE tenant_id = $1 AND address = $2 AND customer_id IS DISTINCT FROM $3`, [tenantId, address, customerId]);
  }

  /**
   * Stores the customer's subscription as Stripe reports it now (`readAt`: when it was read; an older
   * read never overwrites a newer one, so events handled in any order end in Stripe's current state).
   * Returns the status before and after, for history and metrics.
   */
  async applySubscription(tenantId: string, customerId: string, facts: SubscriptionFacts | null, readAt: Date, source: string): Promise<{ address: string; from: string | null; to: string | null; changed: boolean } | null> {
    return this.tx(async (client) => {
      const { rows } = await client.query<{ address: string; subscription_status: string | null; subscription_id: string | null; synced_at: Date | null }>(
        `SELECT address, subscription_status, subscription_id, synced_at FROM billing_entitlements WHERE tenant_id = $1 AND customer_id = $2 FOR UPDATE`,
        [tenantId, customerId],
      );
      const row = rows[0];
      if (!row) return null;
      if (row.synced_at && row.synced_at.getTime() > readAt.getTime()) return { address: row.address, from: row.subscription_status, to: row.subscription_status, changed: false };
      const to = facts?.status ?? null;
      await client.query(
        `UPDATE billing_entitlements SET subscription_id = $3, subscription_status = $4, price_id = $5, current_period_end = $6, synced_at = $7, updated_at = now()
          WHERE tenant_id = $1 AND address = $2`,
        [tenantId, row.address, facts?.id ?? row.subscription_id, to, facts?.priceId ?? null, facts?.currentPeriodEnd ?? null, readAt],
      );
      const changed = row.subscription_status !== to;
      if (changed) {
        await client.query(`INSERT INTO billing_history (tenant_id, address, change, status_from, status_to, source, detail) VALUES ($1, $2, 'subscription', $3, $4, $5, $6)`, [
          tenantId,
          row.address,
          row.subscription_status,
          to,
          source,
          { subscriptionId: facts?.id ?? null, priceId: facts?.priceId ?? null },
        ]);
      }
      return { address: row.address, from: row.subscription_status, to, changed };
    });
  }

  /** Whether this Stripe event was handled already. */
  async seen(eventId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`SELECT 1 FROM billing_events WHERE event_id = $1`, [eventId]);
    return (rowCount ?? 0) > 0;
  }

  /** Marks the event handled; false when another delivery got there first. */
  async markHandled(tenantId: string, eventId: string, type: string, outcome: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`INSERT INTO billing_events (event_id, tenant_id, type, outcome) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [eventId, tenantId, type, outcome]);
    return (rowCount ?? 0) > 0;
  }

  /** Records an invoice outcome once per (invoice, status); true when it is new. */
  async recordInvoice(tenantId: string, invoice: { id: string; customerId: string | null; address: string | null; status: 'paid' | 'payment_failed'; amountPaid: number; currency: string | null }): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO billing_invoices (tenant_id, invoice_id, customer_id, address, status, amount_paid, currency) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
      [tenantId, invoice.id, invoice.customerId, invoice.address, invoice.status, invoice.amountPaid, invoice.currency],
    );
    return (rowCount ?? 0) > 0;
  }

  /** An operator's or tenant's override (audited in the entitlement history and the kernel's audit log). */
  async override(tenantId: string, address: string, change: { override: 'grant' | 'revoke' | null; until: Date | null; reason: string }, actor: string, addressHash: string): Promise<Entitlement | null> {
    return this.tx(async (client) => {
      const { rows } = await client.query<Entitlement & { previous: string | null }>(
        `UPDATE billing_entitlements SET override = $3, override_until = $4, override_reason = $5, updated_at = now() WHERE tenant_id = $1 AND address = $2 RETURNING ${COLUMNS}`,
        [tenantId, address, change.override, change.until, change.reason],
      );
      const row = rows[0];
      if (!row) return null;
      await client.query(`INSERT INTO billing_history (tenant_id, address, change, status_to, source, detail) VALUES ($1, $2, 'override', $3, $4, $5)`, [
        tenantId,
        address,
        change.override ?? 'none',
        `admin:${actor}`,
        { until: change.until, reason: change.reason },
      ]);
      await client.query(`INSERT INTO parley_audit (tenant_id, actor, action, subject_hash, detail) VALUES ($1, $2, 'billing.override', $3, $4)`, [
        tenantId,
        actor,
        addressHash,
        { override: change.override, until: change.until, reason: change.reason },
      ]);
      return row;
    });
  }

  async history(tenantId: string, address: string): Promise<{ change: string; statusFrom: string | null; statusTo: string | null; source: string; detail: unknown; at: Date }[]> {
    const { rows } = await this.db.query(
      `SELECT change, status_from AS "statusFrom", status_to AS "statusTo", source, detail, at FROM billing_history WHERE tenant_id = $1 AND address = $2 ORDER BY at, id`,
      [tenantId, address],
    );
    return rows;
  }

  async subscriptionCounts(): Promise<{ tenantId: string; status: string; n: number }[]> {
    const { rows } = await this.db.query<{ tenantId: string; status: string; n: number }>(
      `SELECT tenant_id AS "tenantId", COALESCE(subscription_status, 'none') AS status, count(*)::int AS n FROM billing_entitlements GROUP BY 1, 2`,
    );
    return rows;
  }

  /**
   * Newest bucket first, then by meter, adjustments before their bucket; `after` is the sort key of the
   * last report of the previous page (`sortAt`, meter, seq): the order mixes directions, so it is spelled out.
   */
  async meterReports(tenantId: string, limit: number, status?: 'pending' | 'sent' | 'expired', after?: readonly [string, string, number] | null) {
    return this.db.query<{ meter: string; seq: number; sortAt: string } & Record<string, unknown>>(
      `SELECT meter, bucket_start AS "bucketStart", CASE WHEN seq = 0 THEN 'bucket' ELSE 'adjustment' END AS kind, value::float8 AS value, identifier, status, attempts,
              last_error AS "lastError", created_at AS "createdAt", sent_at AS "sentAt", seq, ${microsOf('bucket_start')} AS "sortAt"
         FROM billing_meter_reports WHERE tenant_id = $1 AND ($3::text IS NULL OR status = $3)
          AND ($4::text IS NULL OR bucket_start < ${fromMicros('$4')}
               OR (bucket_start = ${fromMicros('$4')} AND (meter > $5 OR (meter = $5 AND seq < $6::int))))
        ORDER BY bucket_start DESC, meter, seq DESC LIMIT $2`,
      [tenantId, limit, status ?? null, after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null],
    );
  }

  // ---- data subjects

  async exportSubject(tenantId: string, addresses: string[]): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    const { rows } = await this.db.query<Entitlement>(`SELECT ${COLUMNS} FROM billing_entitlements WHERE tenant_id = $1 AND address = ANY($2) ORDER BY address`, [tenantId, addresses]);
    for (const e of rows) out.push({ kind: 'billing-entitlement', ...e, freeMessagesUsed: await this.freeMessagesUsed(tenantId, e.address), history: await this.history(tenantId, e.address) });
    const invoices = await this.db.query(`SELECT invoice_id AS "invoiceId", status, amount_paid AS "amountPaid", currency, at FROM billing_invoices WHERE tenant_id = $1 AND address = ANY($2) ORDER BY at`, [tenantId, addresses]);
    for (const i of invoices.rows) out.push({ kind: 'billing-invoice', ...i });
    const links = await this.db.query(`SELECT created_at AS "createdAt", expires_at AS "expiresAt" FROM billing_choice_links WHERE tenant_id = $1 AND address = ANY($2) ORDER BY created_at`, [tenantId, addresses]);
    for (const l of links.rows) out.push({ kind: 'billing-plan-chooser-link', ...l });
    return out;
  }

  /** Deletes everything kept about these addresses; returns the Stripe customers they had. */
  async eraseSubject(tenantId: string, addresses: string[]): Promise<{ erased: number; customers: string[] }> {
    return this.tx(async (client) => {
      const { rows } = await client.query<{ customer_id: string | null }>(`DELETE FROM billing_entitlements WHERE tenant_id = $1 AND address = ANY($2) RETURNING customer_id`, [tenantId, addresses]);
      const free = await client.query(`DELETE FROM billing_free_messages WHERE tenant_id = $1 AND address = ANY($2)`, [tenantId, addresses]);
      const history = await client.query(`DELETE FROM billing_history WHERE tenant_id = $1 AND address = ANY($2)`, [tenantId, addresses]);
      const invoices = await client.query(`DELETE FROM billing_invoices WHERE tenant_id = $1 AND address = ANY($2)`, [tenantId, addresses]);
      const links = await client.query(`DELETE FROM billing_choice_links WHERE tenant_id = $1 AND address = ANY($2)`, [tenantId, addresses]);
      const customers = rows.map((r) => r.customer_id).filter((c): c is string => !!c);
      return { erased: rows.length + (free.rowCount ?? 0) + (history.rowCount ?? 0) + (invoices.rowCount ?? 0) + (links.rowCount ?? 0), customers };
    });
  }
}

/**
 * The segment ledger: encoding, segments and estimated cost of every SMS part Parley received or
 * sent through Twilio, inline or by the REST API. It also remembers which parts of a split reply
 * Twilio already accepted, so a retried send never sends a part twice, and maps a part's SID back to
 * the reply it belongs to for status callbacks.
 */
import type { Pool } from 'pg';
import { Batcher, consentAddress, type DataSubject, type DataSubjectProvider, type Migration, type UsageLedger } from 'parley';
import { countSegments, estimateCost, type SmsEncoding } from './segments.js';
import type { Logger } from 'pino';
import type { TwilioMetrics } from './metrics.js';

export const ledgerMigrations: Migration[] = [
  {
    id: '001_twilio_sms_segments',
    sql: `
CREATE TABLE twilio_sms_segments (
  tenant_id text NOT NULL,
  ref text NOT NULL,
  part int NOT NULL DEFAULT 0,
  direction text NOT NULL CHECK (direction IN ('in', 'out')),
  via text NOT NULL CHECK (via IN ('inbound', 'inline', 'api')),
  address text NOT NULL,
  message_sid text,
  encoding text NOT NULL,
  units int NOT NULL,
  segments int NOT NULL,
  media int NOT NULL DEFAULT 0,
  cost numeric(12, 6) NOT NULL,
  currency text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, ref, part)
);
CREATE INDEX twilio_sms_segments_sid ON twilio_sms_segments (tenant_id, message_sid) WHERE message_sid IS NOT NULL;
CREATE INDEX twilio_sms_segments_address ON twilio_sms_segments (tenant_id, address);
`,
  },
];

export interface Pricing {
  pricePerSegment: number;
  pricePerMms: number;
  currency: string;
}

export interface PartUsage {
  encoding: SmsEncoding;
  units: number;
  segments: number;
  media: number;
  cost: number;
  currency: string;
}

/** Segments and price of one message part: MMS is billed per message, SMS per segment. */
export function usageOf(text: string, media: number, pricing: Pricing): PartUsage {
  const count = countSegments(text);
  const cost = media > 0 ? estimateCost(1, pricing.pricePerMms) : estimateCost(count.segments, pricing.pricePerSegment);
  return { encoding: count.encoding, units: count.units, segments: count.segments, media, cost, currency: pricing.currency };
}

export interface LedgerEntry extends PartUsage {
  tenantId: string;
  /** Outbox item id for replies, MessageSid for inbound messages. */
  ref: string;
  part: number;
  direction: 'in' | 'out';
  via: 'inbound' | 'inline' | 'api';
  /** The other party's address (for data-subject requests). */
  address: string;
  messageSid: string | null;
}

/** Inserts the parts in `$1` (see `partsJson`) once each: a replayed webhook inserts nothing. */
const INSERT_PARTS = `INSERT INTO twilio_sms_segments (tenant_id, ref, part, direction, via, address, message_sid, encoding, units, segments, media, cost, currency)
       SELECT "tenantId", ref, part, direction, via, address, "messageSid", encoding, units, segments, media, cost, currency
       FROM jsonb_to_recordset($1::jsonb) AS x("tenantId" text, ref text, part int, direction text, via text, address text, "messageSid" text,
         encoding text, units int, segments int, media int, cost numeric, currency text)
       ON CONFLICT DO NOTHING`;

/** The parts as the statements' `$1`, addresses normalised as consent stores them (data-subject requests find them). */
const partsJson = (entries: readonly LedgerEntry[]) => JSON.stringify(entries.map((e) => ({ ...e, address: consentAddress(e.address) })));

/** One part of one message: its key among a batch's parts. */
const partKey = (p: { ref: string; part: number }) => `${p.ref}\u0000${p.part}`;

/** The keys of the parts a statement inserted (its RETURNING ref, part). */
const keysOf = (inserted: readonly { ref: string; part: number }[]): ReadonlySet<string> => new Set(inserted.map(partKey));

/** The entries among `entries` whose keys are in `fresh` (see `keysOf`). */
function freshOf(entries: readonly LedgerEntry[], fresh: ReadonlySet<string>): LedgerEntry[] {
  return entries.filter((e) => fresh.has(partKey(e)));
}

export class SegmentLedger {
  constructor(private readonly db: Pool) {}

  /** Records a part once; false when it was already recorded (a retried webhook). */
  async record(e: LedgerEntry): Promise<boolean> {
    return (await this.recordMany([e])).length > 0;
  }

  /** Records parts in one statement; returns those not recorded before. */
  async recordMany(entries: readonly LedgerEntry[]): Promise<LedgerEntry[]> {
    if (!entries.length) return [];
    const { rows: inserted } = await this.db.query<{ ref: string; part: number }>({
      // Named: prepared once per connection, as the kernel's per-message statements are.
      name: 'twilio_sms_record_segments',
      text: `${INSERT_PARTS} RETURNING ref, part`,
      values: [partsJson(entries)],
    });
    return freshOf(entries, keysOf(inserted));
  }

  /**
   * Records parts and, for the parts not recorded before, their usage in the kernel ledger
   * (`sms.segments.in` / `sms.segments.out` per message and direction, as {@link perMessage} sums
   * them) in one statement: an inline exchange's bookkeeping costs one round trip before the reply
   * instead of two, and a part is never recorded without its usage (nor the usage without the part).
   * `usageSql` is the kernel's `ctx.usage.insertSql`, the same on every call (the statement is named,
   * and a connection refuses a second text under one name). Returns the parts not recorded before.
   */
  async recordManyMetered(entries: readonly LedgerEntry[], usageSql: (source: string) => string): Promise<LedgerEntry[]> {
    if (!entries.length) return [];
    const { rows: inserted } = await this.db.query<{ ref: string; part: number }>({
      name: 'twilio_sms_record_segments_metered',
      text: `WITH seg AS (
         ${INSERT_PARTS} RETURNING tenant_id, ref, part, direction, via, segments, cost, currency
       ), per AS (
         -- One usage row per message and direction; a part's cost counts in USD only when priced in USD.
         SELECT tenant_id, 'sms.segments.' || direction AS kind, sum(segments) AS quantity, 'segment' AS unit,
           CASE WHEN min(currency) = 'USD' AND max(currency) = 'USD' THEN sum(cost) END AS cost_usd, ref,
           jsonb_build_object('via', min(via), 'currency', min(currency)) AS attributes
         FROM seg GROUP BY tenant_id, direction, ref
       ), usage AS (
         ${usageSql('per')}
       )
       SELECT ref, part FROM seg`,
      values: [partsJson(entries)],
    });
    return freshOf(entries, keysOf(inserted));
  }

  /** Parts of an outbox item Twilio already accepted: part -> SID. */
  async sentParts(tenantId: string, outboxId: string): Promise<Map<number, string>> {
    const { rows } = await this.db.query<{ part: number; message_sid: string }>(
      `SELECT part, message_sid FROM twilio_sms_segments WHERE tenant_id = $1 AND ref = $2 AND direction = 'out' AND message_sid IS NOT NULL`,
      [tenantId, outboxId],
    );
    return new Map(rows.map((r) => [r.part, r.message_sid]));
  }

  /** The SID the outbox knows a reply by (its first part's), for any part's SID. */
  async primarySid(tenantId: string, messageSid: string): Promise<string> {
    const { rows } = await this.db.query<{ message_sid: string }>(
      `SELECT first.message_sid FROM twilio_sms_segments part
         JOIN twilio_sms_segments first ON first.tenant_id = part.tenant_id AND first.ref = part.ref AND first.part = 0
       WHERE part.tenant_id = $1 AND part.message_sid = $2 AND part.direction = 'out' AND first.message_sid IS NOT NULL LIMIT 1`,
      [tenantId, messageSid],
    );
    return rows[0]?.message_sid ?? messageSid;
  }

  dataSubjectProvider(): DataSubjectProvider {
    const addressesOf = (s: DataSubject) => [...new Set(s.addresses.map(consentAddress))];
    return {
      name: 'twilio-sms.segments',
      describe: () => ({
        purpose: 'Billing and capacity: encoding, segment count and estimated cost of each SMS/MMS exchanged with this number (no message text).',
        recipients: ['Twilio (carrier of the messages)'],
        retention: 'Kept with the tenant’s message records; erased on request.',
        source: 'Counted by Parley from messages received from and sent to this number through Twilio.',
      }),
      export: async (s) => {
        const { rows } = await this.db.query(
          `SELECT direction, via, message_sid AS "messageSid", encoding, segments, media, cost::float8 AS cost, currency, at
           FROM twilio_sms_segments WHERE tenant_id = $1 AND address = ANY($2) ORDER BY at, ref, part`,
          [s.tenantId, addressesOf(s)],
        );
        return rows;
      },
      erase: async (s) => {
        const { rowCount } = await this.db.query('DELETE FROM twilio_sms_segments WHERE tenant_id = $1 AND address = ANY($2)', [s.tenantId, addressesOf(s)]);
        return { erased: rowCount ?? 0 };
      },
    };
  }
}

/** The segments of one message in one direction, for the kernel's usage ledger. */
export interface SegmentUsage {
  tenantId: string;
  /** The outbox item id, or the inbound MessageSid: a retry records nothing twice. */
  ref: string;
  direction: 'in' | 'out';
  via: LedgerEntry['via'];
  segments: number;
  cost: number;
  currency: string;
}

/**
 * Records segments in the kernel usage ledger (`sms.segments.in` / `sms.segments.out`) beside this
 * channel's own ledger, so cost guards and billing see SMS. A failure is logged and counted: the
 * message itself is unaffected.
 */
export function createSegmentUsage(deps: { usage: UsageLedger; metrics: TwilioMetrics; log: Logger }) {
  return async function recordUsage(items: readonly SegmentUsage[]): Promise<void> {
    await Promise.all(
      items.map(async (u) => {
        try {
          await deps.usage.record({
            tenantId: u.tenantId,
            kind: `sms.segments.${u.direction}`,
            quantity: u.segments,
            unit: 'segment',
            ...(u.currency === 'USD' ? { costUsd: u.cost } : {}),
            ref: u.ref,
            attributes: { via: u.via, currency: u.currency },
          });
        } catch (error) {
          deps.metrics.errors.inc({ tenant: u.tenantId, code: 'usage' });
          deps.log.error({ err: error, tenant: u.tenantId }, 'twilio-sms: could not record segments in the usage ledger; the message itself is unaffected');
        }
      }),
    );
  };
}

export type RecordSegmentUsage = ReturnType<typeof createSegmentUsage>;

/** Ledger parts summed per message and direction. */
function perMessage(entries: readonly LedgerEntry[]): SegmentUsage[] {
  const byKey = new Map<string, SegmentUsage>();
  for (const e of entries) {
    const key = `${e.direction}\u0000${e.ref}`;
    const sum = byKey.get(key) ?? { tenantId: e.tenantId, ref: e.ref, direction: e.direction, via: e.via, segments: 0, cost: 0, currency: e.currency };
    sum.segments += e.segments;
    sum.cost += e.cost;
    byKey.set(key, sum);
  }
  return [...byKey.values()];
}

/**
 * Records the parts of an inline exchange and their usage before the reply is written, in one
 * statement per batch of webhooks (`recordManyMetered`), and counts the new parts (a retried webhook
 * counts nothing). When that statement fails for a message (the kernel usage insert refusing, say),
 * the two are written apart as before the fold, so a usage failure never costs the ledger its part.
 */
export function createLedgerAccount(deps: { ledger: SegmentLedger; usage: Pick<UsageLedger, 'insertSql'>; metrics: TwilioMetrics; log: Logger; recordUsage: RecordSegmentUsage }) {
  const { ledger, metrics } = deps;
  const writer = new Batcher<readonly LedgerEntry[], LedgerEntry[]>(async (groups) => {
    // The statement returns the batch's own entry objects that were new: one set of them for the batch.
    const fresh = new Set(await ledger.recordManyMetered(groups.flat(), deps.usage.insertSql));
    return groups.map((g) => g.filter((e) => fresh.has(e)));
  });
  /** The parts and their usage written apart: the ledger first; usage failures are logged by `recordUsage`. */
  async function apart(tenantId: string, entries: readonly LedgerEntry[], cause: unknown): Promise<LedgerEntry[] | undefined> {
    deps.log.warn({ err: cause, tenant: tenantId }, 'twilio-sms: could not record segments and usage together; recording them apart');
    try {
      const fresh = await ledger.recordMany(entries);
      await deps.recordUsage(perMessage(fresh));
      return fresh;
    } catch (error) {
      metrics.errors.inc({ tenant: tenantId, code: 'ledger' });
      deps.log.error({ err: error, tenant: tenantId }, 'twilio-sms: could not record segments; the message itself is unaffected');
      return undefined;
    }
  }
  return async function account(tenantId: string, entries: readonly LedgerEntry[]): Promise<void> {
    const fresh = await writer.submit(entries).catch((error: unknown) => apart(tenantId, entries, error));
    for (const entry of fresh ?? []) {
      if (entry.direction === 'out') metrics.sends.inc({ tenant: tenantId, status: 'inline' });
      metrics.segments.inc({ tenant: tenantId, direction: entry.direction, encoding: entry.encoding }, entry.segments);
      metrics.cost.inc({ tenant: tenantId, direction: entry.direction, currency: entry.currency }, entry.cost);
    }
  };
}

export type LedgerAccount = ReturnType<typeof createLedgerAccount>;

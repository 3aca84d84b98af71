/**
 * Parked webhooks: provider deliveries that passed the signature check but cannot be stored (see
 * `isPoisonInput`). They are kept with their payload, addresses replaced by hashes, answered 200 so
 * the provider stops retrying, counted in `parley_parked_webhooks_total` and listed to the operator
 * (`GET /v1/parked`) and to their tenant (`GET /v1/tenants/:tenant/parked`).
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { storableText } from './inbound-guard.js';
import { hashAddress } from './logger.js';
import { addressForms } from './data-subjects.js';
import type { DataSubject, DataSubjectProvider } from './plugin.js';
import { fromMicros, microsOf } from './http/paging.js';

/** What a channel parks. `payload` is the body as received (bytes, text or parsed JSON). */
export interface ParkWebhook {
  channel: string;
  /** When the channel knows it; unknown-tenant deliveries are visible to the operator only. */
  tenantId?: string | undefined;
  reason: string;
  payload: unknown;
  /** Phone numbers or ids of people in the payload: replaced by their hash before storing. */
  addresses?: readonly string[];
}

export interface ParkedWebhook {
  id: string;
  tenantId: string | null;
  channel: string;
  reason: string;
  payload: string;
  addressHashes: string[];
  parkedAt: Date;
}

/** Keys whose string values are addresses in the providers' payloads (Meta, Twilio). */
const ADDRESS_KEYS = new Set(['from', 'to', 'wa_id', 'recipient_id', 'display_phone_number', 'caller', 'called', 'forwardedfrom', 'phone']);
const MAX_PAYLOAD_CHARS = 1_000_000;
const MAX_WALK_DEPTH = 64;

export class ParkingLot {
  private readonly parked: Counter<'channel' | 'tenant'>;

  constructor(private readonly deps: { pool: () => Pool; registry: Registry; log: () => Logger; filter?: (tenantId: string | undefined, channel: string, text: string) => string }) {
    this.parked = new Counter({
      name: 'parley_parked_webhooks_total',
      help: 'Signed provider webhooks that could not be stored and were parked (answered 200)',
      labelNames: ['channel', 'tenant'],
      registers: [deps.registry],
    });
  }

  async park(entry: ParkWebhook): Promise<{ id: string }> {
    const scrubbed = scrubPayload(entry.payload, entry.addresses ?? []);
    const { addresses } = scrubbed;
    // The inbound filters see the payload as it will be stored (ctx.inboundFilter): the tenant's, or
    // their `unattributed` when no tenant owns it.
    const text = this.deps.filter ? storableText(this.deps.filter(entry.tenantId, entry.channel, scrubbed.text)) : scrubbed.text;
    const hashes = [...new Set(addresses.map(hashAddress))];
    const reason = storableText(entry.reason).slice(0, 500);
    const { rows } = await this.deps.pool().query<{ id: string }>(
      'INSERT INTO parley_parked_webhooks (tenant_id, channel, reason, payload, address_hashes) VALUES ($1, $2, $3, $4, $5) RETURNING id',
      [entry.tenantId ?? null, entry.channel, reason, text, hashes],
    );
    const id = rows[0]!.id;
    this.parked.inc({ channel: entry.channel, tenant: entry.tenantId ?? 'unknown' });
    this.deps.log().warn({ parkedId: id, channel: entry.channel, tenant: entry.tenantId, reason }, 'webhook parked: it could not be stored (see GET /v1/parked)');
    return { id };
  }

  /** Newest first; `tenantId` null lists every tenant's and the unattributed ones (operator). */
  async list(tenantId: string | null, limit: number, page: { before?: string | undefined; after?: readonly [string, string] | null } = {}): Promise<(ParkedWebhook & { sortAt: string })[]> {
    const { rows } = await this.deps.pool().query<ParkedWebhook & { sortAt: string }>(
      `SELECT id, tenant_id AS "tenantId", channel, reason, payload, address_hashes AS "addressHashes", parked_at AS "parkedAt", ${microsOf('parked_at')} AS "sortAt"
         FROM parley_parked_webhooks
        WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::timestamptz IS NULL OR parked_at < $2)
          AND ($4::text IS NULL OR (parked_at, id) < (${fromMicros('$4')}, $5::uuid))
        ORDER BY parked_at DESC, id DESC LIMIT $3`,
      [tenantId, page.before ?? null, limit, page.after?.[0] ?? null, page.after?.[1] ?? null],
    );
    return rows;
  }
}

/**
 * The kernel's provider for parked webhooks: a person's parked deliveries are found by the hash of
 * their addresses (the payload holds hashes only, so it is exported as stored) and erased with them.
 * Only the tenant's own rows: an unattributed delivery could be anyone's and is the operator's.
 */
export function parkedDataSubjects(db: Pool): DataSubjectProvider {
  return {
    name: 'core.parked-webhooks',
    describe: () => ({
      purpose: 'Keeping provider deliveries that could not be stored, so an operator can see what went wrong; addresses are kept only as hashes.',
      recipients: ["This service's operators"],
      retention: 'Until erased or deleted by the operator.',
      source: 'The messaging providers, delivering messages you sent or the status of messages sent to you.',
    }),
    async export(subject: DataSubject) {
      const { rows } = await db.query(
        `SELECT id, channel, reason, payload, address_hashes AS "addressHashes", parked_at AS "parkedAt"
           FROM parley_parked_webhooks WHERE tenant_id = $1 AND address_hashes && $2::text[] ORDER BY parked_at`,
        [subject.tenantId, subjectHashes(subject)],
      );
      return rows.map((r) => ({ kind: 'parked-webhook', ...r }));
    },
    async erase(subject: DataSubject) {
      const { rowCount } = await db.query(`DELETE FROM parley_parked_webhooks WHERE tenant_id = $1 AND address_hashes && $2::text[]`, [subject.tenantId, subjectHashes(subject)]);
      return { erased: rowCount ?? 0 };
    },
  };
}

/**
 * The hashes a person's addresses are kept under (parked payloads, alert details), in every form a
 * provider writes them (Meta's `wa_id` has no `+`).
 */
export function subjectHashes(subject: DataSubject): string[] {
  const forms = addressForms(subject.addresses);
  return [...new Set([...forms, ...forms.map((f) => f.replace(/^([a-z]+:)?\+/iu, ''))].map(hashAddress))];
}

/** The payload as storable text with every address (given, or under an address key) replaced by its hash. */
export function scrubPayload(payload: unknown, given: readonly string[]): { text: string; addresses: string[] } {
  let text: string;
  let parsed: unknown = payload;
  if (Buffer.isBuffer(payload)) text = payload.toString('utf8');
  else if (typeof payload === 'string') text = payload;
  else {
    try {
      text = JSON.stringify(payload) ?? String(payload);
    } catch {
      text = '[payload could not be serialised]';
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Buffer.isBuffer(parsed)) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  const found = new Set<string>();
  collectAddresses(parsed, found, 0);
  // The channel's own spelling (`+E164`) last, so its hash wins for a variant both share.
  for (const address of given) if (typeof address === 'string' && address.length > 0) found.delete(address), found.add(address);
  const variants = new Map<string, string>();
  for (const address of found) {
    const bare = address.replace(/^[a-z]+:/iu, '');
    const digits = bare.replace(/\D/gu, '');
    for (const v of [address, bare, bare.replace(/^\+/u, ''), digits.length >= 5 ? digits : '']) if (v.length >= 3) variants.set(v, hashAddress(address));
  }
  // Longest first, so a number is replaced whole before its digits-only form is looked for.
  for (const [variant, hash] of [...variants].sort((a, b) => b[0].length - a[0].length)) text = text.replaceAll(variant, hash);
  return { text: storableText(text.slice(0, MAX_PAYLOAD_CHARS)), addresses: [...found] };
}

function collectAddresses(value: unknown, into: Set<string>, depth: number): void {
  if (depth > MAX_WALK_DEPTH || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collectAddresses(v, into, depth + 1);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'string' && v.length > 0 && ADDRESS_KEYS.has(key.toLowerCase())) into.add(v);
    else collectAddresses(v, into, depth + 1);
  }
}

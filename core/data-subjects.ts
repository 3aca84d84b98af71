/**
 * Data-subject export and erasure across every registered provider, and the kernel's own provider:
 * conversations, inbound messages, the outbox and consent of one person within one tenant. Erasure deletes messages and conversations; an opt-out is kept as the
 * suppression record carriers and the TCPA require (without its history), so erasure never makes a
 * number reachable again.
 */
import type { Pool } from 'pg';
import type { DataSubject, DataSubjectProvider } from './plugin.js';
import { consentAddress, suppressionHash } from './consent.js';
import { normaliseAddress } from './tenancy.js';
import { hashAddress } from './logger.js';

/** Every form an address may be stored in: as given, normalised, bare, and with channel prefixes. */
export function addressForms(addresses: string[]): string[] {
  const forms = new Set<string>();
  for (const a of addresses) {
    const bare = consentAddress(a);
    for (const f of [a, normaliseAddress(a), bare, `whatsapp:${bare}`]) forms.add(f);
    if (/^\+\d+$/.test(bare)) forms.add(`${bare.slice(1)}@c.us`);
  }
  return [...forms];
}

const EXPORT_PAGE = 500;

/**
 * Every string a person's data may be found under: each address form, its digits alone (`15551234567`,
 * as Meta's wa_id) and every hash the gateway writes for it (`ph_...` in logs and parked webhooks).
 * Erasure verification scans for these.
 */
export function subjectNeedles(addresses: string[]): { raw: string[]; hashes: string[] } {
  const forms = addressForms(addresses);
  const raw = new Set<string>(forms);
  for (const f of forms) {
    const digits = consentAddress(f).replace(/^\+/, '');
    if (/^\d{7,15}$/.test(digits)) raw.add(digits);
  }
  const hashes = new Set<string>();
  for (const f of forms) for (const v of [f, f.replace(/^([a-z]+:)?\+/iu, '')]) hashes.add(hashAddress(v));
  return { raw: [...raw].filter((r) => r.length >= 4), hashes: [...hashes] };
}

export function coreDataSubjects(db: Pool): DataSubjectProvider {
  return {
    name: 'core',
    describe: () => ({
      purpose: 'Receiving and answering the messages you sent, keeping the conversation so replies have context, and honouring your opt-out.',
      recipients: ['The messaging providers that carried the messages (Twilio, Meta, Slack) and the plugins configured for this service'],
      retention: 'Messages and conversations until erased or deleted by the operator; an opt-out is kept as long as the service runs, so you are never messaged again.',
      source: 'Messages you sent and the replies sent to you.',
    }),
    async export(subject: DataSubject) {
      const out: Record<string, unknown>[] = [];
      for await (const batch of this.exportBatches!(subject)) out.push(...batch);
      return out;
    },
    /**
     * Pages of at most EXPORT_PAGE records, read with keyset pagination: a person with a long history
     * is never loaded at once, and no cursor holds the embedded database's single session meanwhile.
     */
    async *exportBatches(subject: DataSubject) {
      const forms = addressForms(subject.addresses);
      const { rows: conversations } = await db.query(
        `SELECT id, channel, participant, created_at AS "createdAt", last_message_at AS "lastMessageAt" FROM parley_conversations WHERE tenant_id = $1 AND participant = ANY($2) ORDER BY created_at, id`,
        [subject.tenantId, forms],
      );
      yield conversations.map((r) => ({ kind: 'conversation', ...r }));
      const ids = conversations.map((c) => c.id as string);
      let after: [Date, string] | null = null;
      for (;;) {
        const page: { rows: Record<string, unknown>[] } = await db.query<Record<string, unknown>>(
          `SELECT id, channel, from_address AS "from", to_address AS "to", body AS text, media, received_at AS "receivedAt", status, annotations
             FROM parley_inbound WHERE tenant_id = $1 AND conversation_id = ANY($2::uuid[]) AND ($3::timestamptz IS NULL OR (received_at, id) > ($3, $4::uuid))
             ORDER BY received_at, id LIMIT ${EXPORT_PAGE}`,
          [subject.tenantId, ids, after?.[0] ?? null, after?.[1] ?? null],
        );
        const rows = page.rows;
        if (rows.length) yield rows.map((r) => ({ kind: 'message-received', ...r }));
        if (rows.length < EXPORT_PAGE) break;
        const last: Record<string, unknown> = rows[rows.length - 1]!;
        after = [last.receivedAt as Date, last.id as string];
      }
      after = null;
      for (;;) {
        const page: { rows: Record<string, unknown>[] } = await db.query<Record<string, unknown>>(
          `SELECT id, channel, to_address AS "to", body AS text, media, status, created_at AS "createdAt", sent_at AS "sentAt"
             FROM parley_outbox WHERE tenant_id = $1 AND (conversation_id = ANY($2::uuid[]) OR (conversation_id IS NULL AND to_address = ANY($3)))
              AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
             ORDER BY created_at, id LIMIT ${EXPORT_PAGE}`,
          [subject.tenantId, ids, forms, after?.[0] ?? null, after?.[1] ?? null],
        );
        const rows = page.rows;
        if (rows.length) yield rows.map((r) => ({ kind: 'message-sent', ...r }));
        if (rows.length < EXPORT_PAGE) break;
        const last: Record<string, unknown> = rows[rows.length - 1]!;
        after = [last.createdAt as Date, last.id as string];
      }
      const bare = [...new Set(forms.map(consentAddress))];
      const { rows: consent } = await db.query(
        `SELECT c.address, c.status, c.updated_at AS "updatedAt",
                COALESCE((SELECT json_agg(json_build_object('status', e.status, 'source', e.source, 'channel', e.channel, 'at', e.at) ORDER BY e.id)
                          FROM parley_consent_events e WHERE e.tenant_id = c.tenant_id AND e.address = c.address), '[]') AS history
           FROM parley_consent c WHERE c.tenant_id = $1 AND c.address = ANY($2)`,
        [subject.tenantId, [...bare, ...bare.map(suppressionHash)]],
      );
      yield consent.map((r) =>
        String(r.address).startsWith('sha256:')
          ? { kind: 'consent', ...r, note: 'Kept after erasure as a hashed suppression record, so you are never messaged again (opt-out law); it holds no number, only its SHA-256 hash.' }
          : { kind: 'consent', ...r },
      );
    },
    async erase(subject: DataSubject) {
      const forms = addressForms(subject.addresses);
      const client = await db.connect();
      try {
        await client.query('BEGIN');
        const outside = await client.query(`DELETE FROM parley_outbox WHERE tenant_id = $1 AND conversation_id IS NULL AND to_address = ANY($2)`, [subject.tenantId, forms]);
        const counted = await client.query<{ inbound: number; outbound: number }>(
          `SELECT (SELECT count(*)::int FROM parley_inbound i JOIN parley_conversations c ON c.id = i.conversation_id WHERE c.tenant_id = $1 AND c.participant = ANY($2)) AS inbound,
                  (SELECT count(*)::int FROM parley_outbox o JOIN parley_conversations c ON c.id = o.conversation_id WHERE c.tenant_id = $1 AND c.participant = ANY($2)) AS outbound`,
          [subject.tenantId, forms],
        );
        // Cascades to the conversations' messages, outbox items and their status history.
        const conversations = await client.query(`DELETE FROM parley_conversations WHERE tenant_id = $1 AND participant = ANY($2)`, [subject.tenantId, forms]);
        await client.query(`DELETE FROM parley_consent_events WHERE tenant_id = $1 AND address = ANY($2)`, [subject.tenantId, forms.map(consentAddress)]);
        const optedIn = await client.query(`DELETE FROM parley_consent WHERE tenant_id = $1 AND address = ANY($2) AND status <> 'opted-out'`, [subject.tenantId, forms.map(consentAddress)]);
        // The opt-out stays, but under the hash of the number only (sends are checked against both forms).
        const bare = [...new Set(forms.map(consentAddress))];
        await client.query(
          `INSERT INTO parley_consent (tenant_id, address, status, updated_at)
             SELECT tenant_id, h.hash, 'opted-out', now() FROM parley_consent c JOIN unnest($2::text[], $3::text[]) AS h(address, hash) ON h.address = c.address
              WHERE c.tenant_id = $1 AND c.status = 'opted-out'
           ON CONFLICT (tenant_id, address) DO UPDATE SET status = 'opted-out'`,
          [subject.tenantId, bare, bare.map(suppressionHash)],
        );
        await client.query(`DELETE FROM parley_consent WHERE tenant_id = $1 AND address = ANY($2)`, [subject.tenantId, bare]);
        await client.query('COMMIT');
        const c = counted.rows[0]!;
        return { erased: (outside.rowCount ?? 0) + (conversations.rowCount ?? 0) + c.inbound + c.outbound + (optedIn.rowCount ?? 0) };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
  };
}

export interface SubjectExport {
  provider: string;
  plugin: string;
  about: ReturnType<DataSubjectProvider['describe']>;
  records: Record<string, unknown>[];
}

/** One provider's part of an export, read page by page (`exportBatches` when the provider has it). */
export interface SubjectExportStream {
  provider: string;
  plugin: string;
  about: ReturnType<DataSubjectProvider['describe']>;
  batches: AsyncIterable<Record<string, unknown>[]>;
}

/** The export as a stream of providers and pages, for writing large exports without holding them. */
export function* exportSubjectStream(providers: readonly { plugin: string; provider: DataSubjectProvider }[], subject: DataSubject): Generator<SubjectExportStream> {
  for (const { plugin, provider } of providers) {
    const batches = provider.exportBatches
      ? provider.exportBatches(subject)
      : (async function* () {
          yield await provider.export(subject);
        })();
    yield { provider: provider.name, plugin, about: provider.describe(), batches };
  }
}

/** Everything every provider keeps about one person, with what it is kept for. */
export async function exportSubject(providers: readonly { plugin: string; provider: DataSubjectProvider }[], subject: DataSubject): Promise<SubjectExport[]> {
  const out: SubjectExport[] = [];
  for (const { plugin, provider } of providers) out.push({ provider: provider.name, plugin, about: provider.describe(), records: await provider.export(subject) });
  return out;
}

/** Erases one person's data in every provider, plugins first (the kernel's provider is registered first), and audits it with a hash only. */
export async function eraseSubject(db: Pool, providers: readonly { plugin: string; provider: DataSubjectProvider }[], subject: DataSubject, actor: string): Promise<Record<string, number>> {
  const erased: Record<string, number> = {};
  for (const { provider } of [...providers].reverse()) erased[provider.name] = (await provider.erase(subject)).erased;
  const subjectHash = hashAddress([...subject.addresses].sort().join(','));
  await db.query('INSERT INTO parley_audit (tenant_id, actor, action, subject_hash, detail) VALUES ($1, $2, $3, $4, $5)', [subject.tenantId, actor, 'data-subject.erase', subjectHash, erased]);
  return erased;
}

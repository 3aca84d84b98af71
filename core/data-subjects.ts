/**
 * Data-subject export and erasure across every registered provider, and the kernel's own provider:
 * conversations, inbound messages, the outbox and consent of one person within one tenant. Erasure deletes messages and conversations; an opt-out is kept as the
 * suppression record carriers and the TCPA require (without its history), so erasure never makes a
 * number reachable again.
 */
import type { Pool } from 'pg';
import type { DataSubject, DataSubjectProvider } from './plugin.js';
import { consentAddress } from './consent.js';
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
      const forms = addressForms(subject.addresses);
      const { rows: conversations } = await db.query(
        `SELECT id, channel, participant, created_at AS "createdAt", last_message_at AS "lastMessageAt" FROM parley_conversations WHERE tenant_id = $1 AND participant = ANY($2)`,
        [subject.tenantId, forms],
      );
      const ids = conversations.map((c) => c.id as string);
      const { rows: inbound } = await db.query(
        `SELECT id, channel, from_address AS "from", to_address AS "to", body AS text, media, received_at AS "receivedAt", status, annotations
           FROM parley_inbound WHERE tenant_id = $1 AND conversation_id = ANY($2::uuid[]) ORDER BY received_at`,
        [subject.tenantId, ids],
      );
      const { rows: outbound } = await db.query(
        `SELECT id, channel, to_address AS "to", body AS text, media, status, created_at AS "createdAt", sent_at AS "sentAt"
           FROM parley_outbox WHERE tenant_id = $1 AND (conversation_id = ANY($2::uuid[]) OR (conversation_id IS NULL AND to_address = ANY($3))) ORDER BY created_at`,
        [subject.tenantId, ids, forms],
      );
      const { rows: consent } = await db.query(
        `SELECT c.address, c.status, c.updated_at AS "updatedAt",
                COALESCE((SELECT json_agg(json_build_object('status', e.status, 'source', e.source, 'channel', e.channel, 'at', e.at) ORDER BY e.id)
                          FROM parley_consent_events e WHERE e.tenant_id = c.tenant_id AND e.address = c.address), '[]') AS history
           FROM parley_consent c WHERE c.tenant_id = $1 AND c.address = ANY($2)`,
        [subject.tenantId, forms.map(consentAddress)],
      );
      return [
        ...conversations.map((r) => ({ kind: 'conversation', ...r })),
        ...inbound.map((r) => ({ kind: 'message-received', ...r })),
        ...outbound.map((r) => ({ kind: 'message-sent', ...r })),
        ...consent.map((r) => ({ kind: 'consent', ...r })),
      ];
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

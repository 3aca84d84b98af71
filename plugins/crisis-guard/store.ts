/**
 * The detection audit: one row per message found in crisis, with what matched (categories, language,
 * rule ids), never the text or the address. Operators list them and mark false positives; the
 * data-subject provider reaches a person's rows through their conversations.
 */
import type { Pool } from 'pg';
import { consentAddress, fromMicros, microsOf, type DataSubject, type DataSubjectProvider, type Migration } from 'parley';
import type { CrisisCategory, CrisisLanguage } from './types.js';

export const migrations: Migration[] = [
  {
    id: '001_create_crisis_detections',
    sql: `
      CREATE TABLE crisis_guard_detections (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        conversation_id uuid NOT NULL,
        message_id uuid NOT NULL,
        channel text NOT NULL,
        categories text[] NOT NULL,
        language text NOT NULL,
        rule_ids text[] NOT NULL,
        handed_off boolean NOT NULL,
        detected_at timestamptz NOT NULL DEFAULT now(),
        false_positive_at timestamptz,
        false_positive_by text,
        false_positive_note text,
        UNIQUE (tenant_id, message_id)
      );
      CREATE INDEX crisis_guard_detections_tenant ON crisis_guard_detections (tenant_id, detected_at DESC);
      CREATE INDEX crisis_guard_detections_conversation ON crisis_guard_detections (tenant_id, conversation_id);
    `,
  },
];

export interface Detection {
  id: string;
  tenantId: string;
  conversationId: string;
  messageId: string;
  channel: string;
  categories: CrisisCategory[];
  language: CrisisLanguage;
  ruleIds: string[];
  handedOff: boolean;
  detectedAt: Date;
  falsePositive: { at: Date; by: string; note: string | null } | null;
}

interface Row extends Omit<Detection, 'falsePositive'> {
  fpAt: Date | null;
  fpBy: string | null;
  fpNote: string | null;
}

const COLUMNS = `id, tenant_id AS "tenantId", conversation_id AS "conversationId", message_id AS "messageId", channel, categories, language,
  rule_ids AS "ruleIds", handed_off AS "handedOff", detected_at AS "detectedAt",
  false_positive_at AS "fpAt", false_positive_by AS "fpBy", false_positive_note AS "fpNote"`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function toDetection({ fpAt, fpBy, fpNote, ...row }: Row): Detection {
  return { ...row, falsePositive: fpAt ? { at: fpAt, by: fpBy ?? 'unknown', note: fpNote } : null };
}

export class DetectionStore {
  constructor(private readonly db: Pool) {}

  /** Records a detection once per message (a re-run of the message records nothing twice). */
  async record(input: Omit<Detection, 'id' | 'detectedAt' | 'falsePositive'>): Promise<{ id: string; created: boolean }> {
    const { rows } = await this.db.query<{ id: string; created: boolean }>(
      `WITH ins AS (
         INSERT INTO crisis_guard_detections (tenant_id, conversation_id, message_id, channel, categories, language, rule_ids, handed_off)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, message_id) DO NOTHING RETURNING id
       )
       SELECT id, true AS created FROM ins
       UNION ALL SELECT id, false FROM crisis_guard_detections WHERE tenant_id = $1 AND message_id = $3 AND NOT EXISTS (SELECT 1 FROM ins)`,
      [input.tenantId, input.conversationId, input.messageId, input.channel, input.categories, input.language, input.ruleIds, input.handedOff],
    );
    return rows[0]!;
  }

  /** Newest first; `after` is the sort key of the last one of the previous page (`sortAt`, id). */
  async list(tenantId: string, query: { limit: number; before?: Date | undefined; falsePositive?: boolean | undefined; after?: readonly [string, string] | null }): Promise<(Detection & { sortAt: string })[]> {
    const { rows } = await this.db.query<Row & { sortAt: string }>(
      `SELECT ${COLUMNS}, ${microsOf('detected_at')} AS "sortAt" FROM crisis_guard_detections
        WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR detected_at < $2)
          AND ($3::boolean IS NULL OR (false_positive_at IS NOT NULL) = $3)
          AND ($5::text IS NULL OR (detected_at, id) < (${fromMicros('$5')}, $6::uuid))
        ORDER BY detected_at DESC, id DESC LIMIT $4`,
      [tenantId, query.before ?? null, query.falsePositive ?? null, query.limit, query.after?.[0] ?? null, query.after?.[1] ?? null],
    );
    return rows.map((r) => ({ ...toDetection(r), sortAt: r.sortAt }));
  }

  /** Marks a detection a false positive; `changed` is false when it already was one. Undefined when absent. */
  async markFalsePositive(tenantId: string, id: string, by: string, note: string | null): Promise<{ detection: Detection; changed: boolean } | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await this.db.query<Row & { changed: boolean }>(
      `WITH prev AS (SELECT id, false_positive_at FROM crisis_guard_detections WHERE tenant_id = $1 AND id = $2 FOR UPDATE),
       upd AS (
         UPDATE crisis_guard_detections d SET false_positive_at = COALESCE(d.false_positive_at, now()),
                false_positive_by = COALESCE(d.false_positive_by, $3), false_positive_note = COALESCE(d.false_positive_note, $4)
           FROM prev WHERE d.id = prev.id
         RETURNING d.*, prev.false_positive_at IS NULL AS changed
       ), audit AS (
         INSERT INTO parley_audit (tenant_id, actor, action, detail)
         SELECT $1, $3, 'crisis-guard.false-positive', jsonb_build_object('detectionId', $2::text) FROM upd WHERE upd.changed
       )
       SELECT id, tenant_id AS "tenantId", conversation_id AS "conversationId", message_id AS "messageId", channel, categories, language,
              rule_ids AS "ruleIds", handed_off AS "handedOff", detected_at AS "detectedAt",
              false_positive_at AS "fpAt", false_positive_by AS "fpBy", false_positive_note AS "fpNote", changed FROM upd`,
      [tenantId, id, by, note],
    );
    const row = rows[0];
    if (!row) return undefined;
    const { changed, ...rest } = row;
    return { detection: toDetection(rest), changed };
  }

  /** The detections in one person's conversations, for data-subject export and erasure. */
  dataSubjectProvider(): DataSubjectProvider {
    const forms = (s: DataSubject) => [...new Set(s.addresses.flatMap((a) => [a, consentAddress(a), `whatsapp:${consentAddress(a)}`]))];
    const inConversations = `conversation_id IN (SELECT id FROM parley_conversations WHERE tenant_id = $1 AND participant = ANY($2))`;
    return {
      name: 'crisis-guard.detections',
      describe: () => ({
        purpose: 'Keeping people safe: a record that a message was found to describe a danger to life (which kinds, which language, which rules matched), so staff could follow up and review false alarms. The message text is kept with the conversation, not here.',
        recipients: ['The service’s operations staff (an alert with a hashed number and a link to the conversation)'],
        retention: 'Kept with the tenant’s conversation records; erased on request.',
        source: 'The crisis-guard stage of the message pipeline.',
      }),
      export: async (s) => {
        const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM crisis_guard_detections WHERE tenant_id = $1 AND ${inConversations} ORDER BY detected_at`, [s.tenantId, forms(s)]);
        return rows.map((r) => ({ kind: 'crisis-detection', ...toDetection(r) }));
      },
      erase: async (s) => {
        const { rowCount } = await this.db.query(`DELETE FROM crisis_guard_detections WHERE tenant_id = $1 AND ${inConversations}`, [s.tenantId, forms(s)]);
        return { erased: rowCount ?? 0 };
      },
    };
  }
}

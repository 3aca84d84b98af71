/**
 * What medical-answers decided for each message: outcome, confidence, answerer and the documents it
 * cited (or, for a message passed on, the errand it read as), never the question or the answer text
 * (those stay with the conversation). Operators list the fallbacks to see which questions the corpus
 * does not cover; the data-subject provider reaches a person's rows through their conversations. Also the fingerprint of each configured corpus file, so a
 * start ingests it again only when it changed.
 */
import type { Pool } from 'pg';
import { consentAddress, fromMicros, microsOf, type DataSubject, type DataSubjectProvider, type Migration } from 'parley';
import type { QueryOutcome } from './metrics.js';

export const logMigrations: Migration[] = [
  {
    id: '100_create_answer_log',
    sql: `
      CREATE TABLE medical_answers_log (
        tenant_id text NOT NULL,
        message_id uuid NOT NULL,
        conversation_id uuid NOT NULL,
        outcome text NOT NULL,
        answerer text,
        confidence real,
        doc_ids text[] NOT NULL DEFAULT '{}',
        follow_up boolean NOT NULL DEFAULT false,
        cached boolean NOT NULL DEFAULT false,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, message_id)
      );
      CREATE INDEX medical_answers_log_recent ON medical_answers_log (tenant_id, at DESC);
      CREATE INDEX medical_answers_log_conversation ON medical_answers_log (tenant_id, conversation_id);
    `,
  },
  {
    id: '101_create_corpus_sources',
    sql: `
      CREATE TABLE medical_answers_sources (
        tenant_id text NOT NULL,
        path text NOT NULL,
        fingerprint text NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, path)
      );
    `,
  },
  {
    // The errand a message passed on as not a health question read as (engine/errands.ts), or 'unknown'.
    id: '102_answer_log_errand',
    sql: `ALTER TABLE medical_answers_log ADD COLUMN errand text;`,
  },
];

export interface AnswerLogEntry {
  tenantId: string;
  messageId: string;
  conversationId: string;
  outcome: QueryOutcome;
  answerer: 'extractive' | 'model' | null;
  confidence: number | null;
  docIds: string[];
  followUp: boolean;
  cached: boolean;
  /** For a message passed on: the errand it read as, or `unknown`. */
  errand: string | null;
}

const COLUMNS = `message_id AS "messageId", conversation_id AS "conversationId", outcome, answerer, confidence, doc_ids AS "docIds",
  follow_up AS "followUp", cached, errand, at`;

export class AnswerLog {
  constructor(private readonly db: Pool) {}

  /** One row per message: a re-run of the message (recovery) overwrites its own row. */
  async record(e: AnswerLogEntry): Promise<void> {
    await this.db.query(
      `INSERT INTO medical_answers_log (tenant_id, message_id, conversation_id, outcome, answerer, confidence, doc_ids, follow_up, cached, errand)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (tenant_id, message_id) DO UPDATE SET outcome = EXCLUDED.outcome, answerer = EXCLUDED.answerer,
         confidence = EXCLUDED.confidence, doc_ids = EXCLUDED.doc_ids, follow_up = EXCLUDED.follow_up, cached = EXCLUDED.cached, errand = EXCLUDED.errand, at = now()`,
      [e.tenantId, e.messageId, e.conversationId, e.outcome, e.answerer, e.confidence, e.docIds, e.followUp, e.cached, e.errand],
    );
  }

  /** Newest first; `after` is the sort key of the last entry of the previous page (`sortAt`, message id). */
  async list(tenantId: string, q: { limit: number; before?: Date | undefined; outcome?: QueryOutcome | undefined; errand?: string | undefined; after?: readonly [string, string] | null }): Promise<({ messageId: string; sortAt: string } & Record<string, unknown>)[]> {
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS}, ${microsOf('at')} AS "sortAt" FROM medical_answers_log
        WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR at < $2) AND ($3::text IS NULL OR outcome = $3)
          AND ($5::text IS NULL OR (at, message_id) < (${fromMicros('$5')}, $6::uuid)) AND ($7::text IS NULL OR errand = $7)
        ORDER BY at DESC, message_id DESC LIMIT $4`,
      [tenantId, q.before ?? null, q.outcome ?? null, q.limit, q.after?.[0] ?? null, q.after?.[1] ?? null, q.errand ?? null],
    );
    return rows;
  }

  /** Counts over the last `days`, for the status route: by outcome, and the passed-on messages by errand. */
  async summary(tenantId: string, days: number): Promise<{ outcomes: Record<string, number>; errands: Record<string, number> }> {
    const { rows } = await this.db.query<{ outcome: string; errand: string | null; n: number }>(
      `SELECT outcome, errand, count(*)::int AS n FROM medical_answers_log WHERE tenant_id = $1 AND at > now() - make_interval(days => $2) GROUP BY outcome, errand`,
      [tenantId, days],
    );
    const outcomes: Record<string, number> = {};
    const errands: Record<string, number> = {};
    for (const r of rows) {
      outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + r.n;
      if (r.errand) errands[r.errand] = (errands[r.errand] ?? 0) + r.n;
    }
    return { outcomes, errands };
  }

  async sourceFingerprint(tenantId: string, path: string): Promise<string | null> {
    const { rows } = await this.db.query<{ fingerprint: string }>('SELECT fingerprint FROM medical_answers_sources WHERE tenant_id = $1 AND path = $2', [tenantId, path]);
    return rows[0]?.fingerprint ?? null;
  }

  async saveSourceFingerprint(tenantId: string, path: string, fingerprint: string): Promise<void> {
    await this.db.query(
      `INSERT INTO medical_answers_sources (tenant_id, path, fingerprint) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, path) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, ingested_at = now()`,
      [tenantId, path, fingerprint],
    );
  }

  dataSubjectProvider(): DataSubjectProvider {
    const forms = (s: DataSubject) => [...new Set(s.addresses.flatMap((a) => [a, consentAddress(a), `whatsapp:${consentAddress(a)}`]))];
    const inConversations = `conversation_id IN (SELECT id FROM parley_conversations WHERE tenant_id = $1 AND participant = ANY($2))`;
    return {
      name: 'medical-answers.answer-log',
      describe: () => ({
        purpose: 'Quality of health answers: for each question a person sent, whether it was answered or not, how confident the answer was and which documents it cited, so staff can see which questions the library does not cover; for a message that was not a health question, which clinic errand it read as (refill, appointment...). The question and answer text are kept with the conversation, not here.',
        recipients: ['The service’s staff who maintain the health library'],
        retention: 'Kept with the tenant’s conversation records; erased on request.',
        source: 'The medical-answers stage of the message pipeline.',
      }),
      export: async (s) => {
        const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM medical_answers_log WHERE tenant_id = $1 AND ${inConversations} ORDER BY at`, [s.tenantId, forms(s)]);
        return rows.map((r) => ({ kind: 'medical-answer', ...r }));
      },
      erase: async (s) => {
        const { rowCount } = await this.db.query(`DELETE FROM medical_answers_log WHERE tenant_id = $1 AND ${inConversations}`, [s.tenantId, forms(s)]);
        return { erased: rowCount ?? 0 };
      },
    };
  }
}

/**
 * Calls and their status history. A call row links Twilio's CallSid to the Parley conversation of
 * the call, remembers the last turn and where Twilio reaches us (for answers sent later through the
 * REST API), and keeps the status moving forward only: a late `ringing` never undoes `completed`.
 */
import type { Pool } from 'pg';
import { consentAddress, type DataSubject, type DataSubjectProvider, type Migration } from 'parley';

export const callMigrations: Migration[] = [
  {
    id: '001_twilio_calls',
    sql: `
CREATE TABLE twilio_calls (
  tenant_id text NOT NULL,
  call_sid text NOT NULL,
  from_address text NOT NULL,
  to_address text NOT NULL,
  direction text,
  status text NOT NULL,
  conversation_id uuid,
  callback_base text,
  last_turn int NOT NULL DEFAULT 0,
  handoff_turn int,
  duration_seconds int,
  started_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, call_sid)
);
CREATE INDEX twilio_calls_conversation ON twilio_calls (tenant_id, conversation_id);
CREATE INDEX twilio_calls_from ON twilio_calls (tenant_id, from_address);

CREATE TABLE twilio_call_events (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  call_sid text NOT NULL,
  status text NOT NULL,
  duration_seconds int,
  at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, call_sid, status)
);
`,
  },
];

/** Twilio call statuses in the order a call goes through them; the last five end a call. */
export const CALL_STATUS_RANK: Record<string, number> = {
  queued: 0,
  initiated: 1,
  ringing: 2,
  'in-progress': 3,
  completed: 4,
  busy: 4,
  failed: 4,
  'no-answer': 4,
  canceled: 4,
};

export const isFinalCallStatus = (status: string) => (CALL_STATUS_RANK[status] ?? 0) >= 4;

const rankSql = (column: string) => `CASE ${column} ${Object.entries(CALL_STATUS_RANK).map(([s, r]) => `WHEN '${s}' THEN ${r}`).join(' ')} ELSE -1 END`;

export interface CallRow {
  tenantId: string;
  callSid: string;
  from: string;
  to: string;
  status: string;
  conversationId: string | null;
  callbackBase: string | null;
  lastTurn: number;
  handoffTurn: number | null;
}

interface Row {
  tenant_id: string;
  call_sid: string;
  from_address: string;
  to_address: string;
  status: string;
  conversation_id: string | null;
  callback_base: string | null;
  last_turn: number;
  handoff_turn: number | null;
}

const toCall = (r: Row): CallRow => ({
  tenantId: r.tenant_id,
  callSid: r.call_sid,
  from: r.from_address,
  to: r.to_address,
  status: r.status,
  conversationId: r.conversation_id,
  callbackBase: r.callback_base,
  lastTurn: r.last_turn,
  handoffTurn: r.handoff_turn,
});

export class CallStore {
  constructor(private readonly db: Pool) {}

  /** Records a status (from a webhook or a status callback); creates the call if it is new. */
  async recordStatus(c: { tenantId: string; callSid: string; from: string; to: string; status: string; direction?: string | undefined; durationSeconds?: number | undefined; callbackBase?: string | undefined }): Promise<{ status: string; direction: string | null; conversationId: string | null }> {
    const final = isFinalCallStatus(c.status);
    const { rows } = await this.db.query<{ status: string; direction: string | null; conversation_id: string | null }>(
      `WITH up AS (
         INSERT INTO twilio_calls AS c (tenant_id, call_sid, from_address, to_address, direction, status, callback_base, duration_seconds, ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END)
         ON CONFLICT (tenant_id, call_sid) DO UPDATE SET
           status = CASE WHEN ${rankSql('EXCLUDED.status')} > ${rankSql('c.status')} THEN EXCLUDED.status ELSE c.status END,
           duration_seconds = COALESCE(EXCLUDED.duration_seconds, c.duration_seconds),
           callback_base = COALESCE(c.callback_base, EXCLUDED.callback_base),
           direction = COALESCE(c.direction, EXCLUDED.direction),
           ended_at = COALESCE(c.ended_at, EXCLUDED.ended_at),
           updated_at = now()
         RETURNING status, direction, conversation_id
       ), ev AS (
         INSERT INTO twilio_call_events (tenant_id, call_sid, status, duration_seconds) VALUES ($1, $2, $6, $8) ON CONFLICT DO NOTHING
       )
       SELECT status, direction, conversation_id FROM up`,
      [c.tenantId, c.callSid, c.from, c.to, c.direction ?? null, c.status, c.callbackBase ?? null, c.durationSeconds ?? null, final],
    );
    const row = rows[0];
    return { status: row?.status ?? c.status, direction: row?.direction ?? c.direction ?? null, conversationId: row?.conversation_id ?? null };
  }

  /** After a turn: which conversation the call is, and the last turn taken. */
  async noteTurn(tenantId: string, callSid: string, turn: number, conversationId: string | null, handoff: boolean): Promise<void> {
    await this.db.query(
      `UPDATE twilio_calls SET last_turn = GREATEST(last_turn, $3), conversation_id = COALESCE(conversation_id, $4),
         handoff_turn = CASE WHEN $5 THEN $3 ELSE handoff_turn END, updated_at = now()
       WHERE tenant_id = $1 AND call_sid = $2`,
      [tenantId, callSid, turn, conversationId, handoff],
    );
  }

  async get(tenantId: string, callSid: string): Promise<CallRow | undefined> {
    const { rows } = await this.db.query<Row>('SELECT * FROM twilio_calls WHERE tenant_id = $1 AND call_sid = $2', [tenantId, callSid]);
    return rows[0] ? toCall(rows[0]) : undefined;
  }

  async byConversation(tenantId: string, conversationId: string): Promise<CallRow | undefined> {
    const { rows } = await this.db.query<Row>('SELECT * FROM twilio_calls WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY started_at DESC LIMIT 1', [tenantId, conversationId]);
    return rows[0] ? toCall(rows[0]) : undefined;
  }

  async history(tenantId: string, callSid: string): Promise<{ status: string; durationSeconds: number | null; at: Date }[]> {
    const { rows } = await this.db.query<{ status: string; durationSeconds: number | null; at: Date }>(
      'SELECT status, duration_seconds AS "durationSeconds", at FROM twilio_call_events WHERE tenant_id = $1 AND call_sid = $2 ORDER BY id',
      [tenantId, callSid],
    );
    return rows;
  }

  dataSubjectProvider(): DataSubjectProvider {
    const addressesOf = (s: DataSubject) => [...new Set(s.addresses.map(consentAddress))];
    return {
      name: 'twilio-voice.calls',
      describe: () => ({
        purpose: 'Handling phone calls: who called which number, when, for how long and how each call ended (what was said is kept with the conversation).',
        recipients: ['Twilio (carrier of the calls, speech recognition and text-to-speech)'],
        retention: 'Kept with the tenant’s conversation records; erased on request.',
        source: 'Twilio voice webhooks and call status callbacks.',
      }),
      export: async (s) => {
        const { rows } = await this.db.query(
          `SELECT c.call_sid AS "callSid", c.from_address AS "from", c.to_address AS "to", c.direction, c.status, c.duration_seconds AS "durationSeconds",
                  c.started_at AS "startedAt", c.ended_at AS "endedAt",
                  COALESCE((SELECT json_agg(json_build_object('status', e.status, 'at', e.at) ORDER BY e.id) FROM twilio_call_events e
                            WHERE e.tenant_id = c.tenant_id AND e.call_sid = c.call_sid), '[]'::json) AS events
           FROM twilio_calls c WHERE c.tenant_id = $1 AND (c.from_address = ANY($2) OR c.to_address = ANY($2)) ORDER BY c.started_at`,
          [s.tenantId, addressesOf(s)],
        );
        return rows;
      },
      erase: async (s) => {
        const { rows } = await this.db.query<{ n: number }>(
          `WITH gone AS (DELETE FROM twilio_calls WHERE tenant_id = $1 AND (from_address = ANY($2) OR to_address = ANY($2)) RETURNING call_sid),
           ev AS (DELETE FROM twilio_call_events WHERE tenant_id = $1 AND call_sid IN (SELECT call_sid FROM gone) RETURNING 1)
           SELECT (SELECT count(*) FROM gone)::int + (SELECT count(*) FROM ev)::int AS n`,
          [s.tenantId, addressesOf(s)],
        );
        return { erased: rows[0]?.n ?? 0 };
      },
    };
  }
}

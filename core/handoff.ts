/**
 * A conversation's handoff state (`bot` / `human`) as operators read and set it. Stages set it with
 * `stage.handoff`, stored when their message finishes (see `finishInboundMany`).
 */
import type { Pool } from 'pg';
import type { HandoffState } from './plugin.js';

export interface Handoff {
  state: HandoffState;
  reason: string | null;
  /** `stage:<name>` or `operator`/`tenant-key`; null while the conversation never changed hands. */
  by: string | null;
  at: Date | null;
}

export async function readHandoff(db: Pool, tenantId: string, conversationId: string): Promise<Handoff | undefined> {
  const { rows } = await db.query<Handoff>(
    'SELECT handoff AS state, handoff_reason AS reason, handoff_by AS by, handoff_at AS at FROM parley_conversations WHERE tenant_id = $1 AND id = $2',
    [tenantId, conversationId],
  );
  return rows[0];
}

/** Sets the state and audits the change; `changed` is false when it already was `state`. */
export async function setHandoff(db: Pool, input: { tenantId: string; conversationId: string; state: HandoffState; reason: string | null; by: string }): Promise<{ handoff: Handoff; changed: boolean } | undefined> {
  const { rows } = await db.query<Handoff & { changed: boolean }>(
    `WITH prev AS (
       SELECT id, handoff FROM parley_conversations WHERE tenant_id = $1 AND id = $2 FOR UPDATE
     ), upd AS (
       UPDATE parley_conversations c SET handoff = $3, handoff_reason = $4, handoff_by = $5, handoff_at = now()
       FROM prev WHERE c.id = prev.id
       RETURNING c.handoff AS state, c.handoff_reason AS reason, c.handoff_by AS by, c.handoff_at AS at, prev.handoff IS DISTINCT FROM $3 AS changed
     ), audit AS (
       INSERT INTO parley_audit (tenant_id, actor, action, detail)
       SELECT $1, $5, 'conversation.handoff', jsonb_build_object('conversationId', $2::text, 'state', $3::text) FROM upd
     )
     SELECT * FROM upd`,
    [input.tenantId, input.conversationId, input.state, input.reason, input.by],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { changed, ...handoff } = row;
  return { handoff, changed };
}

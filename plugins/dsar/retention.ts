/**
 * Retention: per tenant and kind of data, rows older than the tenant's N days are purged in batches
 * (each batch its own short statement, so no lock is held for long), and people with no message for
 * N days are erased entirely (every provider, audited). `preview` counts what a run would purge.
 */
import type { Pool } from 'pg';
import type { DsarSettings } from './types.js';

export type RetentionKind = 'messages' | 'media' | 'callRecordings' | 'moderationItems' | 'modelLogs' | 'inactiveContacts';
export const RETENTION_KINDS: RetentionKind[] = ['messages', 'media', 'callRecordings', 'moderationItems', 'modelLogs', 'inactiveContacts'];

interface KindSql {
  /** Tables that must exist for the kind to apply (plugins not loaded: nothing to purge). */
  needs: string[];
  count: string;
  /** One batch: $1 tenant, $2 cutoff, $3 batch size; returns the affected row count. */
  batch: string;
}

const KINDS: Record<Exclude<RetentionKind, 'inactiveContacts'>, KindSql> = {
  messages: {
    needs: ['parley_inbound'],
    count: `SELECT (SELECT count(*) FROM parley_inbound WHERE tenant_id = $1 AND received_at < $2) + (SELECT count(*) FROM parley_outbox WHERE tenant_id = $1 AND inbound_id IS NULL AND created_at < $2 AND status NOT IN ('pending', 'retrying', 'sending', 'held')) AS n`,
    // Replies go with their message (ON DELETE CASCADE); sends that are not replies by their own age.
    batch: `WITH i AS (DELETE FROM parley_inbound WHERE id IN (SELECT id FROM parley_inbound WHERE tenant_id = $1 AND received_at < $2 AND status NOT IN ('received', 'processing') LIMIT $3) RETURNING 1),
                 o AS (DELETE FROM parley_outbox WHERE id IN (SELECT id FROM parley_outbox WHERE tenant_id = $1 AND inbound_id IS NULL AND created_at < $2 AND status NOT IN ('pending', 'retrying', 'sending', 'held') LIMIT $3) RETURNING 1)
            SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM o) AS n`,
  },
  media: {
    needs: ['parley_inbound'],
    count: `SELECT (SELECT count(*) FROM parley_inbound WHERE tenant_id = $1 AND received_at < $2 AND media <> '[]'::jsonb) + (SELECT count(*) FROM parley_outbox WHERE tenant_id = $1 AND created_at < $2 AND media <> '[]'::jsonb) AS n`,
    batch: `WITH i AS (UPDATE parley_inbound SET media = '[]'::jsonb WHERE id IN (SELECT id FROM parley_inbound WHERE tenant_id = $1 AND received_at < $2 AND media <> '[]'::jsonb LIMIT $3) RETURNING 1),
                 o AS (UPDATE parley_outbox SET media = '[]'::jsonb WHERE id IN (SELECT id FROM parley_outbox WHERE tenant_id = $1 AND created_at < $2 AND media <> '[]'::jsonb LIMIT $3) RETURNING 1)
            SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM o) AS n`,
  },
  callRecordings: {
    needs: ['twilio_calls'],
    count: `SELECT count(*) AS n FROM twilio_calls WHERE tenant_id = $1 AND started_at < $2`,
    batch: `WITH d AS (DELETE FROM twilio_calls WHERE ctid IN (SELECT ctid FROM twilio_calls WHERE tenant_id = $1 AND started_at < $2 LIMIT $3) RETURNING 1) SELECT count(*) AS n FROM d`,
  },
  moderationItems: {
    needs: ['moderation_items'],
    count: `SELECT count(*) AS n FROM moderation_items WHERE tenant_id = $1 AND created_at < $2 AND status <> 'pending'`,
    batch: `WITH d AS (DELETE FROM moderation_items WHERE ctid IN (SELECT ctid FROM moderation_items WHERE tenant_id = $1 AND created_at < $2 AND status <> 'pending' LIMIT $3) RETURNING 1) SELECT count(*) AS n FROM d`,
  },
  modelLogs: {
    needs: ['parley_usage'],
    count: `SELECT count(*) AS n FROM parley_usage WHERE tenant_id = $1 AND at < $2 AND kind LIKE 'model.%'`,
    batch: `WITH d AS (DELETE FROM parley_usage WHERE id IN (SELECT id FROM parley_usage WHERE tenant_id = $1 AND at < $2 AND kind LIKE 'model.%' LIMIT $3) RETURNING 1) SELECT count(*) AS n FROM d`,
  },
};

export interface RetentionDeps {
  db: Pool;
  erase(tenantId: string, addresses: string[], actor: string): Promise<unknown>;
  onPurged(tenantId: string, kind: RetentionKind, rows: number, dryRun: boolean): Promise<void> | void;
  now?: () => Date;
}

async function tableExists(db: Pool, name: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [name]);
  return rows[0]?.ok ?? false;
}

/** Purges (or, with dryRun, counts) one tenant's data past its retention. */
export async function runRetention(deps: RetentionDeps, tenantId: string, retention: DsarSettings['retention'], opts: { dryRun: boolean; maxBatches?: number }): Promise<Record<string, number>> {
  const now = deps.now?.() ?? new Date();
  const out: Record<string, number> = {};
  for (const kind of RETENTION_KINDS) {
    const days = retention[kind];
    if (!days) continue;
    const cutoff = new Date(now.getTime() - days * 86_400_000);
    let total = 0;
    if (kind === 'inactiveContacts') {
      const { rows } = await deps.db.query<{ participant: string }>(
        `SELECT participant FROM parley_conversations WHERE tenant_id = $1 GROUP BY participant HAVING max(last_message_at) < $2 ORDER BY max(last_message_at) LIMIT $3`,
        [tenantId, cutoff, retention.batchSize * (opts.maxBatches ?? 20)],
      );
      total = rows.length;
      if (!opts.dryRun) for (const r of rows) await deps.erase(tenantId, [r.participant], 'retention:inactive');
    } else {
      const sql = KINDS[kind];
      let exists = true;
      for (const t of sql.needs) exists &&= await tableExists(deps.db, t);
      if (!exists) continue;
      if (opts.dryRun) {
        const { rows } = await deps.db.query<{ n: string }>(sql.count, [tenantId, cutoff]);
        total = Number(rows[0]?.n ?? 0);
      } else {
        for (let i = 0; i < (opts.maxBatches ?? 1000); i++) {
          const { rows } = await deps.db.query<{ n: string }>(sql.batch, [tenantId, cutoff, retention.batchSize]);
          const n = Number(rows[0]?.n ?? 0);
          total += n;
          if (n === 0) break;
        }
      }
    }
    out[kind] = total;
    await deps.onPurged(tenantId, kind, total, opts.dryRun);
  }
  return out;
}

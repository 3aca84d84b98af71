/**
 * The usage ledger behind `ctx.usage`: cost events per tenant in `parley_usage`, written in batches
 * (concurrent records share one statement) and idempotent on (tenant, kind, ref).
 */
import type { Pool } from 'pg';
import { z } from 'zod';
import { ParleyError } from './errors.js';
import type { UsageLedger, UsageRecord, UsageSummaryRow } from './plugin.js';
import type { TenantDirectory } from './tenancy.js';
import type { OutboundMessage } from './message.js';
import { Batcher } from './storage/batcher.js';

const usageSchema = z.object({
  tenantId: z.string().min(1),
  kind: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, 'lower-case letters, digits, ".", "_" or "-"'),
  quantity: z.number().finite(),
  unit: z.string().min(1).max(50),
  costUsd: z.number().finite().optional(),
  ref: z.string().min(1).max(300).optional(),
  at: z.date().optional(),
  attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});

type Row = UsageRecord & { plugin: string };

export class Usage {
  private readonly writer: Batcher<Row, boolean>;

  constructor(
    private readonly db: Pool,
    private readonly tenants: TenantDirectory,
  ) {
    this.writer = new Batcher((rows) => recordUsageMany(this.db, rows));
  }

  /** The ledger one plugin sees: its records carry its name. */
  for(plugin: string): UsageLedger {
    return {
      record: async (usage) => ({ recorded: await this.record(plugin, usage) }),
      summary: (query) => this.summary(query),
      insertSql: (source) => usageInsertSql(source, plugin),
    };
  }

  async record(plugin: string, usage: UsageRecord): Promise<boolean> {
    const parsed = usageSchema.safeParse(usage);
    if (!parsed.success) throw new ParleyError('PARLEY_BAD_REQUEST', `Plugin "${plugin}": invalid usage record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 400, { plugin });
    if (!this.tenants.get(usage.tenantId)) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Plugin "${plugin}": unknown tenant "${usage.tenantId}"`, 404, { plugin });
    return this.writer.submit({ ...parsed.data, plugin });
  }

  /**
   * The kernel's own meter: one `messages.out` per outbox item a channel sent (inline or through the
   * provider API), under the channel's plugin, keyed by the item so a retried send counts once.
   */
  async messagesSent(items: readonly OutboundMessage[], ownerOf: (channel: string) => string): Promise<void> {
    await Promise.all(items.map((m) => this.writer.submit({ tenantId: m.tenantId, kind: 'messages.out', quantity: 1, unit: 'message', plugin: ownerOf(m.channel), ref: m.id, attributes: { channel: m.channel, via: m.via ?? 'api' } })));
  }

  async summary(q: { tenantId: string; from: Date; to: Date; groupBy?: 'kind' | 'day'; kind?: string }): Promise<UsageSummaryRow[]> {
    const tenant = this.tenants.get(q.tenantId);
    if (!tenant) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Unknown tenant "${q.tenantId}"`, 404);
    const byDay = q.groupBy === 'day';
    const { rows } = await this.db.query<{ kind: string; unit: string; day: string | null; quantity: string; cost_usd: string; events: number }>(
      `SELECT kind, unit, ${byDay ? `to_char(date_trunc('day', at AT TIME ZONE $5), 'YYYY-MM-DD')` : 'NULL'} AS day,
              sum(quantity)::text AS quantity, COALESCE(sum(cost_usd), 0)::text AS cost_usd, count(*)::int AS events
         FROM parley_usage
        WHERE tenant_id = $1 AND at >= $2 AND at < $3 AND ($4::text IS NULL OR kind = $4)
        GROUP BY 1, 2, 3 ORDER BY 3 NULLS FIRST, 1, 2`,
      [tenant.id, q.from, q.to, q.kind ?? null, ...(byDay ? [tenant.timezone] : [])],
    );
    return rows.map((r) => ({ kind: r.kind, unit: r.unit, ...(r.day ? { day: r.day } : {}), quantity: Number(r.quantity), costUsd: Number(r.cost_usd), events: r.events }));
  }
}

/** The columns a usage row is written with, in `recordUsageMany` and `usageInsertSql` alike. */
const USAGE_COLUMNS = 'tenant_id, kind, quantity, unit, cost_usd, plugin, ref, attributes, at';
/** A replayed ref records nothing: the unique (tenant, kind, ref) index of `parley_usage`. */
const USAGE_ONCE = 'ON CONFLICT (tenant_id, kind, ref) WHERE ref IS NOT NULL DO NOTHING';

/**
 * The body of a data-modifying CTE that records the rows of `source` (a CTE or subquery with the
 * columns tenant_id, kind, quantity, unit, cost_usd, ref, attributes) under `plugin`, stamped now, as
 * `record` does and idempotent the same way; RETURNING tenant_id, kind, ref of the rows recorded.
 * The plugin name is a literal, so a named statement built with it stays one text per plugin.
 */
export function usageInsertSql(source: string, plugin: string): string {
  return insertUsageFrom(source, `'${plugin.replaceAll("'", "''")}'`);
}

/**
 * As `usageInsertSql`, for rows that name their plugin: `source` has a `plugin` column as well (the
 * kernel meters `messages.out` under each channel's plugin this way, inside the statement that
 * settles the replies).
 */
export function usageRowsInsertSql(source: string): string {
  return insertUsageFrom(source, 'u.plugin');
}

/** The usage insert both build: `plugin` is the SQL expression of the plugin column. */
function insertUsageFrom(source: string, plugin: string): string {
  return `INSERT INTO parley_usage (${USAGE_COLUMNS})
       SELECT u.tenant_id, u.kind, u.quantity, u.unit, u.cost_usd, ${plugin}, u.ref, u.attributes, now() FROM ${source} u
       ${USAGE_ONCE}
       RETURNING tenant_id, kind, ref`;
}

/** One statement for a batch; an item counts as recorded unless its ref was already there (or earlier in the batch). */
export async function recordUsageMany(db: Pool, rows: Row[]): Promise<boolean[]> {
  const input = rows.map((r, idx) => ({
    idx,
    tenant_id: r.tenantId,
    kind: r.kind,
    quantity: r.quantity,
    unit: r.unit,
    cost_usd: r.costUsd ?? null,
    plugin: r.plugin,
    ref: r.ref ?? null,
    attributes: r.attributes ?? {},
    at: (r.at ?? new Date()).toISOString(),
  }));
  const { rows: inserted } = await db.query<{ idx: number }>({
    // Named: prepared once per connection (see recordInboundMany).
    name: 'parley_record_usage',
    text: `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(idx int, tenant_id text, kind text, quantity numeric, unit text, cost_usd numeric, plugin text, ref text, attributes jsonb, at timestamptz)
     ), ins AS (
       INSERT INTO parley_usage (${USAGE_COLUMNS})
       SELECT ${USAGE_COLUMNS} FROM input ORDER BY idx
       ${USAGE_ONCE}
       RETURNING id, tenant_id, kind, ref
     )
     SELECT DISTINCT ON (i.tenant_id, i.kind, i.ref) i.idx
       FROM input i JOIN ins ON ins.tenant_id = i.tenant_id AND ins.kind = i.kind AND ins.ref = i.ref
      ORDER BY i.tenant_id, i.kind, i.ref, i.idx`,
    values: [JSON.stringify(input)],
  });
  const recorded = new Set(inserted.map((r) => r.idx));
  return rows.map((r, idx) => (r.ref ? recorded.has(idx) : true));
}

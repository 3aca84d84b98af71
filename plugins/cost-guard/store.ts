/**
 * cost-guard's tables and every statement on them. Usage rows arrive through the kernel ledger
 * (`parley_usage`); two triggers on it price rows recorded without a cost (from `cost_guard_prices`, so
 * a price change applies to the next row, on every instance, without a restart) and keep the hourly
 * rollup and the per-window budget counters in the same transaction as the row, so reads never scan
 * the ledger. Budgets are reserved and settled on the counter rows with row locks taken in one order
 * (total first), so two instances can never both spend the last dollar.
 */
import type { Pool } from 'pg';
import { fromMicros, inTransaction, microsOf, type Migration } from 'parley';
import type { Category, Period, PriceRule } from './types.js';

export const migrations: Migration[] = [
  {
    id: '001_cost_guard',
    sql: `
      CREATE TABLE cost_guard_tenants (tenant_id text PRIMARY KEY, timezone text NOT NULL DEFAULT 'UTC');
      CREATE TABLE cost_guard_prices (
        tenant_id text NOT NULL DEFAULT '*',
        kind text NOT NULL,
        channel text NOT NULL DEFAULT '*',
        country text NOT NULL DEFAULT '*',
        source text NOT NULL CHECK (source IN ('config', 'operator')),
        unit_usd numeric(16, 8) NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, kind, channel, country, source)
      );
      CREATE TABLE cost_guard_rollup (
        tenant_id text NOT NULL,
        hour timestamptz NOT NULL,
        category text NOT NULL,
        kind text NOT NULL,
        unit text NOT NULL,
        provider text NOT NULL,
        model text NOT NULL,
        channel text NOT NULL,
        quantity numeric NOT NULL,
        cost_usd numeric(18, 8) NOT NULL,
        events integer NOT NULL,
        PRIMARY KEY (tenant_id, hour, category, kind, unit, provider, model, channel)
      );
      CREATE TABLE cost_guard_counters (
        tenant_id text NOT NULL,
        category text NOT NULL,
        period text NOT NULL,
        window_key text NOT NULL,
        spent_usd numeric(18, 8) NOT NULL DEFAULT 0,
        reserved_usd numeric(18, 8) NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant_id, category, period, window_key)
      );
      CREATE TABLE cost_guard_reservations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        amount_usd numeric(18, 8) NOT NULL,
        counters jsonb NOT NULL,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX cost_guard_reservations_expiry ON cost_guard_reservations (expires_at);
      CREATE TABLE cost_guard_budgets (
        tenant_id text NOT NULL,
        category text NOT NULL,
        period text NOT NULL,
        limit_usd numeric(18, 8),
        updated_by text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, category, period)
      );
      CREATE TABLE cost_guard_blocks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        type text NOT NULL CHECK (type IN ('sender', 'ip')),
        value text NOT NULL,
        reason text,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, type, value)
      );
      CREATE TABLE cost_guard_cache (
        tenant_id text NOT NULL,
        key text NOT NULL,
        answer text NOT NULL,
        model text NOT NULL,
        cost_usd numeric(18, 8) NOT NULL,
        hits integer NOT NULL DEFAULT 0,
        saved_usd numeric(18, 8) NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, key)
      );
      CREATE INDEX cost_guard_cache_expiry ON cost_guard_cache (expires_at);
      -- rate-limiter-flexible's table (created here: the limiter is told tableCreated).
      CREATE TABLE cost_guard_limits (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint);

      CREATE FUNCTION cost_guard_price_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF NEW.cost_usd IS NULL THEN
          SELECT NEW.quantity * p.unit_usd INTO NEW.cost_usd FROM cost_guard_prices p
           WHERE p.kind = NEW.kind AND p.tenant_id IN (NEW.tenant_id, '*')
             AND p.channel IN (COALESCE(NEW.attributes->>'channel', ''), '*')
             AND p.country IN (COALESCE(NEW.attributes->>'country', ''), '*')
           ORDER BY (p.tenant_id <> '*') DESC, (p.channel <> '*') DESC, (p.country <> '*') DESC, (p.source = 'operator') DESC
           LIMIT 1;
        END IF;
        RETURN NEW;
      END $fn$;
      CREATE TRIGGER cost_guard_price BEFORE INSERT ON parley_usage FOR EACH ROW EXECUTE FUNCTION cost_guard_price_usage();

      CREATE FUNCTION cost_guard_rollup_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        cat text;
        tz text;
        c numeric := COALESCE(NEW.cost_usd, 0);
        d text;
        m text;
      BEGIN
        cat := CASE WHEN NEW.kind LIKE 'model.%' THEN 'ai'
                    WHEN NEW.kind ~ '^(sms|mms|whatsapp|voice|messages)\\.' THEN 'messaging'
                    ELSE 'other' END;
        INSERT INTO cost_guard_rollup AS r (tenant_id, hour, category, kind, unit, provider, model, channel, quantity, cost_usd, events)
        VALUES (NEW.tenant_id, date_trunc('hour', NEW.at), cat, NEW.kind, NEW.unit, COALESCE(NEW.attributes->>'provider', ''),
                COALESCE(NEW.attributes->>'model', ''), COALESCE(NEW.attributes->>'channel', ''), NEW.quantity, c, 1)
        ON CONFLICT (tenant_id, hour, category, kind, unit, provider, model, channel)
        DO UPDATE SET quantity = r.quantity + EXCLUDED.quantity, cost_usd = r.cost_usd + EXCLUDED.cost_usd, events = r.events + 1;
        IF c <> 0 THEN
          SELECT timezone INTO tz FROM cost_guard_tenants WHERE tenant_id = NEW.tenant_id;
          tz := COALESCE(tz, 'UTC');
          d := to_char(NEW.at AT TIME ZONE tz, 'YYYY-MM-DD');
          m := to_char(NEW.at AT TIME ZONE tz, 'YYYY-MM');
          -- Lock order: total before the category, day before month (as reserve() does): no deadlocks.
          INSERT INTO cost_guard_counters AS k (tenant_id, category, period, window_key, spent_usd)
          VALUES (NEW.tenant_id, 'total', 'day', d, c), (NEW.tenant_id, 'total', 'month', m, c), (NEW.tenant_id, cat, 'day', d, c), (NEW.tenant_id, cat, 'month', m, c)
          ON CONFLICT (tenant_id, category, period, window_key) DO UPDATE SET spent_usd = k.spent_usd + EXCLUDED.spent_usd;
        END IF;
        RETURN NULL;
      END $fn$;
      -- A paid send's reservation (made by the reply stage, its id kept in the outbox item's annotations)
      -- is released when the send is metered, so it is never counted twice.
      CREATE FUNCTION cost_guard_settle_send() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        rid uuid;
        amt numeric;
        ctrs jsonb;
      BEGIN
        IF NEW.kind = 'messages.out' AND NEW.ref ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
          SELECT (o.details->'annotations'->'costGuard'->>'reservation')::uuid INTO rid FROM parley_outbox o WHERE o.id = NEW.ref::uuid AND o.tenant_id = NEW.tenant_id;
          IF rid IS NOT NULL THEN
            DELETE FROM cost_guard_reservations WHERE id = rid RETURNING amount_usd, counters INTO amt, ctrs;
            IF FOUND THEN
              UPDATE cost_guard_counters c SET reserved_usd = greatest(0, c.reserved_usd - amt)
                FROM jsonb_to_recordset(ctrs) AS k(category text, period text, window_key text)
               WHERE c.tenant_id = NEW.tenant_id AND c.category = k.category AND c.period = k.period AND c.window_key = k.window_key;
            END IF;
          END IF;
        END IF;
        RETURN NULL;
      END $fn$;
      CREATE TRIGGER cost_guard_settle_send AFTER INSERT ON parley_usage FOR EACH ROW EXECUTE FUNCTION cost_guard_settle_send();
      CREATE TRIGGER cost_guard_rollup AFTER INSERT ON parley_usage FOR EACH ROW EXECUTE FUNCTION cost_guard_rollup_usage();
    `,
  },
  {
    // Per-tenant model token prices: a rule with a model replaces the kernel's ai.prices cost of that
    // tenant's rows (they arrive priced); prices per token need more decimals than per message.
    id: '002_cost_guard_model_prices',
    sql: `
      ALTER TABLE cost_guard_prices ADD COLUMN model text NOT NULL DEFAULT '*';
      ALTER TABLE cost_guard_prices DROP CONSTRAINT cost_guard_prices_pkey;
      ALTER TABLE cost_guard_prices ADD PRIMARY KEY (tenant_id, kind, channel, country, model, source);
      ALTER TABLE cost_guard_prices ALTER COLUMN unit_usd TYPE numeric(24, 14);
      CREATE OR REPLACE FUNCTION cost_guard_price_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        u numeric;
      BEGIN
        IF NEW.cost_usd IS NULL THEN
          SELECT NEW.quantity * p.unit_usd INTO NEW.cost_usd FROM cost_guard_prices p
           WHERE p.kind = NEW.kind AND p.tenant_id IN (NEW.tenant_id, '*')
             AND p.channel IN (COALESCE(NEW.attributes->>'channel', ''), '*')
             AND p.country IN (COALESCE(NEW.attributes->>'country', ''), '*')
             AND p.model IN (COALESCE(NEW.attributes->>'model', ''), '*')
           ORDER BY (p.tenant_id <> '*') DESC, (p.model <> '*') DESC, (p.channel <> '*') DESC, (p.country <> '*') DESC, (p.source = 'operator') DESC
           LIMIT 1;
        ELSIF NEW.kind LIKE 'model.tokens.%' AND NEW.attributes ? 'model' THEN
          SELECT p.unit_usd INTO u FROM cost_guard_prices p
           WHERE p.kind = NEW.kind AND p.tenant_id = NEW.tenant_id AND p.model = NEW.attributes->>'model'
           ORDER BY (p.source = 'operator') DESC LIMIT 1;
          IF FOUND THEN
            NEW.cost_usd := NEW.quantity * u;
          END IF;
        END IF;
        RETURN NEW;
      END $fn$;
    `,
  },
  {
    // A price rule's model matches the name the provider answers with: exactly, or followed by a
    // date (OpenAI's gpt-4o-mini-2024-07-18 and gpt-4-0613, Anthropic's claude-3-5-sonnet-20241022,
    // Vertex's @20241022), so a rule for gpt-4o-mini prices its dated snapshots but never
    // gpt-4o-mini-audio; an exact rule beats a dated match, a longer (more specific) rule a shorter.
    id: '003_cost_guard_model_match',
    sql: `
      CREATE FUNCTION cost_guard_model_matches(rule text, model text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $fn$
        SELECT rule = model
            OR (left(model, length(rule)) = rule AND substr(model, length(rule) + 1) ~ '^[-@]([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}|[0-9]{4})$')
      $fn$;
      CREATE OR REPLACE FUNCTION cost_guard_price_usage() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        u numeric;
        m text := COALESCE(NEW.attributes->>'model', '');
      BEGIN
        IF NEW.cost_usd IS NULL THEN
          SELECT NEW.quantity * p.unit_usd INTO NEW.cost_usd FROM cost_guard_prices p
           WHERE p.kind = NEW.kind AND p.tenant_id IN (NEW.tenant_id, '*')
             AND p.channel IN (COALESCE(NEW.attributes->>'channel', ''), '*')
             AND p.country IN (COALESCE(NEW.attributes->>'country', ''), '*')
             AND (p.model = '*' OR cost_guard_model_matches(p.model, m))
           ORDER BY (p.tenant_id <> '*') DESC, (p.model <> '*') DESC, (p.model = m) DESC, length(p.model) DESC,
                    (p.channel <> '*') DESC, (p.country <> '*') DESC, (p.source = 'operator') DESC
           LIMIT 1;
        ELSIF NEW.kind LIKE 'model.tokens.%' AND m <> '' THEN
          SELECT p.unit_usd INTO u FROM cost_guard_prices p
           WHERE p.kind = NEW.kind AND p.tenant_id = NEW.tenant_id AND p.model <> '*' AND cost_guard_model_matches(p.model, m)
           ORDER BY (p.model = m) DESC, length(p.model) DESC, (p.source = 'operator') DESC LIMIT 1;
          IF FOUND THEN
            NEW.cost_usd := NEW.quantity * u;
          END IF;
        END IF;
        RETURN NEW;
      END $fn$;
    `,
  },
];

export interface CounterKey {
  category: Category;
  period: Period;
  window_key: string;
  /** The limit from the tenant's settings (an operator's runtime budget replaces it). */
  limit_usd: number | null;
}

export interface CounterState {
  category: Category;
  period: Period;
  windowKey: string;
  spent: number;
  reserved: number;
  limit: number | null;
}

/** `YYYY-MM-DD` and `YYYY-MM` of `at` in a time zone (as the trigger computes them). */
export function windowKeys(timezone: string, at = new Date()): { day: string; month: string } {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)!.value;
  return { day: `${get('year')}-${get('month')}-${get('day')}`, month: `${get('year')}-${get('month')}` };
}

const LOCKED = `
  locked AS (
    SELECT c.category, c.period, c.window_key, c.spent_usd, c.reserved_usd,
           CASE WHEN b.tenant_id IS NOT NULL THEN b.limit_usd ELSE k.limit_usd END AS limit_usd
      FROM cost_guard_counters c
      JOIN keys k ON k.category = c.category AND k.period = c.period AND k.window_key = c.window_key
      LEFT JOIN cost_guard_budgets b ON b.tenant_id = c.tenant_id AND b.category = c.category AND b.period = c.period
     WHERE c.tenant_id = $1
     ORDER BY (c.category <> 'total'), c.category, c.period
     FOR UPDATE OF c
  )`;

const toState = (r: { category: Category; period: Period; window_key: string; spent_usd: string; reserved_usd: string; limit_usd: string | null }): CounterState => ({
  category: r.category,
  period: r.period,
  windowKey: r.window_key,
  spent: Number(r.spent_usd),
  reserved: Number(r.reserved_usd),
  limit: r.limit_usd === null ? null : Number(r.limit_usd),
});

export class CostStore {
  constructor(private readonly db: Pool) {}

  async syncTenants(tenants: { id: string; timezone: string }[]): Promise<void> {
    if (!tenants.length) return;
    await this.db.query(
      `INSERT INTO cost_guard_tenants (tenant_id, timezone) SELECT * FROM unnest($1::text[], $2::text[])
       ON CONFLICT (tenant_id) DO UPDATE SET timezone = EXCLUDED.timezone`,
      [tenants.map((t) => t.id), tenants.map((t) => t.timezone)],
    );
  }

  /** Replaces the configured prices (the operator's own stay, and win at equal specificity). */
  async syncConfigPrices(rules: { tenantId: string; rule: PriceRule }[]): Promise<void> {
    await this.db.query(
      `WITH del AS (DELETE FROM cost_guard_prices WHERE source = 'config')
       INSERT INTO cost_guard_prices (tenant_id, kind, channel, country, model, source, unit_usd)
       SELECT t, k, ch, co, mo, 'config', u FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[]) AS x(t, k, ch, co, mo, u)
       ON CONFLICT (tenant_id, kind, channel, country, model, source) DO UPDATE SET unit_usd = EXCLUDED.unit_usd, updated_at = now()`,
      [rules.map((r) => r.tenantId), rules.map((r) => r.rule.kind), rules.map((r) => r.rule.channel ?? '*'), rules.map((r) => r.rule.country ?? '*'), rules.map((r) => r.rule.model ?? '*'), rules.map((r) => r.rule.usd)],
    );
  }

  /**
   * An operator's price change (audited); `usd: null` removes the operator's rule. A rule with a
   * `model` is a tenant's model token price: the ledger trigger applies it to the next row.
   */
  async setPrices(rules: { tenantId: string; kind: string; channel?: string | undefined; country?: string | undefined; model?: string | undefined; usd: number | null }[], actor: string): Promise<void> {
    await inTransaction(this.db, async (client) => {
      for (const r of rules) {
        const key = [r.tenantId, r.kind, r.channel ?? '*', r.country ?? '*', r.model ?? '*'];
        if (r.usd === null) await client.query(`DELETE FROM cost_guard_prices WHERE tenant_id = $1 AND kind = $2 AND channel = $3 AND country = $4 AND model = $5 AND source = 'operator'`, key);
        else
          await client.query(
            `INSERT INTO cost_guard_prices (tenant_id, kind, channel, country, model, source, unit_usd) VALUES ($1, $2, $3, $4, $5, 'operator', $6)
             ON CONFLICT (tenant_id, kind, channel, country, model, source) DO UPDATE SET unit_usd = EXCLUDED.unit_usd, updated_at = now()`,
            [...key, r.usd],
          );
        await client.query(`INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ($1, $2, 'cost-guard.price', $3)`, [
          r.tenantId === '*' ? null : r.tenantId,
          actor,
          { kind: r.kind, channel: r.channel ?? null, country: r.country ?? null, ...(r.model ? { model: r.model } : {}), usd: r.usd },
        ]);
      }
    });
  }

  /**
   * A tenant's own model token prices (USD per token) for a model as the provider names it, as the
   * ledger trigger picks them (configured or set at run time; dated names match their base rule).
   */
  async modelPrices(tenantId: string, model: string): Promise<{ input?: number; output?: number; embedding?: number }> {
    const { rows } = await this.db.query<{ kind: string; usd: number }>(
      `SELECT DISTINCT ON (kind) kind, unit_usd::float8 AS usd FROM cost_guard_prices
        WHERE tenant_id = $1 AND kind IN ('model.tokens.input', 'model.tokens.output', 'model.tokens.embedding') AND model <> '*' AND cost_guard_model_matches(model, $2)
        ORDER BY kind, (model = $2) DESC, length(model) DESC, (source = 'operator') DESC`,
      [tenantId, model],
    );
    return Object.fromEntries(rows.map((r) => [r.kind.slice('model.tokens.'.length), r.usd]));
  }

  async prices(): Promise<{ tenantId: string; kind: string; channel: string; country: string; model: string; source: string; usd: number; updatedAt: Date }[]> {
    const { rows } = await this.db.query(
      `SELECT tenant_id AS "tenantId", kind, channel, country, model, source, unit_usd::float8 AS usd, updated_at AS "updatedAt" FROM cost_guard_prices ORDER BY tenant_id, kind, channel, country, model, source`,
    );
    return rows;
  }

  /** The price of one unit of `kind` as a usage row would get it (0 when there is none). */
  async unitPrice(tenantId: string, kind: string, channel: string): Promise<number> {
    const { rows } = await this.db.query<{ usd: number }>(
      `SELECT unit_usd::float8 AS usd FROM cost_guard_prices p
        WHERE p.kind = $2 AND p.tenant_id IN ($1, '*') AND p.channel IN ($3, '*') AND p.country = '*' AND p.model = '*'
        ORDER BY (p.tenant_id <> '*') DESC, (p.channel <> '*') DESC, (p.source = 'operator') DESC LIMIT 1`,
      [tenantId, kind, channel],
    );
    return rows[0]?.usd ?? 0;
  }

  /**
   * Reserves `amount` on every counter in `keys` in one statement: the counter rows are locked in one
   * order (total first) and the reservation is made only when no limit would be passed
   * (spent + reserved + amount <= limit), or always with `force` (notify-only). Returns the counters
   * as they stood under the lock.
   */
  async reserve(tenantId: string, keys: CounterKey[], amount: number, opts: { force: boolean; ttlSeconds: number }): Promise<{ ok: boolean; id: string | null; counters: CounterState[] }> {
    const json = JSON.stringify(keys);
    await this.db.query(
      `INSERT INTO cost_guard_counters (tenant_id, category, period, window_key)
       SELECT $1, k.category, k.period, k.window_key FROM jsonb_to_recordset($2::jsonb) AS k(category text, period text, window_key text)
       ORDER BY (k.category <> 'total'), k.category, k.period
       ON CONFLICT DO NOTHING`,
      [tenantId, json],
    );
    const { rows } = await this.db.query<{ ok: boolean; id: string | null; counters: Parameters<typeof toState>[0][] }>(
      `WITH keys AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS k(category text, period text, window_key text, limit_usd numeric)),
       ${LOCKED},
       verdict AS (SELECT COALESCE(bool_and(limit_usd IS NULL OR spent_usd + reserved_usd + $3::numeric <= limit_usd), true) AS ok FROM locked),
       upd AS (
         UPDATE cost_guard_counters c SET reserved_usd = c.reserved_usd + $3::numeric
           FROM locked l, verdict v
          WHERE (v.ok OR $4::boolean) AND c.tenant_id = $1 AND c.category = l.category AND c.period = l.period AND c.window_key = l.window_key
         RETURNING c.category
       ),
       res AS (
         INSERT INTO cost_guard_reservations (tenant_id, amount_usd, counters, expires_at)
         SELECT $1, $3::numeric, $2::jsonb, now() + make_interval(secs => $5::int) FROM verdict WHERE ok OR $4::boolean
         RETURNING id
       )
       SELECT (SELECT ok FROM verdict) AS ok, (SELECT id FROM res) AS id,
              COALESCE((SELECT json_agg(json_build_object('category', category, 'period', period, 'window_key', window_key, 'spent_usd', spent_usd::text, 'reserved_usd', reserved_usd::text, 'limit_usd', limit_usd::text)) FROM locked), '[]'::json) AS counters,
              (SELECT count(*) FROM upd) AS updated`,
      [tenantId, json, amount, opts.force, opts.ttlSeconds],
    );
    const row = rows[0]!;
    return { ok: row.ok, id: row.id, counters: row.counters.map(toState) };
  }

  /** Gives a reservation's amount back (its usage, if any, is already in `spent`). */
  async release(ids: string[]): Promise<number> {
    if (!ids.length) return 0;
    return this.releaseWhere('id = ANY($1::uuid[])', [ids]);
  }

  /** Releases reservations whose holder never settled them (a crash, a send that was never metered). */
  async releaseExpired(): Promise<number> {
    return this.releaseWhere('expires_at < now()', []);
  }

  private async releaseWhere(where: string, params: unknown[]): Promise<number> {
    return inTransaction(this.db, async (client) => {
      const { rows } = await client.query<{ tenant_id: string; amount_usd: string; counters: { category: string; period: string; window_key: string }[] }>(
        `DELETE FROM cost_guard_reservations WHERE ${where} RETURNING tenant_id, amount_usd, counters`,
        params,
      );
      const byCounter = new Map<string, { tenant: string; category: string; period: string; window: string; amount: number }>();
      for (const r of rows) {
        for (const k of r.counters) {
          const key = `${r.tenant_id}\u0000${k.category}\u0000${k.period}\u0000${k.window_key}`;
          const cur = byCounter.get(key) ?? { tenant: r.tenant_id, category: k.category, period: k.period, window: k.window_key, amount: 0 };
          cur.amount += Number(r.amount_usd);
          byCounter.set(key, cur);
        }
      }
      // Same lock order as reserve(): tenant, total first, category, period.
      const list = [...byCounter.values()].sort((a, b) => a.tenant.localeCompare(b.tenant) || Number(a.category !== 'total') - Number(b.category !== 'total') || a.category.localeCompare(b.category) || a.period.localeCompare(b.period));
      for (const c of list) {
        await client.query(
          `UPDATE cost_guard_counters SET reserved_usd = greatest(0, reserved_usd - $5::numeric) WHERE tenant_id = $1 AND category = $2 AND period = $3 AND window_key = $4`,
          [c.tenant, c.category, c.period, c.window, c.amount],
        );
      }
      return rows.length;
    });
  }

  /** The counters of the current windows with their effective limits (no lock). */
  async counters(tenantId: string, keys: CounterKey[]): Promise<CounterState[]> {
    const { rows } = await this.db.query<Parameters<typeof toState>[0]>(
      `WITH keys AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS k(category text, period text, window_key text, limit_usd numeric))
       SELECT k.category, k.period, k.window_key, COALESCE(c.spent_usd, 0)::text AS spent_usd, COALESCE(c.reserved_usd, 0)::text AS reserved_usd,
              (CASE WHEN b.tenant_id IS NOT NULL THEN b.limit_usd ELSE k.limit_usd END)::text AS limit_usd
         FROM keys k
         LEFT JOIN cost_guard_counters c ON c.tenant_id = $1 AND c.category = k.category AND c.period = k.period AND c.window_key = k.window_key
         LEFT JOIN cost_guard_budgets b ON b.tenant_id = $1 AND b.category = k.category AND b.period = k.period`,
      [tenantId, JSON.stringify(keys)],
    );
    return rows.map(toState);
  }

  /** Total spend per day (`YYYY-MM-DD`, tenant time zone) for the `days` days before `today`. */
  async previousDays(tenantId: string, today: string, days: number): Promise<number[]> {
    const { rows } = await this.db.query<{ spent: number }>(
      `SELECT spent_usd::float8 AS spent FROM cost_guard_counters
        WHERE tenant_id = $1 AND category = 'total' AND period = 'day' AND window_key < $2 AND window_key >= to_char($2::date - $3::int, 'YYYY-MM-DD')`,
      [tenantId, today, days],
    );
    return rows.map((r) => r.spent);
  }

  async setBudget(tenantId: string, category: Category, period: Period, limit: number | null, actor: string): Promise<void> {
    await this.db.query(
      `WITH up AS (
         INSERT INTO cost_guard_budgets (tenant_id, category, period, limit_usd, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, category, period) DO UPDATE SET limit_usd = EXCLUDED.limit_usd, updated_by = EXCLUDED.updated_by, updated_at = now()
       )
       INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ($1, $5, 'cost-guard.budget', jsonb_build_object('category', $2::text, 'period', $3::text, 'limitUsd', $4::numeric))`,
      [tenantId, category, period, limit, actor],
    );
  }

  async clearBudget(tenantId: string, category: Category, period: Period, actor: string): Promise<void> {
    await this.db.query(
      `WITH del AS (DELETE FROM cost_guard_budgets WHERE tenant_id = $1 AND category = $2 AND period = $3)
       INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ($1, $4, 'cost-guard.budget', jsonb_build_object('category', $2::text, 'period', $3::text, 'limitUsd', 'settings'))`,
      [tenantId, category, period, actor],
    );
  }

  /** Spend in `[from, to)` from the hourly rollup, by category, provider, model and channel. */
  async breakdown(tenantId: string, from: Date, to: Date) {
    const { rows } = await this.db.query<{ category: string; provider: string; model: string; channel: string; cost: number }>(
      `SELECT category, provider, model, channel, sum(cost_usd)::float8 AS cost FROM cost_guard_rollup
        WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 GROUP BY 1, 2, 3, 4`,
      [tenantId, from, to],
    );
    return rows;
  }

  /** The start and end of the tenant's current day or month, as instants. */
  async window(timezone: string, period: Period): Promise<{ from: Date; to: Date }> {
    const unit = period === 'day' ? 'day' : 'month';
    const { rows } = await this.db.query<{ from: Date; to: Date }>(
      `SELECT (date_trunc('${unit}', now() AT TIME ZONE $1) AT TIME ZONE $1) AS "from",
              ((date_trunc('${unit}', now() AT TIME ZONE $1) + interval '1 ${unit}') AT TIME ZONE $1) AS "to"`,
      [timezone],
    );
    return rows[0]!;
  }

  /** Totals for metrics (read at scrape; every instance reports the same deployment-wide figures). */
  async totals() {
    const { rows } = await this.db.query<{ tenant_id: string; category: string; kind: string; provider: string; model: string; channel: string; quantity: number; cost: number }>(
      `SELECT tenant_id, category, kind, provider, model, channel, sum(quantity)::float8 AS quantity, sum(cost_usd)::float8 AS cost FROM cost_guard_rollup GROUP BY 1, 2, 3, 4, 5, 6`,
    );
    return rows;
  }

  // ---- blocks -------------------------------------------------------------------------------------

  async addBlock(tenantId: string, type: 'sender' | 'ip', value: string, reason: string | null, actor: string) {
    const { rows } = await this.db.query(
      `WITH ins AS (
         INSERT INTO cost_guard_blocks (tenant_id, type, value, reason, created_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, type, value) DO UPDATE SET reason = EXCLUDED.reason
         RETURNING id, type, value, reason, created_by AS "createdBy", created_at AS "createdAt"
       ), audit AS (
         INSERT INTO parley_audit (tenant_id, actor, action, detail) SELECT $1, $5, 'cost-guard.block', jsonb_build_object('id', id::text, 'type', type, 'value', value) FROM ins
       )
       SELECT * FROM ins`,
      [tenantId, type, value, reason, actor],
    );
    return rows[0];
  }

  async removeBlock(tenantId: string, id: string, actor: string): Promise<boolean> {
    const { rows } = await this.db.query(
      `WITH del AS (DELETE FROM cost_guard_blocks WHERE tenant_id = $1 AND id = $2 RETURNING id, type, value),
       audit AS (INSERT INTO parley_audit (tenant_id, actor, action, detail) SELECT $1, $3, 'cost-guard.unblock', jsonb_build_object('id', id::text, 'type', type, 'value', value) FROM del)
       SELECT id FROM del`,
      [tenantId, id, actor],
    );
    return rows.length > 0;
  }

  async blocks(tenantId: string): Promise<{ id: string; type: 'sender' | 'ip'; value: string; reason: string | null; createdBy: string; createdAt: Date }[]> {
    const { rows } = await this.db.query(
      `SELECT id, type, value, reason, created_by AS "createdBy", created_at AS "createdAt" FROM cost_guard_blocks WHERE tenant_id = $1 ORDER BY created_at`,
      [tenantId],
    );
    return rows;
  }

  /** A page of `blocks`, oldest first; `after` is the sort key of the last one of the previous page (`sortAt`, id). */
  async blocksPage(tenantId: string, limit: number, after: readonly [string, string] | null): Promise<{ id: string; type: 'sender' | 'ip'; value: string; reason: string | null; createdBy: string; createdAt: Date; sortAt: string }[]> {
    const { rows } = await this.db.query(
      `SELECT id, type, value, reason, created_by AS "createdBy", created_at AS "createdAt", ${microsOf('created_at')} AS "sortAt" FROM cost_guard_blocks
        WHERE tenant_id = $1 AND ($3::text IS NULL OR (created_at, id) > (${fromMicros('$3')}, $4::uuid))
        ORDER BY created_at, id LIMIT $2`,
      [tenantId, limit, after?.[0] ?? null, after?.[1] ?? null],
    );
    return rows;
  }

  async blocksOfHashes(tenantId: string, hashes: string[]) {
    const { rows } = await this.db.query(`SELECT id, type, value, reason, created_at AS "createdAt" FROM cost_guard_blocks WHERE tenant_id = $1 AND type = 'sender' AND value = ANY($2)`, [tenantId, hashes]);
    return rows;
  }

  async eraseBlocksOfHashes(tenantId: string, hashes: string[]): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM cost_guard_blocks WHERE tenant_id = $1 AND type = 'sender' AND value = ANY($2)`, [tenantId, hashes]);
    return rowCount ?? 0;
  }

  // ---- response cache -----------------------------------------------------------------------------

  /** A live cached answer, counted as a hit with what it saved. */
  async cacheHit(tenantId: string, key: string): Promise<{ answer: string; model: string; costUsd: number } | undefined> {
    const { rows } = await this.db.query<{ answer: string; model: string; cost: number }>(
      `UPDATE cost_guard_cache SET hits = hits + 1, saved_usd = saved_usd + cost_usd
        WHERE tenant_id = $1 AND key = $2 AND expires_at > now() RETURNING answer, model, cost_usd::float8 AS cost`,
      [tenantId, key],
    );
    const r = rows[0];
    return r ? { answer: r.answer, model: r.model, costUsd: r.cost } : undefined;
  }

  async cachePut(tenantId: string, key: string, answer: string, model: string, costUsd: number, ttlSeconds: number): Promise<void> {
    await this.db.query(
      `INSERT INTO cost_guard_cache (tenant_id, key, answer, model, cost_usd, expires_at) VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::int))
       ON CONFLICT (tenant_id, key) DO UPDATE SET answer = EXCLUDED.answer, model = EXCLUDED.model, cost_usd = EXCLUDED.cost_usd, expires_at = EXCLUDED.expires_at, created_at = now()`,
      [tenantId, key, answer, model, costUsd, ttlSeconds],
    );
  }

  async cacheStats(tenantId: string): Promise<{ entries: number; hits: number; savedUsd: number }> {
    const { rows } = await this.db.query(
      `SELECT count(*) FILTER (WHERE expires_at > now())::int AS entries, COALESCE(sum(hits), 0)::int AS hits, COALESCE(sum(saved_usd), 0)::float8 AS "savedUsd" FROM cost_guard_cache WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0];
  }

  async purgeCache(): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM cost_guard_cache WHERE expires_at < now() - interval '1 day'`);
    return rowCount ?? 0;
  }
}

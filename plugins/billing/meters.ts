/**
 * Tenant usage billing: the kernel's usage ledger, summed per tenant, meter and closed time bucket,
 * reported to Stripe Billing Meters as one meter event per bucket. A bucket is frozen into
 * `billing_meter_reports` with a stable identifier (`parley-<tenant>-<meter>-<bucket start>`) before
 * it is sent, and sent with that identifier as the idempotency key too: a job retried, run twice or
 * after a crash sends the same event again and Stripe counts it once. Ledger rows that arrive after
 * their bucket was reported are sent as adjustments (`...-adj<n>`), frozen the same way.
 * Reconciliation compares Stripe's meter event summaries with the ledger and alerts on a mismatch.
 */
import type Stripe from 'stripe';
import type { Pool } from 'pg';
import { inTransaction, type AlertApi } from 'parley';
import type { Logger } from 'pino';
import type { BillingMetrics } from './metrics.js';
import { describeError, withRetries, type StripeCallPolicy } from './stripe-api.js';
import type { BillingOptions, MeterConfig } from './types.js';

type UsageOptions = BillingOptions['usage'];

export interface UsageTenant {
  tenantId: string;
  customer: string;
}

export interface ReportResult {
  /** Bucket reports frozen in this run. */
  planned: number;
  /** Adjustments frozen for ledger rows that arrived after their bucket was reported. */
  adjusted: number;
  sent: number;
  failed: number;
  /** Reports marked expired in this run (past Stripe's 35-day window: never billed, never retried). */
  expired: number;
}

interface ExpiredReport {
  tenantId: string;
  meter: string;
  identifier: string;
  bucketStart: Date;
  value: number;
}

/** Stripe accepts meter events timestamped within the past 35 days (and up to 5 minutes ahead). */
const METER_EVENT_WINDOW_MS = 35 * 86_400_000;

/** Stripe's refusal of a timestamp outside the window (`timestamp_too_far_in_past`, on the `timestamp` parameter). */
function tooOld(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: string; param?: string; raw?: { code?: string; param?: string } };
  if (e?.statusCode !== 400) return false;
  const code = e.code ?? e.raw?.code;
  return code === 'timestamp_too_far_in_past' || (e.param ?? e.raw?.param) === 'timestamp';
}

/** A meter's ledger kinds as SQL parameters: exact names, and LIKE patterns for `prefix*`. */
function kindFilter(meter: MeterConfig): { exact: string[]; like: string[] } {
  const exact = meter.kinds.filter((k) => !k.endsWith('*'));
  const like = meter.kinds.filter((k) => k.endsWith('*')).map((k) => `${k.slice(0, -1).replace(/[\\%_]/gu, (c) => `\\${c}`)}%`);
  return { exact, like };
}

export class MeterReporter {
  private readonly meterIds = new Map<string, string>();

  constructor(
    private readonly deps: {
      db: Pool;
      stripe: Stripe | null;
      options: UsageOptions;
      policy: StripeCallPolicy;
      tenants: () => UsageTenant[];
      metrics: BillingMetrics;
      alerts: AlertApi;
      log: Logger;
    },
  ) {}

  private get bucketMs(): number {
    return this.deps.options.bucketMinutes * 60_000;
  }

  private floor(ms: number): number {
    return Math.floor(ms / this.bucketMs) * this.bucketMs;
  }

  /** Ledger totals per bucket of `[from, to)` for one tenant and meter, rounded to whole units per bucket. */
  async buckets(tenantId: string, meter: MeterConfig, from: Date, to: Date): Promise<{ bucketStart: Date; value: number }[]> {
    const { exact, like } = kindFilter(meter);
    const seconds = this.deps.options.bucketMinutes * 60;
    const { rows } = await this.deps.db.query<{ bucket: Date; quantity: string; events: number }>(
      `SELECT to_timestamp(floor(extract(epoch FROM at) / $5) * $5) AS bucket, sum(quantity)::text AS quantity, count(*)::int AS events
         FROM parley_usage
        WHERE tenant_id = $1 AND at >= $2 AND at < $3 AND (kind = ANY($4::text[]) OR kind LIKE ANY($6::text[]))
        GROUP BY 1 ORDER BY 1`,
      [tenantId, from, to, exact, seconds, like],
    );
    return rows.map((r) => ({ bucketStart: new Date(r.bucket), value: Math.round(meter.measure === 'events' ? r.events : Number(r.quantity)) }));
  }

  /** Freezes the closed buckets since the meter's cursor into pending reports. */
  private async plan(t: UsageTenant, meter: MeterConfig, now: Date): Promise<number> {
    const { db, options } = this.deps;
    const closedUntil = new Date(this.floor(now.getTime() - options.graceMinutes * 60_000));
    const cursor = await db.query<{ reported_until: Date }>(`SELECT reported_until FROM billing_meter_cursors WHERE tenant_id = $1 AND meter = $2`, [t.tenantId, meter.eventName]);
    let from = cursor.rows[0]?.reported_until;
    if (!from) {
      const { exact, like } = kindFilter(meter);
      const first = await db.query<{ at: Date | null }>(`SELECT min(at) AS at FROM parley_usage WHERE tenant_id = $1 AND (kind = ANY($2::text[]) OR kind LIKE ANY($3::text[]))`, [t.tenantId, exact, like]);
      if (!first.rows[0]?.at) return 0;
      from = new Date(this.floor(first.rows[0].at.getTime()));
    }
    if (from.getTime() >= closedUntil.getTime()) return 0;
    const buckets = (await this.buckets(t.tenantId, meter, from, closedUntil)).filter((b) => b.value > 0);
    return inTransaction(db, async (client) => {
      const { rowCount } = await client.query(
        `INSERT INTO billing_meter_reports (tenant_id, meter, bucket_start, customer_id, value, identifier)
         SELECT $1, $2, b.start, $3, b.value, $4 || '-' || (extract(epoch FROM b.start)::bigint)::text
           FROM jsonb_to_recordset($5::jsonb) AS b(start timestamptz, value bigint)
         ON CONFLICT DO NOTHING`,
        [t.tenantId, meter.eventName, t.customer, `parley-${t.tenantId}-${meter.eventName}`.slice(0, 80), JSON.stringify(buckets.map((b) => ({ start: b.bucketStart.toISOString(), value: b.value })))],
      );
      await client.query(
        `INSERT INTO billing_meter_cursors (tenant_id, meter, reported_until) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, meter) DO UPDATE SET reported_until = GREATEST(billing_meter_cursors.reported_until, EXCLUDED.reported_until)`,
        [t.tenantId, meter.eventName, closedUntil],
      );
      return rowCount ?? 0;
    });
  }

  /**
   * Ledger rows recorded after their bucket was reported: for each bucket of
   * `[now - reconcileHours, reported until)` whose ledger total is above what was reported for it, the
   * difference is frozen as the bucket's next report (`seq` 1, 2, ...; identifier
   * `<bucket identifier>-adj<seq>`). A concurrent run computing the same `seq` inserts nothing, so an
   * adjustment is made once; a decrease is not sent (Stripe meter events only add) and stays a
   * reconciliation mismatch.
   */
  private async adjust(t: UsageTenant, meter: MeterConfig, now: Date): Promise<number> {
    const { db, options } = this.deps;
    const cursor = await db.query<{ reported_until: Date }>(`SELECT reported_until FROM billing_meter_cursors WHERE tenant_id = $1 AND meter = $2`, [t.tenantId, meter.eventName]);
    const to = cursor.rows[0]?.reported_until;
    const from = new Date(this.floor(now.getTime() - options.reconcileHours * 3_600_000));
    if (!to || to.getTime() <= from.getTime()) return 0;
    const ledger = await this.buckets(t.tenantId, meter, from, to);
    if (!ledger.length) return 0;
    const { rows } = await db.query<{ bucket_start: Date; value: string; seq: number }>(
      `SELECT bucket_start, sum(value)::text AS value, max(seq)::int AS seq FROM billing_meter_reports
        WHERE tenant_id = $1 AND meter = $2 AND bucket_start >= $3 AND bucket_start < $4 GROUP BY bucket_start`,
      [t.tenantId, meter.eventName, from, to],
    );
    const reported = new Map(rows.map((r) => [r.bucket_start.getTime(), { value: Number(r.value), seq: r.seq }]));
    const late = ledger.flatMap((b) => {
      const r = reported.get(b.bucketStart.getTime());
      const missing = b.value - (r?.value ?? 0);
      return missing > 0 ? [{ start: b.bucketStart.toISOString(), value: missing, seq: r ? r.seq + 1 : 0 }] : [];
    });
    if (!late.length) return 0;
    const { rowCount } = await db.query(
      `INSERT INTO billing_meter_reports (tenant_id, meter, bucket_start, seq, customer_id, value, identifier)
       SELECT $1, $2, b.start, b.seq, $3, b.value, $4 || '-' || (extract(epoch FROM b.start)::bigint)::text || CASE WHEN b.seq = 0 THEN '' ELSE '-adj' || b.seq END
         FROM jsonb_to_recordset($5::jsonb) AS b(start timestamptz, value bigint, seq int)
       ON CONFLICT DO NOTHING`,
      [t.tenantId, meter.eventName, t.customer, `parley-${t.tenantId}-${meter.eventName}`.slice(0, 80), JSON.stringify(late)],
    );
    if (rowCount) this.deps.log.info({ tenant: t.tenantId, meter: meter.eventName, adjustments: rowCount }, 'billing: usage recorded after its bucket was reported is reported as an adjustment');
    return rowCount ?? 0;
  }

  /** Sends pending reports (oldest first, at most `batchSize`); a failed one stays pending for the next run. */
  private async send(now: Date): Promise<{ sent: number; failed: number; expired: ExpiredReport[] }> {
    const { db, options, stripe, metrics } = this.deps;
    const oldest = now.getTime() - METER_EVENT_WINDOW_MS;
    const { rows } = await db.query<{ tenant_id: string; meter: string; bucket_start: Date; customer_id: string; value: string; identifier: string }>(
      `SELECT tenant_id, meter, bucket_start, customer_id, value::text, identifier FROM billing_meter_reports WHERE status = 'pending' ORDER BY bucket_start, tenant_id, meter, seq LIMIT $1`,
      [options.batchSize],
    );
    let sent = 0;
    let failed = 0;
    const expired: ExpiredReport[] = [];
    const expire = async (row: (typeof rows)[number], reason: string) => {
      const { rowCount } = await db.query(`UPDATE billing_meter_reports SET status = 'expired', attempts = attempts + 1, last_error = $2 WHERE identifier = $1 AND status = 'pending'`, [row.identifier, reason]);
      if (!rowCount) return;
      metrics.meterEvents.inc({ tenant: row.tenant_id, meter: row.meter, result: 'expired' });
      expired.push({ tenantId: row.tenant_id, meter: row.meter, identifier: row.identifier, bucketStart: row.bucket_start, value: Number(row.value) });
      this.deps.log.warn({ tenant: row.tenant_id, meter: row.meter, identifier: row.identifier, reason }, 'billing: a meter event is past Stripe\'s 35-day window; it is not billed and not retried');
    };
    const queue = [...rows];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const row = r;
        // Stripe refuses an event timestamped more than 35 days ago: asking again would never succeed.
        if (row.bucket_start.getTime() < oldest) {
          await expire(row, 'older than 35 days when sent');
          continue;
        }
        try {
          const result = await withRetries(this.deps.policy, row.identifier, (key) =>
            stripe!.billing.meterEvents.create(
              { event_name: row.meter, identifier: row.identifier, timestamp: Math.floor(row.bucket_start.getTime() / 1000), payload: { stripe_customer_id: row.customer_id, value: row.value } },
              { idempotencyKey: key! },
            ),
            () => metrics.stripeRetries.inc({ call: 'billing.meter_events.create' }),
          ).catch((error: unknown) => {
            if (tooOld(error)) return 'too-old' as const;
            // Stripe refuses an identifier it already has: that event was counted.
            if ((error as { statusCode?: number }).statusCode === 400 && /identifier/i.test(String((error as Error).message))) return null;
            throw error;
          });
          if (result === 'too-old') {
            await expire(row, 'refused by Stripe: timestamp older than 35 days');
            continue;
          }
          await db.query(`UPDATE billing_meter_reports SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE identifier = $1`, [row.identifier]);
          metrics.meterEvents.inc({ tenant: row.tenant_id, meter: row.meter, result: 'sent' });
          sent++;
        } catch (error) {
          failed++;
          metrics.meterEvents.inc({ tenant: row.tenant_id, meter: row.meter, result: 'failed' });
          await db.query(`UPDATE billing_meter_reports SET attempts = attempts + 1, last_error = $2 WHERE identifier = $1`, [row.identifier, describeError(error)]);
          this.deps.log.warn({ tenant: row.tenant_id, meter: row.meter, identifier: row.identifier, error: describeError(error) }, 'billing: a meter event could not be sent; it is sent again on the next run');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, rows.length) }, worker));
    return { sent, failed, expired };
  }

  /** One reporting run: plan every closed bucket and every late difference, then send what is pending. Throws when a send failed, so the job is retried. */
  async report(now = new Date()): Promise<ReportResult> {
    if (!this.deps.stripe) return { planned: 0, adjusted: 0, sent: 0, failed: 0, expired: 0 };
    let planned = 0;
    let adjusted = 0;
    for (const t of this.deps.tenants()) {
      for (const meter of this.deps.options.meters) {
        adjusted += await this.adjust(t, meter, now);
        planned += await this.plan(t, meter, now);
      }
    }
    const { sent, failed, expired } = await this.send(now);
    this.alertExpired(expired);
    if (failed) {
      this.deps.alerts.raise({ key: 'billing.meter-events', severity: 'warning', summary: `${failed} meter event(s) could not be sent to Stripe; they are sent again on the next run`, details: { failed, sent } });
      throw new Error(`billing: ${failed} meter event(s) could not be sent to Stripe (${sent} sent); retried on the next attempt`);
    }
    this.deps.alerts.resolve('billing.meter-events');
    return { planned, adjusted, sent, failed, expired: expired.length };
  }

  /**
   * One warning per tenant and meter whose reports expired in this run, with what was lost. Expiry is a
   * one-way change of the report, so a report is alerted on once; the alert stays open (the usage was
   * never billed: charge it by hand or write it off).
   */
  private alertExpired(expired: ExpiredReport[]): void {
    const groups = new Map<string, ExpiredReport[]>();
    for (const r of expired) groups.set(`${r.tenantId}\u0000${r.meter}`, [...(groups.get(`${r.tenantId}\u0000${r.meter}`) ?? []), r]);
    for (const reports of groups.values()) {
      const { tenantId, meter } = reports[0]!;
      const value = reports.reduce((sum, r) => sum + r.value, 0);
      this.deps.alerts.raise({
        key: `billing.meter-expired.${meter}`,
        tenantId,
        severity: 'warning',
        summary: `${reports.length} usage report(s) of meter "${meter}" for tenant "${tenantId}" (${value} in all) are older than Stripe's 35-day window and were never billed; they will not be retried`,
        details: { value, identifiers: reports.map((r) => r.identifier).slice(0, 20), buckets: reports.map((r) => r.bucketStart.toISOString()).slice(0, 20) },
      });
    }
  }

  private async meterId(meter: MeterConfig): Promise<string | null> {
    if (meter.meterId) return meter.meterId;
    const known = this.meterIds.get(meter.eventName);
    if (known) return known;
    for await (const m of this.deps.stripe!.billing.meters.list({ limit: 100 })) {
      this.meterIds.set(m.event_name, m.id);
    }
    return this.meterIds.get(meter.eventName) ?? null;
  }

  /**
   * Compares, per tenant and meter, Stripe's summary of `[now - reconcileHours, reported until)` with
   * the ledger of the same window; a difference raises `billing.meter-mismatch.<meter>` for the tenant
   * (resolved once they agree). Windows with reports still pending are left for the next run.
   */
  async reconcile(now = new Date()): Promise<{ tenantId: string; meter: string; result: 'match' | 'mismatch' | 'pending' | 'no-meter'; ledger?: number; stripe?: number }[]> {
    const { db, options, stripe, metrics, alerts } = this.deps;
    if (!stripe) return [];
    const results: Awaited<ReturnType<MeterReporter['reconcile']>> = [];
    for (const t of this.deps.tenants()) {
      for (const meter of options.meters) {
        const cursor = await db.query<{ reported_until: Date }>(`SELECT reported_until FROM billing_meter_cursors WHERE tenant_id = $1 AND meter = $2`, [t.tenantId, meter.eventName]);
        const to = cursor.rows[0]?.reported_until;
        const from = new Date(this.floor(now.getTime() - options.reconcileHours * 3_600_000));
        if (!to || to.getTime() <= from.getTime()) continue;
        const pending = await db.query(`SELECT 1 FROM billing_meter_reports WHERE tenant_id = $1 AND meter = $2 AND status = 'pending' AND bucket_start >= $3 AND bucket_start < $4 LIMIT 1`, [t.tenantId, meter.eventName, from, to]);
        if (pending.rowCount) {
          metrics.reconciliations.inc({ tenant: t.tenantId, meter: meter.eventName, result: 'pending' });
          results.push({ tenantId: t.tenantId, meter: meter.eventName, result: 'pending' });
          continue;
        }
        const id = await withRetries(this.deps.policy, undefined, () => this.meterId(meter));
        if (!id) {
          alerts.raise({ key: `billing.meter-missing.${meter.eventName}`, severity: 'warning', summary: `Stripe has no meter with event name "${meter.eventName}": usage cannot be reconciled (or billed)` });
          results.push({ tenantId: t.tenantId, meter: meter.eventName, result: 'no-meter' });
          continue;
        }
        const ledger = (await this.buckets(t.tenantId, meter, from, to)).reduce((sum, b) => sum + b.value, 0);
        let reported = 0;
        const summaries = await withRetries(this.deps.policy, undefined, async () => {
          const all: Stripe.Billing.MeterEventSummary[] = [];
          for await (const s of stripe.billing.meters.listEventSummaries(id, { customer: t.customer, start_time: Math.floor(from.getTime() / 1000), end_time: Math.floor(to.getTime() / 1000), limit: 100 })) all.push(s);
          return all;
        });
        for (const s of summaries) reported += s.aggregated_value;
        const key = `billing.meter-mismatch.${meter.eventName}`;
        if (Math.abs(reported - ledger) > 1e-9) {
          metrics.reconciliations.inc({ tenant: t.tenantId, meter: meter.eventName, result: 'mismatch' });
          alerts.raise({ key, tenantId: t.tenantId, severity: 'warning', summary: `Stripe meter "${meter.eventName}" has ${reported} for tenant "${t.tenantId}" where the usage ledger has ${ledger}`, details: { from: from.toISOString(), to: to.toISOString(), ledger, stripe: reported } });
          results.push({ tenantId: t.tenantId, meter: meter.eventName, result: 'mismatch', ledger, stripe: reported });
        } else {
          metrics.reconciliations.inc({ tenant: t.tenantId, meter: meter.eventName, result: 'match' });
          alerts.resolve(key, t.tenantId);
          results.push({ tenantId: t.tenantId, meter: meter.eventName, result: 'match', ledger, stripe: reported });
        }
      }
    }
    return results;
  }
}

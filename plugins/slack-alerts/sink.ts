/**
 * The Slack sink. Each alert (tenant + key) is a row holding what Slack should show; delivering an
 * alert event updates the row, then brings Slack in line: the first firing posts a message, later
 * changes (resolved, acknowledged, severity) edit that same message, and a firing within the quiet
 * period of the last post re-opens the old message instead of posting again. A row whose Slack
 * update failed stays unsynced and is retried on the next tick, on whichever instance gets to it.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { webApi } from '@slack/bolt';
import type { AlertEvent, Migration } from 'parley';
import { renderAlert, type AlertRecord, type RenderOptions } from './blocks.js';
import { severityRank, type Severity } from './types.js';

export const migrations: Migration[] = [
  {
    id: '001_slack_alerts',
    sql: `
CREATE TABLE slack_alerts (
  id text PRIMARY KEY,
  tenant_id text,
  key text NOT NULL,
  source text NOT NULL,
  severity text NOT NULL,
  state text NOT NULL,
  summary text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}',
  first_at timestamptz NOT NULL,
  last_fired_at timestamptz NOT NULL,
  resolved_at timestamptz,
  occurrences int NOT NULL DEFAULT 1,
  reopened boolean NOT NULL DEFAULT false,
  channel text,
  ts text,
  posted_severity text,
  last_posted_at timestamptz,
  acked_by text,
  acked_by_name text,
  acked_at timestamptz,
  revision int NOT NULL DEFAULT 1,
  synced_revision int NOT NULL DEFAULT 0,
  sync_owner text,
  sync_until timestamptz,
  last_error text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_alerts_tenant ON slack_alerts (tenant_id, key);
CREATE INDEX slack_alerts_unsynced ON slack_alerts (updated_at) WHERE revision > synced_revision;

CREATE TABLE slack_alert_acks (
  id bigserial PRIMARY KEY,
  alert_id text NOT NULL REFERENCES slack_alerts (id) ON DELETE CASCADE,
  tenant_id text,
  user_id text NOT NULL,
  user_name text,
  channel text,
  ts text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_alert_acks_alert ON slack_alert_acks (alert_id, at);
`,
  },
];

interface AlertRow {
  id: string;
  tenant_id: string | null;
  key: string;
  source: string;
  severity: Severity;
  state: 'firing' | 'resolved';
  summary: string;
  details: Record<string, unknown>;
  first_at: Date;
  last_fired_at: Date;
  resolved_at: Date | null;
  occurrences: number;
  reopened: boolean;
  channel: string | null;
  ts: string | null;
  posted_severity: Severity | null;
  acked_by: string | null;
  acked_at: Date | null;
  revision: number;
  quiet_elapsed: boolean;
}

/** The id an alert has in the table and in the Acknowledge button's value. */
export function alertRecordId(key: string, tenantId: string | undefined | null): string {
  return `${tenantId ?? '*'}/${key}`;
}

function toRecord(row: AlertRow): AlertRecord {
  return {
    id: row.id,
    key: row.key,
    tenantId: row.tenant_id,
    source: row.source,
    severity: row.severity,
    state: row.state,
    summary: row.summary,
    details: row.details,
    firstAt: row.first_at,
    lastFiredAt: row.last_fired_at,
    resolvedAt: row.resolved_at,
    occurrences: row.occurrences,
    ackedBy: row.acked_by,
    ackedAt: row.acked_at,
  };
}

export interface SlackSinkDeps {
  db: Pool;
  web: webApi.WebClient;
  log: Logger;
  instanceId: string;
  minSeverity: Severity;
  channelFor(tenantId: string | null): string;
  quietPeriodFor(key: string): number;
  renderOptionsFor(tenantId: string | null): RenderOptions;
  /** Counts what happened, for metrics. */
  observe(event: 'posted' | 'updated' | 'escalated' | 'reminded' | 'suppressed' | 'failed'): void;
}

export class SlackAlertSink {
  readonly name = 'slack';

  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly deps: SlackSinkDeps) {}

  /**
   * The AlertSink entry point: record the change, then bring Slack in line. Events for one alert are
   * handled one after the other in the order the hub dispatched them (a resolve racing a re-fire
   * must not be applied out of order).
   */
  deliver(event: AlertEvent): Promise<void> {
    if (event.state === 'firing' && severityRank[event.severity] < severityRank[this.deps.minSeverity]) return Promise.resolve();
    const id = alertRecordId(event.key, event.tenantId);
    return this.serial(id, async () => {
      if (await this.record(id, event)) await this.syncNow(id);
    });
  }

  private async record(id: string, event: AlertEvent): Promise<boolean> {
    if (event.state === 'firing') {
      await this.deps.db.query(
        `INSERT INTO slack_alerts (id, tenant_id, key, source, severity, state, summary, details, first_at, last_fired_at)
         VALUES ($1, $2, $3, $4, $5, 'firing', $6, $7::jsonb, $8, $9)
         ON CONFLICT (id) DO UPDATE SET
           source = EXCLUDED.source, severity = EXCLUDED.severity, summary = EXCLUDED.summary, details = EXCLUDED.details,
           last_fired_at = EXCLUDED.last_fired_at,
           first_at = CASE WHEN slack_alerts.state = 'resolved' THEN EXCLUDED.first_at ELSE slack_alerts.first_at END,
           occurrences = slack_alerts.occurrences + CASE WHEN slack_alerts.state = 'resolved' THEN 1 ELSE 0 END,
           reopened = slack_alerts.reopened OR slack_alerts.state = 'resolved',
           acked_by = CASE WHEN slack_alerts.state = 'resolved' THEN NULL ELSE slack_alerts.acked_by END,
           acked_by_name = CASE WHEN slack_alerts.state = 'resolved' THEN NULL ELSE slack_alerts.acked_by_name END,
           acked_at = CASE WHEN slack_alerts.state = 'resolved' THEN NULL ELSE slack_alerts.acked_at END,
           state = 'firing', resolved_at = NULL,
           revision = slack_alerts.revision + 1, updated_at = now()`,
        [id, event.tenantId ?? null, event.key, event.source, event.severity, event.summary, JSON.stringify(event.details ?? {}), event.firstAt, event.at],
      );
      return true;
    }
    const { rowCount } = await this.deps.db.query(
      `UPDATE slack_alerts SET state = 'resolved', resolved_at = $2, revision = revision + 1, updated_at = now() WHERE id = $1 AND state = 'firing'`,
      [id, event.at],
    );
    return (rowCount ?? 0) > 0;
  }

  /**
   * Records an acknowledgement from Slack and shows it on the message. Returns false when the alert
   * is unknown. A second click is recorded too, but the message keeps the first name.
   */
  async acknowledge(input: { alertId: string; userId: string; userName?: string; channel?: string; ts?: string }): Promise<boolean> {
    const { rows } = await this.deps.db.query<{ tenant_id: string | null }>(
      `WITH upd AS (
         UPDATE slack_alerts SET acked_by = $2, acked_by_name = $3, acked_at = now(), revision = revision + 1, updated_at = now()
         WHERE id = $1 AND acked_by IS NULL AND state = 'firing' RETURNING id
       )
       INSERT INTO slack_alert_acks (alert_id, tenant_id, user_id, user_name, channel, ts)
       SELECT id, tenant_id, $2, $3, $4, $5 FROM slack_alerts WHERE id = $1
       RETURNING tenant_id`,
      [input.alertId, input.userId, input.userName ?? null, input.channel ?? null, input.ts ?? null],
    );
    if (!rows[0]) return false;
    this.deps.log.info({ alert: input.alertId, tenant: rows[0].tenant_id, by: input.userId }, 'alert acknowledged in Slack');
    return true;
  }

  /** Retries rows whose Slack message is behind (a failed post or update, a crash mid-sync). */
  async reconcile(limit = 20): Promise<number> {
    const { rows } = await this.deps.db.query<{ id: string }>(
      `SELECT id FROM slack_alerts WHERE revision > synced_revision AND (sync_until IS NULL OR sync_until < now()) ORDER BY updated_at LIMIT $1`,
      [limit],
    );
    let synced = 0;
    for (const { id } of rows) {
      try {
        await this.sync(id);
        synced++;
      } catch (error) {
        this.deps.log.warn({ err: error, alert: id }, 'Slack alert still not delivered; will retry');
      }
    }
    return synced;
  }

  /** Posts a reminder in the thread of each alert still firing that nobody acknowledged; returns how many. */
  async remindUnacknowledged(): Promise<number> {
    const { rows } = await this.deps.db.query<{ id: string; tenant_id: string | null; summary: string; channel: string; ts: string }>(
      `SELECT a.id, a.tenant_id, a.summary, a.channel, a.ts FROM slack_alerts a
        WHERE a.state = 'firing' AND a.channel IS NOT NULL AND a.ts IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM slack_alert_acks k WHERE k.alert_id = a.id)
        ORDER BY a.first_at LIMIT 50`,
    );
    for (const row of rows) {
      const text = `${this.deps.renderOptionsFor(row.tenant_id).mention ?? ''} Still firing and not acknowledged: ${row.summary}`.trim();
      await this.deps.web.chat.postMessage({ channel: row.channel, thread_ts: row.ts, reply_broadcast: true, text });
      this.deps.observe('reminded');
    }
    return rows.length;
  }

  /** Counts for the health check: rows Slack has not caught up with, and the last error. */
  async backlog(): Promise<{ unsynced: number; lastError: string | null }> {
    const { rows } = await this.deps.db.query<{ n: number; last_error: string | null }>(
      `SELECT count(*)::int AS n, max(last_error) AS last_error FROM slack_alerts WHERE revision > synced_revision AND updated_at < now() - interval '1 minute'`,
    );
    return { unsynced: rows[0]?.n ?? 0, lastError: rows[0]?.last_error ?? null };
  }

  /**
   * Brings one alert's Slack message in line with its row. Work on one alert runs one call after the
   * other in this process, and a lease on the row keeps other instances out meanwhile.
   */
  sync(id: string): Promise<void> {
    return this.serial(id, () => this.syncNow(id));
  }

  private serial(id: string, work: () => Promise<void>): Promise<void> {
    const previous = this.chains.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.chains.set(id, next);
    void next
      .finally(() => {
        if (this.chains.get(id) === next) this.chains.delete(id);
      })
      .catch(() => undefined);
    return next;
  }

  /** Waits for syncs in flight (shutdown, tests). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }

  private async syncNow(id: string): Promise<void> {
    for (let round = 0; round < 3; round++) {
      const row = await this.claim(id);
      if (!row) return;
      try {
        await this.push(row);
      } catch (error) {
        this.deps.observe('failed');
        await this.deps.db.query(`UPDATE slack_alerts SET sync_owner = NULL, sync_until = NULL, last_error = $2 WHERE id = $1`, [id, describeSlackError(error)]);
        throw error;
      }
    }
  }

  private async claim(id: string): Promise<AlertRow | undefined> {
    const { rows } = await this.deps.db.query<AlertRow>(
      `UPDATE slack_alerts SET sync_owner = $2, sync_until = now() + interval '2 minutes'
       WHERE id = $1 AND revision > synced_revision AND (sync_until IS NULL OR sync_until < now())
       RETURNING *, (last_posted_at IS NULL OR last_posted_at <= now() - $3 * interval '1 millisecond') AS quiet_elapsed`,
      [id, this.deps.instanceId, this.deps.quietPeriodFor(id.slice(id.indexOf('/') + 1))],
    );
    return rows[0];
  }

  private async push(row: AlertRow): Promise<void> {
    const { web } = this.deps;
    const record = toRecord(row);
    const postNew = row.state === 'firing' && (!row.ts || (row.reopened && row.quiet_elapsed));
    if (row.reopened && !postNew && row.ts) this.deps.observe('suppressed');
    let channel = row.channel;
    let ts = row.ts;
    let occurrences = row.occurrences;
    let posted = false;

    if (postNew) {
      ({ channel, ts } = await this.post({ ...record, occurrences: 1 }));
      occurrences = 1;
      posted = true;
    } else if (ts && channel) {
      const message = renderAlert(record, this.deps.renderOptionsFor(row.tenant_id));
      try {
        await web.chat.update({ channel, ts, text: message.text, blocks: message.blocks as never });
        this.deps.observe('updated');
      } catch (error) {
        if (!isGone(error) || row.state !== 'firing') throw error;
        // The message was deleted or the channel archived: post the alert again.
        ({ channel, ts } = await this.post(record));
        posted = true;
      }
      if (!posted && row.state === 'firing' && row.posted_severity && severityRank[row.severity] > severityRank[row.posted_severity]) {
        // Edits do not notify anyone: an escalation is announced in the thread, to the channel too.
        const text = `${this.deps.renderOptionsFor(row.tenant_id).mention ?? ''} Escalated to *${row.severity}*: ${row.summary}`.trim();
        await web.chat.postMessage({ channel, thread_ts: ts, reply_broadcast: true, text });
        this.deps.observe('escalated');
      }
    }

    await this.deps.db.query(
      `UPDATE slack_alerts SET synced_revision = GREATEST(synced_revision, $2), sync_owner = NULL, sync_until = NULL, last_error = NULL,
         reopened = false, channel = $3, ts = $4,
         posted_severity = CASE WHEN state = 'firing' THEN $5 ELSE posted_severity END,
         last_posted_at = CASE WHEN $6 THEN now() ELSE last_posted_at END,
         occurrences = occurrences - $7 + $8
       WHERE id = $1`,
      [row.id, row.revision, channel, ts, row.severity, posted, row.occurrences, occurrences],
    );
  }

  private async post(record: AlertRecord): Promise<{ channel: string; ts: string }> {
    const channel = this.deps.channelFor(record.tenantId);
    const message = renderAlert(record, this.deps.renderOptionsFor(record.tenantId));
    const result = await this.deps.web.chat.postMessage({ channel, text: message.text, blocks: message.blocks as never, unfurl_links: false, unfurl_media: false });
    if (!result.ts) throw new Error('Slack accepted the alert but returned no message ts');
    this.deps.observe('posted');
    return { channel: result.channel ?? channel, ts: result.ts };
  }
}

function slackErrorCode(error: unknown): string | undefined {
  const data = (error as { data?: { error?: unknown } } | undefined)?.data;
  return typeof data?.error === 'string' ? data.error : undefined;
}

function isGone(error: unknown): boolean {
  const code = slackErrorCode(error);
  return code === 'message_not_found' || code === 'channel_not_found' || code === 'is_archived';
}

function describeSlackError(error: unknown): string {
  return slackErrorCode(error) ?? (error instanceof Error ? error.message : String(error));
}

/**
 * The reminders service: reminders of one person, scheduled deliveries to a tenant's audience, and
 * the tick that sends what is due. Everything is a function of an explicit `now`: the real trigger is a
 * frequent `ctx.schedule` calling `tick(new Date())`; tests call `tick` with chosen times.
 *
 * Exactly once: every send goes through `enqueueOutbound` with the occurrence as its idempotency key
 * (`reminder:<id>:<planned time>`, `delivery:<run id>:<contact id>`), before the row that says it was
 * sent is written and before the reminder or schedule moves on (a conditional update). Two instances
 * ticking at once, or a tick repeated after a crash between the two writes, find the same outbox item.
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { ParleyError, fromMicros, hashAddress, microsOf, type GatewayServices, type TenantInfo } from 'parley';
import type { SendBudget } from './budget-api.js';
import type { Contact, ContactsDirectory } from './contacts-api.js';
import type { RemindersMetrics } from './metrics.js';
import { langOf, reminderText, type Lang } from './parse.js';
import { afterQuietHours, checkCron, checkRrule, formatWall, nextCron, nextOccurrence, parseWall, type Wall } from './time.js';
import type { Audience, RemindersSettings } from './types.js';

export const PREVIEW_NOTE = 'This is a preview. No actual delivery will be made.';

export interface Reminder {
  id: string;
  tenantId: string;
  contactId: string;
  shortId: number;
  channel: string;
  task: string;
  message: string;
  timezone: string;
  onceAt: Date | null;
  rrule: string | null;
  startLocal: string | null;
  allowQuietHours: boolean;
  source: string;
  status: 'active' | 'done' | 'cancelled';
  nextAt: Date | null;
  dueAt: Date | null;
  createdAt: Date;
}

export interface Schedule {
  id: string;
  tenantId: string;
  name: string;
  cron: string | null;
  timezone: string;
  runAt: Date | null;
  audience: Audience;
  template: string;
  channel: string;
  maxMessages: number;
  active: boolean;
  /** Recipients whose local time is in the tenant's quiet hours wait for their end (default true). */
  respectQuietHours: boolean;
  nextRun: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

type ReminderRow = { id: string; tenant_id: string; contact_id: string; short_id: number; channel: string; address: string; task: string; message: string; timezone: string; once_at: Date | null; rrule: string | null; start_local: string | null; allow_quiet: boolean; source: string; status: Reminder['status']; next_at: Date | null; due_at: Date | null; created_at: Date };
type ScheduleRow = { id: string; tenant_id: string; name: string; cron: string | null; timezone: string; run_at: Date | null; audience: Audience; template: string; channel: string; max_messages: number; active: boolean; respect_quiet: boolean; next_run_at: Date | null; created_at: Date; updated_at: Date };
type RunRow = { id: string; tenant_id: string; schedule_id: string; run_key: string; occurrence_at: Date; trigger: string; status: string; recipients: number; error: string | null; created_at: Date; finished_at: Date | null };

const toReminder = (r: ReminderRow): Reminder => ({
  id: r.id,
  tenantId: r.tenant_id,
  contactId: r.contact_id,
  shortId: r.short_id,
  channel: r.channel,
  task: r.task,
  message: r.message,
  timezone: r.timezone,
  onceAt: r.once_at,
  rrule: r.rrule,
  startLocal: r.start_local,
  allowQuietHours: r.allow_quiet,
  source: r.source,
  status: r.status,
  nextAt: r.next_at,
  dueAt: r.due_at,
  createdAt: r.created_at,
});
const toSchedule = (r: ScheduleRow): Schedule => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  cron: r.cron,
  timezone: r.timezone,
  runAt: r.run_at,
  audience: r.audience,
  template: r.template,
  channel: r.channel,
  maxMessages: r.max_messages,
  active: r.active,
  respectQuietHours: r.respect_quiet,
  nextRun: r.next_run_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface NewReminder {
  task: string;
  lang: Lang;
  /** One-off: when. */
  once?: Date;
  /** Recurring: the rule (FREQ=...;...) and its first local wall time. */
  rrule?: string;
  start?: Wall;
  timezone: string;
  allowQuietHours: boolean;
  source: 'conversation' | 'api';
  /** The text sent; default "Reminder: <task>". */
  message?: string;
  channel: string;
  address: string;
  /** The inbound message that asked for it: a second run of that message (recovery) finds this reminder instead of making another. */
  sourceMessageId?: string;
}

export interface ScheduleInput {
  name: string;
  cron?: string | null;
  runAt?: Date | null;
  timezone: string;
  audience: Audience;
  template: string;
  channel: string;
  maxMessages: number;
  active: boolean;
  /** Default true: wait out each recipient's quiet hours. */
  respectQuietHours?: boolean;
}

export interface RunRecord {
  id: string;
  scheduleId: string;
  trigger: string;
  status: string;
  occurrenceAt: Date;
  createdAt: Date;
  finishedAt: Date | null;
  error: string | null;
  recipients: number;
  pending: number;
  queued: number;
  sent: number;
  delivered: number;
  failed: number;
  skippedOptOut: number;
  skippedOnce: number;
  /** Not reached: the run stopped when the budget no longer fitted a send (status `budget`). */
  skippedBudget: number;
}

export interface Deps {
  db: Pool;
  log: Logger;
  gateway: GatewayServices;
  contacts: ContactsDirectory;
  metrics: RemindersMetrics;
  settingsFor(tenantId: string): RemindersSettings | undefined;
  tenant(tenantId: string): TenantInfo | undefined;
  /** Contacts read per page of a scheduled delivery's audience (default 500). */
  audiencePageSize?: number;
  /** cost-guard's messaging budget, when a plugin provides it (optional integration). */
  sendBudget?(): SendBudget | undefined;
}

const MIN_GRACE_MS = 2 * 60_000;

/** A place in the contact list: (created_at, id) of the last contact read. */
type Cursor = { createdAt: Date; id: string };
/** A contact of an audience, with its once-per-window key (null: no once rule). */
type Candidate = { contact: Contact; onceKey: string | null };

/** A tenant's channel within one tick: sends queued (the per-minute cap) and the next send slot (throughput). */
interface Pacing {
  queued: number;
  /** Milliseconds between two sends; 0: not spaced. */
  gapMs: number;
  /** Epoch milliseconds of the next free slot. */
  next: number;
}

export class RemindersService {
  constructor(private readonly deps: Deps) {}

  private settings(tenantId: string): RemindersSettings {
    const s = this.deps.settingsFor(tenantId);
    if (!s) throw new ParleyError('PARLEY_NOT_FOUND', `reminders is not enabled for tenant "${tenantId}"`, 404);
    return s;
  }

  private dueOf(tenantId: string, at: Date, tz: string, allowQuiet: boolean): Date {
    return allowQuiet ? at : afterQuietHours(at, tz, this.settings(tenantId).quietHours);
  }

  // ---- reminders ------------------------------------------------------------------------------

  /** The reminder a message made, if it made one (a re-run of the message answers with it). */
  async reminderFromMessage(tenantId: string, messageId: string): Promise<Reminder | null> {
    const { rows } = await this.deps.db.query<ReminderRow>(`SELECT * FROM reminders WHERE tenant_id = $1 AND source_message_id = $2`, [tenantId, messageId]);
    return rows[0] ? toReminder(rows[0]) : null;
  }

  /**
   * Makes a reminder. With `sourceMessageId`, at most one per message: a second call for the same
   * message (the recovery sweep running it again, two runs racing) returns the first one, unchanged.
   */
  async createReminder(tenantId: string, contact: Contact, r: NewReminder, now: Date): Promise<Reminder> {
    const s = this.settings(tenantId);
    if (r.sourceMessageId) {
      const prior = await this.reminderFromMessage(tenantId, r.sourceMessageId);
      if (prior) return prior;
    }
    const active = await this.listReminders(tenantId, contact.id);
    if (active.length >= s.maxPerContact) throw new ParleyError('PARLEY_BAD_REQUEST', `At most ${s.maxPerContact} active reminders per person`, 409);
    let next: Date | null;
    if (r.rrule) {
      checkRrule(r.rrule);
      next = nextOccurrence(r.rrule, r.start!, r.timezone, new Date(now.getTime() - 1));
      if (!next) throw new ParleyError('PARLEY_BAD_REQUEST', 'The rule has no occurrence after now', 400);
    } else next = r.once!;
    const due = this.dueOf(tenantId, next, r.timezone, r.allowQuietHours);
    const message = r.message ?? reminderText(r.task, r.lang);
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await this.deps.db.query<ReminderRow>(
          `INSERT INTO reminders (tenant_id, contact_id, short_id, channel, address, task, message, timezone, once_at, rrule, start_local, allow_quiet, source, next_at, due_at, source_message_id)
           SELECT $1, $2, coalesce(max(short_id), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM reminders WHERE tenant_id = $1 AND contact_id = $2
           ON CONFLICT (tenant_id, source_message_id) WHERE source_message_id IS NOT NULL DO NOTHING
           RETURNING *`,
          [tenantId, contact.id, r.channel, r.address, r.task, message, r.timezone, r.once ?? null, r.rrule ?? null, r.start ? formatWall(r.start) : null, r.allowQuietHours, r.source, next, due, r.sourceMessageId ?? null],
        );
        if (!rows[0]) {
          // Another run of the same message made it between our look and our insert.
          const prior = await this.reminderFromMessage(tenantId, r.sourceMessageId!);
          if (prior) return prior;
          throw new ParleyError('PARLEY_INTERNAL', 'reminders: a reminder insert returned nothing', 500);
        }
        this.deps.metrics.created.inc({ tenant: tenantId, source: r.source, kind: r.rrule ? 'recurring' : 'once' });
        return toReminder(rows[0]!);
      } catch (error) {
        if ((error as { code?: string }).code !== '23505' || attempt >= 3) throw error;
      }
    }
  }

  async getReminder(tenantId: string, id: string): Promise<Reminder | null> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
    const { rows } = await this.deps.db.query<ReminderRow>(`SELECT * FROM reminders WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0] ? toReminder(rows[0]) : null;
  }

  /** By contact and short id; `after` is the (contact id, short id) of the last one of the previous page. */
  async listReminders(tenantId: string, contactId?: string, opts: { all?: boolean; limit?: number; offset?: number; after?: readonly [string, number] | null } = {}): Promise<Reminder[]> {
    const { rows } = await this.deps.db.query<ReminderRow>(
      `SELECT * FROM reminders WHERE tenant_id = $1 AND ($2::uuid IS NULL OR contact_id = $2) AND ($3 OR status = 'active')
          AND ($6::uuid IS NULL OR (contact_id, short_id) > ($6::uuid, $7::int))
        ORDER BY contact_id, short_id LIMIT $4 OFFSET $5`,
      [tenantId, contactId ?? null, opts.all ?? false, opts.limit ?? 1000, opts.offset ?? 0, opts.after?.[0] ?? null, opts.after?.[1] ?? null],
    );
    return rows.map(toReminder);
  }

  /**
   * Cancels a reminder: an active one, or one whose last message is queued and has not gone yet (a
   * one-off is `done` once its message is queued). A message of it still waiting in the outbox is
   * withdrawn (`cancelOutbound`); one the channel already took goes. With `messageId` (a person's
   * "cancel 2"), the cancellation names that message: a second run of it finds the reminder it
   * cancelled and answers the same way.
   */
  async cancelReminder(tenantId: string, where: { id: string } | { contactId: string; shortId: number }, messageId?: string): Promise<Reminder | null> {
    const cancellable = `(status = 'active' OR status = 'done' AND EXISTS (SELECT 1 FROM reminder_occurrences o JOIN parley_outbox x ON x.id = o.outbox_id AND x.tenant_id = o.tenant_id
       WHERE o.reminder_id = reminders.id AND o.status = 'queued' AND x.status IN ('pending', 'retrying')))`;
    const { rows } =
      'id' in where
        ? await this.deps.db.query<ReminderRow>(`UPDATE reminders SET status = 'cancelled', cancel_message_id = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND ${cancellable} RETURNING *`, [tenantId, where.id, messageId ?? null])
        : await this.deps.db.query<ReminderRow>(`UPDATE reminders SET status = 'cancelled', cancel_message_id = $4, updated_at = now() WHERE tenant_id = $1 AND contact_id = $2 AND short_id = $3 AND ${cancellable} RETURNING *`, [tenantId, where.contactId, where.shortId, messageId ?? null]);
    if (rows[0]) {
      this.deps.metrics.cancelled.inc({ tenant: tenantId });
      await this.withdrawQueued(tenantId, [rows[0].id]);
      return toReminder(rows[0]);
    }
    if (!messageId || 'id' in where) return null;
    const again = await this.deps.db.query<ReminderRow>(`SELECT * FROM reminders WHERE tenant_id = $1 AND contact_id = $2 AND short_id = $3 AND cancel_message_id = $4`, [tenantId, where.contactId, where.shortId, messageId]);
    return again.rows[0] ? toReminder(again.rows[0]) : null;
  }

  /** Cancels every active reminder of a person (withdrawing their messages not gone yet); with `messageId`, a second run of the message counts the ones it cancelled the first time. */
  async cancelAll(tenantId: string, contactId: string, messageId?: string): Promise<number> {
    const { rows: cancelled } = await this.deps.db.query<{ id: string }>(`UPDATE reminders SET status = 'cancelled', cancel_message_id = $3, updated_at = now() WHERE tenant_id = $1 AND contact_id = $2 AND status = 'active' RETURNING id`, [tenantId, contactId, messageId ?? null]);
    if (cancelled.length) {
      this.deps.metrics.cancelled.inc({ tenant: tenantId }, cancelled.length);
      await this.withdrawQueued(tenantId, cancelled.map((r) => r.id));
    }
    if (!messageId) return cancelled.length;
    const { rows } = await this.deps.db.query<{ n: string }>(`SELECT count(*) AS n FROM reminders WHERE tenant_id = $1 AND contact_id = $2 AND cancel_message_id = $3`, [tenantId, contactId, messageId]);
    return Number(rows[0]!.n);
  }

  /**
   * Withdraws the queued messages of cancelled reminders that have not gone yet. The tick checks the
   * other way round (after queueing, it re-reads the reminder), so a cancel that lands between the
   * tick's claim and its outbox write is caught by one of the two.
   */
  private async withdrawQueued(tenantId: string, reminderIds: string[]): Promise<number> {
    const { rows } = await this.deps.db.query<{ outbox_id: string }>(
      `SELECT o.outbox_id FROM reminder_occurrences o JOIN parley_outbox x ON x.id = o.outbox_id AND x.tenant_id = o.tenant_id
        WHERE o.tenant_id = $1 AND o.reminder_id = ANY($2::uuid[]) AND o.status = 'queued' AND x.status IN ('pending', 'retrying')`,
      [tenantId, reminderIds],
    );
    let withdrawn = 0;
    for (const r of rows) if ((await this.deps.gateway.cancelOutbound(tenantId, r.outbox_id, 'the reminder was cancelled')).changed) withdrawn++;
    if (withdrawn) this.deps.metrics.withdrawn.inc({ tenant: tenantId }, withdrawn);
    return withdrawn;
  }

  /**
   * A merged contact's reminders move to the contact it was merged into, numbered after that contact's
   * own (#1, #2 stay; the moved ones become #3, #4 ...). Each keeps the address it goes to. Past
   * scheduled-delivery rows keep the old id (they are a record of that run).
   */
  async moveReminders(tenantId: string, from: string, into: string): Promise<number> {
    const { rowCount } = await this.deps.db.query(
      `UPDATE reminders r SET contact_id = $3, short_id = base.n + moved.n, updated_at = now()
         FROM (SELECT id, row_number() OVER (ORDER BY short_id) AS n FROM reminders WHERE tenant_id = $1 AND contact_id = $2) moved,
              (SELECT coalesce(max(short_id), 0) AS n FROM reminders WHERE tenant_id = $1 AND contact_id = $3) base
        WHERE r.id = moved.id AND r.tenant_id = $1`,
      [tenantId, from, into],
    );
    return rowCount ?? 0;
  }

  async occurrences(tenantId: string, reminderId: string): Promise<{ occurrenceAt: Date; status: string; outboxId: string | null; outboxStatus: string | null }[]> {
    const { rows } = await this.deps.db.query<{ occurrence_at: Date; status: string; outbox_id: string | null; outbox_status: string | null }>(
      `SELECT o.occurrence_at, o.status, o.outbox_id, x.status AS outbox_status FROM reminder_occurrences o LEFT JOIN parley_outbox x ON x.id = o.outbox_id
        WHERE o.tenant_id = $1 AND o.reminder_id = $2 ORDER BY o.occurrence_at`,
      [tenantId, reminderId],
    );
    return rows.map((r) => ({ occurrenceAt: r.occurrence_at, status: r.status, outboxId: r.outbox_id, outboxStatus: r.outbox_status }));
  }

  /** Sends (or records as missed) every reminder occurrence due at `now`. */
  async tickReminders(now: Date): Promise<{ queued: number; missed: number }> {
    const out = { queued: 0, missed: 0 };
    const { rows } = await this.deps.db.query<ReminderRow>(`SELECT * FROM reminders WHERE status = 'active' AND due_at <= $1 ORDER BY due_at LIMIT 1000`, [now]);
    for (const row of rows) {
      if (!this.deps.settingsFor(row.tenant_id)) continue;
      try {
        await this.fire(toReminder(row), row.address, now, out);
      } catch (error) {
        this.deps.metrics.failures.inc({ tenant: row.tenant_id, what: 'reminder' });
        this.deps.log.warn({ tenant: row.tenant_id, reminder: row.id, to: hashAddress(row.address), err: error }, 'reminders: could not queue a reminder; the next tick tries again within the grace window');
      }
    }
    return out;
  }

  private async fire(r: Reminder, address: string, now: Date, out: { queued: number; missed: number }): Promise<void> {
    const s = this.settings(r.tenantId);
    const grace = Math.max(s.missedGraceMinutes * 60_000, MIN_GRACE_MS);
    let occ = r.nextAt;
    let due = r.dueAt;
    for (let i = 0; occ && due && due.getTime() <= now.getTime() && i < 1000; i++) {
      if (now.getTime() - due.getTime() > grace) {
        const { rowCount } = await this.deps.db.query(`INSERT INTO reminder_occurrences (reminder_id, tenant_id, occurrence_at, status) VALUES ($1, $2, $3, 'missed') ON CONFLICT DO NOTHING`, [r.id, r.tenantId, occ]);
        if (rowCount) {
          out.missed++;
          this.deps.metrics.missed.inc({ tenant: r.tenantId });
        }
      } else if (await this.claim(r, occ)) {
        const item = await this.deps.gateway.enqueueOutbound({ tenantId: r.tenantId, channel: r.channel, to: address, text: r.message, idempotencyKey: `reminder:${r.id}:${occ.toISOString()}`, options: { reminder: r.id } });
        const { rowCount } = await this.deps.db.query(
          `UPDATE reminder_occurrences SET status = 'queued', outbox_id = $4, at = now() WHERE reminder_id = $1 AND tenant_id = $2 AND occurrence_at = $3 AND status = 'claimed'`,
          [r.id, r.tenantId, occ, item.id],
        );
        if (rowCount) {
          out.queued++;
          this.deps.metrics.queued.inc({ tenant: r.tenantId });
          if (due.getTime() !== occ.getTime()) this.deps.metrics.deferred.inc({ tenant: r.tenantId });
        }
        // A cancel that committed after the claim: withdraw the message while it has not gone (the
        // cancel itself withdraws what it finds queued; between the two, nothing slips through).
        const live = await this.deps.db.query<{ status: string }>(`SELECT status FROM reminders WHERE tenant_id = $1 AND id = $2`, [r.tenantId, r.id]);
        if (live.rows[0]?.status === 'cancelled') {
          if ((await this.deps.gateway.cancelOutbound(r.tenantId, item.id, 'the reminder was cancelled')).changed) this.deps.metrics.withdrawn.inc({ tenant: r.tenantId });
          return;
        }
      }
      let next = r.rrule ? nextOccurrence(r.rrule, parseWall(r.startLocal!)!, r.timezone, occ) : null;
      let nextDue = next ? this.dueOf(r.tenantId, next, r.timezone, r.allowQuietHours) : null;
      // Occurrences quiet hours push to the moment this one went (an hourly rule at night) are that one send.
      for (let j = 0; next && nextDue && nextDue.getTime() <= due.getTime() && j < 1000; j++) {
        next = nextOccurrence(r.rrule!, parseWall(r.startLocal!)!, r.timezone, next);
        nextDue = next ? this.dueOf(r.tenantId, next, r.timezone, r.allowQuietHours) : null;
      }
      const { rowCount } = await this.deps.db.query(
        `UPDATE reminders SET next_at = $3, due_at = $4, status = CASE WHEN $3::timestamptz IS NULL THEN 'done' ELSE status END, updated_at = now()
          WHERE tenant_id = $1 AND id = $2 AND next_at = $5 AND status = 'active'`,
        [r.tenantId, r.id, next, nextDue, occ],
      );
      if (!rowCount) return; // another tick moved it on, or it was cancelled
      occ = next;
      due = nextDue;
    }
  }

  /**
   * Takes an occurrence for sending, in one statement that holds the reminder's row (FOR SHARE) and
   * requires it still active at this very occurrence. A cancellation that committed first wins: the
   * claim re-reads the row after the lock and finds it cancelled, so nothing is queued. One that comes
   * later waits for the claim; the occurrence it finds taken goes (it was taken before the cancel).
   * A claim left by a crash before the send ('claimed', no outbox item) is taken again by the next
   * tick while the reminder is active; the outbox's idempotency key makes a repeated send the same item.
   */
  private async claim(r: Reminder, occ: Date): Promise<boolean> {
    const { rowCount } = await this.deps.db.query(
      `WITH live AS (SELECT id, tenant_id FROM reminders WHERE tenant_id = $1 AND id = $2 AND status = 'active' AND next_at = $3 FOR SHARE)
       INSERT INTO reminder_occurrences (reminder_id, tenant_id, occurrence_at, status) SELECT id, tenant_id, $3, 'claimed' FROM live
       ON CONFLICT (reminder_id, occurrence_at) DO UPDATE SET at = now() WHERE reminder_occurrences.status = 'claimed'`,
      [r.tenantId, r.id, occ],
    );
    return (rowCount ?? 0) > 0;
  }

  // ---- scheduled deliveries ---------------------------------------------------------------------

  checkSchedule(input: Pick<ScheduleInput, 'cron' | 'runAt' | 'timezone'>): void {
    if (!input.cron && !input.runAt) throw new ParleyError('PARLEY_BAD_REQUEST', 'A schedule needs "schedule" (cron) or "runAt" (one-off)', 400);
    if (input.cron) {
      try {
        checkCron(input.cron, input.timezone);
      } catch (error) {
        throw new ParleyError('PARLEY_BAD_REQUEST', `"${input.cron}" is not a cron pattern: ${(error as Error).message}`, 400);
      }
    }
  }

  private firstRun(input: Pick<ScheduleInput, 'cron' | 'runAt' | 'timezone'>, now: Date): Date | null {
    return input.cron ? nextCron(input.cron, input.timezone, now) : (input.runAt ?? null);
  }

  async createSchedule(tenantId: string, input: ScheduleInput, now: Date): Promise<Schedule> {
    this.settings(tenantId);
    this.checkSchedule(input);
    const { rows } = await this.deps.db.query<ScheduleRow>(
      `INSERT INTO delivery_schedules (tenant_id, name, cron, timezone, run_at, audience, template, channel, max_messages, active, next_run_at, respect_quiet)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12) RETURNING *`,
      [tenantId, input.name, input.cron ?? null, input.timezone, input.runAt ?? null, JSON.stringify(input.audience), input.template, input.channel, input.maxMessages, input.active, this.firstRun(input, now), input.respectQuietHours ?? true],
    );
    return toSchedule(rows[0]!);
  }

  async getSchedule(tenantId: string, id: string): Promise<Schedule | null> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
    const { rows } = await this.deps.db.query<ScheduleRow>(`SELECT * FROM delivery_schedules WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0] ? toSchedule(rows[0]) : null;
  }

  /** Oldest first; `after` is the sort key of the last one of the previous page (`sortAt`, id). */
  async listSchedules(tenantId: string, page: { limit: number; after?: readonly [string, string] | null }): Promise<{ schedule: Schedule; sortAt: string }[]> {
    const { rows } = await this.deps.db.query<ScheduleRow & { sort_at: string }>(
      `SELECT *, ${microsOf('created_at')} AS sort_at FROM delivery_schedules WHERE tenant_id = $1
          AND ($3::text IS NULL OR (created_at, id) > (${fromMicros('$3')}, $4::uuid))
        ORDER BY created_at, id LIMIT $2`,
      [tenantId, page.limit, page.after?.[0] ?? null, page.after?.[1] ?? null],
    );
    return rows.map((r) => ({ schedule: toSchedule(r), sortAt: r.sort_at }));
  }

  /** Changes a schedule; a new pattern, zone, one-off time or a resume recomputes the next run from `now`. */
  async updateSchedule(tenantId: string, id: string, patch: Partial<ScheduleInput>, now: Date): Promise<Schedule | null> {
    const current = await this.getSchedule(tenantId, id);
    if (!current) return null;
    const merged: ScheduleInput = {
      name: patch.name ?? current.name,
      cron: patch.cron !== undefined ? patch.cron : current.cron,
      runAt: patch.runAt !== undefined ? patch.runAt : current.runAt,
      timezone: patch.timezone ?? current.timezone,
      audience: patch.audience ?? current.audience,
      template: patch.template ?? current.template,
      channel: patch.channel ?? current.channel,
      maxMessages: patch.maxMessages ?? current.maxMessages,
      active: patch.active ?? current.active,
      respectQuietHours: patch.respectQuietHours ?? current.respectQuietHours,
    };
    if (patch.cron !== undefined && patch.cron !== null && patch.runAt === undefined) merged.runAt = null;
    this.checkSchedule(merged);
    const timing = patch.cron !== undefined || patch.runAt !== undefined || patch.timezone !== undefined || (patch.active === true && !current.active);
    const { rows } = await this.deps.db.query<ScheduleRow>(
      `UPDATE delivery_schedules SET name = $3, cron = $4, timezone = $5, run_at = $6, audience = $7::jsonb, template = $8, channel = $9, max_messages = $10, active = $11,
         next_run_at = CASE WHEN $12 THEN $13 ELSE next_run_at END, respect_quiet = $14, updated_at = now()
        WHERE tenant_id = $1 AND id = $2 RETURNING *`,
      [tenantId, id, merged.name, merged.cron ?? null, merged.timezone, merged.runAt ?? null, JSON.stringify(merged.audience), merged.template, merged.channel, merged.maxMessages, merged.active, timing, this.firstRun(merged, now), merged.respectQuietHours],
    );
    return rows[0] ? toSchedule(rows[0]) : null;
  }

  async deleteSchedule(tenantId: string, id: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return false;
    const { rowCount } = await this.deps.db.query(`DELETE FROM delivery_schedules WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * Who a run at `now` goes to, a page at a time in (created_at, id) order from `after`, with the
   * once-per-window key of each (null: no once rule). `last` is the last contact the page read (kept
   * or not), the cursor of the next page. Memory holds one page, whatever the audience's size.
   */
  private async *audiencePages(s: Schedule, now: Date, after: Cursor | null): AsyncGenerator<{ page: Candidate[]; last: Cursor }> {
    const a = s.audience;
    let cursor = after;
    for (;;) {
      const { contacts } = await this.deps.contacts.search(s.tenantId, {
        ...(a.tags ? { tags: a.tags } : {}),
        ...(a.anyTags ? { anyTags: a.anyTags } : {}),
        ...(a.fields ? { fields: a.fields } : {}),
        ...(a.inactiveDays !== undefined ? { inactiveDays: a.inactiveDays } : {}),
        ...(a.sinceLastInboundDays !== undefined ? { sinceLastInboundDays: a.sinceLastInboundDays } : {}),
        channel: s.channel,
        now,
        limit: this.pageSize,
        withTotal: false,
        ...(cursor ? { after: cursor } : {}),
      });
      if (!contacts.length) return;
      const page: Candidate[] = [];
      for (const contact of contacts) {
        const keys: string[] = [];
        if (a.beforeField) {
          const raw = contact.fields[a.beforeField.field];
          const at = typeof raw === 'string' ? Date.parse(raw) : NaN;
          if (Number.isNaN(at) || at <= now.getTime() || at > now.getTime() + a.beforeField.hoursBefore * 3600_000) continue;
          keys.push(`${a.beforeField.field}=${new Date(at).toISOString()}`);
        }
        if (a.sinceLastInboundDays !== undefined && contact.lastInboundAt) keys.push(`silent-since=${contact.lastInboundAt.toISOString()}`);
        page.push({ contact, onceKey: keys.length ? keys.join('|') : null });
      }
      const lastContact = contacts.at(-1)!;
      cursor = { createdAt: lastContact.createdAt, id: lastContact.id };
      yield { page, last: cursor };
      if (contacts.length < this.pageSize) return;
    }
  }

  private get pageSize(): number {
    return this.deps.audiencePageSize ?? 500;
  }

  /** The rendered messages for the first `limit` recipients and the counts; nothing is sent or stored. The audience is read a page at a time. */
  async preview(s: Schedule, limit: number, now: Date) {
    let audience = 0;
    let optedOut = 0;
    let already = 0;
    let eligible = 0;
    const shown: Contact[] = [];
    for await (const { page } of this.audiencePages(s, now, null)) {
      audience += page.length;
      const done = await this.onceTaken(s, page, null);
      for (const c of page) {
        if (c.onceKey && done.has(`${c.contact.id}\u0000${c.onceKey}`)) already++;
        else if (await this.optedOut(s, c.contact)) optedOut++;
        else {
          eligible++;
          if (shown.length < Math.min(limit, s.maxMessages)) shown.push(c.contact);
        }
      }
    }
    return {
      scheduleId: s.id,
      channel: s.channel,
      audience,
      count: Math.min(eligible, s.maxMessages),
      skippedOptOut: optedOut,
      skippedAlreadySent: already,
      cappedBy: eligible > s.maxMessages ? s.maxMessages : null,
      messages: shown.map((c) => ({ contactId: c.id, name: c.name, text: render(s.template, c, this.deps.contacts) })),
      nextRun: s.nextRun,
      generatedAt: now,
      note: PREVIEW_NOTE,
    };
  }

  private async optedOut(s: Schedule, c: Contact): Promise<boolean> {
    const a = this.deps.contacts.addressOn(c, s.channel);
    return !a || (await this.deps.gateway.consent.isOptedOut(s.tenantId, a.address));
  }

  private async onceTaken(s: Schedule, candidates: Candidate[], exceptRun: string | null): Promise<Set<string>> {
    const ids = candidates.filter((c) => c.onceKey).map((c) => c.contact.id);
    if (!ids.length) return new Set();
    const { rows } = await this.deps.db.query<{ contact_id: string; once_key: string }>(`SELECT contact_id, once_key FROM delivery_once WHERE schedule_id = $1 AND contact_id = ANY($2) AND ($3::uuid IS NULL OR run_id <> $3)`, [s.id, ids, exceptRun]);
    return new Set(rows.map((r) => `${r.contact_id}\u0000${r.once_key}`));
  }

  /** Starts a run now (`POST .../run-now`): selected and its first batch queued at once. */
  async runNow(s: Schedule, now: Date): Promise<RunRecord> {
    const run = await this.openRun(s, 'run-now', now, `now-${now.toISOString()}-${Math.random().toString(36).slice(2, 8)}`);
    await this.advanceRun(run, now, new Map());
    return (await this.runRecord(s.tenantId, run.id))!;
  }

  private async openRun(s: Schedule, trigger: 'schedule' | 'run-now', occurrence: Date, key: string, status: 'selecting' | 'missed' = 'selecting'): Promise<RunRow> {
    const { rows } = await this.deps.db.query<RunRow>(
      `INSERT INTO delivery_runs (tenant_id, schedule_id, run_key, occurrence_at, trigger, status, finished_at) VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6 = 'missed' THEN now() END)
       ON CONFLICT (schedule_id, run_key) DO NOTHING RETURNING *`,
      [s.tenantId, s.id, key, occurrence, trigger, status],
    );
    if (rows[0]) {
      this.deps.metrics.runs.inc({ tenant: s.tenantId, trigger, status: status === 'missed' ? 'missed' : 'started' });
      return rows[0];
    }
    const existing = await this.deps.db.query<RunRow>(`SELECT * FROM delivery_runs WHERE schedule_id = $1 AND run_key = $2`, [s.id, key]);
    return existing.rows[0]!;
  }

  /**
   * Freezes the recipients of a run, reading the audience a page at a time. After each page the run
   * keeps the last contact read (`select_after_*`): a selection cut off by a restart goes on from there,
   * and a page read twice (cut off before its cursor was written) adds nobody twice (the recipient's key
   * is the run and contact). The cap counts the recipients already chosen, from the table. Selection
   * stops once the cap is reached.
   */
  private async select(run: RunRow, s: Schedule, now: Date): Promise<void> {
    const { rows: state } = await this.deps.db.query<{ select_after_at: Date | null; select_after_id: string | null; picked: string }>(
      `SELECT select_after_at, select_after_id, (SELECT count(*) FROM delivery_recipients WHERE run_id = $1 AND status IN ('pending', 'queued')) AS picked FROM delivery_runs WHERE id = $1`,
      [run.id],
    );
    let picked = Number(state[0]?.picked ?? 0);
    const after = state[0]?.select_after_at && state[0].select_after_id ? { createdAt: state[0].select_after_at, id: state[0].select_after_id } : null;
    if (picked < s.maxMessages) {
      for await (const { page, last } of this.audiencePages(s, now, after)) {
        const taken = await this.onceTaken(s, page, run.id);
        for (const c of page) {
          if (picked >= s.maxMessages) break;
          if (c.onceKey && taken.has(`${c.contact.id}\u0000${c.onceKey}`)) continue;
          const address = this.deps.contacts.addressOn(c.contact, s.channel);
          if (!address) continue;
          const optedOut = await this.deps.gateway.consent.isOptedOut(s.tenantId, address.address);
          let status = optedOut ? 'skipped-opted-out' : 'pending';
          if (!optedOut && c.onceKey) {
            const claim = await this.deps.db.query<{ run_id: string }>(
              `WITH ins AS (INSERT INTO delivery_once (schedule_id, contact_id, once_key, run_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING run_id)
               SELECT run_id FROM ins UNION ALL SELECT run_id FROM delivery_once WHERE schedule_id = $1 AND contact_id = $2 AND once_key = $3 LIMIT 1`,
              [s.id, c.contact.id, c.onceKey, run.id],
            );
            if (claim.rows[0]?.run_id !== run.id) status = 'skipped-once';
          }
          const { rowCount } = await this.deps.db.query(
            `INSERT INTO delivery_recipients (run_id, tenant_id, contact_id, channel, address, once_key, status) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
            [run.id, s.tenantId, c.contact.id, s.channel, address.address, c.onceKey, status],
          );
          if (!rowCount) continue; // chosen before a restart: already counted
          if (status === 'pending') picked++;
          this.deps.metrics.recipients.inc({ tenant: s.tenantId, result: status === 'pending' ? 'selected' : status });
        }
        await this.deps.db.query(`UPDATE delivery_runs SET select_after_at = $2, select_after_id = $3 WHERE id = $1`, [run.id, last.createdAt, last.id]);
        if (picked >= s.maxMessages) break;
      }
    }
    await this.deps.db.query(
      `UPDATE delivery_runs SET status = 'sending', recipients = (SELECT count(*) FROM delivery_recipients WHERE run_id = $1) WHERE id = $1 AND status = 'selecting'`,
      [run.id],
    );
  }

  /**
   * The pacing of a tenant's channel in this tick: how many were queued, and the next free send slot
   * (with `throughputPerSecond`): after the last slot an earlier tick or run took, and never before now.
   */
  private async pacing(tenantId: string, channel: string, now: Date, paces: Map<string, Pacing>): Promise<Pacing> {
    const key = `${tenantId}\u0000${channel}`;
    let p = paces.get(key);
    if (!p) {
      const perSecond = this.settings(tenantId).throughputPerSecond[channel];
      const gapMs = perSecond ? 1000 / perSecond : 0;
      let next = now.getTime();
      if (gapMs) {
        const { rows } = await this.deps.db.query<{ last: Date | null }>(`SELECT max(send_at) AS last FROM delivery_recipients WHERE tenant_id = $1 AND channel = $2 AND send_at >= $3`, [tenantId, channel, now]);
        if (rows[0]?.last) next = Math.max(next, rows[0].last.getTime() + gapMs);
      }
      p = { queued: 0, gapMs, next };
      paces.set(key, p);
    }
    return p;
  }

  /** Selects if needed, then queues up to the channel's per-minute budget of pending recipients, each at its send slot. */
  private async advanceRun(run: RunRow, now: Date, paces: Map<string, Pacing>): Promise<void> {
    const s = await this.getSchedule(run.tenant_id, run.schedule_id);
    if (!s) return;
    try {
      if (run.status === 'selecting') await this.select(run, s, now);
      const settings = this.settings(s.tenantId);
      const pace = await this.pacing(s.tenantId, s.channel, now, paces);
      const rate = settings.ratePerMinute[s.channel] ?? 60;
      const quiet = s.respectQuietHours ? settings.quietHours : null;
      // Recipients in their quiet hours are put off (due_at) without using the budget, so look again while it lasts.
      for (let round = 0; round < 20; round++) {
        const budget = rate - pace.queued;
        if (budget <= 0) return;
        const { rows } = await this.deps.db.query<{ contact_id: string; address: string }>(
          `SELECT contact_id, address FROM delivery_recipients WHERE run_id = $1 AND status = 'pending' AND (due_at IS NULL OR due_at <= $3) ORDER BY contact_id LIMIT $2`,
          [run.id, budget, now],
        );
        if (!rows.length) break;
        let deferred = 0;
        for (const r of rows) {
          const contact = await this.deps.contacts.get(s.tenantId, r.contact_id);
          if (quiet) {
            const tz = contact ? this.deps.contacts.timezoneOf(contact) : (this.deps.tenant(s.tenantId)?.timezone ?? 'UTC');
            const due = afterQuietHours(now, tz, quiet);
            if (due.getTime() > now.getTime()) {
              await this.deps.db.query(`UPDATE delivery_recipients SET due_at = $3 WHERE run_id = $1 AND contact_id = $2 AND status = 'pending'`, [run.id, r.contact_id, due]);
              this.deps.metrics.recipients.inc({ tenant: s.tenantId, result: 'quiet-deferred' });
              deferred++;
              continue;
            }
          }
          const text = contact ? render(s.template, contact, this.deps.contacts) : render(s.template, null, this.deps.contacts);
          const sendAt = new Date(pace.next);
          const item = await this.deps.gateway.enqueueOutbound({ tenantId: s.tenantId, channel: s.channel, to: r.address, text, idempotencyKey: `delivery:${run.id}:${r.contact_id}`, options: { schedule: s.id, run: run.id }, delayMs: sendAt.getTime() - now.getTime() });
          await this.deps.db.query(`UPDATE delivery_recipients SET status = 'queued', outbox_id = $3, send_at = $4 WHERE run_id = $1 AND contact_id = $2 AND status = 'pending'`, [run.id, r.contact_id, item.id, sendAt]);
          this.deps.metrics.recipients.inc({ tenant: s.tenantId, result: 'queued' });
          pace.queued++;
          pace.next += pace.gapMs;
          // Refused by a reply stage: if the budget is what no longer fits, the rest would be refused too.
          if ((item.status === 'blocked' || item.status === 'held') && item.errorCode !== 'opted-out') {
            const room = await this.deps.sendBudget?.()?.room(s.tenantId, { channel: s.channel, text });
            if (room && !room.fits) return await this.stopForBudget(run, s, item.error);
          }
        }
        if (!deferred) break;
      }
      const { rowCount } = await this.deps.db.query(
        `UPDATE delivery_runs SET status = 'completed', finished_at = now() WHERE id = $1 AND status = 'sending' AND NOT EXISTS (SELECT 1 FROM delivery_recipients WHERE run_id = $1 AND status = 'pending')`,
        [run.id],
      );
      if (rowCount) this.deps.metrics.runs.inc({ tenant: s.tenantId, trigger: run.trigger, status: 'completed' });
    } catch (error) {
      const message = error instanceof ParleyError ? `${error.code}: ${error.message}` : 'internal error (see the log)';
      await this.deps.db.query(`UPDATE delivery_runs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1 AND status IN ('selecting', 'sending')`, [run.id, message]);
      this.deps.metrics.runs.inc({ tenant: s.tenantId, trigger: run.trigger, status: 'failed' });
      this.deps.log.error({ tenant: s.tenantId, schedule: s.id, run: run.id, err: error }, 'reminders: a scheduled delivery run failed');
    }
  }

  /** Ends a run whose sends no longer fit the tenant's budget: the recipients not reached are recorded `skipped-budget`. */
  private async stopForBudget(run: RunRow, s: Schedule, reason: string | null): Promise<void> {
    const skipped = await this.deps.db.query(`UPDATE delivery_recipients SET status = 'skipped-budget' WHERE run_id = $1 AND status = 'pending'`, [run.id]);
    const { rowCount } = await this.deps.db.query(`UPDATE delivery_runs SET status = 'budget', error = $2, finished_at = now() WHERE id = $1 AND status = 'sending'`, [run.id, reason ?? 'the budget is spent']);
    if (skipped.rowCount) this.deps.metrics.recipients.inc({ tenant: s.tenantId, result: 'skipped-budget' }, skipped.rowCount);
    if (rowCount) this.deps.metrics.runs.inc({ tenant: s.tenantId, trigger: run.trigger, status: 'budget' });
    this.deps.log.warn({ tenant: s.tenantId, schedule: s.id, run: run.id, skipped: skipped.rowCount }, 'reminders: a scheduled delivery stopped: the messaging budget is spent');
  }

  /** Opens the runs of schedules due at `now` (late ones within the grace window; older ones recorded as missed), then moves every open run on. */
  async tickDeliveries(now: Date): Promise<void> {
    const { rows } = await this.deps.db.query<ScheduleRow>(`SELECT * FROM delivery_schedules WHERE active AND next_run_at <= $1 ORDER BY next_run_at LIMIT 500`, [now]);
    for (const row of rows) {
      const s = toSchedule(row);
      const settings = this.deps.settingsFor(s.tenantId);
      if (!settings) continue;
      const grace = Math.max(settings.missedGraceMinutes * 60_000, MIN_GRACE_MS);
      let occ: Date | null = s.nextRun;
      for (let i = 0; occ && occ.getTime() <= now.getTime() && i < 100; i++) {
        const missed = now.getTime() - occ.getTime() > grace;
        await this.openRun(s, 'schedule', occ, occ.toISOString(), missed ? 'missed' : 'selecting');
        let next = s.cron ? nextCron(s.cron, s.timezone, occ) : null;
        if (i === 99 && next && next <= now) next = nextCron(s.cron!, s.timezone, now);
        const { rowCount } = await this.deps.db.query(`UPDATE delivery_schedules SET next_run_at = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 AND next_run_at = $4`, [s.tenantId, s.id, next, occ]);
        if (!rowCount) break;
        occ = next;
      }
    }
    const open = await this.deps.db.query<RunRow>(`SELECT * FROM delivery_runs WHERE status IN ('selecting', 'sending') ORDER BY created_at LIMIT 500`);
    const paces = new Map<string, Pacing>();
    for (const run of open.rows) if (this.deps.settingsFor(run.tenant_id)) await this.advanceRun(run, now, paces);
  }

  async tick(now: Date): Promise<void> {
    await this.tickReminders(now);
    await this.tickDeliveries(now);
  }

  async runRecord(tenantId: string, runId: string): Promise<RunRecord | null> {
    const [found] = await this.runRecords(tenantId, { runId });
    if (!found) return null;
    const { sortAt: _, ...record } = found;
    return record;
  }

  /**
   * Per-run records: recipients and what became of them (the outbox status of each queued message).
   * Newest first; `after` is the sort key of the last run of the previous page (`sortAt`, id).
   */
  async runRecords(tenantId: string, q: { scheduleId?: string; runId?: string; limit?: number; after?: readonly [string, string] | null }): Promise<(RunRecord & { sortAt: string })[]> {
    const { rows } = await this.deps.db.query<RunRow & Record<string, string>>(
      `SELECT r.*, ${microsOf('r.created_at')} AS sort_at,
         count(d.contact_id) FILTER (WHERE d.status = 'pending') AS n_pending,
         count(d.contact_id) FILTER (WHERE d.status = 'queued') AS n_queued,
         count(d.contact_id) FILTER (WHERE o.status IN ('sent', 'delivered', 'read')) AS n_sent,
         count(d.contact_id) FILTER (WHERE o.status IN ('delivered', 'read')) AS n_delivered,
         count(d.contact_id) FILTER (WHERE o.status IN ('failed', 'dead', 'undelivered') OR (o.status = 'blocked' AND coalesce(o.error_code, '') <> 'opted-out')) AS n_failed,
         count(d.contact_id) FILTER (WHERE d.status = 'skipped-opted-out' OR (o.status = 'blocked' AND o.error_code = 'opted-out')) AS n_optout,
         count(d.contact_id) FILTER (WHERE d.status = 'skipped-once') AS n_once,
         count(d.contact_id) FILTER (WHERE d.status = 'skipped-budget') AS n_budget
       FROM delivery_runs r LEFT JOIN delivery_recipients d ON d.run_id = r.id LEFT JOIN parley_outbox o ON o.id = d.outbox_id AND o.tenant_id = r.tenant_id
       WHERE r.tenant_id = $1 AND ($2::uuid IS NULL OR r.schedule_id = $2) AND ($3::uuid IS NULL OR r.id = $3)
         AND ($5::text IS NULL OR (r.created_at, r.id) < (${fromMicros('$5')}, $6::uuid))
       GROUP BY r.id ORDER BY r.created_at DESC, r.id DESC LIMIT $4`,
      [tenantId, q.scheduleId ?? null, q.runId ?? null, q.limit ?? 50, q.after?.[0] ?? null, q.after?.[1] ?? null],
    );
    return rows.map((r) => ({
      sortAt: r.sort_at!,
      id: r.id,
      scheduleId: r.schedule_id,
      trigger: r.trigger,
      status: r.status,
      occurrenceAt: r.occurrence_at,
      createdAt: r.created_at,
      finishedAt: r.finished_at,
      error: r.error,
      recipients: r.recipients,
      pending: Number(r.n_pending),
      queued: Number(r.n_queued),
      sent: Number(r.n_sent),
      delivered: Number(r.n_delivered),
      failed: Number(r.n_failed),
      skippedOptOut: Number(r.n_optout),
      skippedOnce: Number(r.n_once),
      skippedBudget: Number(r.n_budget),
    }));
  }

  /** Seed 002's statistics, for the tenant (and per channel). */
  async stats(tenantId: string) {
    const { rows } = await this.deps.db.query<{ channel: string; total: string; active: string; ok: string; failed: string; missed: string; running: string; budget: string }>(
      `SELECT s.channel, count(DISTINCT s.id) AS total, count(DISTINCT s.id) FILTER (WHERE s.active) AS active,
         count(r.id) FILTER (WHERE r.status = 'completed') AS ok, count(r.id) FILTER (WHERE r.status = 'failed') AS failed, count(r.id) FILTER (WHERE r.status = 'budget') AS budget,
         count(r.id) FILTER (WHERE r.status = 'missed') AS missed, count(r.id) FILTER (WHERE r.status IN ('selecting', 'sending')) AS running
       FROM delivery_schedules s LEFT JOIN delivery_runs r ON r.schedule_id = s.id WHERE s.tenant_id = $1 GROUP BY s.channel ORDER BY s.channel`,
      [tenantId],
    );
    const per = rows.map((r) => ({ channel: r.channel, totalSchedules: Number(r.total), activeSchedules: Number(r.active), successfulRuns: Number(r.ok), failedRuns: Number(r.failed), missedRuns: Number(r.missed), runningRuns: Number(r.running), budgetStoppedRuns: Number(r.budget) }));
    const sum = (k: keyof (typeof per)[number]) => per.reduce((n, p) => n + (p[k] as number), 0);
    return { totalSchedules: sum('totalSchedules'), activeSchedules: sum('activeSchedules'), successfulRuns: sum('successfulRuns'), failedRuns: sum('failedRuns'), missedRuns: sum('missedRuns'), runningRuns: sum('runningRuns'), budgetStoppedRuns: sum('budgetStoppedRuns'), byChannel: per };
  }

  async activeCounts(): Promise<{ reminders: { tenantId: string; n: number }[]; schedules: { tenantId: string; n: number }[] }> {
    const a = await this.deps.db.query<{ tenant_id: string; n: string }>(`SELECT tenant_id, count(*) AS n FROM reminders WHERE status = 'active' GROUP BY tenant_id`);
    const b = await this.deps.db.query<{ tenant_id: string; n: string }>(`SELECT tenant_id, count(*) AS n FROM delivery_schedules WHERE active GROUP BY tenant_id`);
    const map = (rows: { tenant_id: string; n: string }[]) => rows.map((r) => ({ tenantId: r.tenant_id, n: Number(r.n) }));
    return { reminders: map(a.rows), schedules: map(b.rows) };
  }

  languageOf(contact: Contact): Lang {
    return langOf(this.deps.contacts.languageOf(contact));
  }
}

/**
 * Fills a template from a contact: `{{name}}`, `{{first_name}}`, any custom field by name
 * (`{{plan}}` or `{{fields.plan}}`), a fallback after `|` (`{{first_name|there}}`), and a time field
 * written in the contact's zone and language with `when:` (`{{when:appointment_at}}`).
 */
export function render(template: string, contact: Contact | null, contacts: Pick<ContactsDirectory, 'timezoneOf' | 'languageOf'>): string {
  return template.replace(/\{\{\s*([^}|]+?)\s*(?:\|\s*([^}]*?)\s*)?\}\}/g, (_m, key: string, fallback: string | undefined) => {
    const value = lookup(key, contact, contacts);
    return value === undefined || value === null || value === '' ? (fallback ?? '') : String(value);
  });
}

function lookup(key: string, c: Contact | null, contacts: Pick<ContactsDirectory, 'timezoneOf' | 'languageOf'>): unknown {
  if (!c) return undefined;
  if (key.startsWith('when:')) {
    const raw = c.fields[key.slice(5).trim()];
    const at = typeof raw === 'string' ? new Date(raw) : null;
    if (!at || Number.isNaN(at.getTime())) return undefined;
    return new Intl.DateTimeFormat(contacts.languageOf(c), { timeZone: contacts.timezoneOf(c), weekday: 'long', month: 'long', day: 'numeric', hour: 'numeric', minute: '2-digit' }).format(at);
  }
  if (key === 'name') return c.name;
  if (key === 'first_name' || key === 'firstName') return c.name?.split(/\s+/)[0];
  const field = key.startsWith('fields.') ? key.slice(7) : key;
  return c.fields[field];
}

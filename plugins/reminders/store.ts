/**
 * What the reminders plugin keeps: reminders of one person and their occurrences; scheduled
 * deliveries, their runs and each run's recipients; and the once-per-rule marks of follow-ups. The
 * occurrence (a reminder's planned time, a run's recipient) names the outbox item through the kernel's
 * idempotency key, so any number of ticks, instances or restarts send it once.
 */
import type { Migration } from 'parley';

export const migrations: Migration[] = [
  {
    id: '001_create_reminders',
    sql: `
      CREATE TABLE reminders (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        contact_id uuid NOT NULL,
        short_id int NOT NULL,
        channel text NOT NULL,
        address text NOT NULL,
        task text NOT NULL,
        message text NOT NULL,
        timezone text NOT NULL,
        -- one-off: once_at; recurring: rrule read in local wall time from start_local
        once_at timestamptz,
        rrule text,
        start_local text,
        allow_quiet boolean NOT NULL DEFAULT false,
        source text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'done', 'cancelled')),
        next_at timestamptz,
        due_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, contact_id, short_id)
      );
      CREATE INDEX reminders_due ON reminders (due_at) WHERE status = 'active';
      CREATE INDEX reminders_contact ON reminders (tenant_id, contact_id);
      CREATE TABLE reminder_occurrences (
        reminder_id uuid NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
        tenant_id text NOT NULL,
        occurrence_at timestamptz NOT NULL,
        status text NOT NULL,
        outbox_id uuid,
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (reminder_id, occurrence_at)
      );
      CREATE TABLE delivery_schedules (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        name text NOT NULL,
        cron text,
        timezone text NOT NULL,
        run_at timestamptz,
        audience jsonb NOT NULL,
        template text NOT NULL,
        channel text NOT NULL,
        max_messages int NOT NULL,
        active boolean NOT NULL DEFAULT true,
        next_run_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX delivery_schedules_due ON delivery_schedules (next_run_at) WHERE active;
      CREATE INDEX delivery_schedules_tenant ON delivery_schedules (tenant_id, created_at);
      CREATE TABLE delivery_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        schedule_id uuid NOT NULL REFERENCES delivery_schedules (id) ON DELETE CASCADE,
        -- the planned time of a scheduled run; run-now runs carry their own unique key
        run_key text NOT NULL,
        occurrence_at timestamptz NOT NULL,
        trigger text NOT NULL CHECK (trigger IN ('schedule', 'run-now')),
        status text NOT NULL DEFAULT 'selecting' CHECK (status IN ('selecting', 'sending', 'completed', 'failed', 'missed')),
        recipients int NOT NULL DEFAULT 0,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        UNIQUE (schedule_id, run_key)
      );
      CREATE INDEX delivery_runs_open ON delivery_runs (status) WHERE status IN ('selecting', 'sending');
      CREATE TABLE delivery_recipients (
        run_id uuid NOT NULL REFERENCES delivery_runs (id) ON DELETE CASCADE,
        tenant_id text NOT NULL,
        contact_id uuid NOT NULL,
        channel text NOT NULL,
        address text NOT NULL,
        once_key text,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'queued', 'skipped-opted-out', 'skipped-once')),
        outbox_id uuid,
        PRIMARY KEY (run_id, contact_id)
      );
      CREATE INDEX delivery_recipients_pending ON delivery_recipients (run_id) WHERE status = 'pending';
      CREATE INDEX delivery_recipients_address ON delivery_recipients (tenant_id, address);
      -- follow-ups: each recipient at most once per rule (schedule) per window (appointment, silence)
      CREATE TABLE delivery_once (
        schedule_id uuid NOT NULL REFERENCES delivery_schedules (id) ON DELETE CASCADE,
        contact_id uuid NOT NULL,
        once_key text NOT NULL,
        run_id uuid NOT NULL,
        PRIMARY KEY (schedule_id, contact_id, once_key)
      );
    `,
  },
  {
    // Exactly once under recovery: a reminder made by a message, and a cancellation by one, name that
    // message, so the recovery sweep running the message again finds them instead of acting twice.
    id: '002_source_message',
    sql: `
      ALTER TABLE reminders ADD COLUMN source_message_id text;
      ALTER TABLE reminders ADD COLUMN cancel_message_id text;
      CREATE UNIQUE INDEX reminders_source_message ON reminders (tenant_id, source_message_id) WHERE source_message_id IS NOT NULL;
      CREATE INDEX reminders_cancel_message ON reminders (tenant_id, cancel_message_id) WHERE cancel_message_id IS NOT NULL;
    `,
  },
  {
    // Scheduled deliveries keep the tenant's quiet hours unless a schedule opts out; a recipient whose
    // local time is quiet waits (due_at: the end of their quiet hours).
    id: '003_delivery_quiet_hours',
    sql: `
      ALTER TABLE delivery_schedules ADD COLUMN respect_quiet boolean NOT NULL DEFAULT true;
      ALTER TABLE delivery_recipients ADD COLUMN due_at timestamptz;
    `,
  },
  {
    // Sends spaced at the channel's throughput: when each recipient's send job is due (its slot); the next
    // run on that tenant and channel starts after the last slot taken.
    id: '004_delivery_pacing',
    sql: `
      ALTER TABLE delivery_recipients ADD COLUMN send_at timestamptz;
      CREATE INDEX delivery_recipients_slots ON delivery_recipients (tenant_id, channel, send_at) WHERE send_at IS NOT NULL;
    `,
  },
  {
    // A run's audience is read a page at a time; the last contact read (created_at, id) is kept, so a
    // selection cut off by a restart goes on after it instead of reading the audience again.
    id: '005_delivery_select_cursor',
    sql: `
      ALTER TABLE delivery_runs ADD COLUMN select_after_at timestamptz, ADD COLUMN select_after_id uuid;
    `,
  },
  {
    // A run stops when cost-guard's messaging budget no longer fits a send: the run is 'budget', the
    // recipients it did not reach 'skipped-budget'.
    id: '006_delivery_budget_stop',
    sql: `
      ALTER TABLE delivery_runs DROP CONSTRAINT delivery_runs_status_check;
      ALTER TABLE delivery_runs ADD CONSTRAINT delivery_runs_status_check CHECK (status IN ('selecting', 'sending', 'completed', 'failed', 'missed', 'budget'));
      ALTER TABLE delivery_recipients DROP CONSTRAINT delivery_recipients_status_check;
      ALTER TABLE delivery_recipients ADD CONSTRAINT delivery_recipients_status_check CHECK (status IN ('pending', 'queued', 'skipped-opted-out', 'skipped-once', 'skipped-budget'));
    `,
  },
];

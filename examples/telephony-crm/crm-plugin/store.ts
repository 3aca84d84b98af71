/**
 * The CRM's appointments: its one table, its migrations, the queries the routes, the stage and the
 * owner's summaries need, and its data-subject provider (a person's appointments, found by number).
 */
import type { Pool } from 'pg';
import { fromMicros, microsOf, type DataSubjectProvider, type Migration } from 'parley';

export const STATUSES = ['SCHEDULED', 'CONFIRMED', 'PENDING_RESCHEDULE', 'CANCELLED', 'COMPLETED'] as const;
export type AppointmentStatus = (typeof STATUSES)[number];
/** Statuses of an appointment that is still going to happen. */
export const UPCOMING: readonly AppointmentStatus[] = ['SCHEDULED', 'CONFIRMED', 'PENDING_RESCHEDULE'];

export interface Appointment {
  id: string;
  tenantId: string;
  contactId: string | null;
  customerName: string | null;
  phone: string;
  serviceType: string;
  emergency: boolean;
  startsAt: Date;
  status: AppointmentStatus;
  notes: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export const migrations: Migration[] = [
  {
    id: '001_crm_appointments',
    sql: `
      CREATE TABLE IF NOT EXISTS crm_appointments (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id text NOT NULL,
        contact_id uuid,
        customer_name text,
        phone text NOT NULL,
        service_type text NOT NULL,
        emergency boolean NOT NULL DEFAULT false,
        starts_at timestamptz NOT NULL,
        status text NOT NULL DEFAULT 'SCHEDULED' CHECK (status IN ('SCHEDULED', 'CONFIRMED', 'PENDING_RESCHEDULE', 'CANCELLED', 'COMPLETED')),
        notes text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX IF NOT EXISTS crm_appointments_by_time ON crm_appointments (tenant_id, starts_at, id);
      CREATE INDEX IF NOT EXISTS crm_appointments_by_phone ON crm_appointments (tenant_id, phone);
    `,
  },
];

const COLUMNS = `id, tenant_id AS "tenantId", contact_id AS "contactId", customer_name AS "customerName", phone, service_type AS "serviceType", emergency, starts_at AS "startsAt", status, notes, created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface AppointmentInput {
  contactId: string | null;
  customerName: string | null;
  phone: string;
  serviceType: string;
  emergency: boolean;
  startsAt: Date;
  notes: string | null;
}

export interface ListQuery {
  from?: Date | undefined;
  to?: Date | undefined;
  status?: AppointmentStatus | undefined;
  /** The sort key of the last item of the previous page: microseconds of `starts_at`, and the id. */
  after?: readonly [string, string] | null;
  limit: number;
}

export class AppointmentStore {
  constructor(private readonly db: Pool) {}

  async create(tenantId: string, a: AppointmentInput): Promise<Appointment> {
    const { rows } = await this.db.query<Appointment>(
      `INSERT INTO crm_appointments (tenant_id, contact_id, customer_name, phone, service_type, emergency, starts_at, notes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
      [tenantId, a.contactId, a.customerName, a.phone, a.serviceType, a.emergency, a.startsAt, a.notes],
    );
    return rows[0]!;
  }

  async get(tenantId: string, id: string): Promise<Appointment | null> {
    const { rows } = await this.db.query<Appointment>(`SELECT ${COLUMNS} FROM crm_appointments WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0] ?? null;
  }

  async update(tenantId: string, id: string, change: { status?: AppointmentStatus | undefined; startsAt?: Date | undefined; notes?: string | null | undefined }): Promise<Appointment | null> {
    const { rows } = await this.db.query<Appointment>(
      `UPDATE crm_appointments SET status = COALESCE($3, status), starts_at = COALESCE($4, starts_at), notes = CASE WHEN $5::boolean THEN $6 ELSE notes END, updated_at = now()
        WHERE tenant_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [tenantId, id, change.status ?? null, change.startsAt ?? null, change.notes !== undefined, change.notes ?? null],
    );
    return rows[0] ?? null;
  }

  /** Oldest first by start time; one more row than `limit`, so the caller knows whether a next page exists. */
  async list(tenantId: string, q: ListQuery): Promise<(Appointment & { sortAt: string })[]> {
    const { rows } = await this.db.query<Appointment & { sortAt: string }>(
      `SELECT ${COLUMNS}, ${microsOf('starts_at')} AS "sortAt" FROM crm_appointments
        WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR starts_at >= $2) AND ($3::timestamptz IS NULL OR starts_at < $3) AND ($4::text IS NULL OR status = $4)
          AND ($5::text IS NULL OR (starts_at, id) > (${fromMicros('$5')}, $6::uuid))
        ORDER BY starts_at, id LIMIT $7`,
      [tenantId, q.from ?? null, q.to ?? null, q.status ?? null, q.after?.[0] ?? null, q.after?.[1] ?? null, q.limit + 1],
    );
    return rows;
  }

  /** Appointments of one local calendar day (`day` days after the day of `now` in `timezone`), by start time. */
  async ofLocalDay(tenantId: string, timezone: string, now: Date, day: number): Promise<Appointment[]> {
    const { rows } = await this.db.query<Appointment>(
      `SELECT ${COLUMNS} FROM crm_appointments
        WHERE tenant_id = $1 AND (starts_at AT TIME ZONE $2)::date = ($3::timestamptz AT TIME ZONE $2)::date + $4::int
        ORDER BY starts_at, id`,
      [tenantId, timezone, now, day],
    );
    return rows;
  }

  /** The person's next appointment still to come, for CONFIRM and RESCHEDULE by text. */
  async nextOf(tenantId: string, phone: string, now: Date): Promise<Appointment | null> {
    const { rows } = await this.db.query<Appointment>(
      `SELECT ${COLUMNS} FROM crm_appointments WHERE tenant_id = $1 AND phone = $2 AND status = ANY($3) AND starts_at > $4 ORDER BY starts_at LIMIT 1`,
      [tenantId, phone, UPCOMING, now],
    );
    return rows[0] ?? null;
  }

  /** The start of the contact's soonest appointment still to come (null when none). */
  async nextStartOfContact(tenantId: string, contactId: string, now: Date): Promise<Date | null> {
    const { rows } = await this.db.query<{ next: Date | null }>(`SELECT min(starts_at) AS next FROM crm_appointments WHERE tenant_id = $1 AND contact_id = $2 AND status = ANY($3) AND starts_at > $4`, [tenantId, contactId, UPCOMING, now]);
    return rows[0]?.next ?? null;
  }

  async hasAny(tenantId: string, phone: string): Promise<boolean> {
    const { rows } = await this.db.query(`SELECT 1 FROM crm_appointments WHERE tenant_id = $1 AND phone = $2 LIMIT 1`, [tenantId, phone]);
    return rows.length > 0;
  }

  /** Appointments per service type that started in the last `days` days (to now), emergencies apart. */
  async serviceMix(tenantId: string, now: Date, days: number): Promise<{ serviceType: string; appointments: number; emergencies: number; completed: number; cancelled: number }[]> {
    const { rows } = await this.db.query(
      `SELECT service_type AS "serviceType", count(*)::int AS appointments, count(*) FILTER (WHERE emergency)::int AS emergencies,
              count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled
         FROM crm_appointments WHERE tenant_id = $1 AND starts_at >= $2::timestamptz - make_interval(days => $3) AND starts_at <= $2
        GROUP BY service_type ORDER BY appointments DESC, service_type`,
      [tenantId, now, days],
    );
    return rows;
  }

  /** Appointments by tenant and status, for the gauge. */
  async counts(): Promise<{ tenantId: string; status: string; n: number }[]> {
    const { rows } = await this.db.query(`SELECT tenant_id AS "tenantId", status, count(*)::int AS n FROM crm_appointments GROUP BY tenant_id, status`);
    return rows;
  }

  dataSubjectProvider(): DataSubjectProvider {
    const phones = (addresses: string[]) => [...new Set(addresses.map((a) => a.replace(/^[a-z-]+:/, '')))];
    return {
      name: 'crm.appointments',
      describe: () => ({
        purpose: 'Booking and running your service appointments: your name and number, the service, its time and status.',
        recipients: ["The business's staff (owner texts, the admin API, CSV exports)"],
        retention: 'Kept until the business deletes them or you ask for erasure.',
        source: 'The business, when it books an appointment for you; your CONFIRM and RESCHEDULE texts change its status.',
      }),
      export: async (s) => {
        const { rows } = await this.db.query<Appointment>(`SELECT ${COLUMNS} FROM crm_appointments WHERE tenant_id = $1 AND phone = ANY($2) ORDER BY starts_at`, [s.tenantId, phones(s.addresses)]);
        return rows.map((r) => ({ kind: 'appointment', ...r }));
      },
      erase: async (s) => {
        const { rowCount } = await this.db.query(`DELETE FROM crm_appointments WHERE tenant_id = $1 AND phone = ANY($2)`, [s.tenantId, phones(s.addresses)]);
        return { erased: rowCount ?? 0 };
      },
    };
  }
}

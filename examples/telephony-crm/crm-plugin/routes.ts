/**
 * The CRM's admin API, under `/v1/tenants/:tenant/crm` (tenant key, or the operator's): appointments,
 * the owner's views (schedule tomorrow, summary today, reschedules, service mix) and CSV exports.
 * Every route is described with `route(contract, handler)`, so it is in `/v1/openapi.json`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { NextPage, TimeIdKey, badRequest, notFound, pageOf, pageQuery, param, readCursor, type RouteHelpers, type TenantInfo } from 'parley';
import type { CrmMetrics } from './metrics.js';
import type { CustomerSync } from './customers.js';
import { STATUSES, type Appointment, type AppointmentStore } from './store.js';
import { localDate, scheduleText, summaryCounts, summaryText, toCsv } from './summaries.js';

const at = z.iso.datetime({ offset: true });
const Status = z.enum(STATUSES);
const AppointmentView = z
  .object({
    id: z.string(),
    contactId: z.string().nullable().describe('The customer: a contact of the `contacts` plugin'),
    customerName: z.string().nullable(),
    phone: z.string(),
    serviceType: z.string(),
    emergency: z.boolean(),
    startsAt: at,
    status: Status,
    notes: z.string().nullable(),
    createdAt: at,
    updatedAt: at,
  })
  .meta({ id: 'CrmAppointment' });
const createBody = z.object({
  customer: z.object({ phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'an E.164 number (+15551234567)'), name: z.string().min(1).max(200).optional() }),
  serviceType: z.string().min(1).max(100),
  startsAt: at,
  emergency: z.boolean().default(false),
  notes: z.string().max(2000).optional(),
});
const patchBody = z.object({ status: Status.optional(), startsAt: at.optional(), notes: z.string().max(2000).nullable().optional() }).refine((b) => Object.keys(b).length > 0, 'nothing to change: give status, startsAt or notes');
const listQuery = pageQuery({ defaultLimit: 100 }).extend({ from: at.optional(), to: at.optional(), status: Status.optional() });
const daysQuery = z.object({ days: z.coerce.number().int().min(1).max(90).default(30).describe('The window: the last N days (1-90, default 30)') });
const idParams = z.object({ tenant: z.string(), id: z.uuid() });
const Summary = z.object({ date: z.string().describe('The local date (YYYY-MM-DD, tenant time zone)'), text: z.string().describe('What the owner gets by text'), appointments: z.array(AppointmentView) });
const ServiceMix = z.array(z.object({ serviceType: z.string(), appointments: z.number().int(), emergencies: z.number().int(), completed: z.number().int(), cancelled: z.number().int() }));
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'crm is not enabled for the tenant, or no such appointment' } as const;
const tags = ['crm'];
const csv = (description: string) => ({ description, contentType: 'text/csv' });

type Req = Parameters<typeof param>[0] & { body?: unknown; query: Record<string, unknown> };

const parse = <T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> => {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw badRequest(`${what}: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
};

const view = (a: Appointment) => ({ ...a, startsAt: a.startsAt.toISOString(), createdAt: a.createdAt.toISOString(), updatedAt: a.updatedAt.toISOString() });

export function crmRoutes(deps: { store: AppointmentStore; customers: CustomerSync; metrics: CrmMetrics; now: () => Date; tenantOf: (id: string) => TenantInfo | undefined; enabled: (tenantId: string) => boolean }) {
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Req): TenantInfo => {
      const id = param(req, 'tenant');
      const tenant = deps.tenantOf(id);
      if (!tenant || !deps.enabled(id)) throw notFound(`crm is not enabled for tenant "${id}"`);
      return tenant;
    };
    const base = '/v1/tenants/:tenant/crm';

    route(
      { method: 'post', path: `${base}/appointments`, auth: 'tenant', tags, summary: 'Book an appointment', description: "Finds or makes the customer's contact by number (tagged `customer`, no longer `lead`) and keeps its `next_appointment` field current for reminders.", body: createBody, responses: { 201: { description: 'The appointment', schema: z.object({ appointment: AppointmentView }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const b = parse(createBody, req.body, 'Body { customer: { phone, name? }, serviceType, startsAt, emergency?, notes? }');
        const contact = await deps.customers.customerFor(tenant.id, b.customer.phone, b.customer.name ?? null);
        const appointment = await deps.store.create(tenant.id, { contactId: contact.id, customerName: b.customer.name ?? contact.name, phone: b.customer.phone, serviceType: b.serviceType, emergency: b.emergency, startsAt: new Date(b.startsAt), notes: b.notes ?? null });
        await deps.customers.sync(tenant.id, contact.id);
        deps.metrics.scheduled.inc({ tenant: tenant.id, emergency: String(b.emergency) });
        res.status(201).json({ appointment: view(appointment) });
      },
    );

    route(
      { method: 'get', path: `${base}/appointments`, auth: 'tenant', tags, summary: 'Appointments', description: 'By start time, oldest first; `from`/`to` (ISO times) and `status` filter; paged with `limit` and `cursor` (`next`).', query: listQuery, responses: { 200: { description: 'A page of appointments', schema: z.object({ appointments: z.array(AppointmentView), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const q = parse(listQuery, req.query, 'Query (from, to, status, limit, cursor)');
        const rows = await deps.store.list(tenant.id, { from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined, status: q.status, after: q.cursor ? readCursor('crm-appointments', q.cursor, TimeIdKey) : null, limit: q.limit });
        const { items, next } = pageOf(req, 'crm-appointments', rows, q.limit, (r) => [r.sortAt, r.id]);
        res.json({ appointments: items.map(({ sortAt: _s, ...a }) => view(a)), next });
      },
    );

    route(
      { method: 'get', path: `${base}/appointments/:id`, auth: 'tenant', tags, summary: 'One appointment', params: idParams, responses: { 200: { description: 'The appointment', schema: z.object({ appointment: AppointmentView }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const { id } = parse(idParams, req.params, 'Path');
        const appointment = await deps.store.get(tenant.id, id);
        if (!appointment) throw notFound('No such appointment');
        res.json({ appointment: view(appointment) });
      },
    );

    route(
      { method: 'patch', path: `${base}/appointments/:id`, auth: 'tenant', tags, summary: 'Change an appointment', description: "Status (`SCHEDULED`, `CONFIRMED`, `PENDING_RESCHEDULE`, `CANCELLED`, `COMPLETED`), time or notes; the customer's `next_appointment` follows.", params: idParams, body: patchBody, responses: { 200: { description: 'The appointment', schema: z.object({ appointment: AppointmentView }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const { id } = parse(idParams, req.params, 'Path');
        const b = parse(patchBody, req.body, 'Body { status?, startsAt?, notes? }');
        const appointment = await deps.store.update(tenant.id, id, { status: b.status, startsAt: b.startsAt ? new Date(b.startsAt) : undefined, notes: b.notes });
        if (!appointment) throw notFound('No such appointment');
        if (appointment.contactId) await deps.customers.sync(tenant.id, appointment.contactId);
        res.json({ appointment: view(appointment) });
      },
    );

    const tomorrow = async (req: Req) => {
      const tenant = tenantOf(req);
      const now = deps.now();
      const day = new Date(now.getTime() + 86_400_000);
      const appointments = await deps.store.ofLocalDay(tenant.id, tenant.timezone, now, 1);
      return { date: localDate(day, tenant.timezone), text: scheduleText(appointments, day, tenant.timezone, tenant.locale), appointments: appointments.map(view) };
    };
    const tomorrowContract = { auth: 'tenant', tags, summary: "Tomorrow's schedule", description: "The owner's \"schedule tomorrow\" text and the appointments of tomorrow (tenant time zone).", responses: { 200: { description: 'The schedule', schema: Summary } }, errors: [notEnabled] } as const;
    route({ ...tomorrowContract, method: 'get', path: `${base}/owner/schedule/tomorrow` }, async (req, res) => res.json(await tomorrow(req as Req)));
    // The first name of this route, kept answering until its sunset: the model of renaming a route in a plugin.
    route(
      { ...tomorrowContract, method: 'get', path: `${base}/schedule-tomorrow`, summary: "Tomorrow's schedule (deprecated: use /crm/owner/schedule/tomorrow)", deprecated: { since: '2026-12-01', sunset: '2027-06-01', successor: '/v1/tenants/{tenant}/crm/owner/schedule/tomorrow' } },
      async (req, res) => res.json(await tomorrow(req as Req)),
    );

    route(
      { method: 'get', path: `${base}/owner/summary/today`, auth: 'tenant', tags, summary: "Today's summary", description: "The owner's \"summary today\" text, today's counts and appointments (tenant time zone).", responses: { 200: { description: 'The summary', schema: Summary.extend({ counts: z.object({ jobs: z.number().int(), emergencies: z.number().int(), completed: z.number().int(), cancelled: z.number().int(), pendingReschedule: z.number().int() }) }) } }, errors: [notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const now = deps.now();
        const appointments = await deps.store.ofLocalDay(tenant.id, tenant.timezone, now, 0);
        res.json({ date: localDate(now, tenant.timezone), text: summaryText(appointments, now, tenant.timezone, tenant.locale), counts: summaryCounts(appointments), appointments: appointments.map(view) });
      },
    );

    const reschedulesQuery = pageQuery({ defaultLimit: 100 });
    route(
      { method: 'get', path: `${base}/owner/reschedules`, auth: 'tenant', tags, summary: 'Appointments waiting for a new time', description: 'Status `PENDING_RESCHEDULE` (the customer texted RESCHEDULE), by start time; paged with `limit` and `cursor` (`next`).', query: reschedulesQuery, responses: { 200: { description: 'A page of appointments', schema: z.object({ appointments: z.array(AppointmentView), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const q = parse(reschedulesQuery, req.query, 'Query (limit, cursor)');
        const rows = await deps.store.list(tenant.id, { status: 'PENDING_RESCHEDULE', after: q.cursor ? readCursor('crm-reschedules', q.cursor, TimeIdKey) : null, limit: q.limit });
        const { items, next } = pageOf(req, 'crm-reschedules', rows, q.limit, (r) => [r.sortAt, r.id]);
        res.json({ appointments: items.map(({ sortAt: _s, ...a }) => view(a)), next });
      },
    );

    route(
      { method: 'get', path: `${base}/owner/service-mix`, auth: 'tenant', tags, summary: 'Service mix', description: 'Appointments per service type over the last `days` days (emergencies, completed and cancelled counted apart).', query: daysQuery, responses: { 200: { description: 'The mix', schema: z.object({ days: z.number().int(), services: ServiceMix }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const { days } = parse(daysQuery, req.query, 'Query (days 1-90)');
        res.json({ days, services: await deps.store.serviceMix(tenant.id, deps.now(), days) });
      },
    );

    route(
      { method: 'get', path: `${base}/owner/export/service-mix.csv`, auth: 'tenant', tags, summary: 'Service mix as CSV', query: daysQuery, responses: { 200: csv('service_type,appointments,emergencies,completed,cancelled') }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const { days } = parse(daysQuery, req.query, 'Query (days 1-90)');
        const mix = await deps.store.serviceMix(tenant.id, deps.now(), days);
        deps.metrics.exports.inc({ tenant: tenant.id, export: 'service-mix' });
        res.type('text/csv').attachment(`service-mix-${tenant.id}-${days}d.csv`).send(toCsv(['service_type', 'appointments', 'emergencies', 'completed', 'cancelled'], mix.map((m) => [m.serviceType, m.appointments, m.emergencies, m.completed, m.cancelled])));
      },
    );

    route(
      { method: 'get', path: `${base}/owner/export/appointments.csv`, auth: 'tenant', tags, summary: 'Appointments as CSV', description: 'Appointments that started in the last `days` days or start later, by start time (at most 10,000 rows).', query: daysQuery, responses: { 200: csv('id,starts_at,customer_name,phone,service_type,emergency,status,notes') }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenant = tenantOf(req as Req);
        const { days } = parse(daysQuery, req.query, 'Query (days 1-90)');
        const rows = await deps.store.list(tenant.id, { from: new Date(deps.now().getTime() - days * 86_400_000), limit: 10_000 });
        deps.metrics.exports.inc({ tenant: tenant.id, export: 'appointments' });
        res
          .type('text/csv')
          .attachment(`appointments-${tenant.id}-${days}d.csv`)
          .send(toCsv(['id', 'starts_at', 'customer_name', 'phone', 'service_type', 'emergency', 'status', 'notes'], rows.slice(0, 10_000).map((a) => [a.id, a.startsAt, a.customerName, a.phone, a.serviceType, a.emergency, a.status, a.notes])));
      },
    );
  };
}

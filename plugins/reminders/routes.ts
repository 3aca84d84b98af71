/**
 * The reminders API, per tenant (tenant key or operator key):
 * - `/v1/tenants/:tenant/reminders`: list (`?contactId=&all=true`), create, get (with occurrences), `DELETE` cancels.
 * - `/v1/tenants/:tenant/schedules`: list, create, get (with `nextRun`), `PATCH`, `DELETE`, `POST .../pause`,
 *   `POST .../resume`, `POST .../preview` (`{ limit }`: nothing sent), `POST .../run-now`, `GET .../runs`,
 *   `GET /v1/tenants/:tenant/schedules/stats`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { NextPage, PAGE_LIMIT_MAX, ParleyError, TimeIdKey, badRequest, notFound, pageOf, pageQuery, param, readCursor, type RouteHelpers } from 'parley';
import type { ContactsDirectory } from './contacts-api.js';
import { parseCommand, langOf } from './parse.js';
import type { RemindersService, Schedule } from './service.js';
import { MIN_INTERVAL_MINUTES, checkRrule, parseWall, zonedInstant } from './time.js';
import { audienceSchema, type RemindersSettings } from './types.js';

const zone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'not an IANA time zone (e.g. America/New_York)');

const reminderBody = z
  .object({
    contactId: z.string().uuid().optional(),
    channel: z.string().min(1).optional(),
    address: z.string().min(1).max(200).optional(),
    /** What to remind of (the message is "Reminder: <task>" unless `message` is given). */
    task: z.string().min(1).max(300).optional(),
    message: z.string().min(1).max(1600).optional(),
    /** Plain language, as a person would text it: "tomorrow at 3pm", "every day at 8am". */
    when: z.string().min(1).max(300).optional(),
    /** A one-off time: an ISO instant (`2026-03-08T13:00:00Z`) or a local wall time (`2026-03-08T08:00`). */
    at: z.string().min(1).optional(),
    /** Repetition (`FREQ=DAILY`, `FREQ=WEEKLY;BYDAY=MO,TH`), from `at` (local wall time), in `timezone`. */
    rrule: z.string().min(1).max(500).optional(),
    timezone: zone.optional(),
    allowQuietHours: z.boolean().default(false),
  })
  .refine((b) => b.contactId || (b.channel && b.address), 'name the person: contactId, or channel and address')
  .refine((b) => b.when || b.at, 'give "when" (plain language) or "at"');

const scheduleBody = z.object({
  name: z.string().min(1).max(200),
  /** Cron (seed 002's "schedule"): `0 0 1 * *`; or `runAt` for a one-off. */
  schedule: z.string().min(9).max(200).nullable().optional(),
  cron: z.string().min(9).max(200).nullable().optional(),
  runAt: z.coerce.date().nullable().optional(),
  timezone: zone.optional(),
  audience: audienceSchema,
  template: z.string().min(1).max(1600),
  channel: z.string().min(1).max(64),
  max_messages: z.number().int().min(1).max(100_000).optional(),
  maxMessages: z.number().int().min(1).max(100_000).optional(),
  active: z.boolean().default(true),
  /** Default true: recipients in the tenant's quiet hours (their local time) wait until the quiet hours end. */
  respectQuietHours: z.boolean().optional(),
});
const schedulePatch = scheduleBody.partial().extend({ audience: audienceSchema.optional() });
const previewBody = z.object({ limit: z.number().int().min(1).max(100).default(5) });

type Req = Parameters<typeof param>[0] & { body?: unknown; query: Record<string, unknown> };

const ts = z.iso.datetime({ offset: true });
const Reminder = z
  .looseObject({
    id: z.string(),
    tenantId: z.string(),
    contactId: z.string(),
    shortId: z.number().int().describe('The number people cancel it by ("cancel 2")'),
    channel: z.string(),
    task: z.string(),
    message: z.string(),
    timezone: z.string(),
    onceAt: ts.nullable(),
    rrule: z.string().nullable(),
    startLocal: z.string().nullable(),
    allowQuietHours: z.boolean(),
    source: z.string(),
    status: z.enum(['active', 'done', 'cancelled']),
    nextAt: ts.nullable(),
    dueAt: ts.nullable(),
    createdAt: ts,
  })
  .meta({ id: 'Reminder' });
const Schedule = z
  .looseObject({
    id: z.string(),
    tenantId: z.string(),
    name: z.string(),
    cron: z.string().nullable(),
    schedule: z.string().nullable().describe('The same as `cron` (seed 002\'s name)'),
    timezone: z.string(),
    runAt: ts.nullable(),
    audience: z.unknown(),
    template: z.string(),
    channel: z.string(),
    maxMessages: z.number().int(),
    max_messages: z.number().int(),
    active: z.boolean(),
    nextRun: ts.nullable(),
    createdAt: ts,
    updatedAt: ts,
  })
  .meta({ id: 'Schedule', description: 'A scheduled delivery to an audience' });
const Run = z.looseObject({ id: z.string(), status: z.string() }).meta({ id: 'ScheduleRun' });
/** These lists answered in full before paging: their default page is the largest. */
const remindersQuery = pageQuery({ defaultLimit: PAGE_LIMIT_MAX }).extend({ contactId: z.guid('must be a contact id').optional().describe('Only this contact\'s'), all: z.enum(['true', 'false']).optional().describe('With finished and cancelled ones') });
const ReminderKey = z.tuple([z.guid(), z.number().int().min(0).max(2_147_483_647)]);
const schedulesQuery = pageQuery({ defaultLimit: PAGE_LIMIT_MAX });
const runsQuery = pageQuery({ defaultLimit: 50 });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'reminders (with contacts) is not enabled for the tenant, or no such item' } as const;
const rtags = ['reminders'];
const stags = ['schedules'];

const parse = <T extends z.ZodType>(schema: T, value: unknown, hint: string): z.output<T> => {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw badRequest(`${hint}: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
};

const view = (s: Schedule) => ({ ...s, schedule: s.cron, max_messages: s.maxMessages });

export function remindersRoutes(deps: { service: RemindersService; contacts: ContactsDirectory; settingsFor(tenantId: string): RemindersSettings | undefined; tenantZone(tenantId: string): string; now?: () => Date }) {
  const { service, contacts } = deps;
  const now = deps.now ?? (() => new Date());
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Req) => {
      const tenantId = param(req, 'tenant');
      if (!deps.settingsFor(tenantId) || !contacts.enabled(tenantId)) throw notFound(`reminders (with contacts) is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    const wrap = (error: unknown): never => {
      if (error instanceof ParleyError) throw error;
      throw badRequest((error as Error).message);
    };

    // ---- reminders
    const rbase = '/v1/tenants/:tenant/reminders';
    route(
      { method: 'get', path: rbase, auth: 'tenant', tags: rtags, summary: 'Active reminders (all with all=true), of a contact or of everyone', description: 'By contact, then by the number the person sees.', query: remindersQuery, responses: { 200: { description: 'The reminders', schema: z.object({ reminders: z.array(Reminder), count: z.number().int(), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const q = parse(remindersQuery, req.query, 'Query (contactId=<contact id>&all=true|false&limit=1..500&cursor)');
        const after = q.cursor ? readCursor('reminders', q.cursor, ReminderKey) : null;
        const found = await service.listReminders(tenantId, q.contactId, { all: q.all === 'true', limit: q.limit + 1, after });
        const { items, next } = pageOf(req, 'reminders', found, q.limit, (r) => [r.contactId, r.shortId]);
        res.set('cache-control', 'no-store').json({ reminders: items, count: items.length, next });
      },
    );

    route(
      { method: 'post', path: rbase, auth: 'tenant', tags: rtags, summary: 'Set a reminder for a person: in plain language (when) or at a time (at, rrule)', body: reminderBody, bodyExample: { channel: 'twilio-sms', address: '+15551234567', task: 'take your medication', when: 'every day at 8am' }, responses: { 201: { description: 'The reminder', schema: z.object({ reminder: Reminder }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const b = parse(reminderBody, (req as Req).body, 'Body must be { contactId | channel+address, task, when | at (+ rrule), timezone?, allowQuietHours? }');
        const contact = b.contactId ? await contacts.get(tenantId, b.contactId) : await contacts.resolve(tenantId, { channel: b.channel!, address: b.address! }, { source: 'api' });
        if (!contact) throw notFound(`No contact "${b.contactId}"`);
        const address = contacts.addressOn(contact, b.channel);
        if (!address) throw badRequest(`Contact ${contact.id} has no address${b.channel ? ` on ${b.channel}` : ''}`);
        const tz = b.timezone ?? contacts.timezoneOf(contact);
        const lang = langOf(contacts.languageOf(contact));
        const at = now();
        let timing: { once: Date } | { rrule: string; start: NonNullable<ReturnType<typeof parseWall>> };
        let task = b.task;
        if (b.when) {
          const cmd = parseCommand(`${lang === 'es' ? 'recuérdame' : 'remind me'} ${b.task ? `${lang === 'es' ? '' : 'to '}${b.task} ` : ''}${b.when}`, at, tz);
          if (cmd?.kind === 'unclear' && cmd.why === 'too-often') throw badRequest(`"when": reminders repeat at most every ${MIN_INTERVAL_MINUTES} minutes`);
          if (!cmd || cmd.kind !== 'create') throw badRequest(`Could not read "when": ${b.when} (try "tomorrow at 3pm" or "every day at 8am")`);
          timing = cmd.once ? { once: cmd.once } : { rrule: cmd.rrule!, start: cmd.start! };
          task ??= cmd.task;
        } else {
          const wall = parseWall(b.at!);
          if (b.rrule) {
            try {
              checkRrule(b.rrule);
            } catch (error) {
              throw badRequest(`rrule: ${(error as Error).message}`);
            }
            if (!wall) throw badRequest('With "rrule", "at" is the local wall time of the first occurrence: YYYY-MM-DDTHH:mm');
            timing = { rrule: b.rrule, start: wall };
          } else if (wall) {
            timing = { once: zonedInstant(wall, tz) };
          } else {
            const d = new Date(b.at!);
            if (Number.isNaN(d.getTime())) throw badRequest('"at" must be an ISO time (2026-03-08T13:00:00Z) or a local wall time (2026-03-08T08:00)');
            timing = { once: d };
          }
          if ('once' in timing && timing.once.getTime() <= at.getTime()) throw badRequest('"at" is in the past');
        }
        if (!task) throw badRequest('"task" is required');
        const reminder = await service
          .createReminder(tenantId, contact, { task, lang, ...timing, timezone: tz, allowQuietHours: b.allowQuietHours, source: 'api', channel: address.channel, address: address.address, ...(b.message ? { message: b.message } : {}) }, at)
          .catch(wrap);
        res.status(201).json({ reminder });
      },
    );

    route(
      { method: 'get', path: `${rbase}/:id`, auth: 'tenant', tags: rtags, summary: 'One reminder with its occurrences', responses: { 200: { description: 'The reminder', schema: z.object({ reminder: Reminder, occurrences: z.array(z.looseObject({})) }) } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const reminder = await service.getReminder(tenantId, param(req, 'id'));
        if (!reminder) throw notFound(`No reminder "${param(req, 'id')}"`);
        res.set('cache-control', 'no-store').json({ reminder, occurrences: await service.occurrences(tenantId, reminder.id) });
      },
    );

    route(
      { method: 'delete', path: `${rbase}/:id`, auth: 'tenant', tags: rtags, summary: 'Cancel a reminder', responses: { 200: { description: 'The cancelled reminder', schema: z.object({ reminder: Reminder }) } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const reminder = await service.cancelReminder(tenantId, { id: param(req, 'id') });
        if (!reminder) throw notFound(`No active reminder "${param(req, 'id')}"`);
        res.json({ reminder });
      },
    );

    // ---- scheduled deliveries
    const sbase = '/v1/tenants/:tenant/schedules';
    const scheduleOf = async (req: Req) => {
      const tenantId = tenantOf(req);
      const s = await service.getSchedule(tenantId, param(req, 'id'));
      if (!s) throw notFound(`No schedule "${param(req, 'id')}"`);
      return s;
    };

    route(
      { method: 'get', path: sbase, auth: 'tenant', tags: stags, summary: 'Scheduled deliveries', description: 'Oldest first.', query: schedulesQuery, responses: { 200: { description: 'The schedules', schema: z.object({ schedules: z.array(Schedule), count: z.number().int(), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const q = parse(schedulesQuery, req.query, 'Query (limit=1..500&cursor)');
        const after = q.cursor ? readCursor('schedules', q.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, 'schedules', await service.listSchedules(tenantId, { limit: q.limit + 1, after }), q.limit, (r) => [r.sortAt, r.schedule.id]);
        res.set('cache-control', 'no-store').json({ schedules: items.map((r) => view(r.schedule)), count: items.length, next });
      },
    );

    route(
      { method: 'get', path: `${sbase}/stats`, auth: 'tenant', tags: stags, summary: 'Deliveries by channel and status', responses: { 200: { description: 'The stats', schema: z.looseObject({ success: z.literal(true), tenant: z.string(), stats: z.unknown() }) } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const stats = await service.stats(tenantId);
        res.set('cache-control', 'no-store').json({ success: true, tenant: tenantId, ...stats, stats: stats.byChannel });
      },
    );

    route(
      { method: 'post', path: sbase, auth: 'tenant', tags: stags, summary: 'Create a scheduled delivery (cron or one-off runAt) to an audience', body: scheduleBody, bodyExample: { name: 'Flu shots', schedule: '0 9 1 10 *', audience: { tags: ['patients'] }, template: 'Hi {{name}}, flu shots are in.', channel: 'twilio-sms' }, responses: { 201: { description: 'The schedule', schema: z.object({ success: z.literal(true), schedule: Schedule }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const b = parse(scheduleBody, (req as Req).body, 'Body must be { name, schedule (cron) | runAt, timezone?, audience, template, channel, max_messages?, active? }');
        const s = await service
          .createSchedule(tenantId, { name: b.name, cron: b.schedule ?? b.cron ?? null, runAt: b.runAt ?? null, timezone: b.timezone ?? deps.tenantZone(tenantId), audience: b.audience, template: b.template, channel: b.channel, maxMessages: b.max_messages ?? b.maxMessages ?? 50, active: b.active, respectQuietHours: b.respectQuietHours ?? true }, now())
          .catch(wrap);
        res.status(201).json({ success: true, schedule: view(s) });
      },
    );

    route(
      { method: 'get', path: `${sbase}/:id`, auth: 'tenant', tags: stags, summary: 'One schedule with its next run', responses: { 200: { description: 'The schedule', schema: z.object({ schedule: Schedule }) } }, errors: [notEnabled] },
      async (req, res) => {
        const s = await scheduleOf(req as Req);
        res.set('cache-control', 'no-store').json({ schedule: view(s) });
      },
    );

    route(
      { method: 'patch', path: `${sbase}/:id`, auth: 'tenant', tags: stags, summary: 'Change a schedule', body: schedulePatch, bodyExample: { template: 'Hi {{name}}, flu shots are in: walk in any weekday.' }, responses: { 200: { description: 'The schedule', schema: z.object({ schedule: Schedule }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const s = await scheduleOf(req as Req);
        const b = parse(schedulePatch, (req as Req).body, 'Body may have { name, schedule, runAt, timezone, audience, template, channel, max_messages, active }');
        const cron = b.schedule !== undefined ? b.schedule : b.cron;
        const max = b.max_messages ?? b.maxMessages;
        const updated = await service
          .updateSchedule(
            s.tenantId,
            s.id,
            {
              ...(b.name !== undefined ? { name: b.name } : {}),
              ...(cron !== undefined ? { cron } : {}),
              ...(b.runAt !== undefined ? { runAt: b.runAt } : {}),
              ...(b.timezone !== undefined ? { timezone: b.timezone } : {}),
              ...(b.audience !== undefined ? { audience: b.audience } : {}),
              ...(b.template !== undefined ? { template: b.template } : {}),
              ...(b.channel !== undefined ? { channel: b.channel } : {}),
              ...(max !== undefined ? { maxMessages: max } : {}),
              ...(b.respectQuietHours !== undefined ? { respectQuietHours: b.respectQuietHours } : {}),
              ...((req as Req).body && typeof (req as Req).body === 'object' && 'active' in ((req as Req).body as object) ? { active: b.active! } : {}),
            },
            now(),
          )
          .catch(wrap);
        res.json({ schedule: view(updated!) });
      },
    );

    for (const [verb, active] of [
      ['pause', false],
      ['resume', true],
    ] as const) {
      route(
        { method: 'post', path: `${sbase}/:id/${verb}`, auth: 'tenant', tags: stags, summary: `${active ? 'Resume' : 'Pause'} a schedule`, responses: { 200: { description: 'The schedule', schema: z.object({ schedule: Schedule }) } }, errors: [notEnabled] },
        async (req, res) => {
          const s = await scheduleOf(req as Req);
          const updated = await service.updateSchedule(s.tenantId, s.id, { active }, now());
          res.json({ schedule: view(updated!) });
        },
      );
    }

    route(
      { method: 'delete', path: `${sbase}/:id`, auth: 'tenant', tags: stags, summary: 'Delete a schedule', responses: { 204: { description: 'Deleted' } }, errors: [notEnabled] },
      async (req, res) => {
        const s = await scheduleOf(req as Req);
        await service.deleteSchedule(s.tenantId, s.id);
        res.status(204).end();
      },
    );

    route(
      { method: 'post', path: `${sbase}/:id/preview`, auth: 'tenant', tags: stags, summary: 'The next recipients and texts, without sending anything', body: previewBody, bodyExample: { limit: 3 }, responses: { 200: { description: 'The preview', schema: z.looseObject({ success: z.literal(true), preview: z.unknown() }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const s = await scheduleOf(req as Req);
        const b = parse(previewBody, (req as Req).body, 'Body may have { "limit": 1..100 }');
        res.set('cache-control', 'no-store').json({ success: true, preview: await service.preview(s, b.limit, now()) });
      },
    );

    route(
      { method: 'post', path: `${sbase}/:id/run-now`, auth: 'tenant', tags: stags, summary: 'Run a schedule now (once per occurrence)', responses: { 202: { description: 'The run, started', schema: z.object({ success: z.literal(true), run: z.unknown() }) } }, errors: [notEnabled] },
      async (req, res) => {
        const s = await scheduleOf(req as Req);
        const run = await service.runNow(s, now());
        res.status(202).json({ success: true, run });
      },
    );

    route(
      { method: 'get', path: `${sbase}/:id/runs`, auth: 'tenant', tags: stags, summary: 'Runs of a schedule, with their recipients and status', description: 'Newest first.', query: runsQuery, responses: { 200: { description: 'The runs', schema: z.object({ runs: z.array(Run), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const s = await scheduleOf(req as Req);
        const q = parse(runsQuery, req.query, 'Query (limit=1..500&cursor)');
        const after = q.cursor ? readCursor('schedule-runs', q.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, 'schedule-runs', await service.runRecords(s.tenantId, { scheduleId: s.id, limit: q.limit + 1, after }), q.limit, (r) => [r.sortAt, r.id]);
        res.set('cache-control', 'no-store').json({ runs: items.map(({ sortAt: _, ...r }) => r), next });
      },
    );
  };
}

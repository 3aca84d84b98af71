/**
 * examples/telephony-crm (seed 003) end to end: the example's own parley.yaml (with its CRM plugin,
 * loaded by path), booted through the test kit with Twilio on its local fake, through the environment
 * variables the README documents. Calls and texts to the same number signed as Twilio signs them; two
 * businesses with their own keys (`X-API-Key`); appointments booked through the CRM API; 24-hour
 * reminders, lead follow-ups and win-back texts as `reminders` schedules; STOP/START; the owner's
 * "schedule tomorrow" and "summary today" texts; CONFIRM and RESCHEDULE; CSV exports; per-tenant metrics.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, newSid, post, signedSmsRequest, signedWebhook, voiceParams } from './fakes/twilio-webhook.js';
import { spoken, twimlMessages, twimlVerbs } from './fixtures/twilio-twiml.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const EXAMPLE = `${ROOT}examples/telephony-crm/`;
const CONFIG = readFileSync(`${EXAMPLE}parley.yaml`, 'utf8');
const PUBLIC = 'https://plumbing.example';
const BRISTOL_NUMBER = '+15557810000';
const BETA_NUMBER = '+15557820000';
const OWNER = '+15557810999';
const BRISTOL = 'key-bristol-example-0123456789';
const BETA = 'key-beta-example-0123456789abc';
const OPERATOR = 'key-operator-example-0123456789';
const NY = 'America/New_York';

let twilio: FakeTwilio;
let gw: TestGateway;
let n = 0;
const person = () => `+1555032${String(++n).padStart(4, '0')}`;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  gw = await startTestGateway({
    config: CONFIG,
    baseDir: EXAMPLE,
    env: {
      PUBLIC_BASE_URL: PUBLIC,
      PARLEY_OPERATOR_KEY: OPERATOR,
      BRISTOL_API_KEY: BRISTOL,
      BETA_API_KEY: BETA,
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_API_BASE_URL: twilio.baseUrl,
      BRISTOL_PHONE_NUMBER: BRISTOL_NUMBER,
      BETA_PHONE_NUMBER: BETA_NUMBER,
      BRISTOL_OWNER_NUMBER: OWNER,
      SLACK_BOT_TOKEN: '',
    },
  });
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await twilio?.close();
});

/** A text to a business's number, signed as Twilio signs it over the public URL; the TwiML answer's texts. */
async function sms(from: string, body: string, to = BRISTOL_NUMBER): Promise<string[]> {
  const res = await post(signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: PUBLIC, authToken: twilio.authToken, params: inboundSmsParams({ from, to, body, accountSid: twilio.accountSid }) }));
  expect(res.status).toBe(200);
  return twimlMessages(res.text).map((m) => m.body);
}

/** A call to a business's number: the webhooks Twilio sends, signed over the public URL. */
function call(from: string, to = BRISTOL_NUMBER) {
  const callSid = newSid('CA');
  const hook = async (path: string, params: Record<string, string>) => {
    const res = await post(signedWebhook({ url: `${gw.url}${path}`, signedUrl: `${PUBLIC}${path}`, authToken: twilio.authToken, params }));
    expect(res.status).toBe(200);
    return res.text;
  };
  const base = { callSid, from, to, accountSid: twilio.accountSid };
  return {
    start: () => hook('/twilio/voice', voiceParams({ ...base, callStatus: 'ringing' })),
    say: (turn: number, speech: string) => hook(`/twilio/voice/gather?turn=${turn}`, voiceParams({ ...base, speech })),
  };
}

const api = (method: string, path: string, key: string | undefined, body?: unknown) => gw.request(method, path, { ...(key ? { headers: { 'x-api-key': key } } : {}), ...(body !== undefined ? { body } : {}) });

async function contactOf(tenant: string, key: string, phone: string) {
  const r = await gw.request('GET', `/v1/tenants/${tenant}/contacts?q=${encodeURIComponent(phone)}`, { key });
  return r.body.contacts[0] as { id: string; tags: string[]; fields: Record<string, unknown> } | undefined;
}

async function book(phone: string, name: string, startsAt: Date, serviceType = 'leak repair', emergency = false) {
  const r = await api('POST', '/v1/tenants/bristol/crm/appointments', BRISTOL, { customer: { phone, name }, serviceType, startsAt: startsAt.toISOString(), emergency });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.appointment as { id: string; status: string; contactId: string };
}

/** The local time `hours` into the day `days` from today in New York, from the database's time zone rules (DST included). */
async function localTime(days: number, hours = 0): Promise<Date> {
  const { rows } = await gw.gateway.db.pool.query(`SELECT ((date_trunc('day', now() AT TIME ZONE $1) + make_interval(days => $2, hours => $3)) AT TIME ZONE $1) AS at`, [NY, days, hours]);
  return rows[0].at;
}

async function schedule(name: string, audience: Record<string, unknown>, template: string) {
  // respectQuietHours: false so the test does not depend on the hour it runs at (the tenant keeps quiet hours 21:00-08:00 for real runs).
  const r = await api('POST', '/v1/tenants/bristol/schedules', BRISTOL, { name, schedule: '0 * * * *', timezone: NY, audience, template, channel: 'twilio-sms', respectQuietHours: false });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.schedule.id as string;
}

async function runNow(id: string) {
  const r = await api('POST', `/v1/tenants/bristol/schedules/${id}/run-now`, BRISTOL);
  expect(r.status).toBe(202);
  const runId = r.body.run.id as string;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const runs = (await api('GET', `/v1/tenants/bristol/schedules/${id}/runs`, BRISTOL)).body.runs as { id: string; status: string; sent: number; queued: number; skippedOptOut: number; skippedOnce: number }[];
    const run = runs.find((x) => x.id === runId)!;
    if (run.status === 'completed' && run.sent === run.queued) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} stayed ${JSON.stringify(run)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const sentTo = (phone: string) => twilio.sent.filter((m) => m.to === phone).map((m) => m.body);

describe('examples/telephony-crm: seed 003 as a Parley deployment', () => {
  it('passes `parley validate` with nothing set in the environment', () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (/^(TWILIO_|BRISTOL_|BETA_|SLACK_|PARLEY_OPERATOR_KEY|DATABASE_URL|REDIS_URL)/.test(k)) delete env[k];
    const r = spawnSync(process.execPath, [`${ROOT}bin/parley.js`, 'validate', '--config', `${EXAMPLE}parley.yaml`], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr + r.stdout).toMatch(/is valid: 2 tenant\(s\) \(bristol, beta\).*crm/s);
    expect(r.status).toBe(0);
  });

  it('answers a call with a speech gather, replies to what the caller said, and texts on the same number; the caller becomes a lead', async () => {
    const caller = person();
    const c = call(caller);
    const greeting = await c.start();
    expect(spoken(greeting).join(' ')).toContain('Thanks for calling Bristol Plumbing');
    const gather = twimlVerbs(greeting).find((v) => v.verb === 'Gather')!;
    expect(gather.attrs).toMatchObject({ input: expect.stringContaining('speech'), hints: expect.stringContaining('boiler') });
    const turn = await c.say(1, 'hi, I have a leak under my kitchen sink');
    expect(spoken(turn).join(' ')).toContain('Turn off the water at the main valve');
    expect(twimlVerbs(turn).some((v) => v.verb === 'Gather')).toBe(true);
    const text = (await sms(caller, 'can you look at my boiler too?')).join('\n');
    expect(text).toContain('We service boilers and water heaters.');
    expect((await contactOf('bristol', BRISTOL, caller))!.tags).toEqual(['lead']);
    const ready = (await gw.request('GET', '/readyz')).body.components as Record<string, { ok: boolean }>;
    expect(ready['twilio-sms']).toMatchObject({ ok: true });
    expect(ready['twilio-voice']).toMatchObject({ ok: true });
  });

  it('scopes every CRM route by the business key in X-API-Key: 401 without, 403 with the other business\'s key, the operator key reaches both', async () => {
    const path = '/v1/tenants/bristol/crm/appointments';
    expect((await api('GET', path, BRISTOL)).status).toBe(200);
    expect((await api('GET', path, undefined)).status).toBe(401);
    expect((await api('GET', path, BETA)).status).toBe(403);
    expect((await api('GET', path, OPERATOR)).status).toBe(200);
    expect((await api('GET', '/v1/tenants/beta/crm/appointments', BETA)).status).toBe(200);
    // A Bristol appointment is not Beta's, even through Beta's own routes.
    const mine = await book(person(), 'Isolation Test', new Date(Date.now() + 30 * 86_400_000));
    expect((await api('GET', `/v1/tenants/beta/crm/appointments/${mine.id}`, BETA)).status).toBe(404);
  });

  it('books appointments for customers (contacts tagged customer, with their next appointment) and refuses bad input with a reason', async () => {
    const phone = person();
    await sms(phone, 'hello, I need a plumber');
    expect((await contactOf('bristol', BRISTOL, phone))!.tags).toEqual(['lead']);
    const startsAt = new Date(Date.now() + 5 * 86_400_000);
    const a = await book(phone, 'Dana Cole', startsAt, 'drain cleaning');
    expect(a.status).toBe('SCHEDULED');
    const contact = (await contactOf('bristol', BRISTOL, phone))!;
    expect(contact.tags).toEqual(['customer']);
    expect(contact.fields['next_appointment']).toBe(startsAt.toISOString());
    const cancelled = await api('PATCH', `/v1/tenants/bristol/crm/appointments/${a.id}`, BRISTOL, { status: 'CANCELLED' });
    expect(cancelled.body.appointment.status).toBe('CANCELLED');
    expect((await contactOf('bristol', BRISTOL, phone))!.fields['next_appointment']).toBeUndefined();
    const bad = await api('POST', '/v1/tenants/bristol/crm/appointments', BRISTOL, { customer: { phone: '555-1234' }, serviceType: 'x', startsAt: 'tomorrow' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/customer\.phone.*E\.164.*startsAt/s);
  });

  it('sends 24-hour reminders once per appointment, never to a number that texted STOP, and again after START', async () => {
    const [ana, bo] = [person(), person()];
    await book(ana, 'Ana Ruiz', new Date(Date.now() + 20 * 3600_000), 'water heater install');
    await book(bo, 'Bo Chen', new Date(Date.now() + 22 * 3600_000), 'leak repair');
    await book(person(), 'Later Larry', new Date(Date.now() + 60 * 3600_000), 'leak repair');
    expect((await sms(bo, 'STOP')).join(' ')).toMatch(/unsubscribed|opted out|no longer/i);
    const id = await schedule('24-hour reminders', { beforeField: { field: 'next_appointment', hoursBefore: 24 } }, 'Hi {{first_name}}, a reminder of your Bristol Plumbing appointment {{when:next_appointment}}. Reply CONFIRM to confirm or RESCHEDULE for another time.');
    const first = await runNow(id);
    expect(first).toMatchObject({ sent: 1, skippedOptOut: 1 });
    expect(sentTo(ana)).toEqual([expect.stringMatching(/^Hi Ana, a reminder of your Bristol Plumbing appointment .+ Reply CONFIRM/)]);
    expect(sentTo(bo)).toEqual([]);
    // The hourly run comes again: Ana is not reminded twice of the same appointment; Bo is back after START.
    expect((await sms(bo, 'START')).join(' ')).toMatch(/Bristol Plumbing/);
    const second = await runNow(id);
    expect(second).toMatchObject({ recipients: 1, sent: 1 });
    expect(sentTo(ana)).toHaveLength(1);
    expect(sentTo(bo)).toEqual([expect.stringMatching(/^Hi Bo, a reminder/)]);
  });

  it('follows up leads who never booked, and sends win-back texts to customers silent for 180 days', async () => {
    const lead = person();
    const c = call(lead);
    await c.start();
    await c.say(1, 'how much is a boiler service');
    const booked = person();
    await sms(booked, 'hi there');
    await book(booked, 'Booked Betty', new Date(Date.now() + 10 * 86_400_000));
    const followUps = await schedule('lead follow-ups', { tags: ['lead'] }, 'Hi, this is Bristol Plumbing following up on your call. Reply BOOK and we will find you a time.');
    await runNow(followUps);
    expect(sentTo(lead)).toEqual([expect.stringMatching(/^Hi, this is Bristol Plumbing following up on your call\. Reply BOOK and we will find you a time\./)]);
    expect(sentTo(booked)).toEqual([]);

    const [old, recent] = [person(), person()];
    for (const p of [old, recent]) await sms(p, 'thanks for the visit');
    await book(old, 'Olive Old', new Date(Date.now() - 200 * 86_400_000));
    await book(recent, 'Rita Recent', new Date(Date.now() - 20 * 86_400_000));
    // Olive last wrote 181 days ago (the clock cannot be moved in a running gateway; the row can).
    await gw.gateway.db.pool.query(`UPDATE contacts SET last_inbound_at = now() - interval '181 days', last_outbound_at = now() - interval '181 days' WHERE tenant_id = 'bristol' AND id = $1`, [(await contactOf('bristol', BRISTOL, old))!.id]);
    const retention = await schedule('win-back', { tags: ['customer'], sinceLastInboundDays: 180 }, "Hi {{first_name}}, it's been a while! Bristol Plumbing has openings this week.");
    await runNow(retention);
    expect(sentTo(old)).toEqual([expect.stringMatching(/^Hi Olive, it's been a while! Bristol Plumbing has openings this week\./)]);
    expect(sentTo(recent)).toEqual([]);
  });

  it('answers the owner\'s "schedule tomorrow" and "summary today" texts, and a customer\'s CONFIRM and RESCHEDULE', async () => {
    const now = Date.now();
    const [today, tomorrow, tomorrowNoon, tomorrowAfternoon] = await Promise.all([localTime(0), localTime(1), localTime(1, 12), localTime(1, 15)]);
    // A time today (before or after now, whichever part of the day is longer) and one tomorrow at noon.
    const todayAt = now - today.getTime() > tomorrow.getTime() - now ? new Date((today.getTime() + now) / 2) : new Date((now + tomorrow.getTime()) / 2);
    const [cara, dev, eve] = [person(), person(), person()];
    await book(cara, 'Cara Diaz', todayAt, 'boiler service', true);
    const devAppointment = await book(dev, 'Dev Patel', tomorrowNoon, 'water heater install');
    await book(eve, 'Eve Stone', tomorrowAfternoon, 'drain cleaning');
    const schedule = (await sms(OWNER, 'schedule tomorrow')).join('\n');
    expect(schedule).toMatch(/^Tomorrow \(\w{3}, \w{3} \d+\): \d+ jobs?\./);
    expect(schedule).toContain('12:00 PM Dev Patel, water heater install');
    const summary = (await sms(OWNER, 'Summary today')).join('\n');
    expect(summary).toMatch(/^Today \(\w{3}, \w{3} \d+\): \d+ jobs?, \d+ emergenc(y|ies)/);
    expect(summary).toContain('Cara Diaz, boiler service (EMERGENCY)');
    // The same words from anyone else are not the owner's command.
    expect((await sms(person(), 'schedule tomorrow')).join('\n')).not.toContain('Dev Patel');

    const confirmed = (await sms(dev, 'CONFIRM')).join('\n');
    // The first text this number gets carries the opt-out notice after it.
    expect(confirmed).toMatch(/^Thanks, your water heater install appointment on .+ is confirmed\./);
    expect((await api('GET', `/v1/tenants/bristol/crm/appointments/${devAppointment.id}`, BRISTOL)).body.appointment.status).toBe('CONFIRMED');
    expect((await sms(eve, 'reschedule')).join('\n')).toContain("we'll call you to find a new time");
    const pending = await api('GET', '/v1/tenants/bristol/crm/owner/reschedules', BRISTOL);
    expect(pending.body.appointments.map((a: { customerName: string }) => a.customerName)).toContain('Eve Stone');
    const view = await api('GET', '/v1/tenants/bristol/crm/owner/schedule/tomorrow', BRISTOL);
    expect(view.body.text).toContain('Dev Patel, water heater install (confirmed)');
    const old = await api('GET', '/v1/tenants/bristol/crm/schedule-tomorrow', BRISTOL);
    expect(old.body.text).toBe(view.body.text);
    expect(old.headers.get('deprecation')).toBe(`@${Date.parse('2026-12-01') / 1000}`);
    expect(old.headers.get('link')).toBe('</v1/tenants/bristol/crm/owner/schedule/tomorrow>; rel="successor-version"');
  });

  it('exports the service mix and appointments as CSV for the owner, with a days window', async () => {
    const done = await book(person(), 'Gus Past', new Date(Date.now() - 3 * 86_400_000), 'gas line check', true);
    await api('PATCH', `/v1/tenants/bristol/crm/appointments/${done.id}`, BRISTOL, { status: 'COMPLETED' });
    expect((await api('GET', '/v1/tenants/bristol/crm/owner/service-mix?days=365', BRISTOL)).status).toBe(400);
    const mix = await api('GET', '/v1/tenants/bristol/crm/owner/service-mix?days=7', BRISTOL);
    expect(mix.body.services).toContainEqual({ serviceType: 'gas line check', appointments: 1, emergencies: 1, completed: 1, cancelled: 0 });
    const csv = await api('GET', '/v1/tenants/bristol/crm/owner/export/service-mix.csv?days=90', BRISTOL);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('service_type,appointments,emergencies,completed,cancelled');
    expect(lines).toContain('gas line check,1,1,1,0');
    const appointments = await api('GET', '/v1/tenants/bristol/crm/owner/export/appointments.csv?days=30', BRISTOL);
    expect(appointments.text.split('\r\n')[0]).toBe('id,starts_at,customer_name,phone,service_type,emergency,status,notes');
    expect(appointments.text).toMatch(/,Dev Patel,\+1555032\d{4},water heater install,false,CONFIRMED,/);
    expect(appointments.text).not.toContain('Olive Old');
    expect((await api('GET', '/v1/tenants/bristol/crm/owner/export/appointments.csv', BETA)).status).toBe(403);
  });

  it('counts per tenant: messages in by channel, Twilio webhooks, CRM commands and appointments', async () => {
    await sms(person(), 'hello', BETA_NUMBER);
    const m = await gw.metrics();
    expect(m).toMatch(/parley_messages_in_total\{[^}]*tenant="bristol"[^}]*channel="twilio-voice"[^}]*\} [1-9]/);
    expect(m).toMatch(/parley_messages_in_total\{[^}]*tenant="bristol"[^}]*channel="twilio-sms"[^}]*\} [1-9]/);
    expect(m).toMatch(/parley_messages_in_total\{[^}]*tenant="beta"[^}]*channel="twilio-sms"[^}]*\} 1\b/);
    expect(m).toMatch(/parley_crm_sms_commands_total\{tenant="bristol",command="confirm"\} 1/);
    expect(m).toMatch(/parley_crm_appointments\{tenant="bristol",status="CONFIRMED"\} [1-9]/);
    expect(m).toMatch(/parley_twilio_requests_total\{[^}]*tenant="bristol"[^}]*\} [1-9]/);
    expect(m).not.toMatch(/parley_crm_sms_commands_total\{tenant="beta"/);
  });
});

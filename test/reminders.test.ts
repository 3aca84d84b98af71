/**
 * contacts and reminders end to end (embedded, and on PostgreSQL + Redis with PARLEY_TEST_BACKEND=external),
 * with a controllable clock: the real tick is disabled (yearly cron) and the tests call `tick(now)`.
 * Plain-language reminders in English and Spanish; a daily reminder over the DST change; quiet hours;
 * opt-out after scheduling; missed occurrences; CSV import errors; scheduled deliveries with preview,
 * run-now, stats, per-run records, follow-ups once per window; a restart mid-run without duplicates;
 * tenant isolation; data subjects; two instances sending each occurrence once (external backend).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startTestGateway, type TestGateway } from './harness.js';
import { TEST_BACKEND, externalServices } from './backend.js';
import { Gateway } from '../core/gateway.js';
import { parseConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { builtinPlugins } from '../config/builtins.js';
import type { RemindersService } from '../plugins/reminders/index.js';
import type { ContactsDirectory } from '../plugins/contacts/index.js';

const OP = 'key-operator-reminders-0123456789';
const key = (t: string) => `key-${t}-reminders-0123456789`;
const NY = 'America/New_York';
const skip = TEST_BACKEND === 'external' ? await externalServices() : null;

const tenant = (id: string, reminders: Record<string, unknown> = {}) => ({
  id,
  apiKeys: [key(id)],
  timezone: NY,
  pipeline: ['contacts', 'reminders'],
  replyPipeline: ['contacts'],
  plugins: { http: {}, contacts: { defaultChannel: 'http' }, reminders: { ratePerMinute: { http: 2 }, ...reminders } },
});
const config = {
  operator: { apiKeys: [OP] },
  // Audiences are read two contacts a page, so every run here reads several pages.
  plugins: ['http', 'contacts', { name: 'reminders', options: { tickCron: '0 0 1 1 *', audiencePageSize: 2 } }, { name: 'cost-guard', options: { prices: [{ kind: 'messages.out', channel: 'http', usd: 0.001 }] } }],
  // 'other' spaces its sends at one a minute (a slow number), so a test can see the slots.
  // 'other' also links a new address to the contact with the same phone number on another channel.
  tenants: [tenant('clinic'), { ...tenant('other', { throughputPerSecond: { http: 1 / 60 } }), plugins: { ...tenant('other').plugins, contacts: { defaultChannel: 'http', linkSameNumber: true }, reminders: { ratePerMinute: { http: 2 }, throughputPerSecond: { http: 1 / 60 } } } },
    // 'thrifty' has a messaging budget of two sends a day (cost-guard in its reply pipeline).
    { ...tenant('thrifty', { ratePerMinute: { http: 10 } }), replyPipeline: ['cost-guard', 'contacts'], plugins: { ...tenant('thrifty', { ratePerMinute: { http: 10 } }).plugins, 'cost-guard': { budgets: { messaging: { daily: 0.0025 } }, paidSends: 'block' } } },
  ],
};

let gw: TestGateway;
let service: RemindersService;
let contacts: ContactsDirectory;
const bind = (g: TestGateway) => {
  gw = g;
  service = g.gateway.container.resolve(Symbol.for('reminders.service')) as RemindersService;
  contacts = g.gateway.container.resolve(Symbol.for('contacts.directory')) as ContactsDirectory;
};
let n = 0;
const phone = () => `+1555010${String(++n).padStart(4, '0')}`;
const send = (text: string, from: string, t = 'clinic') => gw.send(t, { from, text }, key(t));
const outboxTo = async (to: string) => (await gw.outbox('clinic')).filter((o) => o.to === to && !o.inboundId);
const contactFor = async (address: string) => (await contacts.resolve('clinic', { channel: 'http', address }))!;

beforeAll(async () => {
  if (skip) return;
  bind(await startTestGateway({ config }));
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
}, 60_000);

describe.skipIf(skip)(`contacts and reminders on the ${TEST_BACKEND} backend`, () => {
  it('makes a contact from a conversation and keeps its last inbound and outbound time', async () => {
    const p = phone();
    await send('hello', p);
    const c = await contacts.resolve('clinic', { channel: 'http', address: p }, { create: false });
    expect(c).toMatchObject({ source: 'conversation', addresses: [{ channel: 'http', address: p }] });
    expect(c!.lastInboundAt).toBeInstanceOf(Date);
    const r = await gw.request('GET', `/v1/tenants/clinic/contacts/${c!.id}`, { key: key('clinic') });
    expect(r.body.contact).toMatchObject({ effectiveTimezone: NY, consent: [{ channel: 'http', address: p, optedOut: false }] });
  });

  it('confirms an English reminder set by text, lists it and cancels it by its short id', async () => {
    const p = phone();
    const a = await send('remind me to take my pills every day at 8am', p);
    expect(a.replies[0]!.text).toMatch(/^OK, reminder #1: "take my pills" every day at 8:00\sAM \(America\/New_York\)\./);
    const b = await send('Remind me tomorrow at 3pm to call the pharmacy', p);
    expect(b.replies[0]!.text).toMatch(/^OK, reminder #2: "call the pharmacy" on \w+, \w+ \d+ at 3:00\sPM \(America\/New_York\)/);
    const list = await send('my reminders', p);
    expect(list.replies[0]!.text).toMatch(/#1 take my pills: every day at 8:00\sAM\n#2 call the pharmacy: on /);
    expect((await send('cancel 2', p)).replies[0]!.text).toBe('Cancelled reminder #2 ("call the pharmacy").');
    expect((await send('cancel 7', p)).replies[0]!.text).toMatch(/no active reminder #7/);
    expect((await send('stop reminders', p)).replies[0]!.text).toBe('Cancelled all 1 of your reminders.');
    expect((await send('remind me to call', p)).replies[0]!.text).toMatch(/could not tell when/);
    expect(await service.listReminders('clinic', (await contactFor(p)).id)).toEqual([]);
    // The confirmations went out through the reply stage: the contact's last outbound time is kept.
    expect((await contactFor(p)).lastOutboundAt).toBeInstanceOf(Date);
  });

  it('confirms a Spanish reminder in Spanish and remembers the language', async () => {
    const p = phone();
    const a = await send('Recuérdame mañana a las 3pm llamar a la farmacia', p);
    expect(a.replies[0]!.text).toMatch(/^Listo, recordatorio #1: "llamar a la farmacia" el \S+, \d+ de \S+ a las 15:00 \(America\/New_York\)\. Responde "mis recordatorios"/);
    const b = await send('recuérdame tomar mis pastillas todos los días a las 8', p);
    expect(b.replies[0]!.text).toMatch(/^Listo, recordatorio #2: "tomar mis pastillas" todos los días a las 8:00/);
    expect((await send('mis recordatorios', p)).replies[0]!.text).toMatch(/^Tus recordatorios:\n#1 llamar a la farmacia/);
    expect((await send('cancelar 1', p)).replies[0]!.text).toBe('Recordatorio #1 cancelado ("llamar a la farmacia").');
    expect((await contactFor(p)).language).toBe('es');
    const [r] = await service.listReminders('clinic', (await contactFor(p)).id);
    expect(r!.message).toBe('Recordatorio: tomar tus pastillas');
  });

  it('makes one reminder, and cancels once, when the recovery sweep runs the same message again', async () => {
    const p = phone();
    const inboundOf = async (text: string) => {
      const { rows } = await gw.gateway.db.pool.query(`SELECT id FROM parley_inbound WHERE tenant_id = 'clinic' AND from_address = $1 AND body = $2`, [p, text]);
      expect(rows).toHaveLength(1);
      return rows[0].id as string;
    };
    // As if the process died after the stage acted but before the run let go of the message: its claim
    // is still there, stale, and the sweep runs the message again under a new claim.
    const rerun = async (inboundId: string) => {
      await gw.gateway.db.pool.query(`INSERT INTO parley_inbound_claims (inbound_id, tenant_id, claimed_at) VALUES ($1, 'clinic', now() - interval '1 hour')`, [inboundId]);
      expect(await gw.gateway.recoverInbound('1 minute')).toBe(1);
    };
    const text = 'remind me to water the plants every day at 9am';
    const first = await send(text, p);
    expect(first.replies[0]!.text).toMatch(/^OK, reminder #1: "water the plants" every day at 9:00/);
    await rerun(await inboundOf(text));
    const c = await contactFor(p);
    expect((await service.listReminders('clinic', c.id, { all: true })).map((r) => [r.shortId, r.task])).toEqual([[1, 'water the plants']]);

    await send('remind me tomorrow at 3pm to call the pharmacy', p);
    await send('cancel 2', p);
    await rerun(await inboundOf('cancel 2'));
    const all = await service.listReminders('clinic', c.id, { all: true });
    expect(all.map((r) => [r.shortId, r.status])).toEqual([[1, 'active'], [2, 'cancelled']]);
    // The second run answers as the first did, never "no active reminder #2".
    const cancelReplies = (await gw.outbox('clinic')).filter((o) => o.to === p && /#2/.test(o.text ?? ''));
    expect(cancelReplies.length).toBeGreaterThan(0);
    expect(cancelReplies.filter((o) => /no active/.test(o.text ?? ''))).toEqual([]);
    // The service keys by message id for any caller.
    expect(await service.createReminder('clinic', c, { task: 'again', lang: 'en', once: new Date(Date.now() + 86400_000), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p, sourceMessageId: all[0]!.id }, new Date())).toMatchObject({ shortId: 3 });
    expect((await service.createReminder('clinic', c, { task: 'again', lang: 'en', once: new Date(Date.now() + 86400_000), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p, sourceMessageId: all[0]!.id }, new Date())).shortId).toBe(3);
    await service.cancelAll('clinic', c.id);
  });

  it('sends a daily 08:00 reminder at 08:00 local on both sides of the DST change, once per occurrence', async () => {
    const p = phone();
    const c = await contactFor(p);
    const r = await service.createReminder('clinic', c, { task: 'take your pills', lang: 'en', rrule: 'FREQ=DAILY', start: { year: 2027, month: 3, day: 13, hour: 8, minute: 0 }, timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2027-03-13T00:00:00Z'));
    expect(r.nextAt!.toISOString()).toBe('2027-03-13T13:00:00.000Z');
    await service.tick(new Date('2027-03-13T12:59:00Z'));
    expect(await outboxTo(p)).toHaveLength(0);
    await service.tick(new Date('2027-03-13T13:00:20Z'));
    await service.tick(new Date('2027-03-13T13:00:40Z'));
    await service.tick(new Date('2027-03-14T12:00:10Z'));
    await service.tick(new Date('2027-03-14T12:00:10Z'));
    const items = await outboxTo(p);
    expect(items.map((i) => i.text)).toEqual(['Reminder: take your pills', 'Reminder: take your pills']);
    expect((await service.occurrences('clinic', r.id)).map((o) => o.occurrenceAt.toISOString())).toEqual(['2027-03-13T13:00:00.000Z', '2027-03-14T12:00:00.000Z']);
    expect((await service.getReminder('clinic', r.id))!.nextAt!.toISOString()).toBe('2027-03-15T12:00:00.000Z');
  });

  it('reads every N hours, other days, monthly days and end dates by text, and sends an hourly rule once after quiet hours', async () => {
    const p = phone();
    const a = await send('remind me to drink water every 2 hours for 3 days', p);
    expect(a.replies[0]!.text).toMatch(/^OK, reminder #1: "drink water" every 2 hours, next at \d+:\d\d\s[AP]M, until \w+, \w+ \d+ \(America\/New_York\)\./);
    const b = await send('recuérdame pagar el alquiler el día 1 de cada mes a las 9', p);
    expect(b.replies[0]!.text).toMatch(/^Listo, recordatorio #2: "pagar el alquiler" cada mes el día 1 a las 9:00/);
    const c = await send('remind me every monday and thursday at 6pm to go to the gym', p);
    expect(c.replies[0]!.text).toMatch(/^OK, reminder #3: "go to the gym" every Monday and Thursday at 6:00\sPM/);
    expect((await send('my reminders', p)).replies[0]!.text).toMatch(/#1 drink water: every 2 hours, next at .*, until .*\n#2 pagar el alquiler: every month on the 1st at 9:00\sAM\n#3 go to the gym: every Monday and Thursday/);
    await send('stop reminders', p);

    const q = phone();
    const r = await service.createReminder('clinic', await contactFor(q), { task: 'turn over', lang: 'en', rrule: 'FREQ=HOURLY;INTERVAL=2', start: { year: 2027, month: 8, day: 1, hour: 20, minute: 0 }, timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: q }, new Date('2027-08-01T12:00:00Z'));
    for (const at of ['2027-08-02T00:00:30Z', '2027-08-02T02:00:30Z', '2027-08-02T06:00:30Z', '2027-08-02T12:00:30Z', '2027-08-02T12:30:00Z', '2027-08-02T14:00:30Z']) await service.tick(new Date(at));
    // 20:00 goes; 22:00 to 08:00 are quiet and become one send at 08:00; then 10:00.
    expect((await service.occurrences('clinic', r.id)).map((o) => [o.occurrenceAt.toISOString(), o.status])).toEqual([
      ['2027-08-02T00:00:00.000Z', 'queued'],
      ['2027-08-02T02:00:00.000Z', 'queued'],
      ['2027-08-02T14:00:00.000Z', 'queued'],
    ]);
    expect(await outboxTo(q)).toHaveLength(3);
    await service.cancelReminder('clinic', { id: r.id });
  });

  it('reads two times a day, minutes, months, a weekday of the month and a count by text, and sends the two times of one reminder', async () => {
    const p = phone();
    const a = await send('remind me to take my pills every day at 8am and 8pm', p);
    expect(a.replies[0]!.text).toMatch(/^OK, reminder #1: "take my pills" every day at 8:00\sAM and 8:00\sPM \(America\/New_York\)\./);
    expect((await send('remind me every 10 minutes to stretch', p)).replies[0]!.text).toBe('Reminders can repeat at most every 15 minutes. Try "every 30 minutes" or "every hour".');
    expect((await send('recuérdame estirar cada 30 minutos 4 veces', p)).replies[0]!.text).toMatch(/^Listo, recordatorio #2: "estirar" cada 30 minutos, el próximo a las \d+:\d\d, 4 veces \(America\/New_York\)/);
    expect((await send('remind me on the first Monday of every month at 9am to pay rent', p)).replies[0]!.text).toMatch(/^OK, reminder #3: "pay rent" on the first Monday of every month at 9:00\sAM, next on Monday, \w+ [1-7] \(/);
    expect((await send('remind me every 2 months at 10am to check the smoke alarm', p)).replies[0]!.text).toMatch(/^OK, reminder #4: "check the smoke alarm" every other month at 10:00\sAM, next on /);
    const [twice] = await service.listReminders('clinic', (await contactFor(p)).id);
    expect(twice!.rrule).toBe('FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0;BYSECOND=0');
    // Two ticks at the next two occurrences: one reminder, one message at each of its two times.
    const first = twice!.nextAt!;
    await service.tick(new Date(first.getTime() + 10_000));
    const second = (await service.getReminder('clinic', twice!.id))!.nextAt!;
    await service.tick(new Date(second.getTime() + 10_000));
    const hours = (await service.occurrences('clinic', twice!.id)).map((o) => new Intl.DateTimeFormat('en-US', { timeZone: NY, hour: 'numeric', hourCycle: 'h23' }).format(o.occurrenceAt));
    expect(hours.sort()).toEqual(['08', '20']);
    expect((await outboxTo(p)).filter((i) => i.text === 'Reminder: take your pills')).toHaveLength(2);
    await send('stop reminders', p);
  });

  it('holds a send inside quiet hours until they end, unless the reminder asks for it', async () => {
    const p = phone();
    const c = await contactFor(p);
    const at = new Date('2027-04-02T02:00:00Z'); // 22:00 EDT
    const quiet = await service.createReminder('clinic', c, { task: 'quiet', lang: 'en', once: at, timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2027-04-01T12:00:00Z'));
    await service.createReminder('clinic', c, { task: 'loud', lang: 'en', once: at, timezone: NY, allowQuietHours: true, source: 'api', channel: 'http', address: p }, new Date('2027-04-01T12:00:00Z'));
    expect(quiet.dueAt!.toISOString()).toBe('2027-04-02T12:00:00.000Z');
    await service.tick(new Date('2027-04-02T02:00:30Z'));
    expect((await outboxTo(p)).map((i) => i.text)).toEqual(['Reminder: loud']);
    await service.tick(new Date('2027-04-02T11:59:00Z'));
    expect(await outboxTo(p)).toHaveLength(1);
    await service.tick(new Date('2027-04-02T12:00:30Z'));
    expect((await outboxTo(p)).map((i) => i.text)).toEqual(['Reminder: loud', 'Reminder: quiet']);
  });

  it('does not send to a person who opted out after the reminder was made, and skips occurrences found too late', async () => {
    const p = phone();
    const c = await contactFor(p);
    await service.createReminder('clinic', c, { task: 'refill', lang: 'en', once: new Date('2027-05-01T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2027-04-30T12:00:00Z'));
    await gw.gateway.consent.set({ tenantId: 'clinic', address: p, status: 'opted-out', source: 'test' });
    await service.tick(new Date('2027-05-01T15:00:30Z'));
    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === p && i.status === 'blocked'), 20_000);
    expect(items.filter((i) => i.to === p).map((i) => [i.status, i.errorCode])).toEqual([['blocked', 'opted-out']]);

    const q = phone();
    const late = await service.createReminder('clinic', await contactFor(q), { task: 'late', lang: 'en', rrule: 'FREQ=DAILY', start: { year: 2027, month: 5, day: 1, hour: 10, minute: 0 }, timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: q }, new Date('2027-05-01T00:00:00Z'));
    // Down from before 10:00 on May 1 until 13:30 on May 2 (grace 60 minutes): May 1 is missed, May 2 goes late.
    await service.tick(new Date('2027-05-02T14:30:00Z'));
    expect((await service.occurrences('clinic', late.id)).map((o) => [o.occurrenceAt.toISOString(), o.status])).toEqual([
      ['2027-05-01T14:00:00.000Z', 'missed'],
      ['2027-05-02T14:00:00.000Z', 'queued'],
    ]);
    expect(await outboxTo(q)).toHaveLength(1);
  });

  it('lets no occurrence out when a cancellation lands between the tick reading a reminder and sending it', async () => {
    const p = phone();
    const c = await contactFor(p);
    const r = await service.createReminder('clinic', c, { task: 'raced', lang: 'en', once: new Date('2027-07-01T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2027-06-30T12:00:00Z'));
    // The tick has read the due reminders; before it sends, the person's "cancel" commits.
    const pool = gw.gateway.db.pool;
    const query = pool.query.bind(pool) as (...a: unknown[]) => Promise<unknown>;
    let raced = false;
    (pool as { query: unknown }).query = async (...args: unknown[]) => {
      const result = await query(...args);
      if (!raced && typeof args[0] === 'string' && args[0].startsWith('SELECT * FROM reminders WHERE status = \'active\' AND due_at')) {
        raced = true;
        expect(await service.cancelReminder('clinic', { id: r.id })).toMatchObject({ status: 'cancelled' });
      }
      return result;
    };
    try {
      await service.tick(new Date('2027-07-01T15:00:30Z'));
    } finally {
      (pool as { query: unknown }).query = query;
    }
    expect(raced).toBe(true);
    expect(await outboxTo(p)).toEqual([]);
    expect(await service.occurrences('clinic', r.id)).toEqual([]);

    // A claim a crash left behind (taken, not yet sent) is taken again by the next tick, and sent once.
    const q = phone();
    const s = await service.createReminder('clinic', await contactFor(q), { task: 'crashed', lang: 'en', once: new Date('2027-07-01T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: q }, new Date('2027-06-30T12:00:00Z'));
    await pool.query(`INSERT INTO reminder_occurrences (reminder_id, tenant_id, occurrence_at, status) VALUES ($1, 'clinic', $2, 'claimed')`, [s.id, s.nextAt]);
    await service.tick(new Date('2027-07-01T15:00:40Z'));
    await service.tick(new Date('2027-07-01T15:00:50Z'));
    expect((await outboxTo(q)).map((i) => i.text)).toEqual(['Reminder: crashed']);
    expect((await service.occurrences('clinic', s.id)).map((o) => o.status)).toEqual(['queued']);
    expect((await service.getReminder('clinic', s.id))!.status).toBe('done');
  });

  it('withdraws a queued reminder message that has not gone yet when the reminder is cancelled, by text or in the middle of a tick', async () => {
    const pool = gw.gateway.db.pool;
    // The occurrence's outbox item, stored ahead with a send job that waits ten minutes: as if the
    // tick had queued it and the send job had not run yet (the tick finds this item by its key).
    const waiting = (r: { id: string; nextAt: Date | null }, to: string) =>
      gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'http', to, text: 'Reminder: waiting', idempotencyKey: `reminder:${r.id}:${r.nextAt!.toISOString()}`, delayMs: 600_000 });

    // By text, after the tick queued a one-off (it is done once queued): "cancel 1" still stops it.
    const p = phone();
    await send('hello', p);
    const once = await service.createReminder('clinic', await contactFor(p), { task: 'call back', lang: 'en', once: new Date('2027-08-01T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2027-07-31T12:00:00Z'));
    const item = await waiting(once, p);
    await service.tick(new Date('2027-08-01T15:00:20Z'));
    expect((await service.getReminder('clinic', once.id))!.status).toBe('done');
    expect((await send(`cancel ${once.shortId}`, p)).replies[0]!.text).toBe(`Cancelled reminder #${once.shortId} ("call back").`);
    expect((await gw.outbox('clinic')).find((i) => i.id === item.id)).toMatchObject({ status: 'blocked', errorCode: 'cancelled', error: 'the reminder was cancelled' });
    expect((await service.occurrences('clinic', once.id)).map((o) => [o.status, o.outboxStatus])).toEqual([['queued', 'blocked']]);

    // In the middle of a tick: the cancel commits after the tick claimed the occurrence, before it queued it.
    const q = phone();
    const raced = await service.createReminder('clinic', await contactFor(q), { task: 'raced late', lang: 'en', once: new Date('2027-08-02T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: q }, new Date('2027-07-31T12:00:00Z'));
    const late = await waiting(raced, q);
    const query = pool.query.bind(pool) as (...a: unknown[]) => Promise<unknown>;
    let cancelled = false;
    (pool as { query: unknown }).query = async (...args: unknown[]) => {
      const result = await query(...args);
      if (!cancelled && typeof args[0] === 'string' && args[0].startsWith('WITH live AS') && (args[1] as unknown[])[1] === raced.id) {
        cancelled = true;
        expect(await service.cancelReminder('clinic', { id: raced.id })).toMatchObject({ status: 'cancelled' });
      }
      return result;
    };
    try {
      await service.tick(new Date('2027-08-02T15:00:20Z'));
    } finally {
      (pool as { query: unknown }).query = query;
    }
    expect(cancelled).toBe(true);
    expect((await gw.outbox('clinic')).find((i) => i.id === late.id)).toMatchObject({ status: 'blocked', errorCode: 'cancelled' });
    // A message the channel already took cannot be called back: withdrawing it changes nothing.
    const reply = (await gw.outbox('clinic')).find((i) => i.to === p && i.status === 'sent')!; // the inline answer to "cancel 1"
    expect(await gw.gateway.cancelOutbound('clinic', reply.id, 'too late')).toMatchObject({ changed: false, item: { status: 'sent' } });
  });

  it('imports contacts from CSV with a dry run and an error for each bad row', async () => {
    const csv = [
      'name,phone,timezone,language,tags,plan,appointment_at',
      'Ana Ruiz,+15550190001,America/Chicago,es,vip;retail,gold,',
      'Bob Li,+15550190002,,,vip,silver,',
      'Cy,not-a-number,Mars/Base,xx-invalid-tag-1234567,vip,,',
      'Di,+15550190004,,,vip,gold,',
      'Ed,+15550190005,,,vip,gold,',
      'Flo,+15550190002,,,vip,,',
      'Gus,+15550190007,,,other,,',
    ].join('\n');
    const dry = await gw.request('POST', '/v1/tenants/clinic/contacts/import', { key: key('clinic'), body: { csv, dryRun: true } });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, created: 5, updated: 0, failed: 2 });
    expect(dry.body.errors.map((e: { line: number }) => e.line)).toEqual([4, 7]);
    expect(dry.body.errors[0].errors).toHaveLength(3);
    expect((await contacts.search('clinic', { tags: ['vip'] })).total).toBe(0);
    const real = await gw.request('POST', '/v1/tenants/clinic/contacts/import', { key: key('clinic'), body: { csv } });
    expect(real.status).toBe(201);
    expect(real.body).toMatchObject({ dryRun: false, created: 5, failed: 2 });
    const vip = await gw.request('GET', '/v1/tenants/clinic/contacts?tag=vip&field.plan=gold', { key: key('clinic') });
    expect(vip.body.contacts.map((c: { name: string }) => c.name)).toEqual(['Ana Ruiz', 'Di', 'Ed']);
    const again = await gw.request('POST', '/v1/tenants/clinic/contacts/import', { key: key('clinic'), body: { csv: 'phone,tags\n+15550190007,vip' } });
    expect(again.body).toMatchObject({ created: 0, updated: 1 });
    expect((await contacts.resolve('clinic', { channel: 'http', address: '+15550190007' }, { create: false }))!.tags).toEqual(['other', 'vip']);
  });

  let scheduleId: string;
  it('previews a schedule without sending, with the rendered messages and the count', async () => {
    await gw.gateway.consent.set({ tenantId: 'clinic', address: '+15550190004', status: 'opted-out', source: 'test' });
    const before = (await gw.outbox('clinic')).length;
    const created = await gw.request('POST', '/v1/tenants/clinic/schedules', {
      key: key('clinic'),
      // Midnight is inside the default quiet hours; this schedule is about rate, restarts and run-now, so it opts out.
      body: { name: 'vip monthly', schedule: '0 0 1 * *', timezone: NY, audience: { tags: ['vip'] }, template: 'Hi {{first_name|there}}, your {{plan|basic}} plan renews soon.', channel: 'http', max_messages: 10, respectQuietHours: false },
    });
    expect(created.status).toBe(201);
    expect(created.body.schedule).toMatchObject({ schedule: '0 0 1 * *', active: true, max_messages: 10, respectQuietHours: false });
    scheduleId = created.body.schedule.id;
    const got = await gw.request('GET', `/v1/tenants/clinic/schedules/${scheduleId}`, { key: key('clinic') });
    expect(got.body.schedule.nextRun).toBe('2027-01-01T05:00:00.000Z');
    const preview = await gw.request('POST', `/v1/tenants/clinic/schedules/${scheduleId}/preview`, { key: key('clinic'), body: { limit: 2 } });
    expect(preview.body.preview).toMatchObject({ count: 4, audience: 5, skippedOptOut: 1, note: 'This is a preview. No actual delivery will be made.' });
    expect(preview.body.preview.messages.map((m: { text: string }) => m.text)).toEqual(['Hi Ana, your gold plan renews soon.', 'Hi Bob, your silver plan renews soon.']);
    expect((await gw.outbox('clinic')).length).toBe(before);
  });

  it('runs a schedule at its time at the channel rate, resumes after a restart mid-run, and sends each recipient once', async () => {
    const runAt = new Date('2027-01-01T05:00:00Z');
    await service.tick(new Date(runAt.getTime() + 10_000));
    let [run] = await service.runRecords('clinic', { scheduleId });
    expect(run).toMatchObject({ trigger: 'schedule', status: 'sending', recipients: 5, queued: 2, pending: 2, skippedOptOut: 1 });
    const stopped = gw;
    await stopped.gateway.stop();
    bind(await startTestGateway({ config, dataDir: stopped.dataDir, ...(stopped.databaseUrl ? { databaseUrl: stopped.databaseUrl } : {}) }));
    // A send cut off between the outbox write and the recipient's row: the next tick must find the same item.
    const { rows } = await gw.gateway.db.pool.query(`SELECT contact_id, address FROM delivery_recipients WHERE run_id = $1 AND status = 'pending' ORDER BY contact_id LIMIT 1`, [run!.id]);
    const early = await gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'http', to: rows[0].address, text: 'cut off', idempotencyKey: `delivery:${run!.id}:${rows[0].contact_id}` });
    await service.tick(new Date(runAt.getTime() + 70_000));
    await service.tick(new Date(runAt.getTime() + 130_000));
    await service.tick(new Date(runAt.getTime() + 130_000));
    [run] = await service.runRecords('clinic', { scheduleId });
    expect(run).toMatchObject({ status: 'completed', recipients: 5, queued: 4, pending: 0, skippedOptOut: 1 });
    const items = (await gw.outbox('clinic')).filter((i) => (i.options as { run?: string }).run === run!.id || i.id === early.id);
    expect(items).toHaveLength(4);
    expect(new Set(items.map((i) => i.to)).size).toBe(4);
    expect(items.find((i) => i.id === early.id)!.text).toBe('cut off');
    const s = await gw.request('GET', `/v1/tenants/clinic/schedules/${scheduleId}`, { key: key('clinic') });
    expect(s.body.schedule.nextRun).toBe('2027-02-01T05:00:00.000Z');
  }, 120_000);

  it("spaces a run's sends at the channel's throughput, each send job waiting for its slot, and the next tick after the last slot", async () => {
    const T = new Date('2027-09-01T15:00:00Z');
    for (const name of ['Pia', 'Quin', 'Rosa']) {
      const made = await gw.request('POST', '/v1/tenants/other/contacts', { key: key('other'), body: { name, tags: ['paced'], addresses: [{ channel: 'http', address: phone() }] } });
      expect(made.status).toBe(201);
    }
    const schedule = await service.createSchedule('other', { name: 'paced', runAt: new Date('2030-01-01T00:00:00Z'), timezone: NY, audience: { tags: ['paced'] }, template: 'Hi {{name}}', channel: 'http', maxMessages: 10, active: true, respectQuietHours: false }, T);
    const run = await service.runNow(schedule, T);
    expect(run).toMatchObject({ recipients: 3, queued: 2, pending: 1 }); // ratePerMinute 2
    await service.tick(new Date(T.getTime() + 60_000));
    const { rows } = await gw.gateway.db.pool.query(`SELECT send_at, outbox_id FROM delivery_recipients WHERE run_id = $1 ORDER BY send_at`, [run.id]);
    // One a minute: the second waits a minute after the first; the tick a minute later starts after the last slot taken.
    expect(rows.map((r) => (r.send_at as Date).getTime() - T.getTime())).toEqual([0, 60_000, 120_000]);
    const states = [];
    for (const r of rows) states.push((await gw.gateway.jobs.findPayloads([r.outbox_id as string])).map((j) => j.state));
    expect(states[0]).not.toContain('delayed');
    expect(states.slice(1)).toEqual([['delayed'], ['delayed']]);
    await service.deleteSchedule('other', schedule.id);
  });

  it('reads an audience a page at a time, and a selection cut off after a page goes on from the last contact read', async () => {
    const made: string[] = [];
    for (const name of ['Uma', 'Vic', 'Wen', 'Xia', 'Yan']) made.push((await gw.request('POST', '/v1/tenants/clinic/contacts', { key: key('clinic'), body: { name, tags: ['paged'], addresses: [{ channel: 'http', address: phone() }] } })).body.contact.id);
    const schedule = await service.createSchedule('clinic', { name: 'paged', runAt: new Date('2030-01-01T00:00:00Z'), timezone: NY, audience: { tags: ['paged'] }, template: 'Hi {{name}}', channel: 'http', maxMessages: 4, active: true, respectQuietHours: false }, new Date('2027-11-01T12:00:00Z'));
    const pages: { limit?: number; after?: string }[] = [];
    const search = contacts.search.bind(contacts);
    let cut = true;
    contacts.search = async (tenantId, q) => {
      pages.push({ limit: q.limit, ...(q.after ? { after: Array.isArray(q.after) ? q.after[1] : (q.after as { id: string }).id } : {}) });
      // The process "dies" while reading the second page.
      if (pages.length === 2 && cut) throw new Error('cut off');
      return search(tenantId, q);
    };
    try {
      const run = await service.runNow(schedule, new Date('2027-11-01T12:00:00Z'));
      expect(run.status).toBe('failed');
      // As if the process had died rather than failed: the run is still selecting, with what it had chosen.
      await gw.gateway.db.pool.query(`UPDATE delivery_runs SET status = 'selecting', error = NULL, finished_at = NULL WHERE id = $1`, [run.id]);
      cut = false;
      await service.tick(new Date('2027-11-01T12:01:00Z'));
      const { rows } = await gw.gateway.db.pool.query(`SELECT contact_id FROM delivery_recipients WHERE run_id = $1 ORDER BY contact_id`, [run.id]);
      // The first page's two, then the rest after the last contact read, up to the cap of four: each once.
      expect(rows.map((r) => r.contact_id)).toEqual(made.slice(0, 4).sort());
      expect(pages.every((p) => p.limit === 2)).toBe(true);
      expect(pages.slice(0, 3)).toEqual([{ limit: 2 }, { limit: 2, after: made[1] }, { limit: 2, after: made[1] }]);
      expect((await service.runRecord('clinic', run.id))!).toMatchObject({ recipients: 4, status: 'sending' });
    } finally {
      contacts.search = search;
    }
    await service.deleteSchedule('clinic', schedule.id);
  });

  it("stops a run when cost-guard refuses a send for the budget: the run is 'budget', the rest skipped, not queued to be refused", async () => {
    for (const name of ['Ann', 'Ben', 'Cat', 'Dan', 'Eve']) {
      expect((await gw.request('POST', '/v1/tenants/thrifty/contacts', { key: key('thrifty'), body: { name, tags: ['all'], addresses: [{ channel: 'http', address: phone() }] } })).status).toBe(201);
    }
    const at = new Date('2027-12-01T15:00:00Z');
    const schedule = await service.createSchedule('thrifty', { name: 'newsletter', runAt: new Date('2030-01-01T00:00:00Z'), timezone: NY, audience: { tags: ['all'] }, template: 'News for {{name}}', channel: 'http', maxMessages: 10, active: true, respectQuietHours: false }, at);
    const run = await service.runNow(schedule, at);
    // Two sends fit ($0.001 each of $0.0025); the third is refused and the run stops there.
    expect(run).toMatchObject({ status: 'budget', recipients: 5, queued: 3, pending: 0, skippedBudget: 2 });
    expect(run.error).toMatch(/cost-guard: the daily messaging budget .* is spent/);
    const items = (await gw.outbox('thrifty')).filter((i) => (i.options as { run?: string }).run === run.id);
    expect(items.map((i) => i.status).filter((st) => st === 'blocked')).toHaveLength(1);
    expect(items).toHaveLength(3);
    // A later tick does not take the stopped run up again.
    await service.tick(new Date(at.getTime() + 60_000));
    expect(await service.runRecord('thrifty', run.id)).toMatchObject({ status: 'budget', queued: 3, skippedBudget: 2 });
    expect((await gw.request('GET', '/v1/tenants/thrifty/schedules/stats', { key: key('thrifty') })).body).toMatchObject({ budgetStoppedRuns: 1 });
  });

  it('runs now, pauses and resumes, and reports stats and per-run records', async () => {
    const now = await gw.request('POST', `/v1/tenants/clinic/schedules/${scheduleId}/run-now`, { key: key('clinic') });
    expect(now.status).toBe(202);
    expect(now.body.run).toMatchObject({ trigger: 'run-now', recipients: 5, queued: 2, skippedOptOut: 1 });
    await gw.waitForOutbox('clinic', (all) => all.filter((i) => (i.options as { run?: string }).run === now.body.run.id && i.status === 'delivered').length === 2, 20_000);
    const runs = await gw.request('GET', `/v1/tenants/clinic/schedules/${scheduleId}/runs`, { key: key('clinic') });
    expect(runs.body.runs[0]).toMatchObject({ id: now.body.run.id, sent: 2, delivered: 2, failed: 0, skippedOptOut: 1 });
    expect((await gw.request('POST', `/v1/tenants/clinic/schedules/${scheduleId}/pause`, { key: key('clinic') })).body.schedule.active).toBe(false);
    const stats = await gw.request('GET', '/v1/tenants/clinic/schedules/stats', { key: key('clinic') });
    expect(stats.body).toMatchObject({ totalSchedules: 1, activeSchedules: 0, successfulRuns: 1, failedRuns: 0 });
    expect((await gw.request('POST', `/v1/tenants/clinic/schedules/${scheduleId}/resume`, { key: key('clinic') })).body.schedule.active).toBe(true);
    const bad = await gw.request('POST', '/v1/tenants/clinic/schedules', { key: key('clinic'), body: { name: 'x', schedule: 'every morning', audience: { all: true }, template: 'x', channel: 'http' } });
    expect(bad.status).toBe(400);
  });

  it("holds a scheduled delivery for each recipient inside their quiet hours until they end, unless the schedule opts out", async () => {
    const ny = await contacts.create('clinic', { name: 'Night Owl', tags: ['quiet-test'], addresses: [{ channel: 'http', address: phone() }] });
    const la = await contacts.create('clinic', { name: 'West', timezone: 'America/Los_Angeles', tags: ['quiet-test'], addresses: [{ channel: 'http', address: phone() }] });
    const news = await service.createSchedule('clinic', { name: 'late news', cron: '0 22 * * *', timezone: NY, audience: { tags: ['quiet-test'] }, template: 'news for {{first_name}}', channel: 'http', maxMessages: 50, active: true }, new Date('2027-09-01T00:00:00Z'));
    expect(news.respectQuietHours).toBe(true);
    const loud = await service.createSchedule('clinic', { name: 'late alarm', cron: '0 22 * * *', timezone: NY, audience: { tags: ['quiet-test'] }, template: 'alarm for {{first_name}}', channel: 'http', maxMessages: 50, active: true, respectQuietHours: false }, new Date('2027-09-01T00:00:00Z'));
    const texts = async () => (await gw.outbox('clinic')).filter((i) => [ny, la].some((c) => c.addresses[0]!.address === i.to)).map((i) => i.text).sort();
    // 22:00 in New York is 19:00 in Los Angeles: the New Yorker waits for 08:00 their time.
    // (The tenant's rate is 2 a minute on http, shared with runs of earlier tests: give it a few minutes.)
    for (let m = 0; m < 5; m++) await service.tick(new Date(Date.parse('2027-09-02T02:00:30Z') + m * 60_000));
    expect(await texts()).toEqual(['alarm for Night', 'alarm for West', 'news for West']);
    let [run] = await service.runRecords('clinic', { scheduleId: news.id });
    expect(run).toMatchObject({ status: 'sending', recipients: 2, queued: 1, pending: 1 });
    await service.tick(new Date('2027-09-02T11:59:30Z'));
    expect(await texts()).toHaveLength(3);
    for (let m = 0; m < 3; m++) await service.tick(new Date(Date.parse('2027-09-02T12:00:30Z') + m * 60_000));
    expect(await texts()).toEqual(['alarm for Night', 'alarm for West', 'news for Night', 'news for West']);
    [run] = await service.runRecords('clinic', { scheduleId: news.id });
    expect(run).toMatchObject({ status: 'completed', queued: 2, pending: 0 });
    const patched = await gw.request('PATCH', `/v1/tenants/clinic/schedules/${news.id}`, { key: key('clinic'), body: { respectQuietHours: false } });
    expect(patched.body.schedule.respectQuietHours).toBe(false);
    const viaApi = await gw.request('POST', '/v1/tenants/clinic/schedules', { key: key('clinic'), body: { name: 'x', schedule: '0 9 * * *', audience: { tags: ['quiet-test'] }, template: 'x', channel: 'http', active: false } });
    expect(viaApi.body.schedule.respectQuietHours).toBe(true);
    await service.deleteSchedule('clinic', viaApi.body.schedule.id);
    for (const id of [news.id, loud.id]) await service.deleteSchedule('clinic', id);
  });

  it('sends an appointment reminder once per appointment, however often the rule runs', async () => {
    const c = await contacts.create('clinic', { name: 'Pat', addresses: [{ channel: 'http', address: phone() }], fields: { appointment_at: '2027-06-02T14:00:00Z' } });
    await contacts.create('clinic', { name: 'Later', addresses: [{ channel: 'http', address: phone() }], fields: { appointment_at: '2027-06-09T14:00:00Z' } });
    const s = await service.createSchedule('clinic', { name: 'appointments', cron: '0 * * * *', timezone: NY, audience: { beforeField: { field: 'appointment_at', hoursBefore: 24 } }, template: 'See you {{when:appointment_at}}', channel: 'http', maxMessages: 50, active: true }, new Date('2027-06-01T12:30:00Z'));
    for (const at of ['2027-06-01T13:00:30Z', '2027-06-01T14:00:30Z', '2027-06-01T15:00:30Z']) await service.tick(new Date(at));
    const runs = await service.runRecords('clinic', { scheduleId: s.id });
    expect(runs.map((r) => r.queued).sort()).toEqual([0, 0, 1]);
    const to = c.addresses[0]!.address;
    expect((await gw.outbox('clinic')).filter((i) => i.to === to).map((i) => i.text)).toEqual(['See you Wednesday, June 2 at 10:00 AM']);
    await contacts.update('clinic', c.id, { fields: { appointment_at: '2027-06-02T15:00:00Z' } });
    await service.tick(new Date('2027-06-01T16:00:30Z'));
    expect((await gw.outbox('clinic')).filter((i) => i.to === to)).toHaveLength(2);
  });

  it('merges the SMS and the WhatsApp contact of one person: addresses, tags and fields joined, reminders moved, the other gone, audited', async () => {
    const sms = phone();
    const wa = `whatsapp:${phone()}`;
    const a = (await gw.request('POST', '/v1/tenants/clinic/contacts', { key: key('clinic'), body: { name: 'Ana Ruiz', tags: ['patients'], fields: { plan: 'gold', clinic: 'north' }, addresses: [{ channel: 'http', address: sms }] } })).body.contact;
    const b = (await gw.request('POST', '/v1/tenants/clinic/contacts', { key: key('clinic'), body: { tags: ['whatsapp', 'patients'], fields: { plan: 'silver', insurer: 'acme' }, timezone: 'Europe/Madrid', addresses: [{ channel: 'whatsapp', address: wa }] } })).body.contact;
    const at = new Date('2027-10-01T12:00:00Z');
    await service.createReminder('clinic', await contactFor(sms), { task: 'sms one', lang: 'en', once: new Date('2027-10-02T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: sms }, at);
    const moved = await service.createReminder('clinic', (await contacts.get('clinic', b.id))!, { task: 'whatsapp one', lang: 'en', once: new Date('2027-10-03T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'whatsapp', address: wa }, at);

    const r = await gw.request('POST', `/v1/tenants/clinic/contacts/${a.id}/merge`, { key: key('clinic'), body: { from: b.id } });
    expect(r.status).toBe(200);
    expect(r.body.merged).toEqual({ from: b.id, movedAddresses: 1 });
    expect(r.body.contact).toMatchObject({ id: a.id, name: 'Ana Ruiz', timezone: 'Europe/Madrid', tags: ['patients', 'whatsapp'], fields: { plan: 'gold', clinic: 'north', insurer: 'acme' } });
    expect(r.body.contact.addresses).toEqual([{ channel: 'http', address: sms }, { channel: 'whatsapp', address: wa }]);
    expect((await gw.request('GET', `/v1/tenants/clinic/contacts/${b.id}`, { key: key('clinic') })).status).toBe(404);
    expect((await contacts.resolve('clinic', { channel: 'whatsapp', address: wa }, { create: false }))!.id).toBe(a.id);
    // The WhatsApp reminder follows the person, numbered after theirs.
    expect((await service.listReminders('clinic', a.id)).map((x) => [x.shortId, x.task])).toEqual([[1, 'sms one'], [2, 'whatsapp one']]);
    expect((await service.getReminder('clinic', moved.id))!.contactId).toBe(a.id);
    const { rows } = await gw.gateway.db.pool.query(`SELECT actor, detail FROM parley_audit WHERE tenant_id = 'clinic' AND action = 'contacts.merge'`);
    expect(rows).toEqual([{ actor: expect.stringMatching(/^key:/), detail: { into: a.id, from: b.id, movedAddresses: 1 } }]);

    // Bad input is a 400 with the reason; an unknown contact a 404.
    expect((await gw.request('POST', `/v1/tenants/clinic/contacts/${a.id}/merge`, { key: key('clinic'), body: { from: a.id } })).body.error.message).toMatch(/"from" is this contact/);
    expect((await gw.request('POST', `/v1/tenants/clinic/contacts/${a.id}/merge`, { key: key('clinic'), body: { from: 'nope' } })).status).toBe(400);
    expect((await gw.request('POST', `/v1/tenants/clinic/contacts/${a.id}/merge`, { key: key('clinic'), body: {} })).status).toBe(400);
    expect((await gw.request('POST', `/v1/tenants/clinic/contacts/${a.id}/merge`, { key: key('clinic'), body: { from: b.id } })).status).toBe(404);
  });

  it('merges only with a key of the tenant or the operator key: 401 without a key, 403 for another tenant', async () => {
    const pair = async () => [(await contactFor(phone())).id, (await contactFor(phone())).id] as const;
    const [into, from] = await pair();
    const path = `/v1/tenants/clinic/contacts/${into}/merge`;
    expect((await gw.request('POST', path, { body: { from } })).status).toBe(401);
    expect((await gw.request('POST', path, { key: key('other'), body: { from } })).status).toBe(403);
    // Another tenant's contacts are not found through its own path either.
    expect((await gw.request('POST', `/v1/tenants/other/contacts/${into}/merge`, { key: key('other'), body: { from } })).status).toBe(404);
    expect(await contacts.get('clinic', from)).not.toBeNull();
    const op = await gw.request('POST', path, { key: OP, body: { from } });
    expect(op.status).toBe(200);
    expect(op.body.contact.addresses).toHaveLength(2);
    const { rows } = await gw.gateway.db.pool.query(`SELECT actor FROM parley_audit WHERE action = 'contacts.merge' AND detail->>'from' = $1`, [from]);
    expect(rows).toEqual([{ actor: 'operator' }]);
  });

  it('links a new address to the contact with the same phone number on another channel only when the tenant turned it on', async () => {
    const number = phone();
    const first = await contacts.resolve('other', { channel: 'http', address: number });
    const linked = await contacts.resolve('other', { channel: 'whatsapp', address: `whatsapp:${number}` });
    expect(linked!.id).toBe(first!.id);
    expect(linked!.addresses).toEqual([{ channel: 'http', address: number }, { channel: 'whatsapp', address: `whatsapp:${number}` }]);
    // Off by default: the clinic gets two contacts for the one number.
    const own = await contacts.resolve('clinic', { channel: 'http', address: number });
    const separate = await contacts.resolve('clinic', { channel: 'whatsapp', address: `whatsapp:${number}` });
    expect(separate!.id).not.toBe(own!.id);
  });

  it('keeps tenants apart: 401 without a key, 403 for another tenant, the operator sees all', async () => {
    const c = await contactFor(phone());
    for (const [method, path, body] of [
      ['GET', '/v1/tenants/clinic/contacts', undefined],
      ['GET', `/v1/tenants/clinic/contacts/${c.id}`, undefined],
      ['POST', '/v1/tenants/clinic/contacts/import', { csv: 'phone\n+15550199999', dryRun: true }],
      ['GET', '/v1/tenants/clinic/reminders', undefined],
      ['GET', '/v1/tenants/clinic/schedules', undefined],
      ['GET', '/v1/tenants/clinic/schedules/stats', undefined],
      ['POST', `/v1/tenants/clinic/schedules/${scheduleId}/preview`, {}],
    ] as const) {
      expect((await gw.request(method, path, { body })).status, path).toBe(401);
      expect((await gw.request(method, path, { key: key('other'), body })).status, path).toBe(403);
      expect((await gw.request(method, path, { key: OP, body })).status, path).toBe(200);
      expect((await gw.request(method, path, { key: key('clinic'), body })).status, path).toBe(200);
    }
    expect((await gw.request('GET', `/v1/tenants/other/contacts/${c.id}`, { key: key('other') })).status).toBe(404);
    expect((await gw.request('GET', `/v1/tenants/other/schedules/${scheduleId}`, { key: key('other') })).status).toBe(404);
  });

  it('exports and erases what contacts and reminders keep about a person, and logs no numbers', async () => {
    const p = phone();
    await send('remind me tomorrow at 3pm to call the pharmacy', p);
    const exported = await gw.gateway.exportSubject({ tenantId: 'clinic', addresses: [p] });
    const by = Object.fromEntries(exported.map((e) => [e.provider, e.records]));
    expect(by['contacts.directory']).toMatchObject([{ kind: 'contact', addresses: [{ address: p }] }]);
    expect(by['reminders']).toMatchObject([{ kind: 'reminder', task: 'call the pharmacy' }]);
    const erased = await gw.gateway.eraseSubject({ tenantId: 'clinic', addresses: [p] }, 'test');
    expect(erased['contacts.directory']).toBe(1);
    expect(await contacts.resolve('clinic', { channel: 'http', address: p }, { create: false })).toBeNull();
    expect(JSON.stringify(gw.logs.filter((l) => (l.level as number) >= 30))).not.toMatch(/\+1555019|\+1555010/);
  });

  it('refuses reminders without contacts, naming tenant and plugin', async () => {
    const bad = { plugins: ['http', 'contacts', 'reminders'], tenants: [{ id: 'solo', pipeline: ['reminders'], plugins: { http: {}, reminders: {} } }] };
    const loaded = { config: parseConfig(stringify(bad), 'test', {}), baseDir: process.cwd(), source: 'test' };
    await expect(Gateway.validate({ loaded, catalogue: builtinPlugins, logger: createLogger('silent') })).rejects.toThrow(/tenants\[0\] \(solo\)\.plugins\.reminders: reminders needs contacts enabled/);
  });
});

describe.skipIf(skip || TEST_BACKEND !== 'external')('a cancellation holding the row lock while a tick claims (PostgreSQL)', () => {
  it('makes the claim wait for the cancel, then find the reminder cancelled and send nothing', async () => {
    const p = phone();
    const r = await service.createReminder('clinic', await contactFor(p), { task: 'locked', lang: 'en', once: new Date('2028-02-01T15:00:00Z'), timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2028-01-31T12:00:00Z'));
    const client = await gw.gateway.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE reminders SET status = 'cancelled' WHERE id = $1`, [r.id]);
      let done = false;
      // The tick reads the reminder as active (the cancel is not committed) and blocks on its row.
      const ticking = service.tick(new Date('2028-02-01T15:00:30Z')).then(() => (done = true));
      await new Promise((res) => setTimeout(res, 500));
      expect(done).toBe(false);
      await client.query('COMMIT');
      await ticking;
    } finally {
      client.release();
    }
    expect(await outboxTo(p)).toEqual([]);
    expect(await service.occurrences('clinic', r.id)).toEqual([]);
  }, 60_000);
});

describe.skipIf(skip || TEST_BACKEND !== 'external')('two gateways sharing PostgreSQL and Redis', () => {
  let other: TestGateway;
  afterAll(async () => {
    await other?.stop();
  }, 60_000);

  it('send each reminder occurrence and each run recipient once when both tick at the same moment', async () => {
    other = await startTestGateway({ config, databaseUrl: gw.databaseUrl! });
    const service2 = other.gateway.container.resolve(Symbol.for('reminders.service')) as RemindersService;
    const p = phone();
    const c = await contactFor(p);
    await service.createReminder('clinic', c, { task: 'twice?', lang: 'en', rrule: 'FREQ=DAILY', start: { year: 2028, month: 1, day: 1, hour: 9, minute: 0 }, timezone: NY, allowQuietHours: false, source: 'api', channel: 'http', address: p }, new Date('2028-01-01T00:00:00Z'));
    const s = await service.createSchedule('clinic', { name: 'both', cron: '0 12 * * *', timezone: NY, audience: { tags: ['vip'] }, template: 'hi {{name}}', channel: 'http', maxMessages: 50, active: true }, new Date('2028-01-01T00:00:00Z'));
    for (const at of ['2028-01-01T14:00:10Z', '2028-01-02T14:00:10Z', '2028-01-01T17:00:10Z', '2028-01-01T17:01:10Z', '2028-01-01T17:02:10Z']) {
      await Promise.all([service.tick(new Date(at)), service2.tick(new Date(at))]);
    }
    expect((await outboxTo(p)).map((i) => i.text)).toEqual(['Reminder: twice?', 'Reminder: twice?']);
    const runs = await service.runRecords('clinic', { scheduleId: s.id });
    expect(runs).toHaveLength(1);
    const items = (await gw.outbox('clinic')).filter((i) => (i.options as { run?: string }).run === runs[0]!.id);
    expect(items.length).toBe(runs[0]!.queued);
    expect(new Set(items.map((i) => i.to)).size).toBe(items.length);
  }, 120_000);
});

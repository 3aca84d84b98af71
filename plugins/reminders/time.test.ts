/** Pure functions of the reminders plugin: local time across DST, quiet hours, plain-language commands, templates. */
import { describe, expect, it } from 'vitest';
import { afterQuietHours, nextCron, nextOccurrence, zonedInstant } from './time.js';
import { parseCommand, reminderText } from './parse.js';
import { render } from './service.js';

const NY = 'America/New_York';

describe('local time', () => {
  it('keeps a daily 08:00 at 08:00 local over the spring-forward and fall-back changes', () => {
    const spring: string[] = [];
    let t = new Date('2027-03-12T12:00:00Z');
    for (let i = 0; i < 4; i++) spring.push((t = nextOccurrence('FREQ=DAILY', { year: 2027, month: 3, day: 1, hour: 8, minute: 0 }, NY, t)!).toISOString());
    expect(spring).toEqual(['2027-03-12T13:00:00.000Z', '2027-03-13T13:00:00.000Z', '2027-03-14T12:00:00.000Z', '2027-03-15T12:00:00.000Z']);
    const fall: string[] = [];
    t = new Date('2027-11-05T12:00:00Z');
    for (let i = 0; i < 3; i++) fall.push((t = nextOccurrence('FREQ=DAILY', { year: 2027, month: 3, day: 1, hour: 8, minute: 0 }, NY, t)!).toISOString());
    expect(fall).toEqual(['2027-11-06T12:00:00.000Z', '2027-11-07T13:00:00.000Z', '2027-11-08T13:00:00.000Z']);
  });

  it('moves a wall time that does not exist forward, and takes the first of a repeated one', () => {
    expect(zonedInstant({ year: 2027, month: 3, day: 14, hour: 2, minute: 30 }, NY).toISOString()).toBe('2027-03-14T07:30:00.000Z'); // 03:30 EDT
    expect(zonedInstant({ year: 2027, month: 11, day: 7, hour: 1, minute: 30 }, NY).toISOString()).toBe('2027-11-07T05:30:00.000Z'); // 01:30 EDT
    expect(zonedInstant({ year: 2027, month: 7, day: 1, hour: 9, minute: 0 }, 'Europe/Madrid').toISOString()).toBe('2027-07-01T07:00:00.000Z');
  });

  it('reads weekly rules and cron patterns in the zone', () => {
    expect(nextOccurrence('FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0', { year: 2027, month: 3, day: 1, hour: 9, minute: 0 }, 'Europe/Madrid', new Date('2027-03-24T00:00:00Z'))!.toISOString()).toBe('2027-03-29T07:00:00.000Z');
    expect(nextCron('0 0 1 * *', NY, new Date('2027-03-07T12:00:00Z')).toISOString()).toBe('2027-04-01T04:00:00.000Z');
    expect(nextCron('0 0 1,15 * *', 'UTC', new Date('2027-03-07T12:00:00Z')).toISOString()).toBe('2027-03-15T00:00:00.000Z');
  });

  it('moves a send inside quiet hours to their end, local time', () => {
    const q = { start: '21:00', end: '08:00' };
    expect(afterQuietHours(new Date('2027-03-14T02:00:00Z'), NY, q).toISOString()).toBe('2027-03-14T12:00:00.000Z'); // 22:00 EST -> 08:00 EDT
    expect(afterQuietHours(new Date('2027-03-14T10:00:00Z'), NY, q).toISOString()).toBe('2027-03-14T12:00:00.000Z'); // 06:00 EDT -> 08:00
    expect(afterQuietHours(new Date('2027-03-14T15:00:00Z'), NY, q).toISOString()).toBe('2027-03-14T15:00:00.000Z');
    expect(afterQuietHours(new Date('2027-03-14T02:00:00Z'), NY, null).toISOString()).toBe('2027-03-14T02:00:00.000Z');
  });
});

describe('plain-language commands', () => {
  const now = new Date('2027-03-06T17:00:00Z'); // Saturday 12:00 in New York
  it('reads English reminders, lists and cancels', () => {
    expect(parseCommand('remind me to take my pills every day at 8am', now, NY)).toMatchObject({ kind: 'create', lang: 'en', task: 'take my pills', rrule: 'FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0', explicitTime: true });
    const once = parseCommand('Remind me tomorrow at 3pm to call the pharmacy', now, NY);
    expect(once).toMatchObject({ kind: 'create', task: 'call the pharmacy' });
    expect((once as { once: Date }).once.toISOString()).toBe('2027-03-07T20:00:00.000Z');
    expect((parseCommand('remind me in 2 hours to stretch', now, NY) as { once: Date }).once.toISOString()).toBe('2027-03-06T19:00:00.000Z');
    expect(parseCommand('remind me every monday at 9am to water the plants', now, NY)).toMatchObject({ task: 'water the plants', rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(parseCommand('my reminders', now, NY)).toEqual({ kind: 'list', lang: 'en' });
    expect(parseCommand('cancel 2', now, NY)).toEqual({ kind: 'cancel', lang: 'en', shortId: 2 });
    expect(parseCommand('Stop reminders', now, NY)).toEqual({ kind: 'cancel-all', lang: 'en' });
    expect(parseCommand('remind me to call', now, NY)).toEqual({ kind: 'unclear', lang: 'en', why: 'no-time' });
    expect(parseCommand('what are your hours?', now, NY)).toBeNull();
    expect(parseCommand('STOP', now, NY)).toBeNull();
  });

  it('reads Spanish reminders, lists and cancels', () => {
    expect(parseCommand('recuérdame tomar mis pastillas todos los días a las 8', now, NY)).toMatchObject({ kind: 'create', lang: 'es', task: 'tomar mis pastillas', rrule: 'FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0' });
    const once = parseCommand('Recuérdame mañana a las 3pm llamar a la farmacia', now, NY);
    expect(once).toMatchObject({ kind: 'create', lang: 'es', task: 'llamar a la farmacia' });
    expect((once as { once: Date }).once.toISOString()).toBe('2027-03-07T20:00:00.000Z');
    expect(parseCommand('recuérdame llamar a mamá cada lunes a las 10:30', now, NY)).toMatchObject({ task: 'llamar a mamá', rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=30;BYSECOND=0' });
    expect(parseCommand('mis recordatorios', now, NY)).toEqual({ kind: 'list', lang: 'es' });
    expect(parseCommand('cancelar 3', now, NY)).toEqual({ kind: 'cancel', lang: 'es', shortId: 3 });
    expect(parseCommand('parar recordatorios', now, NY)).toEqual({ kind: 'cancel-all', lang: 'es' });
    expect(reminderText('tomar mis pastillas', 'es')).toBe('Recordatorio: tomar tus pastillas');
    expect(reminderText('take my pills', 'en')).toBe('Reminder: take your pills');
  });
});

describe('templates', () => {
  const dir = { timezoneOf: () => NY, languageOf: () => 'en-US' };
  const contact = { id: 'x', tenantId: 't', name: 'Ana Ruiz', timezone: null, language: null, tags: [], fields: { plan: 'gold', appt: '2027-03-15T14:30:00Z' }, source: 'api' as const, addresses: [], lastInboundAt: null, lastOutboundAt: null, createdAt: new Date(), updatedAt: new Date() };
  it('fills fields, fallbacks and local times', () => {
    expect(render('Hi {{first_name|there}}, plan {{plan}} {{fields.plan}} {{missing|none}}', contact, dir)).toBe('Hi Ana, plan gold gold none');
    expect(render('Hi {{first_name|there}}', { ...contact, name: null }, dir)).toBe('Hi there');
    expect(render('See you {{when:appt}}', contact, dir)).toBe('See you Monday, March 15 at 10:30 AM');
  });
});

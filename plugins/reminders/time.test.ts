/** Pure functions of the reminders plugin: local time across DST, quiet hours, plain-language commands, templates. */
import { describe, expect, it } from 'vitest';
import { afterQuietHours, checkRrule, nextCron, nextOccurrence, zonedInstant } from './time.js';
import { parseCommand, reminderText } from './parse.js';
import { render } from './service.js';
import { describeWhen } from './stage.js';

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

describe('plain-language repetition and end dates', () => {
  const now = new Date('2027-03-06T17:00:00Z'); // Saturday 12:00 in New York
  const rule = (text: string) => {
    const c = parseCommand(text, now, NY);
    expect(c, text).toMatchObject({ kind: 'create' });
    return c as { task: string; rrule: string; start: { year: number; month: number; day: number; hour: number; minute: number }; explicitTime: boolean };
  };
  const first = (text: string) => {
    const c = rule(text);
    return nextOccurrence(c.rrule, c.start, NY, new Date(now.getTime() - 1))!.toISOString();
  };

  it('reads every N hours, from now or from a given time', () => {
    expect(rule('remind me to drink water every 2 hours')).toMatchObject({ task: 'drink water', rrule: 'FREQ=HOURLY;INTERVAL=2', start: { year: 2027, month: 3, day: 6, hour: 14, minute: 0 }, explicitTime: false });
    expect(first('remind me to drink water every 2 hours')).toBe('2027-03-06T19:00:00.000Z');
    expect(rule('remind me every 3 hours starting at 1pm to stretch')).toMatchObject({ task: 'stretch', rrule: 'FREQ=HOURLY;INTERVAL=3;BYMINUTE=0;BYSECOND=0' });
    expect(first('remind me every 3 hours starting at 1pm to stretch')).toBe('2027-03-06T18:00:00.000Z');
    expect(rule('recuérdame tomar agua cada 4 horas')).toMatchObject({ task: 'tomar agua', rrule: 'FREQ=HOURLY;INTERVAL=4' });
    expect(rule('recuérdame cada dos horas revisar el azúcar')).toMatchObject({ task: 'revisar el azúcar', rrule: 'FREQ=HOURLY;INTERVAL=2' });
  });

  it('reads every other day, every N days and every other week', () => {
    expect(rule('remind me to water the plants every other day at 7pm')).toMatchObject({ task: 'water the plants', rrule: 'FREQ=DAILY;INTERVAL=2;BYHOUR=19;BYMINUTE=0;BYSECOND=0' });
    expect(rule('remind me every 3 days at 9am to check the mail')).toMatchObject({ task: 'check the mail', rrule: 'FREQ=DAILY;INTERVAL=3;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame regar las plantas cada dos días a las 7pm')).toMatchObject({ task: 'regar las plantas', rrule: 'FREQ=DAILY;INTERVAL=2;BYHOUR=19;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame cada 3 días a las 9 revisar el correo')).toMatchObject({ task: 'revisar el correo', rrule: 'FREQ=DAILY;INTERVAL=3;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(rule('remind me every other week at 10am to clean the filter')).toMatchObject({ rrule: 'FREQ=WEEKLY;INTERVAL=2;BYHOUR=10;BYMINUTE=0;BYSECOND=0' });
  });

  it('reads weekdays, one or several days of the week', () => {
    expect(rule('remind me every weekday at 8am to log in')).toMatchObject({ rrule: 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=0;BYSECOND=0' });
    expect(rule('remind me every monday and thursday at 6pm to go to the gym')).toMatchObject({ task: 'go to the gym', rrule: 'FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=18;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame todos los lunes a las 9 sacar la basura')).toMatchObject({ task: 'sacar la basura', rrule: 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame todos los martes y viernes a las 5pm ir al gimnasio')).toMatchObject({ task: 'ir al gimnasio', rrule: 'FREQ=WEEKLY;BYDAY=TU,FR;BYHOUR=17;BYMINUTE=0;BYSECOND=0' });
  });

  it('reads a day of every month', () => {
    expect(rule('remind me every month on the 1st at 9am to pay rent')).toMatchObject({ task: 'pay rent', rrule: 'FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(first('remind me every month on the 1st at 9am to pay rent')).toBe('2027-04-01T13:00:00.000Z');
    expect(rule('remind me to pay rent on the 15th of every month at 9am')).toMatchObject({ task: 'pay rent', rrule: 'FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame pagar el alquiler cada mes el día 1 a las 9')).toMatchObject({ task: 'pagar el alquiler', rrule: 'FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame pagar la luz el día 5 de cada mes a las 10')).toMatchObject({ task: 'pagar la luz', rrule: 'FREQ=MONTHLY;BYMONTHDAY=5;BYHOUR=10;BYMINUTE=0;BYSECOND=0' });
  });

  it('ends a repetition on a date or after N days (the end of that local day)', () => {
    const until = rule('remind me to take the antibiotic every day at 8am until March 12');
    expect(until).toMatchObject({ task: 'take the antibiotic', rrule: 'FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0;UNTIL=20270312T235959Z' });
    const all: string[] = [];
    for (let t: Date | null = new Date(now.getTime() - 1); (t = nextOccurrence(until.rrule, until.start, NY, t)); ) all.push(t.toISOString());
    expect(all).toHaveLength(6); // March 7 to 12 (08:00 today has passed)
    expect(all.at(-1)).toBe('2027-03-12T13:00:00.000Z');
    // "for 7 days" counts from the first occurrence: tomorrow (08:00 today has passed) to March 13.
    expect(rule('remind me to take the antibiotic every day at 8am for 7 days').rrule).toBe('FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0;UNTIL=20270313T235959Z');
    expect(rule('remind me every 2 hours for 1 day to drink water')).toMatchObject({ task: 'drink water', rrule: 'FREQ=HOURLY;INTERVAL=2;UNTIL=20270306T235959Z' });
    expect(rule('recuérdame tomar el antibiótico todos los días a las 8 hasta el 12 de marzo')).toMatchObject({ task: 'tomar el antibiótico', rrule: 'FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0;UNTIL=20270312T235959Z' });
    expect(rule('recuérdame tomar el jarabe cada dos días a las 9 durante 2 semanas').rrule).toBe('FREQ=DAILY;INTERVAL=2;BYHOUR=9;BYMINUTE=0;BYSECOND=0;UNTIL=20270321T235959Z'); // every other day from March 6: the first is March 8
    expect(rule('remind me every monday at 9am until friday to check in').rrule).toMatch(/UNTIL=20270312T235959Z$/);
    expect(parseCommand('remind me every monday at 9am until sunday to check in', now, NY)).toEqual({ kind: 'unclear', lang: 'en', why: 'past' });
  });

  const occurrences = (text: string, n: number) => {
    const c = rule(text);
    const out: string[] = [];
    for (let t: Date | null = new Date(now.getTime() - 1); out.length < n && (t = nextOccurrence(c.rrule, c.start, NY, t)); ) out.push(t.toISOString());
    return out;
  };

  it('reads every N minutes from now, and refuses anything more often than every 15 minutes', () => {
    expect(rule('remind me to stretch every 30 minutes')).toMatchObject({ task: 'stretch', rrule: 'FREQ=MINUTELY;INTERVAL=30', explicitTime: false });
    expect(occurrences('remind me to stretch every 30 minutes', 3)).toEqual(['2027-03-06T17:30:00.000Z', '2027-03-06T18:00:00.000Z', '2027-03-06T18:30:00.000Z']);
    expect(rule('recuérdame estirar cada 45 minutos')).toMatchObject({ task: 'estirar', rrule: 'FREQ=MINUTELY;INTERVAL=45' });
    expect(rule('remind me every 15 minutes to check the oven')).toMatchObject({ rrule: 'FREQ=MINUTELY;INTERVAL=15' });
    expect(parseCommand('remind me every 10 minutes to stretch', now, NY)).toEqual({ kind: 'unclear', lang: 'en', why: 'too-often' });
    expect(parseCommand('recuérdame cada 5 minutos estirar', now, NY)).toEqual({ kind: 'unclear', lang: 'es', why: 'too-often' });
    expect(() => checkRrule('FREQ=MINUTELY;INTERVAL=5')).toThrow(/at most every 15 minutes/);
    expect(() => checkRrule('FREQ=MINUTELY;INTERVAL=20')).not.toThrow();
  });

  it('reads every N months, on a day or on today\'s day of the month', () => {
    expect(rule('remind me every 2 months at 9am to check the smoke alarm')).toMatchObject({ task: 'check the smoke alarm', rrule: 'FREQ=MONTHLY;INTERVAL=2;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(occurrences('remind me every 2 months at 9am to check the smoke alarm', 3)).toEqual(['2027-05-06T13:00:00.000Z', '2027-07-06T13:00:00.000Z', '2027-09-06T13:00:00.000Z']);
    expect(rule('remind me every other month on the 15th at 9am to pay')).toMatchObject({ task: 'pay', rrule: 'FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=15;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame cada 3 meses a las 10 revisar el filtro')).toMatchObject({ task: 'revisar el filtro', rrule: 'FREQ=MONTHLY;INTERVAL=3;BYHOUR=10;BYMINUTE=0;BYSECOND=0' });
  });

  it('reads a weekday of every month: the first Monday, the last Friday', () => {
    expect(rule('remind me on the first Monday of every month at 9am to pay rent')).toMatchObject({ task: 'pay rent', rrule: 'FREQ=MONTHLY;BYDAY=+1MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
    expect(occurrences('remind me on the first Monday of every month at 9am to pay rent', 2)).toEqual(['2027-04-05T13:00:00.000Z', '2027-05-03T13:00:00.000Z']);
    expect(rule('remind me the last friday of every month at 5pm to submit the timesheet')).toMatchObject({ task: 'submit the timesheet', rrule: 'FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0;BYSECOND=0' });
    expect(rule('recuérdame el primer lunes de cada mes a las 9 pagar el alquiler')).toMatchObject({ task: 'pagar el alquiler', rrule: 'FREQ=MONTHLY;BYDAY=+1MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0' });
  });

  it('reads several times a day as one reminder', () => {
    expect(rule('remind me to take my pills every day at 8am and 8pm')).toMatchObject({ task: 'take my pills', rrule: 'FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0;BYSECOND=0' });
    expect(occurrences('remind me to take my pills every day at 8am and 8pm', 3)).toEqual(['2027-03-07T01:00:00.000Z', '2027-03-07T13:00:00.000Z', '2027-03-08T01:00:00.000Z']);
    // Different minutes: the day's hour-minute pairs are picked by position, not all four.
    expect(rule('remind me to take my pills every day at 8:30am and 8pm').rrule).toBe('FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0,30;BYSECOND=0;BYSETPOS=2,3');
    expect(occurrences('remind me to take my pills every day at 8:30am and 8pm', 3)).toEqual(['2027-03-07T01:00:00.000Z', '2027-03-07T13:30:00.000Z', '2027-03-08T01:00:00.000Z']);
    expect(rule('recuérdame tomar mis pastillas todos los días a las 8 y a las 20')).toMatchObject({ task: 'tomar mis pastillas', rrule: 'FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0;BYSECOND=0' });
  });

  it('ends a repetition after N times, counted from the next occurrence', () => {
    const c = rule('remind me to take my pills every day at 8am 5 times');
    expect(c).toMatchObject({ task: 'take my pills', rrule: 'FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0;COUNT=5', start: { day: 7, hour: 8 } });
    expect(occurrences('remind me to take my pills every day at 8am 5 times', 10)).toHaveLength(5); // 08:00 today has passed: it is not one of the five
    expect(rule('recuérdame tomar el jarabe todos los días a las 9 5 veces').rrule).toBe('FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0;COUNT=5');
    expect(occurrences('remind me to stretch every 30 minutes 4 times', 10)).toHaveLength(4);
    expect(rule('remind me to take my pills every day at 8am for 3 days').rrule).toBe('FREQ=DAILY;BYHOUR=8;BYMINUTE=0;BYSECOND=0;UNTIL=20270309T235959Z');
  });

  it('describes the rules in the confirmation, in both languages', () => {
    const r = (rrule: string) => ({ rrule, nextAt: new Date('2027-03-07T13:00:00Z'), timezone: NY });
    expect(describeWhen(r('FREQ=HOURLY;INTERVAL=2'), 'en')).toMatch(/^every 2 hours, next at 8:00\sAM$/);
    expect(describeWhen(r('FREQ=DAILY;INTERVAL=2;BYHOUR=8'), 'es')).toBe('cada dos días a las 8:00');
    expect(describeWhen(r('FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=8'), 'en')).toMatch(/^every Monday and Thursday at 8:00\sAM$/);
    expect(describeWhen(r('FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8'), 'en')).toMatch(/^every month on the 1st at 8:00\sAM$/);
    expect(describeWhen(r('FREQ=DAILY;BYHOUR=8;UNTIL=20270312T235959Z'), 'en')).toMatch(/^every day at 8:00\sAM, until Friday, March 12$/);
    expect(describeWhen(r('FREQ=DAILY;BYHOUR=8;UNTIL=20270312T235959Z'), 'es')).toBe('todos los días a las 8:00, hasta el viernes, 12 de marzo');
    expect(describeWhen(r('FREQ=MINUTELY;INTERVAL=30'), 'en')).toMatch(/^every 30 minutes, next at 8:00\sAM$/);
    expect(describeWhen(r('FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0,30;BYSECOND=0;BYSETPOS=2,3'), 'en')).toMatch(/^every day at 8:30\sAM and 8:00\sPM$/);
    expect(describeWhen(r('FREQ=DAILY;BYHOUR=8,20;BYMINUTE=0'), 'es')).toBe('todos los días a las 8:00 y 20:00');
    expect(describeWhen(r('FREQ=MONTHLY;INTERVAL=2;BYHOUR=8'), 'en')).toMatch(/^every other month at 8:00\sAM, next on Sunday, March 7$/);
    expect(describeWhen(r('FREQ=MONTHLY;BYDAY=+1MO;BYHOUR=8'), 'es')).toBe('el primer lunes de cada mes a las 8:00, el próximo el domingo, 7 de marzo');
    expect(describeWhen(r('FREQ=DAILY;BYHOUR=8;COUNT=5'), 'en')).toMatch(/^every day at 8:00\sAM, 5 times$/);
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

/**
 * Reminder commands in plain language, English and Spanish: "remind me to take my pills every day at
 * 8am", "remind me tomorrow at 3pm to call the pharmacy", "recuérdame tomar mis pastillas todos los
 * días a las 8", "my reminders" / "mis recordatorios", "cancel 2" / "cancelar 2", "stop reminders" /
 * "parar recordatorios". Dates and times are read by chrono-node in the person's time zone; repetition
 * becomes an RRULE. Pure: the clock is an argument.
 */
import * as chrono from 'chrono-node';
import { MIN_INTERVAL_MINUTES, nextOccurrence, wallOf, zonedInstant, type Wall } from './time.js';

export type Lang = 'en' | 'es';

export type Command =
  | { kind: 'create'; lang: Lang; task: string; once?: Date; rrule?: string; start?: Wall; describe: string; explicitTime: boolean }
  | { kind: 'list'; lang: Lang }
  | { kind: 'cancel'; lang: Lang; shortId: number }
  | { kind: 'cancel-all'; lang: Lang }
  /** A reminder request we could not read: the reply says how to write one. */
  | { kind: 'unclear'; lang: Lang; why: 'no-time' | 'no-task' | 'past' | 'too-often' };

const norm = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();

const DAYS_EN = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const DAYS_ES = ['domingo', 'lunes', 'martes', 'miercoles', 'jueves', 'viernes', 'sabado'];
const BYDAY = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];

interface Recurrence {
  rrule: string;
  /** The phrase as the person wrote it (normalised), removed from the text before dates are read. */
  match: RegExp;
  /** Empty: the confirmation describes the rule itself (`describeRule`). */
  describe: { en: string; es: string };
  /** Every N hours or minutes: no time of day needed (it starts one step from now, or at the time given). */
  stepMinutes?: number;
  /** Asked more often than every `MIN_INTERVAL_MINUTES`: refused with a reply that says the minimum. */
  tooOften?: boolean;
}

const NUMBERS: Record<string, number> = {
  one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, eleven: 11, twelve: 12,
  un: 1, una: 1, uno: 1, dos: 2, tres: 3, cuatro: 4, cinco: 5, seis: 6, siete: 7, ocho: 8, nueve: 9, diez: 10, once: 11, doce: 12,
};
const NUM = `(\\d{1,3}|${Object.keys(NUMBERS).join('|')})`;
const numberOf = (w: string) => (/^\d+$/.test(w) ? Number(w) : NUMBERS[w]!);
const DAY_EN = '(sunday|monday|tuesday|wednesday|thursday|friday|saturday)s?';
const DAY_ES = '(domingo|lunes|martes|miercoles|jueves|viernes|sabado)s?';
const none = { en: '', es: '' };
/** The position of a weekday in its month (RRULE BYDAY prefix). */
const NTH: Record<string, string> = { first: '+1', '1st': '+1', second: '+2', '2nd': '+2', third: '+3', '3rd': '+3', fourth: '+4', '4th': '+4', last: '-1', primer: '+1', primero: '+1', segundo: '+2', tercer: '+3', tercero: '+3', cuarto: '+4', ultimo: '-1' };

/** "every 2 hours", "every other day", "every 3 days", "every 2 weeks", "every month on the 1st", "every monday and thursday" (and in Spanish). */
function intervalOf(t: string): Recurrence | null {
  let m: RegExpExecArray | null;
  const re = (src: string) => new RegExp(src);
  if ((m = re(`\\b(?:every|each) ${NUM} (?:minutes?|mins?)\\b`).exec(t)) || (m = re(`\\bcada ${NUM} minutos?\\b`).exec(t))) {
    const n = numberOf(m[1]!);
    if (n >= 1 && n <= 24 * 60) return { rrule: `FREQ=MINUTELY;INTERVAL=${n}`, match: re(m[0]), describe: none, stepMinutes: n, tooOften: n < MIN_INTERVAL_MINUTES };
  }
  if ((m = /\b(?:every|each) (?:half(?: an)? hour|half-hour)\b|\bcada media hora\b/.exec(t))) return { rrule: 'FREQ=MINUTELY;INTERVAL=30', match: re(m[0]), describe: none, stepMinutes: 30 };
  if ((m = /\b(?:every|each) minute\b|\bcada minuto\b/.exec(t))) return { rrule: 'FREQ=MINUTELY;INTERVAL=1', match: re(m[0]), describe: none, stepMinutes: 1, tooOften: true };
  if ((m = re(`\\b(?:every|each) ${NUM} hours?\\b`).exec(t)) || (m = re(`\\bcada ${NUM} horas?\\b`).exec(t))) {
    const n = numberOf(m[1]!);
    if (n >= 1 && n <= 24) return { rrule: `FREQ=HOURLY;INTERVAL=${n}`, match: re(m[0]), describe: none, stepMinutes: n * 60 };
  }
  if ((m = /\b(?:every|each) hour\b|\bhourly\b|\bcada hora\b/.exec(t))) return { rrule: 'FREQ=HOURLY;INTERVAL=1', match: re(m[0]), describe: none, stepMinutes: 60 };
  if ((m = /\b(?:every other day|every second day|un dia si y otro no|cada dos dias|dia por medio)\b/.exec(t))) return { rrule: 'FREQ=DAILY;INTERVAL=2', match: re(m[0]), describe: none };
  if ((m = re(`\\b(?:every|each) ${NUM} days\\b`).exec(t)) || (m = re(`\\bcada ${NUM} dias\\b`).exec(t))) {
    const n = numberOf(m[1]!);
    if (n >= 1 && n <= 366) return { rrule: `FREQ=DAILY;INTERVAL=${n}`, match: re(m[0]), describe: none };
  }
  if ((m = /\b(?:every other week|every second week|cada dos semanas|semana por medio)\b/.exec(t))) return { rrule: 'FREQ=WEEKLY;INTERVAL=2', match: re(m[0]), describe: none };
  if ((m = re(`\\b(?:every|each) ${NUM} weeks\\b`).exec(t)) || (m = re(`\\bcada ${NUM} semanas\\b`).exec(t))) {
    const n = numberOf(m[1]!);
    if (n >= 1 && n <= 52) return { rrule: `FREQ=WEEKLY;INTERVAL=${n}`, match: re(m[0]), describe: none };
  }
  // A weekday of every month: "on the first Monday of every month", "the last Friday of each month",
  // "el primer lunes de cada mes", "el último viernes de cada mes".
  if ((m = re(`\\b(?:on )?the (first|second|third|fourth|last|1st|2nd|3rd|4th) ${DAY_EN.slice(0, -2)} (?:of )?(?:every|each) month\\b`).exec(t))) {
    return { rrule: `FREQ=MONTHLY;BYDAY=${NTH[m[1]!]}${BYDAY[DAYS_EN.indexOf(m[2]!)]}`, match: re(m[0]), describe: none };
  }
  if ((m = re(`\\b(?:el )?(primer|primero|segundo|tercer|tercero|cuarto|ultimo) ${DAY_ES.slice(0, -2)} de cada mes\\b`).exec(t))) {
    return { rrule: `FREQ=MONTHLY;BYDAY=${NTH[m[1]!]}${BYDAY[DAYS_ES.indexOf(m[2]!)]}`, match: re(m[0]), describe: none };
  }
  // Every N months, on a day or (without one) on today's day of the month: "every 2 months", "every other
  // month on the 15th", "cada 3 meses", "cada dos meses el día 10".
  if ((m = re(`\\b(?:every|each) (other|${NUM.slice(1, -1)}) months?(?: on the (\\d{1,2})(?:st|nd|rd|th)?)?\\b`).exec(t)) || (m = re(`\\bcada ${NUM} meses(?: el (?:dia )?(\\d{1,2}))?\\b`).exec(t))) {
    const n = m[1] === 'other' ? 2 : numberOf(m[1]!);
    const day = m[2] ? Number(m[2]) : null;
    if (n >= 1 && n <= 24 && (day === null || (day >= 1 && day <= 31))) return { rrule: `FREQ=MONTHLY;INTERVAL=${n}${day ? `;BYMONTHDAY=${day}` : ''}`, match: re(m[0]), describe: none };
  }
  // Monthly on a day of the month: "every month on the 1st", "on the 15th of every month", "monthly on the 3rd",
  // "cada mes el día 1", "todos los meses el 15", "el día 1 de cada mes".
  const monthly = [
    /\b(?:every month|each month|monthly) on the (\d{1,2})(?:st|nd|rd|th)?\b/,
    /\b(?:on )?the (\d{1,2})(?:st|nd|rd|th)? (?:of )?(?:every|each) month\b/,
    /\b(?:cada mes|todos los meses|mensualmente) el (?:dia )?(\d{1,2})\b/,
    /\b(?:el )?dia (\d{1,2}) de cada mes\b/,
  ];
  for (const r of monthly) {
    if ((m = r.exec(t))) {
      const d = Number(m[1]);
      if (d >= 1 && d <= 31) return { rrule: `FREQ=MONTHLY;BYMONTHDAY=${d}`, match: re(m[0]), describe: none };
    }
  }
  // "every month", "monthly", "cada mes": on today's day of the month.
  if ((m = /\b(?:every month|each month|monthly|cada mes|todos los meses|mensualmente)\b/.exec(t))) return { rrule: 'FREQ=MONTHLY', match: re(m[0]), describe: none };
  // Several days: "every monday and thursday", "every mon, wed and fri", "todos los lunes y jueves".
  if ((m = re(`\\b(?:every|on) ${DAY_EN}(?:(?:, ?| and | & )${DAY_EN})+\\b`).exec(t)) || (m = re(`\\b(?:cada|todos los|los) ${DAY_ES}(?:(?:, ?| y )${DAY_ES})+\\b`).exec(t))) {
    const words = m[0].match(new RegExp(`${DAY_EN.slice(0, -2)}|${DAY_ES.slice(0, -2)}`, 'g')) ?? [];
    const days = [...new Set(words.map((w) => (DAYS_EN.includes(w) ? DAYS_EN.indexOf(w) : DAYS_ES.indexOf(w))))].sort((a, b) => ((a + 6) % 7) - ((b + 6) % 7));
    return { rrule: `FREQ=WEEKLY;BYDAY=${days.map((d) => BYDAY[d]).join(',')}`, match: re(m[0]), describe: none };
  }
  return null;
}

/** "until Friday", "until March 15", "for 10 days", "for 2 weeks", "5 times", "hasta el viernes", "hasta el 15 de marzo", "durante 10 días", "5 veces". */
function endOf(rest: string, lang: Lang, ref: Date): { rest: string; until?: Wall; days?: number; count?: number } | null {
  const base = rest.normalize('NFD').replace(/\p{M}/gu, '');
  const lower = base.toLowerCase();
  const times = new RegExp(`\\b${NUM} (?:times|veces)\\b(?! (?:a|per|al|por) (?:day|dia|week|semana))`).exec(lower);
  if (times) {
    const count = numberOf(times[1]!);
    if (count >= 1 && count <= 1000) {
      const cut = cutAt(rest, base, times.index, times[0].length);
      const more = endOf(cut, lang, ref);
      return { ...(more ?? {}), rest: more?.rest ?? cut, count };
    }
  }
  const span = new RegExp(`\\b(?:for|durante|por) ${NUM} (days?|weeks?|dias?|semanas?)\\b`).exec(lower);
  if (span) {
    const n = numberOf(span[1]!) * (/^(week|semana)/.test(span[2]!) ? 7 : 1);
    return { rest: cutAt(rest, base, span.index, span[0].length), days: n };
  }
  const kw = /\b(until|till|through|hasta)\b/.exec(lower);
  if (!kw) return null;
  const after = rest.slice(kw.index + kw[0].length);
  const found = (lang === 'es' ? chrono.es : chrono).parse(after, ref, { forwardDate: true })[0];
  if (!found || !/^\s*(?:(?:the|el)\s+)?$/i.test(after.slice(0, found.index)) || !found.start.isCertain('day') && !found.start.isCertain('weekday')) return null;
  const s = found.start;
  const until = { year: s.get('year')!, month: s.get('month')!, day: s.get('day')!, hour: 23, minute: 59, second: 59 };
  return { rest: cutAt(rest, base, kw.index, kw[0].length + found.index + found.text.length), until };
}

const cutAt = (text: string, base: string, index: number, length: number) =>
  (base.length === text.length ? text.slice(0, index) + ' ' + text.slice(index + length) : norm(text).slice(0, index) + ' ' + norm(text).slice(index + length)).replace(/\s+/g, ' ').trim();

const untilPart = (w: Wall) => `UNTIL=${String(w.year).padStart(4, '0')}${String(w.month).padStart(2, '0')}${String(w.day).padStart(2, '0')}T235959Z`;

function recurrenceOf(t: string): Recurrence | null {
  const interval = intervalOf(t);
  if (interval) return interval;
  const daily: [RegExp, Recurrence['describe']][] = [
    [/\b(every ?day|each day|daily)\b/, { en: 'every day', es: 'todos los días' }],
    [/\b(todos los dias|cada dia|diariamente|a diario)\b/, { en: 'every day', es: 'todos los días' }],
    [/\b(every weekday|on weekdays)\b/, { en: 'every weekday', es: 'de lunes a viernes' }],
    [/\b(entre semana|de lunes a viernes)\b/, { en: 'every weekday', es: 'de lunes a viernes' }],
  ];
  for (const [re, describe] of daily) if (re.test(t)) return { rrule: describe.en === 'every weekday' ? 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR' : 'FREQ=DAILY', match: re, describe };
  const en = /\bevery (sunday|monday|tuesday|wednesday|thursday|friday|saturday)s?\b/.exec(t);
  if (en) {
    const i = DAYS_EN.indexOf(en[1]!);
    return { rrule: `FREQ=WEEKLY;BYDAY=${BYDAY[i]}`, match: new RegExp(en[0]), describe: { en: `every ${cap(DAYS_EN[i]!)}`, es: `cada ${DAYS_ES[i]}` } };
  }
  const es = /\b(?:cada|todos los) (domingo|lunes|martes|miercoles|jueves|viernes|sabado)s?\b/.exec(t);
  if (es) {
    const i = DAYS_ES.indexOf(es[1]!);
    return { rrule: `FREQ=WEEKLY;BYDAY=${BYDAY[i]}`, match: new RegExp(es[0]), describe: { en: `every ${cap(DAYS_EN[i]!)}`, es: `cada ${es[1]}` } };
  }
  if (/\b(every week|weekly)\b/.test(t)) return { rrule: 'FREQ=WEEKLY', match: /\b(every week|weekly)\b/, describe: { en: 'every week', es: 'cada semana' } };
  if (/\b(cada semana|semanalmente)\b/.test(t)) return { rrule: 'FREQ=WEEKLY', match: /\b(cada semana|semanalmente)\b/, describe: { en: 'every week', es: 'cada semana' } };
  return null;
}

const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);

const CREATE = /^(?:please\s+|por favor\s+)?(remind me|set a reminder|recuerdame|recordarme|recordatorio)\b[\s,:]*/;

/** Reads one message; null when it is not a reminder command (the pipeline goes on). */
export function parseCommand(text: string, now: Date, tz: string): Command | null {
  const t = norm(text).replace(/[.!?¡¿]+$/g, '').replace(/^[¡¿]/, '');
  if (/^(my reminders|list reminders|show reminders|reminders)$/.test(t)) return { kind: 'list', lang: 'en' };
  if (/^(mis recordatorios|ver recordatorios|recordatorios)$/.test(t)) return { kind: 'list', lang: 'es' };
  if (/^(stop|cancel|delete) (all )?(my )?reminders$/.test(t)) return { kind: 'cancel-all', lang: 'en' };
  if (/^(parar|cancelar|detener|borrar) (todos )?(los |mis )?recordatorios$/.test(t)) return { kind: 'cancel-all', lang: 'es' };
  const cancel = /^(cancel|delete|stop)( reminder)? #?(\d{1,6})$/.exec(t);
  if (cancel) return { kind: 'cancel', lang: 'en', shortId: Number(cancel[3]) };
  const cancelar = /^(cancelar|borrar|parar)( (el )?recordatorio)? #?(\d{1,6})$/.exec(t);
  if (cancelar) return { kind: 'cancel', lang: 'es', shortId: Number(cancelar[4]) };

  const head = CREATE.exec(t);
  if (!head) return null;
  const lang: Lang = head[1]!.startsWith('remind') || head[1] === 'set a reminder' ? 'en' : 'es';
  // Work on the original text (accents kept for the task), cut where the normalised head ended.
  let rest = text.trim().replace(/^[¡¿]/, '').slice(headLength(text.trim().replace(/^[¡¿]/, ''), head[0].length)).trim();
  const rec = recurrenceOf(norm(rest));
  if (rec) rest = cutNormalised(rest, rec.match);

  // chrono reads "tomorrow" and bare times against a reference whose local fields are the zone's wall clock.
  const w = wallOf(now, tz);
  const ref = new Date(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  // An end to a repetition ("until Friday", "for 10 days") is cut out before the time of day is read.
  const end = rec ? endOf(rest, lang, ref) : null;
  if (end) rest = end.rest;
  const parser = lang === 'es' ? chrono.es : chrono;
  const results = parser.parse(rest, ref, { forwardDate: true });
  const found = results[0];
  if (rec?.tooOften) return { kind: 'unclear', lang, why: 'too-often' };
  if (rec?.stepMinutes && !found?.start.isCertain('hour')) {
    // "every 2 hours", "every 30 minutes": the first one step from now, on the minute.
    const first = wallOf(new Date(now.getTime() + rec.stepMinutes * 60_000), tz);
    const task = tidyTask(found ? rest.slice(0, found.index) + ' ' + rest.slice(found.index + found.text.length) : rest, lang);
    if (!task) return { kind: 'unclear', lang, why: 'no-task' };
    return repeating(lang, task, rec.rrule, { ...first, second: 0 }, end, tz, now, false);
  }
  if (!found) return { kind: 'unclear', lang, why: 'no-time' };
  const s = found.start;
  if (!s.isCertain('hour') && !s.isCertain('day') && !s.isCertain('weekday')) return { kind: 'unclear', lang, why: 'no-time' };
  // Several times of day for one repetition: "every day at 8am and 8pm", "todos los días a las 8 y a las 20".
  const times = [found];
  if (rec && !rec.stepMinutes && s.isCertain('hour')) {
    for (const more of results.slice(1)) {
      const last = times.at(-1)!;
      const between = rest.slice(last.index + last.text.length, more.index);
      if (!more.start.isCertain('hour') || !/^\s*(?:,|and|&|y|e)?\s*(?:,|and|&|y|e)?\s*(?:at|a las|a la|a)?\s*$/i.test(between)) break;
      times.push(more);
    }
  }
  const lastTime = times.at(-1)!;
  const task = tidyTask(rest.slice(0, found.index) + ' ' + rest.slice(lastTime.index + lastTime.text.length), lang);
  if (!task) return { kind: 'unclear', lang, why: 'no-task' };
  const explicitTime = s.isCertain('hour');
  const hour = s.get('hour') ?? 9;
  const minute = s.get('minute') ?? 0;
  if (rec) {
    if (!explicitTime) return { kind: 'unclear', lang, why: 'no-time' };
    const start = { year: w.year, month: w.month, day: w.day, hour, minute, second: 0 };
    if (rec.stepMinutes) {
      const at = /FREQ=HOURLY/.test(rec.rrule) ? `;BYMINUTE=${minute};BYSECOND=0` : '';
      return repeating(lang, task, `${rec.rrule}${at}`, start, end, tz, now, explicitTime, rec.describe[lang]);
    }
    const clock = timesOfDay(times.map((f) => ({ hour: f.start.get('hour')!, minute: f.start.get('minute') ?? 0 })), rec.rrule);
    if (!clock) return { kind: 'unclear', lang, why: 'no-time' };
    const first = times.length > 1 ? { ...start, hour: 0, minute: 0 } : start;
    return repeating(lang, task, `${rec.rrule};${clock}`, first, end, tz, now, explicitTime, rec.describe[lang]);
  }
  const relative = /\b(in|en|dentro de)\s+\d+|\b(in|en) (an?|una?) (hour|minute|hora|minuto)/i.test(found.text);
  const at = relative
    ? new Date(now.getTime() + (found.start.date().getTime() - ref.getTime()))
    : zonedInstant({ year: s.get('year')!, month: s.get('month')!, day: s.get('day')!, hour, minute, second: 0 }, tz);
  if (at.getTime() <= now.getTime()) return { kind: 'unclear', lang, why: 'past' };
  return { kind: 'create', lang, task, once: at, describe: '', explicitTime: explicitTime && !relative };
}

/**
 * A repeating reminder, with its end: "until"/"for N days" as the rule's UNTIL (the end of that local
 * day), "N times" as COUNT. COUNT counts from the rule's start, so the start moves to the first
 * occurrence after now (one earlier today would otherwise be counted).
 */
function repeating(lang: Lang, task: string, rule: string, start: Wall, end: ReturnType<typeof endOf>, tz: string, now: Date, explicitTime: boolean, describe = ''): Command {
  let rrule = rule;
  let from = start;
  if (end?.until) rrule += `;${untilPart(end.until)}`;
  else if (end?.days) {
    // N days counted from the day of the first occurrence.
    const first = nextOccurrence(rule, start, tz, new Date(now.getTime() - 1));
    if (!first) return { kind: 'unclear', lang, why: 'past' };
    const f = wallOf(first, tz);
    const last = new Date(Date.UTC(f.year, f.month - 1, f.day + end.days - 1));
    rrule += `;${untilPart({ year: last.getUTCFullYear(), month: last.getUTCMonth() + 1, day: last.getUTCDate(), hour: 23, minute: 59 })}`;
  }
  if (end?.count) {
    const first = nextOccurrence(rrule, start, tz, new Date(now.getTime() - 1));
    if (!first) return { kind: 'unclear', lang, why: 'past' };
    const f = wallOf(first, tz);
    from = { year: f.year, month: f.month, day: f.day, hour: f.hour, minute: f.minute, second: 0 };
    rrule += `;COUNT=${end.count}`;
  }
  if (end && !nextOccurrence(rrule, from, tz, new Date(now.getTime() - 1))) return { kind: 'unclear', lang, why: 'past' };
  return { kind: 'create', lang, task, rrule, start: from, describe, explicitTime };
}

/**
 * The time-of-day part of a rule for one or more times: `BYHOUR=8;BYMINUTE=0;BYSECOND=0`, or for
 * "8:30am and 8pm" every hour-minute pair picked out of the day's set by position (`BYSETPOS`), which
 * only a daily rule can do (null otherwise: the times must then share their minutes).
 */
function timesOfDay(times: { hour: number; minute: number }[], rule: string): string | null {
  const hours = [...new Set(times.map((t) => t.hour))].sort((a, b) => a - b);
  const minutes = [...new Set(times.map((t) => t.minute))].sort((a, b) => a - b);
  const base = `BYHOUR=${hours.join(',')};BYMINUTE=${minutes.join(',')};BYSECOND=0`;
  if (minutes.length === 1) return base;
  if (!/^FREQ=DAILY(;INTERVAL=\d+)?$/.test(rule)) return null;
  const wanted = new Set(times.map((t) => t.hour * 60 + t.minute));
  const set = hours.flatMap((h) => minutes.map((m) => h * 60 + m));
  return `${base};BYSETPOS=${set.flatMap((x, i) => (wanted.has(x) ? [i + 1] : [])).join(',')}`;
}

/** Length in the original text of a prefix that is `normLength` characters once normalised. */
function headLength(original: string, normLength: number): number {
  const strip = (x: string) => x.normalize('NFD').replace(/\p{M}/gu, '');
  for (let i = 0; i <= original.length; i++) if (strip(original.slice(0, i)).length >= normLength) return i;
  return original.length;
}

/** Removes the first match of a pattern written against the normalised text (same length: NFD marks are dropped). */
function cutNormalised(text: string, re: RegExp): string {
  const base = text.normalize('NFD').replace(/\p{M}/gu, '');
  const m = re.exec(base.toLowerCase());
  if (!m || base.length !== text.length) return norm(text).replace(re, ' ').replace(/\s+/g, ' ').trim();
  return (text.slice(0, m.index) + ' ' + text.slice(m.index + m[0].length)).replace(/\s+/g, ' ').trim();
}

function tidyTask(text: string, lang: Lang): string {
  let t = text.replace(/\s+/g, ' ').trim();
  const lead = lang === 'en' ? /^(to|that|about|of|at|on|starting|from|,)\s+/i : /^(que|de|a|para|el|la|desde|a partir de|,)\s+/i;
  const trail = lang === 'en' ? /\s+(at|on|to|by|from|starting|,)$/i : /\s+(a|el|la|para|que|de|desde|a partir de|,)$/i;
  for (let i = 0; i < 3; i++) t = t.replace(lead, '').replace(trail, '').replace(/^[,;:\s]+|[,;:\s.!]+$/g, '');
  return t.slice(0, 300);
}

/** The reminder as sent: the person's words, turned to them ("take my pills" -> "take your pills"). */
export function reminderText(task: string, lang: Lang): string {
  if (lang === 'es') return `Recordatorio: ${task.replace(/\bmis\b/gi, 'tus').replace(/\bmi\b/gi, 'tu')}`;
  return `Reminder: ${task.replace(/\bmy\b/gi, 'your').replace(/\bmyself\b/gi, 'yourself')}`;
}

export function langOf(language: string | null | undefined): Lang {
  return language?.toLowerCase().startsWith('es') ? 'es' : 'en';
}

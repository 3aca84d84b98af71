/**
 * Reminder commands in plain language, English and Spanish: "remind me to take my pills every day at
 * 8am", "remind me tomorrow at 3pm to call the pharmacy", "recuérdame tomar mis pastillas todos los
 * días a las 8", "my reminders" / "mis recordatorios", "cancel 2" / "cancelar 2", "stop reminders" /
 * "parar recordatorios". Dates and times are read by chrono-node in the person's time zone; repetition
 * becomes an RRULE. Pure: the clock is an argument.
 */
import * as chrono from 'chrono-node';
import { wallOf, zonedInstant, type Wall } from './time.js';

export type Lang = 'en' | 'es';

export type Command =
  | { kind: 'create'; lang: Lang; task: string; once?: Date; rrule?: string; start?: Wall; describe: string; explicitTime: boolean }
  | { kind: 'list'; lang: Lang }
  | { kind: 'cancel'; lang: Lang; shortId: number }
  | { kind: 'cancel-all'; lang: Lang }
  /** A reminder request we could not read: the reply says how to write one. */
  | { kind: 'unclear'; lang: Lang; why: 'no-time' | 'no-task' | 'past' };

const norm = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();

const DAYS_EN = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const DAYS_ES = ['domingo', 'lunes', 'martes', 'miercoles', 'jueves', 'viernes', 'sabado'];
const BYDAY = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];

interface Recurrence {
  rrule: string;
  /** The phrase as the person wrote it (normalised), removed from the text before dates are read. */
  match: RegExp;
  describe: { en: string; es: string };
}

function recurrenceOf(t: string): Recurrence | null {
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
  const parser = lang === 'es' ? chrono.es : chrono;
  const found = parser.parse(rest, ref, { forwardDate: true })[0];
  if (!found) return { kind: 'unclear', lang, why: 'no-time' };
  const s = found.start;
  if (!s.isCertain('hour') && !s.isCertain('day') && !s.isCertain('weekday')) return { kind: 'unclear', lang, why: 'no-time' };
  const task = tidyTask(rest.slice(0, found.index) + ' ' + rest.slice(found.index + found.text.length), lang);
  if (!task) return { kind: 'unclear', lang, why: 'no-task' };
  const explicitTime = s.isCertain('hour');
  const hour = s.get('hour') ?? 9;
  const minute = s.get('minute') ?? 0;
  if (rec) {
    if (!explicitTime) return { kind: 'unclear', lang, why: 'no-time' };
    const start = { year: w.year, month: w.month, day: w.day, hour, minute, second: 0 };
    return { kind: 'create', lang, task, rrule: `${rec.rrule};BYHOUR=${hour};BYMINUTE=${minute};BYSECOND=0`, start, describe: rec.describe[lang], explicitTime };
  }
  const relative = /\b(in|en|dentro de)\s+\d+|\b(in|en) (an?|una?) (hour|minute|hora|minuto)/i.test(found.text);
  const at = relative
    ? new Date(now.getTime() + (found.start.date().getTime() - ref.getTime()))
    : zonedInstant({ year: s.get('year')!, month: s.get('month')!, day: s.get('day')!, hour, minute, second: 0 }, tz);
  if (at.getTime() <= now.getTime()) return { kind: 'unclear', lang, why: 'past' };
  return { kind: 'create', lang, task, once: at, describe: '', explicitTime: explicitTime && !relative };
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
  const lead = lang === 'en' ? /^(to|that|about|of|at|on|,)\s+/i : /^(que|de|a|para|el|la|,)\s+/i;
  const trail = lang === 'en' ? /\s+(at|on|to|by|,)$/i : /\s+(a|el|la|para|que|de|,)$/i;
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

/**
 * The `reminders` stage: a person's own reminder commands on their channel. Anything else passes on.
 * Place it after the safety stages (crisis-guard, moderation) and before answer stages.
 */
import type { StageDefinition } from 'parley';
import type { ContactsDirectory } from './contacts-api.js';
import { parseCommand, type Lang } from './parse.js';
import { MIN_INTERVAL_MINUTES } from './time.js';
import type { Reminder, RemindersService } from './service.js';
import type { RemindersMetrics } from './metrics.js';
import type { RemindersSettings } from './types.js';

export const REMINDERS_STAGE = 'reminders';

const say = {
  en: {
    once: (when: string) => when,
    created: (id: number, task: string, when: string, tz: string, quiet: boolean) =>
      `OK, reminder #${id}: "${task}" ${when} (${tz}).${quiet ? ' That falls in quiet hours, so it will come when they end.' : ''} Reply "my reminders" to see them or "cancel ${id}" to cancel it.`,
    none: 'You have no reminders. Text "remind me ..." to set one, e.g. "remind me tomorrow at 3pm to call the pharmacy".',
    list: (lines: string[]) => `Your reminders:\n${lines.join('\n')}\nReply "cancel <number>" to cancel one.`,
    cancelled: (id: number, task: string) => `Cancelled reminder #${id} ("${task}").`,
    notFound: (id: number) => `You have no active reminder #${id}. Reply "my reminders" to see them.`,
    cancelledAll: (n: number) => (n ? `Cancelled all ${n} of your reminders.` : 'You had no reminders to cancel.'),
    unclear: {
      'no-time': 'I could not tell when. Try "remind me tomorrow at 3pm to call the pharmacy" or "remind me to take my pills every day at 8am".',
      'no-task': 'What should I remind you about? Try "remind me tomorrow at 3pm to call the pharmacy".',
      past: 'That time has already passed. Try a later time.',
      'too-often': `Reminders can repeat at most every ${MIN_INTERVAL_MINUTES} minutes. Try "every 30 minutes" or "every hour".`,
    },
    tooMany: (n: number) => `You already have ${n} reminders. Cancel one first ("my reminders").`,
  },
  es: {
    once: (when: string) => when,
    created: (id: number, task: string, when: string, tz: string, quiet: boolean) =>
      `Listo, recordatorio #${id}: "${task}" ${when} (${tz}).${quiet ? ' Cae en horas de silencio: llegará cuando terminen.' : ''} Responde "mis recordatorios" para verlos o "cancelar ${id}" para cancelarlo.`,
    none: 'No tienes recordatorios. Escribe "recuérdame ..." para crear uno, por ejemplo "recuérdame mañana a las 3pm llamar a la farmacia".',
    list: (lines: string[]) => `Tus recordatorios:\n${lines.join('\n')}\nResponde "cancelar <número>" para cancelar uno.`,
    cancelled: (id: number, task: string) => `Recordatorio #${id} cancelado ("${task}").`,
    notFound: (id: number) => `No tienes un recordatorio #${id} activo. Responde "mis recordatorios" para verlos.`,
    cancelledAll: (n: number) => (n ? `Cancelados tus ${n} recordatorios.` : 'No tenías recordatorios.'),
    unclear: {
      'no-time': 'No entendí cuándo. Prueba "recuérdame mañana a las 3pm llamar a la farmacia" o "recuérdame tomar mis pastillas todos los días a las 8".',
      'no-task': '¿Qué quieres que te recuerde? Prueba "recuérdame mañana a las 3pm llamar a la farmacia".',
      past: 'Esa hora ya pasó. Prueba una hora más tarde.',
      'too-often': `Los recordatorios pueden repetirse como mucho cada ${MIN_INTERVAL_MINUTES} minutos. Prueba "cada 30 minutos" o "cada hora".`,
    },
    tooMany: (n: number) => `Ya tienes ${n} recordatorios. Cancela uno primero ("mis recordatorios").`,
  },
} as const;

/**
 * When a reminder goes, in the person's zone and language: "every day at 8:00 AM and 8:00 PM", "every
 * 30 minutes, next at 2:30 PM", "every 2 months at 9:00 AM, next on Monday, May 6", "tomorrow ...",
 * with its end ("until ...", "5 times").
 */
export function describeWhen(r: Pick<Reminder, 'rrule' | 'nextAt' | 'timezone'>, lang: Lang, describe?: string): string {
  const locale = lang === 'es' ? 'es' : 'en-US';
  const es = lang === 'es';
  const time = (d: Date, tz = r.timezone) => new Intl.DateTimeFormat(locale, { timeZone: tz, hour: 'numeric', minute: '2-digit' }).format(d);
  const date = (d: Date, tz = r.timezone) => new Intl.DateTimeFormat(locale, { timeZone: tz, weekday: 'long', month: 'long', day: 'numeric' }).format(d);
  if (r.rrule && r.nextAt) {
    const every = describe || describeRule(r.rrule, lang);
    const parts = ruleParts(r.rrule);
    let at: string;
    if (parts.FREQ === 'HOURLY' || parts.FREQ === 'MINUTELY') at = es ? `${every}, el próximo a las ${time(r.nextAt)}` : `${every}, next at ${time(r.nextAt)}`;
    else {
      // Several times a day are read from the rule (wall times, written as UTC to format them).
      const clock = clockTimes(parts);
      const times = clock.length > 1 ? list(clock.map((m) => time(new Date(Date.UTC(2000, 0, 1, Math.floor(m / 60), m % 60)), 'UTC')), lang) : time(r.nextAt);
      at = es ? `${every} a las ${times}` : `${every} at ${times}`;
      if ((parts.FREQ === 'MONTHLY' || parts.FREQ === 'YEARLY') && !parts.BYMONTHDAY) at += es ? `, el próximo el ${date(r.nextAt)}` : `, next on ${date(r.nextAt)}`;
    }
    const until = /UNTIL=(\d{4})(\d{2})(\d{2})/.exec(r.rrule);
    // UNTIL is a floating local date (the end of that day in the reminder's zone).
    if (until) at += es ? `, hasta el ${date(new Date(Date.UTC(+until[1]!, +until[2]! - 1, +until[3]!, 12)), 'UTC')}` : `, until ${date(new Date(Date.UTC(+until[1]!, +until[2]! - 1, +until[3]!, 12)), 'UTC')}`;
    if (parts.COUNT) at += es ? `, ${parts.COUNT} ${parts.COUNT === '1' ? 'vez' : 'veces'}` : `, ${parts.COUNT === '1' ? 'once' : `${parts.COUNT} times`}`;
    return at;
  }
  if (!r.nextAt) return '';
  return es ? `el ${date(r.nextAt)} a las ${time(r.nextAt)}` : `on ${date(r.nextAt)} at ${time(r.nextAt)}`;
}

const ruleParts = (rrule: string): Record<string, string> => Object.fromEntries(rrule.split(';').map((p) => p.split('=') as [string, string]));

/** The times of day (minutes after midnight) a rule names with BYHOUR/BYMINUTE (and BYSETPOS), in order. */
function clockTimes(parts: Record<string, string>): number[] {
  if (!parts.BYHOUR) return [];
  const hours = parts.BYHOUR.split(',').map(Number).sort((a, b) => a - b);
  const minutes = (parts.BYMINUTE ?? '0').split(',').map(Number).sort((a, b) => a - b);
  const set = hours.flatMap((h) => minutes.map((m) => h * 60 + m));
  return parts.BYSETPOS ? parts.BYSETPOS.split(',').map((p) => set[Number(p) > 0 ? Number(p) - 1 : set.length + Number(p)]!).filter((x) => x !== undefined) : set;
}

const DAY_NAMES = { en: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'], es: ['domingo', 'lunes', 'martes', 'miércoles', 'jueves', 'viernes', 'sábado'] };
const BYDAY = ['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'];
const ordinal = (n: number) => `${n}${n % 10 === 1 && n !== 11 ? 'st' : n % 10 === 2 && n !== 12 ? 'nd' : n % 10 === 3 && n !== 13 ? 'rd' : 'th'}`;
const list = (items: string[], lang: Lang) => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} ${lang === 'es' ? 'y' : 'and'} ${items.at(-1)}`);

const NTH_NAMES = { en: { '1': 'first', '2': 'second', '3': 'third', '4': 'fourth', '-1': 'last' }, es: { '1': 'primer', '2': 'segundo', '3': 'tercer', '4': 'cuarto', '-1': 'último' } } as Record<Lang, Record<string, string>>;

/** "every day", "every other day", "every 30 minutes", "every 2 hours", "every weekday", "every Monday and Thursday", "every month on the 1st", "the first Monday of every month", "every 2 months" (and in Spanish). */
export function describeRule(rrule: string, lang: Lang): string {
  const parts = ruleParts(rrule);
  const es = lang === 'es';
  const n = Number(parts.INTERVAL ?? '1');
  if (parts.FREQ === 'MINUTELY') return es ? `cada ${n} minutos` : `every ${n} minutes`;
  if (parts.FREQ === 'HOURLY') return n === 1 ? (es ? 'cada hora' : 'every hour') : es ? `cada ${n} horas` : `every ${n} hours`;
  if (parts.FREQ === 'DAILY' && !parts.BYDAY) {
    if (n === 1) return es ? 'todos los días' : 'every day';
    if (n === 2) return es ? 'cada dos días' : 'every other day';
    return es ? `cada ${n} días` : `every ${n} days`;
  }
  if (parts.FREQ === 'WEEKLY') {
    const every = n === 1 ? (es ? 'cada' : 'every') : n === 2 ? (es ? 'cada dos semanas, el' : 'every other week on') : es ? `cada ${n} semanas, el` : `every ${n} weeks on`;
    if (parts.BYDAY === 'MO,TU,WE,TH,FR' && n === 1) return es ? 'de lunes a viernes' : 'every weekday';
    const days = parts.BYDAY?.split(',') ?? [];
    if (days.length && days.every((d) => BYDAY.includes(d))) return `${every} ${list(days.map((d) => DAY_NAMES[lang][BYDAY.indexOf(d)]!), lang)}`;
    if (!days.length) return n === 1 ? (es ? 'cada semana' : 'every week') : n === 2 ? (es ? 'cada dos semanas' : 'every other week') : es ? `cada ${n} semanas` : `every ${n} weeks`;
  }
  if (parts.FREQ === 'MONTHLY') {
    const months = n === 1 ? (es ? 'cada mes' : 'every month') : n === 2 ? (es ? 'cada dos meses' : 'every other month') : es ? `cada ${n} meses` : `every ${n} months`;
    const nth = /^([+-]?\d)(MO|TU|WE|TH|FR|SA|SU)$/.exec(parts.BYDAY ?? '');
    if (nth && !parts.BYMONTHDAY) {
      const pos = NTH_NAMES[lang][String(Number(nth[1]))];
      const day = DAY_NAMES[lang][BYDAY.indexOf(nth[2]!)];
      if (pos) return es ? `el ${pos} ${day} de ${months}` : `on the ${pos} ${day} of ${months}`;
    }
    if (/^\d{1,2}$/.test(parts.BYMONTHDAY ?? '') && !parts.BYDAY) return es ? `${months} el día ${parts.BYMONTHDAY}` : `${months} on the ${ordinal(Number(parts.BYMONTHDAY))}`;
    if (!parts.BYMONTHDAY && !parts.BYDAY) return months;
  }
  return es ? 'repetido' : 'repeating';
}

/** The confirmation of a reminder made by text (the same words when a re-run of the message finds it). */
function confirmation(r: Reminder, lang: Lang, describe: string): string {
  const quiet = !!r.dueAt && !!r.nextAt && r.dueAt.getTime() !== r.nextAt.getTime();
  return say[lang].created(r.shortId, r.task, describeWhen(r, lang, describe || undefined), r.timezone, quiet);
}

export function remindersStage(deps: { service: RemindersService; contacts: ContactsDirectory; metrics: RemindersMetrics }): StageDefinition<RemindersSettings> {
  const { service, contacts, metrics } = deps;
  return {
    name: REMINDERS_STAGE,
    async handle(stage, next) {
      if (!stage.settings.commands) return next();
      const tenantId = stage.tenant.id;
      const address = { channel: stage.message.channel, address: stage.message.from };
      const existing = await contacts.resolve(tenantId, address, { create: false });
      const tz = existing ? contacts.timezoneOf(existing) : stage.tenant.timezone;
      const now = stage.message.receivedAt;
      const cmd = parseCommand(stage.message.text, now, tz);
      if (!cmd) return next();
      metrics.commands.inc({ tenant: tenantId, command: cmd.kind, lang: cmd.lang });
      const t = say[cmd.lang];
      // A run overtaken by a newer one (recovery) leaves the work to it. The newer run may still follow a
      // first run that did act: creation and cancellation are keyed by the message id, so it finds that work.
      if (!(await stage.isCurrentRun())) return stage.stop('reminders: not the current run');
      const messageId = stage.message.id;
      const contact = existing ?? (await contacts.resolve(tenantId, address));
      if (!contact) return next();
      stage.annotate('reminders.command', cmd.kind);
      if (cmd.kind === 'unclear') {
        stage.reply(t.unclear[cmd.why]);
        return stage.stop('reminders: command not understood');
      }
      if (cmd.kind === 'list') {
        const list = await service.listReminders(tenantId, contact.id);
        stage.reply(list.length ? t.list(list.map((r) => `#${r.shortId} ${r.task}: ${describeWhen(r, cmd.lang)}`)) : t.none);
        return stage.stop('reminders: listed');
      }
      if (cmd.kind === 'cancel') {
        const r = await service.cancelReminder(tenantId, { contactId: contact.id, shortId: cmd.shortId }, messageId);
        stage.reply(r ? t.cancelled(r.shortId, r.task) : t.notFound(cmd.shortId));
        return stage.stop('reminders: cancel');
      }
      if (cmd.kind === 'cancel-all') {
        stage.reply(t.cancelledAll(await service.cancelAll(tenantId, contact.id, messageId)));
        return stage.stop('reminders: cancel all');
      }
      // This message already made its reminder (a re-run): answer with that one, and make nothing.
      const prior = await service.reminderFromMessage(tenantId, messageId);
      if (prior) {
        stage.reply(confirmation(prior, cmd.lang, cmd.describe));
        return stage.stop('reminders: created (already, by this message)');
      }
      const active = await service.listReminders(tenantId, contact.id);
      if (active.length >= stage.settings.maxPerContact) {
        stage.reply(t.tooMany(active.length));
        return stage.stop('reminders: too many');
      }
      if (!contact.language) await contacts.update(tenantId, contact.id, { language: cmd.lang });
      // The person wrote a clock time: that is asking for it, quiet hours or not (a 10pm pill stays at 10pm).
      const r = await service.createReminder(
        tenantId,
        contact,
        { task: cmd.task, lang: cmd.lang, ...(cmd.once ? { once: cmd.once } : { rrule: cmd.rrule!, start: cmd.start! }), timezone: tz, allowQuietHours: cmd.explicitTime, source: 'conversation', channel: address.channel, address: address.address, sourceMessageId: messageId },
        now,
      );
      stage.reply(confirmation(r, cmd.lang, cmd.describe));
      return stage.stop('reminders: created');
    },
  };
}

/**
 * Wall-clock time in IANA zones, recurrence and quiet hours, as pure functions of explicit instants.
 *
 * Recurrences are RRULEs read in *local wall time*: the rule runs on "floating" dates (the zone's
 * wall-clock fields written as UTC, rrule's own convention without TZID), and each occurrence is then
 * placed in the zone. So a daily 08:00 stays 08:00 local across a DST change; a wall time that does not
 * exist (02:30 on a spring-forward night) moves forward by the gap; one that occurs twice takes the first.
 */
import rrulePkg from 'rrule';
import { CronExpressionParser } from 'cron-parser';

const { RRule } = rrulePkg;

export interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second?: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const formatter = (tz: string) => {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(tz, f);
  }
  return f;
};

/** The wall-clock fields of an instant in a zone. */
export function wallOf(instant: Date, tz: string): Required<Wall> & { weekday: number } {
  const parts: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(instant)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour! % 24, minute: parts.minute!, second: parts.second! };
  return { ...wall, weekday: new Date(floating(wall)).getUTCDay() };
}

/** Wall-clock fields as a UTC timestamp (rrule's floating dates). */
export function floating(w: Wall): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second ?? 0);
}

const wallOfFloating = (ms: number): Wall => {
  const d = new Date(ms);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
};

const offsetAt = (ms: number, tz: string) => floating(wallOf(new Date(ms), tz)) - Math.floor(ms / 1000) * 1000;

/** The instant a wall-clock time in a zone stands for (forward over a gap, the first of a repeated hour). */
export function zonedInstant(w: Wall, tz: string): Date {
  const f = floating(w);
  const first = f - offsetAt(f, tz);
  const second = f - offsetAt(first, tz);
  if (second !== first && floating(wallOf(new Date(second), tz)) === f) return new Date(Math.min(first, second));
  if (floating(wallOf(new Date(first), tz)) === f) {
    // The earlier of two readings of a repeated hour.
    const earlier = first - 3600_000;
    return floating(wallOf(new Date(earlier), tz)) === f ? new Date(earlier) : new Date(first);
  }
  return new Date(Math.max(first, second));
}

/** `YYYY-MM-DDTHH:mm[:ss]` (local wall time) to fields; null when malformed. */
export function parseWall(text: string): Wall | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  if (!m) return null;
  const w = { year: +m[1]!, month: +m[2]!, day: +m[3]!, hour: +m[4]!, minute: +m[5]!, second: +(m[6] ?? 0) };
  const back = wallOfFloating(floating(w));
  return back.year === w.year && back.month === w.month && back.day === w.day && w.hour < 24 && w.minute < 60 ? w : null;
}

export function formatWall(w: Wall): string {
  const p = (n: number, l = 2) => String(n).padStart(l, '0');
  return `${p(w.year, 4)}-${p(w.month)}-${p(w.day)}T${p(w.hour)}:${p(w.minute)}:${p(w.second ?? 0)}`;
}

/** The shortest repetition a reminder may have (a phone buzzing every few minutes is not a reminder). */
export const MIN_INTERVAL_MINUTES = 15;

/** Throws with a readable message when the RRULE cannot be read (only the rule part: FREQ=...;...). */
export function checkRrule(rule: string): void {
  if (/DTSTART|TZID|\n/i.test(rule)) throw new Error('give the rule alone (FREQ=DAILY;...): the start and time zone are separate fields');
  const opts = RRule.parseString(rule);
  if (opts.freq === undefined) throw new Error('FREQ is required');
  if (opts.freq === RRule.MINUTELY) {
    if ((opts.interval ?? 1) < MIN_INTERVAL_MINUTES) throw new Error(`a MINUTELY rule needs INTERVAL=${MIN_INTERVAL_MINUTES} or more (reminders repeat at most every ${MIN_INTERVAL_MINUTES} minutes)`);
    return;
  }
  if (opts.freq !== RRule.HOURLY && opts.freq !== RRule.DAILY && opts.freq !== RRule.WEEKLY && opts.freq !== RRule.MONTHLY && opts.freq !== RRule.YEARLY) throw new Error('FREQ must be MINUTELY (every 15 minutes or more), HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY');
}

/**
 * The first occurrence strictly after `after` of a rule that started at `start` (local wall time) in
 * `tz`, or null when the rule has ended. Occurrences are wall-clock times placed in the zone.
 */
export function nextOccurrence(rule: string, start: Wall, tz: string, after: Date): Date | null {
  const r = new RRule({ ...RRule.parseString(rule), dtstart: new Date(floating(start)) });
  // Step back over a possible repeated hour: the floating "after" can read later than an occurrence's instant.
  let cursor = new Date(floating(wallOf(after, tz)) - 3 * 3600_000);
  if (cursor.getTime() < floating(start)) cursor = new Date(floating(start) - 1000);
  for (let i = 0; i < 1000; i++) {
    const occ = r.after(cursor, false);
    if (!occ) return null;
    const at = zonedInstant(wallOfFloating(occ.getTime()), tz);
    if (at.getTime() > after.getTime()) return at;
    cursor = occ;
  }
  return null;
}

/** The next cron time strictly after `after` in `tz` (cron-parser reads the pattern in the zone, DST included). */
export function nextCron(cron: string, tz: string, after: Date): Date {
  return CronExpressionParser.parse(cron, { tz, currentDate: new Date(after.getTime() + 1), strict: false }).next().toDate();
}

export function checkCron(cron: string, tz: string): void {
  CronExpressionParser.parse(cron, { tz, strict: false });
}

export interface QuietHours {
  /** `HH:mm` local, when sends stop. */
  start: string;
  /** `HH:mm` local, when they resume. */
  end: string;
}

const minutes = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
};

/** Whether an instant falls in the quiet hours of a zone. */
export function inQuietHours(at: Date, tz: string, q: QuietHours): boolean {
  const w = wallOf(at, tz);
  const now = w.hour * 60 + w.minute;
  const s = minutes(q.start);
  const e = minutes(q.end);
  if (s === e) return false;
  return s < e ? now >= s && now < e : now >= s || now < e;
}

/** When a send planned for `at` may go: `at` itself, or the end of the quiet hours it falls in. */
export function afterQuietHours(at: Date, tz: string, q: QuietHours | null): Date {
  if (!q || !inQuietHours(at, tz, q)) return at;
  const w = wallOf(at, tz);
  const e = minutes(q.end);
  const today = { year: w.year, month: w.month, day: w.day, hour: Math.floor(e / 60), minute: e % 60, second: 0 };
  const end = zonedInstant(today, tz);
  if (end.getTime() > at.getTime()) return end;
  const tomorrow = wallOfFloating(floating(today) + 24 * 3600_000);
  return zonedInstant(tomorrow, tz);
}

/**
 * What the owner reads: "schedule tomorrow" and "summary today" as short texts (they go out by SMS),
 * and the CSV exports. Pure functions of appointments, a time zone and a locale.
 */
import type { Appointment } from './store.js';

const time = (at: Date, timeZone: string, locale: string) => new Intl.DateTimeFormat(locale, { timeZone, hour: 'numeric', minute: '2-digit' }).format(at);
const day = (at: Date, timeZone: string, locale: string) => new Intl.DateTimeFormat(locale, { timeZone, weekday: 'short', month: 'short', day: 'numeric' }).format(at);
/** The local calendar date `YYYY-MM-DD` of `at` in `timeZone`. */
export const localDate = (at: Date, timeZone: string) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);

const line = (a: Appointment, timeZone: string, locale: string) => {
  const flags = [a.emergency ? 'EMERGENCY' : '', a.status === 'CONFIRMED' ? 'confirmed' : '', a.status === 'PENDING_RESCHEDULE' ? 'wants to reschedule' : '', a.status === 'CANCELLED' ? 'cancelled' : '', a.status === 'COMPLETED' ? 'done' : ''].filter(Boolean);
  return `${time(a.startsAt, timeZone, locale)} ${a.customerName ?? 'customer'}, ${a.serviceType}${flags.length ? ` (${flags.join(', ')})` : ''}`;
};

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "Tomorrow (Wed, Dec 2): 2 jobs." and one line per appointment still on (cancelled ones left out). */
export function scheduleText(appointments: readonly Appointment[], dayStart: Date, timeZone: string, locale = 'en-US'): string {
  const on = appointments.filter((a) => a.status !== 'CANCELLED');
  const head = `Tomorrow (${day(dayStart, timeZone, locale)}): ${on.length ? `${plural(on.length, 'job')}.` : 'no jobs booked.'}`;
  return [head, ...on.map((a) => line(a, timeZone, locale))].join('\n');
}

/** Today's counts (jobs, emergencies, done, cancelled, waiting to reschedule) and the jobs still on. */
export function summaryCounts(appointments: readonly Appointment[]) {
  return {
    jobs: appointments.filter((a) => a.status !== 'CANCELLED').length,
    emergencies: appointments.filter((a) => a.emergency && a.status !== 'CANCELLED').length,
    completed: appointments.filter((a) => a.status === 'COMPLETED').length,
    cancelled: appointments.filter((a) => a.status === 'CANCELLED').length,
    pendingReschedule: appointments.filter((a) => a.status === 'PENDING_RESCHEDULE').length,
  };
}

export function summaryText(appointments: readonly Appointment[], dayStart: Date, timeZone: string, locale = 'en-US'): string {
  const c = summaryCounts(appointments);
  const parts = [plural(c.jobs, 'job'), c.emergencies ? plural(c.emergencies, 'emergency', 'emergencies') : '', c.completed ? `${c.completed} done` : '', c.cancelled ? `${c.cancelled} cancelled` : '', c.pendingReschedule ? `${c.pendingReschedule} waiting to reschedule` : ''].filter(Boolean);
  const open = appointments.filter((a) => a.status !== 'CANCELLED' && a.status !== 'COMPLETED');
  return [`Today (${day(dayStart, timeZone, locale)}): ${parts.join(', ')}.`, ...open.map((a) => line(a, timeZone, locale))].join('\n');
}

/**
 * RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. A field a spreadsheet
 * would run as a formula (leading =, @, tab, or + / - not followed by digits only) gets a leading '.
 * A phone number (`+15551234567`) stays as it is.
 */
function csvField(value: unknown): string {
  let s = value === null || value === undefined ? '' : value instanceof Date ? value.toISOString() : String(value);
  if (/^[=@\t\r]/.test(s) || (/^[+-]/.test(s) && !/^[+-]\d+$/.test(s))) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

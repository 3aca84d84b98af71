/**
 * An example third-party plugin, loaded by module path exactly as an outside author's would be:
 *
 *   plugins:
 *     - name: office-hours
 *       module: ./examples/office-hours/index.ts
 *
 * Outside the tenant's opening hours (in the tenant's time zone) it answers with an "we're closed"
 * note once per conversation per closed period, then lets the pipeline go on.
 */
import { z } from 'zod';
import { definePlugin } from 'parley';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time as HH:MM');

const settingsSchema = z.object({
  /** Opening hours per weekday; a missing day is closed. */
  hours: z.partialRecord(z.enum(DAYS), z.object({ open: hhmm, close: hhmm })).default({}),
  closedReply: z.string().min(1).default("We're closed right now. We'll answer as soon as we open."),
  /** Stop the pipeline outside hours (true) or only add the note and go on (false). */
  stopWhenClosed: z.boolean().default(false),
});

export type OfficeHoursSettings = z.output<typeof settingsSchema>;

/** Weekday and minutes since midnight of `at` in `timeZone`. */
export function localTime(at: Date, timeZone: string): { day: (typeof DAYS)[number]; minutes: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = get('weekday').toLowerCase().slice(0, 3) as (typeof DAYS)[number];
  return { day, minutes: Number(get('hour')) * 60 + Number(get('minute')) };
}

export function isOpen(settings: OfficeHoursSettings, at: Date, timeZone: string): boolean {
  const { day, minutes } = localTime(at, timeZone);
  const today = settings.hours[day];
  if (!today) return false;
  const toMinutes = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3));
  return minutes >= toMinutes(today.open) && minutes < toMinutes(today.close);
}

export function createOfficeHours(options: { now?: () => Date } = {}) {
  const now = options.now ?? (() => new Date());
  return definePlugin({
    name: 'office-hours',
    kind: 'capability',
    description: 'Tells people when the business is closed, in the tenant time zone.',
    settingsSchema,
    setup(ctx) {
      ctx.stage({
        name: 'office-hours',
        async handle(stage, next) {
          if (isOpen(stage.settings, now(), stage.tenant.timezone)) return next();
          const history = await stage.history(5);
          const toldRecently = history.some((h) => h.direction === 'out' && h.text === stage.settings.closedReply && now().getTime() - h.at.getTime() < 12 * 3600_000);
          if (!toldRecently) stage.reply(stage.settings.closedReply);
          stage.annotate('office-hours.closed', true);
          if (stage.settings.stopWhenClosed) return stage.stop('closed');
          await next();
        },
      });
    },
  });
}

export default createOfficeHours();

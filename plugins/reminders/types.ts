/** The reminders plugin's options and per-tenant settings. */
import { z } from 'zod';

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:mm (24-hour local time)');

export const optionsSchema = z.object({
  /** When the tick that sends due reminders and schedule runs fires (cron, five or six fields). */
  tickCron: z.string().min(9).default('* * * * *'),
  /** Contacts read per page when a scheduled delivery selects its audience (memory holds one page). */
  audiencePageSize: z.number().int().min(1).max(10_000).default(500),
});

export const settingsSchema = z.object({
  /** No sends between `start` and `end` local time (the contact's zone, else the tenant's); null: none. A send planned inside moves to `end`. */
  quietHours: z.object({ start: hhmm, end: hhmm }).nullable().default({ start: '21:00', end: '08:00' }),
  /**
   * A planned send found late (the gateway was down) goes out when at most this many minutes late,
   * else it is skipped and recorded as missed. Floor of 2 minutes (the tick runs every minute).
   */
  missedGraceMinutes: z.number().int().min(0).max(7 * 24 * 60).default(60),
  /** Person commands on their channel ("remind me ...", "my reminders", "cancel 2"). */
  commands: z.boolean().default(true),
  /** Most active reminders one person may have. */
  maxPerContact: z.number().int().min(1).max(1000).default(25),
  /** Sends per minute per channel for scheduled deliveries (Twilio long code: about 60). Channels not listed: 60. */
  ratePerMinute: z.record(z.string(), z.number().int().min(1).max(100_000)).default({}),
  /**
   * Messages per second the tenant's sending number takes on a channel (Twilio: 1 for a US long code,
   * more for a toll-free number or a short code). A scheduled delivery's sends are spaced at this rate
   * (each send job waits for its slot); channels not listed are not spaced (the per-minute cap alone).
   */
  throughputPerSecond: z.record(z.string(), z.number().positive().max(10_000)).default({}),
});

export type RemindersSettings = z.output<typeof settingsSchema>;
export type RemindersOptions = z.output<typeof optionsSchema>;

/** Who a scheduled delivery goes to. Every filter given is ANDed; `{ all: true }` is everyone. */
export const audienceSchema = z
  .object({
    all: z.boolean().optional(),
    tags: z.array(z.string().min(1)).optional(),
    anyTags: z.array(z.string().min(1)).optional(),
    fields: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    /** No message either way for this many days. */
    inactiveDays: z.number().int().min(0).max(3650).optional(),
    /** Retention / follow-up: the last inbound message was at least this many days ago; once per silence. */
    sinceLastInboundDays: z.number().int().min(0).max(3650).optional(),
    /** Appointment reminders: a custom field holding an ISO time falls within the next `hoursBefore` hours; once per appointment. */
    beforeField: z.object({ field: z.string().min(1), hoursBefore: z.number().min(0.25).max(24 * 60) }).optional(),
  })
  .refine((a) => Object.keys(a).length > 0, 'name at least one filter, or { "all": true }');

export type Audience = z.output<typeof audienceSchema>;

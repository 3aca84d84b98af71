/** The contacts plugin's per-tenant settings. */
import { z } from 'zod';

export const settingsSchema = z.object({
  /** Make a contact for every new sender (off: only the API and imports make contacts; times are still recorded). */
  autoCreate: z.boolean().default(true),
  /** The channel of imported and created addresses that name none (`twilio-sms`). */
  defaultChannel: z.string().min(1).optional(),
  /**
   * A new address whose phone number (E.164, channel prefix aside) is already a contact's on another
   * channel joins that contact instead of making a new one (`whatsapp:+15551234567` and the SMS number
   * `+15551234567`). Off by default: a shared family phone, or a number given to someone else, would
   * join two people. Only when exactly one contact has the number.
   */
  linkSameNumber: z.boolean().default(false),
  /** Most rows one CSV import may have. */
  maxImportRows: z.number().int().min(1).max(100_000).default(5000),
});

export type ContactsSettings = z.output<typeof settingsSchema>;

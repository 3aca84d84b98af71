/** The contacts plugin's per-tenant settings. */
import { z } from 'zod';

export const settingsSchema = z.object({
  /** Make a contact for every new sender (off: only the API and imports make contacts; times are still recorded). */
  autoCreate: z.boolean().default(true),
  /** The channel of imported and created addresses that name none (`twilio-sms`). */
  defaultChannel: z.string().min(1).optional(),
  /** Most rows one CSV import may have. */
  maxImportRows: z.number().int().min(1).max(100_000).default(5000),
});

export type ContactsSettings = z.output<typeof settingsSchema>;

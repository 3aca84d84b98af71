/** Settings (per tenant) and options (deployment-wide) of the dsar plugin, and its shared types. */
import { z } from 'zod';

const days = z.number().int().min(1).max(36_500);

export const DEFAULT_ERASE_PHRASES = ['DELETE MY DATA', 'ERASE MY DATA', 'BORRAR MIS DATOS', 'ELIMINAR MIS DATOS', 'BORRA MIS DATOS'];
export const DEFAULT_EXPORT_PHRASES = ['SEND MY DATA', 'EXPORT MY DATA', 'ENVIAR MIS DATOS', 'ENVÍA MIS DATOS', 'ENVIA MIS DATOS', 'MIS DATOS'];

export const settingsSchema = z.object({
  /** The law the deadline comes from: GDPR one calendar month, CCPA 45 days; `dueDays` overrides. */
  regime: z.enum(['gdpr', 'ccpa']).default('gdpr'),
  dueDays: days.optional(),
  /** Raise an alert this many days before a request is due, and again (critical) once it is overdue. */
  alertBeforeDays: z.number().int().min(0).max(60).default(5),
  erasure: z
    .object({
      /** Erasure waits for an approval through the admin API. */
      requireApproval: z.boolean().default(true),
      /** The approving key must differ from the requesting key (two-person rule). */
      distinctApprover: z.boolean().default(true),
    })
    .default({ requireApproval: true, distinctApprover: true }),
  export: z.object({ requireApproval: z.boolean().default(false) }).default({ requireApproval: false }),
  /** People asking on their own channel. */
  endUser: z
    .object({
      enabled: z.boolean().default(true),
      erasePhrases: z.array(z.string().min(3)).default(DEFAULT_ERASE_PHRASES),
      exportPhrases: z.array(z.string().min(3)).default(DEFAULT_EXPORT_PHRASES),
      codeTtlMinutes: z.number().int().min(1).max(1440).default(30),
      maxAttempts: z.number().int().min(1).max(10).default(5),
      /** Send the download link of a finished export to the person who asked on their channel. */
      sendExportLink: z.boolean().default(true),
    })
    .default({ enabled: true, erasePhrases: DEFAULT_ERASE_PHRASES, exportPhrases: DEFAULT_EXPORT_PHRASES, codeTtlMinutes: 30, maxAttempts: 5, sendExportLink: true }),
  /** Keep N days per kind of data; absent: kept until erased. */
  retention: z
    .object({
      messages: days.optional(),
      media: days.optional(),
      callRecordings: days.optional(),
      moderationItems: days.optional(),
      modelLogs: days.optional(),
      /** Erase everything of a person whose last message is older than this (a full erasure, audited). */
      inactiveContacts: days.optional(),
      batchSize: z.number().int().min(10).max(10_000).default(500),
    })
    .default({ batchSize: 500 }),
});

export const optionsSchema = z.object({
  /** Where export files are written (relative: under the data directory). */
  exportDir: z.string().default('dsar-exports'),
  /** How long a download link is valid. */
  downloadTtlMinutes: z.number().int().min(1).max(60 * 24 * 30).default(60 * 24),
  /** HMAC key for download links (32+ characters, usually `${PARLEY_DSAR_SECRET}`); absent: a random key kept in the database. */
  signingSecret: z.string().min(32).optional(),
  /** When deadlines are checked, and when retention runs. */
  deadlineCron: z.string().default('*/15 * * * *'),
  retentionCron: z.string().default('17 3 * * *'),
  /** When the audit chain's head is written to the log (an `"auditHead"` line `parley audit verify` reads). */
  auditHeadCron: z.string().default('*/10 * * * *'),
  /** Scheduled backups (see README: Backups). */
  backup: z
    .object({
      cron: z.string().default('30 2 * * *'),
      dir: z.string().default('backups'),
      keep: z.number().int().min(1).max(365).default(7),
      /** Encrypt with the key in PARLEY_BACKUP_KEY (the job fails when it is unset). */
      encrypt: z.boolean().default(false),
    })
    .optional(),
});

export type DsarSettings = z.output<typeof settingsSchema>;
export type DsarOptions = z.output<typeof optionsSchema>;

export type RequestType = 'export' | 'erase';
export type RequestStatus = 'unverified' | 'pending-approval' | 'queued' | 'running' | 'completed' | 'rejected' | 'failed' | 'expired';

export interface DsarRequest {
  id: string;
  tenantId: string;
  type: RequestType;
  status: RequestStatus;
  subjectHashes: string[];
  contactId: string | null;
  reason: string;
  /** The key that asked (`key:<id>`, `operator:<hash>`, or `subject` for a person on their channel). */
  requestedBy: string;
  /** The name given in the request (the staff member who took it). */
  requesterName: string | null;
  /** The language the person wrote in (end-user requests): their messages use it. */
  language: 'en' | 'es';
  requestedVia: string;
  channel: string | null;
  approvedBy: string | null;
  decidedBy: string | null;
  decisionNote: string | null;
  progress: number;
  result: Record<string, unknown> | null;
  error: string | null;
  dueAt: Date;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  download: { expiresAt: Date; downloadedAt: Date | null } | null;
}

/** What a contacts plugin may provide (`ctx.provide(token('contacts.resolver'), ...)`): a contact's addresses. */
export type ContactResolver = (tenantId: string, contactId: string) => Promise<string[] | null>;
export const CONTACTS_RESOLVER = 'contacts.resolver';

/** Due date: GDPR one calendar month, CCPA 45 days, or the tenant's `dueDays`. */
export function dueDate(from: Date, settings: Pick<DsarSettings, 'regime' | 'dueDays'>): Date {
  if (settings.dueDays) return new Date(from.getTime() + settings.dueDays * 86_400_000);
  if (settings.regime === 'ccpa') return new Date(from.getTime() + 45 * 86_400_000);
  const d = new Date(from);
  const day = d.getUTCDate();
  d.setUTCMonth(d.getUTCMonth() + 1);
  // 31 January + one month is the last day of February, not 3 March.
  if (d.getUTCDate() !== day) d.setUTCDate(0);
  return d;
}

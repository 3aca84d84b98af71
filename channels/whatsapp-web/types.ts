/** Configuration and states of the `whatsapp-web` channel. */
import { z } from 'zod';
import type { RealClientOptions, WhatsAppWebClientLike } from './client-like.js';

export const CHANNEL = 'whatsapp-web';

/**
 * Where a number's session is, as operators see it in `/readyz`, metrics, the status route and alerts.
 * `logged-out` covers a LOGOUT, an unpaired phone, a failed session restore and a ban (WhatsApp Web
 * does not tell them apart): all need a new QR scan. `standby`: another instance drives the number.
 */
export const SESSION_STATES = ['starting', 'qr', 'authenticated', 'ready', 'disconnected', 'logged-out', 'standby', 'stopped'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** Builds the whatsapp-web.js client for one number; tests pass a factory returning a fake. */
export type ClientFactory = (options: RealClientOptions & { tenantId: string; number: string }) => WhatsAppWebClientLike;

const e164 = z
  .string()
  .regex(/^\+?[\d\s().-]{6,20}$/, 'an E.164 phone number such as +15550001111')
  .transform((n) => `+${n.replace(/\D/g, '')}`);

export const settingsSchema = z.object({
  /**
   * The WhatsApp number this tenant's session logs in as (one session per tenant). Missing (its
   * `${VAR:-}` unset): no session for the tenant, said in the log and `/readyz`.
   */
  number: e164.optional(),
  /** Group messages are ignored unless this is on; replies then go to the group. */
  allowGroups: z.boolean().default(false),
});
export type WhatsAppWebSettings = z.output<typeof settingsSchema>;

export const optionsSchema = z
  .object({
    /** Chromium for puppeteer; Parley never downloads one. Debian: `apt install chromium`. */
    executablePath: z.string().min(1).default(process.env['PUPPETEER_EXECUTABLE_PATH'] ?? '/usr/bin/chromium'),
    /** LocalAuth session folders; default `<dataDir>/whatsapp-web`. Keep it across restarts (and shared between instances for take-over without a new QR). */
    sessionDir: z.string().optional(),
    /**
     * Where the WhatsApp Web login is kept. `local`: only in `sessionDir` (LocalAuth). `database`:
     * also zipped into `whatsapp_web_auth` (RemoteAuth), so an instance that takes the number over
     * restores the login without a new QR code, with no shared volume.
     */
    auth: z.enum(['local', 'database']).default('local'),
    /** With `auth: database`, how often the running session's login is saved to the database (RemoteAuth's minimum: 60000). */
    backupSyncIntervalMs: z.number().int().min(60_000).default(300_000),
    /** An instance that stops renewing its lease loses the number after this long. */
    leaseTtlMs: z.number().int().min(200).default(30_000),
    /** How often the owner renews and others try to take over; default a third of the TTL. */
    leaseRenewMs: z.number().int().min(50).optional(),
    /** From creating the client to its first sign of life (QR, authenticated, ready). */
    initTimeoutMs: z.number().int().min(50).default(120_000),
    /** Authenticated but never ready (a WhatsApp Web update can do that): restart the client after this long. */
    readyTimeoutMs: z.number().int().min(50).default(60_000),
    /** A send that has not returned by then fails with an unknown outcome and is never resent. */
    sendTimeoutMs: z.number().int().min(50).default(30_000),
    /**
     * A send while the session is not ready (reconnecting, waiting for a QR scan) is retried no sooner
     * than this, whatever the outbox backoff: a restart and WhatsApp Web's page load take seconds.
     */
    notReadyRetryMs: z.number().int().min(0).max(600_000).default(15_000),
    reconnectInitialMs: z.number().int().min(10).default(2_000),
    reconnectMaxMs: z.number().int().min(10).default(300_000),
    /** Print the QR code on the terminal (stderr) as well as serving it at the admin route. */
    printQr: z.boolean().default(true),
    /** Inbound media above this size is not stored (the message still arrives, flagged). */
    maxMediaBytes: z.number().int().min(1).default(16 * 1024 * 1024),
    mediaRetentionDays: z.number().int().min(1).default(30),
    /** How often an owner looks for sends relayed by other instances. */
    relayPollMs: z.number().int().min(20).default(500),
  })
  .refine((o) => o.leaseRenewMs === undefined || o.leaseRenewMs < o.leaseTtlMs, { path: ['leaseRenewMs'], message: 'must be shorter than leaseTtlMs' });
export type WhatsAppWebOptions = z.output<typeof optionsSchema>;

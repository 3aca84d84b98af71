/** Configuration of the `whatsapp-cloud` channel: deployment options and per-tenant settings. */
import { z } from 'zod';
import { DEFAULT_GRAPH_BASE_URL, DEFAULT_GRAPH_TIMEOUT_MS } from './graph-client.js';

export const CHANNEL = 'whatsapp-cloud';

/** Meta's 24-hour customer-service window, counted from the user's last message. */
export const SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000;

const templateComponentSchema = z.object({
  type: z.enum(['header', 'body', 'button']),
  sub_type: z.enum(['quick_reply', 'url', 'copy_code']).optional(),
  index: z.number().int().min(0).optional(),
  parameters: z.array(z.looseObject({ type: z.string() })),
});

/** An approved message template, in Meta's terms. */
export const templateSchema = z.object({
  name: z.string().min(1),
  /** The language the template was approved in, e.g. `en_US`. */
  language: z.string().min(2),
  components: z.array(templateComponentSchema).optional(),
  /**
   * Put the refused free-form text into the template body's `{{1}}`, for a template such as
   * "You have a new reply from {{1}}". Without it the template is sent as configured.
   */
  textParameter: z.boolean().default(false),
});
export type TemplateSettings = z.output<typeof templateSchema>;

export const settingsSchema = z.object({
  /** The Cloud API phone number id (not the phone number): Meta's webhooks name it. */
  phoneNumberId: z.string().regex(/^\d+$/, 'digits only: the phone number id from WhatsApp Manager').optional(),
  /** The number customers write to, E.164 (`+15550783881`); also claimed as the tenant's address. */
  displayNumber: z.string().regex(/^\+?[\d\s().-]{6,20}$/, 'an E.164 phone number').optional(),
  /** A system-user access token with `whatsapp_business_messaging` (use `${ENV}`). */
  accessToken: z.string().min(1).optional(),
  /** The Meta app's secret; signs every webhook (`X-Hub-Signature-256`). */
  appSecret: z.string().min(1).optional(),
  /** The token you typed in the app's webhook settings; answers the GET handshake. */
  verifyToken: z.string().min(1).optional(),
  /**
   * Sent instead of a free-form reply when the 24-hour window is closed. Without it, such a reply
   * becomes a dead letter with the code `outside-24h-window`.
   */
  template: templateSchema.optional(),
});
export type WhatsAppCloudSettings = z.output<typeof settingsSchema>;
/** A tenant's settings once its number id and credentials are known to be there. */
export type ConnectedSettings = WhatsAppCloudSettings & { phoneNumberId: string; accessToken: string; appSecret: string; verifyToken: string };

/**
 * The tenant's number id and credentials, or why the channel is off for it. Each comes from the
 * environment (`${WA_TOKEN:-}`); a missing one turns the channel off for the tenant, said in the log
 * and `/readyz`, instead of failing the start (DESIGN: missing credentials).
 */
export function cloudConnection(settings: WhatsAppCloudSettings): { on: true; settings: ConnectedSettings } | { on: false; reason: string } {
  const { phoneNumberId, accessToken, appSecret, verifyToken } = settings;
  if (phoneNumberId && accessToken && appSecret && verifyToken) return { on: true, settings: { ...settings, phoneNumberId, accessToken, appSecret, verifyToken } };
  const missing = Object.entries({ phoneNumberId, accessToken, appSecret, verifyToken }).filter(([, v]) => !v).map(([k]) => k);
  return { on: false, reason: `missing ${missing.join(', ')}` };
}

export const optionsSchema = z.object({
  /** Graph API root with version; tests point it at a local fake. */
  graphBaseUrl: z.string().url().default(DEFAULT_GRAPH_BASE_URL),
  /** Per Graph request. A request that times out is not sent again (its outcome is unknown). */
  timeoutMs: z.number().int().min(100).max(120_000).default(DEFAULT_GRAPH_TIMEOUT_MS),
});
export type WhatsAppCloudOptions = z.output<typeof optionsSchema>;

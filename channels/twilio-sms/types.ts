/** Settings of the `twilio-sms` channel: deployment-wide options and per-tenant settings (zod). */
import { z } from 'zod';

export const TWILIO_SMS_CHANNEL = 'twilio-sms';

/** The consent stage: the channel's first stage, run before every tenant's pipeline for Twilio SMS (see README). Tenants do not list it. */
export const CONSENT_STAGE = 'twilio-sms.consent';

/** An E.164 number, optionally as a WhatsApp-through-Twilio address (`whatsapp:+15551234567`). */
export const twilioAddress = z.string().regex(/^(?:whatsapp:)?\+[1-9]\d{1,14}$/u, 'an E.164 number such as +15551234567, or whatsapp:+15551234567');
export const e164 = z.string().regex(/^\+[1-9]\d{1,14}$/u, 'an E.164 number such as +15551234567');
export const accountSid = z.string().regex(/^AC[0-9a-fA-F]{32}$/u, 'a Twilio account SID (AC followed by 32 hex digits)');

/** Deployment-wide options: `plugins: [{ name: twilio-sms, options: {...} }]`. */
export const optionsSchema = z
  .object({
    /** Send REST calls here instead of api.twilio.com (a local fake in tests). */
    apiBaseUrl: z.string().url().optional(),
    /**
     * Rebuild the signed URL from X-Forwarded-Proto/Host when no public base URL is configured.
     * Only for a proxy you run: anyone can send these headers.
     */
    trustProxy: z.boolean().default(false),
    /** Path of the delivery status route as seen from the public base URL. */
    statusCallbackPath: z.string().startsWith('/').default('/twilio/status'),
    /** Timeout of each REST call; a timed-out send is retried with an "outcome unknown" note. */
    requestTimeoutMs: z.number().int().min(1000).max(60_000).default(15_000),
    /**
     * Keep the channel off for a tenant while `server.publicBaseUrl` is unset. The demo sets this:
     * behind a tunnel, signatures and status callbacks cannot work without it.
     */
    requirePublicBaseUrl: z.boolean().default(false),
  })
  .default({ trustProxy: false, statusCallbackPath: '/twilio/status', requestTimeoutMs: 15_000, requirePublicBaseUrl: false });

export type TwilioSmsOptions = z.output<typeof optionsSchema>;

const keywordList = z.array(z.string().trim().min(1).max(40)).max(50);
const consentText = z.string().trim().min(1).max(480);

/** Keywords and reply texts of one language. Texts may use {program}, {contact} and {frequency}. */
export const consentLanguageSchema = z.object({
  optOut: keywordList.optional(),
  optIn: keywordList.optional(),
  help: keywordList.optional(),
  optOutConfirmation: consentText.optional(),
  optInConfirmation: consentText.optional(),
  helpText: consentText.optional(),
});

export const consentSchema = z
  .object({
    /** Program name at the start of every consent reply (CTIA). Default: the tenant's name. */
    programName: z.string().trim().min(1).max(60).optional(),
    /** How to reach a person, for HELP replies: "call 555-0100 or email help@clinic.example". */
    contact: z.string().trim().min(1).max(160).optional(),
    frequency: z.string().trim().min(1).max(80).default('Msg frequency varies.'),
    /** Also honour plain-language opt-outs ("please stop texting me"), as the TCPA requires. */
    plainLanguage: z.boolean().default(true),
    /**
     * `auto`: confirm unless Twilio's Advanced Opt-Out already answered (the webhook carries
     * OptOutType), so the person gets exactly one confirmation. `always`/`never` force it.
     */
    confirmations: z.enum(['auto', 'always', 'never']).default('auto'),
    /** Language tried first and used for Twilio-classified keywords. Default: the tenant locale's language. */
    defaultLanguage: z.string().regex(/^[a-z]{2,3}$/u).optional(),
    /** Per language (`en`, `es`, ...). English has CTIA/Twilio defaults; others add to them. */
    languages: z.record(z.string().regex(/^[a-z]{2,3}$/u), consentLanguageSchema).default({}),
    /** Added to the first message a number gets when the tenant lists `twilio-sms.opt-out-notice` in `replyPipeline`. */
    firstMessageNotice: consentText.default('Reply STOP to opt out.'),
  })
  .default({ frequency: 'Msg frequency varies.', plainLanguage: true, confirmations: 'auto', languages: {}, firstMessageNotice: 'Reply STOP to opt out.' });

/** Per-tenant settings: `tenants[].plugins.twilio-sms`. */
export const settingsSchema = z
  .object({
    /** false keeps the channel off for this tenant (no numbers claimed, nothing sent). */
    enabled: z.boolean().default(true),
    /** From the environment (`${TWILIO_ACCOUNT_SID}`). Missing: the channel stays off and says why. */
    accountSid: accountSid.optional(),
    authToken: z.string().min(1).optional(),
    /** Numbers that deliver to this tenant; each is claimed, so two tenants cannot share one. */
    numbers: z.array(twilioAddress).default([]),
    /** Send through a Messaging Service (sender pool, Advanced Opt-Out) when no From is known. */
    messagingServiceSid: z.string().regex(/^MG[0-9a-fA-F]{32}$/u).optional(),
    /** How long a webhook waits for the pipeline before answering empty TwiML and sending later (Twilio gives up at 15 s). */
    replyBudgetMs: z.number().int().min(0).max(12_000).default(5_000),
    /** Segment budget per message; longer replies are split or truncated (`overflow`). */
    maxSegments: z.number().int().min(1).max(24).default(10),
    overflow: z.enum(['split', 'truncate']).default('split'),
    /** Cost estimate recorded per message (defaults: US long code list prices). */
    pricePerSegment: z.number().min(0).max(10).default(0.0083),
    pricePerMms: z.number().min(0).max(10).default(0.022),
    currency: z.string().regex(/^[A-Z]{3}$/u).default('USD'),
    /** Local development only: refused when NODE_ENV=production, and warned about at start. */
    validateSignatures: z.boolean().default(true),
    consent: consentSchema,
  })
  .default({
    enabled: true,
    numbers: [],
    replyBudgetMs: 5_000,
    maxSegments: 10,
    overflow: 'split',
    pricePerSegment: 0.0083,
    pricePerMms: 0.022,
    currency: 'USD',
    validateSignatures: true,
    consent: { frequency: 'Msg frequency varies.', plainLanguage: true, confirmations: 'auto', languages: {}, firstMessageNotice: 'Reply STOP to opt out.' },
  });

export type TwilioSmsSettings = z.output<typeof settingsSchema>;
export type ConsentSettings = TwilioSmsSettings['consent'];

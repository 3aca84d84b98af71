/** Settings of the `twilio-voice` channel: deployment-wide options and per-tenant settings (zod). */
import { z } from 'zod';

export const TWILIO_VOICE_CHANNEL = 'twilio-voice';

const e164 = z.string().regex(/^\+[1-9]\d{1,14}$/u, 'an E.164 number such as +15551234567');
const accountSid = z.string().regex(/^AC[0-9a-fA-F]{32}$/u, 'a Twilio account SID (AC followed by 32 hex digits)');

export const optionsSchema = z
  .object({
    /** Send REST calls (live call updates) here instead of api.twilio.com (a local fake in tests). */
    apiBaseUrl: z.string().url().optional(),
    /** Rebuild the signed URL from X-Forwarded-Proto/Host when no public base URL is configured. */
    trustProxy: z.boolean().default(false),
    requestTimeoutMs: z.number().int().min(1000).max(60_000).default(10_000),
    /** Keep the channel off while `server.publicBaseUrl` is unset (the demo sets this). */
    requirePublicBaseUrl: z.boolean().default(false),
  })
  .default({ trustProxy: false, requestTimeoutMs: 10_000, requirePublicBaseUrl: false });

export type TwilioVoiceOptions = z.output<typeof optionsSchema>;

const line = z.string().trim().min(1).max(1000);

export const DEFAULT_GOODBYES = ['goodbye', 'good bye', 'bye', 'bye bye', "that's all", 'that is all', "that's everything", 'nothing else', 'hang up', 'end the call'];

export const settingsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Usually the same account as twilio-sms (`${TWILIO_ACCOUNT_SID}`); the auth token checks signatures. */
    accountSid: accountSid.optional(),
    authToken: z.string().min(1).optional(),
    /** Numbers whose calls reach this tenant (claimed on the voice channel, so SMS may share them). */
    numbers: z.array(e164).default([]),
    /** Local development only: refused when NODE_ENV=production, and warned about at start. */
    validateSignatures: z.boolean().default(true),
    /** A Twilio <Say> voice (`Polly.Joanna-Neural`, `Google.en-US-Neural2-F`, `alice`...). */
    voice: z.string().min(1).max(80).default('Polly.Joanna-Neural'),
    /** Speech recognition and <Say> language. Default: the tenant's locale. */
    language: z.string().regex(/^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/u).optional(),
    /** Default: "Hello, you've reached {tenant name}. How can I help you today?" */
    greeting: line.optional(),
    reprompt: line.default("Sorry, I didn't catch that. How can I help?"),
    lowConfidencePrompt: line.default("Sorry, I'm not sure I understood. Could you say that again?"),
    farewell: line.default('Thank you for calling. Goodbye!'),
    noInputFarewell: line.default("I can't hear anything, so I'll end the call now. Please call back any time. Goodbye."),
    /** Said when the pipeline misses `replyBudgetMs`; the answer interrupts the wait when it is ready. */
    holdMessage: line.default('One moment, please.'),
    holdSeconds: z.number().int().min(1).max(60).default(20),
    slowFallback: line.default("Sorry, that is taking longer than expected. Could you ask me again?"),
    /** Where to transfer the caller when a stage asks for a human (`handoff`). */
    handoffNumber: e164.optional(),
    handoffMessage: line.default('Please hold while I connect you.'),
    handoffUnavailable: line.default("I'm sorry, nobody could take your call right now. Is there anything else I can help with?"),
    goodbyePhrases: z.array(z.string().trim().min(1).max(60)).default(DEFAULT_GOODBYES),
    /** Re-prompts after silence or unclear speech before the polite end. */
    maxReprompts: z.number().int().min(0).max(5).default(2),
    /** Speech below this Confidence (0-1) is asked again instead of answered. */
    minConfidence: z.number().min(0).max(1).default(0.4),
    gatherTimeoutSec: z.number().int().min(1).max(30).default(5),
    speechTimeout: z.string().regex(/^(?:auto|\d{1,2})$/u).default('auto'),
    speechModel: z.string().max(60).optional(),
    hints: z.string().max(2000).optional(),
    /** How long a turn waits for the pipeline before putting the caller on hold (Twilio gives up at 15 s). */
    replyBudgetMs: z.number().int().min(200).max(12_000).default(8_000),
  })
  .default({
    enabled: true,
    numbers: [],
    validateSignatures: true,
    voice: 'Polly.Joanna-Neural',
    reprompt: "Sorry, I didn't catch that. How can I help?",
    lowConfidencePrompt: "Sorry, I'm not sure I understood. Could you say that again?",
    farewell: 'Thank you for calling. Goodbye!',
    noInputFarewell: "I can't hear anything, so I'll end the call now. Please call back any time. Goodbye.",
    holdMessage: 'One moment, please.',
    holdSeconds: 20,
    slowFallback: 'Sorry, that is taking longer than expected. Could you ask me again?',
    handoffMessage: 'Please hold while I connect you.',
    handoffUnavailable: "I'm sorry, nobody could take your call right now. Is there anything else I can help with?",
    goodbyePhrases: DEFAULT_GOODBYES,
    maxReprompts: 2,
    minConfidence: 0.4,
    gatherTimeoutSec: 5,
    speechTimeout: 'auto',
    replyBudgetMs: 8_000,
  });

export type TwilioVoiceSettings = z.output<typeof settingsSchema>;

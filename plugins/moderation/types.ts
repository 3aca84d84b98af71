/** The moderation plugin's public types and per-tenant settings. */
import { z } from 'zod';

/** What is screened for. `toxicity` comes from the optional model detector only. */
export const CATEGORIES = ['profanity', 'harassment', 'spam', 'pii', 'toxicity'] as const;
export type Category = (typeof CATEGORIES)[number];

/** From weakest to strongest: the strongest action of the flags over their threshold wins. */
export const ACTIONS = ['allow', 'flag', 'redact', 'hold', 'block'] as const;
export type Action = (typeof ACTIONS)[number];

export const PII_KINDS = ['phone', 'email', 'ssn', 'card', 'iban'] as const;
export type PiiKind = (typeof PII_KINDS)[number];

/** One detector's finding. `details` never holds the matched personal data. */
export interface Flag {
  category: Category;
  /** Which detector (`obscenity`, `threat-rules`, `luhn`...). */
  detector: string;
  /** Confidence 0..1. */
  score: number;
  details: Record<string, unknown>;
}

/** A span to mask (start inclusive, end exclusive) and what to put there. */
export interface Span {
  start: number;
  end: number;
  replacement: string;
}

export interface Verdict {
  /** No flag reached its category's threshold with an action other than `allow`. */
  safe: boolean;
  /** Every finding, with the action its category's policy gives it (`allow` under the threshold). */
  flags: (Flag & { action: Action; threshold: number })[];
  /** The strongest action of the flags over their threshold. */
  action: Action;
  /** The highest score among the acted-on flags (0 when none). */
  confidence: number;
}

const policy = (action: Action, threshold: number) => z.object({ action: z.enum(ACTIONS).default(action), threshold: z.number().min(0).max(1).default(threshold) }).prefault({});

const categoriesSchema = z
  .object({
    profanity: policy('flag', 0.5),
    harassment: policy('hold', 0.6),
    spam: policy('flag', 0.6),
    pii: policy('redact', 0.5),
    toxicity: policy('hold', 0.8),
  })
  .prefault({});

export const settingsSchema = z
  .object({
    /** Per category: the action and the confidence from which it applies. */
    categories: categoriesSchema,
    /** Kinds of personal data looked for. */
    piiKinds: z.array(z.enum(PII_KINDS)).default([...PII_KINDS]),
    /** Replies and other outgoing messages: the same policy, with their own personal-data kinds. */
    outbound: z
      .object({
        /** Kinds of personal data looked for in outgoing text (a clinic's own phone and email in a reply are normal). */
        piiKinds: z.array(z.enum(PII_KINDS)).default(['ssn', 'card', 'iban']),
      })
      .prefault({}),
    /** Words never counted as profanity for this tenant (place names, surnames). */
    allowWords: z.array(z.string().min(2).max(60)).max(500).default([]),
    spam: z
      .object({
        /** Links to these domains (and their subdomains) are spam. */
        blockedDomains: z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'a domain such as bad.example')).default([]),
        /** This many identical messages from one sender among their recent ones. */
        repeats: z.number().int().min(2).max(50).default(3),
        /** More than `count` messages from one sender within `seconds`. */
        burst: z.object({ count: z.number().int().min(2).max(1000).default(8), seconds: z.number().int().min(5).max(3600).default(60) }).prefault({}),
        /** Share of upper-case letters (with at least 12 letters) counted as shouting. */
        capsRatio: z.number().min(0.5).max(1).default(0.7),
      })
      .prefault({}),
    /** The reply to a blocked message; null sends none. */
    blockReply: z.string().min(1).max(1000).nullable().default('Your message was not delivered because it goes against our messaging rules.'),
    /** The reply when a moderator rejects a held message; null sends none. */
    rejectReply: z.string().min(1).max(1000).nullable().default(null),
    /** What the sender hears while their message is held; not sent on `skipChannels` (SMS costs money). */
    holdNotice: z
      .object({
        text: z.string().min(1).max(1000).nullable().default('Thanks for your message. A member of our team will look at it shortly.'),
        skipChannels: z.array(z.string()).default(['twilio-sms']),
      })
      .prefault({}),
    review: z
      .object({
        /** The oldest pending item may wait this long before an alert is raised. */
        slaMinutes: z.number().int().min(1).max(7 * 24 * 60).default(60),
        /** Previous messages shown with an item. */
        contextMessages: z.number().int().min(0).max(50).default(10),
        /** Dismiss pending items below this confidence after this many hours (recorded as automatic). */
        autoDismiss: z.object({ belowConfidence: z.number().min(0).max(1), afterHours: z.number().min(0.01).max(24 * 30) }).nullable().default(null),
      })
      .prefault({}),
    /** The optional model-based detector (a chat model through the AI service); never required. */
    model: z.object({ enabled: z.boolean().default(false), timeoutMs: z.number().int().min(200).max(30_000).default(3000) }).prefault({}),
  })
  .superRefine((s, ctx) => {
    for (const category of ['harassment', 'spam', 'toxicity'] as const) {
      if (s.categories[category].action === 'redact') {
        ctx.addIssue({ code: 'custom', path: ['categories', category, 'action'], message: `"redact" masks spans of text and applies to pii and profanity only; use flag, hold or block for ${category}` });
      }
    }
  });

export type ModerationSettings = z.output<typeof settingsSchema>;

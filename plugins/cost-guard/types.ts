/** cost-guard's options (deployment) and settings (per tenant), validated at start. */
import { z } from 'zod';

export const CATEGORIES = ['ai', 'messaging', 'total'] as const;
export type Category = (typeof CATEGORIES)[number];
export const PERIODS = ['day', 'month'] as const;
export type Period = (typeof PERIODS)[number];

/**
 * One messaging price: USD per unit of a usage kind (`sms.segments.out` per segment, `voice.minutes.in`
 * per minute, `messages.out` per message), optionally only for one channel or one country (the usage
 * row's `channel` / `country` attribute). The most specific rule wins. Model tokens are priced by the
 * kernel's `ai.prices`; these apply to usage rows recorded without a cost.
 */
export const priceRule = z.object({
  kind: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}$/, 'a usage kind: lower-case letters, digits, ".", "_" or "-"'),
  channel: z.string().min(1).max(50).optional(),
  country: z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166 alpha-2 code such as US').optional(),
  usd: z.number().min(0).max(1000),
});
export type PriceRule = z.infer<typeof priceRule> & { model?: string };

/** Model token kinds: priced by the kernel's `ai.prices`, or per tenant by a rule with a `model`. */
export const MODEL_TOKENS = /^model\.tokens\.(input|output|embedding)$/;

/** The deployment's rules: messaging only (model tokens are priced by `ai.prices`). */
const deploymentRule = priceRule.refine((r) => !r.kind.startsWith('model.tokens.'), { message: 'model tokens are priced by ai.prices (a tenant may override them in its own cost-guard prices, with a model)', path: ['kind'] });

/**
 * A tenant's rule: a messaging price as above, or a **model token** price overriding `ai.prices` for
 * this tenant's rows: `kind` `model.tokens.input` / `.output` / `.embedding`, `model` (the model name
 * the provider answers with, or its base name: `gpt-4o-mini` also prices `gpt-4o-mini-2024-07-18`)
 * and `usd` per token (e.g. 0.0000025 for $2.50 per million). The operator can set the same at run
 * time through `PUT /v1/costs/prices`.
 */
const tenantRule = priceRule.extend({ model: z.string().min(1).max(200).optional() }).superRefine((r, ctx) => {
  if (r.kind.startsWith('model.tokens.')) {
    if (!MODEL_TOKENS.test(r.kind)) ctx.addIssue({ code: 'custom', path: ['kind'], message: 'model token kinds are model.tokens.input, model.tokens.output and model.tokens.embedding' });
    if (!r.model) ctx.addIssue({ code: 'custom', path: ['model'], message: `required for ${r.kind}: the model this price is for` });
    if (r.channel || r.country) ctx.addIssue({ code: 'custom', path: ['kind'], message: 'a model token price takes no channel or country' });
  } else if (r.model) ctx.addIssue({ code: 'custom', path: ['model'], message: 'only model.tokens.* prices take a model' });
});

export const optionsSchema = z.object({
  /** Deployment-wide messaging prices. */
  prices: z.array(deploymentRule).default([]),
  /** How long an unsettled reservation holds budget (a crashed call, a send not yet metered). */
  reservationTtlSeconds: z.number().int().min(5).max(3600).default(120),
  /** Where rate-limit counters live: `auto` is Redis when `storage.redisUrl` is set, else the database. */
  limiterStore: z.enum(['auto', 'database', 'redis', 'memory']).default('auto'),
});
export type CostGuardOptions = z.output<typeof optionsSchema>;

const limits = z.object({ daily: z.number().positive().optional(), monthly: z.number().positive().optional() });
const perMinute = z.object({ perMinute: z.number().int().positive() });

export const settingsSchema = z.object({
  /** USD budgets per category (`ai`, `messaging`, `total`), daily and monthly, in the tenant's time zone. */
  budgets: z.object({ ai: limits.optional(), messaging: limits.optional(), total: limits.optional() }).default({}),
  /** Fraction of a budget at which a warning alert is raised. */
  warnAt: z.number().gt(0).lt(1).default(0.8),
  /** At 100%: refuse model calls (`block`), switch them to `degradeTo` (`degrade`), or only alert (`notify-only`). */
  action: z.enum(['block', 'degrade', 'notify-only']).default('block'),
  /** A provider name from `ai.providers`, or `local` (no model: callers answer extractively). Required by `degrade`. */
  degradeTo: z.string().min(1).optional(),
  /** What happens to a paid send when the messaging budget is spent (`block` and `degrade`): `hold` for review, or `block`. */
  paidSends: z.enum(['hold', 'block']).default('hold'),
  /** Alert when today's spend exceeds `factor` x the average of the previous `days` days (and `minUsd`), or `dailyUsd`. */
  spike: z
    .object({ factor: z.number().gt(1).default(3), days: z.number().int().min(1).max(90).default(7), minUsd: z.number().min(0).default(1), dailyUsd: z.number().positive().optional() })
    .default({ factor: 3, days: 7, minUsd: 1 }),
  rateLimits: z
    .object({
      /** Tenant-key requests to the tenant's `/v1` routes. */
      api: perMinute.optional(),
      /** Inbound messages of the whole tenant. */
      inbound: perMinute.optional(),
      /** Inbound messages of one sender. */
      user: z.object({ perMinute: z.number().int().positive().optional(), perDay: z.number().int().positive().optional() }).optional(),
    })
    .default({}),
  /** Sent once per window to a sender over their limit; later messages in that window get silence. */
  slowDownReply: z.string().min(1).max(320).default('You are sending messages faster than we can answer. Please wait a little and try again.'),
  cache: z
    .object({ enabled: z.boolean().default(false), ttlSeconds: z.number().int().min(1).max(30 * 86400).default(3600), purposes: z.array(z.string().min(1)).default(['answer']) })
    .default({ enabled: false, ttlSeconds: 3600, purposes: ['answer'] }),
  /** This tenant's own prices: messaging, ahead of the deployment's; model tokens (with `model`), instead of `ai.prices`. */
  prices: z.array(tenantRule).default([]),
  /** A model call's output tokens for its reservation when the caller sets no `maxTokens`. */
  estimatedOutputTokens: z.number().int().positive().default(512),
});
export type CostGuardSettings = z.output<typeof settingsSchema>;

/** billing's options (deployment: usage billing of tenants) and settings (per tenant: end-user subscriptions), validated at start. */
import { z } from 'zod';

export const BILLING_STAGE = 'billing';
/** The channel name parked Stripe webhooks are filed under. */
export const STRIPE_CHANNEL = 'stripe';
export const WEBHOOK_PATH = '/stripe/webhook';

/** Where the SDK sends requests: api.stripe.com unless a local fake is named (tests). */
const apiBase = z.string().url().optional();

/** One Stripe Billing Meter fed from the usage ledger. */
export const meterSchema = z.object({
  /** The meter's `event_name` in Stripe. */
  eventName: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/u, 'a Stripe meter event name: letters, digits, "_", ".", ":" or "-"'),
  /** Ledger kinds summed into this meter (`messages.out`, `sms.segments.out`, `model.tokens.input`); a trailing `*` matches a prefix (`model.tokens.*`). */
  kinds: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,99}\*?$/u, 'a usage kind, optionally ending in *')).min(1),
  /** `quantity`: the sum of the rows' quantities (segments, tokens); `events`: how many rows (messages). */
  measure: z.enum(['quantity', 'events']).default('quantity'),
  /** The meter's id (`mtr_...`), for reconciliation; looked up by event name when absent. */
  meterId: z.string().min(1).optional(),
});
export type MeterConfig = z.output<typeof meterSchema>;

export const DEFAULT_METERS: z.input<typeof meterSchema>[] = [
  { eventName: 'parley_inbound_messages', kinds: ['messages.in'], measure: 'events' },
  { eventName: 'parley_outbound_messages', kinds: ['messages.out'], measure: 'events' },
  { eventName: 'parley_sms_segments', kinds: ['sms.segments.*'], measure: 'quantity' },
  { eventName: 'parley_ai_tokens', kinds: ['model.tokens.*'], measure: 'quantity' },
];

export const optionsSchema = z
  .object({
    /** A local fake of the Stripe API (`http://127.0.0.1:12111`): the SDK's `protocol`, `host` and `port`. */
    apiBaseUrl: apiBase,
    /** Attempts per Stripe call (429, 5xx and network errors are retried with the same idempotency key). */
    attempts: z.number().int().min(1).max(10).default(4),
    /** First backoff between attempts; doubled each time, with jitter. */
    backoffMs: z.number().int().min(1).max(60_000).default(500),
    /** Per-request timeout of the SDK. */
    timeoutMs: z.number().int().min(1000).max(120_000).default(20_000),
    /** Stripe's signature tolerance for webhooks, in seconds (Stripe's default, 300). */
    webhookToleranceSeconds: z.number().int().min(1).max(3600).default(300),
    /** Signs the plan chooser links (`${BILLING_LINK_SECRET}`); unset: a random secret kept in the database, shared by every instance. */
    chooserSigningSecret: z.string().min(32, 'at least 32 characters').optional(),
    /** Usage billing of tenants by the deployment: the deployment's own Stripe account. */
    usage: z
      .object({
        /** `${STRIPE_SECRET_KEY}` of the deployment. Missing: usage reporting stays off and says why. */
        secretKey: z.string().min(1).optional(),
        meters: z.array(meterSchema).min(1).default(DEFAULT_METERS as z.output<typeof meterSchema>[]),
        /** The ledger is summed per bucket of this many minutes; each bucket is one meter event. */
        bucketMinutes: z.number().int().min(1).max(1440).default(60),
        /** A bucket is reported this long after it closes, so late ledger rows are in it. */
        graceMinutes: z.number().int().min(0).max(1440).default(5),
        /** Meter events sent per run (the rest wait for the next run). */
        batchSize: z.number().int().min(1).max(10_000).default(500),
        reportCron: z.string().min(9).default('*/5 * * * *'),
        reconcileCron: z.string().min(9).default('17 * * * *'),
        /** How far back reconciliation compares Stripe's summaries with the ledger. */
        reconcileHours: z.number().int().min(1).max(24 * 30).default(24),
      })
      .default({ meters: DEFAULT_METERS as z.output<typeof meterSchema>[], bucketMinutes: 60, graceMinutes: 5, batchSize: 500, reportCron: '*/5 * * * *', reconcileCron: '17 * * * *', reconcileHours: 24 }),
  })
  .default({
    attempts: 4,
    backoffMs: 500,
    timeoutMs: 20_000,
    webhookToleranceSeconds: 300,
    usage: { meters: DEFAULT_METERS as z.output<typeof meterSchema>[], bucketMinutes: 60, graceMinutes: 5, batchSize: 500, reportCron: '*/5 * * * *', reconcileCron: '17 * * * *', reconcileHours: 24 },
  });
export type BillingOptions = z.output<typeof optionsSchema>;

const keywordList = z.array(z.string().trim().min(1).max(40)).max(20);
const text = z.string().trim().min(1).max(480);

/** Texts of one language. `{url}` is the link; `{plan}` the plan's name. */
export const textsSchema = z.object({
  checkout: text.optional(),
  portal: text.optional(),
  noAccount: text.optional(),
  cancelPlan: text.optional(),
  cancelPlanNoAccount: text.optional(),
  paymentFailed: text.optional(),
  linkUnavailable: text.optional(),
});
export type BillingTexts = Required<z.output<typeof textsSchema>>;

export const DEFAULT_TEXTS: Record<'en' | 'es', BillingTexts> = {
  en: {
    checkout: 'Your free messages are used up. To keep chatting, subscribe to {plan}: {url}',
    portal: 'Manage your plan and payment details here: {url}',
    noAccount: 'You have no paid plan yet, so there is nothing to manage.',
    cancelPlan: 'To cancel your plan, open {url} and choose "Cancel plan". (Texting CANCEL alone stops all our messages instead.)',
    cancelPlanNoAccount: 'You have no paid plan to cancel. (Texting CANCEL alone stops all our messages.)',
    paymentFailed: 'We could not take your payment for {plan}. Please update your card here: {url}',
    linkUnavailable: 'We could not create your payment link just now. Please try again in a few minutes.',
  },
  es: {
    checkout: 'Ya usó sus mensajes gratuitos. Para seguir, suscríbase a {plan}: {url}',
    portal: 'Administre su plan y sus datos de pago aquí: {url}',
    noAccount: 'Todavía no tiene un plan de pago, así que no hay nada que administrar.',
    cancelPlan: 'Para cancelar su plan, abra {url} y elija "Cancelar plan". (Si envía solo CANCEL dejará de recibir todos nuestros mensajes.)',
    cancelPlanNoAccount: 'No tiene un plan de pago que cancelar. (Si envía solo CANCEL dejará de recibir todos nuestros mensajes.)',
    paymentFailed: 'No pudimos cobrar su pago de {plan}. Actualice su tarjeta aquí: {url}',
    linkUnavailable: 'No pudimos crear su enlace de pago ahora. Inténtelo de nuevo en unos minutos.',
  },
};

export const DEFAULT_KEYWORDS = {
  en: { portal: ['BILLING', 'ACCOUNT'], cancelPlan: ['CANCEL PLAN', 'CANCEL SUBSCRIPTION'] },
  es: { portal: ['FACTURACION', 'CUENTA'], cancelPlan: ['CANCELAR PLAN', 'CANCELAR SUSCRIPCION'] },
} as const;

export const settingsSchema = z.object({
  /** End-user subscriptions: the tenant's own Stripe account charges the people who text it. */
  subscriptions: z
    .object({
      /** `${STRIPE_SECRET_KEY}`. Missing: the gate lets every message through, and the log and /readyz say why. */
      secretKey: z.string().min(1).optional(),
      /** `${STRIPE_WEBHOOK_SECRET}` (`whsec_...`) of the endpoint `POST /stripe/webhook`. */
      webhookSecret: z.string().min(1).optional(),
      /** A Connect account id (`acct_...`) whose events belong to this tenant. */
      account: z.string().regex(/^acct_[A-Za-z0-9]+$/u).optional(),
      /** Plans offered on the plan chooser page, in this order: the Stripe price, its name, and how the price reads (`$9 a month`). */
      plans: z
        .array(z.object({ price: z.string().regex(/^price_[A-Za-z0-9_]+$/u, 'a Stripe price id (price_...)'), name: z.string().trim().min(1).max(80), priceText: z.string().trim().min(1).max(80).optional() }))
        .min(1)
        .refine((plans) => new Set(plans.map((p) => p.price)).size === plans.length, 'a price is listed twice'),
      /** Free allowance before a plan is needed: messages and/or days from the first message (whichever ends first). */
      freeAllowance: z.object({ messages: z.number().int().min(0).optional(), days: z.number().min(0).optional() }).default({ messages: 20 }),
      successUrl: z.string().url(),
      cancelUrl: z.string().url(),
      /** Where the customer portal sends people back. Default: successUrl. */
      portalReturnUrl: z.string().url().optional(),
      /** `block`: a person without a plan gets the link and no answer; `answer-and-remind`: the answer and the link. */
      whenNotEntitled: z.enum(['block', 'answer-and-remind']).default('block'),
      /** At most one checkout link per person per this many hours. */
      linkEveryHours: z.number().min(0).max(24 * 30).default(24),
      /** How long a plan chooser link works (at least `linkEveryHours`, so a person is never left with only a dead link). */
      linkValidHours: z.number().min(1).max(24 * 30).default(72),
      /** Subscription statuses that count as paid. */
      entitledStatuses: z.array(z.enum(['active', 'trialing', 'past_due', 'unpaid', 'incomplete'])).default(['active', 'trialing', 'past_due']),
      /** Text the person once per failed invoice, with the portal link. */
      notifyPaymentFailure: z.boolean().default(true),
      /** Delete the Stripe customer when the person's data is erased. */
      eraseStripeCustomer: z.boolean().default(true),
      /** Language of the texts: default the tenant locale's language (`en` or `es`; others use English unless `texts` has them). */
      language: z.string().regex(/^[a-z]{2,3}$/u).optional(),
      keywords: z.record(z.string().regex(/^[a-z]{2,3}$/u), z.object({ portal: keywordList.optional(), cancelPlan: keywordList.optional() })).default({}),
      texts: z.record(z.string().regex(/^[a-z]{2,3}$/u), textsSchema).default({}),
    })
    .optional(),
  /** Usage billing: this tenant's customer in the deployment's Stripe account (`options.usage`). */
  usage: z.object({ customer: z.string().regex(/^cus_[A-Za-z0-9]+$/u, 'a Stripe customer id (cus_...)') }).optional(),
});
export type BillingSettings = z.output<typeof settingsSchema>;
export type SubscriptionSettings = NonNullable<BillingSettings['subscriptions']>;

/**
 * End-user subscriptions of one deployment: which tenants have them on (and why not the others), each
 * tenant's Stripe client, texts and keywords, the entitlement decision, and the Stripe calls the gate
 * and the webhook make (customer, checkout session, portal session, current subscription).
 */
import type Stripe from 'stripe';
import { ConfigError, hashAddress, type PluginContext, type TenantInfo } from 'parley';
import type { Entitlement, SubscriptionFacts } from './store.js';
import { createStripe, idempotencyKey, withRetries, type StripeCallPolicy } from './stripe-api.js';
import { DEFAULT_KEYWORDS, DEFAULT_TEXTS, type BillingOptions, type BillingSettings, type BillingTexts, type SubscriptionSettings } from './types.js';

/** Carrier keywords (opt-out, opt-in, help) keep their meaning: billing keywords may not be one of them. */
const CARRIER_KEYWORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE', 'START', 'YES', 'UNSTOP', 'OPTIN', 'HELP', 'INFO'];

export type KeywordKind = 'portal' | 'cancelPlan';

export interface SubscriptionTenant {
  tenant: TenantInfo;
  settings: SubscriptionSettings;
  /** Why subscriptions are off for this tenant; undefined when on. */
  off: string | undefined;
  stripe: Stripe | null;
  language: string;
  keywords: { kind: KeywordKind; language: string; normalised: string }[];
}

/** Upper case, accents and surrounding punctuation removed, inner spaces collapsed: "Cancelar  suscripción!" -> "CANCELAR SUSCRIPCION". */
export function normaliseKeyword(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/^[\p{White_Space}\p{P}\p{S}]+|[\p{White_Space}\p{P}\p{S}]+$/gu, '')
    .replace(/\s+/gu, ' ')
    .toUpperCase();
}

export function offReason(settings: SubscriptionSettings): string | undefined {
  const missing = [!settings.secretKey && 'secretKey', !settings.webhookSecret && 'webhookSecret'].filter(Boolean);
  if (missing.length) return `subscriptions.${missing.join(' and subscriptions.')} ${missing.length > 1 ? 'are' : 'is'} not set (usually \${STRIPE_SECRET_KEY} / \${STRIPE_WEBHOOK_SECRET}): every message passes the gate`;
  return undefined;
}

/** Reads every tenant's subscription settings; refuses billing keywords that are carrier keywords. */
export function loadSubscriptionTenants(ctx: Pick<PluginContext<BillingOptions, BillingSettings>, 'tenants' | 'configPath' | 'log'>, policy: StripeCallPolicy): Map<string, SubscriptionTenant> {
  const issues: string[] = [];
  const states = new Map<string, SubscriptionTenant>();
  for (const { tenant, settings } of ctx.tenants()) {
    const s = settings.subscriptions;
    if (!s) continue;
    const path = `${ctx.configPath(tenant.id)}.subscriptions`;
    const language = s.language ?? tenant.locale.split('-')[0]!.toLowerCase();
    const languages = [...new Set([language, ...Object.keys(s.keywords), 'en', 'es'])];
    const keywords: SubscriptionTenant['keywords'] = [];
    for (const lang of languages) {
      const defaults = (DEFAULT_KEYWORDS as Record<string, { portal: readonly string[]; cancelPlan: readonly string[] }>)[lang];
      for (const kind of ['portal', 'cancelPlan'] as const) {
        const configured = s.keywords[lang]?.[kind];
        for (const [i, word] of (configured ?? defaults?.[kind] ?? []).entries()) {
          const normalised = normaliseKeyword(word);
          if (CARRIER_KEYWORDS.includes(normalised)) {
            issues.push(`${path}.keywords.${lang}.${kind}[${i}]: "${word}" is a carrier keyword (opt-out, opt-in or help) and keeps that meaning; use a phrase such as "CANCEL PLAN"`);
            continue;
          }
          keywords.push({ kind, language: lang, normalised });
        }
      }
    }
    if (s.linkValidHours < s.linkEveryHours) issues.push(`${path}.linkValidHours: ${s.linkValidHours} is shorter than linkEveryHours (${s.linkEveryHours}): a person could be left with an expired link and no new one`);
    if (s.freeAllowance.messages === undefined && s.freeAllowance.days === undefined) ctx.log.info({ tenant: tenant.id }, 'billing: no free allowance: every message needs a subscription');
    const off = offReason(s);
    if (off) ctx.log.warn({ tenant: tenant.id, reason: off }, `billing: subscriptions are off for tenant "${tenant.id}": ${off}`);
    states.set(tenant.id, { tenant, settings: s, off, stripe: off ? null : createStripe(s.secretKey!, policy), language, keywords });
  }
  if (issues.length) throw new ConfigError(issues);
  return states;
}

export function matchKeyword(state: SubscriptionTenant, text: string): { kind: KeywordKind; language: string } | null {
  const normalised = normaliseKeyword(text);
  if (!normalised) return null;
  // The tenant's language first, so a keyword both languages share answers in the tenant's.
  const found = state.keywords.filter((k) => k.normalised === normalised).sort((a, b) => Number(b.language === state.language) - Number(a.language === state.language))[0];
  return found ? { kind: found.kind, language: found.language } : null;
}

export function textsFor(state: SubscriptionTenant, language = state.language): BillingTexts {
  const base = (DEFAULT_TEXTS as Record<string, BillingTexts>)[language] ?? DEFAULT_TEXTS.en;
  const own = Object.fromEntries(Object.entries(state.settings.texts[language] ?? {}).filter(([, v]) => v !== undefined));
  return { ...base, ...own };
}

export function fill(template: string, values: { url?: string; plan?: string }): string {
  return template.replaceAll('{url}', values.url ?? '').replaceAll('{plan}', values.plan ?? '');
}

/** The plans' names as one phrase in the language ("Plus or Plus yearly", "Plus o Plus anual"), for `{plan}` in the checkout text. */
export function planNames(state: SubscriptionTenant, language = state.language): string {
  const names = state.settings.plans.map((p) => p.name);
  try {
    return new Intl.ListFormat(language, { type: 'disjunction' }).format(names);
  } catch {
    return names.join(' / ');
  }
}

/** The name of the person's plan (by its price), else the first plan's. */
export function planName(state: SubscriptionTenant, priceId: string | null): string {
  return (state.settings.plans.find((p) => p.price === priceId) ?? state.settings.plans[0]!).name;
}

export type Decision = { entitled: true; reason: 'override' | 'subscription' | 'free-allowance' } | { entitled: false; reason: 'override' | 'allowance-used' };

/**
 * Whether a person may use the service now: an operator's unexpired override first, then a
 * subscription in an entitled status, then the free allowance (messages and/or days since the first
 * message: whichever ends first).
 */
export function decide(e: Entitlement, freeMessagesUsed: number, s: SubscriptionSettings, now: Date): Decision {
  const overrideLive = e.override && (!e.overrideUntil || e.overrideUntil.getTime() > now.getTime());
  if (overrideLive && e.override === 'grant') return { entitled: true, reason: 'override' };
  if (overrideLive && e.override === 'revoke') return { entitled: false, reason: 'override' };
  if (e.subscriptionStatus && (s.entitledStatuses as string[]).includes(e.subscriptionStatus)) return { entitled: true, reason: 'subscription' };
  const { messages, days } = s.freeAllowance;
  if (messages === undefined && days === undefined) return { entitled: false, reason: 'allowance-used' };
  const withinMessages = messages === undefined || freeMessagesUsed <= messages;
  const withinDays = days === undefined || now.getTime() < e.firstSeenAt.getTime() + days * 86_400_000;
  return withinMessages && withinDays ? { entitled: true, reason: 'free-allowance' } : { entitled: false, reason: 'allowance-used' };
}

/** The Stripe calls of end-user subscriptions, each with an idempotency key and retries. */
export class SubscriptionApi {
  constructor(
    private readonly policy: StripeCallPolicy,
    private readonly onRetry: (what: string, error: unknown) => void,
  ) {}

  private call<T>(what: string, key: string | undefined, fn: (key: string | undefined) => Promise<T>): Promise<T> {
    return withRetries(this.policy, key, fn, (error) => this.onRetry(what, error));
  }

  /** The person's customer in the tenant's account, made once (the key names the tenant and the person's hash). */
  async ensureCustomer(state: SubscriptionTenant, e: Entitlement): Promise<string> {
    if (e.customerId) return e.customerId;
    const subject = hashAddress(e.address);
    const customer = await this.call('customers.create', idempotencyKey('customer', state.tenant.id, subject), (key) =>
      state.stripe!.customers.create({ metadata: { parley_tenant: state.tenant.id, parley_subject: subject } }, { idempotencyKey: key! }),
    );
    return customer.id;
  }

  /**
   * A Checkout session for one of the tenant's plans, keyed by the chooser link and the plan: a double
   * click, or the same choice again while Stripe keeps the key, gets the same session back.
   */
  async checkoutSession(state: SubscriptionTenant, customerId: string, price: string, linkId: string): Promise<{ id: string; url: string }> {
    const s = state.settings;
    const session = await this.call('checkout.sessions.create', idempotencyKey('checkout', state.tenant.id, linkId, price), (key) =>
      state.stripe!.checkout.sessions.create(
        {
          mode: 'subscription',
          customer: customerId,
          line_items: [{ price, quantity: 1 }],
          success_url: s.successUrl,
          cancel_url: s.cancelUrl,
          client_reference_id: state.tenant.id,
          metadata: { parley_tenant: state.tenant.id },
          subscription_data: { metadata: { parley_tenant: state.tenant.id } },
        },
        { idempotencyKey: key! },
      ),
    );
    if (!session.url) throw new Error('Stripe returned a checkout session without a url');
    return { id: session.id, url: session.url };
  }

  async portalUrl(state: SubscriptionTenant, customerId: string, key: string): Promise<string> {
    const session = await this.call('billing_portal.sessions.create', idempotencyKey('portal', state.tenant.id, key), (k) =>
      state.stripe!.billingPortal.sessions.create({ customer: customerId, return_url: state.settings.portalReturnUrl ?? state.settings.successUrl }, { idempotencyKey: k! }),
    );
    return session.url;
  }

  /**
   * The customer's subscription as Stripe has it now: the one in an entitled status if any (newest
   * first), else the newest; null when there is none. Read on every event rather than trusting the
   * event's copy, so events handled in any order end in the current state.
   */
  async currentSubscription(state: SubscriptionTenant, customerId: string): Promise<SubscriptionFacts | null> {
    const list = await this.call('subscriptions.list', undefined, () => state.stripe!.subscriptions.list({ customer: customerId, status: 'all', limit: 20 }));
    const subs = [...list.data].sort((a, b) => b.created - a.created);
    const entitled = state.settings.entitledStatuses as string[];
    const best = subs.find((s) => entitled.includes(s.status)) ?? subs[0];
    if (!best) return null;
    const item = best.items?.data?.[0];
    const periodEnd = (item as { current_period_end?: number } | undefined)?.current_period_end ?? (best as { current_period_end?: number }).current_period_end;
    return { id: best.id, status: best.status, priceId: item?.price?.id ?? null, currentPeriodEnd: periodEnd ? new Date(periodEnd * 1000) : null };
  }

  async checkoutSessionOf(state: SubscriptionTenant, id: string): Promise<Stripe.Checkout.Session> {
    return this.call('checkout.sessions.retrieve', undefined, () => state.stripe!.checkout.sessions.retrieve(id));
  }

  async invoice(state: SubscriptionTenant, id: string): Promise<Stripe.Invoice> {
    return this.call('invoices.retrieve', undefined, () => state.stripe!.invoices.retrieve(id));
  }

  async subscription(state: SubscriptionTenant, id: string): Promise<Stripe.Subscription> {
    return this.call('subscriptions.retrieve', undefined, () => state.stripe!.subscriptions.retrieve(id));
  }

  /** Deletes the customer (erasure); a customer Stripe no longer has counts as deleted. */
  async deleteCustomer(state: SubscriptionTenant, customerId: string): Promise<'deleted' | 'missing'> {
    try {
      await this.call('customers.del', idempotencyKey('erase', state.tenant.id, customerId), (key) => state.stripe!.customers.del(customerId, {}, { idempotencyKey: key! }));
      return 'deleted';
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return 'missing';
      throw error;
    }
  }
}

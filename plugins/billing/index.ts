/**
 * `billing`: Stripe billing, two ways. End-user subscriptions per tenant (a free allowance, then a
 * link to a plan chooser page that opens Stripe Checkout for the chosen plan; the `billing` stage
 * gates messages on entitlement; `BILLING`/`ACCOUNT` and `CANCEL PLAN` keywords; `POST /stripe/webhook` keeps entitlements in step with Stripe), and usage
 * billing of tenants by the deployment (the usage ledger reported to Stripe Billing Meters, and
 * reconciled). Uses the official `stripe` SDK.
 */
import Stripe from 'stripe';
import { ConfigError, TOKENS, consentAddress, definePlugin, token } from 'parley';
import { PlanChooser } from './chooser.js';
import { billingMetrics } from './metrics.js';
import { MeterReporter, type UsageTenant } from './meters.js';
import { billingRoutes } from './routes.js';
import { billingStage } from './stage.js';
import { BillingStore, migrations } from './store.js';
import { createStripe, describeError, type StripeCallPolicy } from './stripe-api.js';
import { SubscriptionApi, loadSubscriptionTenants, type SubscriptionTenant } from './subscriptions.js';
import { optionsSchema, settingsSchema } from './types.js';
import { stripeWebhook } from './webhook.js';

export { BILLING_STAGE, WEBHOOK_PATH, DEFAULT_METERS, DEFAULT_TEXTS, DEFAULT_KEYWORDS } from './types.js';
export type { BillingOptions, BillingSettings, MeterConfig } from './types.js';
export { decide, normaliseKeyword, matchKeyword } from './subscriptions.js';
export { MeterReporter } from './meters.js';
export { BillingStore } from './store.js';

/** The usage reporter (tests and operators drive `report(now)` and `reconcile(now)`). */
export const BILLING_REPORTER = token<MeterReporter>('billing.reporter');

/**
 * @example
 * // parley.yaml
 * // plugins:
 * //   - name: billing
 * //     options: { usage: { secretKey: ${STRIPE_PLATFORM_KEY:-} } }
 * // tenants:
 * //   - id: caregivers
 * //     pipeline: [crisis-guard, billing, medical-answers]
 * //     plugins:
 * //       billing:
 * //         subscriptions:
 * //           secretKey: ${STRIPE_SECRET_KEY:-}
 * //           webhookSecret: ${STRIPE_WEBHOOK_SECRET:-}
 * //           plans: [{ price: price_123, name: 'GiveCare monthly', priceText: '$9 a month' }, { price: price_456, name: 'GiveCare yearly', priceText: '$90 a year' }]
 * //           freeAllowance: { messages: 20 }
 * //           successUrl: https://givecare.example/thanks
 * //           cancelUrl: https://givecare.example/maybe-later
 * //         usage: { customer: cus_123 }
 */
export default definePlugin({
  name: 'billing',
  kind: 'capability',
  description: 'Stripe billing: end-user subscriptions with a free allowance, Checkout links, portal keywords and webhooks; usage billing of tenants through Stripe Billing Meters with reconciliation.',
  optionsSchema,
  settingsSchema,
  setup(ctx) {
    const { options } = ctx;
    const policy: StripeCallPolicy = { attempts: options.attempts, backoffMs: options.backoffMs, timeoutMs: options.timeoutMs, apiBaseUrl: options.apiBaseUrl };
    const store = new BillingStore(ctx.db);
    const metrics = billingMetrics(ctx.metrics, () => store);
    const subscriptions = loadSubscriptionTenants(ctx, policy);
    const subscriptionOf = (id: string): SubscriptionTenant | undefined => subscriptions.get(id);
    const api = new SubscriptionApi(policy, (call) => metrics.stripeRetries.inc({ call }));

    // Usage billing is the deployment's: its key in options, each tenant's customer in its settings.
    const usageKey = options.usage.secretKey;
    const usageTenants: UsageTenant[] = ctx.tenants().flatMap(({ tenant, settings }) => (settings.usage ? [{ tenantId: tenant.id, customer: settings.usage.customer }] : []));
    const usageOff = !usageTenants.length ? 'no tenant has billing.usage.customer' : !usageKey ? `${ctx.configPath()}.usage.secretKey is not set (usually \${STRIPE_SECRET_KEY} of the deployment): usage is not reported` : undefined;
    if (usageTenants.length && !usageKey) ctx.log.warn({ reason: usageOff }, `billing: usage billing is off: ${usageOff}`);
    const names = options.usage.meters.map((m) => m.eventName);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate) throw new ConfigError([`${ctx.configPath()}.usage.meters: the event name "${duplicate}" is listed twice`]);

    const reporter = new MeterReporter({
      db: ctx.db,
      stripe: usageOff ? null : createStripe(usageKey!, policy),
      options: options.usage,
      policy,
      tenants: () => (usageOff ? [] : usageTenants),
      metrics,
      alerts: ctx.alerts,
      log: ctx.log,
    });

    ctx.migrations(migrations);
    ctx.provide(BILLING_REPORTER, reporter);
    const gateway = ctx.inject(TOKENS.Gateway);
    const chooser = new PlanChooser({ store, api, metrics, subscriptions: subscriptionOf, signingSecret: options.chooserSigningSecret, baseUrl: () => ctx.publicBaseUrl ?? gateway.url, log: ctx.log });
    ctx.stage(billingStage({ store, api, chooser, metrics, usage: ctx.usage, tenant: subscriptionOf }));
    ctx.routes(chooser.routes());
    ctx.routes(stripeWebhook({ ctx, store, api, metrics, tenants: () => [...subscriptions.values()], toleranceSeconds: options.webhookToleranceSeconds, webhooks: Stripe.webhooks as unknown as Stripe['webhooks'] }));
    ctx.routes(billingRoutes({ store, reporter, subscriptions: subscriptionOf, enabled: (id) => ctx.settingsFor(id) !== undefined }));
    ctx.schedule({ name: 'billing-meter-report', cron: options.usage.reportCron, process: async () => (usageOff ? { off: usageOff } : reporter.report()) });
    ctx.schedule({ name: 'billing-meter-reconcile', cron: options.usage.reconcileCron, process: async () => (usageOff ? { off: usageOff } : reporter.reconcile()) });

    ctx.health({
      name: 'billing',
      critical: false,
      async check() {
        const tenants = Object.fromEntries([...subscriptions.values()].map((s) => [s.tenant.id, s.off ? `off: ${s.off}` : 'on']));
        const on = Object.values(tenants).filter((v) => v === 'on').length;
        return { ok: true, detail: `subscriptions on for ${on} of ${subscriptions.size} tenant(s); usage reporting ${usageOff ? `off: ${usageOff}` : 'on'}`, info: { subscriptions: tenants, usage: usageOff ? `off: ${usageOff}` : 'on' } };
      },
    });

    ctx.dataSubjects({
      name: 'billing',
      describe: () => ({
        purpose: 'Whether you may use the service: your free messages, your subscription (Stripe customer and subscription ids, status, plan, renewal date), checkout links sent, overrides, paid and failed invoices, and the history of these changes.',
        recipients: ['Stripe (payments: your customer record, subscription and invoices)', 'The messaging provider of your channel (the links and payment notices sent to you)'],
        retention: 'While you use the service; erased on request, the Stripe customer deleted too unless the business keeps it for accounting (setting eraseStripeCustomer).',
        source: 'Your messages, your checkout and payments at Stripe, and the business (overrides).',
      }),
      export: (s) => store.exportSubject(s.tenantId, subjectForms(s.addresses)),
      async erase(s) {
        const { erased, customers } = await store.eraseSubject(s.tenantId, subjectForms(s.addresses));
        const state = subscriptionOf(s.tenantId);
        if (state && !state.off && state.settings.eraseStripeCustomer) {
          for (const customer of customers) {
            try {
              await api.deleteCustomer(state, customer);
            } catch (error) {
              // Erasure of our records stands; the operator is told the Stripe customer still exists.
              metrics.stripeErrors.inc({ tenant: s.tenantId, call: 'customers.del' });
              ctx.alerts.raise({ key: 'billing.erase-customer', tenantId: s.tenantId, severity: 'warning', summary: `A Stripe customer could not be deleted during an erasure (${describeError(error)}); delete ${customer} in the Stripe dashboard`, details: { customer } });
            }
          }
        }
        return { erased };
      },
    });

    /** Addresses in the form billing keeps them (consent form: `whatsapp:+1555...` and `+1555...` are one person). */
    function subjectForms(addresses: string[]): string[] {
      return [...new Set(addresses.map(consentAddress))];
    }
  },
});

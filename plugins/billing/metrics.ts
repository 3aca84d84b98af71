/**
 * billing's Prometheus metrics (listed in the README). Subscriptions by status are read from the
 * database at scrape time (the same on every instance: aggregate with max); the counters are per instance.
 */
import type { PluginMetrics } from 'parley';
import type { BillingStore } from './store.js';

export function billingMetrics(metrics: PluginMetrics, store: () => BillingStore) {
  return {
    subscriptions: metrics.gauge({
      name: 'parley_billing_subscriptions',
      help: 'People with a billing record, by tenant and Stripe subscription status (none: no subscription yet)',
      labelNames: ['tenant', 'status'] as const,
      async collect() {
        this.reset();
        for (const r of await store().subscriptionCounts()) this.set({ tenant: r.tenantId, status: r.status }, r.n);
      },
    }),
    gate: metrics.counter({ name: 'parley_billing_gate_total', help: 'Entitlement decisions of the billing stage, by tenant and decision (pass-free-allowance, pass-subscription, pass-override, refuse-allowance-used, refuse-override)', labelNames: ['tenant', 'decision'] as const }),
    checkoutLinks: metrics.counter({ name: 'parley_billing_checkout_links_total', help: 'Plan chooser links sent (the checkout text), by tenant', labelNames: ['tenant'] as const }),
    checkoutSessions: metrics.counter({ name: 'parley_billing_checkout_sessions_total', help: 'Stripe Checkout sessions opened from the plan chooser, by tenant and price', labelNames: ['tenant', 'price'] as const }),
    chooser: metrics.counter({ name: 'parley_billing_chooser_requests_total', help: 'Plan chooser page requests by result (shown, chosen, invalid, expired, unknown-plan, subscribed, error)', labelNames: ['result'] as const }),
    conversions: metrics.counter({ name: 'parley_billing_conversions_total', help: 'People whose subscription became entitled (active, trialing...) from none or another status, by tenant', labelNames: ['tenant'] as const }),
    paymentFailures: metrics.counter({ name: 'parley_billing_payment_failures_total', help: 'Failed invoice payments (each invoice once), by tenant', labelNames: ['tenant'] as const }),
    revenue: metrics.counter({ name: 'parley_billing_revenue_total', help: 'Amount of paid invoices (each invoice once), in the currency unit, by tenant and currency', labelNames: ['tenant', 'currency'] as const }),
    keywords: metrics.counter({ name: 'parley_billing_keywords_total', help: 'Billing keywords answered, by tenant and keyword (portal, cancelPlan)', labelNames: ['tenant', 'keyword'] as const }),
    webhooks: metrics.counter({ name: 'parley_billing_webhooks_total', help: 'Stripe webhook deliveries by result (handled, duplicate, ignored, forged, stale, malformed, parked, error)', labelNames: ['result'] as const }),
    stripeErrors: metrics.counter({ name: 'parley_billing_stripe_errors_total', help: 'Stripe calls that failed after their retries, by tenant and call', labelNames: ['tenant', 'call'] as const }),
    stripeRetries: metrics.counter({ name: 'parley_billing_stripe_retries_total', help: 'Stripe calls repeated after a 429, 409, 5xx or network error (same idempotency key), by call', labelNames: ['call'] as const }),
    meterEvents: metrics.counter({ name: 'parley_billing_meter_events_total', help: 'Meter events sent to Stripe Billing Meters, by tenant, meter and result (sent, failed)', labelNames: ['tenant', 'meter', 'result'] as const }),
    reconciliations: metrics.counter({ name: 'parley_billing_reconciliations_total', help: "Comparisons of Stripe's meter summaries with the ledger, by tenant, meter and result (match, mismatch, pending)", labelNames: ['tenant', 'meter', 'result'] as const }),
  };
}

export type BillingMetrics = ReturnType<typeof billingMetrics>;

/**
 * `POST /stripe/webhook`: one endpoint for every tenant. The signature is checked with the SDK's
 * `webhooks.constructEvent` on the raw body against each tenant's signing secret (300 s tolerance);
 * the tenant is the one named in the object's metadata (`parley_tenant`, set on every customer,
 * session and subscription billing makes), else the one whose Connect account sent it, else the only
 * tenant with that secret, else the one that knows the customer. Duplicates are answered from the
 * event id; each event re-reads the current objects from Stripe (so order does not matter) and is
 * answered 2xx only once the change is stored. Events for no known tenant are parked and answered 200.
 */
import type { Request, Router } from 'express';
import type Stripe from 'stripe';
import { HttpError, ParleyError, badRequest, hashAddress, type PluginContext, type RouteHelpers } from 'parley';
import { z } from 'zod';
import type { BillingMetrics } from './metrics.js';
import type { BillingStore } from './store.js';
import { fill, planName, textsFor, type SubscriptionApi, type SubscriptionTenant } from './subscriptions.js';
import { describeError } from './stripe-api.js';
import { STRIPE_CHANNEL, WEBHOOK_PATH } from './types.js';

/** Currencies Stripe counts in whole units (no cents). */
const ZERO_DECIMAL = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);

type StripeObject = Record<string, unknown> & { id?: unknown; object?: unknown; metadata?: Record<string, string> | null; customer?: unknown };

const idOf = (v: unknown): string | null => (typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string' ? (v as { id: string }).id : null);

/** The tenant an object names in its metadata (an invoice carries its subscription's). */
function metadataTenant(obj: StripeObject): string | undefined {
  const fromMeta = (m: unknown) => (m && typeof m === 'object' ? (m as Record<string, unknown>).parley_tenant : undefined);
  const inv = obj as { parent?: { subscription_details?: { metadata?: unknown } }; subscription_details?: { metadata?: unknown } };
  const found = fromMeta(obj.metadata) ?? fromMeta(inv.parent?.subscription_details?.metadata) ?? fromMeta(inv.subscription_details?.metadata);
  return typeof found === 'string' && found ? found : undefined;
}

function customerOf(obj: StripeObject): string | null {
  return obj.object === 'customer' ? idOf(obj.id) : idOf(obj.customer);
}

export interface WebhookDeps {
  ctx: Pick<PluginContext, 'log' | 'gateway'>;
  store: BillingStore;
  api: SubscriptionApi;
  metrics: BillingMetrics;
  tenants: () => SubscriptionTenant[];
  toleranceSeconds: number;
  /** The SDK's webhook helpers (static on the Stripe class). */
  webhooks: Stripe['webhooks'];
}

export function stripeWebhook(deps: WebhookDeps) {
  const { ctx, store, api, metrics } = deps;

  /** Verifies against every distinct secret; returns the event and the tenants whose secret signed it. */
  function verify(req: Request): { event: Stripe.Event; signedBy: SubscriptionTenant[] } {
    const header = req.get('stripe-signature');
    if (!req.rawBody || !header) {
      metrics.webhooks.inc({ result: 'malformed' });
      throw badRequest(!header ? 'Missing Stripe-Signature header' : 'Expected a JSON body (Content-Type: application/json)');
    }
    const on = deps.tenants().filter((t) => !t.off);
    const bySecret = new Map<string, SubscriptionTenant[]>();
    for (const t of on) bySecret.set(t.settings.webhookSecret!, [...(bySecret.get(t.settings.webhookSecret!) ?? []), t]);
    let stale = false;
    for (const [secret, tenants] of bySecret) {
      try {
        const event = deps.webhooks.constructEvent(req.rawBody, header, secret, deps.toleranceSeconds);
        return { event, signedBy: tenants };
      } catch (error) {
        // The SDK checks the signature before the timestamp: a tolerance error means this secret signed it.
        if (/tolerance/i.test((error as Error).message)) stale = true;
        else if ((error as { type?: string }).type !== 'StripeSignatureVerificationError') {
          metrics.webhooks.inc({ result: 'malformed' });
          throw badRequest('The webhook body is not a Stripe event');
        }
      }
    }
    metrics.webhooks.inc({ result: stale ? 'stale' : 'forged' });
    ctx.log.warn({ reqId: req.requestId, reason: stale ? 'stale' : 'no matching signature' }, 'billing: Stripe webhook refused');
    throw new HttpError('PARLEY_BAD_REQUEST', stale ? 'Stripe-Signature timestamp is outside the 300 s tolerance' : 'Stripe-Signature does not match any configured signing secret', 400);
  }

  /** The tenant the event belongs to, or why none does. */
  async function resolveTenant(event: Stripe.Event, obj: StripeObject, signedBy: SubscriptionTenant[]): Promise<SubscriptionTenant | string> {
    const named = metadataTenant(obj);
    if (named) return signedBy.find((t) => t.tenant.id === named) ?? `the event names tenant "${named}", which has no billing subscriptions signed with this secret`;
    if (event.account) {
      const byAccount = signedBy.find((t) => t.settings.account === event.account);
      if (byAccount) return byAccount;
    }
    if (signedBy.length === 1) return signedBy[0]!;
    const customer = customerOf(obj);
    if (customer) {
      const owners = await store.tenantsOfCustomer(signedBy.map((t) => t.tenant.id), customer);
      if (owners.length === 1) return signedBy.find((t) => t.tenant.id === owners[0])!;
    }
    return 'the event names no tenant and its signing secret is shared by several';
  }

  /** Stores the customer's current subscription as Stripe has it now. */
  async function sync(state: SubscriptionTenant, customerId: string, source: string): Promise<string> {
    const readAt = new Date();
    const facts = await api.currentSubscription(state, customerId);
    const applied = await store.applySubscription(state.tenant.id, customerId, facts, readAt, source);
    if (!applied) return 'unknown-customer';
    const entitled = state.settings.entitledStatuses as string[];
    if (applied.changed && applied.to && entitled.includes(applied.to) && !(applied.from && entitled.includes(applied.from))) metrics.conversions.inc({ tenant: state.tenant.id });
    if (applied.changed) ctx.log.info({ tenant: state.tenant.id, subject: hashAddress(applied.address), from: applied.from, to: applied.to }, 'billing: subscription status changed');
    return applied.changed ? `subscription ${applied.from ?? 'none'} -> ${applied.to ?? 'none'}` : 'unchanged';
  }

  async function paymentFailed(state: SubscriptionTenant, invoice: Stripe.Invoice, customerId: string): Promise<string> {
    const tenantId = state.tenant.id;
    const e = await store.byCustomer(tenantId, customerId);
    const isNew = await store.recordInvoice(tenantId, { id: invoice.id!, customerId, address: e?.address ?? null, status: 'payment_failed', amountPaid: 0, currency: invoice.currency ?? null });
    if (isNew) metrics.paymentFailures.inc({ tenant: tenantId });
    // A failure Stripe has since recovered from (events out of order) is not worth a text.
    if (invoice.status === 'paid' || invoice.status === 'void') return 'payment failure already settled';
    if (!e || !state.settings.notifyPaymentFailure) return 'payment failure recorded';
    const texts = textsFor(state);
    const url = await api.portalUrl(state, customerId, `payment-failed:${invoice.id}`);
    // The key makes the text once per invoice, whatever the number of events, deliveries or instances.
    await ctx.gateway.enqueueOutbound({ tenantId, channel: e.channel, to: e.replyTo, text: fill(texts.paymentFailed, { url, plan: planName(state, e.priceId) }), idempotencyKey: `billing:payment-failed:${invoice.id}` });
    return 'payment failure notified';
  }

  async function handle(state: SubscriptionTenant, event: Stripe.Event, obj: StripeObject): Promise<string> {
    const source = `stripe:${event.id}`;
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded': {
        const session = await api.checkoutSessionOf(state, idOf(obj.id)!);
        const customer = idOf(session.customer);
        return customer ? sync(state, customer, source) : 'session without a customer';
      }
      case 'customer.subscription.created':
      case 'customer.subscription.updated':
      case 'customer.subscription.deleted':
      case 'customer.subscription.paused':
      case 'customer.subscription.resumed': {
        const customer = customerOf(obj);
        return customer ? sync(state, customer, source) : 'subscription without a customer';
      }
      case 'invoice.paid':
      case 'invoice.payment_failed': {
        const invoice = await api.invoice(state, idOf(obj.id)!);
        const customer = idOf(invoice.customer);
        if (!customer) return 'invoice without a customer';
        const synced = await sync(state, customer, source);
        if (event.type === 'invoice.payment_failed') return `${synced}; ${await paymentFailed(state, invoice, customer)}`;
        if (invoice.status !== 'paid') return `${synced}; invoice not paid now`;
        const e = await store.byCustomer(state.tenant.id, customer);
        const isNew = await store.recordInvoice(state.tenant.id, { id: invoice.id!, customerId: customer, address: e?.address ?? null, status: 'paid', amountPaid: invoice.amount_paid, currency: invoice.currency ?? null });
        if (isNew && invoice.amount_paid > 0) {
          const currency = (invoice.currency ?? 'usd').toLowerCase();
          metrics.revenue.inc({ tenant: state.tenant.id, currency }, ZERO_DECIMAL.has(currency) ? invoice.amount_paid : invoice.amount_paid / 100);
        }
        return `${synced}; invoice paid`;
      }
      default:
        return 'ignored';
    }
  }

  return (_router: Router, { route }: RouteHelpers): void => {
    route(
      {
        method: 'post',
        path: WEBHOOK_PATH,
        auth: 'none',
        tags: ['webhooks'],
        summary: 'Events from Stripe (checkout, subscriptions, invoices)',
        description:
          'Called by Stripe, never by integrators. Verified by `Stripe-Signature` over the raw body with the signing secrets; deduplicated by event id and applied in any order. Storage failures answer 503 so Stripe delivers the event again.',
        body: z.looseObject({ id: z.string(), type: z.string(), data: z.looseObject({ object: z.looseObject({ id: z.string() }) }) }).describe('A Stripe event'),
        responses: { 200: { description: 'Received (handled, ignored, a duplicate, or parked for a tenant it cannot apply to)', schema: z.object({ received: z.literal(true), duplicate: z.literal(true).optional(), parked: z.string().optional() }) } },
        errors: [{ code: 'PARLEY_BAD_REQUEST', status: 400, description: 'Missing or invalid Stripe-Signature, or not a Stripe event' }, { code: 'PARLEY_STORAGE_UNAVAILABLE', status: 503, description: 'Not recorded: Stripe delivers it again' }],
      },
      async (req, res) => {
        const { event, signedBy } = verify(req);
        const obj = (event as { data?: { object?: unknown } }).data?.object;
        if (typeof event.id !== 'string' || typeof event.type !== 'string' || !obj || typeof obj !== 'object' || typeof (obj as StripeObject).id !== 'string') {
          metrics.webhooks.inc({ result: 'malformed' });
          throw badRequest('A Stripe event needs id, type and data.object with an id');
        }
        const tenant = await resolveTenant(event, obj as StripeObject, signedBy);
        if (typeof tenant === 'string') {
          // Signed by us, but no tenant of this deployment takes it: parked for the operator, and 200 so Stripe stops retrying.
          const parked = await ctx.gateway.park({ channel: STRIPE_CHANNEL, reason: `${event.type} ${event.id}: ${tenant}`, payload: req.rawBody });
          metrics.webhooks.inc({ result: 'parked' });
          res.status(200).json({ received: true, parked: parked.id });
          return;
        }
        let outcome: string;
        let first: boolean;
        try {
          if (await store.seen(event.id)) {
            metrics.webhooks.inc({ result: 'duplicate' });
            res.status(200).json({ received: true, duplicate: true });
            return;
          }
          outcome = await handle(tenant, event, obj as StripeObject);
          first = await store.markHandled(tenant.tenant.id, event.id, event.type, outcome);
        } catch (error) {
          if (error instanceof ParleyError && error.status < 500) throw error;
          metrics.webhooks.inc({ result: 'error' });
          metrics.stripeErrors.inc({ tenant: tenant.tenant.id, call: `webhook ${event.type}` });
          ctx.log.error({ tenant: tenant.tenant.id, event: event.id, type: event.type, error: describeError(error) }, 'billing: a Stripe event could not be handled; Stripe will deliver it again');
          throw new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `The event could not be handled now (${describeError(error)}); Stripe will deliver it again`, 503);
        }
        metrics.webhooks.inc({ result: !first ? 'duplicate' : outcome === 'ignored' ? 'ignored' : 'handled' });
        ctx.log.info({ tenant: tenant.tenant.id, event: event.id, type: event.type, outcome }, 'billing: Stripe event handled');
        res.status(200).json({ received: true });
      },
    );
  };
}

/**
 * A local stand-in for the parts of Stripe's API billing uses, for tests that drive the real `stripe`
 * SDK (its `host`/`port`/`protocol` options): customers (create, delete), Checkout and portal
 * sessions, subscriptions, invoices, Billing Meters (meter events deduplicated by identifier and
 * refused outside Stripe's timestamp window, meters, event summaries). Bearer auth, Stripe's error shape, idempotency keys replayed as Stripe does (same
 * key: the first response again, `Idempotent-Replayed: true`), and scripted failures (429, 500, a
 * dropped connection after the request was handled). Webhook events are built and signed with the
 * SDK's `webhooks.generateTestHeaderString`. Binds to 127.0.0.1 on a free port.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import Stripe from 'stripe';

export type StripeFailure = '429' | '500' | 'drop-after';

export interface StripeRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  body: Record<string, unknown>;
  query: Record<string, unknown>;
}

type Obj = Record<string, any>;

export interface FakeStripe {
  /** `http://127.0.0.1:PORT`, to pass as the plugin's `apiBaseUrl`. */
  baseUrl: string;
  secretKey: string;
  requests: StripeRequest[];
  customers: Map<string, Obj>;
  deletedCustomers: string[];
  sessions: Map<string, Obj>;
  subscriptions: Map<string, Obj>;
  invoices: Map<string, Obj>;
  /** Meter events Stripe counted (a duplicate identifier is refused and not added). */
  meterEvents: Obj[];
  meters: Obj[];
  /** The next `n` requests whose path starts with `pathPrefix` (default any) fail with `kind`. */
  failNext(n: number, kind: StripeFailure, pathPrefix?: string): void;
  clearFailures(): void;
  /** The checkout is paid: a subscription (status `active` by default) exists and the session is complete. */
  completeCheckout(sessionId: string, status?: string): { session: Obj; subscription: Obj };
  setSubscriptionStatus(subscriptionId: string, status: string): Obj;
  createInvoice(subscriptionId: string, o: { status: 'paid' | 'open'; amount: number; currency?: string }): Obj;
  /** An event as Stripe delivers it, with a copy of `object` as it is now. */
  event(type: string, object: Obj, o?: { account?: string }): Obj;
  /** The `Stripe-Signature` header for `payload`, made by the SDK's own helper. */
  sign(payload: string, secret: string, timestamp?: number): string;
  close(): Promise<void>;
}

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;
const now = () => Math.floor(Date.now() / 1000);

function stripeError(res: Response, status: number, type: string, message: string, code?: string, param?: string): void {
  res.status(status).json({ error: { type, message, ...(code ? { code } : {}), ...(param ? { param } : {}) } });
}

export async function startFakeStripe(o: { secretKey?: string; meters?: string[] } = {}): Promise<FakeStripe> {
  const secretKey = o.secretKey ?? `sk_test_${randomBytes(12).toString('hex')}`;
  const requests: StripeRequest[] = [];
  const customers = new Map<string, Obj>();
  const deletedCustomers: string[] = [];
  const sessions = new Map<string, Obj>();
  const subscriptions = new Map<string, Obj>();
  const invoices = new Map<string, Obj>();
  const meterEvents: Obj[] = [];
  const meters: Obj[] = (o.meters ?? ['parley_inbound_messages', 'parley_outbound_messages', 'parley_sms_segments', 'parley_ai_tokens']).map((eventName) => ({
    id: id('mtr'),
    object: 'billing.meter',
    event_name: eventName,
    status: 'active',
    display_name: eventName,
    default_aggregation: { formula: 'sum' },
  }));
  const idempotent = new Map<string, { status: number; body: unknown }>();
  const failures: { kind: StripeFailure; prefix: string }[] = [];
  let baseUrl = '';

  const app = express();
  app.use(express.urlencoded({ extended: true }));
  const list = (data: Obj[], url: string) => ({ object: 'list', data, has_more: false, url });

  app.use((req, res, next) => {
    const key = req.get('idempotency-key');
    requests.push({ method: req.method, path: req.path, idempotencyKey: key, body: (req.body ?? {}) as Record<string, unknown>, query: req.query as Record<string, unknown> });
    if (req.get('authorization') !== `Bearer ${secretKey}`) return stripeError(res, 401, 'invalid_request_error', 'Invalid API Key provided');
    const failure = failures.findIndex((f) => req.path.startsWith(f.prefix));
    let dropAfter = false;
    if (failure >= 0) {
      const [f] = failures.splice(failure, 1);
      if (f!.kind === '429') return stripeError(res, 429, 'invalid_request_error', 'Too many requests made to the API too quickly', 'rate_limit');
      if (f!.kind === '500') return stripeError(res, 500, 'api_error', 'Something went wrong on our end');
      dropAfter = true;
    }
    if (key && req.method !== 'GET') {
      const stored = idempotent.get(`${req.method} ${key}`);
      if (stored) {
        res.set('idempotent-replayed', 'true');
        return res.status(stored.status).json(stored.body);
      }
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        idempotent.set(`${req.method} ${key}`, { status: res.statusCode, body });
        if (dropAfter) {
          // Handled and stored, but the answer never arrives: the client must retry with the same key.
          req.socket.destroy();
          return res;
        }
        return json(body);
      };
    } else if (dropAfter) {
      req.socket.destroy();
      return;
    }
    next();
  });

  app.post('/v1/customers', (req, res) => {
    const c = { id: id('cus'), object: 'customer', created: now(), metadata: req.body.metadata ?? {}, email: req.body.email ?? null, phone: req.body.phone ?? null };
    customers.set(c.id, c);
    res.json(c);
  });
  app.get('/v1/customers/:id', (req, res) => {
    const c = customers.get(req.params.id);
    if (!c) return stripeError(res, 404, 'invalid_request_error', `No such customer: '${req.params.id}'`, 'resource_missing');
    res.json(c);
  });
  app.delete('/v1/customers/:id', (req, res) => {
    const c = customers.get(req.params.id);
    if (!c) return stripeError(res, 404, 'invalid_request_error', `No such customer: '${req.params.id}'`, 'resource_missing');
    customers.delete(c.id);
    deletedCustomers.push(c.id);
    res.json({ id: c.id, object: 'customer', deleted: true });
  });

  app.post('/v1/checkout/sessions', (req, res) => {
    const b = req.body as Obj;
    if (b.mode !== 'subscription' || !b.customer || !b.line_items?.[0]?.price || !b.success_url || !b.cancel_url) return stripeError(res, 400, 'invalid_request_error', 'Missing required param', 'parameter_missing');
    if (!customers.has(b.customer)) return stripeError(res, 400, 'invalid_request_error', `No such customer: '${b.customer}'`, 'resource_missing');
    const s = {
      id: id('cs_test'),
      object: 'checkout.session',
      mode: 'subscription',
      status: 'open',
      payment_status: 'unpaid',
      customer: b.customer,
      client_reference_id: b.client_reference_id ?? null,
      metadata: b.metadata ?? {},
      subscription: null as string | null,
      success_url: b.success_url,
      cancel_url: b.cancel_url,
      url: '',
      price: b.line_items[0].price,
      subscription_metadata: b.subscription_data?.metadata ?? {},
    };
    s.url = `${baseUrl}/pay/${s.id}`;
    sessions.set(s.id, s);
    res.json(s);
  });
  app.get('/v1/checkout/sessions/:id', (req, res) => {
    const s = sessions.get(req.params.id);
    if (!s) return stripeError(res, 404, 'invalid_request_error', `No such checkout.session: '${req.params.id}'`, 'resource_missing');
    res.json(s);
  });

  app.post('/v1/billing_portal/sessions', (req, res) => {
    if (!customers.has(req.body.customer)) return stripeError(res, 400, 'invalid_request_error', `No such customer: '${req.body.customer}'`, 'resource_missing');
    const p = { id: id('bps'), object: 'billing_portal.session', customer: req.body.customer, return_url: req.body.return_url ?? null, url: '' };
    p.url = `${baseUrl}/portal/${p.id}`;
    res.json(p);
  });

  app.get('/v1/subscriptions', (req, res) => {
    const data = [...subscriptions.values()].filter((s) => !req.query.customer || s.customer === req.query.customer);
    res.json(list(data, '/v1/subscriptions'));
  });
  app.get('/v1/subscriptions/:id', (req, res) => {
    const s = subscriptions.get(req.params.id);
    if (!s) return stripeError(res, 404, 'invalid_request_error', `No such subscription: '${req.params.id}'`, 'resource_missing');
    res.json(s);
  });
  app.get('/v1/invoices/:id', (req, res) => {
    const i = invoices.get(req.params.id);
    if (!i) return stripeError(res, 404, 'invalid_request_error', `No such invoice: '${req.params.id}'`, 'resource_missing');
    res.json(i);
  });

  app.post('/v1/billing/meter_events', (req, res) => {
    const b = req.body as Obj;
    if (!b.event_name || !b.payload?.stripe_customer_id || b.payload?.value === undefined) return stripeError(res, 400, 'invalid_request_error', 'Missing required param', 'parameter_missing');
    // Stripe's window: within the past 35 calendar days, at most 5 minutes ahead.
    const timestamp = Number(b.timestamp ?? now());
    if (timestamp < now() - 35 * 86_400) return stripeError(res, 400, 'invalid_request_error', 'Timestamp must be within the past 35 days.', 'timestamp_too_far_in_past', 'timestamp');
    if (timestamp > now() + 300) return stripeError(res, 400, 'invalid_request_error', 'Timestamp must not be more than 5 minutes in the future.', 'timestamp_in_future', 'timestamp');
    if (b.identifier && meterEvents.some((e) => e.identifier === b.identifier)) {
      return stripeError(res, 400, 'invalid_request_error', `An event already exists with identifier ${b.identifier}.`, 'duplicate_meter_event');
    }
    const e = { object: 'billing.meter_event', event_name: b.event_name, identifier: b.identifier ?? id('mev'), payload: b.payload, timestamp, created: now(), livemode: false };
    meterEvents.push(e);
    res.json(e);
  });
  app.get('/v1/billing/meters', (_req, res) => res.json(list(meters, '/v1/billing/meters')));
  app.get('/v1/billing/meters/:id/event_summaries', (req, res) => {
    const meter = meters.find((m) => m.id === req.params.id);
    if (!meter) return stripeError(res, 404, 'invalid_request_error', `No such billing.meter: '${req.params.id}'`, 'resource_missing');
    const start = Number(req.query.start_time);
    const end = Number(req.query.end_time);
    if (!req.query.customer || !Number.isFinite(start) || !Number.isFinite(end) || start % 60 || end % 60) return stripeError(res, 400, 'invalid_request_error', 'customer, and start_time and end_time on minute boundaries, are required');
    const value = meterEvents
      .filter((e) => e.event_name === meter.event_name && e.payload.stripe_customer_id === req.query.customer && e.timestamp >= start && e.timestamp < end)
      .reduce((sum, e) => sum + Number(e.payload.value), 0);
    res.json(list([{ id: id('mtrusg'), object: 'billing.meter_event_summary', aggregated_value: value, start_time: start, end_time: end, meter: meter.id, livemode: false }], `/v1/billing/meters/${meter.id}/event_summaries`));
  });

  app.use((req, res) => stripeError(res, 404, 'invalid_request_error', `Unrecognized request URL (${req.method}: ${req.path})`));

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl,
    secretKey,
    requests,
    customers,
    deletedCustomers,
    sessions,
    subscriptions,
    invoices,
    meterEvents,
    meters,
    failNext(n, kind, prefix = '') {
      for (let i = 0; i < n; i++) failures.push({ kind, prefix });
    },
    clearFailures() {
      failures.length = 0;
    },
    completeCheckout(sessionId, status = 'active') {
      const session = sessions.get(sessionId);
      if (!session) throw new Error(`no session ${sessionId}`);
      const subscription = {
        id: id('sub'),
        object: 'subscription',
        customer: session.customer,
        status,
        created: now(),
        metadata: session.subscription_metadata,
        items: { object: 'list', data: [{ id: id('si'), object: 'subscription_item', price: { id: session.price, object: 'price' }, current_period_end: now() + 30 * 86400 }] },
      };
      subscriptions.set(subscription.id, subscription);
      Object.assign(session, { status: 'complete', payment_status: 'paid', subscription: subscription.id });
      return { session, subscription };
    },
    setSubscriptionStatus(subscriptionId, status) {
      const s = subscriptions.get(subscriptionId);
      if (!s) throw new Error(`no subscription ${subscriptionId}`);
      s.status = status;
      return s;
    },
    createInvoice(subscriptionId, i) {
      const s = subscriptions.get(subscriptionId);
      if (!s) throw new Error(`no subscription ${subscriptionId}`);
      const invoice = {
        id: id('in'),
        object: 'invoice',
        customer: s.customer,
        status: i.status,
        amount_due: i.amount,
        amount_paid: i.status === 'paid' ? i.amount : 0,
        currency: i.currency ?? 'usd',
        parent: { type: 'subscription_details', subscription_details: { subscription: s.id, metadata: s.metadata } },
      };
      invoices.set(invoice.id, invoice);
      return invoice;
    },
    event(type, object, eo = {}) {
      return { id: id('evt'), object: 'event', api_version: '2025-01-01', created: now(), livemode: false, type, ...(eo.account ? { account: eo.account } : {}), data: { object: structuredClone(object) } };
    },
    sign(payload, secret, timestamp) {
      return Stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp !== undefined ? { timestamp } : {}) });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

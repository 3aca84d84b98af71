/**
 * billing end to end (embedded, and on PostgreSQL + Redis with PARLEY_TEST_BACKEND=external): the real
 * `stripe` SDK against a local fake of Stripe's API, webhooks signed with the SDK's
 * `generateTestHeaderString`. The free allowance then a plan chooser link once a day; the chooser page,
 * its forged and expired links, one Checkout session per double click; activation by
 * webhook before, after and twice relative to checkout completion; forged, stale and re-serialised
 * signatures; events for unknown tenants parked; a payment failure texted once; CANCEL still opting
 * out over SMS while CANCEL PLAN explains; meter events retried without double counting;
 * reconciliation alerts; erasure deleting the Stripe customer; the admin API and its tenant isolation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { TEST_BACKEND, externalServices } from './backend.js';
import { startFakeStripe, type FakeStripe } from './fakes/stripe-api.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { TWILIO_STAGES } from './fixtures/twilio-stages.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';
import type { MeterReporter } from '../plugins/billing/index.js';
import { signChoiceToken } from '../plugins/billing/chooser-link.js';

const OP = 'key-operator-billing-0123456789';
const key = (t: string) => `key-${t}-billing-0123456789`;
const WHSEC = 'whsec_clinic_test_secret_0123456789';
const OTHER_WHSEC = 'whsec_other_test_secret_0123456789';
const CLINIC_NUMBER = '+15557654321';
const NEVER = '0 0 1 1 *';
const skip = TEST_BACKEND === 'external' ? await externalServices() : null;

let stripe: FakeStripe;
let twilio: FakeTwilio;
let gw: TestGateway;
let reporter: MeterReporter;
let n = 0;
const phone = () => `+1555020${String(++n).padStart(4, '0')}`;

const subscriptions = (stripeFake: FakeStripe, extra: Record<string, unknown> = {}) => ({
  secretKey: stripeFake.secretKey,
  webhookSecret: WHSEC,
  plans: [
    { price: 'price_monthly', name: 'Caregiver Plus', priceText: '$9 a month' },
    { price: 'price_yearly', name: 'Caregiver Plus yearly', priceText: '$90 a year' },
  ],
  freeAllowance: { messages: 2 },
  successUrl: 'https://clinic.example/thanks',
  cancelUrl: 'https://clinic.example/later',
  ...extra,
});

beforeAll(async () => {
  if (skip) return;
  stripe = await startFakeStripe();
  twilio = await startFakeTwilio();
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OP] },
      outbox: { attempts: 3, backoffMs: 50, concurrency: 4 },
      plugins: [
        'http',
        { name: 'twilio-sms', options: { apiBaseUrl: twilio.baseUrl } },
        { name: 'twilio-test', module: TWILIO_STAGES },
        { name: 'billing', options: { apiBaseUrl: stripe.baseUrl, backoffMs: 5, usage: { secretKey: stripe.secretKey, reportCron: NEVER, reconcileCron: NEVER, graceMinutes: 0 } } },
      ],
      tenants: [
        {
          id: 'clinic',
          name: 'Harbour Clinic',
          apiKeys: [key('clinic')],
          pipeline: ['billing', 'twilio-test.echo'],
          plugins: {
            http: {},
            'twilio-sms': { accountSid: twilio.accountSid, authToken: twilio.authToken, numbers: [CLINIC_NUMBER] },
            billing: { subscriptions: subscriptions(stripe), usage: { customer: 'cus_clinicplatform' } },
          },
        },
        {
          id: 'other',
          apiKeys: [key('other')],
          locale: 'es-US',
          pipeline: ['billing', 'twilio-test.echo'],
          plugins: { http: {}, billing: { subscriptions: { ...subscriptions(stripe, { webhookSecret: OTHER_WHSEC, whenNotEntitled: 'answer-and-remind', freeAllowance: { days: 0 }, plans: [{ price: 'price_familia', name: 'Plan <b>"Familia"</b> & más', priceText: '$5 al mes' }] }) }, usage: { customer: 'cus_otherplatform' } } },
        },
        {
          id: 'nokey',
          apiKeys: [key('nokey')],
          pipeline: ['billing', 'twilio-test.echo'],
          plugins: { http: {}, billing: { subscriptions: { plans: [{ price: 'price_x', name: 'X' }], freeAllowance: { messages: 0 }, successUrl: 'https://x.example/a', cancelUrl: 'https://x.example/b' } } },
        },
      ],
    },
  });
  reporter = gw.gateway.container.resolve(Symbol.for('billing.reporter')) as MeterReporter;
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await stripe?.close();
  await twilio?.close();
}, 60_000);

const send = (text: string, from: string, t = 'clinic') => gw.send(t, { from, text }, key(t));
const texts = async (text: string, from: string, t = 'clinic') => (await send(text, from, t)).replies.map((r) => r.text);
const sessionOf = (url: string) => /\/pay\/(cs_test_[0-9a-f]+)/.exec(url)?.[1];
const linkOf = (text: string) => /(http:\/\/127\.0\.0\.1:\d+\/billing\/choose\/\S+)$/.exec(text)?.[1];
/** Choosing a plan on the chooser page, as the browser posts the form (the 303 is not followed: it leads to Stripe). */
const choose = (link: string, form: Record<string, string> = { plan: 'price_monthly' }) =>
  fetch(link, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
const openPage = async (link: string) => {
  const res = await fetch(link);
  return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, html: await res.text() };
};

async function deliver(event: Record<string, unknown>, o: { secret?: string; timestamp?: number; body?: string } = {}) {
  const payload = JSON.stringify(event);
  const header = stripe.sign(payload, o.secret ?? WHSEC, o.timestamp);
  return gw.request('POST', '/stripe/webhook', { raw: o.body ?? payload, headers: { 'content-type': 'application/json', 'stripe-signature': header } });
}

/** A person who used up the allowance and got a chooser link; returns it. */
async function chooserLinkFor(p: string): Promise<string> {
  await send('hi', p);
  await send('hi again', p);
  const [text] = await texts('one more', p);
  const link = linkOf(text!);
  expect(link).toBeDefined();
  return link!;
}

/** A person who used up the allowance and chose the monthly plan; returns the Checkout session id. */
async function checkoutFor(p: string): Promise<string> {
  const chosen = await choose(await chooserLinkFor(p));
  expect(chosen.status).toBe(303);
  const id = sessionOf(chosen.headers.get('location')!);
  expect(id).toBeDefined();
  return id!;
}

const entitlement = async (p: string, t = 'clinic') => (await gw.request('GET', `/v1/tenants/${t}/billing/entitlements/${encodeURIComponent(p)}`, { key: key(t) })).body;

describe.skipIf(skip)(`billing on the ${TEST_BACKEND} backend`, () => {
  it('answers within the free allowance, then sends a plan chooser link at most once a day and no answer, without calling Stripe', async () => {
    const p = phone();
    expect(await texts('hello', p)).toEqual(['echo: hello [turn 1]']);
    expect(await texts('how are you', p)).toEqual(['echo: how are you [turn 2]']);
    const calls = stripe.requests.length;
    const [text, ...rest] = await texts('and now?', p);
    expect(rest).toEqual([]);
    expect(text).toMatch(/^Your free messages are used up\. To keep chatting, subscribe to Caregiver Plus or Caregiver Plus yearly: http:\/\/127\.0\.0\.1:\d+\/billing\/choose\/[A-Za-z0-9_-]+\.[0-9a-z]+\.[A-Za-z0-9_-]+$/);
    // The gate only stored a link: Stripe is called when a plan is chosen, and the URL carries no phone number.
    expect(stripe.requests.length).toBe(calls);
    expect(text).not.toContain(p.slice(1));
    // Within the day: no second link, no answer.
    const later = await send('hello??', p);
    expect(later.replies).toEqual([]);
    expect(later.message.stopReason).toMatch(/^billing: not entitled/);
    // A day later the link is offered again.
    await gw.gateway.db.pool.query(`UPDATE billing_entitlements SET last_link_at = now() - interval '25 hours' WHERE tenant_id = 'clinic' AND address = $1`, [p]);
    const again = (await texts('still there?', p))[0]!;
    expect(again).toMatch(/subscribe to Caregiver Plus or Caregiver Plus yearly: http/);
    expect(linkOf(again)).not.toBe(linkOf(text!));
    expect(await gw.metrics()).toMatch(/parley_billing_checkout_links_total\{tenant="clinic"\} [2-9]/);
  });

  it('answers anyway and reminds when the tenant says so, in the tenant language', async () => {
    const p = phone();
    const replies = await texts('hola', p, 'other');
    expect(replies[0]).toBe('echo: hola [turn 1]');
    expect(replies[1]).toMatch(/^Ya usó sus mensajes gratuitos\. Para seguir, suscríbase a Plan <b>"Familia"<\/b> & más: http/);
    expect(await texts('otra vez', p, 'other')).toEqual(['echo: otra vez [turn 2]']);
    // The one plan is offered on the chooser page too, in the tenant's language, its name escaped.
    const page = await openPage(linkOf(replies[1]!)!);
    expect(page.status).toBe(200);
    expect(page.html).toContain('<html lang="es">');
    expect(page.html).toContain('Elija su plan');
    expect(page.html).toContain('Plan &lt;b&gt;&quot;Familia&quot;&lt;/b&gt; &amp; más');
    expect(page.html).not.toContain('<b>');
  });

  it('offers every plan on a plain Parley page, and opens one Checkout session for the chosen plan however often it is clicked', async () => {
    const p = phone();
    const link = await chooserLinkFor(p);
    const calls = stripe.requests.length;
    const page = await openPage(link);
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    for (const shown of ['Caregiver Plus', '$9 a month', 'Caregiver Plus yearly', '$90 a year', 'value="price_monthly"', 'value="price_yearly"', '<form method="post">']) expect(page.html).toContain(shown);
    // Self-contained: no script, no external asset. Opening the page (a link preview) calls nobody.
    expect(page.html).not.toMatch(/<script|<link|src=|https?:\/\//);
    expect(stripe.requests.length).toBe(calls);
    // A double click: two posts at once, one session, both sent to it.
    const [a, b] = await Promise.all([choose(link, { plan: 'price_yearly' }), choose(link, { plan: 'price_yearly' })]);
    expect([a.status, b.status]).toEqual([303, 303]);
    expect(b.headers.get('location')).toBe(a.headers.get('location'));
    const session = stripe.sessions.get(sessionOf(a.headers.get('location')!)!)!;
    expect(session).toMatchObject({ mode: 'subscription', success_url: 'https://clinic.example/thanks', cancel_url: 'https://clinic.example/later', price: 'price_yearly', metadata: { parley_tenant: 'clinic' }, subscription_metadata: { parley_tenant: 'clinic' } });
    expect([...stripe.sessions.values()].filter((s) => s.customer === session.customer)).toHaveLength(1);
    // A later click goes back to the open session; once Stripe expired it (24 hours), to a new one.
    expect((await choose(link, { plan: 'price_yearly' })).headers.get('location')).toBe(a.headers.get('location'));
    session.status = 'expired';
    const renewed = await choose(link, { plan: 'price_yearly' });
    expect(renewed.status).toBe(303);
    expect(renewed.headers.get('location')).not.toBe(a.headers.get('location'));
    const fresh = stripe.sessions.get(sessionOf(renewed.headers.get('location')!)!)!;
    expect(fresh).toMatchObject({ status: 'open', price: 'price_yearly', customer: session.customer });
    expect((await choose(link, { plan: 'price_yearly' })).headers.get('location')).toBe(renewed.headers.get('location'));
    expect([...stripe.sessions.values()].filter((s) => s.customer === session.customer)).toHaveLength(2);
    // Stripe never gets the phone number; every call carried an idempotency key.
    expect(stripe.customers.get(session.customer)!.metadata).toMatchObject({ parley_tenant: 'clinic' });
    expect(JSON.stringify([...stripe.customers.values()])).not.toContain(p);
    expect(stripe.requests.filter((r) => r.method === 'POST').every((r) => r.idempotencyKey?.startsWith('parley:'))).toBe(true);
    expect((await entitlement(p)).history.filter((h: { change: string }) => h.change === 'checkout-session').map((h: { detail: { sessionId: string } }) => h.detail.sessionId)).toEqual([session.id, fresh.id]);
    // Paid: the link now says so instead of offering another subscription.
    const { subscription } = stripe.completeCheckout(fresh.id);
    await deliver(stripe.event('customer.subscription.created', subscription));
    expect((await entitlement(p)).entitlement.priceId).toBe('price_yearly');
    const after = await openPage(link);
    expect(after.status).toBe(409);
    expect(after.html).toContain('You already have a plan');
    expect((await choose(link, { plan: 'price_monthly' })).status).toBe(409);
    expect([...stripe.sessions.values()].filter((s) => s.customer === session.customer)).toHaveLength(2);
    expect(await gw.metrics()).toMatch(/parley_billing_checkout_sessions_total\{tenant="clinic",price="price_yearly"\} 2\b/);
  });

  it('answers a forged, altered, expired or erased link, and a plan not offered, with a 4xx page, never a 5xx', async () => {
    const p = phone();
    const link = await chooserLinkFor(p);
    const base = link.slice(0, link.lastIndexOf('/') + 1);
    const token = link.slice(base.length);
    const [linkId, exp, mac] = token.split('.') as [string, string, string];
    const flip = (s: string) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A');
    for (const bad of ['abc', 'x'.repeat(500), `${linkId}.${exp}.${flip(mac)}`, `${linkId}.${(parseInt(exp, 36) + 86_400).toString(36)}.${mac}`, `${flip(linkId)}.${exp}.${mac}`, '%E0%A4%A', '..']) {
      const page = await openPage(base + bad);
      expect(page.status, bad).toBeGreaterThanOrEqual(400);
      expect(page.status, bad).toBeLessThan(500);
      expect((await choose(base + bad)).status, bad).toBeLessThan(500);
    }
    expect((await openPage(`${base}${linkId}.${exp}.${flip(mac)}`)).html).toContain('This link is not valid');
    // Signed by us but past its time: 410.
    const { rows } = await gw.gateway.db.pool.query(`SELECT value FROM billing_secrets WHERE name = 'chooser-links'`);
    const expired = await openPage(base + signChoiceToken(rows[0].value, linkId, new Date(Date.now() - 60_000)));
    expect(expired.status).toBe(410);
    expect(expired.html).toContain('This link has expired');
    // A plan the tenant does not offer, or none: 400, and nothing is asked of Stripe.
    const calls = stripe.requests.length;
    expect((await choose(link, { plan: 'price_nope' })).status).toBe(400);
    expect((await choose(link, {})).status).toBe(400);
    expect(stripe.requests.length).toBe(calls);
    // Stripe down past the retries: 503, try again; the next click opens the session.
    stripe.failNext(8, '500', '/v1/customers');
    const down = await choose(link);
    expect(down.status).toBe(503);
    expect(await down.text()).toContain('try again');
    stripe.clearFailures();
    expect((await choose(link)).status).toBe(303);
    // Erased: the link leads nowhere.
    await gw.gateway.eraseSubject({ tenantId: 'clinic', addresses: [p] }, 'test');
    expect((await openPage(link)).status).toBe(410);
    expect(await gw.metrics()).toMatch(/parley_billing_chooser_requests_total\{result="invalid"\} [1-9]/);
  });

  it('activates on the subscription event arriving before checkout completion, and ignores the duplicate', async () => {
    const p = phone();
    const { subscription, session } = stripe.completeCheckout(await checkoutFor(p));
    expect((await deliver(stripe.event('customer.subscription.created', subscription))).status).toBe(200);
    expect((await entitlement(p)).entitlement).toMatchObject({ subscriptionStatus: 'active', subscriptionId: subscription.id, decision: { entitled: true, reason: 'subscription' } });
    const completed = stripe.event('checkout.session.completed', session);
    expect((await deliver(completed)).body).toEqual({ received: true });
    expect((await deliver(completed)).body).toEqual({ received: true, duplicate: true });
    expect(await texts('thanks!', p)).toEqual(['echo: thanks! [turn 4]']);
    const { history } = await entitlement(p);
    expect(history.filter((h: { change: string }) => h.change === 'subscription')).toEqual([expect.objectContaining({ statusFrom: null, statusTo: 'active', source: expect.stringMatching(/^stripe:evt_/) })]);
  });

  it('activates on checkout completion arriving first, and a stale event copy never undoes the current state', async () => {
    const p = phone();
    const { subscription, session } = stripe.completeCheckout(await checkoutFor(p));
    const created = stripe.event('customer.subscription.created', subscription);
    await deliver(stripe.event('checkout.session.completed', session));
    expect((await entitlement(p)).entitlement.subscriptionStatus).toBe('active');
    // Cancelled since; the late "created" event still says active: the current object wins.
    stripe.setSubscriptionStatus(subscription.id, 'canceled');
    await deliver(stripe.event('customer.subscription.deleted', subscription));
    expect((await deliver(created)).status).toBe(200);
    expect((await entitlement(p)).entitlement).toMatchObject({ subscriptionStatus: 'canceled', decision: { entitled: false } });
    expect(await gw.metrics()).toMatch(/parley_billing_conversions_total\{tenant="clinic"\} [1-9]/);
  });

  it('refuses forged, stale (over 300 s) and re-serialised signatures with 400, and accepts 299 s', async () => {
    const p = phone();
    const { subscription } = stripe.completeCheckout(await checkoutFor(p));
    const event = stripe.event('customer.subscription.created', subscription);
    const forged = await deliver(event, { secret: 'whsec_not_ours' });
    expect(forged.status).toBe(400);
    expect(forged.body.error.message).toMatch(/does not match/);
    const stale = await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(400);
    expect(stale.body.error.message).toMatch(/300 s tolerance/);
    const reserialised = await deliver(event, { body: JSON.stringify(event, null, 2) });
    expect(reserialised.status).toBe(400);
    const noHeader = await gw.request('POST', '/stripe/webhook', { body: event });
    expect(noHeader.status).toBe(400);
    expect((await entitlement(p)).entitlement.subscriptionStatus).toBeNull();
    expect((await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 299 })).status).toBe(200);
    expect((await entitlement(p)).entitlement.subscriptionStatus).toBe('active');
    // Signed, but not an event: a 4xx with a reason, never a 500.
    const notEvent = await gw.request('POST', '/stripe/webhook', { raw: '{"hello":1}', headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign('{"hello":1}', WHSEC) } });
    expect(notEvent.status).toBe(400);
    expect(await gw.metrics()).toMatch(/parley_billing_webhooks_total\{result="stale"\} [1-9]/);
  });

  it('answers 503 while Stripe cannot be read, so Stripe delivers again, and stores the event on redelivery', async () => {
    const p = phone();
    const { subscription } = stripe.completeCheckout(await checkoutFor(p));
    const event = stripe.event('customer.subscription.created', subscription);
    stripe.failNext(4, '500', '/v1/subscriptions');
    const failed = await deliver(event);
    expect(failed.status).toBe(503);
    expect((await entitlement(p)).entitlement.subscriptionStatus).toBeNull();
    expect((await deliver(event)).body).toEqual({ received: true });
    expect((await entitlement(p)).entitlement.subscriptionStatus).toBe('active');
  });

  it('parks an event for an unknown tenant and answers 200 so Stripe stops retrying', async () => {
    const r = await deliver(stripe.event('customer.subscription.updated', { id: 'sub_ghost', object: 'subscription', customer: 'cus_ghost', status: 'active', metadata: { parley_tenant: 'ghost' } }));
    expect(r.status).toBe(200);
    expect(r.body.parked).toBeDefined();
    const parked = await gw.request('GET', '/v1/parked', { key: OP });
    expect(parked.body.parked.some((x: { channel: string; reason: string }) => x.channel === 'stripe' && /ghost/.test(x.reason))).toBe(true);
  });

  it('texts a payment failure once per invoice, with the portal link, however often Stripe reports it', async () => {
    const p = phone();
    const { subscription } = stripe.completeCheckout(await checkoutFor(p));
    await deliver(stripe.event('customer.subscription.created', subscription));
    const invoice = stripe.createInvoice(subscription.id, { status: 'open', amount: 900 });
    stripe.setSubscriptionStatus(subscription.id, 'past_due');
    const results = await Promise.all([deliver(stripe.event('invoice.payment_failed', invoice)), deliver(stripe.event('invoice.payment_failed', invoice))]);
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    await deliver(stripe.event('invoice.payment_failed', invoice));
    const sent = await gw.waitForOutbox('clinic', (items) => items.some((i) => i.to === p && /could not take your payment/.test(i.text)));
    expect(sent.filter((i) => i.to === p && !i.inboundId).map((i) => i.text)).toEqual([expect.stringMatching(/^We could not take your payment for Caregiver Plus\. Please update your card here: http:\/\/127\.0\.0\.1:\d+\/portal\/bps_/)]);
    // past_due still counts as paid while Stripe retries the card.
    expect((await entitlement(p)).entitlement.decision).toMatchObject({ entitled: true });
    // Paid later: revenue is counted once.
    invoice.status = 'paid';
    invoice.amount_paid = 900;
    stripe.setSubscriptionStatus(subscription.id, 'active');
    const paid = stripe.event('invoice.paid', invoice);
    await deliver(paid);
    await deliver(stripe.event('invoice.paid', invoice));
    expect(await gw.metrics()).toMatch(/parley_billing_revenue_total\{tenant="clinic",currency="usd"\} 9\b/);
    expect(await gw.metrics()).toMatch(/parley_billing_payment_failures_total\{tenant="clinic"\} 1\b/);
  });

  it('sends the customer portal for BILLING and CUENTA, and explains how to cancel for CANCEL PLAN', async () => {
    const p = phone();
    expect(await texts('BILLING', p)).toEqual(['You have no paid plan yet, so there is nothing to manage.']);
    const { subscription } = stripe.completeCheckout(await checkoutFor(p));
    await deliver(stripe.event('customer.subscription.created', subscription));
    expect((await texts('billing', p))[0]).toMatch(/^Manage your plan and payment details here: http:\/\/127\.0\.0\.1:\d+\/portal\/bps_/);
    expect((await texts('Cuenta', p))[0]).toMatch(/^Administre su plan y sus datos de pago aquí: http/);
    expect((await texts('cancel plan', p))[0]).toMatch(/^To cancel your plan, open http:\/\/\S+ and choose "Cancel plan"\. \(Texting CANCEL alone stops all our messages instead\.\)/);
  });

  it('keeps CANCEL a carrier opt-out over SMS, while CANCEL PLAN reaches billing', async () => {
    const sms = async (from: string, body: string) => {
      const res = await post(signedSmsRequest({ baseUrl: gw.url, authToken: twilio.authToken, params: inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid: twilio.accountSid }) }));
      expect(res.status).toBe(200);
      return twimlMessages(res.text).map((m) => m.body);
    };
    const a = phone();
    const b = phone();
    expect((await sms(a, 'CANCEL'))[0]).toMatch(/unsubscribed/);
    expect(await gw.gateway.consent.isOptedOut('clinic', a)).toBe(true);
    expect(await sms(b, 'CANCEL PLAN')).toEqual(['You have no paid plan to cancel. (Texting CANCEL alone stops all our messages.)']);
    expect(await gw.gateway.consent.isOptedOut('clinic', b)).toBe(false);
  });

  it('lets every message through for a tenant without a Stripe key, and says why in /readyz while staying ready', async () => {
    const p = phone();
    expect(await texts('hi', p, 'nokey')).toEqual(['echo: hi [turn 1]']);
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    const billing = ready.body.components.billing;
    expect(billing.info.subscriptions.nokey).toMatch(/^off: subscriptions\.secretKey and subscriptions\.webhookSecret are not set/);
    expect(billing.info.subscriptions.clinic).toBe('on');
    expect(gw.logs.some((l) => /billing: subscriptions are off for tenant "nokey"/.test(String(l.msg)))).toBe(true);
  });

  it('shows and overrides an entitlement (audited), with tenant isolation', async () => {
    const p = phone();
    await checkoutFor(p);
    const path = `/v1/tenants/clinic/billing/entitlements/${encodeURIComponent(p)}`;
    expect((await gw.request('GET', path)).status).toBe(401);
    expect((await gw.request('GET', path, { key: key('other') })).status).toBe(403);
    expect((await gw.request('GET', path, { key: OP })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/clinic/billing/entitlements', { key: key('clinic') })).body.entitlements.length).toBeGreaterThan(0);
    expect((await gw.request('PUT', `${path}/override`, { key: key('other'), body: { override: 'grant', reason: 'x' } })).status).toBe(403);
    expect((await gw.request('PUT', `${path}/override`, { key: key('clinic'), body: { override: 'grant' } })).status).toBe(400);
    const granted = await gw.request('PUT', `${path}/override`, { key: key('clinic'), body: { override: 'grant', reason: 'hardship waiver' } });
    expect(granted.body.entitlement.decision).toEqual({ entitled: true, reason: 'override' });
    expect(await texts('back again', p)).toEqual(['echo: back again [turn 4]']);
    const audit = await gw.gateway.db.pool.query(`SELECT actor, detail FROM parley_audit WHERE tenant_id = 'clinic' AND action = 'billing.override'`);
    expect(audit.rows).toEqual([expect.objectContaining({ detail: expect.objectContaining({ override: 'grant', reason: 'hardship waiver' }) })]);
    expect(JSON.stringify(audit.rows)).not.toContain(p);
  });

  it('exports a person and erases them, deleting their Stripe customer', async () => {
    const p = phone();
    const session = stripe.sessions.get(await checkoutFor(p))!;
    const exported = await gw.gateway.exportSubject({ tenantId: 'clinic', addresses: [p] });
    expect(JSON.stringify(exported)).toContain(session.customer);
    await gw.gateway.eraseSubject({ tenantId: 'clinic', addresses: [p] }, 'test');
    expect(stripe.deletedCustomers).toContain(session.customer);
    expect(stripe.customers.has(session.customer)).toBe(false);
    expect((await gw.request('GET', `/v1/tenants/clinic/billing/entitlements/${encodeURIComponent(p)}`, { key: key('clinic') })).status).toBe(404);
  });

  it('reports the ledger to Billing Meters once per bucket, through 429s, 500s and lost answers, and a retried run counts nothing twice', async () => {
    const usage = gw.gateway.usage;
    const hour = 3_600_000;
    const base = Math.floor(Date.now() / hour) * hour - 5 * hour;
    for (const [i, q] of [[0, 3], [0, 4], [1, 10], [2, 5]] as const) await usage.record('probe', { tenantId: 'clinic', kind: 'sms.segments.out', quantity: q, unit: 'segment', ref: `seg-${i}-${q}`, at: new Date(base + i * hour + 60_000) });
    await usage.record('probe', { tenantId: 'clinic', kind: 'model.tokens.input', quantity: 1200, unit: 'token', ref: 'tok-1', at: new Date(base + 60_000) });
    stripe.failNext(2, '429', '/v1/billing/meter_events');
    stripe.failNext(1, '500', '/v1/billing/meter_events');
    stripe.failNext(1, 'drop-after', '/v1/billing/meter_events');
    const first = await reporter.report(new Date(base + 4 * hour));
    expect(first.failed).toBe(0);
    const segments = () => stripe.meterEvents.filter((e) => e.event_name === 'parley_sms_segments' && e.payload.stripe_customer_id === 'cus_clinicplatform').sort((a, b) => a.timestamp - b.timestamp);
    expect(segments().map((e) => Number(e.payload.value))).toEqual([7, 10, 5]);
    expect(new Set(segments().map((e) => e.identifier)).size).toBe(3);
    // The same run again (a retried job), and a crash that lost the "sent" marks: nothing counted twice.
    await reporter.report(new Date(base + 4 * hour));
    await gw.gateway.db.pool.query(`UPDATE billing_meter_reports SET status = 'pending' WHERE tenant_id = 'clinic'`);
    await reporter.report(new Date(base + 4 * hour));
    expect(segments().map((e) => Number(e.payload.value))).toEqual([7, 10, 5]);
    expect(stripe.meterEvents.filter((e) => e.event_name === 'parley_ai_tokens').map((e) => Number(e.payload.value))).toEqual([1200]);
    // Stripe down past the retries: the job fails, the event waits, the next run sends it once.
    await usage.record('probe', { tenantId: 'clinic', kind: 'sms.segments.out', quantity: 2, unit: 'segment', ref: 'seg-late', at: new Date(base + 4 * hour + 60_000) });
    stripe.failNext(10, '500', '/v1/billing/meter_events');
    await expect(reporter.report(new Date(base + 5 * hour))).rejects.toThrow(/could not be sent/);
    stripe.clearFailures();
    expect(await reporter.report(new Date(base + 5 * hour))).toMatchObject({ failed: 0 });
    expect(segments().map((e) => Number(e.payload.value))).toEqual([7, 10, 5, 2]);
    expect(await gw.metrics()).toMatch(/parley_billing_meter_events_total\{tenant="clinic",meter="parley_sms_segments",result="failed"\} [1-9]/);
    expect(await gw.metrics()).toMatch(/parley_billing_stripe_retries_total\{call="billing.meter_events.create"\} [1-9]/);
    // Every attempt of one event carried the same idempotency key: its identifier.
    const keys = stripe.requests.filter((r) => r.path === '/v1/billing/meter_events').map((r) => [r.idempotencyKey, (r.body as { identifier: string }).identifier]);
    expect(keys.every(([k, id]) => k === id)).toBe(true);
    const reports = await gw.request('GET', '/v1/tenants/clinic/billing/meter-reports', { key: key('clinic') });
    expect(reports.body.reports.every((r: { status: string }) => r.status === 'sent')).toBe(true);
  });

  it("alerts when Stripe's meter summary differs from the ledger, and resolves when they agree", async () => {
    const hour = 3_600_000;
    const now = new Date(Math.floor(Date.now() / hour) * hour);
    await reporter.report(now).catch(() => undefined);
    const before = await reporter.reconcile(now);
    expect(before.filter((r) => r.tenantId === 'clinic' && r.meter === 'parley_sms_segments')).toEqual([expect.objectContaining({ result: 'match' })]);
    const lost = stripe.meterEvents.findIndex((e) => e.event_name === 'parley_sms_segments');
    const [removed] = stripe.meterEvents.splice(lost, 1);
    const after = await reporter.reconcile(now);
    expect(after.find((r) => r.meter === 'parley_sms_segments')).toMatchObject({ result: 'mismatch', ledger: 24, stripe: 24 - Number(removed!.payload.value) });
    const open = gw.gateway.alerts.openAlerts().filter((a) => a.key === 'billing.meter-mismatch.parley_sms_segments');
    expect(open).toEqual([expect.objectContaining({ tenantId: 'clinic', severity: 'warning' })]);
    stripe.meterEvents.push(removed!);
    await reporter.reconcile(now);
    expect(gw.gateway.alerts.openAlerts().some((a) => a.key === 'billing.meter-mismatch.parley_sms_segments')).toBe(false);
  });

  it('bills usage recorded after its bucket was reported as one adjustment, which a retried run never repeats, and reconciliation then matches', async () => {
    const hour = 3_600_000;
    const now = new Date(Math.floor(Date.now() / hour) * hour);
    await reporter.report(now).catch(() => undefined);
    const { rows } = await gw.gateway.db.pool.query(`SELECT bucket_start, identifier FROM billing_meter_reports WHERE tenant_id = 'clinic' AND meter = 'parley_sms_segments' AND status = 'sent' AND seq = 0 ORDER BY bucket_start DESC LIMIT 1`);
    const bucket = rows[0].bucket_start as Date;
    await gw.gateway.usage.record('probe', { tenantId: 'clinic', kind: 'sms.segments.out', quantity: 3, unit: 'segment', ref: 'seg-after-report-1', at: new Date(bucket.getTime() + 120_000) });
    await gw.gateway.usage.record('probe', { tenantId: 'clinic', kind: 'sms.segments.in', quantity: 1, unit: 'segment', ref: 'seg-after-report-2', at: new Date(bucket.getTime() + 180_000) });
    const segments = () => stripe.meterEvents.filter((e) => e.event_name === 'parley_sms_segments' && e.payload.stripe_customer_id === 'cus_clinicplatform');
    const clinicSegments = (results: Awaited<ReturnType<MeterReporter['reconcile']>>) => results.find((r) => r.tenantId === 'clinic' && r.meter === 'parley_sms_segments');
    expect(clinicSegments(await reporter.reconcile(now))).toMatchObject({ result: 'mismatch' });
    const before = segments().length;
    expect(await reporter.report(now)).toMatchObject({ adjusted: 1, failed: 0 });
    const added = segments().slice(before);
    expect(added).toEqual([expect.objectContaining({ identifier: `${rows[0].identifier}-adj1`, timestamp: bucket.getTime() / 1000, payload: expect.objectContaining({ value: '4' }) })]);
    // A retried run, and one that lost its "sent" marks: nothing more reaches Stripe's count.
    expect(await reporter.report(now)).toMatchObject({ adjusted: 0 });
    await gw.gateway.db.pool.query(`UPDATE billing_meter_reports SET status = 'pending' WHERE tenant_id = 'clinic' AND meter = 'parley_sms_segments'`);
    expect(await reporter.report(now)).toMatchObject({ adjusted: 0, failed: 0 });
    expect(segments().length).toBe(before + 1);
    expect(clinicSegments(await reporter.reconcile(now))).toMatchObject({ result: 'match' });
    const reports = await gw.request('GET', '/v1/tenants/clinic/billing/meter-reports', { key: key('clinic') });
    expect(reports.body.reports).toContainEqual(expect.objectContaining({ kind: 'adjustment', identifier: `${rows[0].identifier}-adj1`, value: 4, status: 'sent' }));
  });

  it("marks reports past Stripe's 35-day window expired instead of retrying them forever, alerts once, and lists them", async () => {
    const day = 86_400_000;
    const real = Date.now();
    const usage = gw.gateway.usage;
    // Usage of a tenant whose reporting never ran (Stripe unreachable, a key missing) until weeks later.
    await usage.record('probe', { tenantId: 'other', kind: 'model.tokens.output', quantity: 500, unit: 'token', ref: 'old-40d', at: new Date(real - 40 * day) });
    await usage.record('probe', { tenantId: 'other', kind: 'model.tokens.output', quantity: 70, unit: 'token', ref: 'old-36d', at: new Date(real - 36 * day) });
    const tokenEvents = () => stripe.requests.filter((r) => r.path === '/v1/billing/meter_events' && (r.body as { payload: { stripe_customer_id: string } }).payload.stripe_customer_id === 'cus_otherplatform');
    // The run's clock is two days behind Stripe's: the 36-day-old bucket looks sendable here, and Stripe
    // refuses it; the 40-day-old one is expired without asking.
    const run = await reporter.report(new Date(real - 2 * day));
    expect(run).toMatchObject({ expired: 2, failed: 0 });
    expect(tokenEvents().map((r) => (r.body as { payload: { value: string } }).payload.value)).toEqual(['70']);
    expect(stripe.meterEvents.filter((e) => e.payload.stripe_customer_id === 'cus_otherplatform')).toEqual([]);
    const alerts = () => gw.gateway.alerts.openAlerts().filter((a) => a.key === 'billing.meter-expired.parley_ai_tokens' && a.tenantId === 'other');
    expect(alerts()).toEqual([expect.objectContaining({ severity: 'warning', details: expect.objectContaining({ value: 570 }) })]);
    // Later runs neither send them again nor alert again.
    const asked = tokenEvents().length;
    expect(await reporter.report(new Date(real))).toMatchObject({ expired: 0, failed: 0 });
    expect(tokenEvents().length).toBe(asked);
    expect(gw.logs.filter((l) => (l.alert as { key?: string } | undefined)?.key === 'billing.meter-expired.parley_ai_tokens')).toHaveLength(1);
    const listed = await gw.request('GET', '/v1/tenants/other/billing/meter-reports?status=expired', { key: key('other') });
    expect(listed.status).toBe(200);
    expect(listed.body.reports).toEqual([
      expect.objectContaining({ meter: 'parley_ai_tokens', kind: 'bucket', value: 70, status: 'expired', lastError: 'refused by Stripe: timestamp older than 35 days' }),
      expect.objectContaining({ meter: 'parley_ai_tokens', kind: 'bucket', value: 500, status: 'expired', lastError: 'older than 35 days when sent' }),
    ]);
    expect((await gw.request('GET', '/v1/tenants/other/billing/meter-reports?status=lost', { key: key('other') })).status).toBe(400);
    expect((await gw.request('GET', '/v1/tenants/other/billing/meter-reports')).status).toBe(401);
    expect((await gw.request('GET', '/v1/tenants/other/billing/meter-reports', { key: key('clinic') })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/other/billing/meter-reports?status=expired', { key: OP })).body.reports).toHaveLength(2);
    expect(await gw.metrics()).toMatch(/parley_billing_meter_events_total\{tenant="other",meter="parley_ai_tokens",result="expired"\} 2\b/);
  });

  it('never writes a phone number to the log', () => {
    const log = JSON.stringify(gw.logs);
    for (let i = 1; i <= n; i++) expect(log).not.toContain(`555020${String(i).padStart(4, '0')}`);
  });
});

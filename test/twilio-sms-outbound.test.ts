/**
 * Behind a proxy at a public URL: signatures over that URL, replies through the REST API when the
 * pipeline is slow, retries and dead letters, status callbacks, split replies, MMS and WhatsApp.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, newSid, post, signedSmsRequest, signedWebhook, statusCallbackParams } from './fakes/twilio-webhook.js';
import { twilioTest } from './fixtures/twilio-stages.js';
import { CLINIC_KEY, CLINIC_NUMBER, OTHER_NUMBER, PATIENT, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

const PUBLIC = 'https://hooks.example.com/parley';
const METERED_NUMBER = '+15557654329';
const METERED_KEY = 'key-metered-0123456789';
let fake: FakeTwilio;
let gw: TestGateway;

beforeAll(async () => {
  fake = await startFakeTwilio();
  gw = await startTestGateway({
    config: twilioConfig(fake, {
      voice: false,
      server: { publicBaseUrl: PUBLIC },
      sms: { replyBudgetMs: 300, maxSegments: 2 },
      extraTenants: [
        {
          id: 'broken',
          pipeline: ['twilio-test.echo'],
          plugins: { 'twilio-sms': { accountSid: fake.accountSid, authToken: 'an-old-rotated-token', numbers: [OTHER_NUMBER] } },
        },
        {
          id: 'metered',
          apiKeys: [METERED_KEY],
          pipeline: ['twilio-test.echo'],
          plugins: { 'twilio-sms': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [METERED_NUMBER] } },
        },
      ],
    }),
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => {
  twilioTest.reset();
  fake.setDelay(0);
});

const params = (body: string, from = PATIENT) => inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid: fake.accountSid });
const sms = (body: string, from = PATIENT) => signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: PUBLIC, authToken: fake.authToken, params: params(body, from) });
const statusHook = (p: Record<string, string>, authToken = fake.authToken) => post(signedWebhook({ url: `${gw.url}/twilio/status`, signedUrl: `${PUBLIC}/twilio/status`, authToken, params: p }));

async function settle(id: string) {
  const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.id === id && !['pending', 'sending', 'retrying'].includes(i.status)));
  return items.find((i) => i.id === id)!;
}
const remind = (to: string, text: string, media?: { url: string; contentType?: string }[]) =>
  gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'twilio-sms', to, text, ...(media ? { media } : {}) });
const eventsOf = async (id: string) => (await gw.request('GET', `/v1/tenants/clinic/outbox/${id}`, { key: CLINIC_KEY })).body.events.map((e: { status: string }) => e.status);
const detailsOf = async (id: string) => (await gw.gateway.db.pool.query('SELECT details FROM parley_outbox WHERE id = $1', [id])).rows[0].details;

describe('signatures behind a proxy', () => {
  it('accepts a request signed for the configured public URL', async () => {
    const res = await post(sms('hello'));
    expect(res.status).toBe(200);
    expect(twimlMessages(res.text)).toHaveLength(1);
  });

  it('refuses a forged, a stale-URL and a missing signature with 403, logging and counting each reason', async () => {
    const forged = signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: PUBLIC, authToken: 'guessed-token', params: params('forged') });
    const staleUrl = signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: params('signed for the address behind the proxy') });
    const oldHost = signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: 'https://old-tunnel.example.net/parley', authToken: fake.authToken, params: params('old tunnel') });
    const missing = { ...sms('no signature'), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    const tampered = { ...sms('original'), body: new URLSearchParams({ ...params('changed in transit') }).toString() };
    for (const req of [forged, staleUrl, oldHost, missing, tampered]) {
      const res = await post(req);
      expect(res.status).toBe(403);
      expect(JSON.parse(res.text).error.code).toBe('PARLEY_FORBIDDEN');
    }
    expect(twilioTest.seen).toHaveLength(0);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/parley_twilio_signature_failures_total\{tenant="clinic",endpoint="sms",reason="mismatch"\} 4/);
    expect(metrics).toMatch(/parley_twilio_signature_failures_total\{tenant="clinic",endpoint="sms",reason="missing-signature"\} 1/);
    const refusals = gw.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('twilio webhook refused'));
    expect(refusals.map((l) => l.reason)).toEqual(['mismatch', 'mismatch', 'mismatch', 'missing-signature', 'mismatch']);
    expect(refusals[0]).toMatchObject({ tenant: 'clinic', endpoint: 'sms', url: `${PUBLIC}/twilio/sms` });
  });
});

describe('a pipeline slower than the reply budget', () => {
  it('gets an empty TwiML answer at once, and its reply goes out through the REST API via the outbox', async () => {
    const started = Date.now();
    const res = await post(sms('slow 1200', '+15550004001'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(res.text).toBe('<?xml version="1.0" encoding="UTF-8"?><Response/>');

    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === '+15550004001' && i.status === 'sent'));
    const item = items.find((i) => i.to === '+15550004001')!;
    expect(item).toMatchObject({ via: 'api', text: 'Sorry for the wait: here is your answer.' });
    const sent = fake.sent.find((m) => m.sid === item.providerMessageId)!;
    expect(sent).toMatchObject({ to: '+15550004001', from: CLINIC_NUMBER, body: item.text, statusCallback: `${PUBLIC}/twilio/status` });
    expect(await detailsOf(item.id)).toMatchObject({ twilioStatus: 'queued', parts: 1, segments: 1, encoding: 'GSM-7', costEstimate: 0.0083, currency: 'USD' });
  });
});

describe('the kernel usage ledger', () => {
  it('shows the segments and cost of an inbound SMS, its inline reply and a REST send, each once however often retried', async () => {
    const inbound = signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: PUBLIC, authToken: fake.authToken, params: inboundSmsParams({ from: PATIENT, to: METERED_NUMBER, body: 'hello', accountSid: fake.accountSid }) });
    expect(twimlMessages((await post(inbound)).text)).toHaveLength(1);
    expect((await post(inbound)).status).toBe(200);
    fake.failNext(1, '500');
    const queued = await gw.gateway.enqueueOutbound({ tenantId: 'metered', channel: 'twilio-sms', to: PATIENT, text: 'Your results are ready.' });
    await gw.waitForOutbox('metered', (all) => all.some((i) => i.id === queued.id && i.status === 'sent'));

    const { body } = await gw.request('GET', '/v1/tenants/metered/usage?kind=sms.segments.in', { key: METERED_KEY });
    expect(body.usage).toEqual([expect.objectContaining({ kind: 'sms.segments.in', unit: 'segment', quantity: 1, costUsd: 0.0083 })]);
    const out = await gw.request('GET', '/v1/tenants/metered/usage?kind=sms.segments.out', { key: METERED_KEY });
    // One inline reply and one REST send (tried twice), one segment each.
    expect(out.body.usage).toEqual([expect.objectContaining({ kind: 'sms.segments.out', unit: 'segment', quantity: 2, costUsd: 0.0166 })]);
  });
});

describe('REST sends', () => {
  it('retry 429, 500 and dropped connections with backoff, then succeed once', async () => {
    fake.failNext(1, '429');
    fake.failNext(1, '500');
    fake.failNext(1, 'drop');
    const item = await settle((await remind('+15550004002', 'Your results are ready.')).id);
    expect(item).toMatchObject({ status: 'sent', attempts: 4 });
    expect(fake.sent.filter((m) => m.to === '+15550004002')).toHaveLength(1);
    expect(await eventsOf(item.id)).toEqual(['pending', 'retrying', 'retrying', 'retrying', 'sent']);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/parley_twilio_errors_total\{tenant="clinic",code="20429"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_errors_total\{tenant="clinic",code="20500"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_sends_total\{tenant="clinic",status="retrying"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_sends_total\{tenant="clinic",status="queued"\} [1-9]/);
  });

  it("wait at least Twilio's Retry-After before trying again, although the outbox backoff is shorter", async () => {
    fake.failNext(1, '429-retry-after');
    const item = await settle((await remind('+15550004010', 'After the rate limit.')).id);
    expect(item).toMatchObject({ status: 'sent', attempts: 2 });
    const { rows } = await gw.gateway.db.pool.query(`SELECT status, at FROM parley_outbox_events WHERE outbox_id = $1 ORDER BY id`, [item.id]);
    const at = (status: string) => (rows.find((r) => r.status === status)!.at as Date).getTime();
    // Retry-After: 1 against a 50 ms backoff.
    expect(at('sent') - at('retrying')).toBeGreaterThanOrEqual(950);
  });

  it('turn a permanent 4xx into a dead letter with the Twilio error code, without retrying', async () => {
    fake.failNext(1, '21211');
    const item = await settle((await remind('+15550004003', 'hello')).id);
    expect(item).toMatchObject({ status: 'dead', errorCode: '21211', attempts: 1 });
    const dead = await gw.request('GET', '/v1/tenants/clinic/dead-letters', { key: CLINIC_KEY });
    expect(dead.body.deadLetters.find((d: { id: string }) => d.id === item.id)).toMatchObject({ errorCode: '21211' });
  });

  it('dead-letter a send that keeps failing after the configured attempts', async () => {
    fake.failNext(4, '500');
    const item = await settle((await remind('+15550004004', 'hello')).id);
    expect(item).toMatchObject({ status: 'dead', errorCode: '20500', attempts: 4 });
  });

  it('split a long message on word boundaries into messages within the segment budget', async () => {
    const text = Array.from({ length: 80 }, (_, i) => `w${i}`).join(' ');
    const item = await settle((await remind('+15550004005', text)).id);
    const parts = fake.sent.filter((m) => m.to === '+15550004005');
    expect(parts.length).toBe(2);
    expect(parts.every((p) => p.numSegments <= 2)).toBe(true);
    expect(parts.map((p) => p.body).join(' ')).toBe(text);
    expect(item.providerMessageId).toBe(parts[0]!.sid);
    expect(await detailsOf(item.id)).toMatchObject({ parts: 2, sids: parts.map((p) => p.sid), overflow: 'split' });
  });

  it('after a failure part-way through a split message, resend only the parts Twilio did not take', async () => {
    const text = Array.from({ length: 80 }, (_, i) => `p${i}`).join(' ');
    fake.setDelay(150);
    const queued = await remind('+15550004006', text);
    const deadline = Date.now() + 5000;
    while (fake.requests.filter((r) => r.form.get('To') === '+15550004006').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    fake.failNext(1, '500');
    const item = await settle(queued.id);
    expect(item).toMatchObject({ status: 'sent', attempts: 2 });
    const bodies = fake.sent.filter((m) => m.to === '+15550004006').map((m) => m.body);
    expect(bodies).toHaveLength(2);
    expect(bodies.join(' ')).toBe(text);
    expect(fake.requests.filter((r) => r.form.get('To') === '+15550004006').map((r) => r.form.get('Body'))).toEqual([bodies[0], bodies[1], bodies[1]]);
  });

  it('carry media as MMS, priced per message', async () => {
    const item = await settle((await remind('+15550004007', 'Your receipt', [{ url: 'https://cdn.example.com/receipt.pdf', contentType: 'application/pdf' }])).id);
    expect(fake.sent.find((m) => m.to === '+15550004007')!.mediaUrls).toEqual(['https://cdn.example.com/receipt.pdf']);
    expect(await detailsOf(item.id)).toMatchObject({ costEstimate: 0.022 });
  });

  it('go to WhatsApp recipients from the tenant whatsapp: number', async () => {
    await settle((await remind('whatsapp:+15550004008', 'Your order is ready')).id);
    expect(fake.sent.find((m) => m.to === 'whatsapp:+15550004008')!.from).toBe(`whatsapp:${CLINIC_NUMBER}`);
  });

  it('with credentials Twilio refuses are dead letters, raise an alert and show in /readyz without failing it', async () => {
    const item = await gw.gateway.enqueueOutbound({ tenantId: 'broken', channel: 'twilio-sms', to: '+15550004009', text: 'hi' });
    await gw.waitForOutbox('broken', (all) => all.some((i) => i.id === item.id && i.status === 'dead'));
    expect((await gw.outbox('broken'))[0]).toMatchObject({ errorCode: '20003' });
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.components['twilio-sms']).toMatchObject({ ok: false, info: { tenants: { clinic: 'on', broken: expect.stringMatching(/^credentials refused/) } } });
    expect(gw.gateway.alerts.openAlerts().some((a) => a.key === 'twilio-sms.credentials' && a.tenantId === 'broken')).toBe(true);
  });
});

describe('status callbacks', () => {
  it('move the outbox item forward and never back', async () => {
    const item = await settle((await remind('+15550005001', 'status please')).id);
    const sid = item.providerMessageId!;
    const cb = (status: string, errorCode?: string) => statusHook(statusCallbackParams({ messageSid: sid, status, from: CLINIC_NUMBER, to: '+15550005001', accountSid: fake.accountSid, ...(errorCode ? { errorCode } : {}) }));
    expect((await cb('sent')).status).toBe(204);
    expect((await cb('delivered')).status).toBe(204);
    await cb('sent');
    const [after] = (await gw.outbox('clinic')).filter((i) => i.id === item.id);
    expect(after!.status).toBe('delivered');
    expect(await eventsOf(item.id)).toEqual(['pending', 'sent', 'delivered']);
  });

  it('keep queued, accepted, scheduled and sending in the history without moving the item back', async () => {
    const item = await settle((await remind('+15550005005', 'interim statuses')).id);
    const cb = (status: string) => statusHook(statusCallbackParams({ messageSid: item.providerMessageId!, status, from: CLINIC_NUMBER, to: '+15550005005', accountSid: fake.accountSid }));
    for (const status of ['queued', 'accepted', 'scheduled', 'sending']) expect((await cb(status)).status).toBe(204);
    expect((await gw.outbox('clinic')).find((i) => i.id === item.id)!.status).toBe('sent');
    expect(await eventsOf(item.id)).toEqual(['pending', 'sent', 'queued', 'accepted', 'scheduled', 'sending']);
    await cb('delivered');
    expect((await gw.outbox('clinic')).find((i) => i.id === item.id)!.status).toBe('delivered');
  });

  it('record undelivered and failed with the Twilio ErrorCode', async () => {
    const item = await settle((await remind('+15550005002', 'will bounce')).id);
    await statusHook(statusCallbackParams({ messageSid: item.providerMessageId!, status: 'undelivered', errorCode: '30003', from: CLINIC_NUMBER, to: '+15550005002', accountSid: fake.accountSid }));
    const [after] = (await gw.outbox('clinic')).filter((i) => i.id === item.id);
    expect(after).toMatchObject({ status: 'undelivered', errorCode: '30003' });
    expect(await gw.metrics()).toMatch(/parley_twilio_delivery_status_total\{tenant="clinic",status="undelivered"\} [1-9]/);
  });

  it('for any part of a split message update that message', async () => {
    const text = Array.from({ length: 80 }, (_, i) => `q${i}`).join(' ');
    const item = await settle((await remind('+15550005003', text)).id);
    const second = fake.sent.filter((m) => m.to === '+15550005003')[1]!;
    await statusHook(statusCallbackParams({ messageSid: second.sid, status: 'delivered', from: CLINIC_NUMBER, to: '+15550005003', accountSid: fake.accountSid }));
    expect((await gw.outbox('clinic')).find((i) => i.id === item.id)!.status).toBe('delivered');
  });

  it('for a message Parley did not send are acknowledged and ignored', async () => {
    const res = await statusHook(statusCallbackParams({ messageSid: newSid(), status: 'delivered', from: CLINIC_NUMBER, to: PATIENT, accountSid: fake.accountSid }));
    expect(res.status).toBe(204);
  });

  it('with ErrorCode 21610 mark the recipient opted out', async () => {
    const item = await settle((await remind('+15550005004', 'x')).id);
    await statusHook(statusCallbackParams({ messageSid: item.providerMessageId!, status: 'failed', errorCode: '21610', from: CLINIC_NUMBER, to: '+15550005004', accountSid: fake.accountSid }));
    expect(await gw.gateway.consent.isOptedOut('clinic', '+15550005004')).toBe(true);
  });

  it('are refused unsigned, and malformed ones are a 400', async () => {
    const p = statusCallbackParams({ messageSid: newSid(), status: 'delivered', from: CLINIC_NUMBER, to: PATIENT, accountSid: fake.accountSid });
    expect((await statusHook(p, 'wrong-token')).status).toBe(403);
    expect((await statusHook({ ...p, MessageStatus: 'Delivered!' })).status).toBe(400);
    expect((await statusHook({ ...p, MessageSid: '' })).status).toBe(400);
    const { From: _f, AccountSid: _a, ...anonymous } = p;
    expect((await statusHook(anonymous)).status).toBe(404);
  });
});

describe('the numbers route', () => {
  it("reads the tenant's numbers from the Twilio account and compares their Messaging webhook with this gateway's", async () => {
    fake.provisionNumber(CLINIC_NUMBER, { smsUrl: `${PUBLIC}/twilio/sms`, friendlyName: 'Clinic front desk' });
    const clinic = await gw.request('GET', '/v1/tenants/clinic/twilio-sms/numbers', { key: CLINIC_KEY });
    expect(clinic.status).toBe(200);
    expect(clinic.body).toMatchObject({ channelOn: true, off: null });
    expect(clinic.body.numbers).toEqual([
      expect.objectContaining({ number: CLINIC_NUMBER, kind: 'sms', status: 'ok', smsUrl: `${PUBLIC}/twilio/sms`, expectedUrl: `${PUBLIC}/twilio/sms`, friendlyName: 'Clinic front desk' }),
      expect.objectContaining({ number: `whatsapp:${CLINIC_NUMBER}`, kind: 'whatsapp', status: 'unchecked' }),
    ]);
    const metered = await gw.request('GET', '/v1/tenants/metered/twilio-sms/numbers', { key: METERED_KEY });
    expect(metered.body.numbers).toEqual([expect.objectContaining({ number: METERED_NUMBER, status: 'not-in-account' })]);
    expect((await gw.request('GET', '/v1/tenants/metered/twilio-sms/numbers', { key: CLINIC_KEY })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/metered/twilio-sms/numbers')).status).toBe(401);
  });
});

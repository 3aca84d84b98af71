/**
 * What the channels bill, through cost-guard (embedded, and on PostgreSQL + Redis with
 * PARLEY_TEST_BACKEND=external): twilio-voice records a completed call's started minutes from its
 * signed status callback, whatsapp-cloud records Meta's billable conversations (CBP) and messages
 * (PMP) from status webhooks; each once, priced by the price table by direction, category and
 * country, and counted in the messaging budget and the costs API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { startFakeGraph, type FakeGraph } from './fakes/whatsapp-graph-api.js';
import { newSid, post, signedWebhook, voiceParams } from './fakes/twilio-webhook.js';
import { signMetaBody } from '../channels/whatsapp-cloud/signature.js';
import { WEBHOOK_PATH } from '../channels/whatsapp-cloud/index.js';
import { rateCardCountry } from '../channels/whatsapp-cloud/usage.js';
import { billableMinutes } from '../channels/twilio-voice/usage.js';

const OP = 'key-operator-channels-0123456789';
const KEY = 'key-clinic-channels-0123456789';
const CLINIC_NUMBER = '+15557650001';
const CALLER = '+15550007777';
const WA = { phoneNumberId: '106540352242999', display: '15550783999', secret: 'clinic-app-secret', verify: 'clinic-verify' };
const TOKEN = 'graph-token-channels';

let gw: TestGateway;
let twilio: FakeTwilio;
let graph: FakeGraph;
let seq = 0;

beforeAll(async () => {
  twilio = await startFakeTwilio();
  graph = await startFakeGraph({ accessToken: TOKEN });
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OP] },
      plugins: [
        'http',
        { name: 'twilio-sms', options: { apiBaseUrl: twilio.baseUrl } },
        { name: 'twilio-voice', options: { apiBaseUrl: twilio.baseUrl } },
        { name: 'whatsapp-cloud', options: { graphBaseUrl: graph.baseUrl } },
        {
          name: 'cost-guard',
          options: {
            prices: [
              { kind: 'voice.minutes.in', usd: 0.0085 },
              { kind: 'voice.minutes.out', usd: 0.014 },
              { kind: 'voice.minutes.out', country: 'GB', usd: 0.02 },
              { kind: 'whatsapp.conversations.marketing', usd: 0.025 },
              { kind: 'whatsapp.messages.utility', usd: 0.004 },
              { kind: 'whatsapp.messages.marketing', usd: 0.025 },
              { kind: 'whatsapp.messages.marketing', country: 'IN', usd: 0.0107 },
            ],
          },
        },
      ],
      tenants: [
        {
          id: 'clinic',
          apiKeys: [KEY],
          pipeline: ['cost-guard'],
          plugins: {
            http: {},
            'twilio-voice': { accountSid: twilio.accountSid, authToken: twilio.authToken, numbers: [CLINIC_NUMBER] },
            'whatsapp-cloud': { phoneNumberId: WA.phoneNumberId, displayNumber: `+${WA.display}`, accessToken: TOKEN, appSecret: WA.secret, verifyToken: WA.verify },
            'cost-guard': { budgets: { messaging: { daily: 0.1 } } },
          },
        },
      ],
    },
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await graph?.close();
  await twilio?.close();
});

/** A signed call status callback, as Twilio posts it to the status URL. */
function callStatus(callSid: string, status: string, extra: Record<string, string>) {
  const params = voiceParams({ callSid, from: CALLER, to: CLINIC_NUMBER, accountSid: twilio.accountSid, callStatus: status, extra });
  return signedWebhook({ url: `${gw.url}/twilio/voice/status`, authToken: twilio.authToken, params });
}

/** A Meta-signed webhook with one status of a message the clinic sent. */
async function waStatus(wamid: string, recipient: string, status: string, extra: Record<string, unknown>) {
  const body = {
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: WA.display, phone_number_id: WA.phoneNumberId }, statuses: [{ id: wamid, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: recipient, ...extra }] } }] }],
  };
  const raw = JSON.stringify(body);
  const r = await gw.request('POST', WEBHOOK_PATH, { raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, WA.secret) } });
  expect(r.status).toBe(200);
}

const usageRows = async (where: string, params: unknown[]) =>
  (await gw.gateway.db.pool.query(`SELECT kind, quantity::float8 AS quantity, unit, cost_usd::float8 AS cost, plugin, ref, attributes FROM parley_usage WHERE tenant_id = 'clinic' AND ${where} ORDER BY id`, params)).rows;

describe('twilio-voice call minutes', () => {
  it('bills each started minute: 61 seconds is 2 minutes, a call that never connected is none', () => {
    expect([0, 1, 60, 61, 3599].map(billableMinutes)).toEqual([0, 1, 1, 2, 60]);
  });

  it('records a completed inbound call once, even when its status callback is retried, priced per minute', async () => {
    const callSid = newSid('CA');
    const completed = callStatus(callSid, 'completed', { CallDuration: '61' });
    expect((await post(callStatus(callSid, 'in-progress', {}))).status).toBe(204);
    expect((await post(completed)).status).toBe(204);
    expect((await post(completed)).status).toBe(204);
    const rows = await usageRows('ref = $1', [callSid]);
    expect(rows).toEqual([
      { kind: 'voice.minutes.in', quantity: 2, unit: 'minute', cost: 0.017, plugin: 'twilio-voice', ref: callSid, attributes: { channel: 'twilio-voice', direction: 'inbound', seconds: 61, country: 'US' } },
    ]);
    expect(await gw.metrics()).toMatch(/parley_twilio_call_minutes_total\{tenant="clinic",direction="inbound"\} 2/);
  });

  it('records nothing for a call that was busy or not answered', async () => {
    const callSid = newSid('CA');
    expect((await post(callStatus(callSid, 'no-answer', { CallDuration: '0' }))).status).toBe(204);
    const busy = newSid('CA');
    expect((await post(callStatus(busy, 'busy', { CallDuration: '0' }))).status).toBe(204);
    expect(await usageRows('ref = ANY($1)', [[callSid, busy]])).toEqual([]);
  });

  it('prices an outbound call by the called number’s country', async () => {
    const callSid = newSid('CA');
    expect((await post(callStatus(callSid, 'completed', { CallDuration: '125', Direction: 'outbound-api', ToCountry: 'GB' }))).status).toBe(204);
    const [row] = await usageRows('ref = $1', [callSid]);
    expect(row).toMatchObject({ kind: 'voice.minutes.out', quantity: 3, cost: 0.06, attributes: { direction: 'outbound', country: 'GB' } });
  });
});

describe('whatsapp-cloud billable conversations and messages', () => {
  const wamid = () => `wamid.OUT${++seq}${Date.now()}`;

  it('records a CBP conversation once across its messages, their sent/delivered/read statuses and Meta retrying', async () => {
    const conversation = { id: `conv-${Date.now()}`, origin: { type: 'marketing' }, expiration_timestamp: String(Math.floor(Date.now() / 1000) + 86_400) };
    const pricing = { billable: true, pricing_model: 'CBP', category: 'marketing' };
    const [a, b] = [wamid(), wamid()];
    for (const id of [a, b]) for (const status of ['sent', 'delivered', 'read', 'read']) await waStatus(id, '16505550101', status, { pricing, conversation });
    const rows = await usageRows(`kind LIKE 'whatsapp.%' AND ref = $1`, [`conversation:${conversation.id}`]);
    expect(rows).toEqual([
      { kind: 'whatsapp.conversations.marketing', quantity: 1, unit: 'conversation', cost: 0.025, plugin: 'whatsapp-cloud', ref: `conversation:${conversation.id}`, attributes: { channel: 'whatsapp-cloud', category: 'marketing', pricingModel: 'CBP', country: 'US', metaConversation: conversation.id, origin: 'marketing' } },
    ]);
  });

  it('records PMP per billable message, priced by category and the recipient’s country; free messages record nothing', async () => {
    const [india, us, free] = [wamid(), wamid(), wamid()];
    for (const status of ['sent', 'delivered', 'read']) {
      await waStatus(india, '919812345678', status, { pricing: { billable: true, pricing_model: 'PMP', category: 'marketing', type: 'regular' } });
      await waStatus(us, '16505550102', status, { pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' } });
      await waStatus(free, '16505550102', status, { pricing: { billable: false, pricing_model: 'PMP', category: 'service', type: 'free_customer_service' } });
    }
    const rows = await usageRows(`ref = ANY($1)`, [[india, us, free]]);
    expect(rows.map((r) => [r.ref, r.kind, r.unit, r.cost, r.attributes.country])).toEqual([
      [india, 'whatsapp.messages.marketing', 'message', 0.0107, 'IN'],
      [us, 'whatsapp.messages.utility', 'message', 0.004, 'US'],
    ]);
    expect(await gw.metrics()).toMatch(/parley_whatsapp_cloud_billed_total\{tenant="clinic",unit="message",category="marketing"\} 1/);
  });

  it('knows the rate-card markets by calling code, and leaves regionally priced numbers without a country', () => {
    expect(['447700900123', '919812345678', '5511987654321', '971501234567', '16505550101', '79161234567', '77011234567', '35312345678'].map(rateCardCountry)).toEqual(['GB', 'IN', 'BR', 'AE', 'US', 'RU', undefined, undefined]);
  });
});

describe('channel spend in cost-guard', () => {
  it('counts minutes and WhatsApp charges in the messaging budget and in the costs API by channel', async () => {
    const ledger = await usageRows(`kind ~ '^(voice|whatsapp)\\.'`, []);
    const sum = (channel: string) => ledger.filter((r) => r.attributes.channel === channel).reduce((n, r) => n + r.cost, 0);
    const costs = (await gw.request('GET', '/v1/tenants/clinic/costs?period=day', { key: KEY })).body;
    expect(costs.byChannel['twilio-voice']).toBeCloseTo(sum('twilio-voice'), 8);
    expect(costs.byChannel['whatsapp-cloud']).toBeCloseTo(sum('whatsapp-cloud'), 8);
    expect(sum('twilio-voice')).toBeCloseTo(0.017 + 0.06, 8);
    expect(sum('whatsapp-cloud')).toBeCloseTo(0.025 + 0.0107 + 0.004, 8);
    expect(costs.byCategory.messaging.spent).toBeCloseTo(sum('twilio-voice') + sum('whatsapp-cloud'), 8);
    // $0.1167 of a $0.10 daily messaging budget: spent, so paid sends stop
    expect(costs.allowed).toBe(false);
    const budgets = (await gw.request('GET', '/v1/tenants/clinic/budgets', { key: KEY })).body.budgets;
    expect(budgets).toContainEqual(expect.objectContaining({ category: 'messaging', period: 'day', limitUsd: 0.1, spentUsd: 0.1167 }));
  });
});

// Last: its charge would change the spend the budget test above adds up.
describe('whatsapp-cloud rows and Parley conversations', () => {
  it("names Parley's conversation on the row of a message Parley sent", async () => {
    const to = '+16505550177';
    await gw.gateway.receive({ channel: 'whatsapp-cloud', tenantId: 'clinic', from: to, to: `+${WA.display}`, text: 'hello', providerMessageId: `wamid.IN${Date.now()}` });
    const conversationId = (await gw.gateway.db.pool.query(`SELECT id FROM parley_conversations WHERE tenant_id = 'clinic' AND participant = $1`, [to])).rows[0]?.id as string;
    const sent = await gw.gateway.services().enqueueOutbound({ tenantId: 'clinic', channel: 'whatsapp-cloud', to, text: 'Your appointment is confirmed.', conversationId, options: { template: { name: 'appointment_confirmed', language: 'en_US' } } });
    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.id === sent.id && i.providerMessageId));
    const item = items.find((i) => i.id === sent.id)!;
    await waStatus(item.providerMessageId!, '16505550177', 'sent', { pricing: { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' } });
    const [row] = await usageRows('ref = $1', [item.providerMessageId]);
    expect(item.conversationId).toBeTruthy();
    expect(row.attributes).toMatchObject({ category: 'utility', conversation: item.conversationId });
  });
});

// Last too: the transferred leg's minutes count in the messaging spend.
describe('twilio-voice transfers', () => {
  it('records the leg <Dial> opened to a person as its own outbound call, once', async () => {
    const callSid = newSid('CA');
    const dialSid = newSid('CA');
    const params = voiceParams({ callSid, from: CALLER, to: CLINIC_NUMBER, accountSid: twilio.accountSid, callStatus: 'in-progress', extra: { DialCallStatus: 'completed', DialCallSid: dialSid, DialCallDuration: '185' } });
    const action = () => signedWebhook({ url: `${gw.url}/twilio/voice/dial?turn=2`, authToken: twilio.authToken, params });
    expect((await post(action())).status).toBe(200);
    expect((await post(action())).status).toBe(200);
    const rows = await usageRows('ref = $1', [dialSid]);
    expect(rows).toEqual([expect.objectContaining({ kind: 'voice.minutes.out', quantity: 4, unit: 'minute', attributes: expect.objectContaining({ direction: 'outbound', seconds: 185, leg: 'transfer' }) })]);
  });
});

/**
 * medical-answers over the phone channels: a signed Twilio SMS webhook gets a cited answer in its
 * TwiML within two segments, and a Meta-signed WhatsApp Cloud webhook gets a cited answer through the
 * (fake) Graph API, with WhatsApp's longer budget. Follow-ups work on both, per sender.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { medquadSlice } from './fixtures/medquad-slice.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { startFakeGraph, type FakeGraph } from './fakes/whatsapp-graph-api.js';
import { inboundSmsParams, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';
import { countSegments } from '../channels/twilio-sms/segments.js';
import { signMetaBody } from '../channels/whatsapp-cloud/signature.js';
import { WEBHOOK_PATH } from '../channels/whatsapp-cloud/index.js';
import { linkCode } from '../plugins/medical-answers/engine/store.js';

const IDS = new Set(['mplus-0000001', 'mplus-0000266', 'mplus-0000369', 'mplus-0000173', 'mplus-0000812', 'mplus-0000065', 'mplus-0000471', 'cdc-0000053']);
const NUMBER = '+15557650001';
const WA = { phoneNumberId: '106540352242999', display: '15557650002', secret: 'medical-app-secret', verify: 'medical-verify' };
const TOKEN = 'graph-medical-token';
/** Where Twilio reaches the gateway, and where its short source links point. */
const PUBLIC = 'https://clinic.example.org';

let gw: TestGateway;
let twilio: FakeTwilio;
let graph: FakeGraph;

beforeAll(async () => {
  const corpus = medquadSlice(IDS, 'parley-medical-channels-');
  twilio = await startFakeTwilio();
  graph = await startFakeGraph({ accessToken: TOKEN });
  gw = await startTestGateway({
    config: {
      server: { publicBaseUrl: PUBLIC },
      outbox: { attempts: 4, backoffMs: 20 },
      plugins: [
        'http',
        { name: 'twilio-sms', options: { apiBaseUrl: twilio.baseUrl } },
        { name: 'whatsapp-cloud', options: { graphBaseUrl: graph.baseUrl } },
        'crisis-guard',
        'medical-answers',
      ],
      tenants: [
        {
          id: 'clinic',
          apiKeys: ['key-medical-channels-0123456789'],
          pipeline: ['crisis-guard', 'medical-answers'],
          plugins: {
            http: {},
            'twilio-sms': { accountSid: twilio.accountSid, authToken: twilio.authToken, numbers: [NUMBER], consent: { programName: 'Clinic', contact: 'call 555-0100' } },
            'whatsapp-cloud': { phoneNumberId: WA.phoneNumberId, displayNumber: `+${WA.display}`, accessToken: TOKEN, appSecret: WA.secret, verifyToken: WA.verify },
            'crisis-guard': {},
            // Seven documents make a small library, whose confidences run lower than the full corpus's:
            // this test is about the channels, not the calibration (eval/README.md).
            'medical-answers': { corpus, minConfidence: 0.05, passBelow: 0.01 },
          },
        },
      ],
    },
  });
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', '/v1/tenants/clinic/medical-answers', { key: 'key-medical-channels-0123456789' })).body;
    if (state.chunks > 0 && !state.ingest) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await twilio?.close();
  await graph?.close();
});

const sms = async (from: string, body: string) =>
  twimlMessages((await post(signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: PUBLIC, authToken: twilio.authToken, params: inboundSmsParams({ from, to: NUMBER, body, accountSid: twilio.accountSid }) }))).text).map((m) => m.body);

let seq = 0;
async function whatsapp(from: string, text: string): Promise<string> {
  seq += 1;
  const raw = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: {
      messaging_product: 'whatsapp',
      metadata: { display_phone_number: WA.display, phone_number_id: WA.phoneNumberId },
      contacts: [{ profile: { name: 'Ana' }, wa_id: from }],
      messages: [{ from, id: `wamid.MED${seq}${Date.now()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
    } }] }],
  });
  const before = graph.sent.filter((s) => s.body['to'] === from).length;
  const res = await gw.request('POST', WEBHOOK_PATH, { raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, WA.secret) } });
  expect(res.status).toBe(200);
  for (let i = 0; i < 200; i++) {
    const sent = graph.sent.filter((s) => s.body['to'] === from);
    if (sent.length > before) return String((sent.at(-1)!.body['text'] as { body: string }).body);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no WhatsApp reply');
}

describe('medical answers over Twilio SMS', () => {
  it('answers in the TwiML with the source, within two segments', async () => {
    const [answer, ...rest] = await sms('+15550402001', 'whats a normal a1c number?');
    expect(rest).toEqual([]);
    // A short link to the page where the gateway has a public address: 38 characters, not 44.
    expect(answer).toContain(`Source: A1C ${PUBLIC}/l/${linkCode('clinic', 'mplus-0000001')}`);
    expect(answer).not.toContain('nlm.nih.gov');
    expect(answer!.length).toBeLessThanOrEqual(306);
  });

  it("opens the page from the short link, counted for the tenant; an unknown code is a 404 that says so", async () => {
    const res = await fetch(`${gw.url}/l/${linkCode('clinic', 'mplus-0000001')}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://www.nlm.nih.gov/medlineplus/a1c.html');
    expect(await gw.metrics()).toMatch(/parley_rag_source_link_opens_total\{tenant="clinic"\} 1/);
    for (const code of [linkCode('clinic', 'mplus-9999999'), linkCode('other', 'mplus-0000001'), 'short', '../../v1', 'a'.repeat(300)]) {
      const miss = await fetch(`${gw.url}/l/${encodeURIComponent(code)}`, { redirect: 'manual' });
      expect(miss.status, code).toBe(404);
      expect(((await miss.json()) as { error: unknown }).error, code).toMatchObject({ code: 'PARLEY_NOT_FOUND', message: expect.stringMatching(/No page has this link/) });
    }
  });

  it('keeps to GSM-7 characters, so two segments stay two: the page\'s "130°F" is sent as "130 F"', async () => {
    const [answer] = await sms('+15550402003', 'how do you treat body lice? how hot should the laundry be');
    expect(answer).toMatch(/Source: Parasites - Lice - Body Lice/);
    expect(answer).toContain('130 F');
    expect(countSegments(answer!)).toMatchObject({ encoding: 'GSM-7' });
    expect(countSegments(answer!).segments).toBeLessThanOrEqual(2);
  });

  it('follows up per sender: "is it contagious?" after shingles', async () => {
    await sms('+15550402002', 'my dad has shingles');
    const [answer] = await sms('+15550402002', 'is it contagious?');
    expect(answer).toMatch(/Source: Shingles/);
  });
});

describe('medical answers over WhatsApp Cloud', () => {
  it('answers through the Graph API with the source and the longer WhatsApp budget', async () => {
    const text = await whatsapp('16505550301', 'what are the symptoms of the flu?');
    expect(text).toMatch(/Source: Flu https:\/\/www\.nlm\.nih\.gov\/medlineplus\/flu\.html/);
    // WhatsApp has room, and its preview shows the page itself: the page's own link (shortLinks "auto").
    expect(text.length).toBeLessThanOrEqual(900);
  });

  it('gives a person in danger the crisis numbers, never a search result', async () => {
    const text = await whatsapp('16505550302', 'I want to kill myself');
    expect(text).toContain('988');
    expect(text).not.toContain('Source:');
  });
});

/** Carrier consent over Twilio SMS: STOP/START/HELP, their languages, and enforcement in the outbox. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, newSid, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { twilioTest } from './fixtures/twilio-stages.js';
import { CLINIC_KEY, CLINIC_NUMBER, OTHER_NUMBER, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

const CLINICA_KEY = 'key-clinica-0123456789';
let fake: FakeTwilio;
let gw: TestGateway;
let nextNumber = 0;
/** Every test texts from its own number, so consent state never leaks between tests. */
const freshNumber = () => `+1555300${String(nextNumber++).padStart(4, '0')}`;

beforeAll(async () => {
  fake = await startFakeTwilio();
  gw = await startTestGateway({
    config: twilioConfig(fake, {
      voice: false,
      extraTenants: [
        {
          id: 'clinica',
          name: 'Clínica del Puerto',
          locale: 'es-US',
          apiKeys: [CLINICA_KEY],
          pipeline: ['twilio-test.echo'],
          plugins: {
            'twilio-sms': {
              accountSid: fake.accountSid,
              authToken: fake.authToken,
              numbers: [OTHER_NUMBER],
              consent: {
                contact: 'llame al 555-0100',
                languages: {
                  es: {
                    optOut: ['PARAR', 'BAJA'],
                    optIn: ['ALTA'],
                    help: ['AYUDA'],
                    optOutConfirmation: '{program}: Ya no recibirá mensajes. Responda ALTA para volver.',
                    optInConfirmation: '{program}: Suscrito de nuevo. Responda PARAR para salir.',
                    helpText: '{program}: Para ayuda, {contact}. Responda PARAR para salir.',
                  },
                },
              },
            },
          },
        },
      ],
    }),
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => twilioTest.reset());

async function text(from: string, body: string, o: { to?: string; optOutType?: string } = {}) {
  const req = signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: inboundSmsParams({ from, to: o.to ?? CLINIC_NUMBER, body, accountSid: fake.accountSid, ...(o.optOutType ? { optOutType: o.optOutType } : {}) }) });
  const res = await post(req);
  expect(res.status).toBe(200);
  return twimlMessages(res.text).map((m) => m.body);
}

const consentOf = async (address: string, tenant = 'clinic') =>
  (await gw.request('GET', `/v1/tenants/${tenant}/consent/${encodeURIComponent(address)}`, { key: tenant === 'clinic' ? CLINIC_KEY : CLINICA_KEY })).body;

/** A reminder-style send that is not a reply: the kind of message a campaign or scheduler queues. */
async function remind(to: string, tenantId = 'clinic') {
  const item = await gw.gateway.enqueueOutbound({ tenantId, channel: 'twilio-sms', to, text: 'Reminder: your appointment is tomorrow at 9am.' });
  const items = await gw.waitForOutbox(tenantId, (all) => all.some((i) => i.id === item.id && !['pending', 'sending', 'retrying'].includes(i.status)));
  return items.find((i) => i.id === item.id)!;
}

describe('STOP', () => {
  it('opts the number out and confirms once, and the message never enters the pipeline', async () => {
    const from = freshNumber();
    const replies = await text(from, 'STOP');
    expect(replies).toEqual(['Harbour Clinic: You are unsubscribed and will receive no more messages. Reply START to resubscribe.']);
    expect(twilioTest.seen).toHaveLength(0);
    expect(await consentOf(from)).toMatchObject({ status: 'opted-out', history: [{ status: 'opted-out', source: 'keyword', channel: 'twilio-sms' }] });
    expect(await text(from, 'stop')).toEqual([]);
    const settled = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === from && i.status !== 'sending'));
    const [confirmation] = settled.filter((i) => i.to === from);
    expect(confirmation).toMatchObject({ status: 'sent', via: 'inline', options: { consentNotice: true, consentKeyword: 'opt-out' } });
  });

  it('runs before the tenant pipeline, which does not name it', async () => {
    const from = freshNumber();
    await text(from, 'STOP');
    const { rows } = await gw.gateway.db.pool.query(`SELECT stages FROM parley_inbound WHERE tenant_id = 'clinic' AND from_address = $1`, [from]);
    expect(rows[0].stages.map((s: { stage: string; outcome: string }) => [s.stage, s.outcome])).toEqual([['twilio-sms.consent', 'stopped']]);
  });

  it('confirms through the REST API when the reply does not go inline, although the number is opted out by then', async () => {
    const from = freshNumber();
    // What a webhook that missed its reply budget leads to: the stages run after the answer, replies go through the outbox.
    const draft = { channel: 'twilio-sms', tenantId: 'clinic', from, to: CLINIC_NUMBER, text: 'STOP', providerMessageId: newSid(), attributes: { consentKeyword: { kind: 'opt-out', language: 'en', source: 'keyword' } } };
    expect((await gw.gateway.receive(draft, { until: 'recorded' })).status).toBe('deferred');
    const expected = 'Harbour Clinic: You are unsubscribed and will receive no more messages. Reply START to resubscribe.';
    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === from && i.status === 'sent'));
    expect(items.find((i) => i.to === from)).toMatchObject({ via: 'api', text: expected, options: { consentNotice: true } });
    expect(fake.sent.filter((m) => m.to === from).map((m) => m.body)).toEqual([expected]);
    expect(twilioTest.seen).toHaveLength(0);
    expect((await consentOf(from)).status).toBe('opted-out');
    expect((await remind(from)).status).toBe('blocked');
  });

  it.each(['STOP', 'stop', '  Stop!! ', 'STOPALL', 'unsubscribe', 'Cancel.', 'END', 'quit', 'OPTOUT', 'Revoke', '"stop"', 'please stop texting me'])('%j opts out', async (body) => {
    const from = freshNumber();
    expect((await text(from, body))[0]).toMatch(/unsubscribed/);
    expect((await consentOf(from)).status).toBe('opted-out');
    expect(twilioTest.seen).toHaveLength(0);
  });

  it('blocks a later reminder-style send in the outbox, so it never reaches Twilio', async () => {
    const from = freshNumber();
    await text(from, 'STOP');
    const item = await remind(from);
    expect(item).toMatchObject({ status: 'blocked', errorCode: 'opted-out' });
    expect(fake.sent.filter((m) => m.to === from)).toHaveLength(0);
  });

  it('still lets the business see what an opted-out person writes, but sends them no reply', async () => {
    const from = freshNumber();
    await text(from, 'STOP');
    expect(await text(from, 'I need to move my appointment')).toEqual([]);
    await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === from && i.text.startsWith('echo:') && i.status === 'blocked'));
    expect(twilioTest.texts()).toEqual(['I need to move my appointment']);
    expect(fake.sent.filter((m) => m.to === from)).toHaveLength(0);
  });

  it('sends an opted-out person no reply on a retried webhook either', async () => {
    const from = freshNumber();
    await text(from, 'STOP');
    const req = signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: inboundSmsParams({ from, to: CLINIC_NUMBER, body: 'are you there?', accountSid: fake.accountSid }) });
    expect(twimlMessages((await post(req)).text)).toEqual([]);
    expect(twimlMessages((await post(req)).text)).toEqual([]);
    expect(twilioTest.texts()).toEqual(['are you there?']);
  });

  it('through WhatsApp opts out the person, whose plain number is blocked too', async () => {
    const from = freshNumber();
    await text(`whatsapp:${from}`, 'STOP', { to: `whatsapp:${CLINIC_NUMBER}` });
    expect((await consentOf(from)).status).toBe('opted-out');
    expect((await remind(from)).status).toBe('blocked');
  });

  it('is recorded without a second confirmation when Twilio Advanced Opt-Out already answered (OptOutType)', async () => {
    const from = freshNumber();
    expect(await text(from, 'stop please', { optOutType: 'STOP' })).toEqual([]);
    expect(await consentOf(from)).toMatchObject({ status: 'opted-out', history: [{ source: 'OptOutType' }] });
  });
});

describe('START', () => {
  it('restores a number that opted out, with a confirmation, and sends get through again', async () => {
    const from = freshNumber();
    await text(from, 'STOP');
    const replies = await text(from, 'start');
    expect(replies).toEqual(['Harbour Clinic: You are subscribed again. Msg frequency varies. Msg & data rates may apply. Reply HELP for help, STOP to opt out.']);
    expect((await consentOf(from)).history.map((h: { status: string }) => h.status)).toEqual(['opted-out', 'opted-in']);
    const item = await remind(from);
    expect(item.status).toBe('sent');
    expect(fake.sent.filter((m) => m.to === from).map((m) => m.body)).toEqual(['Reminder: your appointment is tomorrow at 9am.']);
    expect(twilioTest.seen).toHaveLength(0);
  });

  it.each(['YES', 'UNSTOP', 'optin'])('%s restores an opted-out number', async (body) => {
    const from = freshNumber();
    await text(from, 'STOP');
    expect((await text(from, body))[0]).toMatch(/subscribed again/);
    expect((await consentOf(from)).status).toBe('opted-in');
  });

  it('leaves "YES" from a subscribed number to the pipeline: it is an answer, not a consent change', async () => {
    const from = freshNumber();
    expect(await text(from, 'Yes')).toEqual(['echo: Yes [turn 1]']);
    expect(twilioTest.texts()).toEqual(['Yes']);
    expect((await consentOf(from)).history).toEqual([]);
  });
});

describe('HELP', () => {
  it.each(['HELP', 'info', 'Help?'])('%j answers with the tenant help text naming the program, contact, frequency, rates and STOP', async (body) => {
    const replies = await text(freshNumber(), body);
    expect(replies).toEqual(['Harbour Clinic: For help, call 555-0100. Msg frequency varies. Msg & data rates may apply. Reply STOP to opt out.']);
    expect(twilioTest.seen).toHaveLength(0);
  });

  it('is answered even for a number that opted out', async () => {
    const from = freshNumber();
    await text(from, 'STOP');
    expect((await text(from, 'HELP'))[0]).toMatch(/For help, call 555-0100/);
  });
});

describe('keywords and texts per tenant and language', () => {
  it('uses the tenant language keywords and texts', async () => {
    const from = freshNumber();
    expect(await text(from, 'parar', { to: OTHER_NUMBER })).toEqual(['Clínica del Puerto: Ya no recibirá mensajes. Responda ALTA para volver.']);
    expect((await consentOf(from, 'clinica')).status).toBe('opted-out');
    expect(await text(from, 'Alta', { to: OTHER_NUMBER })).toEqual(['Clínica del Puerto: Suscrito de nuevo. Responda PARAR para salir.']);
    expect(await text(from, 'AYUDA', { to: OTHER_NUMBER })).toEqual(['Clínica del Puerto: Para ayuda, llame al 555-0100. Responda PARAR para salir.']);
  });

  it('keeps the carrier English keywords working in every tenant, answering in English', async () => {
    const from = freshNumber();
    expect((await text(from, 'STOP', { to: OTHER_NUMBER }))[0]).toMatch(/^Clínica del Puerto: You are unsubscribed/);
  });

  it('keeps consent per tenant: opting out of one business leaves the other', async () => {
    const from = freshNumber();
    await text(from, 'STOP', { to: OTHER_NUMBER });
    expect((await consentOf(from)).status).toBe('opted-in');
    expect((await remind(from)).status).toBe('sent');
  });
});

describe('Twilio error 21610', () => {
  it('marks the number opted out and blocks the send with the code, without a dead letter', async () => {
    const to = freshNumber();
    fake.failNext(1, '21610');
    const item = await remind(to);
    expect(item).toMatchObject({ status: 'blocked', errorCode: '21610', attempts: 1 });
    const dead = await gw.request('GET', '/v1/tenants/clinic/dead-letters', { key: CLINIC_KEY });
    expect(dead.body.deadLetters.some((d: { id: string }) => d.id === item.id)).toBe(false);
    expect(await consentOf(to)).toMatchObject({ status: 'opted-out', history: [{ source: 'twilio-21610' }] });
    expect((await remind(to)).status).toBe('blocked');
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/parley_twilio_errors_total\{tenant="clinic",code="21610"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_sends_total\{tenant="clinic",status="opted-out"\} [1-9]/);
  });
});

/** The `twilio-sms.opt-out-notice` reply stage: the first message a number gets says how to opt out. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { CLINIC_NUMBER, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

let fake: FakeTwilio;
let gw: TestGateway;
let nextNumber = 0;
const freshNumber = () => `+1555400${String(nextNumber++).padStart(4, '0')}`;

beforeAll(async () => {
  fake = await startFakeTwilio();
  const config = twilioConfig(fake, { voice: false, sms: { consent: { programName: 'Harbour Clinic', contact: 'call 555-0100', firstMessageNotice: 'Reply STOP to opt out.' } } });
  (config.tenants[0] as Record<string, unknown>).replyPipeline = ['twilio-sms.opt-out-notice'];
  gw = await startTestGateway({ config });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});

const sms = (from: string, body: string) => post(signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid: fake.accountSid }) }));

describe('the opt-out notice', () => {
  it('is added to the first reply a number gets, and not to the next ones', async () => {
    const from = freshNumber();
    const first = twimlMessages((await sms(from, 'hours?')).text).map((m) => m.body);
    expect(first).toEqual(['echo: hours? [turn 1]\nReply STOP to opt out.']);
    await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === from && i.status === 'sent'));
    const second = twimlMessages((await sms(from, 'and on Sunday?')).text).map((m) => m.body);
    expect(second).toEqual(['echo: and on Sunday? [turn 2]']);
  });

  it('is added to the first message sent outside a conversation too', async () => {
    const to = freshNumber();
    await gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'twilio-sms', to, from: CLINIC_NUMBER, text: 'Your test results are ready.' });
    await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === to && i.status !== 'pending' && i.status !== 'sending'));
    expect(fake.sent.filter((m) => m.to === to).map((m) => m.body)).toEqual(['Your test results are ready.\nReply STOP to opt out.']);
  });

  it('leaves the STOP confirmation as carriers require it', async () => {
    const from = freshNumber();
    const stop = twimlMessages((await sms(from, 'STOP')).text).map((m) => m.body);
    expect(stop).toHaveLength(1);
    expect(stop[0]).not.toContain('Reply STOP to opt out.');
  });
});

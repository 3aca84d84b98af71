/**
 * crisis-guard over Twilio SMS, the channel where consent is enforced: a sender who texted STOP and
 * then writes that they are in danger still gets the crisis text in the TwiML answer, and later
 * ordinary texts of that opted-out number are answered by nobody.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { CLINIC_NUMBER, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

let fake: FakeTwilio;
let gw: TestGateway;

beforeAll(async () => {
  fake = await startFakeTwilio();
  const config = twilioConfig(fake, { voice: false, pipeline: ['crisis-guard', 'twilio-test.echo'] });
  config.plugins.push('crisis-guard' as never);
  (config.tenants[0]!.plugins as Record<string, unknown>)['crisis-guard'] = {};
  gw = await startTestGateway({ config });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});

const sms = async (from: string, body: string) =>
  twimlMessages((await post(signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid: fake.accountSid }) }))).text).map((m) => m.body);

describe('crisis-guard over Twilio SMS', () => {
  it('answers an opted-out sender in danger with the crisis numbers, and hands the conversation to a person', async () => {
    const from = '+15556660001';
    expect((await sms(from, 'STOP')).join(' ')).toMatch(/unsubscribed|opted out/i);
    const answer = await sms(from, 'I want to end my life tonight');
    expect(answer.some((t) => t.includes('988') && t.includes('911'))).toBe(true);
    // The pipeline's ordinary answer to an opted-out number stays blocked: only the crisis text goes.
    expect(answer.filter((t) => !t.includes('988'))).toEqual([]);
    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === from && i.text.includes('988') && i.status === 'sent'));
    expect(items.filter((i) => i.to === from && i.status === 'blocked').length).toBeGreaterThan(0);
    const { rows } = await gw.gateway.db.pool.query(`SELECT c.handoff FROM parley_conversations c WHERE c.tenant_id = 'clinic' AND c.participant = $1`, [from]);
    expect(rows).toEqual([{ handoff: 'human' }]);
  });

  it('lets an ordinary text through to the later stages, unchanged', async () => {
    const answer = await sms('+15556660002', 'what are your opening hours?');
    expect(answer).toEqual(['echo: what are your opening hours? [turn 1]']);
  });
});

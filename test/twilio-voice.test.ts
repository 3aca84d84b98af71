/** `twilio-voice`: a call is one conversation with the pipeline, spoken with <Say>, driven by <Gather>. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { startFakeTwilioVoice, type FakeTwilioVoice } from './fakes/twilio-voice-api.js';
import { newSid, post, signedWebhook, voiceParams } from './fakes/twilio-webhook.js';
import { twilioTest } from './fixtures/twilio-stages.js';
import { CLINIC_NUMBER, OTHER_NUMBER, PATIENT, twilioConfig } from './fixtures/twilio-config.js';
import { spoken, twimlVerbs } from './fixtures/twilio-twiml.js';
import { TWILIO_SMS_SHARED as PROVIDED, type TwilioSmsShared as Provided } from '../channels/twilio-sms/shared.js';
import { TWILIO_SMS_SHARED as EXPECTED, type TwilioSmsShared as Expected } from '../channels/twilio-voice/shared.js';

const FRONT_DESK = '+15550100100';
let fake: FakeTwilio;
let voiceApi: FakeTwilioVoice;
let gw: TestGateway;

beforeAll(async () => {
  fake = await startFakeTwilio();
  voiceApi = await startFakeTwilioVoice(fake);
  gw = await startTestGateway({
    config: twilioConfig(fake, {
      voiceOptions: { apiBaseUrl: voiceApi.baseUrl },
      voice: { handoffNumber: FRONT_DESK, voice: 'Polly.Amy-Neural', language: 'en-GB', replyBudgetMs: 500, holdSeconds: 5, minConfidence: 0.5 },
      extraTenants: [
        {
          id: 'dental',
          name: 'Bay Dental',
          pipeline: ['twilio-test.echo'],
          plugins: { 'twilio-voice': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [OTHER_NUMBER], greeting: 'Bay Dental, how can we help?' } },
        },
      ],
    }),
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await voiceApi?.close();
  await fake?.close();
});
beforeEach(() => twilioTest.reset());

function call(to = CLINIC_NUMBER) {
  const callSid = newSid('CA');
  const hook = (path: string, params: Record<string, string>) => post(signedWebhook({ url: `${gw.url}${path}`, authToken: fake.authToken, params }));
  const base = { callSid, from: PATIENT, to, accountSid: fake.accountSid };
  return {
    callSid,
    start: () => hook('/twilio/voice', voiceParams({ ...base, callStatus: 'ringing' })),
    say: (turn: number, speech: string, o: { confidence?: number; retry?: number } = {}) =>
      hook(`/twilio/voice/gather?turn=${turn}${o.retry ? `&retry=${o.retry}` : ''}`, voiceParams({ ...base, speech, ...(o.confidence !== undefined ? { confidence: o.confidence } : {}) })),
    press: (turn: number, digits: string) => hook(`/twilio/voice/gather?turn=${turn}`, voiceParams({ ...base, digits })),
    silence: (turn: number, retry = 0) => hook(`/twilio/voice/gather?turn=${turn}${retry ? `&retry=${retry}` : ''}`, voiceParams(base)),
    dialed: (turn: number, status: string) => hook(`/twilio/voice/dial?turn=${turn}`, voiceParams({ ...base, extra: { DialCallStatus: status } })),
    status: (status: string, extra: Record<string, string> = {}) => hook('/twilio/voice/status', voiceParams({ ...base, callStatus: status, extra })),
  };
}

const gatherOf = (xml: string) => twimlVerbs(xml).find((v) => v.verb === 'Gather');

describe('a phone call', () => {
  it('gets the Twilio client, helpers and metrics from twilio-sms by key, in the shape it expects, without importing its files', () => {
    expect(EXPECTED).toBe(PROVIDED);
    // Type-checked: tsc fails when twilio-sms stops providing what twilio-voice uses.
    const fits = (provided: Provided): Expected => provided;
    expect(fits).toBeTypeOf('function');
  });

  it('greets the caller and listens for speech or keys', async () => {
    const c = call();
    const res = await c.start();
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/xml/);
    expect(spoken(res.text)).toEqual(["Hello, you've reached Harbour Clinic. How can I help you today?"]);
    expect(gatherOf(res.text)!.attrs).toMatchObject({ input: 'speech dtmf', action: `${gw.url}/twilio/voice/gather?turn=1`, method: 'POST', language: 'en-GB', actionOnEmptyResult: 'true' });
    expect(twimlVerbs(res.text).find((v) => v.verb === 'Say')!.attrs).toMatchObject({ voice: 'Polly.Amy-Neural', language: 'en-GB' });
  });

  it('runs three turns through the pipeline as one conversation that sees its history, speaking each reply', async () => {
    const c = call();
    await c.start();
    const one = await c.say(1, 'What are your opening hours?');
    expect(spoken(one.text)).toEqual(['echo: What are your opening hours? [turn 1]']);
    expect(gatherOf(one.text)!.attrs.action).toBe(`${gw.url}/twilio/voice/gather?turn=2`);

    const two = await c.press(2, '2');
    expect(spoken(two.text)).toEqual(['echo: 2 [turn 2]']);
    const three = await c.say(3, 'And on Saturday?');
    expect(spoken(three.text)).toEqual(['echo: And on Saturday? [turn 3]']);
    expect(gatherOf(three.text)!.attrs.action).toBe(`${gw.url}/twilio/voice/gather?turn=4`);

    expect(twilioTest.seen.map((s) => s.historyLength)).toEqual([0, 2, 4]);
    expect(new Set(twilioTest.seen.map((s) => s.message.conversationId)).size).toBe(1);
    expect(twilioTest.seen.map((s) => s.message.attributes.inputType)).toEqual(['speech', 'dtmf', 'speech']);
    const mine = (i: { channel: string; conversationId: string | null }) => i.channel === 'twilio-voice' && i.conversationId === twilioTest.seen[0]!.message.conversationId;
    const settled = await gw.waitForOutbox('clinic', (all) => all.filter(mine).every((i) => i.status !== 'sending'));
    const replies = settled.filter(mine);
    expect(replies.map((r) => [r.status, r.via])).toEqual([['sent', 'inline'], ['sent', 'inline'], ['sent', 'inline']]);
  });

  it('answers a retried turn with the same reply and runs the pipeline once', async () => {
    const c = call();
    await c.start();
    const first = await c.say(1, 'hello there');
    const again = await c.say(1, 'hello there');
    expect(again.text).toBe(first.text);
    expect(twilioTest.texts()).toEqual(['hello there']);
  });

  it('answers a caller whose number opted out of messages: an SMS STOP does not silence their own call', async () => {
    await gw.gateway.consent.set({ tenantId: 'clinic', address: PATIENT, status: 'opted-out', source: 'test', channel: 'twilio-sms' });
    try {
      const c = call();
      await c.start();
      const one = await c.say(1, 'Are you open today?');
      expect(spoken(one.text)).toEqual(['echo: Are you open today? [turn 1]']);
      const mine = (i: { channel: string; conversationId: string | null }) => i.channel === 'twilio-voice' && i.conversationId === twilioTest.seen[0]!.message.conversationId;
    const settled = await gw.waitForOutbox('clinic', (all) => all.filter(mine).every((i) => i.status !== 'sending'));
    const replies = settled.filter(mine);
      expect(replies.map((r) => r.status)).toEqual(['sent']);
    } finally {
      await gw.gateway.consent.set({ tenantId: 'clinic', address: PATIENT, status: 'opted-in', source: 'test' });
    }
  });

  it('re-prompts after silence, then ends the call politely', async () => {
    const c = call();
    await c.start();
    const first = await c.silence(1);
    expect(spoken(first.text)).toEqual(["Sorry, I didn't catch that. How can I help?"]);
    expect(gatherOf(first.text)!.attrs.action).toBe(`${gw.url}/twilio/voice/gather?turn=1&retry=1`);
    const second = await c.silence(1, 1);
    expect(gatherOf(second.text)!.attrs.action).toBe(`${gw.url}/twilio/voice/gather?turn=1&retry=2`);
    const last = await c.silence(1, 2);
    expect(spoken(last.text)).toEqual(["I can't hear anything, so I'll end the call now. Please call back any time. Goodbye."]);
    expect(twimlVerbs(last.text).map((v) => v.verb)).toEqual(['Say', 'Hangup']);
    expect(twilioTest.seen).toHaveLength(0);
  });

  it('asks again instead of answering speech recognised with low confidence', async () => {
    const c = call();
    await c.start();
    const res = await c.say(1, 'book and ointment', { confidence: 0.2 });
    expect(spoken(res.text)).toEqual(["Sorry, I'm not sure I understood. Could you say that again?"]);
    expect(twilioTest.seen).toHaveLength(0);
    const clear = await c.say(1, 'book an appointment', { confidence: 0.9, retry: 1 });
    expect(spoken(clear.text)).toEqual(['echo: book an appointment [turn 1]']);
  });

  it('says goodbye and hangs up when the caller does', async () => {
    const c = call();
    await c.start();
    await c.say(1, 'hi');
    const res = await c.say(2, 'Okay, thanks. Bye!');
    expect(spoken(res.text)).toEqual(['Thank you for calling. Goodbye!']);
    expect(twimlVerbs(res.text).map((v) => v.verb)).toEqual(['Say', 'Hangup']);
    expect(twilioTest.texts()).toEqual(['hi']);
  });

  it('transfers the caller with <Dial> when a stage asks for a human, and ends after the transfer', async () => {
    const c = call();
    await c.start();
    const res = await c.say(1, 'human');
    expect(spoken(res.text)).toEqual(['Let me find someone for you.']);
    const dial = twimlVerbs(res.text).find((v) => v.verb === 'Dial')!;
    expect(dial.text).toBe(FRONT_DESK);
    expect(dial.attrs.action).toBe(`${gw.url}/twilio/voice/dial?turn=2`);

    const done = await c.dialed(2, 'completed');
    expect(twimlVerbs(done.text).map((v) => v.verb)).toEqual(['Say', 'Hangup']);
    const unanswered = await c.dialed(2, 'no-answer');
    expect(spoken(unanswered.text)).toEqual(["I'm sorry, nobody could take your call right now. Is there anything else I can help with?"]);
    expect(gatherOf(unanswered.text)!.attrs.action).toBe(`${gw.url}/twilio/voice/gather?turn=2`);
  });

  it('also transfers when a reply carries { handoff: true }, and says so when no number is configured', async () => {
    const clinic = call();
    await clinic.start();
    const res = await clinic.say(1, 'operator please');
    expect(twimlVerbs(res.text).find((v) => v.verb === 'Dial')!.text).toBe(FRONT_DESK);

    const dental = call(OTHER_NUMBER);
    expect(spoken((await dental.start()).text)).toEqual(['Bay Dental, how can we help?']);
    const noDesk = await dental.say(1, 'human');
    expect(twimlVerbs(noDesk.text).some((v) => v.verb === 'Dial')).toBe(false);
    expect(spoken(noDesk.text)[0]).toMatch(/^Let me find someone for you\. I'm sorry, nobody could take your call/);
  });

  it('transfers when a stage hands the conversation to a person, and goes on talking when no number is configured', async () => {
    const clinic = call();
    await clinic.start();
    const res = await clinic.say(1, 'a person please');
    expect(spoken(res.text)).toEqual(['Connecting you with our team.']);
    expect(twimlVerbs(res.text).find((v) => v.verb === 'Dial')!.text).toBe(FRONT_DESK);
    // Twilio retrying the same turn gets the same transfer.
    expect(twimlVerbs((await clinic.say(1, 'a person please')).text).find((v) => v.verb === 'Dial')!.text).toBe(FRONT_DESK);

    const dental = call(OTHER_NUMBER);
    await dental.start();
    const noDesk = await dental.say(1, 'a person please');
    expect(twimlVerbs(noDesk.text).some((v) => v.verb === 'Dial')).toBe(false);
    expect(spoken(noDesk.text)).toEqual(['Connecting you with our team.']);
  });

  it('puts the caller on hold when the pipeline is slow, then speaks the answer into the live call', async () => {
    const c = call();
    await c.start();
    const started = Date.now();
    const res = await c.say(1, 'slow 1500');
    expect(Date.now() - started).toBeLessThan(1400);
    expect(spoken(res.text)).toEqual(['One moment, please.', 'Sorry, that is taking longer than expected. Could you ask me again?']);
    expect(twimlVerbs(res.text).find((v) => v.verb === 'Pause')!.attrs.length).toBe('5');

    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.channel === 'twilio-voice' && i.text.startsWith('Sorry for the wait') && i.status === 'delivered'));
    const update = voiceApi.updates.find((u) => u.callSid === c.callSid)!;
    expect(spoken(update.twiml)).toEqual(['Sorry for the wait: here is your answer.']);
    expect(gatherOf(update.twiml)!.attrs.action).toBe(`${gw.url}/twilio/voice/gather?turn=2`);
    expect(items.find((i) => i.text.startsWith('Sorry for the wait'))!.via).toBe('api');
  });

  it('does not try to speak a late answer to a caller who already hung up', async () => {
    const c = call();
    await c.start();
    await c.say(1, 'slow 900');
    await c.status('completed', { CallDuration: '12' });
    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.channel === 'twilio-voice' && i.conversationId === twilioTest.seen[0]?.message.conversationId && i.status === 'dead'));
    expect(items.find((i) => i.conversationId === twilioTest.seen[0]!.message.conversationId && i.status === 'dead')!.errorCode).toBe('call-ended');
    expect(voiceApi.updates.some((u) => u.callSid === c.callSid)).toBe(false);
  });
});

describe('call status callbacks', () => {
  it('are recorded in order, and a late status never undoes a final one', async () => {
    const c = call();
    await c.start();
    expect((await c.status('in-progress')).status).toBe(204);
    await c.status('completed', { CallDuration: '42' });
    await c.status('ringing');
    const { rows } = await gw.gateway.db.pool.query('SELECT status, duration_seconds, ended_at FROM twilio_calls WHERE call_sid = $1', [c.callSid]);
    expect(rows[0]).toMatchObject({ status: 'completed', duration_seconds: 42 });
    expect(rows[0].ended_at).toBeInstanceOf(Date);
    const events = await gw.gateway.db.pool.query('SELECT status FROM twilio_call_events WHERE call_sid = $1 ORDER BY id', [c.callSid]);
    expect(events.rows.map((r: { status: string }) => r.status)).toEqual(['ringing', 'in-progress', 'completed']);
    expect(await gw.metrics()).toMatch(/parley_twilio_call_status_total\{tenant="clinic",status="completed"\} [1-9]/);
  });

  it('are part of the caller’s data-subject export and erasure', async () => {
    const c = call();
    await c.start();
    await c.status('completed', { CallDuration: '7' });
    const provider = gw.gateway.dataSubjectProviders.find((p) => p.provider.name === 'twilio-voice.calls')!.provider;
    const exported = await provider.export({ tenantId: 'clinic', addresses: [PATIENT] });
    expect(exported.find((r) => r.callSid === c.callSid)).toMatchObject({ from: PATIENT, status: 'completed', durationSeconds: 7 });
    expect(provider.describe().recipients.join(' ')).toMatch(/Twilio/);
    const { erased } = await provider.erase({ tenantId: 'clinic', addresses: [PATIENT] });
    expect(erased).toBeGreaterThan(0);
    expect(await provider.export({ tenantId: 'clinic', addresses: [PATIENT] })).toEqual([]);
  });
});

describe('voice webhooks refuse what Twilio did not send', () => {
  it('refuses unsigned and forged requests with 403 and counts them', async () => {
    const params = voiceParams({ callSid: newSid('CA'), from: PATIENT, to: CLINIC_NUMBER, accountSid: fake.accountSid });
    const unsigned = await post({ url: `${gw.url}/twilio/voice`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
    expect(unsigned.status).toBe(403);
    const forged = signedWebhook({ url: `${gw.url}/twilio/voice/gather?turn=1`, authToken: 'not-the-token', params: { ...params, SpeechResult: 'hi' } });
    expect((await post(forged)).status).toBe(403);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/parley_twilio_signature_failures_total\{tenant="clinic",endpoint="voice",reason="missing-signature"\} 1/);
    expect(metrics).toMatch(/parley_twilio_signature_failures_total\{tenant="clinic",endpoint="voice-gather",reason="mismatch"\} 1/);
  });

  it('answers malformed calls and turns with 400, never 500', async () => {
    const good = voiceParams({ callSid: newSid('CA'), from: PATIENT, to: CLINIC_NUMBER, accountSid: fake.accountSid, speech: 'hi' });
    const cases: [string, Record<string, string>][] = [
      ['/twilio/voice', { ...good, CallSid: 'nope' }],
      ['/twilio/voice/gather', good],
      ['/twilio/voice/gather?turn=zero', good],
      ['/twilio/voice/gather?turn=1', { ...good, Confidence: 'high' }],
      ['/twilio/voice/gather?turn=1', { ...good, Digits: '<script>' }],
      ['/twilio/voice/status', { ...good, CallStatus: '' }],
    ];
    for (const [path, params] of cases) {
      const res = await post(signedWebhook({ url: `${gw.url}${path}`, authToken: fake.authToken, params }));
      expect(res.status, `${path} ${JSON.stringify(params)}`).toBe(400);
    }
  });
});

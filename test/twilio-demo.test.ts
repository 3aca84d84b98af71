/**
 * The bundled demo: tenant `demo` answers a real Twilio number once TWILIO_ACCOUNT_SID,
 * TWILIO_AUTH_TOKEN, DEMO_TWILIO_NUMBER and PUBLIC_BASE_URL are set; until then the Twilio channels
 * stay off, say why, and do not fail readiness.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { BUNDLED_DEMO_CONFIG } from '../core/config.js';
import { inboundSmsParams, newSid, post, signedSmsRequest, signedWebhook, voiceParams } from './fakes/twilio-webhook.js';
import { spoken, twimlMessages } from './fixtures/twilio-twiml.js';

const DEMO_NUMBER = '+15558880001';
const ACCOUNT = `AC${'1'.repeat(32)}`;
const TOKEN = 'demo-auth-token';
const PUBLIC = 'https://demo-tunnel.example.com';
const demoYaml = readFileSync(BUNDLED_DEMO_CONFIG, 'utf8');
const unset = { PARLEY_DEMO_CORPUS: '', TWILIO_ACCOUNT_SID: '', TWILIO_AUTH_TOKEN: '', DEMO_TWILIO_NUMBER: '', PUBLIC_BASE_URL: '', DATABASE_URL: '', REDIS_URL: '', PARLEY_OPERATOR_KEY: '', PARLEY_DEMO_KEY: 'demo-key-0123456789' };

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.stop({ cleanup: true });
  gw = undefined;
});

describe('the demo configuration', () => {
  it('keeps the Twilio channels off with the reason when the variables are unset, and stays ready', async () => {
    gw = await startTestGateway({ config: demoYaml, env: unset });
    const warnings = gw.logs.filter((l) => l.level === 40).map((l) => String(l.msg));
    expect(warnings).toContain('twilio-sms is off for tenant "demo": accountSid and authToken are not set (usually from the TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN environment variables)');
    expect(warnings.some((w) => w.startsWith('twilio-voice is off for tenant "demo"'))).toBe(true);
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.components['twilio-sms']).toMatchObject({ ok: true, info: { tenants: { demo: expect.stringMatching(/^off: accountSid and authToken/) } } });
    expect((await gw.send('demo', { from: 'me', text: 'hours' })).replies[0]!.text).toMatch(/open Monday to Friday/);
    const sms = signedSmsRequest({ baseUrl: gw.url, authToken: TOKEN, params: inboundSmsParams({ from: '+15550001111', to: DEMO_NUMBER, body: 'hours' }) });
    expect((await post(sms)).status).toBe(404);
  });

  it('names PUBLIC_BASE_URL when it is the one variable missing', async () => {
    gw = await startTestGateway({ config: demoYaml, env: { ...unset, TWILIO_ACCOUNT_SID: ACCOUNT, TWILIO_AUTH_TOKEN: TOKEN, DEMO_TWILIO_NUMBER: DEMO_NUMBER } });
    expect(gw.logs.some((l) => /twilio-sms is off for tenant "demo": server.publicBaseUrl is not set \(PUBLIC_BASE_URL\)/.test(String(l.msg)))).toBe(true);
  });

  it('answers SMS and calls on the demo number once the four variables are set', async () => {
    gw = await startTestGateway({ config: demoYaml, env: { ...unset, TWILIO_ACCOUNT_SID: ACCOUNT, TWILIO_AUTH_TOKEN: TOKEN, DEMO_TWILIO_NUMBER: DEMO_NUMBER, PUBLIC_BASE_URL: PUBLIC } });
    const text = (body: string) => post(signedSmsRequest({ baseUrl: gw!.url, publicBaseUrl: PUBLIC, authToken: TOKEN, params: inboundSmsParams({ from: '+15550001111', to: DEMO_NUMBER, body, accountSid: ACCOUNT }) }));
    expect(twimlMessages((await text('What are your opening times?')).text)[0]!.body).toMatch(/^We're open Monday to Friday/);
    expect(twimlMessages((await text('STOP')).text)[0]!.body).toMatch(/^Demo Clinic: You are unsubscribed/);
    expect(twimlMessages((await text('HELP')).text)[0]!.body).toMatch(/^Demo Clinic: For help, call 555-0100\./);

    const callSid = newSid('CA');
    const voice = (path: string, extra: Record<string, string>) =>
      post(signedWebhook({ url: `${gw!.url}${path}`, signedUrl: `${PUBLIC}${path}`, authToken: TOKEN, params: { ...voiceParams({ callSid, from: '+15550002222', to: DEMO_NUMBER, accountSid: ACCOUNT }), ...extra } }));
    expect(spoken((await voice('/twilio/voice', {})).text)).toEqual(["Hello, you've reached Demo Clinic. How can I help you today?"]);
    const answer = await voice('/twilio/voice/gather?turn=1', { SpeechResult: 'where are you', Confidence: '0.9' });
    expect(spoken(answer.text)).toEqual(['Demo Clinic, 12 Harbour Street. Buses 4 and 17 stop outside.']);
    expect(answer.text).toContain(`action="${PUBLIC}/twilio/voice/gather?turn=2"`);

    const ready = await gw.request('GET', '/readyz');
    expect(ready.body.components['twilio-sms'].info.tenants.demo).toBe('on');
    expect(ready.body.components['twilio-voice'].info.tenants.demo).toBe('on');
  });
});

/**
 * How the Twilio channels start: a trusted proxy's X-Forwarded-* headers, the development switch
 * that turns signature checking off (and its refusal in production), and the configuration mistakes
 * that must fail at boot rather than in front of a customer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, post, signedWebhook } from './fakes/twilio-webhook.js';
import { CLINIC_NUMBER, OTHER_NUMBER, PATIENT, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

let fake: FakeTwilio;
let gw: TestGateway;

beforeAll(async () => {
  fake = await startFakeTwilio();
  gw = await startTestGateway({
    config: twilioConfig(fake, {
      voice: false,
      smsOptions: { trustProxy: true },
      extraTenants: [
        {
          id: 'devbox',
          pipeline: ['twilio-test.echo'],
          plugins: { 'twilio-sms': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [OTHER_NUMBER], validateSignatures: false } },
        },
      ],
    }),
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});

/** Boots a configuration that must be refused, in a data directory removed afterwards. */
async function bootFails(config: Record<string, unknown>, message: RegExp) {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-twilio-'));
  try {
    await expect(startTestGateway({ config, dataDir })).rejects.toThrow(message);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const params = (body: string, to = CLINIC_NUMBER) => inboundSmsParams({ from: PATIENT, to, body, accountSid: fake.accountSid });

describe('behind a trusted proxy without a public base URL', () => {
  it('validates against the URL rebuilt from X-Forwarded-Proto and X-Forwarded-Host', async () => {
    const signed = signedWebhook({ url: `${gw.url}/twilio/sms`, signedUrl: 'https://proxy.example.com/twilio/sms', authToken: fake.authToken, params: params('via proxy') });
    const forwarded = { ...signed.headers, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'proxy.example.com' };
    expect((await post({ ...signed, headers: forwarded })).status).toBe(200);
    expect((await post(signed)).status).toBe(403);
  });
});

describe('the development switch', () => {
  it('accepts unsigned requests for that tenant only, and warned at start', async () => {
    const unsigned = { url: `${gw.url}/twilio/sms`, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    const dev = await post({ ...unsigned, body: new URLSearchParams(params('no signature', OTHER_NUMBER)).toString() });
    expect(dev.status).toBe(200);
    expect(twimlMessages(dev.text)[0]!.body).toMatch(/^echo: no signature/);
    expect((await post({ ...unsigned, body: new URLSearchParams(params('no signature')).toString() })).status).toBe(403);
    expect(gw.logs.some((l) => l.level === 40 && l.tenant === 'devbox' && /Signature checking is OFF/.test(String(l.msg)))).toBe(true);
  });

  it('is refused when NODE_ENV=production', async () => {
    const previous = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      await bootFails(twilioConfig(fake, { voice: false, sms: { validateSignatures: false } }), /tenants\[0\] \(clinic\)\.plugins\.twilio-sms\.validateSignatures: false is refused when NODE_ENV=production/);
      await bootFails(twilioConfig(fake, { voice: { validateSignatures: false } }), /tenants\[0\] \(clinic\)\.plugins\.twilio-voice\.validateSignatures: false is refused when NODE_ENV=production/);
    } finally {
      process.env.NODE_ENV = previous;
    }
  });
});

describe('configuration mistakes fail at boot', () => {
  it('a tenant that still lists the consent stage, which now runs by itself before every pipeline', async () => {
    const message = /tenants\[0\] \(clinic\)\.pipeline: remove "twilio-sms\.consent": it now runs by itself before every tenant's pipeline for twilio-sms messages/;
    await bootFails(twilioConfig(fake, { voice: false, pipeline: ['twilio-sms.consent', 'twilio-test.echo'] }), message);
    // Also for a tenant without twilio-sms settings, whose pipeline only names the stage.
    const config = twilioConfig(fake, { voice: false, extraTenants: [{ id: 'elsewhere', pipeline: ['twilio-test.echo', 'twilio-sms.consent'] }] });
    await bootFails(config, /tenants\[1\] \(elsewhere\)\.pipeline: remove "twilio-sms\.consent"/);
  });

  it('a number that is not E.164, naming the tenant and the path', async () => {
    await bootFails(twilioConfig(fake, { voice: false, sms: { numbers: ['555-1234'] } }), /tenants\[0\] \(clinic\)\.plugins\.twilio-sms\.numbers\[0\]/);
  });

  it('two tenants claiming one number', async () => {
    const config = twilioConfig(fake, {
      voice: false,
      extraTenants: [{ id: 'copycat', pipeline: [], plugins: { 'twilio-sms': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [CLINIC_NUMBER] } } }],
    });
    await bootFails(config, /claimed by tenants "clinic" and "copycat"/);
  });
});

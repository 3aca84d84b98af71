/**
 * examples/caregiver-sms (seed 000) end to end: the example's own parley.yaml, booted through the test
 * kit with every provider replaced by its local fake (Twilio, the OpenAI-compatible model API, Stripe,
 * Slack) through the environment variables the README documents. Webhooks are signed with the SDKs.
 * The journeys a caregiver and the operators rely on: crisis reply and alert, answers that remember
 * the conversation, the free allowance then a Stripe Checkout link unlocked by the webhook,
 * STOP/START/HELP, hashed numbers in the logs, health, and the seed's alert thresholds.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { startFakeStripe, type FakeStripe } from './fakes/stripe-api.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-api.js';
import { inboundSmsParams, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';
import { hashAddress } from '../core/logger.js';
import { exampleAlertRules } from './fixtures/example-alert-rules.js';

const EXAMPLE = fileURLToPath(new URL('../examples/caregiver-sms/', import.meta.url));
const CONFIG = readFileSync(`${EXAMPLE}parley.yaml`, 'utf8');
const PUBLIC = 'https://caregiver.example';
const NUMBER = '+15557650000';
const KEY = 'key-caregiver-example-0123456789';
const OPERATOR = 'key-operator-example-0123456789';
const WHSEC = 'whsec_caregiver_example_0123456789';
const SLACK_TOKEN = 'xoxb-caregiver-example';

let twilio: FakeTwilio;
let model: FakeModelApi;
let stripe: FakeStripe;
let slack: FakeSlack;
let gw: TestGateway;
let n = 0;
const person = () => `+1555031${String(++n).padStart(4, '0')}`;

beforeAll(async () => {
  [twilio, model, stripe, slack] = await Promise.all([startFakeTwilio(), startFakeModelApi(), startFakeStripe(), startFakeSlack({ token: SLACK_TOKEN })]);
  gw = await startTestGateway({
    config: CONFIG,
    baseDir: EXAMPLE,
    // The seed logs every SMS processed; Parley's per-message line ("message processed") is at debug.
    logLevel: 'debug',
    env: {
      PUBLIC_BASE_URL: PUBLIC,
      PARLEY_OPERATOR_KEY: OPERATOR,
      CAREGIVER_API_KEY: KEY,
      TWILIO_ACCOUNT_SID: twilio.accountSid,
      TWILIO_AUTH_TOKEN: twilio.authToken,
      TWILIO_PHONE_NUMBER: NUMBER,
      TWILIO_API_BASE_URL: twilio.baseUrl,
      OPENAI_BASE_URL: `${model.url}/v1`,
      OPENAI_API_KEY: 'sk-fake-caregiver',
      STRIPE_SECRET_KEY: stripe.secretKey,
      STRIPE_WEBHOOK_SECRET: WHSEC,
      STRIPE_API_BASE_URL: stripe.baseUrl,
      STRIPE_PRICE_MONTHLY: 'price_caregiver_monthly',
      SLACK_BOT_TOKEN: SLACK_TOKEN,
      SLACK_SIGNING_SECRET: 'caregiver-example-signing-secret',
      SLACK_ALERTS_CHANNEL: 'C0CAREOPS',
      SLACK_API_URL: slack.apiUrl,
      CAREGIVER_CORPUS: '',
    },
  });
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', '/v1/tenants/caregiver/medical-answers', { key: KEY })).body;
    if (state.chunks > 0 && !state.ingest) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await Promise.all([twilio?.close(), model?.close(), stripe?.close(), slack?.close()]);
});

/** A text to the caregiver number, signed as Twilio signs it over the public URL; the TwiML answer's texts. */
async function sms(from: string, body: string): Promise<string[]> {
  const res = await post(signedSmsRequest({ baseUrl: gw.url, publicBaseUrl: PUBLIC, authToken: twilio.authToken, params: inboundSmsParams({ from, to: NUMBER, body, accountSid: twilio.accountSid }) }));
  expect(res.status).toBe(200);
  return twimlMessages(res.text).map((m) => m.body);
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('examples/caregiver-sms: seed 000 as a Parley deployment', () => {
  it('answers a caregiver in crisis with the crisis numbers, and alerts operations in Slack without the number or the text', async () => {
    const from = person();
    const text = 'I cannot do this anymore, I want to end my life';
    const reply = (await sms(from, text)).join('\n');
    expect(reply).toContain('988');
    expect(reply).toContain('911');
    const alert = await waitFor('the crisis alert in Slack', () => slack.messages.find((m) => !m.thread_ts && JSON.stringify(m.blocks).includes('crisis-guard.detection')));
    expect(alert.channel).toBe('C0CAREOPS');
    expect(alert.text).toContain('<!here>');
    expect(JSON.stringify(alert)).toContain(hashAddress(from));
    expect(JSON.stringify(alert)).not.toContain(from);
    expect(JSON.stringify(alert)).not.toContain('end my life');
  });

  it('answers a question with the chat model through the AI service, citing the library, and remembers the conversation for a follow-up', async () => {
    const from = person();
    model.answer = () => 'Shingles is caused by the virus that causes chickenpox [1].';
    const first = (await sms(from, 'my mom has shingles, what causes it?')).join('\n');
    expect(first).toMatch(/^Shingles is caused by the virus that causes chickenpox\.\nSource: Shingles/);
    expect(first).toContain('General information, not medical advice.');
    model.answer = () => 'Yes: the virus can pass to someone who never had chickenpox [1].';
    const calls = model.calls.length;
    const followUp = (await sms(from, 'is it contagious?')).join('\n');
    expect(followUp).toMatch(/^Yes: the virus can pass to someone who never had chickenpox\.\nSource: Shingles/);
    // The follow-up reached the model as a question about shingles: the earlier message was remembered.
    const prompt = JSON.stringify(model.calls.slice(calls).map((c) => c.body.messages));
    expect(prompt).toMatch(/Question: [^"]*shingles/i);
    expect(prompt).toMatch(/\[1\] Shingles/);
    const usage = await gw.gateway.db.pool.query(`SELECT DISTINCT plugin FROM parley_usage WHERE tenant_id = 'caregiver' AND kind LIKE 'model.tokens.%'`);
    expect(usage.rows).toEqual([{ plugin: 'medical-answers' }]);
    model.answer = undefined;
  });

  it('after the free allowance sends a Stripe Checkout link through the plan chooser, and the webhook unlocks answers', async () => {
    const from = person();
    for (let i = 0; i < 10; i++) expect((await sms(from, `hello ${i}`)).length).toBeGreaterThan(0);
    const [linkText] = await sms(from, 'what helps with caregiver stress?');
    const link = /(https:\/\/caregiver\.example\/billing\/choose\/\S+)/.exec(linkText!)?.[1];
    expect(link, linkText).toBeDefined();
    const local = link!.replace(PUBLIC, gw.url);
    const page = await fetch(local);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GiveCare Plus');
    const chosen = await fetch(local, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'plan=price_caregiver_monthly' });
    expect(chosen.status).toBe(303);
    const sessionId = /\/pay\/(cs_test_[0-9a-f]+)/.exec(chosen.headers.get('location')!)![1]!;
    // Still locked until Stripe says the checkout is paid.
    expect(await sms(from, 'what helps with caregiver stress?')).toEqual([]);
    const { session } = stripe.completeCheckout(sessionId);
    const event = JSON.stringify(stripe.event('checkout.session.completed', session));
    const hook = await gw.request('POST', '/stripe/webhook', { raw: event, headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(event, WHSEC) } });
    expect(hook.status).toBe(200);
    const answer = (await sms(from, 'what helps with caregiver stress?')).join('\n');
    expect(answer).toContain('Source: ');
    const forged = await gw.request('POST', '/stripe/webhook', { raw: event, headers: { 'content-type': 'application/json', 'stripe-signature': stripe.sign(event, 'whsec_wrong') } });
    expect(forged.status).toBe(400);
  });

  it('never asks a person in crisis to pay: past the allowance the crisis text gets the numbers and no plan link', async () => {
    const from = person();
    for (let i = 0; i < 10; i++) await sms(from, `hello ${i}`);
    const crisis = (await sms(from, 'I want to kill myself')).join('\n');
    expect(crisis).toContain('988');
    expect(crisis).not.toContain('/billing/choose/');
    // Staff talked to the person and gave the conversation back to the bot; the next question is over the allowance.
    const { rows } = await gw.gateway.db.pool.query(`SELECT id FROM parley_conversations WHERE tenant_id = 'caregiver' AND participant = $1`, [from]);
    expect((await gw.request('PUT', `/v1/tenants/caregiver/conversations/${rows[0].id}/handoff`, { key: KEY, body: { state: 'bot' } })).status).toBe(200);
    expect((await sms(from, 'what helps with caregiver stress?')).join('\n')).toContain('/billing/choose/');
  });

  it('STOP opts the number out once, HELP answers even then, START opts back in', async () => {
    const from = person();
    expect((await sms(from, 'STOP')).join(' ')).toMatch(/unsubscribed|opted out|no longer/i);
    expect(await sms(from, 'stop')).toEqual([]);
    expect((await sms(from, 'HELP')).join(' ')).toMatch(/GiveCare.*help@givecare\.example/s);
    expect(await sms(from, 'what causes falls in older people?')).toEqual([]);
    expect((await sms(from, 'START')).join(' ')).toMatch(/GiveCare/);
    const falls = (await sms(from, 'what causes falls in older people?')).join('\n');
    expect(falls).toContain('Source: ');
    // The source's link is a short one on the gateway's public address, and opens the page.
    const short = new RegExp(`${PUBLIC}/l/[A-Za-z0-9_-]{8}`).exec(falls)?.[0];
    expect(short, falls).toBeDefined();
    const opened = await fetch(short!.replace(PUBLIC, gw.url), { redirect: 'manual' });
    expect(opened.status).toBe(302);
    expect(opened.headers.get('location')).toMatch(/^https?:\/\//);
    const consent = await gw.request('GET', `/v1/tenants/caregiver/consent/${encodeURIComponent(from)}`, { key: KEY });
    expect(consent.body).toMatchObject({ status: 'opted-in' });
    expect(consent.body.history.map((h: { status: string }) => h.status)).toEqual(expect.arrayContaining(['opted-out', 'opted-in']));
  });

  it('logs each message processed with the hashed number and its time, never the number or a message body', async () => {
    const from = person();
    await sms(from, 'my dad with dementia keeps wandering at night');
    const processed = gw.logs.filter((l) => l['msg'] === 'message processed' && l['from'] === hashAddress(from));
    expect(processed).toEqual([expect.objectContaining({ tenant: 'caregiver', channel: 'twilio-sms', status: expect.any(String), ms: expect.any(Number) })]);
    const logs = JSON.stringify(gw.logs);
    expect(logs).not.toContain(from);
    expect(logs).not.toContain('keeps wandering');
    expect(logs).not.toContain('end my life');
  });

  it('/healthz answers, /readyz lists the database, jobs, AI, SMS, billing, library and Slack components', async () => {
    expect((await gw.request('GET', '/healthz')).body).toMatchObject({ status: 'ok' });
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    const components = ready.body.components as Record<string, { ok: boolean }>;
    for (const name of ['database', 'jobs', 'ai', 'twilio-sms', 'billing', 'medical-answers', 'slack-alerts']) expect(components[name], name).toMatchObject({ ok: true });
  });

  it('alerts at the seed thresholds: p95 over 5 s is a warning, over 10 s critical, errors over 5% in 5 minutes critical', () => {
    const { rules, raised } = exampleAlertRules(CONFIG, { tenant: 'caregiver', channel: 'twilio-sms' }, [1, 2.5, 5, 10, 30, Infinity]);
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const fast = Array<number>(40).fill(0.8);
    raised(t0, [], 0, 0, { 'queue-depth': {}, 'dead-letters': {} });
    expect(raised(t0 + 60_000, fast, 40, 1)).toEqual([]);
    const slow = [...fast, ...Array<number>(20).fill(7)];
    expect(raised(t0 + 120_000, slow, 60, 1)).toEqual(['rule.response-time-warning:warning']);
    const slower = [...slow, ...Array<number>(60).fill(20)];
    expect(raised(t0 + 180_000, slower, 120, 10)).toEqual(['rule.error-rate:critical', 'rule.response-time-warning:warning', 'rule.sms-processing-critical:critical']);
    const backlog = rules.find((r) => r.kind === 'outbox-backlog')!;
    expect(backlog).toMatchObject({ threshold: 100, severity: 'warning' });
  });
});

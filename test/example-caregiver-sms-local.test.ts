/**
 * examples/caregiver-sms with no credentials at all, as `npx parley start --config
 * examples/caregiver-sms/parley.yaml` runs on a laptop: `parley validate` accepts the file, the gateway
 * is ready with Twilio, Stripe, Slack and the chat model off (each says why), and a caregiver talking
 * over the HTTP channel still gets the crisis reply and extractive (`local`) answers that remember
 * the conversation.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = `${ROOT}examples/caregiver-sms/`;
const KEY = 'key-caregiver-local-0123456789';
const OPERATOR = 'key-operator-local-0123456789';
/** Every provider variable the example reads, blank: nothing may come from the machine's environment. */
const NO_CREDENTIALS = Object.fromEntries(
  ['PUBLIC_BASE_URL', 'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_PHONE_NUMBER', 'TWILIO_API_BASE_URL', 'OPENAI_API_KEY', 'OPENAI_BASE_URL', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'STRIPE_API_BASE_URL', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_ALERTS_CHANNEL', 'SLACK_API_URL', 'CAREGIVER_CORPUS', 'DATABASE_URL', 'REDIS_URL', 'BILLING_LINK_SECRET'].map((k) => [k, '']),
);

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({ config: readFileSync(`${EXAMPLE}parley.yaml`, 'utf8'), baseDir: EXAMPLE, env: { ...NO_CREDENTIALS, CAREGIVER_API_KEY: KEY, PARLEY_OPERATOR_KEY: OPERATOR } });
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', '/v1/tenants/caregiver/medical-answers', { key: KEY })).body;
    if (state.chunks > 0 && !state.ingest) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);
afterAll(() => gw?.stop({ cleanup: true }));

const ask = async (from: string, text: string) => {
  const r = await gw.send('caregiver', { from, text }, KEY);
  expect(r.status).toBe(200);
  const note = (await gw.request('GET', `/v1/tenants/caregiver/messages/${r.message.id}`, { key: KEY })).body.message.annotations['medical-answers'];
  return { text: r.replies.map((x) => x.text).join('\n'), note };
};

describe('examples/caregiver-sms with no credentials', () => {
  it('passes `parley validate` with nothing set in the environment', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...NO_CREDENTIALS };
    for (const k of ['CAREGIVER_API_KEY', 'PARLEY_OPERATOR_KEY']) delete env[k];
    const r = spawnSync(process.execPath, [`${ROOT}bin/parley.js`, 'validate', '--config', `${EXAMPLE}parley.yaml`], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr + r.stdout).toMatch(/is valid: 1 tenant\(s\) \(caregiver\)/);
    expect(r.status).toBe(0);
  });

  it('is ready, with each provider off and saying why', async () => {
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    const c = ready.body.components as Record<string, { ok: boolean; detail?: string; info?: unknown }>;
    expect(c['slack-alerts']).toMatchObject({ ok: true, detail: expect.stringMatching(/^off: missing token \(SLACK_BOT_TOKEN\)/) });
    expect(c['ai']!.detail).toMatch(/off \(missing credentials\): openai/);
    expect(JSON.stringify(c['twilio-sms'])).toMatch(/off/);
    expect(JSON.stringify(c['billing'])).toMatch(/off/);
  });

  it('answers from the library without a model (local), and remembers the conversation for a follow-up', async () => {
    const first = await ask('caregiver-1', 'my mom has shingles, what causes it?');
    expect(first.note).toMatchObject({ outcome: 'answered', answerer: 'extractive', citations: [expect.objectContaining({ title: 'Shingles' })] });
    expect(first.text).toContain('Source: Shingles');
    const followUp = await ask('caregiver-1', 'is it contagious?');
    expect(followUp.note).toMatchObject({ outcome: 'answered', citations: [expect.objectContaining({ title: 'Shingles' })] });
    const log = (await gw.request('GET', '/v1/tenants/caregiver/medical-answers/answers?limit=1', { key: KEY })).body;
    expect(log.answers[0]).toMatchObject({ followUp: true });
  });

  it('still answers a crisis with the crisis numbers, and raises the alert to the log and the alert API without Slack', async () => {
    const r = await gw.send('caregiver', { from: 'caregiver-2', text: "I can't go on, I want to kill myself" }, KEY);
    expect(r.replies.map((x) => x.text).join('\n')).toContain('988');
    const alerts = (await gw.request('GET', '/v1/alerts', { key: OPERATOR })).body.alerts as { key: string; severity: string }[];
    expect(alerts).toContainEqual(expect.objectContaining({ key: expect.stringMatching(/^crisis-guard\.detection:/), severity: 'critical' }));
    expect(gw.logs.some((l) => String(l['msg']).startsWith('alert firing: Crisis message'))).toBe(true);
  });
});

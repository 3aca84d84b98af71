/**
 * examples/saas-ops (seed 004) end to end: the example's own parley.yaml (with its thread-writer
 * plugin, loaded by path), booted through the test kit with the OpenAI-compatible model, Stripe and
 * Slack on their local fakes, through the environment variables the README documents. Two customer
 * workspaces over the http channel: threads written by the model, AI cost limits ($50 a day,
 * $1000 a month) and the $200-a-day spike alerted in Slack, usage metered to each workspace's Stripe
 * customer, health, and the seed's alert rules (errors over 5% critical in Slack, p95 over 2 s warning).
 *
 * One change to the file: Slack rules are evaluated every 200 ms instead of 30 s, so the error-rate
 * alert arrives within the test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { startFakeStripe, type FakeStripe } from './fakes/stripe-api.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-api.js';
import { exampleAlertRules } from './fixtures/example-alert-rules.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const EXAMPLE = `${ROOT}examples/saas-ops/`;
const FILE = readFileSync(`${EXAMPLE}parley.yaml`, 'utf8');
const CONFIG = FILE.replace('evaluateEveryMs: 30000', 'evaluateEveryMs: 200');
const ACME = 'key-acme-saas-example-0123456789';
const GLOBEX = 'key-globex-saas-example-01234567';
const OPERATOR = 'key-operator-example-0123456789';
const SLACK_TOKEN = 'xoxb-saas-ops-example';

let model: FakeModelApi;
let stripe: FakeStripe;
let slack: FakeSlack;
let gw: TestGateway;
let n = 0;
const user = () => `user-${++n}`;

beforeAll(async () => {
  [model, stripe, slack] = await Promise.all([startFakeModelApi(), startFakeStripe(), startFakeSlack({ token: SLACK_TOKEN })]);
  model.answer = (text) => `1/ ${text.slice(0, 60)}\n2/ That's the thread.`;
  expect(CONFIG).not.toBe(FILE);
  gw = await startTestGateway({
    config: CONFIG,
    baseDir: EXAMPLE,
    env: {
      PARLEY_OPERATOR_KEY: OPERATOR,
      ACME_API_KEY: ACME,
      GLOBEX_API_KEY: GLOBEX,
      OPENAI_BASE_URL: `${model.url}/v1`,
      OPENAI_API_KEY: 'sk-fake-saas-ops',
      STRIPE_SECRET_KEY: stripe.secretKey,
      STRIPE_API_BASE_URL: stripe.baseUrl,
      ACME_STRIPE_CUSTOMER: 'cus_acmeworkspace',
      GLOBEX_STRIPE_CUSTOMER: 'cus_globexworkspace',
      SLACK_BOT_TOKEN: SLACK_TOKEN,
      SLACK_SIGNING_SECRET: 'saas-ops-example-signing-secret',
      SLACK_ALERTS_CHANNEL: 'C0SAASOPS',
      SLACK_API_URL: slack.apiUrl,
    },
  });
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await Promise.all([model?.close(), stripe?.close(), slack?.close()]);
});

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const slackAlert = (key: RegExp) => slack.messages.find((m) => !m.thread_ts && key.test(JSON.stringify(m.blocks)));
const thread = async (tenant: string, key: string, text: string) => {
  const r = await gw.send(tenant, { from: user(), text }, key);
  return { status: r.message.status as string, text: r.replies.map((x) => x.text).join('\n') };
};
const budget = (tenant: string, body: Record<string, unknown>) => gw.request('PUT', `/v1/tenants/${tenant}/budgets`, { key: OPERATOR, body });

describe('examples/saas-ops: seed 004 as a Parley deployment', () => {
  it('passes `parley validate` with nothing set in the environment', () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (/^(OPENAI_|STRIPE_|SLACK_|ACME_|GLOBEX_|PARLEY_OPERATOR_KEY|DATABASE_URL|REDIS_URL)/.test(k)) delete env[k];
    const r = spawnSync(process.execPath, [`${ROOT}bin/parley.js`, 'validate', '--config', `${EXAMPLE}parley.yaml`], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr + r.stdout).toMatch(/is valid: 2 tenant\(s\) \(acme, globex\).*thread-writer/s);
    expect(r.status).toBe(0);
  });

  it('writes a thread with the model for a workspace user, and its tokens are in the workspace ledger', async () => {
    const r = await thread('acme', ACME, 'We shipped dark mode today. It took three sprints.');
    expect(r.text).toBe("1/ We shipped dark mode today. It took three sprints.\n2/ That's the thread.");
    const costs = await waitFor('the spend', async () => {
      const c = (await gw.request('GET', '/v1/tenants/acme/costs?period=day', { key: ACME })).body;
      return c.byCategory.ai?.spent > 0 ? c : undefined;
    });
    expect(Object.keys(costs.byModel)).toEqual(['gpt-4o-mini']);
    expect((await gw.request('GET', '/v1/tenants/globex/costs', { key: ACME })).status).toBe(403);
  });

  it('monitors health: /healthz, and /readyz with the database, jobs, AI, Stripe metering and Slack', async () => {
    expect((await gw.request('GET', '/healthz')).body).toMatchObject({ status: 'ok' });
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    const c = ready.body.components as Record<string, { ok: boolean }>;
    for (const name of ['database', 'jobs', 'ai', 'billing', 'slack-alerts']) expect(c[name], name).toMatchObject({ ok: true });
  });

  it('keeps OpenAI spend to $50 a day and $1000 a month per workspace: at the limit the user is told, and Slack gets a critical alert', async () => {
    const day = (await gw.request('GET', '/v1/tenants/acme/costs?period=day', { key: ACME })).body;
    expect(day.byCategory.ai.budget).toBe(50);
    expect((await gw.request('GET', '/v1/tenants/acme/costs?period=month', { key: ACME })).body.byCategory.ai.budget).toBe(1000);
    // The operator sets today's limit below what was spent (as if $50 had gone): the next call is refused.
    expect((await budget('acme', { category: 'ai', period: 'day', limitUsd: 0.000001 })).status).toBe(200);
    const calls = model.calls.length;
    const refused = await thread('acme', ACME, 'Another launch post please');
    expect(refused.text).toBe("You've reached your plan's AI limit for now. Threads will be back when it resets.");
    expect(refused.status).not.toBe('failed');
    expect(model.calls.length).toBe(calls);
    const alert = await waitFor('the budget alert in Slack', () => slackAlert(/cost-guard\.budget:ai:day:[^"]+:reached/));
    expect(alert.channel).toBe('C0SAASOPS');
    expect(alert.text).toContain('<!here>');
    expect(JSON.stringify(alert.blocks)).toContain('CRITICAL');
    expect((await budget('acme', { category: 'ai', period: 'day', reset: true })).status).toBe(200);
    expect((await thread('acme', ACME, 'Back again')).text).toMatch(/^1\/ Back again/);
  });

  it('alerts Slack when a workspace spends over $200 in a day', async () => {
    for (const period of ['day', 'month']) expect((await budget('globex', { category: 'ai', period, limitUsd: null })).status).toBe(200);
    const price = (usd: number | null) => gw.request('PUT', '/v1/costs/prices', { key: OPERATOR, body: { prices: ['input', 'output'].map((d) => ({ kind: `model.tokens.${d}`, tenant: 'globex', model: 'gpt-4o-mini', usd })) } });
    expect((await price(1)).status).toBe(200);
    const alert = await waitFor('the spike alert in Slack', async () => {
      await thread('globex', GLOBEX, 'A long announcement that costs a lot at a dollar a token');
      return slackAlert(/cost-guard\.spike:/);
    });
    expect(JSON.stringify(alert.blocks)).toMatch(/globex: today's spend \$\d+\.\d\d passed the spike threshold of \$200\.00/);
    expect((await price(null)).status).toBe(200);
    for (const period of ['day', 'month']) expect((await budget('globex', { category: 'ai', period, reset: true })).status).toBe(200);
  });

  it("meters each workspace's usage to its Stripe customer through Billing Meters, once per hour bucket, and reconciles", async () => {
    const hour = 3_600_000;
    const bucket = Math.floor(Date.now() / hour) * hour - 3 * hour;
    // Traffic of three hours ago (the clock cannot be moved in a running gateway; the ledger can be written for then).
    await gw.gateway.usage.record('thread-writer', { tenantId: 'acme', kind: 'model.tokens.input', quantity: 1200, unit: 'token', ref: 'metering-1', at: new Date(bucket + 60_000) });
    await gw.gateway.usage.record('thread-writer', { tenantId: 'acme', kind: 'model.tokens.output', quantity: 300, unit: 'token', ref: 'metering-2', at: new Date(bucket + 120_000) });
    await gw.gateway.usage.record('thread-writer', { tenantId: 'globex', kind: 'model.tokens.input', quantity: 50, unit: 'token', ref: 'metering-3', at: new Date(bucket + 60_000) });
    expect((await gw.request('POST', '/v1/billing/usage/report', { key: OPERATOR })).status).toBe(200);
    const tokens = (customer: string) => stripe.meterEvents.filter((e) => e.event_name === 'parley_ai_tokens' && e.payload.stripe_customer_id === customer && e.timestamp === bucket / 1000).map((e) => Number(e.payload.value));
    expect(tokens('cus_acmeworkspace')).toEqual([1500]);
    expect(tokens('cus_globexworkspace')).toEqual([50]);
    // Run again: nothing is billed twice.
    expect((await gw.request('POST', '/v1/billing/usage/report', { key: OPERATOR })).status).toBe(200);
    expect(tokens('cus_acmeworkspace')).toEqual([1500]);
    const reports = await gw.request('GET', '/v1/tenants/acme/billing/meter-reports?status=sent', { key: ACME });
    expect(reports.body.reports).toEqual(expect.arrayContaining([expect.objectContaining({ meter: 'parley_ai_tokens', value: 1500 })]));
    // Stripe's meter summaries agree with the ledger for every workspace and meter.
    const reconciled = await gw.request('POST', '/v1/billing/usage/reconcile', { key: OPERATOR });
    const tokenResults = (reconciled.body.results as { tenantId: string; meter: string; result: string }[]).filter((r) => r.meter === 'parley_ai_tokens');
    expect(tokenResults.map((r) => `${r.tenantId}:${r.result}`).sort()).toEqual(['acme:match', 'globex:match']);
    expect((await gw.request('GET', '/v1/tenants/acme/billing/meter-reports', { key: GLOBEX })).status).toBe(403);
    expect((await gw.request('POST', '/v1/billing/usage/report', { key: ACME })).status).toBe(403);
  });

  it('alerts at the seed thresholds: p95 over 2 s a warning, errors over 5% critical', () => {
    const { raised } = exampleAlertRules(FILE, { tenant: 'acme', channel: 'http' }, [0.5, 1, 2, 5, Infinity]);
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const fast = Array<number>(100).fill(0.4);
    raised(t0, [], 0, 0, { 'queue-depth': {} });
    expect(raised(t0 + 60_000, fast, 100, 4)).toEqual([]);
    const slow = [...fast, ...Array<number>(40).fill(4)];
    expect(raised(t0 + 120_000, slow, 140, 6)).toEqual(['rule.api-response-time:warning']);
    expect(raised(t0 + 180_000, slow, 150, 16)).toEqual(['rule.api-response-time:warning', 'rule.error-rate:critical']);
  });

  // Last: it opens the AI breaker for a while.
  it('posts a critical error-rate alert to Slack when over 5% of a workspace\'s requests fail, and the users get the fallback reply', async () => {
    model.failNext(...Array.from({ length: 12 }, () => ({ status: 500 as const })));
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await thread('acme', ACME, `thread number ${i}`));
    expect(results.filter((r) => r.status === 'failed').length).toBeGreaterThanOrEqual(5);
    expect(results.find((r) => r.status === 'failed')!.text).toBe("Sorry, we couldn't write that thread. Please try again in a moment.");
    const alert = await waitFor('the error-rate alert in Slack', () => slackAlert(/rule\.error-rate/));
    expect(JSON.stringify(alert.blocks)).toMatch(/CRITICAL.*messages failed/);
    expect(JSON.stringify(alert.blocks)).toContain('acme');
  });
});

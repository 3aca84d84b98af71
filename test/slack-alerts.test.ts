/**
 * slack-alerts end to end: a real gateway, Bolt's Web API client against the fake Slack API on
 * 127.0.0.1, interactive payloads signed the way Slack signs them, and rules over live metrics.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeSlack, type FakeSlack, type FakeSlackMessage } from './fakes/slack-api.js';
import { signSlackRequest } from './fakes/slack-sign.js';
import type { AlertApi } from '../core/plugin.js';
import { hashAddress } from '../core/logger.js';

const TOKEN = 'xoxb-parley-test';
const SIGNING_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const DASHBOARD = 'https://grafana.example.com/d/parley?var-tenant={tenant}&alert={key}';

let slack: FakeSlack;
let gw: TestGateway;
let alerts: AlertApi;

beforeAll(async () => {
  slack = await startFakeSlack({ token: TOKEN });
  const tenant = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    apiKeys: [`${id}-key`],
    fallbackReply: 'Sorry, something went wrong.',
    pipeline: ['alert-probe.fail', 'alert-probe.escalate', 'keyword-replies'],
    plugins: { http: {}, 'keyword-replies': { defaultReply: 'ok' }, ...extra },
  });
  gw = await startTestGateway({
    config: {
      plugins: [
        {
          name: 'slack-alerts',
          options: {
            token: TOKEN,
            signingSecret: SIGNING_SECRET,
            apiUrl: slack.apiUrl,
            defaultChannel: 'C0OPS',
            tenantChannels: { acme: 'C0ACME' },
            quietPeriodMs: 600_000,
            dashboardUrl: DASHBOARD,
            criticalMention: '<!here>',
            evaluateEveryMs: 100,
            retries: 2,
            rules: [
              { kind: 'error-rate', windowMs: 2_000, threshold: 0.5, minMessages: 3, severity: 'critical' },
              { kind: 'dead-letters', windowMs: 60_000, threshold: 1, severity: 'warning' },
            ],
          },
        },
        'http',
        'keyword-replies',
        { name: 'alert-probe' },
      ],
      tenants: [tenant('acme'), tenant('beta', { 'slack-alerts': { channel: 'C0BETA' } }), tenant('gamma')],
    },
    catalogue: { 'alert-probe': fileURLToPath(new URL('./fixtures/slack-alerts-probe.ts', import.meta.url)) },
  });
  alerts = gw.gateway.alerts.apiFor('test-plugin');
});

afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await slack?.close();
});

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const mentions = (m: FakeSlackMessage, key: string) => JSON.stringify(m.blocks ?? '').includes(`\`${key}\``);
const messagesFor = (key: string) => slack.messages.filter((m) => !m.thread_ts && mentions(m, key));
const blocksOf = (m: FakeSlackMessage) => m.blocks as { type: string; text?: { text: string }; fields?: { text: string }[]; elements?: Record<string, unknown>[] }[];
const header = (m: FakeSlackMessage) => blocksOf(m).find((b) => b.type === 'header')!.text!.text;
const fields = (m: FakeSlackMessage) => blocksOf(m).find((b) => b.fields)!.fields!.map((f) => f.text);
const context = (m: FakeSlackMessage) => JSON.stringify(blocksOf(m).find((b) => b.type === 'context'));
const buttons = (m: FakeSlackMessage) => blocksOf(m).find((b) => b.type === 'actions')?.elements ?? [];

async function raised(key: string, input: Omit<Parameters<AlertApi['raise']>[0], 'key'>): Promise<FakeSlackMessage> {
  alerts.raise({ key, ...input });
  await gw.gateway.alerts.flush();
  return waitFor(`a Slack message for ${key}`, () => messagesFor(key)[0]);
}

function actionRequest(message: FakeSlackMessage, user = { id: 'U0ONCALL', username: 'dana', name: 'dana' }) {
  const ack = buttons(message).find((b) => b['action_id'] === 'parley_ack')!;
  const payload = {
    type: 'block_actions',
    user: { ...user, team_id: 'T0FAKETEAM' },
    api_app_id: 'A0FAKEAPP',
    token: 'verification-token-unused',
    container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
    trigger_id: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
    team: { id: 'T0FAKETEAM', domain: 'parley-test' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: message.channel, name: 'ops' },
    message: { type: 'message', ts: message.ts, text: message.text, blocks: message.blocks },
    response_url: 'https://hooks.slack.com/actions/T0FAKETEAM/1/abc',
    actions: [{ type: 'button', action_id: 'parley_ack', block_id: 'parley_alert_actions', text: { type: 'plain_text', text: 'Acknowledge' }, value: ack['value'], style: 'primary', action_ts: String(Date.now() / 1000) }],
  };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

const postAction = (body: string, headers: Record<string, string>) =>
  gw.request('POST', '/slack/actions', { raw: body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });

describe('alerts raised by plugins reach Slack', () => {
  it('posts Block Kit with severity, tenant, figures, a dashboard link and an Acknowledge button to the tenant channel', async () => {
    const m = await raised('whatsapp-web.logged-out', { severity: 'critical', tenantId: 'acme', summary: 'WhatsApp number +15550001111 was logged out', details: { number: '+15550001111', reconnects: 3 } });
    expect(m.channel).toBe('C0ACME');
    expect(header(m)).toBe('🔴 CRITICAL · WhatsApp number +15550001111 was logged out');
    expect(fields(m)).toEqual(expect.arrayContaining(['*Tenant*\nacme', '*Severity*\ncritical', '*Alert*\n`whatsapp-web.logged-out`', '*number*\n+15550001111', '*reconnects*\n3']));
    expect(buttons(m)).toEqual([
      expect.objectContaining({ action_id: 'parley_ack', value: 'acme/whatsapp-web.logged-out', text: { type: 'plain_text', text: 'Acknowledge' } }),
      expect.objectContaining({ url: 'https://grafana.example.com/d/parley?var-tenant=acme&alert=whatsapp-web.logged-out' }),
    ]);
    expect(m.text).toBe('<!here> [CRITICAL] acme: WhatsApp number +15550001111 was logged out');
    // The log is always a sink too.
    expect(gw.logs.find((l) => l['msg'] === 'alert firing: WhatsApp number +15550001111 was logged out')).toMatchObject({ level: 50, alert: { key: 'whatsapp-web.logged-out', tenant: 'acme', severity: 'critical' } });
  });

  it('sends a tenant with its own channel setting there, and alerts without a tenant to the ops default', async () => {
    expect((await raised('budget.threshold', { severity: 'warning', tenantId: 'beta', summary: 'Model spend at 80% of budget' })).channel).toBe('C0BETA');
    expect((await raised('budget.monthly', { severity: 'warning', tenantId: 'gamma', summary: 'Model spend at 80% of budget' })).channel).toBe('C0OPS');
    expect((await raised('storage.slow', { severity: 'warning', summary: 'Database answers slowly' })).channel).toBe('C0OPS');
  });

  it('keeps info alerts in the log only', async () => {
    alerts.raise({ key: 'test.info-only', severity: 'info', tenantId: 'acme', summary: 'FYI' });
    await gw.gateway.alerts.flush();
    await new Promise((r) => setTimeout(r, 150));
    expect(messagesFor('test.info-only')).toHaveLength(0);
  });

  it('posts an alert a pipeline stage raises (a crisis escalation) with the raising plugin as source', async () => {
    const r = await gw.send('acme', { from: 'alice', text: 'this is a crisis' });
    expect(r.replies.map((x) => x.text)).toEqual(['A member of our team will call you.']);
    const m = await waitFor('the crisis alert', () => messagesFor('crisis.escalation')[0]);
    expect(m.channel).toBe('C0ACME');
    expect(context(m)).toContain('source: alert-probe');
  });
});

describe('one Slack message per alert', () => {
  it('edits the original message when the alert resolves, instead of posting again', async () => {
    const m = await raised('test.resolve', { severity: 'warning', tenantId: 'acme', summary: 'Queue slow' });
    alerts.resolve('test.resolve', 'acme');
    await gw.gateway.alerts.flush();
    await waitFor('the edit', () => m.edits === 1);
    expect(messagesFor('test.resolve')).toHaveLength(1);
    expect(header(m)).toBe('✅ RESOLVED · Queue slow');
    expect(context(m)).toMatch(/Resolved <!date\^\d+/);
    expect(buttons(m).some((b) => b['action_id'] === 'parley_ack')).toBe(false);
  });

  it('does not post the same key again within its quiet period: it re-opens the first message', async () => {
    const m = await raised('test.flap', { severity: 'warning', tenantId: 'acme', summary: 'Flapping' });
    alerts.resolve('test.flap', 'acme');
    alerts.raise({ key: 'test.flap', severity: 'warning', tenantId: 'acme', summary: 'Flapping' });
    await gw.gateway.alerts.flush();
    await waitFor('the re-opened message', () => m.edits === 2 && header(m).startsWith('🟠 WARNING'));
    expect(messagesFor('test.flap')).toHaveLength(1);
    expect(context(m)).toContain('fired 2 times');
    expect(await gw.metrics()).toMatch(/parley_slack_alerts_deliveries_total\{result="suppressed"\} [1-9]/);
  });

  it('posts a new message once the quiet period has passed', async () => {
    await raised('test.later', { severity: 'warning', tenantId: 'acme', summary: 'Again later' });
    alerts.resolve('test.later', 'acme');
    await gw.gateway.alerts.flush();
    await gw.gateway.db.pool.query(`UPDATE slack_alerts SET last_posted_at = now() - interval '11 minutes' WHERE key = 'test.later'`);
    alerts.raise({ key: 'test.later', severity: 'warning', tenantId: 'acme', summary: 'Again later' });
    await gw.gateway.alerts.flush();
    const second = await waitFor('a second message', () => messagesFor('test.later')[1]);
    expect(header(second)).toBe('🟠 WARNING · Again later');
    expect(context(second)).not.toContain('fired');
  });

  it('announces an escalation to critical in the thread, since edits notify nobody', async () => {
    const m = await raised('test.escalate', { severity: 'warning', tenantId: 'acme', summary: 'Error rate rising' });
    alerts.raise({ key: 'test.escalate', severity: 'critical', tenantId: 'acme', summary: 'Error rate high' });
    await gw.gateway.alerts.flush();
    expect(header(m)).toBe('🔴 CRITICAL · Error rate high');
    const reply = slack.messages.find((x) => x.thread_ts === m.ts);
    expect(reply?.text).toBe('<!here> Escalated to *critical*: Error rate high');
  });
});

describe('Slack rate limits and outages', () => {
  it('waits out a 429 with Retry-After and posts once', async () => {
    slack.rateLimitNext(1, 1);
    const before = slack.calls.length;
    const m = await raised('test.ratelimited', { severity: 'warning', tenantId: 'acme', summary: 'Posted after a 429' });
    const calls = slack.calls.slice(before).filter((c) => c.method === 'chat.postMessage');
    expect(calls.map((c) => c.rateLimited)).toEqual([true, false]);
    expect(messagesFor('test.ratelimited')).toEqual([m]);
  });

  it('keeps an alert Slack refused and delivers it on a later tick', async () => {
    slack.rateLimitNext(3, 0);
    alerts.raise({ key: 'test.outage', severity: 'critical', tenantId: 'gamma', summary: 'Delivered after the outage' });
    await gw.gateway.alerts.flush();
    expect(messagesFor('test.outage')).toHaveLength(0);
    expect(gw.logs.some((l) => l['msg'] === 'alert sink failed' && l['alert'] === 'test.outage')).toBe(true);
    const m = await waitFor('the retried post', () => messagesFor('test.outage')[0]);
    expect(m.channel).toBe('C0OPS');
  });
});

describe('the Acknowledge button', () => {
  it('is verified by Bolt, recorded with who clicked, and shown on the message without the button', async () => {
    const m = await raised('test.ack', { severity: 'critical', tenantId: 'acme', summary: 'Needs a human' });
    const body = actionRequest(m);
    const started = Date.now();
    const r = await postAction(body, signSlackRequest(SIGNING_SECRET, body));
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3_000);
    const { rows } = await gw.gateway.db.pool.query(`SELECT a.acked_by, a.acked_by_name, k.user_id, k.channel, k.ts FROM slack_alerts a JOIN slack_alert_acks k ON k.alert_id = a.id WHERE a.id = 'acme/test.ack'`);
    expect(rows).toEqual([{ acked_by: 'U0ONCALL', acked_by_name: 'dana', user_id: 'U0ONCALL', channel: 'C0ACME', ts: m.ts }]);
    await waitFor('the acknowledged message', () => context(m).includes('acknowledged by <@U0ONCALL>'));
    expect(buttons(m).some((b) => b['action_id'] === 'parley_ack')).toBe(false);
    expect(await gw.metrics()).toMatch(/parley_slack_alerts_acknowledged_total 1/);
  });

  it('refuses a forged or replayed request with 401 and records nothing', async () => {
    const m = await raised('test.forged', { severity: 'critical', tenantId: 'acme', summary: 'Forged ack' });
    const body = actionRequest(m, { id: 'U0MALLORY', username: 'mallory', name: 'mallory' });
    expect((await postAction(body, signSlackRequest('not-the-signing-secret', body))).status).toBe(401);
    expect((await postAction(body, signSlackRequest(SIGNING_SECRET, body, Math.floor(Date.now() / 1000) - 6 * 60))).status).toBe(401);
    expect((await postAction(body, {})).status).toBe(401);
    const { rows } = await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM slack_alert_acks WHERE alert_id = 'acme/test.forged'`);
    expect(rows[0].n).toBe(0);
    expect(buttons(m).some((b) => b['action_id'] === 'parley_ack')).toBe(true);
  });

  it('refuses a request signed with a timestamp from the future (1 hour, or just past 5 minutes) with 401', async () => {
    const m = await raised('test.future', { severity: 'critical', tenantId: 'acme', summary: 'Signed ahead of time' });
    const body = actionRequest(m);
    const now = Math.floor(Date.now() / 1000);
    expect((await postAction(body, signSlackRequest(SIGNING_SECRET, body, now + 3600))).status).toBe(401);
    expect((await postAction(body, signSlackRequest(SIGNING_SECRET, body, now + 6 * 60))).status).toBe(401);
    const { rows } = await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM slack_alert_acks WHERE alert_id = 'acme/test.future'`);
    expect(rows[0].n).toBe(0);
    expect((await postAction(body, signSlackRequest(SIGNING_SECRET, body, now + 60))).status).toBe(200);
  });
});

describe('rules over the gateway metrics', () => {
  it('raises the error-rate rule for the tenant whose pipelines fail, then resolves it on the same message', async () => {
    for (let i = 0; i < 3; i++) await gw.send('gamma', { from: `user-${i}`, text: 'boom' });
    const m = await waitFor('the error-rate alert', () => messagesFor('rule.error-rate').find((x) => fields(x).includes('*Tenant*\ngamma')));
    expect(m.channel).toBe('C0OPS');
    expect(header(m)).toBe('🔴 CRITICAL · 100% of messages failed in the last 2 s');
    expect(fields(m)).toEqual(expect.arrayContaining(['*Error rate*\n100%', '*Failed*\n3', '*Messages*\n3', '*Threshold*\n50%']));
    await waitFor('the resolution', () => header(m).startsWith('✅ RESOLVED'), 8_000);
    expect(messagesFor('rule.error-rate').filter((x) => fields(x).includes('*Tenant*\ngamma'))).toHaveLength(1);
  });

  it('raises dead letters from the outbox for their tenant, and resolves when they are gone', async () => {
    const { rows } = await gw.gateway.db.pool.query(`INSERT INTO parley_outbox (tenant_id, channel, to_address, body, status) VALUES ('beta', 'http', 'bob', 'lost reply', 'dead') RETURNING id`);
    const m = await waitFor('the dead-letter alert', () => messagesFor('rule.dead-letters')[0]);
    expect(m.channel).toBe('C0BETA');
    expect(fields(m)).toEqual(expect.arrayContaining(['*Tenant*\nbeta', '*Dead letters*\n1']));
    await gw.gateway.db.pool.query(`DELETE FROM parley_outbox WHERE id = $1`, [rows[0].id]);
    await waitFor('the resolution', () => header(m).startsWith('✅ RESOLVED'));
  });
});

describe('data-subject requests', () => {
  it('export the alerts that name a person by hash, and erasure removes the hash but keeps the alert', async () => {
    const person = '+15559871234';
    await raised('test.subject-alert', { severity: 'critical', tenantId: 'acme', summary: 'A person needs help', details: { from: hashAddress(person), stage: 'crisis-guard' } });
    const subject = { tenantId: 'acme', addresses: [person] };
    const slackPart = async () => (await gw.gateway.exportSubject(subject)).find((p) => p.provider === 'slack-alerts.alerts')!.records;
    expect(await slackPart()).toMatchObject([{ key: 'test.subject-alert', details: { from: hashAddress(person) } }]);
    expect((await gw.gateway.exportSubject({ tenantId: 'acme', addresses: ['+15550000000'] })).find((p) => p.provider === 'slack-alerts.alerts')!.records).toEqual([]);
    await gw.gateway.eraseSubject(subject, 'test');
    expect(await slackPart()).toEqual([]);
    const { rows } = await gw.gateway.db.pool.query(`SELECT details FROM slack_alerts WHERE key = 'test.subject-alert'`);
    expect(rows).toEqual([{ details: { stage: 'crisis-guard' } }]);
  });
});

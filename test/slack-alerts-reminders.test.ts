/**
 * slack-alerts reminders on a recurring job (`ctx.schedule`): every tick, each alert still firing that
 * nobody acknowledged gets a reminder in its thread; an acknowledged one gets none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-api.js';

const TOKEN = 'xoxb-parley-test';
let slack: FakeSlack;
let gw: TestGateway;

beforeAll(async () => {
  slack = await startFakeSlack({ token: TOKEN });
  gw = await startTestGateway({
    config: {
      plugins: [{ name: 'slack-alerts', options: { token: TOKEN, signingSecret: 'secret-0123456789', apiUrl: slack.apiUrl, defaultChannel: 'C0OPS', rules: [], remindUnacknowledged: { cron: '*/1 * * * * *', timezone: 'Europe/Paris' } } }],
      tenants: [{ id: 'acme', plugins: { 'slack-alerts': { channel: 'C0ACME' } } }],
    },
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await slack?.close();
});

const reminders = (summary: string) => slack.messages.filter((m) => m.thread_ts && m.text?.includes(`Still firing and not acknowledged: ${summary}`));

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  expect(ok(), what).toBe(true);
}

describe('reminders of unacknowledged alerts', () => {
  it('reminds in the thread on every tick until someone acknowledges', async () => {
    const alerts = gw.gateway.alerts.apiFor('ops-probe');
    alerts.raise({ key: 'queue.stuck', tenantId: 'acme', severity: 'critical', summary: 'Queue stuck' });
    alerts.raise({ key: 'disk.full', tenantId: 'acme', severity: 'warning', summary: 'Disk full' });
    await until('a reminder of each alert', () => reminders('Queue stuck').length >= 1 && reminders('Disk full').length >= 1);
    const root = slack.messages.find((m) => !m.thread_ts && m.text?.includes('Queue stuck'))!;
    expect(reminders('Queue stuck')[0]).toMatchObject({ channel: 'C0ACME', thread_ts: root.ts });

    await gw.gateway.db.pool.query(`INSERT INTO slack_alert_acks (alert_id, tenant_id, user_id) VALUES ('acme/queue.stuck', 'acme', 'U0ONCALL')`);
    const acknowledgedAfter = reminders('Queue stuck').length;
    const diskBefore = reminders('Disk full').length;
    // Two later ticks reminded of the other alert: the acknowledged one was passed over in both.
    await until('two more reminders of the unacknowledged alert', () => reminders('Disk full').length >= diskBefore + 2);
    expect(reminders('Queue stuck').length).toBeLessThanOrEqual(acknowledgedAfter + 1);
  });
});

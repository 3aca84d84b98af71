/** Storage and jobs: these run on the embedded default and again on PostgreSQL 15 + Redis in CI. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';
import { TEST_BACKEND, externalServices } from './backend.js';

let gw: TestGateway;
const skip = TEST_BACKEND === 'external' ? await externalServices() : null;

beforeAll(async () => {
  if (skip) return;
  gw = await startTestGateway({ config: twoTenants({ outbox: { attempts: 3, backoffMs: 30 } }), catalogue });
});
afterAll(() => gw?.stop({ cleanup: true }));
beforeEach(() => probeControl.reset());

const send = (text: string, to = '+15557770001') => gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'probe-channel', to, text });

describe.skipIf(skip)(`the outbox on the ${TEST_BACKEND} backend`, () => {
  it('sends a queued message through the channel sender and records its history', async () => {
    const item = await send('reminder: tomorrow 9am');
    const items = await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    expect(items.find((i) => i.id === item.id)!.providerMessageId).toMatch(/^probe-/);
    expect(probeControl.sends.map((m) => m.text)).toEqual(['reminder: tomorrow 9am']);
    const detail = await gw.request('GET', `/v1/tenants/acme/outbox/${item.id}`, { key: KEYS.acme });
    expect(detail.body.events.map((e: { status: string }) => e.status)).toEqual(['pending', 'sent']);
  });

  it('retries a retryable failure with backoff, then succeeds', async () => {
    probeControl.script = ['retryable', 'retryable'];
    const item = await send('retry me');
    const items = await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    expect(items.find((i) => i.id === item.id)!.attempts).toBe(3);
    expect(probeControl.sends).toHaveLength(1);
    const detail = await gw.request('GET', `/v1/tenants/acme/outbox/${item.id}`, { key: KEYS.acme });
    expect(detail.body.events.map((e: { status: string }) => e.status)).toEqual(['pending', 'retrying', 'retrying', 'sent']);
  });

  it('turns a permanent failure into a dead letter with the provider code, visible in the API and metrics', async () => {
    probeControl.script = ['permanent'];
    const item = await send('to a bad number');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'dead'));
    const dead = await gw.request('GET', '/v1/tenants/acme/dead-letters', { key: KEYS.acme });
    expect(dead.body.deadLetters.find((d: { id: string }) => d.id === item.id)).toMatchObject({ status: 'dead', errorCode: '21211', attempts: 1 });
    expect(await gw.metrics()).toMatch(/parley_messages_out_total\{tenant="acme",channel="probe-channel",status="dead"\} [1-9]/);
  });

  it('dead-letters after the retry limit and can be retried from the admin API', async () => {
    probeControl.script = ['retryable', 'retryable', 'retryable'];
    const item = await send('always busy');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'dead'));
    const retry = await gw.request('POST', `/v1/tenants/acme/outbox/${item.id}/retry`, { key: KEYS.acme });
    expect(retry.status).toBe(202);
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    expect(probeControl.sends.map((m) => m.text)).toEqual(['always busy']);
  });

  it('does not send twice when a job runs again after the provider accepted the message', async () => {
    const item = await send('exactly once');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    const again = await gw.gateway.outbox.process({ outboxId: item.id, tenantId: 'acme' }, 1);
    expect(again).toBe('skipped (sent)');
    await gw.gateway.outbox.enqueue([item], 99);
    await new Promise((r) => setTimeout(r, 300));
    expect(probeControl.sends.filter((m) => m.id === item.id)).toHaveLength(1);
  });

  it('never sends to a number that opted out, whatever queued the message', async () => {
    await gw.gateway.consent.set({ tenantId: 'acme', address: 'whatsapp:+15557770009', status: 'opted-out', source: 'test' });
    const item = await send('campaign', '+15557770009');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'blocked'));
    expect(probeControl.sends).toHaveLength(0);
    const consent = await gw.request('GET', '/v1/tenants/acme/consent/+15557770009', { key: KEYS.acme });
    expect(consent.body).toMatchObject({ status: 'opted-out', history: [{ status: 'opted-out', source: 'test' }] });
    expect(await gw.gateway.consent.isOptedOut('globex', '+15557770009')).toBe(false);
  });

  it('records delivery statuses idempotently and never moves a status backwards', async () => {
    const item = await send('status me');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    const [sent] = (await gw.outbox('acme')).filter((i) => i.id === item.id);
    const update = (status: 'delivered' | 'read' | 'sent' | 'failed') =>
      gw.gateway.services().recordDeliveryStatus({ tenantId: 'acme', channel: 'probe-channel', providerMessageId: sent!.providerMessageId!, status });
    expect(await update('read')).toMatchObject({ updated: true });
    expect(await update('delivered')).toMatchObject({ updated: false });
    expect(await update('failed')).toMatchObject({ updated: false });
    await update('read');
    const detail = await gw.request('GET', `/v1/tenants/acme/outbox/${item.id}`, { key: KEYS.acme });
    expect(detail.body.item.status).toBe('read');
    expect(detail.body.events.filter((e: { status: string }) => e.status === 'read')).toHaveLength(1);
    const other = await gw.gateway.services().recordDeliveryStatus({ tenantId: 'globex', channel: 'probe-channel', providerMessageId: sent!.providerMessageId!, status: 'failed' });
    expect(other).toEqual({ updated: false, outboxId: null });
  });

  it('re-enqueues outbox items whose job was lost', async () => {
    const { rows } = await gw.gateway.db.pool.query(
      `INSERT INTO parley_outbox (tenant_id, channel, to_address, body, status, updated_at) VALUES ('acme', 'probe-channel', '+15557770011', 'orphan', 'pending', now() - interval '5 minutes') RETURNING id`,
    );
    await (gw.gateway as unknown as { sweep(): Promise<void> }).sweep();
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === rows[0].id && i.status === 'sent'));
  });
});

describe.skipIf(skip)(`storage on the ${TEST_BACKEND} backend`, () => {
  it('keeps conversations, messages and the outbox across a restart', async () => {
    const first = await startTestGateway({ config: twoTenants(), catalogue });
    const r = await first.send('globex', { from: 'restart-person', text: 'remember me' });
    await first.stop();
    const second = await startTestGateway({ config: twoTenants(), catalogue, dataDir: first.dataDir, ...(first.databaseUrl ? { databaseUrl: first.databaseUrl } : {}) });
    try {
      const detail = await second.request('GET', `/v1/tenants/globex/messages/${r.message.id}`, { key: KEYS.globex });
      expect(detail.status).toBe(200);
      expect(detail.body.message.text).toBe('remember me');
      expect(detail.body.replies[0].text).toBe('echo: remember me');
      const again = await second.send('globex', { from: 'restart-person', text: 'and again' });
      expect(again.message.conversationId).toBe(r.message.conversationId);
    } finally {
      await second.stop({ cleanup: true });
    }
  });

  it('applies migrations once, even when run twice at the same time', async () => {
    const { applyMigrations } = await import('../core/storage/migrations.js');
    const migration = [{ id: '001_test', sql: 'CREATE TABLE probe_migration_test (id int); INSERT INTO probe_migration_test VALUES (1);' }];
    const results = await Promise.all([applyMigrations(gw.gateway.db.pool, 'probe-test', migration), applyMigrations(gw.gateway.db.pool, 'probe-test', migration)]);
    expect(results.flat()).toEqual(['001_test']);
    const { rows } = await gw.gateway.db.pool.query('SELECT count(*)::int AS n FROM probe_migration_test');
    expect(rows[0].n).toBe(1);
    expect(await applyMigrations(gw.gateway.db.pool, 'probe-test', migration)).toEqual([]);
  });
});

describe.skipIf(skip)(`consent and provider signals on the ${TEST_BACKEND} backend`, () => {
  const receive = (text: string, from: string, extra: Partial<import('../core/message.js').InboundDraft> = {}, options: import('../core/gateway-types.js').ReceiveOptions = { inline: { budgetMs: 5000 } }) =>
    gw.gateway.receive({ channel: 'probe-channel', from, to: '+15550001111', text, providerMessageId: `${from}-${text}-${Math.random()}`, ...extra }, options);

  it("runs a channel's first stages before the tenant pipeline, and a stop there keeps the pipeline from running", async () => {
    const r = await receive('gate', '+15557770101');
    expect(r.status).toBe('stopped');
    expect(r.inline.map((i) => i.text)).toEqual(['gated']);
    expect(probeControl.pipelineRuns).toBe(0);
    const normal = await receive('hello', '+15557770101');
    expect(normal.inline.map((i) => i.text)).toEqual(['acme says: hello']);
    expect(probeControl.pipelineRuns).toBe(1);
  });

  it('records inline replies to an opted-out sender as blocked, but lets a consent notice through', async () => {
    await gw.gateway.consent.set({ tenantId: 'acme', address: '+15557770102', status: 'opted-out', source: 'test' });
    const r = await receive('hello', '+15557770102');
    expect(r.inline).toEqual([]);
    const items = (await gw.outbox('acme')).filter((i) => i.inboundId === r.inboundId);
    expect(items).toMatchObject([{ status: 'blocked', errorCode: 'opted-out', text: 'acme says: hello' }]);
    const notice = await receive('gate', '+15557770102');
    expect(notice.inline.map((i) => i.text)).toEqual(['gated']);
    const queued = await receive('gate', '+15557770102', {}, { until: 'recorded' });
    expect(queued.status).toBe('deferred');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === queued.inboundId && i.status === 'sent'));
  });

  it('marks a send the provider refuses for this recipient as blocked, not dead', async () => {
    probeControl.script = ['blocked'];
    const item = await send('to an unsubscribed number', '+15557770103');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'blocked'));
    expect((await gw.outbox('acme')).find((i) => i.id === item.id)).toMatchObject({ errorCode: '21610', attempts: 1 });
  });

  it("waits at least as long as the provider's Retry-After before trying again", async () => {
    probeControl.script = ['rate-limited'];
    const started = Date.now();
    const item = await send('after the rate limit', '+15557770104');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    const { rows } = await gw.gateway.db.pool.query(`SELECT status, at FROM parley_outbox_events WHERE outbox_id = $1 ORDER BY id`, [item.id]);
    const retrying = rows.find((r) => r.status === 'retrying')!.at as Date;
    const sent = rows.find((r) => r.status === 'sent')!.at as Date;
    expect(sent.getTime() - retrying.getTime()).toBeGreaterThanOrEqual(650);
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
  });

  it('returns as soon as the message is recorded when the channel asks, and replies through the outbox', async () => {
    const r = await receive('quick ack', '+15557770105', {}, { until: 'recorded' });
    expect(r.status).toBe('deferred');
    const { rows } = await gw.gateway.db.pool.query('SELECT 1 FROM parley_inbound WHERE id = $1', [r.inboundId]);
    expect(rows).toHaveLength(1);
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === r.inboundId && i.text === 'acme says: quick ack' && i.status === 'sent'));
  });

  it('keeps provider-only statuses (queued, accepted) in the history without changing the status', async () => {
    const item = await send('history only', '+15557770106');
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    const [sent] = (await gw.outbox('acme')).filter((i) => i.id === item.id);
    const r = await gw.gateway.services().recordDeliveryStatus({ tenantId: 'acme', channel: 'probe-channel', providerMessageId: sent!.providerMessageId!, status: 'queued' });
    expect(r.updated).toBe(false);
    const detail = await gw.request('GET', `/v1/tenants/acme/outbox/${item.id}`, { key: KEYS.acme });
    expect(detail.body.item.status).toBe('sent');
    expect(detail.body.events.map((e: { status: string }) => e.status)).toContain('queued');
  });
});

describe.skipIf(skip)(`duplicates of a blocked reply on the ${TEST_BACKEND} backend`, () => {
  it('never hands a blocked reply back to a retried webhook', async () => {
    await gw.gateway.consent.set({ tenantId: 'acme', address: '+15557770201', status: 'opted-out', source: 'test' });
    const draft = { channel: 'probe-channel', from: '+15557770201', to: '+15550001111', text: 'hello', providerMessageId: 'blocked-retry-1' };
    const first = await gw.gateway.receive(draft, { inline: { budgetMs: 5000 } });
    const again = await gw.gateway.receive(draft, { inline: { budgetMs: 5000 } });
    expect(first.inline).toEqual([]);
    expect(again.status).toBe('duplicate');
    expect([...again.inline, ...again.queued]).toEqual([]);
  });
});

/**
 * The usage ledger: plugins record cost events per tenant (idempotent on ref), cost guards and billing
 * read summaries, operators read them on the admin API, and the kernel meters every message sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';
import type { UsageLedger } from '../core/plugin.js';

let gw: TestGateway;
let usage: UsageLedger;

beforeAll(async () => {
  const config = twoTenants({ pipeline: ['probe.echo'] });
  (config.tenants[1] as { timezone?: string }).timezone = 'Asia/Tokyo';
  gw = await startTestGateway({ config, catalogue });
  usage = probeControl.usage!;
});
afterAll(() => gw?.stop({ cleanup: true }));

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await read();
    if (ok(value)) return value;
    if (i > 200) throw new Error(`never reached the expected state: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the usage ledger', () => {
  it('records an event once per ref, even when copies arrive together, under the plugin that recorded it', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => usage.record({ tenantId: 'acme', kind: 'model.tokens.output', quantity: 120, unit: 'token', costUsd: 0.0006, ref: 'msg-1' })));
    expect(results.filter((r) => r.recorded)).toHaveLength(1);
    expect(await usage.record({ tenantId: 'acme', kind: 'model.tokens.output', quantity: 120, unit: 'token', ref: 'msg-1' })).toEqual({ recorded: false });
    // The same ref under another kind or tenant is another event.
    expect(await usage.record({ tenantId: 'acme', kind: 'model.tokens.input', quantity: 40, unit: 'token', ref: 'msg-1' })).toEqual({ recorded: true });
    const { rows } = await gw.gateway.db.pool.query(`SELECT plugin, quantity::int AS quantity FROM parley_usage WHERE tenant_id = 'acme' AND ref = 'msg-1' ORDER BY kind`);
    expect(rows).toEqual([{ plugin: 'probe', quantity: 40 }, { plugin: 'probe', quantity: 120 }]);
  });

  it('sums by kind and unit, or by day in the tenant time zone, for one tenant and period only', async () => {
    const at = (iso: string) => new Date(iso);
    await usage.record({ tenantId: 'globex', kind: 'voice.minutes', quantity: 3, unit: 'minute', costUsd: 0.04, at: at('2026-03-01T14:00:00Z') });
    await usage.record({ tenantId: 'globex', kind: 'voice.minutes', quantity: 2, unit: 'minute', costUsd: 0.02, at: at('2026-03-01T16:00:00Z') });
    await usage.record({ tenantId: 'globex', kind: 'voice.minutes', quantity: 9, unit: 'minute', at: at('2026-04-01T00:00:00Z') });
    await usage.record({ tenantId: 'acme', kind: 'voice.minutes', quantity: 100, unit: 'minute', at: at('2026-03-01T15:00:00Z') });
    const period = { tenantId: 'globex', from: at('2026-03-01T00:00:00Z'), to: at('2026-04-01T00:00:00Z') };
    expect(await usage.summary({ ...period, groupBy: 'kind' })).toEqual([{ kind: 'voice.minutes', unit: 'minute', quantity: 5, costUsd: 0.06, events: 2 }]);
    // 16:00 UTC is already 2 March in Tokyo.
    expect(await usage.summary({ ...period, groupBy: 'day' })).toEqual([
      { kind: 'voice.minutes', unit: 'minute', day: '2026-03-01', quantity: 3, costUsd: 0.04, events: 1 },
      { kind: 'voice.minutes', unit: 'minute', day: '2026-03-02', quantity: 2, costUsd: 0.02, events: 1 },
    ]);
  });

  it("records usage in a plugin's own statement, under its name, once per ref like record", async () => {
    const db = gw.gateway.db.pool;
    const statement = `WITH input AS (
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(tenant_id text, kind text, quantity numeric, unit text, cost_usd numeric, ref text, attributes jsonb)
      ), usage AS (${usage.insertSql('input')})
      SELECT kind, ref FROM usage ORDER BY ref`;
    const rows = (ref: string, quantity: number) => JSON.stringify([{ tenant_id: 'acme', kind: 'sms.segments.out', quantity, unit: 'segment', cost_usd: 0.0079 * quantity, ref, attributes: { via: 'inline' } }]);
    expect((await db.query(statement, [rows('out-1', 2)])).rows).toEqual([{ kind: 'sms.segments.out', ref: 'out-1' }]);
    // A replay, and a record of the same ref, record nothing.
    expect((await db.query(statement, [rows('out-1', 5)])).rows).toEqual([]);
    expect(await usage.record({ tenantId: 'acme', kind: 'sms.segments.out', quantity: 9, unit: 'segment', ref: 'out-1' })).toEqual({ recorded: false });
    const { rows: stored } = await db.query(`SELECT plugin, quantity::int AS quantity, cost_usd::float8 AS cost, attributes FROM parley_usage WHERE tenant_id = 'acme' AND ref = 'out-1'`);
    expect(stored).toEqual([{ plugin: 'probe', quantity: 2, cost: 0.0158, attributes: { via: 'inline' } }]);
  });

  it('refuses a record it cannot keep, with a coded error', async () => {
    await expect(usage.record({ tenantId: 'acme', kind: 'Bad Kind', quantity: 1, unit: 'x' })).rejects.toMatchObject({ code: 'PARLEY_BAD_REQUEST', plugin: 'probe' });
    await expect(usage.record({ tenantId: 'nobody', kind: 'sms.segments', quantity: 1, unit: 'segment' })).rejects.toMatchObject({ code: 'PARLEY_TENANT_UNKNOWN' });
  });

  it('meters every message a channel sent, inline or by the send job, once', async () => {
    const inline = await gw.send('acme', { from: 'meter-1', text: 'hello' });
    const queued = await gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'probe-channel', to: '+15557772001', text: 'reminder' });
    const rows = await until(
      async () => (await gw.gateway.db.pool.query(`SELECT ref, plugin, attributes FROM parley_usage WHERE tenant_id = 'acme' AND kind = 'messages.out' ORDER BY ref`)).rows,
      (r) => r.length >= 2,
    );
    expect(rows).toEqual(
      [
        { ref: inline.replies[0]!.id, plugin: 'http', attributes: { channel: 'http', via: 'inline' } },
        { ref: queued.id, plugin: 'probe-channel', attributes: { channel: 'probe-channel', via: 'api' } },
      ].sort((a, b) => a.ref.localeCompare(b.ref)),
    );
    // A send job that runs again after success finds the item sent and meters nothing.
    await gw.gateway.outbox.process({ outboxId: queued.id, tenantId: 'acme' }, 1);
    const { rows: again } = await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_usage WHERE tenant_id = 'acme' AND kind = 'messages.out'`);
    expect(again[0].n).toBe(2);
  });

  it('is on the admin API, by kind or by day, with the query checked', async () => {
    const r = await gw.request('GET', '/v1/tenants/globex/usage?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&groupBy=day', { key: KEYS.globex });
    expect(r.status).toBe(200);
    expect(r.body.usage.map((u: { day: string; quantity: number }) => [u.day, u.quantity])).toEqual([['2026-03-01', 3], ['2026-03-02', 2]]);
    expect((await gw.request('GET', '/v1/tenants/globex/usage?groupBy=week', { key: KEYS.globex })).status).toBe(400);
    expect((await gw.request('GET', '/v1/tenants/globex/usage?from=yesterday', { key: KEYS.globex })).status).toBe(400);
  });
});

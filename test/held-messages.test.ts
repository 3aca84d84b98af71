/**
 * The kernel's inbound filter (`ctx.inboundFilter`) and held messages (`stage.hold`,
 * `gateway.resume`, `gateway.releaseHeld`), with a probe plugin: the filtered value reaches no table
 * or log, a held message continues once however many resume it at the same time, a resumed run that
 * dies is continued from the same point by recovery, a held reply is released or blocked once.
 * Runs embedded and on PostgreSQL + Redis (PARLEY_TEST_BACKEND=external).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { holdProbe } from './fixtures/hold-probe.js';

const KEY = 'key-acme-hold-0123456789';
const probe = holdProbe();
let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({
    config: {
      plugins: ['http', 'hold-probe'],
      tenants: [
        { id: 'acme', apiKeys: [KEY], pipeline: ['hold-probe.gate', 'hold-probe.answer'], replyPipeline: ['hold-probe.out'], plugins: { http: {}, 'hold-probe': {} } },
        { id: 'other', apiKeys: ['key-other-hold-0123456789'], pipeline: [], plugins: { http: {} } },
      ],
    },
    catalogue: { 'hold-probe': fileURLToPath(new URL('./fixtures/hold-probe.ts', import.meta.url)) },
  });
});
afterAll(() => gw?.stop({ cleanup: true }));

/** Every row of every table (all schemas but the catalogues) as text, for "the value is nowhere" checks. */
async function everyRow(): Promise<string> {
  const db = gw.gateway.db.pool;
  const { rows: tables } = await db.query<{ s: string; t: string }>(
    `SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  const out: string[] = [];
  for (const { s, t } of tables) {
    const { rows } = await db.query(`SELECT to_jsonb(x)::text AS j FROM "${s}"."${t}" x`);
    out.push(...rows.map((r) => r.j as string));
  }
  return out.join('\n');
}

describe('inbound filters', () => {
  it('rewrite the text before it is stored: stages see the filtered text, no table or log has the value', async () => {
    const r = await gw.send('acme', { from: '+15550100001', text: 'my code is SECRET-424242, thanks' });
    expect(r.status).toBe(200);
    expect(r.replies.map((x) => x.text)).toEqual(['answer: my code is [masked], thanks']);
    const { rows } = await gw.gateway.db.pool.query(`SELECT body, attributes FROM parley_inbound WHERE id = $1`, [r.message.id]);
    expect(rows[0]).toEqual({ body: 'my code is [masked], thanks', attributes: { filteredBy: ['hold-probe.mask'] } });
    expect(await everyRow()).not.toContain('424242');
    expect(JSON.stringify(gw.logs)).not.toContain('424242');
  });

  it('apply to the payload, attributes and media captions, and to a parked webhook of the tenant', async () => {
    const result = await gw.gateway.receive({
      channel: 'http', tenantId: 'acme', from: '+15550100002', to: 'acme', text: 'plain', providerMessageId: 'filter-raw-1',
      raw: { Body: 'SECRET-515151', nested: [{ note: 'x SECRET-515151' }] }, attributes: { echo: 'SECRET-515151' }, media: [{ url: 'https://m.example/1', caption: 'SECRET-515151' }],
    });
    expect(result.status).toBe('processed');
    const parked = await gw.gateway.services().park({ tenantId: 'acme', channel: 'http', reason: 'test', payload: { Body: 'call me SECRET-616161' } });
    expect(parked.id).toBeTruthy();
    const rows = await everyRow();
    expect(rows).not.toContain('515151');
    expect(rows).not.toContain('616161');
    // The text itself did not change, so the message is not marked as filtered.
    const { rows: msg } = await gw.gateway.db.pool.query(`SELECT attributes, raw FROM parley_inbound WHERE id = $1`, [result.inboundId]);
    expect(msg[0]).toEqual({ attributes: { echo: '[masked]' }, raw: { Body: '[masked]', nested: [{ note: 'x [masked]' }] } });
  });

  it("apply their unattributed variant to a webhook parked before its tenant is known, and a tenant's filter is not run on it", async () => {
    const parked = await gw.gateway.services().park({ channel: 'http', reason: 'no tenant has this number', payload: { Body: 'card SECRET-717171', To: '+15550109999' }, addresses: ['+15550109999'] });
    const { rows } = await gw.gateway.db.pool.query(`SELECT tenant_id, payload FROM parley_parked_webhooks WHERE id = $1`, [parked.id]);
    expect(rows[0].tenant_id).toBeNull();
    expect(JSON.stringify(rows[0].payload)).toContain('[masked unattributed]');
    expect(await everyRow()).not.toContain('717171');
  });

  it('only touch the tenants the filter chooses', async () => {
    const r = await gw.send('other', { from: '+15550100003', text: 'SECRET-1' }, 'key-other-hold-0123456789');
    const { rows } = await gw.gateway.db.pool.query(`SELECT body FROM parley_inbound WHERE id = $1`, [r.message.id]);
    expect(rows[0].body).toBe('SECRET-1');
  });

  it('fail the message when a filter throws: 500, nothing stored', async () => {
    const r = await gw.request('POST', '/v1/tenants/acme/messages', { key: KEY, body: { from: '+15550100004', text: 'boom-filter SECRET-777', id: 'boom-1' } });
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('PARLEY_INBOUND_FILTER_FAILED');
    const { rows } = await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_inbound WHERE provider_message_id = 'boom-1'`);
    expect(rows[0].n).toBe(0);
  });
});

describe('held messages', () => {
  it('a stage holds a message: later stages wait, the notice is sent, the stage is recorded', async () => {
    const r = await gw.send('acme', { from: '+15550100010', text: 'hold me please' });
    expect(r.message.status).toBe('held');
    expect(r.replies.map((x) => x.text)).toEqual(['We are looking at your message.']);
    expect(probe.answerRuns.get(r.message.id)).toBeUndefined();
    const { rows } = await gw.gateway.db.pool.query(`SELECT status, stop_reason, held_stage, stages FROM parley_inbound WHERE id = $1`, [r.message.id]);
    expect(rows[0]).toMatchObject({ status: 'held', stop_reason: 'needs a look', held_stage: 'hold-probe.gate' });
    expect(rows[0].stages.map((s: { outcome: string }) => s.outcome)).toEqual(['held']);
    const claims = await gw.gateway.db.pool.query(`SELECT 1 FROM parley_inbound_claims WHERE inbound_id = $1`, [r.message.id]);
    expect(claims.rows).toHaveLength(0);
  });

  it('five concurrent resumes continue it once, from the stage after the one that held it', async () => {
    const r = await gw.send('acme', { from: '+15550100011', text: 'hold me again' });
    const id = r.message.id as string;
    probe.approved.add(id);
    const results = await Promise.all(Array.from({ length: 5 }, () => gw.gateway.services().resume('acme', id)));
    expect(results.filter((x) => x.resumed)).toHaveLength(1);
    expect(results.filter((x) => !x.resumed).map((x) => (x as { status: string | null }).status).every((s) => s === 'processing' || s === 'processed')).toBe(true);
    expect(probe.gateRuns.get(id)).toBe(1);
    expect(probe.answerRuns.get(id)).toBe(1);
    // The earlier run's annotations are there for the later stages.
    expect(probe.seen.get(id)).toEqual({ gate: 'seen' });
    const items = await gw.waitForOutbox('acme', (all) => all.filter((i) => i.inboundId === id && i.status === 'delivered').length === 1 && all.some((i) => i.inboundId === id && i.text.startsWith('answer')));
    const mine = items.filter((i) => i.inboundId === id);
    expect(mine.map((i) => i.text)).toEqual(['We are looking at your message.', 'answer: hold me again']);
    const { rows } = await gw.gateway.db.pool.query(`SELECT status, stages FROM parley_inbound WHERE id = $1`, [id]);
    expect(rows[0].status).toBe('processed');
    expect(rows[0].stages.map((s: { stage: string; outcome: string }) => `${s.stage}:${s.outcome}`)).toEqual(['hold-probe.gate:held', 'hold-probe.answer:replied']);
    expect((await gw.gateway.services().resume('acme', id)).resumed).toBe(false);
  });

  it('closes a held message without running a stage ({ stop })', async () => {
    const r = await gw.send('acme', { from: '+15550100012', text: 'hold me and drop' });
    const stopped = await gw.gateway.services().resume('acme', r.message.id, { stop: 'rejected' });
    expect(stopped).toMatchObject({ resumed: true, result: { status: 'stopped', stopReason: 'rejected' } });
    expect(probe.answerRuns.get(r.message.id)).toBeUndefined();
    expect((await gw.gateway.services().resume('acme', r.message.id)).resumed).toBe(false);
    expect((await gw.gateway.services().resume('acme', 'not-a-uuid')).resumed).toBe(false);
  });

  it('refuses to resume after a stage that is not in the pipeline', async () => {
    const r = await gw.send('acme', { from: '+15550100013', text: 'hold me somewhere' });
    await expect(gw.gateway.services().resume('acme', r.message.id, { afterStage: 'nope' })).rejects.toThrow(/no longer in the pipeline/);
  });

  it('a resumed run that died is continued by recovery from the same point', async () => {
    const r = await gw.send('acme', { from: '+15550100014', text: 'hold me then crash' });
    const id = r.message.id as string;
    probe.approved.add(id);
    // What resume writes before it runs, as if the process died right after.
    await gw.gateway.db.pool.query(`UPDATE parley_inbound SET status = 'processing', resume_after = held_stage WHERE id = $1`, [id]);
    await gw.gateway.db.pool.query(`INSERT INTO parley_inbound_claims (inbound_id, tenant_id, claimed_at) VALUES ($1, 'acme', now() - interval '1 hour')`, [id]);
    expect(await gw.gateway.recoverInbound('1 minute')).toBeGreaterThanOrEqual(1);
    expect(probe.gateRuns.get(id)).toBe(1);
    expect(probe.answerRuns.get(id)).toBe(1);
    const { rows } = await gw.gateway.db.pool.query(`SELECT status FROM parley_inbound WHERE id = $1`, [id]);
    expect(rows[0].status).toBe('processed');
  });
});

describe('held replies', () => {
  it('are released once, however many settle them at the same time', async () => {
    const r = await gw.send('acme', { from: '+15550100020', text: 'say risky things' });
    expect(r.replies).toEqual([]);
    const held = (await gw.outbox('acme', 'held')).find((i) => i.inboundId === r.message.id)!;
    expect(held).toMatchObject({ errorCode: 'hold-probe.out', error: 'check this reply' });
    const results = await Promise.all([1, 2, 3].map(() => gw.gateway.services().releaseHeld('acme', held.id, { send: true })));
    expect(results.filter((x) => x.changed)).toHaveLength(1);
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === held.id && i.status === 'delivered'));
    expect((await gw.gateway.services().releaseHeld('acme', held.id, { send: false, reason: 'late' })).changed).toBe(false);
  });

  it('are blocked with a reason, and may be sent with new text', async () => {
    const a = await gw.send('acme', { from: '+15550100021', text: 'risky one' });
    const b = await gw.send('acme', { from: '+15550100022', text: 'risky two' });
    const items = await gw.outbox('acme', 'held');
    const ia = items.find((i) => i.inboundId === a.message.id)!;
    const ib = items.find((i) => i.inboundId === b.message.id)!;
    expect((await gw.gateway.services().releaseHeld('acme', ia.id, { send: false, reason: 'rejected' })).item).toMatchObject({ status: 'blocked', errorCode: 'released', error: 'rejected' });
    expect((await gw.gateway.services().releaseHeld('acme', ib.id, { send: true, text: 'a safer answer' })).item).toMatchObject({ status: 'pending', text: 'a safer answer' });
    // Another tenant cannot settle it.
    expect((await gw.gateway.services().releaseHeld('other', ia.id, { send: true })).changed).toBe(false);
  });
});

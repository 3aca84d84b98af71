import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({ config: twoTenants(), catalogue });
});
afterAll(() => gw?.stop({ cleanup: true }));
beforeEach(() => probeControl.reset());

describe('the message pipeline', () => {
  it('runs the stages in order and returns the reply inline, recorded in the outbox as sent', async () => {
    const r = await gw.send('acme', { from: 'alice', text: 'hello' });
    expect(r.status).toBe(200);
    expect(r.replies.map((x) => x.text)).toEqual(['acme says: hello']);
    expect(r.message.status).toBe('processed');
    // Settled once the response finished, a moment after the client has it.
    const items = await gw.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === r.message.id && i.status !== 'sending'));
    const item = items.find((i) => i.inboundId === r.message.id)!;
    expect(item).toMatchObject({ status: 'sent', via: 'inline', text: 'acme says: hello', to: 'alice' });
  });

  it('records each stage outcome and duration on the message', async () => {
    const r = await gw.send('acme', { from: 'bob', text: 'halt' });
    expect(r.message).toMatchObject({ status: 'stopped', stopReason: 'halt requested' });
    const detail = await gw.request('GET', `/v1/tenants/acme/messages/${r.message.id}`, { key: KEYS.acme });
    const stages = detail.body.message.stages as { stage: string; outcome: string; selfMs: number }[];
    expect(stages.map((s) => [s.stage, s.outcome])).toEqual([
      ['probe.count', 'passed'],
      ['probe.fail-on-boom', 'passed'],
      ['probe.stop-on-halt', 'stopped'],
    ]);
    for (const s of stages) expect(s.selfMs).toBeGreaterThanOrEqual(0);
    expect(r.replies.map((x) => x.text)).toEqual(['halted']);
  });

  it('lets a stage wrap later stages (onion) and pass annotations along', async () => {
    const r = await gw.send('acme', { from: 'carol', text: 'one' });
    const detail = await gw.request('GET', `/v1/tenants/acme/messages/${r.message.id}`, { key: KEYS.acme });
    expect(detail.body.message.annotations).toMatchObject({ 'probe.repliesAfterNext': 1, 'probe.historyLength': 0 });
  });

  it('ends the pipeline at a stage that returns without calling next(): later stages do not run', async () => {
    const r = await gw.send('acme', { from: 'frank', text: 'swallow' });
    expect(r.message.status).toBe('processed');
    expect(r.replies).toEqual([]);
    const detail = await gw.request('GET', `/v1/tenants/acme/messages/${r.message.id}`, { key: KEYS.acme });
    const stages = detail.body.message.stages as { stage: string; outcome: string }[];
    expect(stages.map((s) => [s.stage, s.outcome])).toEqual([
      ['probe.count', 'passed'],
      ['probe.fail-on-boom', 'passed'],
      ['probe.stop-on-halt', 'passed'],
      ['probe.wrap', 'passed'],
      ['probe.slow', 'passed'],
      ['probe.swallow', 'handled'],
    ]);
    expect(detail.body.message.annotations).toMatchObject({ 'probe.swallowed': true, 'probe.repliesAfterNext': 0 });
  });

  it('gives stages the conversation history', async () => {
    await gw.send('acme', { from: 'dave', text: 'first' });
    const r = await gw.send('acme', { from: 'dave', text: 'second' });
    const detail = await gw.request('GET', `/v1/tenants/acme/messages/${r.message.id}`, { key: KEYS.acme });
    // first inbound + its reply
    expect(detail.body.message.annotations['probe.historyLength']).toBe(2);
  });

  it('marks the message failed and sends the tenant fallback reply when a stage throws, without crashing', async () => {
    const r = await gw.send('acme', { from: 'erin', text: 'boom' });
    expect(r.status).toBe(200);
    expect(r.message.status).toBe('failed');
    expect(r.replies.map((x) => x.text)).toEqual(['Sorry, try again later.']);
    const detail = await gw.request('GET', `/v1/tenants/acme/messages/${r.message.id}`, { key: KEYS.acme });
    expect(detail.body.message.error).toContain('the probe exploded');
    expect(detail.body.message.stages.find((s: { stage: string }) => s.stage === 'probe.fail-on-boom').outcome).toBe('failed');
    const after = await gw.send('acme', { from: 'erin', text: 'still alive?' });
    expect(after.replies[0]!.text).toBe('acme says: still alive?');
  });

  it('runs the pipeline once when the same provider message id arrives twice, even concurrently', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => gw.send('acme', { from: 'frank', text: 'once', id: 'provider-msg-42' })));
    expect(probeControl.pipelineRuns).toBe(1);
    const ids = new Set(results.map((r) => r.message.id));
    expect(ids.size).toBe(1);
    for (const r of results) expect(r.replies.map((x) => x.text)).toEqual(['acme says: once']);
    const { rows } = await gw.gateway.db.pool.query("SELECT count(*)::int AS n FROM parley_inbound WHERE tenant_id = 'acme' AND provider_message_id = 'provider-msg-42'");
    expect(rows[0].n).toBe(1);
    const replay = await gw.send('acme', { from: 'frank', text: 'once', id: 'provider-msg-42' });
    expect(replay.message.status).toBe('duplicate');
    expect(probeControl.pipelineRuns).toBe(1);
  });

  it('answers 202 when the pipeline misses the budget and still stores the reply in the outbox', async () => {
    probeControl.slowMs = 1500;
    const config = twoTenants();
    (config.tenants[0]!.plugins as Record<string, unknown>).http = { replyBudgetMs: 200 };
    const slow = await startTestGateway({ config, catalogue });
    try {
      const r = await slow.send('acme', { from: 'gina', text: 'slow one' });
      expect(r.status).toBe(202);
      expect(r.message.status).toBe('deferred');
      const items = await slow.waitForOutbox('acme', (all) => all.some((i) => i.text === 'acme says: slow one' && i.status === 'delivered'));
      expect(items.find((i) => i.text === 'acme says: slow one')!.via).toBe('api');
    } finally {
      await slow.stop({ cleanup: true });
    }
  });

  it('never loses a reply when the budget runs out while the replies are being written', async () => {
    const config = twoTenants();
    (config.tenants[0]!.plugins as Record<string, unknown>).http = { replyBudgetMs: 100 };
    const edge = await startTestGateway({ config, catalogue });
    try {
      // Pipelines that end just before, at, and just after the budget, many at once.
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => edge.send('acme', { from: `edge-${i}`, text: `slow:${90 + (i % 20)} n${i}` })),
      );
      const items = await edge.waitForOutbox('acme', (all) => all.filter((x) => x.text.includes(' n')).length === 40 && all.every((x) => x.status !== 'pending' && x.status !== 'sending'));
      for (const r of results) {
        const mine = items.filter((x) => x.inboundId === r.message.id);
        expect(mine).toHaveLength(1);
        if (r.status === 200) expect(r.replies.map((x) => x.id)).toEqual(mine.map((x) => x.id));
        else expect(mine[0]!.via, `deferred reply of ${r.message.id} must go through the outbox`).toBe('api');
      }
    } finally {
      await edge.stop({ cleanup: true });
    }
  });

  it('exports messages in/out, stage durations and HTTP timings as Prometheus metrics', async () => {
    const sent = await gw.send('globex', { from: 'hank', text: 'metrics please' });
    await gw.waitForOutbox('globex', (all) => all.some((i) => i.inboundId === sent.message.id && i.status === 'sent'));
    const text = await gw.metrics();
    expect(text).toMatch(/parley_messages_in_total\{tenant="globex",channel="http",result="processed"\} \d+/);
    expect(text).toMatch(/parley_messages_out_total\{tenant="globex",channel="http",status="inline"\} \d+/);
    expect(text).toMatch(/parley_pipeline_stage_duration_seconds_count\{tenant="globex",stage="probe.echo",outcome="replied"\} \d+/);
    expect(text).toMatch(/parley_http_request_duration_seconds_count\{method="POST",route="\/v1\/tenants\/:tenant\/messages",status="200"\}/);
    const res = await gw.request('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.text).toContain('parley_process_resident_memory_bytes');
  });
});

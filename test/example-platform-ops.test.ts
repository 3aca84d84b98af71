/**
 * examples/platform-ops (seed 002) end to end: the example's own parley.yaml, booted through the test
 * kit with the chat model on the local OpenAI-compatible fake, through the environment variables the
 * README documents. Two companies (tenants) over the admin API with their own keys: screening and the
 * review queue (review, escalate, dismiss), DSAR export and erasure with deadlines and audit, scheduled
 * deliveries with preview, run-now and stats, AI budgets ($1000 a month, $50 a day, $200 a day spike)
 * and 100 API requests a minute per company with a 429, `/v1` and its versioning headers.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { exampleAlertRules } from './fixtures/example-alert-rules.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const EXAMPLE = `${ROOT}examples/platform-ops/`;
const CONFIG = readFileSync(`${EXAMPLE}parley.yaml`, 'utf8');
const NORTHWIND = 'key-northwind-example-0123456789';
const CONTOSO = 'key-contoso-example-0123456789ab';
const OPERATOR = 'key-operator-example-0123456789';

let model: FakeModelApi;
let gw: TestGateway;
let n = 0;
const person = () => `employee-${++n}`;

beforeAll(async () => {
  model = await startFakeModelApi();
  // The classifier's answer: moderation asks the model for {"toxicity", "labels"}.
  model.answer = (text) => (/idiot/i.test(text) ? '{"toxicity": 0.93, "labels": ["insult"]}' : '{"toxicity": 0.02, "labels": []}');
  gw = await startTestGateway({
    config: CONFIG,
    baseDir: EXAMPLE,
    env: {
      PARLEY_OPERATOR_KEY: OPERATOR,
      NORTHWIND_API_KEY: NORTHWIND,
      CONTOSO_API_KEY: CONTOSO,
      OPENAI_BASE_URL: `${model.url}/v1`,
      OPENAI_API_KEY: 'sk-fake-platform-ops',
      SLACK_BOT_TOKEN: '',
    },
  });
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await model?.close();
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

describe('examples/platform-ops: seed 002 as a Parley deployment', () => {
  it('passes `parley validate` with nothing set in the environment', () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (/^(OPENAI_|SLACK_|NORTHWIND_|CONTOSO_|PARLEY_OPERATOR_KEY|DATABASE_URL|REDIS_URL)/.test(k)) delete env[k];
    const r = spawnSync(process.execPath, [`${ROOT}bin/parley.js`, 'validate', '--config', `${EXAMPLE}parley.yaml`], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr + r.stdout).toMatch(/is valid: 2 tenant\(s\) \(northwind, contoso\)/);
    expect(r.status).toBe(0);
  });

  it("serves several companies over the API, each key reaching only its own company's data", async () => {
    const mine = await gw.request('GET', '/v1/tenants', { key: NORTHWIND });
    expect(mine.body.tenants.map((t: { id: string }) => t.id)).toEqual(['northwind']);
    const all = await gw.request('GET', '/v1/tenants', { key: OPERATOR });
    expect(all.body.tenants.map((t: { id: string }) => t.id).sort()).toEqual(['contoso', 'northwind']);
    expect((await gw.request('GET', '/v1/tenants/contoso/moderation/queue', { key: NORTHWIND })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/contoso/moderation/queue')).status).toBe(401);
    const reply = await gw.send('northwind', { from: person(), text: 'hello' }, NORTHWIND);
    expect(reply.replies.map((r) => r.text)).toEqual(['Thanks, your feedback was received.']);
  });

  it('screens text like the seed\'s /screen/text: safe text passes, profanity and spam are flagged for review, nothing stored', async () => {
    const safe = await gw.request('POST', '/v1/tenants/northwind/moderation/screen', { key: NORTHWIND, body: { contentId: 'feedback-123', contentType: 'feedback_text', text: 'This is a test message' } });
    expect(safe.status).toBe(200);
    expect(safe.body).toMatchObject({ safe: true, action: 'allow', requiresReview: false });
    // The classification model (the seed's Q2Q) was asked too, through the AI service, and found nothing.
    expect(safe.body.flags).toEqual([expect.objectContaining({ category: 'toxicity', detector: 'model:gpt-4o-mini', action: 'allow' })]);
    const flagged = await gw.request('POST', '/v1/tenants/northwind/moderation/screen', { key: NORTHWIND, body: { contentId: 'feedback-124', contentType: 'feedback_text', text: 'THIS SHIT IS A FUCKING SCAM!!! BUY NOW at http://a.example http://b.example http://c.example' } });
    expect(flagged.body).toMatchObject({ safe: false, requiresReview: true });
    expect(flagged.body.flags.map((f: { category: string }) => f.category)).toEqual(expect.arrayContaining(['profanity', 'spam']));
    const missing = await gw.request('POST', '/v1/tenants/northwind/moderation/screen', { key: NORTHWIND, body: { contentId: 'x' } });
    expect(missing.status).toBe(400);
  });

  it('holds flagged feedback in the review queue: review (assignedTo), escalate, dismiss; each step audited and the message released', async () => {
    const from = person();
    const held = await gw.send('northwind', { from, text: 'you are an idiot and this is shit' }, NORTHWIND);
    expect(held.message.status).toBe('held');
    const queue = await gw.request('GET', '/v1/tenants/northwind/moderation/queue?limit=50&offset=0', { key: NORTHWIND });
    const item = queue.body.items.find((i: { messageId: string }) => i.messageId === held.message.id);
    expect(item).toMatchObject({ status: 'pending', direction: 'inbound' });
    expect(item.categories).toEqual(expect.arrayContaining(['profanity', 'toxicity']));
    expect(queue.body.count).toBeGreaterThan(0);
    const path = `/v1/tenants/northwind/moderation/queue/${item.id}`;
    const reviewed = await gw.request('POST', `${path}/review`, { key: NORTHWIND, body: { notes: 'Reviewed - looking into context', assignedTo: 'reviewer-user-id' } });
    expect(reviewed.body.item).toMatchObject({ status: 'in_review', assignee: 'reviewer-user-id' });
    const escalated = await gw.request('POST', `${path}/escalate`, { key: NORTHWIND, body: { notes: 'Requires admin review', assignedTo: 'admin-user-id' } });
    expect(escalated.body.item).toMatchObject({ status: 'escalated', assignee: 'admin-user-id' });
    const dismissed = await gw.request('POST', `${path}/dismiss`, { key: NORTHWIND, body: { notes: 'False positive' } });
    expect(dismissed.body).toMatchObject({ item: { status: 'dismissed' }, effect: 'continued:processed' });
    const audit = (await gw.request('GET', path, { key: NORTHWIND })).body.audit.map((a: { toStatus: string }) => a.toStatus);
    expect(audit).toEqual(expect.arrayContaining(['in_review', 'escalated', 'dismissed']));
    const stats = await gw.request('GET', '/v1/tenants/northwind/moderation/stats', { key: NORTHWIND });
    expect(stats.status).toBe(200);
    // The other company's key cannot decide this company's items.
    expect((await gw.request('POST', `${path}/dismiss`, { key: CONTOSO, body: {} })).status).toBe(403);
  });

  it('takes DSAR export and erasure requests with a GDPR deadline, the erasure approved by a second key, every step in the audit trail', async () => {
    const from = person();
    await gw.send('northwind', { from, text: 'hello' }, NORTHWIND);
    const base = '/v1/tenants/northwind/data-subjects/requests';
    const wait = (id: string) => waitFor(`request ${id}`, async () => {
      const r = (await gw.request('GET', `${base}/${id}`, { key: NORTHWIND })).body.request;
      return ['completed', 'failed'].includes(r?.status) ? r : undefined;
    });
    const exported = await gw.request('POST', base, { key: NORTHWIND, body: { type: 'export', subject: { addresses: [from] }, requestedBy: 'user-123' } });
    expect(exported.status).toBe(201);
    const due = Date.parse(exported.body.dueAt) - Date.now();
    expect(due).toBeGreaterThan(27 * 86_400_000);
    expect(due).toBeLessThan(32 * 86_400_000);
    expect(await wait(exported.body.id)).toMatchObject({ status: 'completed', progress: 100 });
    const exportAudit = await gw.request('GET', `${base}/${exported.body.id}/audit`, { key: NORTHWIND });
    expect(exportAudit.body.audit.map((a: { action: string }) => a.action)).toEqual(expect.arrayContaining(['dsar.requested', 'dsar.started', 'dsar.exported']));
    expect(JSON.stringify(exportAudit.body)).not.toContain(from);

    const erase = await gw.request('POST', base, { key: NORTHWIND, body: { type: 'erase', subject: { addresses: [from] }, requestedBy: 'admin' } });
    expect(erase.body.status).toBe('pending-approval');
    expect((await gw.request('POST', `${base}/${erase.body.id}/approve`, { key: NORTHWIND, body: {} })).status).toBe(403);
    expect((await gw.request('POST', `${base}/${erase.body.id}/approve`, { key: OPERATOR, body: { note: 'adminApproved' } })).status).toBe(200);
    const erased = await wait(erase.body.id);
    expect(erased).toMatchObject({ status: 'completed' });
    expect(erased.result.verification.remaining).toBe(0);
    const all = await gw.request('GET', `${base}?subject=${encodeURIComponent(from)}`, { key: NORTHWIND });
    expect(all.body.requests.map((r: { id: string }) => r.id).sort()).toEqual([exported.body.id, erase.body.id].sort());
  });

  it('delivers on a cron schedule with a preview that sends nothing, run-now, and stats', async () => {
    for (const name of ['Ana', 'Bo']) {
      const made = await gw.request('POST', '/v1/tenants/contoso/contacts', { key: CONTOSO, body: { name, tags: ['benevity'], fields: { hours: '12' }, addresses: [{ channel: 'http', address: person() }] } });
      expect(made.status).toBe(201);
    }
    const created = await gw.request('POST', '/v1/tenants/contoso/schedules', { key: CONTOSO, body: { name: 'benevity monthly', schedule: '0 0 1 * *', audience: { tags: ['benevity'] }, template: 'Hi {{first_name}}, you volunteered {{hours}} hours this month.', channel: 'http' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ success: true, schedule: { schedule: '0 0 1 * *', active: true, nextRun: expect.any(String) } });
    const id = created.body.schedule.id;
    const before = (await gw.outbox('contoso')).length;
    const preview = await gw.request('POST', `/v1/tenants/contoso/schedules/${id}/preview`, { key: CONTOSO, body: {} });
    expect(preview.body.preview).toMatchObject({ count: 2, note: 'This is a preview. No actual delivery will be made.' });
    expect(preview.body.preview.messages.map((m: { text: string }) => m.text)).toContain('Hi Ana, you volunteered 12 hours this month.');
    expect((await gw.outbox('contoso')).length).toBe(before);
    const run = await gw.request('POST', `/v1/tenants/contoso/schedules/${id}/run-now`, { key: CONTOSO });
    expect(run.status).toBe(202);
    await gw.waitForOutbox('contoso', (all) => all.filter((i) => (i.options as { run?: string }).run === run.body.run.id && i.status === 'delivered').length === 2, 20_000);
    const stats = await waitFor('a successful run in the stats', async () => {
      const s = (await gw.request('GET', '/v1/tenants/contoso/schedules/stats', { key: CONTOSO })).body;
      return s.successfulRuns === 1 ? s : undefined;
    });
    expect(stats).toMatchObject({ totalSchedules: 1, activeSchedules: 1, successfulRuns: 1, failedRuns: 0 });
    expect((await gw.request('GET', '/v1/tenants/contoso/schedules/stats', { key: NORTHWIND })).status).toBe(403);
  });

  it('keeps AI budgets of $50 a day and $1000 a month per company, alerts on a $200 day, and refuses classification once spent', async () => {
    const limits = await gw.request('GET', '/v1/tenants/contoso/limits', { key: CONTOSO });
    expect(limits.body).toMatchObject({ rateLimits: { api: { perMinute: 100 } }, action: 'block', warnAt: 0.8, spike: { dailyUsd: 200 } });
    const month = await gw.request('GET', '/v1/tenants/contoso/costs?period=month', { key: CONTOSO });
    expect(month.body.byCategory.ai).toMatchObject({ budget: 1000 });
    const day = await gw.request('GET', '/v1/tenants/contoso/costs?period=day', { key: CONTOSO });
    expect(day.body.byCategory.ai).toMatchObject({ budget: 50 });
    // Classifications are priced into the ledger by model.
    await gw.send('contoso', { from: person(), text: 'hello' }, CONTOSO);
    const spent = await waitFor('classification spend', async () => {
      const c = (await gw.request('GET', '/v1/tenants/contoso/costs?period=day', { key: CONTOSO })).body;
      return c.byCategory.ai?.spent > 0 ? c : undefined;
    });
    expect(Object.keys(spent.byModel)).toContain('gpt-4o-mini');
    // The operator cuts today's budget below what was spent: the next classification is refused, alerted, and the rules decide alone.
    expect((await gw.request('PUT', '/v1/tenants/contoso/budgets', { key: OPERATOR, body: { category: 'ai', period: 'day', limitUsd: 0.000001 } })).status).toBe(200);
    const calls = model.calls.length;
    const screened = await gw.request('POST', '/v1/tenants/contoso/moderation/screen', { key: CONTOSO, body: { text: 'a perfectly fine sentence' } });
    expect(screened.body.safe).toBe(true);
    expect(model.calls.length).toBe(calls);
    const alerts = await gw.request('GET', '/v1/tenants/contoso/alerts', { key: CONTOSO });
    expect(JSON.stringify(alerts.body)).toMatch(/cost-guard\.budget:ai:day:[^"]+:reached/);
    expect((await gw.request('PUT', '/v1/tenants/contoso/budgets', { key: OPERATOR, body: { category: 'ai', period: 'day', reset: true } })).status).toBe(200);

    // A day past $200: the operator lifts the budgets and prices the model at a dollar a token; one classification costs more than $200.
    for (const period of ['day', 'month']) expect((await gw.request('PUT', '/v1/tenants/contoso/budgets', { key: OPERATOR, body: { category: 'ai', period, limitUsd: null } })).status).toBe(200);
    const price = (usd: number | null) => gw.request('PUT', '/v1/costs/prices', { key: OPERATOR, body: { prices: ['input', 'output'].map((d) => ({ kind: `model.tokens.${d}`, tenant: 'contoso', model: 'gpt-4o-mini', usd })) } });
    expect((await price(1)).status).toBe(200);
    const spike = await waitFor('the spike alert', async () => {
      await gw.request('POST', '/v1/tenants/contoso/moderation/screen', { key: OPERATOR, body: { text: 'another fine sentence' } });
      const open = (await gw.request('GET', '/v1/tenants/contoso/alerts', { key: CONTOSO })).body;
      return /cost-guard\.spike:/.test(JSON.stringify(open)) ? open : undefined;
    });
    expect(JSON.stringify(spike)).toMatch(/passed the spike threshold of \$200\.00/);
    expect((await price(null)).status).toBe(200);
    for (const period of ['day', 'month']) expect((await gw.request('PUT', '/v1/tenants/contoso/budgets', { key: OPERATOR, body: { category: 'ai', period, reset: true } })).status).toBe(200);
  });

  it('serves everything under /v1; no route of this deployment is deprecated, so none sends Deprecation or Sunset', async () => {
    const doc = (await gw.request('GET', '/v1/openapi.json')).body as { paths: Record<string, Record<string, { deprecated?: boolean }>> };
    const admin = Object.keys(doc.paths).filter((p) => p.includes('/tenants/'));
    expect(admin.length).toBeGreaterThan(20);
    for (const p of admin) expect(p.startsWith('/v1/'), p).toBe(true);
    expect(Object.values(doc.paths).flatMap((ops) => Object.values(ops)).filter((op) => op.deprecated)).toEqual([]);
    const r = await gw.request('GET', '/v1/tenants/northwind/moderation/stats', { key: NORTHWIND });
    expect(r.headers.get('deprecation')).toBeNull();
    expect((await gw.request('GET', '/tenants/northwind/moderation/stats', { key: NORTHWIND })).status).toBe(404);
  });

  it('alerts at the seed targets: p95 over 1 s a warning, over 2 s (its P2) critical, errors over 1% critical', () => {
    const { raised } = exampleAlertRules(CONFIG, { tenant: 'northwind', channel: 'http' }, [0.5, 1, 2, 5, Infinity]);
    const t0 = Date.parse('2026-12-01T10:00:00Z');
    const fast = Array<number>(100).fill(0.3);
    raised(t0, [], 0, 0, { 'deliveries-failing': {} });
    expect(raised(t0 + 60_000, fast, 100, 0)).toEqual([]);
    const slow = [...fast, ...Array<number>(40).fill(1.5)];
    expect(raised(t0 + 120_000, slow, 140, 1)).toEqual(['rule.latency-target:warning']);
    const slower = [...slow, ...Array<number>(200).fill(4)];
    expect(raised(t0 + 180_000, slower, 340, 10)).toEqual(['rule.error-rate:critical', 'rule.high-latency-p2:critical', 'rule.latency-target:warning']);
  });

  // Last: it spends this minute's allowance of the company's key.
  it('limits each company to 100 API requests a minute with a 429 and Retry-After; the operator key is not limited, the other company is not affected', async () => {
    let status = 200;
    let i = 0;
    let refused: Awaited<ReturnType<TestGateway['request']>> | undefined;
    while (status !== 429 && i < 120) {
      const r = await gw.request('GET', '/v1/tenants/contoso/schedules/stats', { key: CONTOSO });
      status = r.status;
      if (status === 429) refused = r;
      i++;
    }
    expect(refused?.status).toBe(429);
    // The allowance started before this test (earlier requests of the minute count too): at most 100 went through.
    expect(i).toBeLessThanOrEqual(101);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused!.body.error.message).toMatch(/100 API requests a minute/);
    expect((await gw.request('GET', '/v1/tenants/contoso/schedules/stats', { key: OPERATOR })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/northwind/schedules/stats', { key: NORTHWIND })).status).toBe(200);
  });
});

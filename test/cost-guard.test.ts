/**
 * cost-guard end to end (embedded, and on PostgreSQL + Redis with PARLEY_TEST_BACKEND=external): each
 * budget action on the model call path against the fake OpenAI-compatible server, warning, 100% and
 * spike alerts at the fake Slack, the response cache through reply stages, paid sends held at 100%,
 * per-sender limits with one "slow down" per window, 429 on the API, blocks, the costs API against
 * the ledger, runtime budgets and prices, tenant isolation and the data-subject provider.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-api.js';

const OP = 'key-operator-cost-0123456789';
const key = (t: string) => `key-${t}-cost-0123456789`;
let gw: TestGateway;
let fake: FakeModelApi;
let slack: FakeSlack;

const tenant = (id: string, extra: Record<string, unknown>, costGuard: Record<string, unknown> = {}) => ({
  id,
  apiKeys: [key(id)],
  pipeline: ['crisis-guard', 'cost-guard', 'ask'],
  plugins: { http: {}, ask: {}, 'crisis-guard': {}, 'cost-guard': costGuard },
  ...extra,
});

beforeAll(async () => {
  fake = await startFakeModelApi();
  slack = await startFakeSlack({ token: 'xoxb-cost' });
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OP] },
      ai: {
        providers: {
          big: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o', embeddingModel: 'text-embedding-3-small', maxRetries: 0 },
          small: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o-mini', maxRetries: 0 },
        },
        // Expensive on purpose: one call costs about a cent, so budgets are reached in a few messages.
        prices: { 'gpt-4o': { input: 1000, output: 1000 }, 'gpt-4o-mini': { input: 1, output: 1 }, 'text-embedding-3-small': { input: 1000 } },
      },
      plugins: [
        'http',
        'crisis-guard',
        { name: 'ask' },
        { name: 'slack-alerts', options: { token: 'xoxb-cost', signingSecret: 'cost-secret-0123456789', apiUrl: slack.apiUrl, defaultChannel: 'C0OPS', quietPeriodMs: 0, rules: [] } },
        { name: 'cost-guard', options: { prices: [{ kind: 'messages.out', channel: 'http', usd: 0.001 }] } },
      ],
      tenants: [
        tenant('blocky', { ai: { chat: 'big' } }, { budgets: { ai: { daily: 0.05 } }, warnAt: 0.5 }),
        tenant('degrader', { ai: { chat: 'big' } }, { budgets: { ai: { daily: 0.02 } }, action: 'degrade', degradeTo: 'small' }),
        tenant('notifier', { ai: { chat: 'big' } }, { budgets: { total: { daily: 0.02 } }, action: 'notify-only' }),
        tenant('cached', { ai: { chat: 'big' }, replyPipeline: ['cost-guard'] }, { cache: { enabled: true, ttlSeconds: 600 } }),
        tenant('limited', {}, { rateLimits: { api: { perMinute: 5 }, user: { perMinute: 2, perDay: 100 } }, slowDownReply: 'Please slow down.' }),
        tenant('sender', { replyPipeline: ['cost-guard'] }, { budgets: { messaging: { daily: 0.0025 } }, paidSends: 'block' }),
        tenant('spiky', { ai: { chat: 'big' } }, { spike: { factor: 2, days: 3, minUsd: 0 } }),
        tenant('thrifty', { ai: { chat: 'big' } }, { budgets: { ai: { daily: 0.00005 } }, action: 'degrade', degradeTo: 'small' }),
        tenant('embedder', { ai: { embeddings: 'big' } }, { budgets: { ai: { daily: 0.025 } } }),
        tenant('embed-degrader', { ai: { embeddings: 'big' } }, { budgets: { ai: { daily: 0.005 } }, action: 'degrade', degradeTo: 'small' }),
        tenant('discount', { ai: { chat: 'big' } }, {
          budgets: { ai: { daily: 0.001 } },
          prices: [
            { kind: 'model.tokens.input', model: 'gpt-4o', usd: 0.000001 },
            { kind: 'model.tokens.output', model: 'gpt-4o', usd: 0.000002 },
          ],
        }),
        tenant('holder', { replyPipeline: ['cost-guard'] }, { budgets: { messaging: { daily: 0.0015 } } }),
        tenant('runtime', { ai: { chat: 'big' } }, { budgets: { ai: { daily: 0.001 } } }),
        tenant('dated', { ai: { chat: 'small' } }, {
          prices: [
            { kind: 'model.tokens.input', model: 'gpt-4o', usd: 0.0000005 },
            { kind: 'model.tokens.input', model: 'gpt-4o-mini', usd: 0.000003 },
            { kind: 'model.tokens.output', model: 'gpt-4o-mini', usd: 0.000004 },
            { kind: 'model.tokens.output', model: 'gpt-4o-mini-2024-07-18', usd: 0.000005 },
          ],
        }),
        tenant('cached-own', { ai: { chat: 'big' } }, {
          cache: { enabled: true, ttlSeconds: 600 },
          prices: [
            { kind: 'model.tokens.input', model: 'gpt-4o', usd: 0.000001 },
            { kind: 'model.tokens.output', model: 'gpt-4o', usd: 0.000002 },
          ],
        }),
        tenant('daily', {}, { rateLimits: { user: { perDay: 2 } }, slowDownReply: 'That is enough for today.' }),
        tenant('flood', {}, { rateLimits: { inbound: { perMinute: 3 } } }),
      ],
    },
    catalogue: { ask: fileURLToPath(new URL('./fixtures/cost-guard-ask.ts', import.meta.url)) },
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
  await slack?.close();
});

const ask = (t: string, text: string, from = '+15550000001', k = OP) => gw.send(t, { from, text }, k);
const texts = (r: { replies: { text: string }[] }) => r.replies.map((x) => x.text);
const ledger = async (t: string, from: Date) =>
  Number((await gw.gateway.db.pool.query(`SELECT COALESCE(sum(cost_usd), 0)::float8 AS s FROM parley_usage WHERE tenant_id = $1 AND at >= $2`, [t, from])).rows[0].s);
async function slackSays(pattern: RegExp, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = slack.messages.map((m) => JSON.stringify(m)).find((m) => pattern.test(m));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no Slack message matching ${pattern}: ${slack.messages.map((m) => JSON.stringify(m).slice(0, 200)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until every reply of the tenant is settled and metered: none still on its way (a reply settles after its response is written). */
async function metered(t: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { rows } = await gw.gateway.db.pool.query(
      `SELECT (SELECT count(*) FROM parley_outbox WHERE tenant_id = $1 AND status = 'sent')::int AS sent,
              (SELECT count(*) FROM parley_outbox WHERE tenant_id = $1 AND status IN ('pending', 'retrying', 'sending'))::int AS moving,
              (SELECT count(*) FROM parley_usage WHERE tenant_id = $1 AND kind = 'messages.out')::int AS metered`,
      [t],
    );
    if (rows[0].moving === 0 && rows[0].sent === rows[0].metered) return;
    if (Date.now() > deadline) throw new Error(`${t}: ${rows[0].sent} sent, ${rows[0].moving} on their way, ${rows[0].metered} metered`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('budgets on the model call path', () => {
  it('block: refuses the call at 100% and the caller falls back; warning and 100% alerts reach Slack', async () => {
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(texts(await ask('blocky', 'What time do you open?'))[0]);
    expect(replies.slice(0, 2)).toEqual(['big/gpt-4o: echo: What time do you open?', 'big/gpt-4o: echo: What time do you open?']);
    expect(replies[2]).toBe('fallback: PARLEY_AI_REFUSED');
    expect(fake.calls.filter((c) => c.body.model === 'gpt-4o')).toHaveLength(2);
    await slackSays(/blocky: \d+% of the daily ai budget/);
    await slackSays(/blocky: the daily ai budget of \$0\.05 is reached/);
    expect(await gw.metrics()).toMatch(/parley_budget_actions_total\{tenant="blocky",what="model",action="block"\} 1/);
  });

  it('degrade: switches the call to the cheaper provider', async () => {
    const r = texts(await ask('degrader', 'Do you take walk-ins?'))[0];
    expect(r).toBe('small/gpt-4o-mini: echo: Do you take walk-ins?');
    expect(fake.calls.at(-1)!.body.model).toBe('gpt-4o-mini');
  });

  it('degrade: reserves the degraded call at its own price, so degraded calls stop at the budget too', async () => {
    // gpt-4o-mini at $1/M: each call reserves about (1 + 20) tokens = $0.000021 and costs about $0.000004,
    // so a handful of degraded calls fit in $0.00005, then even the cheaper call does not.
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = texts(await ask('thrifty', `q ${i}`))[0]!;
      replies.push(r);
      if (r.startsWith('fallback')) break;
    }
    expect(replies.at(-1)).toBe('fallback: PARLEY_AI_REFUSED');
    expect(replies.length).toBeGreaterThan(2);
    expect(replies.slice(0, -1).every((r) => r.startsWith('small/gpt-4o-mini'))).toBe(true);
    const budgets = (await gw.request('GET', '/v1/tenants/thrifty/budgets', { key: key('thrifty') })).body.budgets;
    const ai = budgets.find((b: { category: string; period: string }) => b.category === 'ai' && b.period === 'day');
    expect(ai.spentUsd).toBeLessThanOrEqual(0.00005);
    expect(ai.reservedUsd).toBe(0);
    expect(gw.logs.some((l) => String(l.msg).includes('the degraded call to "small" (gpt-4o-mini, about $0.000021) does not fit either'))).toBe(true);
  });

  it('checks embeddings before they are made: refused at 100% (PARLEY_AI_REFUSED), never degraded', async () => {
    const ai = gw.gateway.ai.for('test');
    const text = 'x'.repeat(40); // 10 tokens at $1000/M: $0.01 a request
    const tries = [];
    for (let i = 0; i < 4; i++) tries.push(await ai.embeddings('embedder')!.embedQuery(text).then(() => 'ok', (e: { code?: string }) => e.code));
    expect(tries).toEqual(['ok', 'ok', 'PARLEY_AI_REFUSED', 'PARLEY_AI_REFUSED']);
    const budgets = (await gw.request('GET', '/v1/tenants/embedder/budgets', { key: key('embedder') })).body.budgets;
    expect(budgets).toContainEqual(expect.objectContaining({ category: 'ai', period: 'day', spentUsd: 0.02, reservedUsd: 0 }));
    const error = await ai.embeddings('embed-degrader')!.embedDocuments([text]).catch((e: Error & { code?: string }) => e);
    expect(error).toMatchObject({ code: 'PARLEY_AI_REFUSED', message: expect.stringContaining('embeddings are refused, not degraded') });
    expect(fake.calls.filter((c) => c.path === '/v1/embeddings')).toHaveLength(2);
    expect(await gw.metrics()).toMatch(/parley_budget_actions_total\{tenant="embedder",what="embeddings",action="block"\} 2/);
  });

  it('notify-only: lets the call through over budget and alerts', async () => {
    for (const q of ['Is there parking near the clinic building?', 'Can I bring my child to the appointment?']) expect(texts(await ask('notifier', q))[0]).toMatch(/^big\/gpt-4o/);
    await slackSays(/notifier: the daily total budget of \$0\.02 is (reached|spent)/);
    const costs = (await gw.request('GET', '/v1/tenants/notifier/costs?period=day', { key: key('notifier') })).body;
    expect(costs.allowed).toBe(false);
    expect(costs.spent).toBeGreaterThan(0.02);
  });

  it('raises a spike alert when today passes N x the trailing daily average', async () => {
    const usage = gw.gateway.usage.for('test');
    for (const days of [1, 2, 3]) await usage.record({ tenantId: 'spiky', kind: 'model.tokens.output', quantity: 1, unit: 'token', costUsd: 0.002, at: new Date(Date.now() - days * 86_400_000) });
    await ask('spiky', 'A question that costs about a cent');
    await slackSays(/spiky: today's spend \$0\.0\d is \d+\.\dx the 3-day average/);
  });

  it('lets the operator change a budget at run time (audited), which applies at once', async () => {
    expect((await gw.request('PUT', '/v1/tenants/blocky/budgets', { key: key('blocky'), body: { category: 'ai', period: 'day', limitUsd: 10 } })).status).toBe(403);
    const put = await gw.request('PUT', '/v1/tenants/blocky/budgets', { key: OP, body: { category: 'ai', period: 'day', limitUsd: 10 } });
    expect(put.status).toBe(200);
    expect(put.body.budgets).toContainEqual(expect.objectContaining({ category: 'ai', period: 'day', limitUsd: 10 }));
    expect(texts(await ask('blocky', 'And on Sundays?'))[0]).toMatch(/^big\/gpt-4o/);
    const audit = await gw.gateway.db.pool.query(`SELECT actor, detail FROM parley_audit WHERE tenant_id = 'blocky' AND action = 'cost-guard.budget'`);
    expect(audit.rows).toEqual([{ actor: 'operator', detail: { category: 'ai', period: 'day', limitUsd: 10 } }]);
  });
});

describe('the costs API', () => {
  it('reports numbers equal to the sum of ledger rows, by category, provider, model and channel', async () => {
    await metered('blocky');
    const r = await gw.request('GET', '/v1/tenants/blocky/costs?period=day', { key: key('blocky') });
    expect(r.status).toBe(200);
    const from = new Date(r.body.from);
    const sum = await ledger('blocky', from);
    expect(sum).toBeGreaterThan(0);
    expect(r.body.spent).toBeCloseTo(sum, 6);
    expect(r.body.byCategory.ai.spent).toBeCloseTo(sum - (r.body.byCategory.messaging?.spent ?? 0), 6);
    expect(r.body.byModel['gpt-4o']).toBeCloseTo(sum - (r.body.byChannel.http ?? 0), 6);
    expect(r.body.byProvider.big).toBeCloseTo(r.body.byModel['gpt-4o'], 6);
    expect(r.body.byCategory.ai.budget).toBe(10);
    expect(r.body).toMatchObject({ tenant: 'blocky', period: 'day', allowed: true });
    const month = (await gw.request('GET', '/v1/tenants/blocky/costs?period=month', { key: key('blocky') })).body;
    expect(month.spent).toBeCloseTo(await ledger('blocky', new Date(month.from)), 6);
  });

  it('keeps tenants apart: 401 without a key, 403 for another tenant, the operator sees all', async () => {
    expect((await gw.request('GET', '/v1/tenants/blocky/costs')).status).toBe(401);
    expect((await gw.request('GET', '/v1/tenants/blocky/costs', { key: key('cached') })).status).toBe(403);
    expect((await gw.request('GET', '/v1/costs', { key: key('blocky') })).status).toBe(403);
    const all = await gw.request('GET', '/v1/costs?period=day', { key: OP });
    expect(all.status).toBe(200);
    expect(all.body.tenants.map((t: { tenant: string }) => t.tenant).sort()).toEqual(['blocky', 'cached', 'cached-own', 'daily', 'dated', 'degrader', 'discount', 'embed-degrader', 'embedder', 'flood', 'holder', 'limited', 'notifier', 'runtime', 'sender', 'spiky', 'thrifty']);
    expect(await gw.metrics()).toMatch(/parley_cost_usd_total\{tenant="blocky",category="ai",provider="big",model="gpt-4o"\} 0\.\d+/);
    expect(await gw.metrics()).toMatch(/parley_ai_tokens_total\{tenant="blocky",model="gpt-4o",direction="out"\} \d+/);
    expect(await gw.metrics()).toMatch(/parley_budget_remaining_usd\{tenant="blocky",category="ai",period="day"\} 9\.9\d+/);
  });

  it('applies a price change to the next usage row without a restart (audited, operator only)', async () => {
    const usage = gw.gateway.usage.for('twilio-voice');
    const minutes = () => usage.record({ tenantId: 'spiky', kind: 'voice.minutes', quantity: 3, unit: 'minute' });
    const cost = async () => Number((await gw.gateway.db.pool.query(`SELECT cost_usd::float8 AS c FROM parley_usage WHERE tenant_id = 'spiky' AND kind = 'voice.minutes' ORDER BY id DESC LIMIT 1`)).rows[0].c);
    expect((await gw.request('PUT', '/v1/costs/prices', { key: key('sender'), body: { prices: [{ kind: 'voice.minutes', usd: 0.02 }] } })).status).toBe(403);
    expect((await gw.request('PUT', '/v1/costs/prices', { key: OP, body: { prices: [{ kind: 'voice.minutes', usd: 0.02 }] } })).status).toBe(200);
    await minutes();
    expect(await cost()).toBeCloseTo(0.06, 8);
    await gw.request('PUT', '/v1/costs/prices', { key: OP, body: { prices: [{ kind: 'voice.minutes', usd: 0.05 }] } });
    await minutes();
    expect(await cost()).toBeCloseTo(0.15, 8);
    const audit = await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_audit WHERE action = 'cost-guard.price'`);
    expect(audit.rows[0].n).toBe(2);
  });
});

describe('per-tenant model prices', () => {
  it("prices a tenant's model tokens by its own rules instead of ai.prices, for the ledger and the reservation", async () => {
    // at ai.prices ($1000/M) this call would reserve about $0.021, over the $0.001 budget; at the
    // tenant's $1/M in and $2/M out it reserves about $0.00004 and goes through
    const r = texts(await ask('discount', 'What time do you open?'))[0];
    expect(r).toBe('big/gpt-4o: echo: What time do you open?');
    const { rows } = await gw.gateway.db.pool.query(`SELECT kind, quantity::float8 AS q, cost_usd::float8 AS c FROM parley_usage WHERE tenant_id = 'discount' AND kind LIKE 'model.tokens.%' ORDER BY kind`);
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.c).toBeCloseTo(row.q * (row.kind === 'model.tokens.input' ? 0.000001 : 0.000002), 10);
    // another tenant on the same model still pays ai.prices
    const other = await gw.gateway.db.pool.query(`SELECT quantity::float8 AS q, cost_usd::float8 AS c FROM parley_usage WHERE tenant_id = 'blocky' AND kind = 'model.tokens.input' LIMIT 1`);
    expect(other.rows[0].c).toBeCloseTo(other.rows[0].q * 0.001, 10);
    const costs = (await gw.request('GET', '/v1/tenants/discount/costs?period=day', { key: key('discount') })).body;
    expect(costs.byModel['gpt-4o']).toBeCloseTo(rows.reduce((n, x) => n + x.c, 0), 8);
  });
});

describe('per-tenant model prices at run time, and dated model names', () => {
  const tokenRows = async (t: string) =>
    (await gw.gateway.db.pool.query(`SELECT kind, quantity::float8 AS q, cost_usd::float8 AS c, attributes->>'model' AS model FROM parley_usage WHERE tenant_id = $1 AND kind LIKE 'model.tokens.%' ORDER BY kind, id`, [t])).rows;

  it("lets the operator set a tenant's model token prices through the prices route (audited); the next call is reserved and priced by them, without a restart", async () => {
    const q = 'What time do you open?';
    // at ai.prices ($1000/M) the call reserves about $0.021, over the $0.001 budget
    expect(texts(await ask('runtime', q))[0]).toBe('fallback: PARLEY_AI_REFUSED');
    const prices = [
      { kind: 'model.tokens.input', tenant: 'runtime', model: 'gpt-4o', usd: 0.000001 },
      { kind: 'model.tokens.output', tenant: 'runtime', model: 'gpt-4o', usd: 0.000002 },
    ];
    expect((await gw.request('PUT', '/v1/costs/prices', { body: { prices } })).status).toBe(401);
    expect((await gw.request('PUT', '/v1/costs/prices', { key: key('runtime'), body: { prices } })).status).toBe(403);
    const noTenant = await gw.request('PUT', '/v1/costs/prices', { key: OP, body: { prices: [{ kind: 'model.tokens.input', model: 'gpt-4o', usd: 0.000001 }] } });
    expect(noTenant.status).toBe(400);
    expect(noTenant.body.error.message).toContain('prices.0.tenant: required for model.tokens.input');
    const put = await gw.request('PUT', '/v1/costs/prices', { key: OP, body: { prices } });
    expect(put.status).toBe(200);
    expect(put.body.prices).toContainEqual(expect.objectContaining({ tenantId: 'runtime', kind: 'model.tokens.output', model: 'gpt-4o', source: 'operator', usd: 0.000002 }));

    expect(texts(await ask('runtime', q))[0]).toBe(`big/gpt-4o: echo: ${q}`);
    const rows = await tokenRows('runtime');
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.c).toBeCloseTo(row.q * (row.kind === 'model.tokens.input' ? 0.000001 : 0.000002), 10);
    const audit = await gw.gateway.db.pool.query(`SELECT actor, detail FROM parley_audit WHERE tenant_id = 'runtime' AND action = 'cost-guard.price' ORDER BY id`);
    expect(audit.rows).toEqual([
      { actor: 'operator', detail: { kind: 'model.tokens.input', channel: null, country: null, model: 'gpt-4o', usd: 0.000001 } },
      { actor: 'operator', detail: { kind: 'model.tokens.output', channel: null, country: null, model: 'gpt-4o', usd: 0.000002 } },
    ]);

    // removed again: the next call is back at ai.prices, so the budget refuses it
    expect((await gw.request('PUT', '/v1/costs/prices', { key: OP, body: { prices: prices.map((p) => ({ ...p, usd: null })) } })).status).toBe(200);
    expect(texts(await ask('runtime', q))[0]).toBe('fallback: PARLEY_AI_REFUSED');
  });

  it('prices the dated model name the provider answers with by the rule for its base name; the most specific rule wins', async () => {
    fake.answerAs = { 'gpt-4o-mini': 'gpt-4o-mini-2024-07-18' };
    let reply: string | undefined;
    try {
      reply = texts(await ask('dated', 'Do you take walk-ins?'))[0];
    } finally {
      fake.answerAs = {};
    }
    expect(reply).toBe('small/gpt-4o-mini-2024-07-18: echo: Do you take walk-ins?');
    const rows = await tokenRows('dated');
    expect(rows.map((r) => [r.kind, r.model])).toEqual([['model.tokens.input', 'gpt-4o-mini-2024-07-18'], ['model.tokens.output', 'gpt-4o-mini-2024-07-18']]);
    // input: the gpt-4o-mini rule (gpt-4o's does not match a mini); output: the exact dated rule beats it
    expect(rows[0].c).toBeCloseTo(rows[0].q * 0.000003, 12);
    expect(rows[1].c).toBeCloseTo(rows[1].q * 0.000005, 12);
    const cases: [string, string, boolean][] = [
      ['gpt-4o-mini', 'gpt-4o-mini', true],
      ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18', true],
      ['gpt-4o', 'gpt-4o-2024-08-06', true],
      ['gpt-4', 'gpt-4-0613', true],
      ['claude-3-5-sonnet', 'claude-3-5-sonnet-20241022', true],
      ['claude-3-5-sonnet', 'claude-3-5-sonnet@20241022', true],
      ['gpt-4o', 'gpt-4o-mini-2024-07-18', false],
      ['gpt-4o-mini', 'gpt-4o-mini-audio-preview', false],
      ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini', false],
    ];
    const { rows: got } = await gw.gateway.db.pool.query(`SELECT cost_guard_model_matches(r, m) AS ok FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(r, m, n) ORDER BY n`, [cases.map((c) => c[0]), cases.map((c) => c[1])]);
    expect(got.map((g) => g.ok)).toEqual(cases.map((c) => c[2]));
  });
});

describe('the response cache', () => {
  it("counts what a hit saved at the tenant's own model prices, as the ledger charged the first answer", async () => {
    await ask('cached-own', 'Where can I park?');
    await ask('cached-own', 'where can i park');
    const charged = (await gw.gateway.db.pool.query(`SELECT sum(cost_usd)::float8 AS s FROM parley_usage WHERE tenant_id = 'cached-own' AND kind LIKE 'model.tokens.%'`)).rows[0].s;
    const costs = (await gw.request('GET', '/v1/tenants/cached-own/costs', { key: key('cached-own') })).body;
    expect(costs.cache).toMatchObject({ entries: 1, hits: 1 });
    expect(charged).toBeGreaterThan(0);
    // at ai.prices ($1000/M) it would be about a thousand times this
    expect(costs.cache.savedUsd).toBeCloseTo(charged, 9);
  });

  it('answers the same normalised question from the cache, records what it saved, and still runs reply stages', async () => {
    const first = texts(await ask('cached', 'What time do you open?'))[0];
    const calls = fake.calls.length;
    const second = await ask('cached', '  what time   do you OPEN ');
    expect(texts(second)[0]).toBe(first);
    expect(fake.calls.length).toBe(calls);
    const costs = (await gw.request('GET', '/v1/tenants/cached/costs', { key: key('cached') })).body;
    expect(costs.cache).toMatchObject({ entries: 1, hits: 1 });
    expect(costs.cache.savedUsd).toBeGreaterThan(0);
    expect(await gw.metrics()).toMatch(/parley_cost_cache_requests_total\{tenant="cached",result="hit"\} 1/);
    const item = (await gw.outbox('cached')).find((i) => i.id === second.replies[0]!.id)!;
    expect(item.details?.annotations).toMatchObject({ costGuard: { estimateUsd: 0.001 } });
  });
});

describe('paid sends', () => {
  it('blocks a send at 100% of the messaging budget with a clear reason; crisis replies still go', async () => {
    const rs = [];
    for (let i = 0; i < 3; i++) rs.push(await ask('sender', `hello ${i}`, '+15550000009'));
    expect(rs.slice(0, 2).map((r) => r.replies[0]!.status)).toEqual(['sent', 'sent']);
    await metered('sender');
    const blocked = await gw.outbox('sender', 'blocked');
    expect(blocked).toHaveLength(1);
    expect(blocked[0]).toMatchObject({ errorCode: 'cost-guard', error: 'cost-guard: the daily messaging budget ($0.0025) is spent' });
    // the sends that went are metered at the price table's $0.001 and their reservations released
    const budgets = (await gw.request('GET', '/v1/tenants/sender/budgets', { key: key('sender') })).body.budgets;
    expect(budgets).toContainEqual(expect.objectContaining({ category: 'messaging', period: 'day', spentUsd: 0.002, reservedUsd: 0 }));
    const crisis = await ask('sender', "I don't want to be alive anymore", '+15550000010');
    expect(crisis.replies.find((r) => r.text.includes('988'))).toMatchObject({ status: 'sent' });
  });
});

describe('paid sends held for review (paidSends: hold, the default)', () => {
  it('holds a send over the messaging budget with the reason, and the retry route releases it', async () => {
    const first = await ask('holder', 'hello', '+15550000020');
    expect(first.replies[0]!.status).toBe('sent');
    await metered('holder');
    const second = await ask('holder', 'hello again', '+15550000020');
    expect(second.replies).toEqual([]); // not sent: the person gets nothing until it is released
    const held = await gw.outbox('holder', 'held');
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ text: 'fallback: local', errorCode: 'cost-guard', error: 'cost-guard: the daily messaging budget ($0.0015) is spent' });
    expect(held[0]!.details?.annotations).toMatchObject({ costGuard: { estimateUsd: 0.001, overBudget: true } });
    // the held send reserved nothing: the budget shows only the sent one
    const budgets = (await gw.request('GET', '/v1/tenants/holder/budgets', { key: key('holder') })).body.budgets;
    expect(budgets).toContainEqual(expect.objectContaining({ category: 'messaging', period: 'day', spentUsd: 0.001, reservedUsd: 0 }));
    expect(await gw.metrics()).toMatch(/parley_budget_actions_total\{tenant="holder",what="send",action="hold"\} 1/);
    // someone reviews it and lets it go: it is sent (and metered) as is
    const retry = await gw.request('POST', `/v1/tenants/holder/outbox/${held[0]!.id}/retry`, { key: key('holder') });
    expect(retry.status).toBe(202);
    await gw.waitForOutbox('holder', (items) => ['sent', 'delivered'].includes(items.find((i) => i.id === held[0]!.id)?.status ?? ''));
    const deadline = Date.now() + 5000;
    while ((await gw.request('GET', '/v1/tenants/holder/costs?period=day', { key: key('holder') })).body.byCategory.messaging?.spent < 0.002 - 1e-9) {
      if (Date.now() > deadline) throw new Error('the released send was not metered');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});

describe('rate limits and blocks', () => {
  it('limits a sender per day: one notice, then silence; other senders are untouched', async () => {
    const from = '+15550004444';
    const got = [];
    for (let i = 0; i < 4; i++) got.push(texts(await ask('daily', `question ${i}`, from)));
    expect(got).toEqual([['fallback: local'], ['fallback: local'], ['That is enough for today.'], []]);
    expect(texts(await ask('daily', 'hi', '+15550005555'))).toEqual(['fallback: local']);
    expect(texts(await ask('daily', 'i want to kill myself', from)).join()).toContain('988');
    expect(await gw.metrics()).toMatch(/parley_rate_limited_total\{tenant="daily",scope="user-day"\} 2/);
    const stopped = await gw.gateway.db.pool.query(`SELECT stop_reason FROM parley_inbound WHERE tenant_id = 'daily' AND status = 'stopped'`);
    expect(stopped.rows.map((r) => r.stop_reason)).toEqual(['cost-guard: sender rate limit (per day)', 'cost-guard: sender rate limit (per day)']);
  });

  it('limits the tenant\'s inbound messages per minute silently, whoever sends them; crisis messages pass', async () => {
    const got = [];
    for (let i = 0; i < 5; i++) got.push(texts(await ask('flood', `message ${i}`, `+1555000600${i}`)));
    expect(got).toEqual([['fallback: local'], ['fallback: local'], ['fallback: local'], [], []]);
    expect(texts(await ask('flood', 'i want to kill myself', '+15550006009')).join()).toContain('988');
    expect(await gw.metrics()).toMatch(/parley_rate_limited_total\{tenant="flood",scope="inbound"\} 2/);
    const stopped = await gw.gateway.db.pool.query(`SELECT stop_reason FROM parley_inbound WHERE tenant_id = 'flood' AND status = 'stopped'`);
    expect(stopped.rows.map((r) => r.stop_reason)).toEqual(['cost-guard: tenant inbound rate limit', 'cost-guard: tenant inbound rate limit']);
    // other tenants are not counted against it
    expect(texts(await ask('daily', 'hello', '+15550006001'))).toEqual(['fallback: local']);
  });

  it('answers a sender over their limit once per window with "slow down", then silence; others are untouched', async () => {
    const from = '+15550001111';
    const got = [];
    for (let i = 0; i < 5; i++) got.push(texts(await ask('limited', `message ${i}`, from)));
    expect(got).toEqual([['fallback: local'], ['fallback: local'], ['Please slow down.'], [], []]);
    expect(texts(await ask('limited', 'hi', '+15550002222'))).toEqual(['fallback: local']);
    // a crisis is never limited
    expect(texts(await ask('limited', 'i want to kill myself', from)).join()).toContain('988');
    expect(await gw.metrics()).toMatch(/parley_rate_limited_total\{tenant="limited",scope="user-minute"\} 3/);
    const logs = JSON.stringify(gw.logs.filter((l) => String(l.msg ?? '').startsWith('cost-guard')));
    expect(logs).not.toContain('5550001111');
  });

  it('answers 429 with Retry-After and the JSON error shape past the API limit; the operator is not limited', async () => {
    const statuses = [];
    let last;
    for (let i = 0; i < 6; i++) {
      last = await gw.request('GET', '/v1/tenants/limited/conversations', { key: key('limited') });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const retryAfter = Number(last!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(last!.body.error).toMatchObject({ code: 'PARLEY_RATE_LIMITED', message: expect.stringContaining('5 API requests a minute') });
    expect((await gw.request('GET', '/v1/tenants/limited/conversations', { key: OP })).status).toBe(200);
    expect(await gw.metrics()).toMatch(/parley_rate_limited_total\{tenant="limited",scope="api"\} 1/);
  });

  it('shows the limits in force to the tenant and the operator only', async () => {
    const r = await gw.request('GET', '/v1/tenants/limited/limits', { key: OP });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ rateLimits: { api: { perMinute: 5 }, inbound: null, user: { perMinute: 2, perDay: 100 } }, action: 'block', warnAt: 0.8, cache: { enabled: false } });
    expect((await gw.request('GET', '/v1/tenants/limited/limits', { key: key('cached') })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/limited/limits')).status).toBe(401);
  });

  it('blocks a sender and an IP range through the admin API (audited), and lifts them', async () => {
    const from = '+15550003333';
    const block = await gw.request('POST', '/v1/tenants/cached/blocks', { key: OP, body: { sender: from, reason: 'abuse' } });
    expect(block.status).toBe(201);
    expect(JSON.stringify(block.body)).not.toContain('5550003333');
    const r = await ask('cached', 'anyone there?', from);
    expect(r.replies).toEqual([]);
    const ip = await gw.request('POST', '/v1/tenants/cached/blocks', { key: OP, body: { ipRange: '127.0.0.0/8' } });
    expect(ip.status).toBe(201);
    const refused = await gw.request('GET', '/v1/tenants/cached/conversations', { key: key('cached') });
    expect(refused.status).toBe(403);
    expect((await gw.request('DELETE', `/v1/tenants/cached/blocks/${ip.body.block.id}`, { key: OP })).status).toBe(204);
    expect((await gw.request('GET', '/v1/tenants/cached/conversations', { key: key('cached') })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/cached/blocks', { key: key('limited') })).status).toBe(403);
    const audit = await gw.gateway.db.pool.query(`SELECT action FROM parley_audit WHERE tenant_id = 'cached' AND action LIKE 'cost-guard.%' ORDER BY id`);
    expect(audit.rows.map((a) => a.action)).toEqual(['cost-guard.block', 'cost-guard.block', 'cost-guard.unblock']);
  });

  it('exports and erases what it keeps about a person (hashed counters and blocks)', async () => {
    const exported = await gw.gateway.exportSubject({ tenantId: 'cached', addresses: ['+15550003333'] });
    expect(exported.find((e) => e.provider === 'cost-guard.senders')!.records).toContainEqual(expect.objectContaining({ kind: 'sender-block', reason: 'abuse' }));
    const limitedExport = await gw.gateway.exportSubject({ tenantId: 'limited', addresses: ['+15550001111'] });
    expect(limitedExport.find((e) => e.provider === 'cost-guard.senders')!.records).toContainEqual(expect.objectContaining({ kind: 'rate-limit-window' }));
    const erased = await gw.gateway.eraseSubject({ tenantId: 'cached', addresses: ['+15550003333'] }, 'test');
    expect(erased['cost-guard.senders']).toBeGreaterThanOrEqual(1);
    expect(texts(await ask('cached', 'back again?', '+15550003333')).length).toBe(1);
  });
});

describe('configuration', () => {
  it('fails at start naming the tenant, the plugin and the key', async () => {
    await expect(
      startTestGateway({
        config: {
          plugins: ['cost-guard'],
          tenants: [{ id: 'acme', plugins: { 'cost-guard': { action: 'degrade', degradeTo: 'opneai' } } }],
        },
      }),
    ).rejects.toThrow(/tenants\[0\] \(acme\)\.plugins\.cost-guard\.degradeTo: unknown AI provider "opneai"/);
  });

  it('refuses a model token price without a model, and model token prices in the deployment options', async () => {
    await expect(
      startTestGateway({ config: { plugins: ['cost-guard'], tenants: [{ id: 'acme', plugins: { 'cost-guard': { prices: [{ kind: 'model.tokens.input', usd: 0.000001 }] } } }] } }),
    ).rejects.toThrow(/cost-guard\.prices\[0\]\.model: required for model\.tokens\.input/);
    await expect(
      startTestGateway({ config: { plugins: [{ name: 'cost-guard', options: { prices: [{ kind: 'model.tokens.output', usd: 0.000001 }] } }], tenants: [{ id: 'acme' }] } }),
    ).rejects.toThrow(/model tokens are priced by ai\.prices/);
    const put = await gw.request('PUT', '/v1/costs/prices', { key: OP, body: { prices: [{ kind: 'model.tokens.input', usd: 0.000001 }] } });
    expect(put.status).toBe(400);
  });
});

/**
 * The budget under a burst: on PostgreSQL + Redis (PARLEY_TEST_BACKEND=external) two gateway instances
 * share one database and fire model calls at the same tenant at once; on the embedded backend (one
 * PGlite session, so one instance) the same burst runs concurrently on one instance. Either way the
 * ledger may pass the budget by at most one request's cost. Also: expired reservations are released.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { TEST_BACKEND } from './backend.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { CostStore } from '../plugins/cost-guard/store.js';

const OP = 'key-operator-burst-0123456789';
const BUDGET = 0.1;
let gws: TestGateway[] = [];
let fake: FakeModelApi;

const config = () => ({
  operator: { apiKeys: [OP] },
  ai: {
    providers: { big: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o', maxRetries: 0 } },
    prices: { 'gpt-4o': { input: 1000, output: 1000 } },
  },
  plugins: ['http', { name: 'ask' }, 'cost-guard'],
  tenants: [{ id: 'burst', ai: { chat: 'big' }, pipeline: ['cost-guard', 'ask'], plugins: { http: {}, ask: {}, 'cost-guard': { budgets: { ai: { daily: BUDGET } } } } }],
});
const catalogue = { ask: fileURLToPath(new URL('./fixtures/cost-guard-ask.ts', import.meta.url)) };

beforeAll(async () => {
  fake = await startFakeModelApi();
  const first = await startTestGateway({ config: config(), catalogue });
  gws = [first];
  if (TEST_BACKEND === 'external') gws.push(await startTestGateway({ config: config(), catalogue, databaseUrl: first.databaseUrl! }));
});
afterAll(async () => {
  for (const gw of gws.slice(1)) await gw.stop();
  await gws[0]?.stop({ cleanup: true });
  await fake?.close();
});

describe(`a budget reached mid-burst (${TEST_BACKEND === 'external' ? 'two instances on one PostgreSQL + Redis' : 'one embedded instance, concurrent calls'})`, () => {
  it('overspends by at most one request’s cost', async () => {
    const N = 24;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => gws[i % gws.length]!.send('burst', { from: `+1555000${String(i).padStart(4, '0')}`, text: `How long is the wait today, number ${String(i).padStart(2, '0')}?` }, OP)),
    );
    const replies = results.map((r) => r.replies[0]?.text ?? '');
    const answered = replies.filter((t) => t.startsWith('big/gpt-4o')).length;
    const refused = replies.filter((t) => t === 'fallback: PARLEY_AI_REFUSED').length;
    expect(answered + refused).toBe(N);
    expect(answered).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    const pool = gws[0]!.gateway.db.pool;
    const perCall = (await pool.query(`SELECT ref, sum(cost_usd)::float8 AS cost FROM parley_usage WHERE tenant_id = 'burst' AND kind LIKE 'model.%' GROUP BY ref`)).rows as { cost: number }[];
    expect(perCall).toHaveLength(answered);
    const spent = perCall.reduce((a, r) => a + r.cost, 0);
    const oneRequest = Math.max(...perCall.map((r) => r.cost));
    expect(spent).toBeLessThanOrEqual(BUDGET + oneRequest);
    // nothing stays reserved once every call settled
    const counters = (await pool.query(`SELECT reserved_usd::float8 AS r FROM cost_guard_counters WHERE tenant_id = 'burst'`)).rows as { r: number }[];
    expect(counters.every((c) => c.r === 0)).toBe(true);
    if (gws.length === 2) expect(fake.calls.length).toBe(answered);
  });

  it('releases a reservation whose holder never settled it once it expires', async () => {
    const store = new CostStore(gws[0]!.gateway.db.pool);
    const keys = [{ category: 'total' as const, period: 'day' as const, window_key: '2031-01-01', limit_usd: 1 }];
    const r = await store.reserve('burst', keys, 0.6, { force: false, ttlSeconds: 60 });
    expect(r.ok).toBe(true);
    expect((await store.reserve('burst', keys, 0.6, { force: false, ttlSeconds: 60 })).ok).toBe(false);
    await gws[0]!.gateway.db.pool.query(`UPDATE cost_guard_reservations SET expires_at = now() - interval '1 second' WHERE id = $1`, [r.id]);
    expect(await store.releaseExpired()).toBe(1);
    expect((await store.reserve('burst', keys, 0.6, { force: false, ttlSeconds: 60 })).ok).toBe(true);
  });
});

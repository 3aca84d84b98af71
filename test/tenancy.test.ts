import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';

let gw: TestGateway;
type Own = { message: string; conversation: string; outbox: string; detection: string };
let ids: { acme: Own; globex: Own };

/** The usual two tenants, with crisis-guard first in their pipelines so its routes join the matrix. */
function withCrisisGuard() {
  const config = twoTenants();
  config.plugins.push('crisis-guard');
  for (const tenant of config.tenants as { pipeline: string[]; plugins: Record<string, unknown> }[]) {
    tenant.pipeline = ['crisis-guard', ...tenant.pipeline];
    tenant.plugins['crisis-guard'] = {};
  }
  return config;
}

beforeAll(async () => {
  gw = await startTestGateway({ config: withCrisisGuard(), catalogue });
  const seed = async (tenant: 'acme' | 'globex') => {
    const r = await gw.send(tenant, { from: `${tenant}-customer`, text: 'hi' });
    const crisis = await gw.send(tenant, { from: `${tenant}-other`, text: 'i want to kill myself' });
    const detection = ((await gw.request('GET', `/v1/tenants/${tenant}/crisis-detections`, { key: KEYS.operator })).body.detections as { id: string; messageId: string }[]).find((d) => d.messageId === crisis.message.id)!.id;
    return { message: r.message.id, conversation: r.message.conversationId, outbox: r.replies[0]!.id, detection };
  };
  ids = { acme: await seed('acme'), globex: await seed('globex') };
});
afterAll(() => gw?.stop({ cleanup: true }));

const routes = (tenant: string, own: Own) => [
  ['GET', `/v1/tenants/${tenant}`],
  ['GET', `/v1/tenants/${tenant}/conversations`],
  ['GET', `/v1/tenants/${tenant}/conversations/${own.conversation}/messages`],
  ['GET', `/v1/tenants/${tenant}/messages/${own.message}`],
  ['GET', `/v1/tenants/${tenant}/outbox`],
  ['GET', `/v1/tenants/${tenant}/outbox/${own.outbox}`],
  ['GET', `/v1/tenants/${tenant}/dead-letters`],
  ['GET', `/v1/tenants/${tenant}/keys`],
  ['GET', `/v1/tenants/${tenant}/consent/+15551234567`],
  ['GET', `/v1/tenants/${tenant}/usage?groupBy=day`],
  ['GET', `/v1/tenants/${tenant}/conversations/${own.conversation}/handoff`],
  ['PUT', `/v1/tenants/${tenant}/conversations/${own.conversation}/handoff`],
  ['GET', `/v1/tenants/${tenant}/parked`],
  ['POST', `/v1/tenants/${tenant}/messages`],
  ['GET', `/v1/tenants/${tenant}/activity`],
  ['GET', `/v1/tenants/${tenant}/alerts`],
  ['POST', `/v1/tenants/${tenant}/conversations/${own.conversation}/reveal`],
  ['POST', `/v1/tenants/${tenant}/conversations/${own.conversation}/messages`],
  ['GET', `/v1/tenants/${tenant}/crisis-detections`],
  ['POST', `/v1/tenants/${tenant}/crisis-detections/${own.detection}/false-positive`],
] as const;

/** A valid body for the route's method, so a refusal can only come from the key. */
const bodyFor = (method: 'POST' | 'PUT') => (method === 'POST' ? { from: 'x', text: 'y' } : { state: 'bot' });

describe('tenant isolation on every admin route', () => {
  it('answers 401 to a missing or forged key', async () => {
    for (const [method, path] of routes('acme', ids.acme)) {
      for (const key of [undefined, 'forged-key', `${KEYS.acme}x`]) {
        const r = await gw.request(method, path, { ...(key ? { key } : {}), ...(method !== 'GET' ? { body: bodyFor(method) } : {}) });
        expect(r.status, `${method} ${path} with ${key}`).toBe(401);
        expect(r.body.error.code).toBe('PARLEY_UNAUTHENTICATED');
      }
    }
  });

  it("answers 403 to another tenant's key and never returns its rows", async () => {
    for (const [tenant, own, stranger] of [['acme', ids.acme, KEYS.globex], ['globex', ids.globex, KEYS.acme]] as const) {
      for (const [method, path] of routes(tenant, own)) {
        const r = await gw.request(method, path, { key: stranger, ...(method !== 'GET' ? { body: bodyFor(method) } : {}) });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.text).not.toContain(own.message);
      }
    }
  });

  it("answers 404 when a tenant's key asks for another tenant's ids under its own tenant", async () => {
    const cross = [
      `/v1/tenants/acme/messages/${ids.globex.message}`,
      `/v1/tenants/acme/conversations/${ids.globex.conversation}/messages`,
      `/v1/tenants/acme/outbox/${ids.globex.outbox}`,
      `/v1/tenants/acme/conversations/${ids.globex.conversation}/handoff`,
    ];
    for (const path of cross) {
      const r = await gw.request('GET', path, { key: KEYS.acme });
      expect(r.status, path).toBe(404);
    }
    const retry = await gw.request('POST', `/v1/tenants/acme/outbox/${ids.globex.outbox}/retry`, { key: KEYS.acme });
    expect(retry.status).toBe(404);
    const handoff = await gw.request('PUT', `/v1/tenants/acme/conversations/${ids.globex.conversation}/handoff`, { key: KEYS.acme, body: { state: 'human' } });
    expect(handoff.status).toBe(404);
    for (const path of [`/v1/tenants/acme/conversations/${ids.globex.conversation}/reveal`, `/v1/tenants/acme/conversations/${ids.globex.conversation}/messages`]) {
      const r = await gw.request('POST', path, { key: KEYS.acme, body: { text: 'hello' } });
      expect(r.status, path).toBe(404);
    }
    const falsePositive = await gw.request('POST', `/v1/tenants/acme/crisis-detections/${ids.globex.detection}/false-positive`, { key: KEYS.acme, body: {} });
    expect(falsePositive.status).toBe(404);
    const detections = await gw.request('GET', '/v1/tenants/acme/crisis-detections', { key: KEYS.acme });
    expect(detections.body.detections.map((d: { id: string }) => d.id)).toEqual([ids.acme.detection]);
    const globexHandoff = await gw.request('GET', `/v1/tenants/globex/conversations/${ids.globex.conversation}/handoff`, { key: KEYS.globex });
    expect(globexHandoff.body.handoff.state).toBe('bot');
    const list = await gw.request('GET', '/v1/tenants/acme/outbox', { key: KEYS.acme });
    expect(list.body.outbox.every((i: { tenantId: string }) => i.tenantId === 'acme')).toBe(true);
  });

  it('lets a tenant key read its own data and the operator key read everyone', async () => {
    for (const [method, path] of routes('acme', ids.acme)) {
      if (method !== 'GET') continue;
      expect((await gw.request(method, path, { key: KEYS.acme })).status, path).toBe(200);
      expect((await gw.request(method, path, { key: KEYS.operator })).status, path).toBe(200);
    }
    const tenants = await gw.request('GET', '/v1/tenants', { key: KEYS.acme });
    expect(tenants.body.tenants.map((t: { id: string }) => t.id)).toEqual(['acme']);
    const all = await gw.request('GET', '/v1/tenants', { key: KEYS.operator });
    expect(all.body.tenants.map((t: { id: string }) => t.id)).toEqual(['acme', 'globex']);
    expect((await gw.request('GET', '/v1/tenants/nobody', { key: KEYS.operator })).status).toBe(404);
    expect((await gw.request('GET', '/v1/tenants/nobody', { key: KEYS.acme })).status).toBe(403);
  });

  it('holds for a console session exactly as for the key it was made with', async () => {
    const signIn = async (key: string) => {
      const r = await gw.request('POST', '/console/session', { body: { key } });
      expect(r.status).toBe(201);
      return { cookie: r.headers.get('set-cookie')!.split(';')[0]!, csrf: r.body.csrf as string };
    };
    const globex = await signIn(KEYS.globex);
    for (const [method, path] of routes('acme', ids.acme)) {
      const r = await gw.request(method, path, { headers: { cookie: globex.cookie, 'x-parley-csrf': globex.csrf }, ...(method !== 'GET' ? { body: bodyFor(method) } : {}) });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.text).not.toContain(ids.acme.message);
    }
    const acme = await signIn(KEYS.acme);
    for (const [method, path] of routes('acme', ids.acme)) {
      if (method !== 'GET') continue;
      expect((await gw.request(method, path, { headers: { cookie: acme.cookie } })).status, path).toBe(200);
    }
    expect((await gw.request('GET', '/v1/parked', { headers: { cookie: acme.cookie } })).status).toBe(403);
    expect((await gw.request('GET', '/console/session')).status).toBe(401);
    expect((await gw.request('GET', '/console/session', { headers: { cookie: 'parley_console=forged-token' } })).status).toBe(401);
  });

  it('shows every parked webhook to the operator only', async () => {
    for (const key of [KEYS.acme, KEYS.globex]) expect((await gw.request('GET', '/v1/parked', { key })).status).toBe(403);
    expect((await gw.request('GET', '/v1/parked')).status).toBe(401);
    const all = await gw.request('GET', '/v1/parked', { key: KEYS.operator });
    expect(all.status).toBe(200);
    expect(all.body.parked).toEqual([]);
  });

  it('issues stored keys (hashed) through the operator, which work until revoked', async () => {
    expect((await gw.request('POST', '/v1/tenants/acme/keys', { key: KEYS.acme, body: { label: 'ci' } })).status).toBe(403);
    const created = await gw.request('POST', '/v1/tenants/acme/keys', { key: KEYS.operator, body: { label: 'ci' } });
    expect(created.status).toBe(201);
    const secret = created.body.key.secret as string;
    const { rows } = await gw.gateway.db.pool.query('SELECT key_hash FROM parley_api_keys WHERE id = $1', [created.body.key.id]);
    expect(rows[0].key_hash).not.toContain(secret);
    expect(rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect((await gw.request('GET', '/v1/tenants/acme/outbox', { key: secret })).status).toBe(200);
    expect((await gw.request('GET', '/v1/tenants/globex/outbox', { key: secret })).status).toBe(403);
    expect((await gw.request('DELETE', `/v1/tenants/acme/keys/${created.body.key.id}`, { key: KEYS.operator })).status).toBe(204);
    expect((await gw.request('GET', '/v1/tenants/acme/outbox', { key: secret })).status).toBe(401);
  });
});

describe('HTTP edges', () => {
  it('answers unknown routes with a JSON 404', async () => {
    const r = await gw.request('GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('PARLEY_NOT_FOUND');
  });

  it('rejects malformed and oversized bodies with a 4xx and a reason', async () => {
    const bad = await gw.request('POST', '/v1/tenants/acme/messages', { key: KEYS.acme, raw: '{"from": ', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    const invalid = await gw.request('POST', '/v1/tenants/acme/messages', { key: KEYS.acme, body: { from: 42 } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.message).toMatch(/from/);
    const big = await gw.request('POST', '/v1/tenants/acme/messages', { key: KEYS.acme, body: { from: 'x', text: 'y'.repeat(300_000) } });
    expect(big.status).toBe(413);
    const badId = await gw.request('GET', '/v1/tenants/acme/messages/not-a-uuid', { key: KEYS.acme });
    expect(badId.status).toBe(404);
    const badQuery = await gw.request('GET', '/v1/tenants/acme/outbox?limit=abc', { key: KEYS.acme });
    expect(badQuery.status).toBe(400);
  });

  it('never answers 5xx to fuzzed payloads', async () => {
    const samples = ['', 'null', '[]', '"x"', '{"from":null}', '{"from":"a","text":{"$ne":1}}', '\u0000\u0001', '%%%', 'a=b&c', '{"from":"a","text":"b","media":[{"url":"javascript:x"}]}'];
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 40; i++) samples.push(Array.from({ length: Math.floor(rand() * 200) }, () => String.fromCharCode(Math.floor(rand() * 256))).join(''));
    for (const raw of samples) {
      for (const type of ['application/json', 'application/x-www-form-urlencoded', 'text/plain']) {
        const r = await gw.request('POST', '/v1/tenants/acme/messages', { key: KEYS.acme, raw, headers: { 'content-type': type } });
        expect(r.status, `${type}: ${JSON.stringify(raw)}`).toBeLessThan(500);
      }
    }
  });

  it('reports liveness and per-component readiness with latency', async () => {
    const live = await gw.request('GET', '/healthz');
    expect(live.status).toBe(200);
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.components.database).toMatchObject({ ok: true });
    expect(ready.body.components.jobs).toMatchObject({ ok: true });
    expect(typeof ready.body.components.database.latencyMs).toBe('number');
    expect(ready.headers.get('x-request-id')).toBeTruthy();
  });
});

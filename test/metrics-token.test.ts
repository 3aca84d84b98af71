/**
 * `server.metricsToken`: tenant ids and per-tenant counts in `/metrics` and `/readyz` only for a
 * caller with the token; a load balancer without it still reads the overall status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants } from './fixtures/configs.js';

const TOKEN = 'metrics-token-0123456789abcdef';
let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ config: { ...twoTenants(), server: { metricsToken: '${PARLEY_METRICS_TOKEN}' } }, catalogue, env: { PARLEY_METRICS_TOKEN: TOKEN } });
  await gw.send('acme', { from: 'someone', text: 'hi' });
});
afterAll(() => gw?.stop({ cleanup: true }));

describe('with server.metricsToken set', () => {
  it('answers /metrics 401 without the token or with another, and the metrics with it', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token' }, { authorization: TOKEN }] as Record<string, string>[]) {
      const r = await gw.request('GET', '/metrics', { headers });
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(r.text).not.toContain('acme');
    }
    const ok = await gw.request('GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('tenant="acme"');
  });

  it('answers /readyz with the overall status only, and the components with the token', async () => {
    const bare = await gw.request('GET', '/readyz');
    expect(bare.status).toBe(200);
    expect(bare.body).toEqual({ status: 'ready' });
    const full = await gw.request('GET', '/readyz', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(full.body.components.database).toMatchObject({ ok: true });
  });

  it('keeps /healthz open', async () => {
    expect((await gw.request('GET', '/healthz')).status).toBe(200);
  });
});

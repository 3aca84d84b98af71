/**
 * `ctx.background`: fire-and-forget work the kernel tracks. Failures are logged with the plugin and
 * counted; shutdown waits for what is still running, up to the shutdown timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants } from './fixtures/configs.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({ config: { ...twoTenants(), server: { shutdownTimeoutMs: 1_500 } }, catalogue });
});
afterAll(() => gw?.stop({ cleanup: true }));

describe('background work of a plugin', () => {
  it('is logged with the plugin and what it was, and counted, when it fails', async () => {
    let fail!: (error: Error) => void;
    probeControl.background!(new Promise((_, reject) => (fail = reject)), 'call the provider back');
    fail(new Error('provider gone'));
    for (let i = 0; i < 100 && !gw.logs.some((l) => l.msg === 'background task failed'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(gw.logs.find((l) => l.msg === 'background task failed')).toMatchObject({ plugin: 'probe', task: 'call the provider back', err: { message: 'provider gone' } });
    expect(await gw.metrics()).toMatch(/parley_background_failures_total\{plugin="probe"\} 1/);
  });

  it('is awaited on shutdown, and a task that never settles does not keep the gateway from stopping', async () => {
    let finished = false;
    probeControl.background!(new Promise((r) => setTimeout(r, 300)).then(() => (finished = true)), 'finish writing');
    probeControl.background!(new Promise(() => undefined), 'hang forever');
    await gw.gateway.stop();
    expect(finished).toBe(true);
    expect(gw.logs.some((l) => l.msg === 'background work did not finish before the shutdown deadline' && l.tasks === 1)).toBe(true);
  });
});

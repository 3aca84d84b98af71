/**
 * `enqueueOutbound({ idempotencyKey })`: a repeated or concurrent call with one key stores one outbox
 * item, runs the reply stages once and sends once; other keys and other tenants are independent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants } from './fixtures/configs.js';
import { TEST_BACKEND, externalServices } from './backend.js';

let gw: TestGateway;
const skip = TEST_BACKEND === 'external' ? await externalServices() : null;

beforeAll(async () => {
  if (skip) return;
  gw = await startTestGateway({ config: twoTenants({ replyPipeline: ['probe.meter'] }), catalogue });
}, 120_000);
afterAll(() => gw?.stop({ cleanup: true }), 60_000);
beforeEach(() => probeControl.reset());

const send = (tenantId: string, idempotencyKey: string, text = 'your appointment is tomorrow') => gw.gateway.enqueueOutbound({ tenantId, channel: 'probe-channel', to: '+15557779001', text, idempotencyKey });

describe.skipIf(skip)(`enqueueOutbound with an idempotency key on the ${TEST_BACKEND} backend`, () => {
  it('stores, screens and sends once for repeated and concurrent calls with one key', async () => {
    const first = await send('acme', 'reminder:r1:2027-03-14T12:00:00.000Z');
    const again = await send('acme', 'reminder:r1:2027-03-14T12:00:00.000Z', 'a different text is ignored');
    const racing = await Promise.all([1, 2, 3, 4].map(() => send('acme', 'reminder:r1:2027-03-15T12:00:00.000Z')));
    expect(again.id).toBe(first.id);
    expect(new Set(racing.map((r) => r.id)).size).toBe(1);
    expect(racing[0]!.id).not.toBe(first.id);
    await gw.waitForOutbox('acme', (all) => all.filter((i) => i.to === '+15557779001' && i.status === 'sent').length === 2, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(probeControl.sends.map((m) => m.text)).toEqual(['your appointment is tomorrow', 'your appointment is tomorrow']);
    expect((await gw.outbox('acme')).filter((i) => i.to === '+15557779001')).toHaveLength(2);
    // The reply stage saw the first call of each key (concurrent callers may screen before one of them stores: at most once per caller, never stored twice).
    expect(probeControl.outgoing.filter((o) => o.key === `out:${first.id}`)).toHaveLength(1);
    const later = await send('acme', 'reminder:r1:2027-03-14T12:00:00.000Z');
    expect(later).toMatchObject({ id: first.id, status: 'sent' });
  });

  it('keeps keys per tenant and refuses an empty or overlong key', async () => {
    const a = await send('acme', 'shared-key');
    const b = await send('globex', 'shared-key');
    expect(a.id).not.toBe(b.id);
    await expect(send('acme', '')).rejects.toMatchObject({ code: 'PARLEY_BAD_REQUEST' });
    await expect(send('acme', 'x'.repeat(201))).rejects.toMatchObject({ code: 'PARLEY_BAD_REQUEST' });
  });
});

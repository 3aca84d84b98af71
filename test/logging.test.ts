import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants } from './fixtures/configs.js';
import { hashAddress } from '../core/logger.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ config: twoTenants(), catalogue, logLevel: 'debug' });
});
afterAll(() => gw?.stop({ cleanup: true }));

describe('logs', () => {
  it('hash phone numbers and never carry message bodies, even at debug', async () => {
    await gw.send('acme', { from: '+15559876543', text: 'my secret symptom is boom' });
    const all = JSON.stringify(gw.logs);
    expect(all).not.toContain('+15559876543');
    expect(all).not.toContain('5559876543');
    expect(all).not.toContain('secret symptom');
    expect(all).toContain(hashAddress('+15559876543'));
    expect(gw.logs.some((l) => l.msg === 'pipeline failed; sending the fallback reply' && l.from === hashAddress('+15559876543'))).toBe(true);
  });

  it('hash a number the same way with or without a channel prefix', () => {
    expect(hashAddress('whatsapp:+15551230000')).toBe(hashAddress('+15551230000'));
    expect(hashAddress('+15551230000')).toMatch(/^ph_[0-9a-f]{12}$/);
  });
});

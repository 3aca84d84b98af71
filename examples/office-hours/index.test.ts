import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { startTestGateway, type TestGateway } from 'parley/testing';
import { isOpen, localTime } from './index.js';

const hours = { mon: { open: '08:00', close: '18:00' }, sat: { open: '09:00', close: '13:00' } };

describe('office-hours (an example third-party plugin)', () => {
  it('reads weekday and time in the tenant time zone', () => {
    // 2026-11-23 is a Monday; 07:30 UTC is 02:30 in New York.
    expect(localTime(new Date('2026-11-23T07:30:00Z'), 'America/New_York')).toEqual({ day: 'mon', minutes: 150 });
    const settings = { hours, closedReply: 'closed', stopWhenClosed: false };
    expect(isOpen(settings, new Date('2026-11-23T14:00:00Z'), 'America/New_York')).toBe(true);
    expect(isOpen(settings, new Date('2026-11-23T07:30:00Z'), 'America/New_York')).toBe(false);
    expect(isOpen(settings, new Date('2026-11-24T14:00:00Z'), 'America/New_York')).toBe(false);
  });

  describe('loaded by module path into a real gateway', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startTestGateway({
        baseDir: fileURLToPath(new URL('../..', import.meta.url)),
        config: {
          plugins: ['http', 'keyword-replies', { name: 'office-hours', module: './examples/office-hours/index.ts' }],
          tenants: [
            {
              id: 'clinic',
              timezone: 'Pacific/Kiritimati',
              apiKeys: ['clinic-key-123456'],
              pipeline: ['office-hours', 'keyword-replies'],
              plugins: { http: {}, 'office-hours': { hours: {}, closedReply: 'We are closed (always, in this test).' }, 'keyword-replies': { defaultReply: 'Noted.' } },
            },
          ],
        },
      });
    });
    afterAll(() => gw?.stop({ cleanup: true }));

    it('adds the closed note once per conversation and lets later stages answer', async () => {
      const first = await gw.send('clinic', { from: 'pat', text: 'hello' });
      expect(first.replies.map((r) => r.text)).toEqual(['We are closed (always, in this test).']);
      const second = await gw.send('clinic', { from: 'pat', text: 'still there?' });
      expect(second.replies.map((r) => r.text)).toEqual(['Noted.']);
    });
  });
});

/** cost-guard's pure helpers: cache-key normalisation, SMS segments, IP ranges, budget windows. */
import { describe, expect, it } from 'vitest';
import { cacheKey, normalise } from './ai.js';
import { smsSegments } from './stage.js';
import { blockListOf, parseRange } from './routes.js';
import { windowKeys } from './store.js';

const call = (content: string, contextVersion?: string) => ({ tenantId: 't', plugin: 'p', operation: 'chat' as const, provider: 'big', model: 'm', purpose: 'answer', messages: [{ role: 'user', content }], estimatedInputTokens: 1, ...(contextVersion ? { contextVersion } : {}) });

describe('the response cache key', () => {
  it('ignores case, spacing and trailing punctuation, and changes with the context version', () => {
    expect(normalise('  What time   do you OPEN?! ')).toBe('what time do you open');
    expect(cacheKey(call('What time do you open?'))).toBe(cacheKey(call('what time  do you open')));
    expect(cacheKey(call('What time do you open?', 'v2'))).not.toBe(cacheKey(call('What time do you open?', 'v1')));
    expect(cacheKey(call('What time do you close?'))).not.toBe(cacheKey(call('What time do you open?')));
  });
});

describe('helpers', () => {
  it('counts SMS segments for GSM-7 and other text', () => {
    expect(smsSegments('a'.repeat(160))).toBe(1);
    expect(smsSegments('a'.repeat(161))).toBe(2);
    expect(smsSegments('é'.repeat(10) + '😀')).toBe(1);
    expect(smsSegments('😀'.repeat(40))).toBe(2);
  });

  it('parses IP ranges and matches addresses in them', () => {
    expect(parseRange('203.0.113.0/24')).toEqual({ address: '203.0.113.0', prefix: 24, family: 'ipv4' });
    expect(parseRange('10.0.0.1')).toMatchObject({ prefix: 32 });
    expect(parseRange('2001:db8::/32')).toMatchObject({ family: 'ipv6', prefix: 32 });
    expect(parseRange('10.0.0.0/33')).toBeNull();
    expect(parseRange('example.com')).toBeNull();
    const list = blockListOf(['203.0.113.0/24']);
    expect(list.check('203.0.113.9', 'ipv4')).toBe(true);
    expect(list.check('203.0.114.9', 'ipv4')).toBe(false);
  });

  it('names budget windows in the tenant’s time zone', () => {
    const at = new Date('2026-12-01T03:00:00Z');
    expect(windowKeys('UTC', at)).toEqual({ day: '2026-12-01', month: '2026-12' });
    expect(windowKeys('America/New_York', at)).toEqual({ day: '2026-11-30', month: '2026-11' });
  });
});

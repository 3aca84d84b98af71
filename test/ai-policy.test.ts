/** The AI call policy on its own: what is retried, how long to wait, and the breaker's states. */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, backoffMs, classify, retryAfterMs } from '../core/ai/policy.js';

const httpError = (status: number, headers: Record<string, string> = {}) => Object.assign(new Error(`${status}`), { status, headers: new Headers(headers) });
const flags = { timedOut: false, aborted: false };

describe('classify', () => {
  it('retries 429, 408 and 5xx (with Retry-After) and network errors; not other 4xx; a timeout or abort is its own kind', () => {
    expect(classify(httpError(429, { 'retry-after': '2' }), flags)).toEqual({ kind: 'retryable', status: 429, retryAfterMs: 2000 });
    expect(classify(httpError(503), flags)).toEqual({ kind: 'retryable', status: 503 });
    expect(classify(httpError(400), flags)).toEqual({ kind: 'rejected', status: 400 });
    expect(classify(httpError(401), flags).kind).toBe('rejected');
    expect(classify(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }), flags).kind).toBe('retryable');
    expect(classify(Object.assign(new Error('timed out'), { name: 'TimeoutError' }), flags).kind).toBe('timeout');
    expect(classify(httpError(500), { timedOut: true, aborted: false }).kind).toBe('timeout');
    expect(classify(httpError(500), { timedOut: false, aborted: true }).kind).toBe('aborted');
  });

  it('reads Retry-After as seconds or an HTTP date, and retry-after-ms', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(retryAfterMs(httpError(429, { 'retry-after': 'Tue, 01 Dec 2026 10:00:05 GMT' }), now)).toBe(5000);
    expect(retryAfterMs(httpError(429, { 'retry-after-ms': '150' }), now)).toBe(150);
    expect(retryAfterMs(httpError(429, { 'retry-after': 'soon' }), now)).toBeUndefined();
  });

  it('backs off exponentially with jitter in [0.5, 1.5) of the step', () => {
    expect([1, 2, 3].map((n) => backoffMs(n, 100, () => 0))).toEqual([50, 100, 200]);
    expect(backoffMs(3, 100, () => 0.999)).toBe(600);
  });
});

describe('CircuitBreaker', () => {
  it('opens after N failures in a row, admits one trial after openMs, and closes or reopens on its result', () => {
    let now = 0;
    const events: string[] = [];
    const breaker = new CircuitBreaker(2, 1000, { open: (n) => events.push(`open ${n}`), close: () => events.push('close') }, () => now);
    breaker.failure();
    breaker.success();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect([breaker.state, breaker.acquire(), events]).toEqual(['open', 'refuse', ['open 2']]);
    now = 1000;
    expect([breaker.state, breaker.acquire(), breaker.acquire()]).toEqual(['half-open', 'trial', 'refuse']);
    breaker.failure(); // the trial failed: open again, no second alert
    expect([breaker.state, events]).toEqual(['open', ['open 2']]);
    now = 2000;
    expect(breaker.acquire()).toBe('trial');
    breaker.success();
    expect([breaker.state, breaker.consecutiveFailures, events]).toEqual(['closed', 0, ['open 2', 'close']]);
  });
});

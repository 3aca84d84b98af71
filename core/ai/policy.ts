/**
 * How one AI provider call is made safe: which failures are retried (429, 5xx, network; never a 4xx
 * or a timeout), how long to wait (exponential backoff with jitter, or the provider's Retry-After),
 * and the per-provider circuit breaker.
 *
 * LangChain's own retries are switched off (`maxRetries: 0` on every model): its AsyncCaller (p-retry)
 * waits at least 1 s before a first retry whatever the provider, does not retry a 429 that has no
 * Retry-After (or one over 60 s), and retries silently, so the breaker and the metrics could not see
 * attempts. What it does right (Retry-After, no retry on 400/401) is kept here.
 */
import type { AiBreakerState } from './types.js';

export type FailureKind = 'aborted' | 'timeout' | 'rejected' | 'retryable' | 'unknown';

export interface Classified {
  kind: FailureKind;
  /** HTTP status of the provider's answer, when there was one. */
  status?: number;
  /** The provider's own error code or type (`rate_limit_exceeded`), never its message. */
  providerCode?: string;
  retryAfterMs?: number;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);
const NETWORK_ERROR_NAMES = new Set(['APIConnectionError', 'FetchError']);

function statusOf(error: object): number | undefined {
  const e = error as { status?: unknown; response?: { status?: unknown } };
  if (typeof e.status === 'number') return e.status;
  if (typeof e.response?.status === 'number') return e.response.status;
  return undefined;
}

function header(error: object, name: string): string | undefined {
  const headers = (error as { headers?: unknown }).headers;
  if (!headers || typeof headers !== 'object') return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : undefined;
}

/** `Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`. */
export function retryAfterMs(error: object, now = Date.now()): number | undefined {
  const ms = Number(header(error, 'retry-after-ms'));
  if (header(error, 'retry-after-ms') !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = header(error, 'retry-after')?.trim();
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function isNetworkError(error: object, depth = 0): boolean {
  const e = error as { name?: unknown; code?: unknown; cause?: unknown; message?: unknown; constructor?: { name?: string } };
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (NETWORK_ERROR_NAMES.has(String(e.name)) || NETWORK_ERROR_NAMES.has(e.constructor?.name ?? '')) return true;
  if (e instanceof TypeError && e.message === 'fetch failed') return true;
  return depth < 3 && !!e.cause && typeof e.cause === 'object' && isNetworkError(e.cause, depth + 1);
}

/** What a failed attempt means for the call. `timedOut`: our own deadline fired; `aborted`: the caller's. */
export function classify(error: unknown, flags: { timedOut: boolean; aborted: boolean }): Classified {
  if (flags.aborted) return { kind: 'aborted' };
  if (flags.timedOut) return { kind: 'timeout' };
  if (!error || typeof error !== 'object') return { kind: 'unknown' };
  const e = error as { name?: unknown; code?: unknown; type?: unknown; error?: { type?: unknown; code?: unknown }; constructor?: { name?: string } };
  // The OpenAI SDK's APIConnectionTimeoutError (LangChain renames it TimeoutError); Anthropic's keeps its class name.
  if (e.name === 'TimeoutError' || e.constructor?.name === 'APIConnectionTimeoutError') return { kind: 'timeout' };
  const status = statusOf(error);
  const providerCode = [e.code, e.type, e.error?.type, e.error?.code].find((c): c is string => typeof c === 'string' && /^[a-z0-9_.-]{1,64}$/i.test(c));
  const base = { ...(status !== undefined ? { status } : {}), ...(providerCode ? { providerCode } : {}) };
  if (status !== undefined) {
    if (status === 429 || status === 408 || status >= 500) {
      const after = retryAfterMs(error);
      return { kind: 'retryable', ...base, ...(after !== undefined ? { retryAfterMs: after } : {}) };
    }
    return { kind: 'rejected', ...base };
  }
  if (isNetworkError(error)) return { kind: 'retryable', ...base };
  return { kind: 'unknown', ...base };
}

/** The wait before retry `attempt` (1-based): `base * 2^(attempt-1)`, times a jitter factor in [0.5, 1.5). */
export function backoffMs(attempt: number, baseMs: number, random = Math.random): number {
  return Math.round(baseMs * 2 ** (attempt - 1) * (0.5 + random()));
}

/** A Retry-After longer than this is not waited for: the call fails and the caller falls back. */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * Consecutive-failure circuit breaker. `closed`: calls go through. After `failures` failed calls in a
 * row it is `open` for `openMs`: calls fail fast. Then the first call is a trial (`half-open`; others
 * still fail fast): success closes it, failure opens it again.
 */
export class CircuitBreaker {
  private state_: 'closed' | 'open' = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;

  constructor(
    private readonly limit: number,
    private readonly openMs: number,
    private readonly on: { open(failures: number): void; close(): void },
    private readonly now: () => number = Date.now,
  ) {}

  get state(): AiBreakerState {
    if (this.state_ === 'closed') return 'closed';
    return this.trialInFlight || this.now() - this.openedAt >= this.openMs ? 'half-open' : 'open';
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Whether a call may go now; `trial` when it is the half-open trial (report its end). */
  acquire(): 'go' | 'trial' | 'refuse' {
    if (this.state_ === 'closed') return 'go';
    if (this.trialInFlight || this.now() - this.openedAt < this.openMs) return 'refuse';
    this.trialInFlight = true;
    return 'trial';
  }

  /** When the call is allowed again, for the error a refused caller gets. */
  retryAt(): number {
    return this.openedAt + this.openMs;
  }

  success(): void {
    this.trialInFlight = false;
    this.failures = 0;
    if (this.state_ === 'open') {
      this.state_ = 'closed';
      this.on.close();
    }
  }

  failure(): void {
    this.trialInFlight = false;
    this.failures++;
    const wasOpen = this.state_ === 'open';
    if (wasOpen || this.failures >= this.limit) {
      this.state_ = 'open';
      this.openedAt = this.now();
      if (!wasOpen) this.on.open(this.failures);
    }
  }

  /** A trial that ended without telling (the caller aborted, a 4xx): let the next call try again. */
  release(): void {
    this.trialInFlight = false;
  }
}

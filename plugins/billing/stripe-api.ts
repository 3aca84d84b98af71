/**
 * The one way billing calls Stripe: the official SDK (redirected to a local fake by `apiBaseUrl`),
 * every mutating call with an idempotency key that is reused on every attempt, and 429, 5xx, 409 and
 * network errors retried with exponential backoff and jitter. The SDK's own retries are off
 * (`maxNetworkRetries: 0`): it retries a 429 only when Stripe sends `Stripe-Should-Retry: true`, with
 * a fresh random key, and silently, so attempts could not be counted.
 */
import Stripe from 'stripe';

export interface StripeCallPolicy {
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
  apiBaseUrl?: string | undefined;
}

/** Stripe's limit on an idempotency key. */
const MAX_KEY = 255;

export function createStripe(secretKey: string, policy: StripeCallPolicy): Stripe {
  const base = policy.apiBaseUrl ? new URL(policy.apiBaseUrl) : undefined;
  return new Stripe(secretKey, {
    maxNetworkRetries: 0,
    timeout: policy.timeoutMs,
    telemetry: false,
    appInfo: { name: 'parley-billing' },
    ...(base ? { protocol: base.protocol.replace(':', '') as 'http' | 'https', host: base.hostname, port: base.port || (base.protocol === 'https:' ? 443 : 80) } : {}),
  });
}

/** Whether a failed call may succeed when repeated with the same key. */
export function retryable(error: unknown): boolean {
  const e = error as { statusCode?: number; type?: string; code?: string };
  if (e?.type === 'StripeConnectionError') return true;
  if (typeof e?.statusCode !== 'number') return e?.type === 'StripeAPIError';
  return e.statusCode === 429 || e.statusCode === 409 || e.statusCode >= 500;
}

/** Short text for logs and metrics: the status and Stripe's code, never request data. */
export function describeError(error: unknown): string {
  const e = error as { statusCode?: number; code?: string; type?: string; message?: string };
  return [e?.type ?? 'Error', e?.statusCode, e?.code].filter((v) => v !== undefined && v !== null).join(' ');
}

export function idempotencyKey(...parts: string[]): string {
  const key = `parley:${parts.join(':')}`;
  return key.length <= MAX_KEY ? key : key.slice(0, MAX_KEY);
}

/**
 * Runs `call` with up to `policy.attempts` attempts; `call` gets the idempotency key to pass (the same on
 * every attempt). Resolves with the result or rejects with the last error.
 * @example
 * const customer = await withRetries(policy, idempotencyKey('customer', tenantId, subject), (key) => stripe.customers.create(params, { idempotencyKey: key }));
 */
export async function withRetries<T>(policy: Pick<StripeCallPolicy, 'attempts' | 'backoffMs'>, key: string | undefined, call: (key: string | undefined) => Promise<T>, onRetry?: (error: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(key);
    } catch (error) {
      if (attempt >= policy.attempts || !retryable(error)) throw error;
      onRetry?.(error, attempt);
      const delay = policy.backoffMs * 2 ** (attempt - 1);
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
    }
  }
}

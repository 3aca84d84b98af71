import { createRequire } from 'node:module';
import type twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type * as HttpResponse from 'twilio/lib/http/response.js';

export interface TwilioClientOptions {
  accountSid: string;
  authToken: string;
  /**
   * Where to send REST calls instead of `https://*.twilio.com`, e.g. a local fake in tests
   * (`http://127.0.0.1:PORT`). Undefined means the real Twilio API.
   */
  apiBaseUrl?: string | undefined;
  /** Per-request timeout in milliseconds (the SDK's default is 30 000). */
  timeoutMs?: number | undefined;
}

/** The longest `Retry-After` honoured; a larger one is cut to this, so a send is never parked for hours. */
export const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * Twilio refused a request and said when to try again (`Retry-After` on a 429 or 503). The SDK's
 * `RestException` keeps the status, code and message but drops the response headers, so the HTTP
 * client raises this instead, with the same fields plus `retryAfterMs`.
 */
export class TwilioRetryAfterError extends Error {
  override readonly name = 'TwilioRetryAfterError';
  readonly status: number;
  readonly code: number | undefined;
  readonly moreInfo: string | undefined;
  readonly retryAfterMs: number;

  constructor(response: { statusCode: number; body: unknown }, retryAfterMs: number) {
    const body = parseBody(response.body);
    const text = (key: string) => (typeof body[key] === 'string' ? (body[key] as string) : undefined);
    super(text('message') ?? text('detail') ?? text('title') ?? `[HTTP ${response.statusCode}] Failed to execute request`);
    this.status = response.statusCode;
    this.code = typeof body['code'] === 'number' ? body['code'] : undefined;
    this.moreInfo = text('more_info') ?? text('type');
    this.retryAfterMs = retryAfterMs;
  }
}

function parseBody(body: unknown): Record<string, unknown> {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      value = null;
    }
  }
  return isRecord(value) ? value : {};
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds (capped); undefined when absent or unreadable. */
export function parseRetryAfter(header: unknown, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const text = value.trim();
  const ms = /^\d+$/u.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  return Number.isNaN(ms) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

function headerOf(headers: unknown, name: string): unknown {
  if (!isRecord(headers)) return undefined;
  // axios hands over AxiosHeaders (with get); a plain object is indexed by the lower-case name.
  return typeof headers['get'] === 'function' ? (headers['get'] as (n: string) => unknown).call(headers, name) : headers[name];
}

/**
 * The SDK, loaded on the first client built: its index loads the whole REST client (0.2 s to import
 * alone on the bench machine; bench/README.md, step 8), which a gateway that answers inline in TwiML
 * may never use; the webhook validators and TwiML builders are imported from their own modules. A
 * synchronous `require` (the SDK is CommonJS), so building a client stays synchronous.
 */
let sdk: typeof twilio | undefined;
function twilioSdk(): typeof twilio {
  return (sdk ??= createRequire(import.meta.url)('twilio') as typeof twilio);
}

type ParleyRequestClientClass = new (apiBaseUrl: string | undefined, opts: RequestClient.RequestClientOptions) => RequestClient;
let requestClientClass: ParleyRequestClientClass | undefined;

/**
 * The HTTP client every SDK request passes through. It redirects requests for `*.twilio.com` to
 * `apiBaseUrl` when one is given (the SDK builds absolute `https://<product>.twilio.com/...` URLs and
 * has no base-URL option: `edge`/`region` only rewrite the host name inside twilio.com), and turns a
 * 429/503 that carries `Retry-After` into {@link TwilioRetryAfterError}. Defined once the SDK is loaded.
 */
function parleyRequestClient(): ParleyRequestClientClass {
  if (requestClientClass) return requestClientClass;
  class ParleyRequestClient extends twilioSdk().RequestClient {
    readonly #base: URL | undefined;

    constructor(apiBaseUrl: string | undefined, opts: RequestClient.RequestClientOptions) {
      super(opts);
      this.#base = apiBaseUrl === undefined ? undefined : new URL(apiBaseUrl.endsWith('/') ? apiBaseUrl : `${apiBaseUrl}/`);
    }

    override async request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<HttpResponse.default<TData>> {
      const response = await super.request(this.redirect(opts));
      if (response.statusCode === 429 || response.statusCode === 503) {
        const retryAfterMs = parseRetryAfter(headerOf(response.headers, 'retry-after'));
        if (retryAfterMs !== undefined) throw new TwilioRetryAfterError(response, retryAfterMs);
      }
      return response;
    }

    private redirect<TData>(opts: RequestClient.RequestOptions<TData>): RequestClient.RequestOptions<TData> {
      if (!this.#base) return opts;
      const target = new URL(opts.uri);
      if (target.hostname !== 'twilio.com' && !target.hostname.endsWith('.twilio.com')) return opts;
      const rewritten = new URL(target.pathname.replace(/^\/+/u, '') + target.search, this.#base);
      return { ...opts, uri: rewritten.href };
    }
  }
  return (requestClientClass = ParleyRequestClient);
}

/**
 * A real twilio SDK client with the SDK's own 429 retries off: Parley's outbox owns retries, and a
 * hidden retry inside a send would make its attempt count and timing wrong.
 *
 * @example const client = createTwilioClient({ accountSid, authToken });
 * await client.messages.create({ to, from, body });
 */
export function createTwilioClient(options: TwilioClientOptions): twilio.Twilio {
  const httpClient = new (parleyRequestClient())(options.apiBaseUrl, { autoRetry: false, timeout: options.timeoutMs });
  return twilioSdk()(options.accountSid, options.authToken, {
    autoRetry: false,
    timeout: options.timeoutMs,
    httpClient,
  });
}

/** What a failed SDK call tells the caller. */
export type TwilioCallFailure =
  | {
      /** Twilio answered with an error: `status` is the HTTP status, `code` Twilio's error code (e.g. 21610). */
      kind: 'api';
      status: number;
      code: number | undefined;
      message: string;
      moreInfo: string | undefined;
      /** From Twilio's `Retry-After` header, when it sent one with a 429 or 503. */
      retryAfterMs: number | undefined;
    }
  | {
      /**
       * No HTTP answer (reset, timeout, DNS): for a POST the message may or may not have been
       * accepted, so the outcome is unknown.
       */
      kind: 'transport';
      errno: string | undefined;
      message: string;
    };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Normalises an error thrown by the twilio SDK. Twilio error bodies become `RestException`
 * (`status`, `code`, `moreInfo`), or `TwilioServiceException` for RFC 9457 bodies, or
 * {@link TwilioRetryAfterError} when the answer carried `Retry-After`; network failures surface as
 * axios errors with a Node `code` such as `ECONNRESET` or `ECONNABORTED`.
 */
export function describeTwilioError(error: unknown): TwilioCallFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (isRecord(error) && typeof error.status === 'number') {
    return {
      kind: 'api',
      status: error.status,
      code: typeof error.code === 'number' ? error.code : undefined,
      message,
      moreInfo: typeof error.moreInfo === 'string' ? error.moreInfo : undefined,
      retryAfterMs: typeof error.retryAfterMs === 'number' ? error.retryAfterMs : undefined,
    };
  }
  const errno = isRecord(error) && typeof error.code === 'string' ? error.code : undefined;
  return { kind: 'transport', errno, message };
}

/** Enough of a tenant to build its SDK client (twilio-sms and twilio-voice tenants alike). */
export interface TwilioTenantCredentials {
  tenantId: string;
  settings: { accountSid: string; authToken: string };
}

/**
 * One SDK client per tenant, built on first use and again only when the tenant's credentials change.
 * @example
 * const clientFor = createClientCache(createTwilioClient, ctx.options);
 * await clientFor(tenant).messages.create({ to, from, body });
 */
export function createClientCache(makeClient: typeof createTwilioClient, options: { apiBaseUrl?: string | undefined; requestTimeoutMs: number }) {
  const clients = new Map<string, { key: string; client: twilio.Twilio }>();
  return (t: TwilioTenantCredentials): twilio.Twilio => {
    const key = `${t.settings.accountSid}\u0000${t.settings.authToken}`;
    const cached = clients.get(t.tenantId);
    if (cached?.key === key) return cached.client;
    const client = makeClient({ accountSid: t.settings.accountSid, authToken: t.settings.authToken, apiBaseUrl: options.apiBaseUrl, timeoutMs: options.requestTimeoutMs });
    clients.set(t.tenantId, { key, client });
    return client;
  };
}

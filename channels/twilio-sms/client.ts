import twilio from 'twilio';
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

/**
 * The SDK builds absolute `https://<product>.twilio.com/...` URLs in each domain and has no base-URL
 * option (`edge`/`region` only rewrite the host name inside twilio.com), so the redirect happens in
 * the one place every request passes through: the HTTP client.
 */
class RedirectingRequestClient extends twilio.RequestClient {
  readonly #base: URL;

  constructor(apiBaseUrl: string, opts: RequestClient.RequestClientOptions) {
    super(opts);
    this.#base = new URL(apiBaseUrl.endsWith('/') ? apiBaseUrl : `${apiBaseUrl}/`);
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<HttpResponse.default<TData>> {
    const target = new URL(opts.uri);
    if (target.hostname === 'twilio.com' || target.hostname.endsWith('.twilio.com')) {
      const rewritten = new URL(target.pathname.replace(/^\/+/u, '') + target.search, this.#base);
      return super.request({ ...opts, uri: rewritten.href });
    }
    return super.request(opts);
  }
}

/**
 * A real twilio SDK client with the SDK's own 429 retries off: Parley's outbox owns retries, and a
 * hidden retry inside a send would make its attempt count and timing wrong.
 *
 * @example const client = createTwilioClient({ accountSid, authToken });
 * await client.messages.create({ to, from, body });
 */
export function createTwilioClient(options: TwilioClientOptions): twilio.Twilio {
  const requestOptions = { autoRetry: false, timeout: options.timeoutMs };
  const httpClient =
    options.apiBaseUrl === undefined
      ? new twilio.RequestClient(requestOptions)
      : new RedirectingRequestClient(options.apiBaseUrl, requestOptions);
  return twilio(options.accountSid, options.authToken, {
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
 * (`status`, `code`, `moreInfo`), or `TwilioServiceException` for RFC 9457 bodies; network failures
 * surface as axios errors with a Node `code` such as `ECONNRESET` or `ECONNABORTED`.
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
    };
  }
  const errno = isRecord(error) && typeof error.code === 'string' ? error.code : undefined;
  return { kind: 'transport', errno, message };
}

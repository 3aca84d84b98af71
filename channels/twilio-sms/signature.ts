// The SDK's validators alone: the package's index loads the whole REST client (0.2 s to import alone).
import { validateRequest, validateRequestWithBody } from 'twilio/lib/webhooks/webhooks.js';

export interface VerifyTwilioSignatureInput {
  authToken: string;
  /** The URL configured in Twilio (see {@link webhookUrl}), never the URL the proxy handed us. */
  url: string;
  /** Decoded form parameters of a form post; ignored for JSON posts (URL with `bodySHA256`). */
  params?: Readonly<Record<string, string | readonly string[]>>;
  /** The `X-Twilio-Signature` header. */
  signature: string | readonly string[] | null | undefined;
  /** Raw request body; required when the URL carries `bodySHA256`. */
  rawBody?: string | Buffer;
}

export type SignatureVerdict = { ok: true } | { ok: false; reason: 'missing-signature' | 'mismatch' };

function hasBodyHash(url: URL): boolean {
  return url.searchParams.has('bodySHA256');
}

/**
 * Checks a webhook's `X-Twilio-Signature` with the twilio SDK (constant-time comparison, URL tried
 * with and without the default port). Form posts are signed over URL + sorted params; JSON posts
 * carry `bodySHA256` in the URL and are signed over the URL alone, with the body checked against
 * that hash. A malformed URL is a mismatch, not an exception.
 *
 * @example verifyTwilioSignature({ authToken, url: webhookUrl(base, req.originalUrl), params: req.body,
 *   signature: req.get('x-twilio-signature') })
 */
export function verifyTwilioSignature(input: VerifyTwilioSignatureInput): SignatureVerdict {
  const signature = Array.isArray(input.signature) ? input.signature[0] : input.signature;
  if (typeof signature !== 'string' || signature === '') return { ok: false, reason: 'missing-signature' };

  let parsed: URL;
  try {
    parsed = new URL(input.url);
  } catch {
    return { ok: false, reason: 'mismatch' };
  }

  let valid: boolean;
  if (hasBodyHash(parsed)) {
    const body = input.rawBody === undefined ? undefined : input.rawBody.toString();
    valid = body !== undefined && validateRequestWithBody(input.authToken, signature, input.url, body);
  } else {
    valid = validateRequest(input.authToken, signature, input.url, { ...input.params });
  }
  return valid ? { ok: true } : { ok: false, reason: 'mismatch' };
}

/**
 * The public URL Twilio requested: the configured base (which may carry a path prefix the proxy
 * strips, with or without a trailing slash) joined with the request's path and query as received.
 * The query is kept byte for byte because it is part of what Twilio signed.
 *
 * @example webhookUrl('https://hooks.example.com/parley/', '/twilio/sms?tenant=a') // 'https://hooks.example.com/parley/twilio/sms?tenant=a'
 */
export function webhookUrl(publicBaseUrl: string, originalUrl: string): string {
  const base = new URL(publicBaseUrl);
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new TypeError(`publicBaseUrl must be http(s), got ${publicBaseUrl}`);
  }
  if (base.search !== '' || base.hash !== '') {
    throw new TypeError(`publicBaseUrl must not carry a query or fragment, got ${publicBaseUrl}`);
  }
  return publicBaseUrl.replace(/\/+$/u, '') + '/' + originalUrl.replace(/^\/+/u, '');
}

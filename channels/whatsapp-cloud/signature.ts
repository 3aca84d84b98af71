import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a Meta webhook signature was refused; the webhook route answers 403 for each. */
export type MetaSignatureFailure = 'missing-signature' | 'malformed-signature' | 'mismatch';

/** Result of {@link verifyMetaSignature}. */
export type MetaSignatureResult = { ok: true } | { ok: false; reason: MetaSignatureFailure };

const SIGNATURE_PATTERN = /^sha256=([0-9a-f]{64})$/i;

/**
 * Verifies Meta's `X-Hub-Signature-256` header: `sha256=` + hex HMAC-SHA256 of the raw request body,
 * keyed with the app secret. Pass the bytes exactly as received; a re-serialised JSON body will not
 * match.
 *
 * @example
 * const check = verifyMetaSignature(rawBody, req.get('x-hub-signature-256'), appSecret);
 * if (!check.ok) throw forbidden(`Invalid X-Hub-Signature-256 (${check.reason})`);
 */
export function verifyMetaSignature(
  rawBody: Buffer,
  header: string | undefined,
  appSecret: string,
): MetaSignatureResult {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing-signature' };
  const match = SIGNATURE_PATTERN.exec(header.trim());
  if (!match?.[1]) return { ok: false, reason: 'malformed-signature' };
  const received = Buffer.from(match[1].toLowerCase(), 'hex');
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
    return { ok: false, reason: 'mismatch' };
  }
  return { ok: true };
}

/** Builds the `X-Hub-Signature-256` value Meta would send for `rawBody` (tests and fakes). */
export function signMetaBody(rawBody: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}

/** Result of {@link verifyWithAnySecret}: which configured secret signed the body. */
export type MetaSecretMatch = { ok: true; appSecret: string } | { ok: false; reason: MetaSignatureFailure };

/**
 * Verifies a webhook against every configured app secret (one Meta app may serve several tenants,
 * and several apps may point at one Parley). Every secret is tried, so the time taken does not
 * reveal which one matched or how many are configured before it.
 *
 * @example
 * const match = verifyWithAnySecret(req.rawBody, req.get('x-hub-signature-256'), ['secret-a', 'secret-b']);
 * if (match.ok) routeEventsSignedBy(match.appSecret);
 */
export function verifyWithAnySecret(
  rawBody: Buffer | undefined,
  header: string | undefined,
  appSecrets: readonly string[],
): MetaSecretMatch {
  if (rawBody === undefined) return { ok: false, reason: 'missing-signature' };
  let matched: string | undefined;
  let failure: MetaSignatureFailure = 'mismatch';
  for (const secret of appSecrets) {
    const result = verifyMetaSignature(rawBody, header, secret);
    if (result.ok) matched ??= secret;
    else failure = result.reason;
  }
  return matched === undefined ? { ok: false, reason: failure } : { ok: true, appSecret: matched };
}

/** Constant-time equality of two strings (the verify token of Meta's handshake). */
export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

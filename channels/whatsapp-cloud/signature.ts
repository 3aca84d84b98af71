import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a Meta webhook signature was refused; the route answers 401 for each. */
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
 * if (!check.ok) return res.status(401).json({ error: { code: check.reason, message: 'bad signature' } });
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

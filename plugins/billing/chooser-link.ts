/**
 * The plan chooser's link token: `<link id>.<expires, unix seconds base 36>.<HMAC-SHA256, 16 bytes>`.
 * The link id names a `billing_choice_links` row (tenant and address), so no phone number is in the
 * URL; the signature lets a forged or altered token be refused before the database is asked, and the
 * expiry is signed with it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const MAC_BYTES = 16;
const ID = /^[A-Za-z0-9_-]{16}$/u;

function mac(secret: string, body: string): Buffer {
  return createHmac('sha256', secret).update(`billing-chooser.${body}`).digest().subarray(0, MAC_BYTES);
}

/** A new random link id (12 bytes, 16 characters). */
export function newLinkId(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * @example
 * const token = signChoiceToken(secret, newLinkId(), new Date(Date.now() + 72 * 3_600_000));
 * readChoiceToken(secret, token); // { linkId, expiresAt }
 */
export function signChoiceToken(secret: string, linkId: string, expiresAt: Date): string {
  const body = `${linkId}.${Math.floor(expiresAt.getTime() / 1000).toString(36)}`;
  return `${body}.${mac(secret, body).toString('base64url')}`;
}

/** The link id and expiry of a genuine token; `invalid` for anything else (forged, altered, garbage), `expired` once past its time. */
export function readChoiceToken(secret: string, token: string, now = new Date()): { linkId: string; expiresAt: Date } | 'invalid' | 'expired' {
  if (token.length > 100) return 'invalid';
  const parts = token.split('.');
  if (parts.length !== 3) return 'invalid';
  const [linkId, exp, given] = parts as [string, string, string];
  if (!ID.test(linkId) || !/^[0-9a-z]{1,10}$/u.test(exp)) return 'invalid';
  // Compared as text: decoding would ignore the last character's spare bits and accept altered tokens.
  const expected = Buffer.from(mac(secret, `${linkId}.${exp}`).toString('base64url'));
  const actual = Buffer.from(given);
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return 'invalid';
  const expiresAt = new Date(parseInt(exp, 36) * 1000);
  return expiresAt.getTime() > now.getTime() ? { linkId, expiresAt } : 'expired';
}

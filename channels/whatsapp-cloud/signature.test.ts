import { describe, expect, it } from 'vitest';
import { signMetaBody, verifyMetaSignature } from './signature.js';

const appSecret = 'meta-app-secret';
// Spacing and non-ASCII text as Meta sends them: JSON.stringify would change these bytes.
const rawText = '{ "object": "whatsapp_business_account", "entry": [ { "text": "café é😀" } ] }';
const rawBody = Buffer.from(rawText, 'utf8');

describe('verifyMetaSignature', () => {
  it('accepts a signature computed over the raw bytes, accents and emoji included', () => {
    expect(verifyMetaSignature(rawBody, signMetaBody(rawBody, appSecret), appSecret)).toEqual({ ok: true });
  });

  it('refuses the same signature once the body has been re-serialised', () => {
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(rawText)), 'utf8');
    expect(reserialised.equals(rawBody)).toBe(false);
    expect(verifyMetaSignature(reserialised, signMetaBody(rawBody, appSecret), appSecret)).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('accepts an upper-case hex digest', () => {
    const header = `sha256=${signMetaBody(rawBody, appSecret).slice('sha256='.length).toUpperCase()}`;
    expect(verifyMetaSignature(rawBody, header, appSecret).ok).toBe(true);
  });

  it('reports a missing header', () => {
    expect(verifyMetaSignature(rawBody, undefined, appSecret)).toEqual({ ok: false, reason: 'missing-signature' });
    expect(verifyMetaSignature(rawBody, '', appSecret)).toEqual({ ok: false, reason: 'missing-signature' });
  });

  it.each([
    ['no prefix', signMetaBody(rawBody, appSecret).slice('sha256='.length)],
    ['sha1 prefix', `sha1=${'a'.repeat(40)}`],
    ['short digest', 'sha256=abcdef'],
    ['not hex', `sha256=${'z'.repeat(64)}`],
  ])('reports a malformed header (%s)', (_label, header) => {
    expect(verifyMetaSignature(rawBody, header, appSecret)).toEqual({ ok: false, reason: 'malformed-signature' });
  });

  it('reports a signature made with another secret as a mismatch', () => {
    expect(verifyMetaSignature(rawBody, signMetaBody(rawBody, 'other-secret'), appSecret)).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });
});

import { describe, expect, it } from 'vitest';
import twilio from 'twilio';
import { verifyTwilioSignature, webhookUrl } from './signature.js';

// Twilio's published example (https://www.twilio.com/docs/usage/security#validating-requests).
const PUBLISHED = {
  authToken: '12345',
  url: 'https://mycompany.com/myapp.php?foo=1&bar=2',
  params: {
    CallSid: 'CA1234567890ABCDE',
    Caller: '+12349013030',
    Digits: '1234',
    From: '+12349013030',
    To: '+18005551212',
  },
  signature: '0/KCTR6DLpKmkAf8muzZqo1nDgQ=',
};

describe('verifyTwilioSignature on form posts', () => {
  it("accepts Twilio's published example", () => {
    expect(verifyTwilioSignature(PUBLISHED)).toEqual({ ok: true });
  });

  it('refuses the example with one parameter changed', () => {
    expect(verifyTwilioSignature({ ...PUBLISHED, params: { ...PUBLISHED.params, Digits: '1235' } })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('refuses an added parameter, another URL and another token', () => {
    expect(verifyTwilioSignature({ ...PUBLISHED, params: { ...PUBLISHED.params, Extra: 'x' } }).ok).toBe(false);
    expect(verifyTwilioSignature({ ...PUBLISHED, url: 'https://mycompany.com/myapp.php?foo=1&bar=3' }).ok).toBe(false);
    expect(verifyTwilioSignature({ ...PUBLISHED, authToken: '54321' }).ok).toBe(false);
  });

  it('reports a missing signature apart from a wrong one', () => {
    expect(verifyTwilioSignature({ ...PUBLISHED, signature: undefined })).toEqual({ ok: false, reason: 'missing-signature' });
    expect(verifyTwilioSignature({ ...PUBLISHED, signature: '' })).toEqual({ ok: false, reason: 'missing-signature' });
    expect(verifyTwilioSignature({ ...PUBLISHED, signature: 'AAAA' })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('accepts the header as an array (as node exposes duplicates)', () => {
    expect(verifyTwilioSignature({ ...PUBLISHED, signature: [PUBLISHED.signature] })).toEqual({ ok: true });
  });

  it('accepts a signature made over the URL with :443 for the URL without it, and the reverse', () => {
    const params = { Body: 'hi' };
    const withPort = twilio.getExpectedTwilioSignature('token', 'https://example.com:443/path?test=param', params);
    expect(
      verifyTwilioSignature({ authToken: 'token', url: 'https://example.com/path?test=param', params, signature: withPort }),
    ).toEqual({ ok: true });

    const withoutPort = twilio.getExpectedTwilioSignature('token', 'https://example.com/path?test=param', params);
    expect(
      verifyTwilioSignature({ authToken: 'token', url: 'https://example.com:443/path?test=param', params, signature: withoutPort }),
    ).toEqual({ ok: true });
  });

  it('signs a repeated parameter over each of its values', () => {
    const params = { Body: 'two pictures', MediaUrl: ['https://a.example/1', 'https://a.example/2'] };
    const url = 'https://hooks.example.com/twilio/sms';
    const signature = twilio.getExpectedTwilioSignature('token', url, params);
    expect(verifyTwilioSignature({ authToken: 'token', url, params, signature })).toEqual({ ok: true });
    expect(
      verifyTwilioSignature({ authToken: 'token', url, params: { ...params, MediaUrl: ['https://a.example/1'] }, signature }).ok,
    ).toBe(false);
  });

  it('treats a malformed URL as a mismatch instead of throwing', () => {
    expect(verifyTwilioSignature({ ...PUBLISHED, url: 'not a url' })).toEqual({ ok: false, reason: 'mismatch' });
  });
});

describe('verifyTwilioSignature on JSON posts (bodySHA256)', () => {
  const body = '{"property": "value", "boolean": true}';
  const bodyHash = '0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620';
  const url = `https://mycompany.com/myapp.php?bodySHA256=${bodyHash}`;
  const signature = twilio.getExpectedTwilioSignature('12345', url, {});

  it("hashes the published JSON body to Twilio's value", () => {
    expect(twilio.getExpectedBodyHash(body)).toBe(bodyHash);
  });

  it('accepts the raw body as a string or a Buffer, ignoring params', () => {
    expect(verifyTwilioSignature({ authToken: '12345', url, signature, rawBody: body })).toEqual({ ok: true });
    expect(verifyTwilioSignature({ authToken: '12345', url, signature, rawBody: Buffer.from(body) })).toEqual({ ok: true });
    expect(verifyTwilioSignature({ authToken: '12345', url, signature, rawBody: body, params: { ignored: 'x' } })).toEqual({ ok: true });
  });

  it('refuses a re-serialised body, since the hash is over the exact bytes', () => {
    const reserialised = JSON.stringify(JSON.parse(body));
    expect(verifyTwilioSignature({ authToken: '12345', url, signature, rawBody: reserialised })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('refuses when the raw body is missing', () => {
    expect(verifyTwilioSignature({ authToken: '12345', url, signature })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('refuses a body hash swapped in the URL', () => {
    const otherUrl = `https://mycompany.com/myapp.php?bodySHA256=${twilio.getExpectedBodyHash('{}')}`;
    expect(verifyTwilioSignature({ authToken: '12345', url: otherUrl, signature, rawBody: '{}' }).ok).toBe(false);
  });
});

describe('webhookUrl', () => {
  it('joins a bare origin with the path and query', () => {
    expect(webhookUrl('https://hooks.example.com', '/twilio/sms?tenant=a')).toBe('https://hooks.example.com/twilio/sms?tenant=a');
  });

  it('keeps a path prefix, with or without a trailing slash', () => {
    expect(webhookUrl('https://hooks.example.com/parley', '/twilio/sms')).toBe('https://hooks.example.com/parley/twilio/sms');
    expect(webhookUrl('https://hooks.example.com/parley/', '/twilio/sms')).toBe('https://hooks.example.com/parley/twilio/sms');
    expect(webhookUrl('https://hooks.example.com/parley//', 'twilio/sms')).toBe('https://hooks.example.com/parley/twilio/sms');
  });

  it('keeps the query exactly as received, since Twilio signed it', () => {
    expect(webhookUrl('https://h.example', "/sms?name=O'Brien&x=%27")).toBe("https://h.example/sms?name=O'Brien&x=%27");
  });

  it('keeps an explicit port', () => {
    expect(webhookUrl('https://h.example:8443/', '/sms')).toBe('https://h.example:8443/sms');
  });

  it('refuses a base URL that is not http(s) or carries a query or fragment', () => {
    expect(() => webhookUrl('ftp://h.example', '/sms')).toThrow(TypeError);
    expect(() => webhookUrl('https://h.example/?a=1', '/sms')).toThrow(TypeError);
    expect(() => webhookUrl('https://h.example/#x', '/sms')).toThrow(TypeError);
    expect(() => webhookUrl('not a url', '/sms')).toThrow(TypeError);
  });

  it('produces the URL that verifies a request signed for the public address', () => {
    const publicUrl = 'https://hooks.example.com/parley/twilio/sms?tenant=a';
    const params = { Body: 'hi', From: '+15550001111' };
    const signature = twilio.getExpectedTwilioSignature('token', publicUrl, params);
    const url = webhookUrl('https://hooks.example.com/parley/', '/twilio/sms?tenant=a');
    expect(verifyTwilioSignature({ authToken: 'token', url, params, signature })).toEqual({ ok: true });
    expect(
      verifyTwilioSignature({ authToken: 'token', url: 'http://127.0.0.1:3000/twilio/sms?tenant=a', params, signature }).ok,
    ).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import type { Request } from 'express';
import { HttpError } from 'parley';
import { externalBase, outboxStatusOf, parseInboundSms, parseStatusCallback, signedUrl } from './webhook.js';

const SID = 'SM' + 'a'.repeat(32);
const base = { MessageSid: SID, From: '+15550001111', To: '+15557654321', Body: 'hi' };

function fakeRequest(o: { headers?: Record<string, string>; protocol?: string; host?: string; originalUrl?: string }): Request {
  const headers = Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return { get: (name: string) => headers[name.toLowerCase()], protocol: o.protocol ?? 'http', host: o.host ?? '127.0.0.1:3000', originalUrl: o.originalUrl ?? '/twilio/sms' } as unknown as Request;
}

describe('parseInboundSms', () => {
  it('reads a text message', () => {
    expect(parseInboundSms(base)).toMatchObject({ messageSid: SID, from: '+15550001111', to: '+15557654321', body: 'hi', media: [] });
  });

  it('turns MediaUrlN/MediaContentTypeN into attachments', () => {
    const sms = parseInboundSms({ ...base, Body: '', NumMedia: '2', MediaUrl0: 'https://x.example/0', MediaContentType0: 'image/png', MediaUrl1: 'https://x.example/1' });
    expect(sms.media).toEqual([{ url: 'https://x.example/0', contentType: 'image/png' }, { url: 'https://x.example/1' }]);
  });

  it('accepts WhatsApp addresses and short-code senders', () => {
    expect(parseInboundSms({ ...base, From: 'whatsapp:+15550001111', To: 'whatsapp:+15557654321' }).from).toBe('whatsapp:+15550001111');
    expect(parseInboundSms({ ...base, From: '72345' }).from).toBe('72345');
  });

  it.each([
    [{ ...base, MessageSid: undefined }, /MessageSid/],
    [{ ...base, To: 'somewhere' }, /To/],
    [{ ...base, NumMedia: '11' }, /NumMedia/],
    [{ ...base, NumMedia: '1' }, /MediaUrl0/],
    [{ ...base, Body: ['a', 'b'] }, /Body/],
  ])('refuses %j with a 400 naming the field', (params, field) => {
    let caught: unknown;
    try {
      parseInboundSms(params as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HttpError);
    expect(caught).toMatchObject({ status: 400, message: expect.stringMatching(field) });
  });
});

describe('parseStatusCallback and outboxStatusOf', () => {
  it('reads the status and error code', () => {
    expect(parseStatusCallback({ MessageSid: SID, MessageStatus: 'undelivered', ErrorCode: '30003' })).toMatchObject({ messageSid: SID, status: 'undelivered', errorCode: '30003' });
  });

  it.each([
    ['queued', 'queued'],
    ['accepted', 'accepted'],
    ['scheduled', 'scheduled'],
    ['sending', 'sending'],
    ['sent', 'sent'],
    ['delivered', 'delivered'],
    ['read', 'read'],
    ['undelivered', 'undelivered'],
    ['failed', 'failed'],
    ['canceled', 'failed'],
    ['received', null],
  ])('maps Twilio %s to %s', (twilioStatus, outbox) => {
    expect(outboxStatusOf(twilioStatus)).toBe(outbox);
  });
});

describe('the URL Twilio signed', () => {
  it('is the public base URL joined with the path and query when one is configured', () => {
    const req = fakeRequest({ originalUrl: '/twilio/voice/gather?turn=2', headers: { 'x-forwarded-host': 'evil.example' } });
    expect(signedUrl(req, { publicBaseUrl: 'https://hooks.example.com/parley/', trustProxy: true })).toBe('https://hooks.example.com/parley/twilio/voice/gather?turn=2');
  });

  it('honours X-Forwarded-Proto/Host only for a trusted proxy', () => {
    const req = fakeRequest({ headers: { 'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'proxy.example.com' } });
    expect(externalBase(req, { publicBaseUrl: undefined, trustProxy: true })).toBe('https://proxy.example.com');
    expect(externalBase(req, { publicBaseUrl: undefined, trustProxy: false })).toBe('http://127.0.0.1:3000');
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import twilio from 'twilio';
import { createTwilioClient, describeTwilioError, parseRetryAfter, MAX_RETRY_AFTER_MS, TwilioRetryAfterError } from '../../channels/twilio-sms/client.js';
import { startFakeTwilio, twilioClientFor, type FakeTwilio } from './twilio-api.js';

const TO = '+15558675310';
const FROM = '+15017122661';

let fake: FakeTwilio;

beforeEach(async () => {
  fake = await startFakeTwilio();
});

afterEach(async () => {
  await fake.close();
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('fake Twilio REST API driven by the real twilio SDK', () => {
  it('issues an AC account SID and a base URL on 127.0.0.1', () => {
    expect(fake.accountSid).toMatch(/^AC[0-9a-f]{32}$/);
    expect(fake.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('accepts a message with 201 and the SDK maps the resource', async () => {
    const client = twilioClientFor(fake);
    const message = await client.messages.create({
      to: TO,
      from: FROM,
      body: 'Hello {world}',
      mediaUrl: ['https://example.com/a.png', 'https://example.com/b.png'],
      statusCallback: 'https://hooks.example.com/twilio/status',
    });

    expect(message.sid).toMatch(/^MM[0-9a-f]{32}$/);
    expect(message.status).toBe('queued');
    expect(message.numSegments).toBe('1');
    expect(message.numMedia).toBe('2');
    expect(message.accountSid).toBe(fake.accountSid);
    expect(message.dateCreated).toBeInstanceOf(Date);
    expect(Number.isNaN(message.dateCreated.getTime())).toBe(false);

    expect(fake.sent).toHaveLength(1);
    expect(fake.sent[0]).toMatchObject({
      to: TO,
      from: FROM,
      body: 'Hello {world}',
      mediaUrls: ['https://example.com/a.png', 'https://example.com/b.png'],
      statusCallback: 'https://hooks.example.com/twilio/status',
    });

    const [request] = fake.requests;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/Messages.json`);
    expect(request?.form.getAll('MediaUrl')).toEqual(['https://example.com/a.png', 'https://example.com/b.png']);
    expect(request?.headers['content-type']).toContain('application/x-www-form-urlencoded');
    expect(request?.headers['user-agent']).toMatch(/^twilio-node\//);
  });

  it('answers "accepted" without a From when a Messaging Service picks the sender', async () => {
    const message = await twilioClientFor(fake).messages.create({
      to: TO,
      messagingServiceSid: 'MG' + '0'.repeat(32),
      body: 'hi',
    });
    expect(message.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message.status).toBe('accepted');
    expect(message.from).toBeNull();
  });

  it('counts segments like Twilio', async () => {
    const message = await twilioClientFor(fake).messages.create({ to: TO, from: FROM, body: '😀'.repeat(40) });
    expect(message.numSegments).toBe('2');
  });

  it('fetches a sent message and reflects later status changes', async () => {
    const client = twilioClientFor(fake);
    const created = await client.messages.create({ to: TO, from: FROM, body: 'hi' });
    fake.setStatus(created.sid, 'undelivered', 30003);

    const fetched = await client.messages(created.sid).fetch();
    expect(fetched.status).toBe('undelivered');
    expect(fetched.errorCode).toBe(30003);
  });

  it('answers 404 with code 20404 for an unknown message', async () => {
    const error = await rejection(twilioClientFor(fake).messages('SM' + 'f'.repeat(32)).fetch());
    expect(error).toBeInstanceOf(twilio.RestException);
    expect(describeTwilioError(error)).toMatchObject({ kind: 'api', status: 404, code: 20404 });
  });

  it('refuses bad credentials with 401 and code 20003, sending nothing', async () => {
    const client = createTwilioClient({ accountSid: fake.accountSid, authToken: 'wrong', apiBaseUrl: fake.baseUrl });
    const error = await rejection(client.messages.create({ to: TO, from: FROM, body: 'hi' }));

    expect(error).toBeInstanceOf(twilio.RestException);
    expect(error).toMatchObject({ status: 401, code: 20003, moreInfo: 'https://www.twilio.com/docs/errors/20003' });
    expect(fake.sent).toHaveLength(0);
  });

  it('validates the request like Twilio: a missing From is 21603, a malformed To is 21211', async () => {
    const client = twilioClientFor(fake);
    await expect(client.messages.create({ to: TO, body: 'hi' } as never)).rejects.toMatchObject({ status: 400, code: 21603 });
    await expect(client.messages.create({ to: '12', from: FROM, body: 'hi' })).rejects.toMatchObject({
      status: 400,
      code: 21211,
      message: "Invalid 'To' Phone Number: 12",
    });
    expect(fake.sent).toHaveLength(0);
  });

  it.each([
    ['429', 429, 20429],
    ['500', 500, 20500],
    ['21610', 400, 21610],
    ['21211', 400, 21211],
  ] as const)('scripted %s fails once with HTTP %i and code %i, then sends', async (kind, status, code) => {
    const client = twilioClientFor(fake);
    fake.failNext(1, kind);

    const error = await rejection(client.messages.create({ to: TO, from: FROM, body: 'hi' }));
    expect(error).toBeInstanceOf(twilio.RestException);
    expect(describeTwilioError(error)).toMatchObject({
      kind: 'api',
      status,
      code,
      moreInfo: `https://www.twilio.com/docs/errors/${code}`,
    });

    await expect(client.messages.create({ to: TO, from: FROM, body: 'hi' })).resolves.toMatchObject({ status: 'queued' });
    expect(fake.sent).toHaveLength(1);
  });

  it('fails only the sends to one number when asked to, whatever comes first', async () => {
    const client = twilioClientFor(fake);
    const other = '+15005550009';
    fake.failNext(1, '21211', { to: TO });
    await expect(client.messages.create({ to: other, from: FROM, body: 'first' })).resolves.toMatchObject({ to: other });
    await expect(client.messages.create({ to: TO, from: FROM, body: 'second' })).rejects.toMatchObject({ status: 400, code: 21211 });
    await expect(client.messages.create({ to: TO, from: FROM, body: 'third' })).resolves.toMatchObject({ to: TO });
  });

  it('createTwilioClient leaves the SDK retries off, also for the real API', () => {
    const production = createTwilioClient({ accountSid: fake.accountSid, authToken: 'token' });
    expect(production.httpClient.autoRetry).toBe(false);
    expect(production.httpClient).toBeInstanceOf(twilio.RequestClient);
    expect(twilioClientFor(fake).httpClient.autoRetry).toBe(false);
  });

  it('does not retry a 429 inside the SDK: one request, one failure', async () => {
    fake.failNext(3, '429');
    await expect(twilioClientFor(fake).messages.create({ to: TO, from: FROM, body: 'hi' })).rejects.toMatchObject({
      status: 429,
    });
    expect(fake.requests).toHaveLength(1);
  });

  it("keeps Twilio's Retry-After on a 429 that sends one, which the SDK's RestException would drop", async () => {
    fake.failNext(1, '429-retry-after');
    const error = await rejection(twilioClientFor(fake).messages.create({ to: TO, from: FROM, body: 'hi' }));
    expect(error).toBeInstanceOf(TwilioRetryAfterError);
    expect(describeTwilioError(error)).toMatchObject({ kind: 'api', status: 429, code: 20429, message: 'Too Many Requests', moreInfo: 'https://www.twilio.com/docs/errors/20429', retryAfterMs: 1000 });
    fake.failNext(1, '429');
    expect(describeTwilioError(await rejection(twilioClientFor(fake).messages.create({ to: TO, from: FROM, body: 'hi' })))).toMatchObject({ status: 429, retryAfterMs: undefined });
  });

  it('reads Retry-After in seconds or as an HTTP date, and caps it', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('86400', now)).toBe(MAX_RETRY_AFTER_MS);
    expect([parseRetryAfter('soon', now), parseRetryAfter('', now), parseRetryAfter(undefined, now)]).toEqual([undefined, undefined, undefined]);
  });

  it('a dropped connection surfaces as a transport failure, not an API error', async () => {
    fake.failNext(1, 'drop');
    const error = await rejection(twilioClientFor(fake).messages.create({ to: TO, from: FROM, body: 'hi' }));

    expect(error).not.toBeInstanceOf(twilio.RestException);
    expect(describeTwilioError(error)).toMatchObject({ kind: 'transport' });
    expect(fake.requests).toHaveLength(1);
    expect(fake.sent).toHaveLength(0);
  });

  it('a slow answer past the client timeout is a transport failure', async () => {
    fake.setDelay(500);
    const error = await rejection(twilioClientFor(fake, { timeoutMs: 100 }).messages.create({ to: TO, from: FROM, body: 'hi' }));
    expect(describeTwilioError(error)).toMatchObject({ kind: 'transport', errno: 'ECONNABORTED' });
  });

  it('a delay within the timeout still succeeds', async () => {
    fake.setDelay(50);
    await expect(twilioClientFor(fake).messages.create({ to: TO, from: FROM, body: 'hi' })).resolves.toMatchObject({
      status: 'queued',
    });
  });
});

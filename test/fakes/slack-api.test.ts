import { LogLevel, webApi } from '@slack/bolt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_SLACK_IDENTITY, startFakeSlack, type FakeSlack } from './slack-api.js';

const token = 'xoxb-parley-test';
let slack: FakeSlack;

beforeEach(async () => {
  slack = await startFakeSlack({ token });
});

afterEach(async () => {
  await slack.close();
});

function client(options: webApi.WebClientOptions = {}, withToken = token): webApi.WebClient {
  return new webApi.WebClient(withToken, {
    slackApiUrl: slack.apiUrl,
    logLevel: LogLevel.ERROR,
    retryConfig: { retries: 1, minTimeout: 0, maxTimeout: 10 },
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<webApi.WebAPICallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as webApi.WebAPICallError;
}

describe('the real WebClient against the fake Slack API', () => {
  it('identifies the bot with auth.test', async () => {
    const result = await client().auth.test();
    expect(result).toMatchObject({ ok: true, user_id: FAKE_SLACK_IDENTITY.user_id, bot_id: FAKE_SLACK_IDENTITY.bot_id });
    expect(slack.calls[0]).toMatchObject({ method: 'auth.test', rateLimited: false });
  });

  it('posts a message with blocks in a thread and gets its ts back', async () => {
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*New SMS* from +1 555 0100' } }];
    const result = await client().chat.postMessage({ channel: 'C0SUPPORT', text: 'New SMS', blocks, thread_ts: '1700000000.000001' });

    expect(result).toMatchObject({ ok: true, channel: 'C0SUPPORT', ts: expect.stringMatching(/^\d+\.\d{6}$/) });
    expect(result.message).toMatchObject({ text: 'New SMS', bot_id: FAKE_SLACK_IDENTITY.bot_id, thread_ts: '1700000000.000001' });
    expect(slack.messages).toEqual([
      { channel: 'C0SUPPORT', ts: result.ts, text: 'New SMS', blocks, thread_ts: '1700000000.000001', edits: 0 },
    ]);
    // WebClient sends form-encoded bodies with the token in the Authorization header.
    expect(slack.calls[0]?.body).toMatchObject({ channel: 'C0SUPPORT', text: 'New SMS' });
    expect(slack.calls[0]?.body).not.toHaveProperty('token');
  });

  it('gives each posted message its own ts', async () => {
    const web = client();
    const first = await web.chat.postMessage({ channel: 'C1', text: 'a' });
    const second = await web.chat.postMessage({ channel: 'C1', text: 'b' });
    expect(first.ts).not.toBe(second.ts);
  });

  it('updates a posted message in place', async () => {
    const web = client();
    const posted = await web.chat.postMessage({ channel: 'C0SUPPORT', text: 'Sending…' });
    const updated = await web.chat.update({ channel: 'C0SUPPORT', ts: posted.ts!, text: 'Delivered ✓' });

    expect(updated).toMatchObject({ ok: true, channel: 'C0SUPPORT', ts: posted.ts, text: 'Delivered ✓' });
    expect(slack.messages).toHaveLength(1);
    expect(slack.messages[0]).toMatchObject({ text: 'Delivered ✓', edits: 1 });
  });

  it('answers message_not_found when updating a message that does not exist', async () => {
    const error = await rejection(client().chat.update({ channel: 'C0SUPPORT', ts: '1.000001', text: 'x' }));
    expect(error.code).toBe(webApi.ErrorCode.PlatformError);
    expect((error as webApi.WebAPIPlatformError).data.error).toBe('message_not_found');
  });

  it('describes a channel with conversations.info', async () => {
    const result = await client().conversations.info({ channel: 'C0SUPPORT' });
    expect(result.channel).toMatchObject({ id: 'C0SUPPORT', is_channel: true, is_member: true });
  });

  it('refuses a wrong token with invalid_auth', async () => {
    const error = await rejection(client({}, 'xoxb-wrong').chat.postMessage({ channel: 'C1', text: 'hi' }));
    expect(error.code).toBe(webApi.ErrorCode.PlatformError);
    expect((error as webApi.WebAPIPlatformError).data.error).toBe('invalid_auth');
    expect(slack.messages).toHaveLength(0);
  });

  it('waits for Retry-After on a 429 and then posts once', async () => {
    const web = client();
    const rateLimitedFor: number[] = [];
    web.on(webApi.WebClientEvent.RATE_LIMITED, (seconds: number) => rateLimitedFor.push(seconds));
    slack.rateLimitNext(1, 1);

    const started = Date.now();
    const result = await web.chat.postMessage({ channel: 'C0SUPPORT', text: 'after the limit' });
    const elapsed = Date.now() - started;

    expect(result.ok).toBe(true);
    expect(rateLimitedFor).toEqual([1]);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(slack.calls.map((c) => c.rateLimited)).toEqual([true, false]);
    expect(slack.messages).toHaveLength(1);
  });

  it('hands the 429 back with its delay when rejectRateLimitedCalls is set', async () => {
    slack.rateLimitNext(1, 7);
    const error = await rejection(client({ rejectRateLimitedCalls: true }).chat.postMessage({ channel: 'C1', text: 'x' }));
    expect(error.code).toBe(webApi.ErrorCode.RateLimitedError);
    expect((error as webApi.WebAPIRateLimitedError).retryAfter).toBe(7);
    expect(slack.calls).toHaveLength(1);
  });

  it('accepts JSON bodies too', async () => {
    const response = await fetch(`${slack.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ channel: 'C2', text: 'json', blocks: [{ type: 'divider' }] }),
    });
    expect(await response.json()).toMatchObject({ ok: true, channel: 'C2' });
    expect(slack.messages[0]).toMatchObject({ text: 'json', blocks: [{ type: 'divider' }] });
  });
});

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { App, ExpressReceiver, isValidSlackRequest, LogLevel } from '@slack/bolt';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSlack, type FakeSlack } from './slack-api.js';
import { signSlackRequest } from './slack-sign.js';

// Slack's documented example ("Verifying requests from Slack").
const vector = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: 1531420618,
  body:
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar' +
    '&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com' +
    '%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

describe('signSlackRequest', () => {
  it("reproduces Slack's documented signature", () => {
    expect(signSlackRequest(vector.secret, vector.body, vector.timestamp)).toEqual({
      'x-slack-signature': vector.signature,
      'x-slack-request-timestamp': '1531420618',
    });
  });

  it('gives a different signature when one byte of the body changes', () => {
    const tampered = vector.body.replace('roadrunner', 'roadrunnes');
    expect(signSlackRequest(vector.secret, tampered, vector.timestamp)['x-slack-signature']).not.toBe(vector.signature);
  });

  it("is accepted by Bolt's own isValidSlackRequest, inside and outside the 5-minute window", () => {
    const headers = signSlackRequest(vector.secret, vector.body, vector.timestamp);
    const check = (nowSeconds: number) =>
      isValidSlackRequest({
        signingSecret: vector.secret,
        body: vector.body,
        headers: { 'x-slack-signature': headers['x-slack-signature'], 'x-slack-request-timestamp': vector.timestamp },
        nowMilliseconds: nowSeconds * 1000,
      });
    expect(check(vector.timestamp + 299)).toBe(true);
    expect(check(vector.timestamp + 301)).toBe(false);
  });

  it('defaults the timestamp to now', () => {
    const now = Math.floor(Date.now() / 1000);
    const ts = Number(signSlackRequest('s', 'b')['x-slack-request-timestamp']);
    expect(Math.abs(ts - now)).toBeLessThanOrEqual(1);
  });
});

// How the Slack channel can mount Bolt on Parley's own express app: an ExpressReceiver given our
// router, with the Web API pointed at the fake through clientOptions.slackApiUrl.
describe('Bolt mounted on an existing express app', () => {
  const signingSecret = 'parley-signing-secret';
  const token = 'xoxb-parley-test';
  let slack: FakeSlack;
  let server: Server;
  let eventsUrl: string;

  beforeAll(async () => {
    slack = await startFakeSlack({ token });
    const router = express.Router();
    const receiver = new ExpressReceiver({
      signingSecret,
      router,
      endpoints: '/events',
      processBeforeResponse: true,
      logLevel: LogLevel.ERROR,
    });
    const bolt = new App({ token, receiver, logLevel: LogLevel.ERROR, clientOptions: { slackApiUrl: slack.apiUrl } });
    bolt.message('ping', async ({ say }) => {
      await say('pong');
    });

    const app = express();
    app.get('/health', (_req, res) => void res.send('ok'));
    app.use('/slack', router); // before any body parser: Bolt reads the raw body itself
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    eventsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await slack.close();
  });

  function post(body: string, headers: Record<string, string>): Promise<Response> {
    return fetch(eventsUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  }

  const event = JSON.stringify({
    token: 'legacy',
    team_id: 'T0FAKETEAM',
    api_app_id: 'A0FAKEAPP',
    type: 'event_callback',
    event_id: 'Ev0PING',
    event_time: 1_700_000_000,
    event: { type: 'message', channel: 'C0SUPPORT', user: 'U0HUMAN', text: 'ping', ts: '1700000000.000100', channel_type: 'channel' },
  });

  it('runs the listener for a signed event, which replies through the fake Web API', async () => {
    const response = await post(event, signSlackRequest(signingSecret, event));
    expect(response.status).toBe(200);
    expect(slack.messages).toEqual([expect.objectContaining({ channel: 'C0SUPPORT', text: 'pong' })]);
    expect(slack.calls.map((c) => c.method)).toEqual(['auth.test', 'chat.postMessage']);
  });

  it('answers 401 to a body that does not match its signature', async () => {
    const response = await post(event.replace('ping', 'pwnd'), signSlackRequest(signingSecret, event));
    expect(response.status).toBe(401);
  });

  it('answers 401 to a correctly signed request older than five minutes', async () => {
    const stale = Math.floor(Date.now() / 1000) - 301;
    const response = await post(event, signSlackRequest(signingSecret, event, stale));
    expect(response.status).toBe(401);
  });

  it('answers the url_verification challenge', async () => {
    const body = JSON.stringify({ token: 'legacy', challenge: 'c-123', type: 'url_verification' });
    const response = await post(body, signSlackRequest(signingSecret, body));
    expect(await response.json()).toEqual({ challenge: 'c-123' });
  });
});

/** Requests the bench sends: each scenario has Parley's request and the bare baseline's equivalent. */
import { smsRequestFactory } from '../test/fakes/twilio-webhook.js';
import type { LoadResult } from './run.js';

export interface BenchRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface Scenario {
  name: string;
  /** A fresh source of requests for one run against Parley. */
  request: () => () => BenchRequest;
  /** The same kind of request for the bare express baseline. */
  bareRequest: () => BenchRequest;
  embedded?: LoadResult;
  baseline?: LoadResult;
}

/** What the demo's twilio-sms channel runs with in the bench (the env of the parley child process). */
export interface BenchTwilio {
  accountSid: string;
  authToken: string;
  /** DEMO_TWILIO_NUMBER: the `To` of every message. */
  number: string;
  /** PUBLIC_BASE_URL: Parley checks signatures over this URL + `/twilio/sms`. */
  publicBaseUrl: string;
}

const TEXTS = ['what are your hours?', 'where are you?', 'I would like an appointment', 'hello', 'can I bring my dog?'];

export function benchScenarios({ key, twilio }: { key: string; twilio: BenchTwilio }): Scenario[] {
  let n = 0;
  const http = (): BenchRequest => {
    n++;
    return {
      method: 'POST',
      path: '/v1/tenants/demo/messages',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ from: `+1555${String(n % 5000).padStart(7, '0')}`, text: TEXTS[n % TEXTS.length], id: `bench-${process.pid}-${Date.now()}-${n}` }),
    };
  };

  /** Signed inbound-SMS webhooks as Twilio posts them: a fresh MessageSid each, 1000 senders in turn. */
  const sms = (): (() => BenchRequest) => {
    let m = 0;
    const next = smsRequestFactory({
      // Only the path is used: autocannon sends to the server it drives.
      baseUrl: 'http://127.0.0.1',
      publicBaseUrl: twilio.publicBaseUrl,
      authToken: twilio.authToken,
      accountSid: twilio.accountSid,
      to: twilio.number,
      body: () => TEXTS[m++ % TEXTS.length]!,
    });
    return () => {
      const signed = next();
      return { method: 'POST', path: new URL(signed.url).pathname, headers: signed.headers, body: signed.body };
    };
  };
  const bareSms = sms();

  return [
    { name: 'http channel, demo pipeline, persisted', request: () => http, bareRequest: http },
    { name: 'signed Twilio SMS webhook, demo pipeline, persisted', request: sms, bareRequest: bareSms },
  ];
}

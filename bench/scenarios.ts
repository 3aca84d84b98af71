/**
 * Requests the bench sends. Every run gets a pool of requests made before it starts: signing a Twilio
 * webhook costs about as much CPU as serving one (0.1 ms), and the load generator shares the cores
 * with the server it measures, so nothing is signed or serialised while a run is timed.
 */
import { smsRequestFactory } from '../test/fakes/twilio-webhook.js';

export interface BenchRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Requests made before a run. `cycle`: start again at the first when all are sent (only for a target
 * that neither deduplicates nor remembers, the bare baseline); otherwise the run stops when they run out.
 */
export interface RequestPool {
  requests: BenchRequest[];
  cycle?: boolean;
}

export interface Scenario {
  name: string;
  /** `size` distinct requests (a fresh id or MessageSid each), for one run against Parley or a peer. */
  pool: (size: number) => RequestPool;
  /** The same kind of request for the bare express baseline, repeated as often as it answers. */
  barePool: () => RequestPool;
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
/** Distinct requests the bare baseline cycles through: it neither checks signatures nor remembers ids. */
const BARE_POOL = 2_000;

const make = (size: number, next: () => BenchRequest): BenchRequest[] => Array.from({ length: size }, next);

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
  const sms = (): BenchRequest => {
    const signed = next();
    return { method: 'POST', path: new URL(signed.url).pathname, headers: signed.headers, body: signed.body };
  };

  return [
    { name: 'http channel, demo pipeline, persisted', pool: (size) => ({ requests: make(size, http) }), barePool: () => ({ requests: make(BARE_POOL, http), cycle: true }) },
    { name: 'signed Twilio SMS webhook, demo pipeline, persisted', pool: (size) => ({ requests: make(size, sms) }), barePool: () => ({ requests: make(BARE_POOL, sms), cycle: true }) },
  ];
}

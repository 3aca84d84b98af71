/**
 * Property: no request, signed or not, to any route gets a 5xx, and the gateway is healthy after.
 * One gateway for the file; cases are generated with fast-check from a seed (printed; set FUZZ_SEED
 * to replay) and sent in parallel batches. Signed cases start from a valid provider request and
 * replace some fields with hostile values (NUL, lone surrogates, kilobytes, deep nesting, odd
 * numbers), so they get past the signature check and reach the parsers and the database.
 */
import fc from 'fast-check';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signMetaBody } from '../channels/whatsapp-cloud/signature.js';
import { WEBHOOK_PATH } from '../channels/whatsapp-cloud/index.js';
import { signSlackRequest } from './fakes/slack-sign.js';
import { inboundSmsParams, statusCallbackParams, voiceParams } from './fakes/twilio-webhook.js';
import { CLINIC_KEY, CLINIC_NUMBER, OPERATOR_KEY, SLACK_SECRET, WA, WA_KEY, metaEnvelope, startAllChannels, type AllChannels } from './fixtures/all-channels.js';

const CASES = Number(process.env.FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Requests in flight at once. */
const BATCH = 24;
/** encodeURIComponent throws on lone surrogates; so would any client. */
const wellFormed = (s: string) => (s as string & { toWellFormed(): string }).toWellFormed();

interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

let all: AllChannels;
beforeAll(async () => {
  all = await startAllChannels({ logLevel: 'warn' });
}, 60_000);
afterAll(() => all?.close());

const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/);
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\uD800', 'x\uDC00', '😀'.slice(0, 1), '%00', '../../etc/passwd', '<Response/>', '{"$ne":1}', '', ' ', 'null', '-1', '1e309', 'NaN', '99999999999999', 'STOP', 'HELP'),
  fc.integer({ min: 1, max: 6000 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 1, max: 4000 }).map((n) => '9'.repeat(n)),
);
const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileText },
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: 50, max: 1500 }).map((n) => JSON.parse(`${'['.repeat(n)}1${']'.repeat(n)}`)),
  fc.constantFrom(null, true, -1, 1e308, 2 ** 53 + 1, [], {}),
);

/** Some fields of `base` replaced or added, each value hostile. */
function mutated<T extends Record<string, unknown>>(base: T, value: fc.Arbitrary<unknown>, extraKeys: fc.Arbitrary<string> = hostileText): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(base);
  return fc
    .tuple(fc.uniqueArray(fc.oneof(fc.constantFrom(...keys), extraKeys), { minLength: 1, maxLength: 3 }), fc.array(value, { minLength: 3, maxLength: 3 }), fc.boolean())
    .map(([picked, values, drop]) => {
      const out: Record<string, unknown> = { ...base };
      picked.forEach((k, i) => {
        if (drop && i === 0) delete out[k];
        else out[k] = values[i];
      });
      return out;
    });
}

const asStrings = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v) ?? '']));

function twilioCase(path: string, params: Record<string, string>, signed: boolean, kind: string): Case {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (signed) headers['x-twilio-signature'] = twilio.getExpectedTwilioSignature(all.twilio.authToken, `${all.gw.url}${path}`, params);
  return { kind, method: 'POST', path, headers, body: new URLSearchParams(params).toString() };
}

function arbitraries(): fc.Arbitrary<Case> {
  const accountSid = all.twilio.accountSid;
  const phone = fc.integer({ min: 1_000_000, max: 9_999_999 }).map((n) => `+1555${n}`);
  const sms = fc.tuple(phone, hostileText, hex32).map(([from, body, sid]) => inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid, messageSid: `SM${sid}` }));
  const twilioSms = fc.tuple(sms, fc.boolean(), fc.boolean()).chain(([base, mutate, signed]) =>
    (mutate ? mutated(base, hostileText).map(asStrings) : fc.constant(base)).map((p) => twilioCase('/twilio/sms', p, signed, signed ? 'twilio-sms signed' : 'twilio-sms unsigned')),
  );
  const twilioStatus = fc
    .tuple(hex32, fc.constantFrom('sent', 'delivered', 'failed', 'undelivered', 'read', 'queued'), fc.boolean())
    .chain(([sid, status, signed]) =>
      mutated(statusCallbackParams({ messageSid: `SM${sid}`, status, from: CLINIC_NUMBER, to: '+15550001111', accountSid, errorCode: '21610' }), hostileText)
        .map(asStrings)
        .map((p) => twilioCase('/twilio/status', p, signed, 'twilio-status')),
    );
  const twilioVoice = fc
    .tuple(fc.constantFrom('/twilio/voice', '/twilio/voice/gather?turn=1', '/twilio/voice/dial', '/twilio/voice/status', '/twilio/voice/gather?turn=%00'), hex32, phone, hostileText, fc.boolean())
    .chain(([path, sid, from, speech, signed]) =>
      mutated(voiceParams({ callSid: `CA${sid}`, from, to: CLINIC_NUMBER, accountSid, speech, callStatus: 'completed' }), hostileText)
        .map(asStrings)
        .map((p) => twilioCase(path, p, signed, 'twilio-voice')),
    );

  const waMessage = fc.tuple(fc.integer({ min: 1_000_000, max: 9_999_999 }), hex32, hostileText).map(([n, id, text]) => ({
    from: `1650${n}`,
    id: `wamid.${id}`,
    timestamp: String(Math.floor(Date.now() / 1000)),
    type: 'text',
    text: { body: text },
  }));
  const waStatus = hex32.map((id) => ({ id: `wamid.${id}`, status: 'delivered', timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: '16505550100' }));
  const waBody = fc.oneof(
    fc.tuple(waMessage, fc.boolean()).chain(([m, mutate]) => (mutate ? mutated(m, hostileJson) : fc.constant(m as Record<string, unknown>)).map((msg) => metaEnvelope({ contacts: [{ wa_id: msg.from, profile: { name: 'N' } }], messages: [msg] }))),
    waStatus.chain((s) => mutated(s, hostileJson)).map((s) => metaEnvelope({ statuses: [s] })),
    mutated(metaEnvelope({}), hostileJson),
    hostileJson,
  );
  const whatsapp = fc.tuple(waBody, fc.boolean()).map(([body, signed]): Case => {
    const raw = JSON.stringify(body) ?? 'null';
    return { kind: signed ? 'whatsapp signed' : 'whatsapp unsigned', method: 'POST', path: WEBHOOK_PATH, headers: { 'content-type': 'application/json', ...(signed ? { 'x-hub-signature-256': signMetaBody(raw, WA.secret) } : {}) }, body: raw };
  });
  const whatsappVerify = fc.tuple(hostileText, hostileText).map(([token, challenge]): Case => ({
    kind: 'whatsapp verify',
    method: 'GET',
    path: `${WEBHOOK_PATH}?hub.mode=subscribe&hub.verify_token=${encodeURIComponent(wellFormed(token))}&hub.challenge=${encodeURIComponent(wellFormed(challenge))}`,
    headers: {},
  }));

  const slackAction = {
    type: 'block_actions',
    user: { id: 'U0ONCALL', username: 'dana' },
    team: { id: 'T0FAKETEAM', domain: 'parley-test' },
    container: { type: 'message', message_ts: '1.2', channel_id: 'C0OPS' },
    actions: [{ type: 'button', action_id: 'parley_ack', block_id: 'b', value: 'clinic/fuzz.alert', action_ts: '1' }],
  };
  const slack = fc
    .tuple(fc.oneof(mutated(slackAction, hostileJson), hostileJson), fc.constantFrom('signed', 'unsigned', 'future', 'raw'), hostileText)
    .map(([payload, how, raw]): Case => {
      const body = how === 'raw' ? raw : `payload=${encodeURIComponent(wellFormed(JSON.stringify(payload) ?? 'null'))}`;
      const now = Math.floor(Date.now() / 1000);
      const headers = { 'content-type': 'application/x-www-form-urlencoded', ...(how === 'unsigned' ? {} : signSlackRequest(SLACK_SECRET, body, how === 'future' ? now + 3600 : now)) };
      return { kind: `slack ${how}`, method: 'POST', path: '/slack/actions', headers, body };
    });

  // The mutated field may be any value, an object without a prototype too (String() throws on those).
  const textOf = (v: unknown): string => {
    try {
      return String(v);
    } catch {
      return JSON.stringify(v) ?? '';
    }
  };
  const httpMessage = fc
    .tuple(mutated({ from: 'fuzz-user', text: 'hello', id: 'fuzz-id' }, hostileJson), fc.constantFrom('clinic', 'wa'), fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'), fc.boolean())
    .map(([body, tenant, type, asJson]): Case => ({
      kind: 'http channel',
      method: 'POST',
      path: `/v1/tenants/${tenant}/messages`,
      headers: { 'content-type': type, authorization: `Bearer ${tenant === 'clinic' ? CLINIC_KEY : WA_KEY}` },
      body: asJson ? (JSON.stringify(body) ?? '') : textOf(body['text']),
    }));

  const pathParam = fc.oneof(hostileText.map((s) => encodeURIComponent(wellFormed(s))), fc.constantFrom('%00', '%ZZ', '%ED%A0%80', '..', '00000000-0000-0000-0000-000000000000'));
  const query = fc.oneof(fc.constant(''), fc.tuple(fc.constantFrom('limit', 'before', 'status'), pathParam).map(([k, v]) => `?${k}=${v}`));
  const admin = fc
    .tuple(
      fc.constantFrom('/v1/tenants/:t', '/v1/tenants/:t/conversations', '/v1/tenants/:t/conversations/:id/messages', '/v1/tenants/:t/messages/:id', '/v1/tenants/:t/outbox', '/v1/tenants/:t/outbox/:id', '/v1/tenants/:t/dead-letters', '/v1/tenants/:t/keys', '/v1/tenants/:t/consent/:id', '/v1/tenants/:t/parked', '/v1/parked', '/v1/plugins', '/v1/alerts', '/v1/tenants', '/healthz', '/readyz', '/metrics', '/:id'),
      fc.constantFrom('clinic', 'wa', 'nobody'),
      pathParam,
      query,
      fc.constantFrom(OPERATOR_KEY, CLINIC_KEY, WA_KEY, 'forged'),
      fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
      hostileJson,
    )
    .map(([route, tenant, id, q, key, method, body]): Case => {
      let path = route.replace(':t', tenant).replace(':id', id);
      if (method === 'POST' && route === '/v1/tenants/:t/outbox/:id') path += '/retry';
      if (method === 'POST' && route === '/v1/tenants/:t/keys') path = `/v1/tenants/${tenant}/keys`;
      return { kind: `admin ${method} ${route}`, method, path: `${path}${q}`, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, ...(method === 'GET' ? {} : { body: JSON.stringify({ label: body }) ?? '' }) };
    });

  return fc.oneof(
    { weight: 3, arbitrary: twilioSms },
    { weight: 1, arbitrary: twilioStatus },
    { weight: 2, arbitrary: twilioVoice },
    { weight: 3, arbitrary: whatsapp },
    { weight: 1, arbitrary: whatsappVerify },
    { weight: 2, arbitrary: slack },
    { weight: 2, arbitrary: httpMessage },
    { weight: 3, arbitrary: admin },
  );
}

async function run(c: Case): Promise<number> {
  try {
    const res = await fetch(`${all.gw.url}${c.path}`, { method: c.method, headers: c.headers, ...(c.body !== undefined ? { body: c.body } : {}) });
    await res.arrayBuffer();
    return res.status;
  } catch (error) {
    // fetch refuses some hostile URLs and headers before sending: not the gateway's answer.
    if (error instanceof TypeError && !(error.cause instanceof Error && /ECONN|socket/iu.test(error.cause.message))) return 0;
    throw error;
  }
}

describe('fuzzing every route', () => {
  it(`never answers 5xx, signed or unsigned, and stays healthy`, async () => {
    const started = Date.now();
    // Printed first: a generator that throws must be replayable too.
    console.log(`fuzz: seed=${SEED} (replay with FUZZ_SEED=${SEED})`);
    const cases = fc.sample(arbitraries(), { seed: SEED, numRuns: CASES });
    const failures: string[] = [];
    const statuses = new Map<string, number>();
    // BATCH requests in flight at a time: each worker takes the next case when its request ends.
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < cases.length; i = next++) {
        const c = cases[i]!;
        const status = await run(c);
        const key = `${c.kind} ${status}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (status >= 500) failures.push(`#${i} ${c.kind} ${c.method} ${c.path.slice(0, 200)} -> ${status}: ${(c.body ?? '').slice(0, 300)}`);
      }
    };
    await Promise.all(Array.from({ length: BATCH }, worker));
    console.log(`fuzz: ${cases.length} cases in ${Math.round((Date.now() - started) / 1000)} s; statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    expect(failures.slice(0, 20), `seed ${SEED}: ${failures.length} 5xx answers`).toEqual([]);

    expect((await all.gw.request('GET', '/healthz')).status).toBe(200);
    const ready = await all.gw.request('GET', '/readyz');
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);
    const sent = await all.gw.send('clinic', { from: 'after-fuzz', text: 'still there?' }, CLINIC_KEY);
    expect(sent.status).toBe(200);
    expect(sent.replies.length).toBeGreaterThan(0);
  }, 300_000);
});

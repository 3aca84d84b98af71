/**
 * Input PostgreSQL cannot take never becomes a 5xx: text with NUL or lone surrogates is stored with
 * U+FFFD, our own API answers 400, and a signed provider webhook that cannot be stored at all is
 * parked (payload kept, addresses hashed), counted and answered 200 so the provider stops retrying.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAddress } from '../core/logger.js';
import { inboundSmsParams, newSid, statusCallbackParams } from './fakes/twilio-webhook.js';
import { CLINIC_KEY, CLINIC_NUMBER, OPERATOR_KEY, WA_KEY, metaText, startAllChannels, type AllChannels } from './fixtures/all-channels.js';

let all: AllChannels;
let seq = 0;
beforeAll(async () => {
  all = await startAllChannels();
});
afterAll(() => all?.close());

const waUser = () => `1650555${String(2000 + ++seq)}`;
const wamid = () => `wamid.POISON${++seq}${Date.now()}`;
const rowOf = async (channel: string, providerMessageId: string) =>
  (await all.gw.gateway.db.pool.query('SELECT body, raw, from_address FROM parley_inbound WHERE channel = $1 AND provider_message_id = $2', [channel, providerMessageId])).rows[0];
const parkedFor = async (key: string, path = '/v1/parked') => (await all.gw.request('GET', path, { key })).body.parked as { reason: string; payload: string; tenantId: string | null; addressHashes: string[] }[];

describe('text PostgreSQL rejects is stored with U+FFFD', () => {
  it('keeps a Twilio SMS whose Body and other fields hold NUL', async () => {
    const params = inboundSmsParams({ from: '+15550001111', to: CLINIC_NUMBER, body: 'before\u0000after', extra: { ToCity: 'SAN\u0000FRANCISCO' } });
    const res = await all.twilioPost('/twilio/sms', params);
    expect(res.status).toBe(200);
    const row = await rowOf('twilio-sms', params.MessageSid!);
    expect(row.body).toBe('before\uFFFDafter');
    expect(row.raw.ToCity).toBe('SAN\uFFFDFRANCISCO');
  });

  it('keeps a signed WhatsApp Cloud message with NUL and lone surrogates in its text and profile', async () => {
    const id = wamid();
    const body = metaText(waUser(), id, { text: { body: 'a\u0000b\uD800c\uDC00d 😀' } });
    (body as any).entry[0].changes[0].value.contacts[0].profile.name = 'N\u0000';
    const res = await all.metaPost(JSON.stringify(body));
    expect(res.status).toBe(200);
    await expect.poll(async () => (await rowOf('whatsapp-cloud', id))?.body).toBe('a\uFFFDb\uFFFDc\uFFFDd 😀');
  });
});

describe('our own API answers 400, never 500', () => {
  it('refuses NUL and lone surrogates in a JSON body', async () => {
    for (const body of [{ from: 'a\u0000', text: 'x' }, { from: 'a', text: 'x\uD800' }, { from: 'a', text: 'x', id: '\u0000' }]) {
      const r = await all.gw.request('POST', '/v1/tenants/clinic/messages', { key: CLINIC_KEY, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    const label = await all.gw.request('POST', '/v1/tenants/clinic/keys', { key: OPERATOR_KEY, body: { label: 'ci\u0000' } });
    expect(label.status).toBe(400);
  });

  it('refuses a NUL in a path parameter', async () => {
    for (const path of ['/v1/tenants/clinic/consent/%2B1555%00', '/v1/tenants/clinic/messages/%00', '/v1/tenants/clinic%00/outbox']) {
      const r = await all.gw.request('GET', path, { key: CLINIC_KEY });
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
    }
  });

  it('answers a Twilio status callback whose To holds NUL with a 4xx', async () => {
    const params = statusCallbackParams({ messageSid: newSid('SM'), status: 'failed', from: CLINIC_NUMBER, to: '+1555\u00001234', accountSid: all.twilio.accountSid, errorCode: '21610' });
    const r = await all.twilioPost('/twilio/status', params);
    expect(r.status).toBeLessThan(500);
  });
});

describe('a signed provider webhook that cannot be stored is parked and answered 200', () => {
  const sender = '16505550199';
  const longSender = `${sender}${'9'.repeat(5000)}`;
  const cases: [string, string, () => Record<string, unknown>][] = [
    ['a timestamp out of range', sender, () => metaText(sender, wamid(), { timestamp: '99999999999999' })],
    ['a multi-kilobyte message id', sender, () => metaText(sender, `wamid.${'x'.repeat(5000)}`)],
    ['a multi-kilobyte sender', longSender, () => metaText(longSender, wamid())],
    ['very deep nesting', sender, () => metaText(sender, wamid(), { extra: JSON.parse(`${'['.repeat(3000)}1${']'.repeat(3000)}`) })],
  ];
  for (const [what, from, payload] of cases) {
    it(`parks a message with ${what}`, async () => {
      const before = (await parkedFor(OPERATOR_KEY)).length;
      const res = await all.metaPost(JSON.stringify(payload()));
      expect(res.status).toBe(200);
      const parked = await parkedFor(OPERATOR_KEY);
      expect(parked.length).toBe(before + 1);
      expect(parked[0]).toMatchObject({ tenantId: 'wa' });
      expect(parked[0]!.payload).toContain('whatsapp_business_account');
      expect(parked[0]!.payload).not.toContain(sender);
      expect(parked[0]!.addressHashes).toContain(hashAddress(`+${from}`));
    });
  }

  for (const [what, timestamp] of [['far in the future', '99999999999999'], ['before 2000', '1']]) {
    it(`parks a status whose timestamp is ${what}`, async () => {
      const before = (await parkedFor(OPERATOR_KEY)).length;
      const body = metaText(sender, wamid()) as any;
      const value = body.entry[0].changes[0].value;
      delete value.messages;
      delete value.contacts;
      value.statuses = [{ id: wamid(), status: 'delivered', timestamp, recipient_id: sender }];
      const res = await all.metaPost(JSON.stringify(body));
      expect(res.status).toBe(200);
      const parked = await parkedFor(OPERATOR_KEY);
      expect(parked.length).toBe(before + 1);
      expect(parked[0]).toMatchObject({ tenantId: 'wa', reason: 'status: The message cannot be stored: status.timestamp is not a plausible time (unix seconds)' });
      expect(parked[0]!.addressHashes).toContain(hashAddress(`+${sender}`));
    });
  }

  it('counts parked webhooks and shows them to their tenant but not to another', async () => {
    expect(await all.gw.metrics()).toMatch(/parley_parked_webhooks_total\{channel="whatsapp-cloud",tenant="wa"\} [1-9]/);
    expect((await parkedFor(WA_KEY, '/v1/tenants/wa/parked')).length).toBeGreaterThan(0);
    expect((await parkedFor(CLINIC_KEY, '/v1/tenants/clinic/parked')).length).toBe(0);
    expect((await all.gw.request('GET', '/v1/parked', { key: WA_KEY })).status).toBe(403);
  });
});

describe('signed Slack actions', () => {
  it('answers an action with user null with 200 and records nothing', async () => {
    const payload = {
      type: 'block_actions',
      user: null,
      api_app_id: 'A0FAKEAPP',
      token: 'unused',
      container: { type: 'message', message_ts: '1.2', channel_id: 'C0OPS' },
      team: { id: 'T0FAKETEAM', domain: 'parley-test' },
      actions: [{ type: 'button', action_id: 'parley_ack', block_id: 'b', value: 'clinic/some.alert', action_ts: '1' }],
    };
    const r = await all.slackPost(`payload=${encodeURIComponent(JSON.stringify(payload))}`);
    expect(r.status).toBe(200);
  });
});

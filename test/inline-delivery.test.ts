/**
 * Inline replies count as sent only when the response that carries them finished: a client that hangs
 * up first gets them through the provider API, once, and a process that dies in between leaves them
 * to the recovery sweep.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, newSid, post, signedSmsRequest, type SignedRequest } from './fakes/twilio-webhook.js';
import { twilioTest } from './fixtures/twilio-stages.js';
import { CLINIC_NUMBER, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';
import { settleInlineSentMany } from '../core/storage/message-store.js';

let fake: FakeTwilio;
let gw: TestGateway;

beforeAll(async () => {
  fake = await startFakeTwilio();
  gw = await startTestGateway({ config: twilioConfig(fake, { voice: false }) });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => twilioTest.reset());

let n = 0;
const freshNumber = () => `+1555300${String(1000 + n++).slice(-4)}`;
const sms = (from: string, body: string) =>
  signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid: fake.accountSid, messageSid: newSid() }) });

/** Sends the webhook and destroys the socket once the pipeline has the message, before any response. */
async function postAndHangUp(req: SignedRequest, pipelineHasIt: () => boolean): Promise<void> {
  const url = new URL(req.url);
  const client = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) } });
  const gone = new Promise<void>((resolve) => client.on('close', resolve));
  client.on('error', () => {});
  client.on('response', () => {
    throw new Error('the response arrived before the client hung up; the stage is not slow enough');
  });
  client.end(req.body);
  while (!pipelineHasIt()) await new Promise((r) => setTimeout(r, 10));
  client.destroy();
  await gone;
}

const mine = (to: string) => <T extends { to: string }>(items: T[]): T[] => items.filter((i) => i.to === to);

describe('an inline reply', () => {
  it('whose client hung up before the response was written is sent once through the REST API', async () => {
    const from = freshNumber();
    await postAndHangUp(sms(from, 'slow 800'), () => twilioTest.seen.some((s) => s.message.from === from));
    const items = mine(from)(await gw.waitForOutbox('clinic', (all) => mine(from)(all).some((i) => i.status === 'sent')));
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ text: 'Sorry for the wait: here is your answer.', status: 'sent', via: 'api', attempts: 1, details: { inline: 'response-not-written' } });
    expect(fake.sent.filter((m) => m.to === from).map((m) => m.body)).toEqual(['Sorry for the wait: here is your answer.']);
  });

  it('whose response finished is recorded as sent inline and never goes through the REST API', async () => {
    const from = freshNumber();
    const res = await post(sms(from, 'hours?'));
    expect(twimlMessages(res.text).map((m) => m.body)).toEqual(['echo: hours? [turn 1]']);
    const items = mine(from)(await gw.waitForOutbox('clinic', (all) => mine(from)(all).some((i) => i.status !== 'sending')));
    expect(items).toMatchObject([{ status: 'sent', via: 'inline', attempts: 0 }]);
    const { rows: events } = await gw.gateway.db.pool.query('SELECT status, detail FROM parley_outbox_events WHERE outbox_id = $1 ORDER BY id', [items[0]!.id]);
    expect(events).toEqual([{ status: 'sent', detail: { via: 'inline' } }]);
    expect(fake.sent.filter((m) => m.to === from)).toEqual([]);
  });

  it('is metered by the statement that records it as sent, once', async () => {
    const from = freshNumber();
    const result = await gw.gateway.receive(
      { channel: 'twilio-sms', tenantId: 'clinic', from, to: CLINIC_NUMBER, text: 'hours?', providerMessageId: newSid() },
      { inline: { budgetMs: 5_000, confirm: true } },
    );
    const reply = result.inline[0]!;
    const metered = async () =>
      (await gw.gateway.db.pool.query(`SELECT plugin, quantity::int AS quantity, attributes FROM parley_usage WHERE tenant_id = 'clinic' AND kind = 'messages.out' AND ref = $1`, [reply.id])).rows;
    expect(await metered()).toEqual([]);
    const settle = () => settleInlineSentMany(gw.gateway.db.pool, [{ tenantId: 'clinic', ids: [reply.id], plugins: ['twilio-sms'] }]);
    expect(await settle()).toMatchObject([[{ id: reply.id, status: 'sent', via: 'inline' }]]);
    // No window between the two: a crash after the settling statement cannot lose the meter.
    expect(await metered()).toEqual([{ plugin: 'twilio-sms', quantity: 1, attributes: { channel: 'twilio-sms', via: 'inline' } }]);
    // Settling again changes nothing and meters nothing more.
    expect(await settle()).toEqual([[]]);
    expect(await metered()).toHaveLength(1);
  });

  it('is settled once even when its meter fails, and never sent again', async () => {
    const pool = gw.gateway.db.pool;
    // A plugin's trigger on the usage ledger that fails (cost guard keeps one there): the settle must not.
    await pool.query(`CREATE FUNCTION test_meter_fails() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION 'meter down'; END $f$`);
    await pool.query(`CREATE TRIGGER test_meter_fails BEFORE INSERT ON parley_usage FOR EACH ROW WHEN (NEW.kind = 'messages.out') EXECUTE FUNCTION test_meter_fails()`);
    try {
      const from = freshNumber();
      const res = await post(sms(from, 'hours?'));
      expect(twimlMessages(res.text).map((m) => m.body)).toEqual(['echo: hours? [turn 1]']);
      const items = mine(from)(await gw.waitForOutbox('clinic', (all) => mine(from)(all).some((i) => i.status !== 'sending')));
      expect(items).toMatchObject([{ status: 'sent', via: 'inline', attempts: 0 }]);
      await gw.gateway.db.pool.query(`UPDATE parley_outbox SET updated_at = now() - interval '2 minutes' WHERE id = $1`, [items[0]!.id]);
      await gw.gateway.sweep();
      expect(mine(from)(await gw.waitForOutbox('clinic', () => true))).toMatchObject([{ status: 'sent', via: 'inline', attempts: 0 }]);
      expect(fake.sent.filter((m) => m.to === from)).toEqual([]);
    } finally {
      await pool.query('DROP TRIGGER test_meter_fails ON parley_usage');
      await pool.query('DROP FUNCTION test_meter_fails()');
    }
  });

  it('left provisional by a process that died before its response settled is sent by the recovery sweep', async () => {
    const from = freshNumber();
    // What a process killed between finishing the message and writing the response leaves behind.
    const result = await gw.gateway.receive(
      { channel: 'twilio-sms', tenantId: 'clinic', from, to: CLINIC_NUMBER, text: 'hours?', providerMessageId: newSid() },
      { inline: { budgetMs: 5_000, confirm: true } },
    );
    expect(result.inline).toMatchObject([{ status: 'sending', via: 'inline' }]);
    await gw.gateway.db.pool.query(`UPDATE parley_outbox SET updated_at = now() - interval '2 minutes' WHERE id = $1`, [result.inline[0]!.id]);
    await gw.gateway.sweep();
    const items = mine(from)(await gw.waitForOutbox('clinic', (all) => mine(from)(all).some((i) => i.status === 'sent')));
    expect(items).toMatchObject([{ status: 'sent', via: 'api', attempts: 1, details: { inline: 'unconfirmed' } }]);
    expect(fake.sent.filter((m) => m.to === from).map((m) => m.body)).toEqual(['echo: hours? [turn 1]']);
  });
});

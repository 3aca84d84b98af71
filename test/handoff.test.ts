/**
 * The conversation handoff state: a stage hands a conversation to a person, the tenant's bot stages
 * stay quiet meanwhile (channel first stages and stages that say so still run), an operator reads and
 * sets it on the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';

let gw: TestGateway;
const FROM = '+15557773001';

beforeAll(async () => {
  gw = await startTestGateway({ config: twoTenants({ pipeline: ['probe.handoff', 'probe.echo'] }), catalogue });
});
afterAll(() => gw?.stop({ cleanup: true }));

let n = 0;
const receive = (text: string) => gw.gateway.receive({ channel: 'probe-channel', to: '+15550001111', from: FROM, text, providerMessageId: `handoff-${n++}` }, { inline: { budgetMs: 5_000 } });
const stagesOf = async (inboundId: string) =>
  ((await gw.request('GET', `/v1/tenants/acme/messages/${inboundId}`, { key: KEYS.acme })).body.message.stages as { stage: string }[]).map((s) => s.stage);

describe('handing a conversation to a person', () => {
  let conversation: string;

  it('a stage hands it over: stored on the conversation with the reason, counted', async () => {
    const r = await receive('agent');
    conversation = r.conversationId!;
    expect(r.inline.map((i) => i.text)).toEqual(['Connecting you with a person.']);
    expect(r.handoff).toEqual({ state: 'human', reason: 'asked for a person', stage: 'probe.handoff' });
    const read = await gw.request('GET', `/v1/tenants/acme/conversations/${conversation}/handoff`, { key: KEYS.acme });
    expect(read.body.handoff).toMatchObject({ state: 'human', reason: 'asked for a person', by: 'stage:probe.handoff' });
    expect(await gw.metrics()).toMatch(/parley_handoffs_total\{tenant="acme",to="human",by="stage"\} 1/);
  });

  it('while a person has it, bot stages are skipped, but channel first stages and stages that run during handoff still run', async () => {
    const quiet = await receive('hello?');
    expect(quiet).toMatchObject({ status: 'processed', inline: [], annotations: { 'probe.handoffOnArrival': 'human' } });
    expect(await stagesOf(quiet.inboundId)).toEqual(['probe-channel.gate', 'probe.handoff']);
    const gate = await receive('gate');
    expect(gate.inline.map((i) => i.text)).toEqual(['gated']);
  });

  it('an operator hands it back to the bot, audited, and the bot answers again', async () => {
    const put = await gw.request('PUT', `/v1/tenants/acme/conversations/${conversation}/handoff`, { key: KEYS.operator, body: { state: 'bot', reason: 'resolved by Dana' } });
    expect(put.status).toBe(200);
    expect(put.body.handoff).toMatchObject({ state: 'bot', reason: 'resolved by Dana', by: 'operator' });
    const back = await receive('hello again');
    expect(back.inline.map((i) => i.text)).toEqual(['acme says: hello again']);
    expect(await gw.metrics()).toMatch(/parley_handoffs_total\{tenant="acme",to="bot",by="operator"\} 1/);
    const { rows } = await gw.gateway.db.pool.query(`SELECT actor, detail FROM parley_audit WHERE action = 'conversation.handoff'`);
    expect(rows).toEqual([{ actor: 'operator', detail: { conversationId: conversation, state: 'bot' } }]);
    const list = await gw.request('GET', '/v1/tenants/acme/conversations', { key: KEYS.acme });
    expect(list.body.conversations.find((c: { id: string }) => c.id === conversation).handoff).toBe('bot');
  });

  it('refuses a state it does not know', async () => {
    const bad = await gw.request('PUT', `/v1/tenants/acme/conversations/${conversation}/handoff`, { key: KEYS.acme, body: { state: 'robot' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('PARLEY_BAD_REQUEST');
  });
});

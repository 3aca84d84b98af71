/**
 * moderation end to end (embedded, and on PostgreSQL + Redis with PARLEY_TEST_BACKEND=external): each
 * action, redaction before storage (the raw value in no table, log line or model request), the review
 * queue with concurrent approvals, reject/escalate/dismiss/bulk dismiss, crisis precedence, outbound
 * screening of a model reply (redact, hold then release), the optional model detector and its failure,
 * the screening API, the SLA alert at the fake Slack, auto-dismiss, tenant isolation and the
 * data-subject provider.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-api.js';
import type { ModerationService } from '../plugins/moderation/index.js';
import { QueueStore } from '../plugins/moderation/store.js';

const OP = 'key-operator-moderation-0123456789';
const key = (t: string) => `key-${t}-moderation-0123456789`;
let gw: TestGateway;
let fake: FakeModelApi;
let slack: FakeSlack;
let service: ModerationService;
let n = 0;
const from = () => `+1555020${String(++n).padStart(4, '0')}`;

const tenant = (id: string, moderation: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  id,
  apiKeys: [key(id)],
  ai: { chat: 'fake' },
  pipeline: ['crisis-guard', 'moderation', 'ask'],
  replyPipeline: ['moderation'],
  plugins: { http: {}, ask: {}, 'crisis-guard': {}, moderation },
  ...extra,
});

beforeAll(async () => {
  fake = await startFakeModelApi();
  slack = await startFakeSlack({ token: 'xoxb-moderation' });
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OP] },
      ai: { providers: { fake: { type: 'openai', baseUrl: `${fake.url}/v1`, chatModel: 'gpt-4o-mini', maxRetries: 0 } } },
      plugins: [
        'http',
        'crisis-guard',
        { name: 'ask' },
        { name: 'slack-alerts', options: { token: 'xoxb-moderation', signingSecret: 'moderation-secret-0123456789', apiUrl: slack.apiUrl, defaultChannel: 'C0MOD', quietPeriodMs: 0, rules: [] } },
        'moderation',
      ],
      tenants: [
        tenant('clinic'),
        tenant('strict', {
          categories: { profanity: { action: 'block', threshold: 0.5 }, spam: { action: 'block', threshold: 0.6 } },
          spam: { blockedDomains: ['bad.example'] },
          blockReply: 'Message not delivered.',
          rejectReply: 'A moderator did not accept your message.',
          holdNotice: { skipChannels: ['http'] },
        }),
        tenant('modeled', { model: { enabled: true, timeoutMs: 2000 } }),
        tenant('backlog', { review: { slaMinutes: 1, autoDismiss: { belowConfidence: 0.7, afterHours: 0.5 } } }),
      ],
    },
    catalogue: { ask: fileURLToPath(new URL('./fixtures/cost-guard-ask.ts', import.meta.url)) },
  });
  service = gw.gateway.container.resolve(Symbol.for('moderation.service')) as ModerationService;
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
  await slack?.close();
});
beforeEach(() => {
  fake.reset();
  fake.answer = undefined;
});

const send = (t: string, text: string, sender = from()) => gw.send(t, { from: sender, text }, key(t));
const texts = (r: { replies: { text: string }[] }) => r.replies.map((x) => x.text);
const db = () => gw.gateway.db.pool;
const annotations = async (id: string) => (await db().query(`SELECT annotations FROM parley_inbound WHERE id = $1`, [id])).rows[0].annotations;
const statusOf = async (id: string) => (await db().query(`SELECT status FROM parley_inbound WHERE id = $1`, [id])).rows[0].status as string;
const itemFor = async (t: string, messageId: string) => (await gw.request('GET', `/v1/tenants/${t}/moderation/queue?status=pending,in_review,escalated,approved,rejected,dismissed&limit=200`, { key: key(t) })).body.items.find((i: { messageId: string }) => i.messageId === messageId);

async function everyRow(): Promise<string> {
  const { rows: tables } = await db().query<{ s: string; t: string }>(
    `SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  const out: string[] = [];
  for (const { s, t } of tables) out.push(...(await db().query(`SELECT to_jsonb(x)::text AS j FROM "${s}"."${t}" x`)).rows.map((r) => r.j as string));
  return out.join('\n');
}

async function slackSays(pattern: RegExp, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = slack.messages.map((m) => JSON.stringify(m)).find((m) => pattern.test(m));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no Slack message matching ${pattern}: ${slack.messages.map((m) => JSON.stringify(m).slice(0, 200)).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('actions', () => {
  it('allow: a clean message goes on to the answer', async () => {
    const r = await send('clinic', 'What are your opening hours?');
    expect(texts(r)).toEqual(['fake/gpt-4o-mini: echo: What are your opening hours?']);
    expect((await annotations(r.message.id)).moderation).toMatchObject({ action: 'allow', safe: true, flags: [] });
  });

  it('flag: recorded on the message and counted, the message goes on', async () => {
    const r = await send('clinic', 'this fucking wait is too long');
    expect(r.message.status).toBe('processed');
    expect(texts(r)).toHaveLength(1);
    expect((await annotations(r.message.id)).moderation).toMatchObject({ action: 'flag', flags: [{ category: 'profanity', action: 'flag' }] });
    expect(await gw.metrics()).toMatch(/parley_moderation_flags_total\{tenant="clinic",direction="inbound",category="profanity",action="flag"\} 1/);
  });

  it('block: stopped with the configured reply, for profanity and links to blocked domains', async () => {
    const r = await send('strict', 'f u c k this place');
    expect(r.message).toMatchObject({ status: 'stopped', stopReason: 'moderation: blocked (profanity)' });
    expect(texts(r)).toEqual(['Message not delivered.']);
    const s = await send('strict', 'great deals at https://shop.bad.example/now');
    expect(s.message.stopReason).toBe('moderation: blocked (spam)');
    expect(fake.calls).toHaveLength(0);
  });

  it('spam: the third identical message from one sender is blocked', async () => {
    const sender = from();
    for (let i = 0; i < 2; i++) expect((await send('strict', 'Hello??', sender)).message.status).toBe('processed');
    expect((await send('strict', 'hello?', sender)).message.stopReason).toBe('moderation: blocked (spam)');
  });

  it('redact: a card number is masked before it is stored, so it is in no table, log line or model request', async () => {
    const r = await send('clinic', 'please charge my card 4111 1111 1111 1111 for the visit');
    expect(texts(r)).toEqual(['fake/gpt-4o-mini: echo: please charge my card [redacted card] for the visit']);
    expect((await annotations(r.message.id)).moderation).toMatchObject({ action: 'redact', redacted: true });
    const everything = await everyRow();
    for (const raw of ['4111 1111 1111 1111', '4111111111111111']) {
      expect(everything).not.toContain(raw);
      expect(JSON.stringify(gw.logs)).not.toContain(raw);
      expect(JSON.stringify(fake.calls)).not.toContain(raw);
    }
    expect(await gw.metrics()).toMatch(/parley_moderation_redactions_total\{tenant="clinic"\} 1/);
  });

  it('redact: personal data in a webhook parked before its tenant is known is masked too', async () => {
    const parked = await gw.gateway.services().park({ channel: 'http', reason: 'no tenant has this number', payload: { Body: 'card 5500 0000 0000 0004, mail ann@example.org', To: '+15550209999' }, addresses: ['+15550209999'] });
    const { rows } = await db().query(`SELECT tenant_id, payload FROM parley_parked_webhooks WHERE id = $1`, [parked.id]);
    expect(rows[0].tenant_id).toBeNull();
    expect(JSON.stringify(rows[0].payload)).toContain('card [redacted card], mail [redacted email]');
    const everything = await everyRow();
    for (const raw of ['5500 0000 0000 0004', 'ann@example.org']) expect(everything).not.toContain(raw);
  });
});

describe('the review queue', () => {
  it('hold: the message waits with a notice; two moderators approving at once continue the pipeline once', async () => {
    const sender = from();
    await send('clinic', 'I have a question about my bill', sender);
    const r = await send('clinic', "you're a worthless idiot", sender);
    expect(r.message.status).toBe('held');
    expect(texts(r)).toEqual(['Thanks for your message. A member of our team will look at it shortly.']);
    const item = await itemFor('clinic', r.message.id);
    expect(item).toMatchObject({ status: 'pending', direction: 'inbound', categories: ['harassment'], heldStage: 'moderation' });
    expect(item.confidence).toBeGreaterThan(0.6);
    const one = await gw.request('GET', `/v1/tenants/clinic/moderation/queue/${item.id}`, { key: key('clinic') });
    expect(one.body.message).toBe("you're a worthless idiot");
    expect(one.body.context.map((c: { text: string }) => c.text)).toContain('I have a question about my bill');

    const claimed = await gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/claim`, { key: key('clinic'), body: { moderator: 'ana', notes: 'looking' } });
    expect(claimed.body.item).toMatchObject({ status: 'in_review', assignee: 'ana', notes: 'looking' });
    const calls = fake.calls.length;
    const [a, b] = await Promise.all([
      gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/approve`, { key: key('clinic'), body: { moderator: 'ana', reason: 'venting, not abuse' } }),
      gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/approve`, { key: OP, body: { moderator: 'ben' } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const winner = a.status === 200 ? a : b;
    expect(winner.body.effect).toBe('continued:processed');
    expect(fake.calls.length - calls).toBe(1);
    expect(await statusOf(r.message.id)).toBe('processed');
    const replies = (await gw.outbox('clinic')).filter((i) => i.inboundId === r.message.id).map((i) => i.text);
    expect(replies).toEqual(['Thanks for your message. A member of our team will look at it shortly.', "fake/gpt-4o-mini: echo: you're a worthless idiot"]);
    const audit = (await gw.request('GET', `/v1/tenants/clinic/moderation/queue/${item.id}`, { key: key('clinic') })).body.audit;
    expect(audit.map((x: { action: string }) => x.action)).toEqual(['claim', 'approved']);
    expect(audit[1]).toMatchObject({ fromStatus: 'in_review', toStatus: 'approved' });
    expect(audit[1].actor).toMatch(/^(ana|ben) \((key:[\w:-]+|tenant|operator)\)$/);
  });

  it('reject: the held message is closed and the configured reply is sent; no notice on a skipped channel', async () => {
    const r = await send('strict', 'I know where you live');
    expect(r.message.status).toBe('held');
    expect(texts(r)).toEqual([]);
    const item = await itemFor('strict', r.message.id);
    const rej = await gw.request('POST', `/v1/tenants/strict/moderation/queue/${item.id}/reject`, { key: key('strict'), body: { reason: 'threat' } });
    expect(rej.body).toMatchObject({ item: { status: 'rejected', decisionReason: 'threat' }, effect: 'stopped' });
    expect(await statusOf(r.message.id)).toBe('stopped');
    await gw.waitForOutbox('strict', (all) => all.some((i) => i.conversationId === r.message.conversationId && i.text === 'A moderator did not accept your message.'));
    expect((await gw.request('POST', `/v1/tenants/strict/moderation/queue/${item.id}/approve`, { key: key('strict') })).status).toBe(409);
  });

  it('escalate then dismiss: escalation alerts, dismissal lets the message continue', async () => {
    fake.answer = () => 'Thanks, noted.';
    const r = await send('clinic', 'shut up and answer');
    const item = await itemFor('clinic', r.message.id);
    const esc = await gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/escalate`, { key: key('clinic'), body: { assignedTo: 'lead', notes: 'unsure' } });
    expect(esc.body.item).toMatchObject({ status: 'escalated', assignee: 'lead' });
    await slackSays(/clinic: a moderation item \(harassment\) from ph_\w+ was escalated to lead/);
    const dis = await gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/dismiss`, { key: key('clinic'), body: { notes: 'false positive' } });
    expect(dis.body.effect).toBe('continued:processed');
    expect(await statusOf(r.message.id)).toBe('processed');
  });

  it('bulk dismiss: open items below a confidence, each recorded', async () => {
    const low = await send('clinic', 'nobody cares about you');
    const high = await send('clinic', "I'm going to hurt you");
    const r = await gw.request('POST', '/v1/tenants/clinic/moderation/queue/bulk-dismiss', { key: key('clinic'), body: { belowConfidence: 0.7 } });
    expect(r.body.dismissed).toBe(1);
    expect((await itemFor('clinic', low.message.id)).status).toBe('dismissed');
    expect((await itemFor('clinic', high.message.id)).status).toBe('pending');
    expect(await statusOf(low.message.id)).toBe('processed');
    const list = await gw.request('GET', '/v1/tenants/clinic/moderation/queue?status=pending&category=harassment&limit=1&offset=0', { key: key('clinic') });
    expect(list.body).toMatchObject({ count: 1, limit: 1, offset: 0 });
    expect(list.body.total).toBeGreaterThanOrEqual(1);
    const stats = (await gw.request('GET', '/v1/tenants/clinic/moderation/stats', { key: key('clinic') })).body;
    expect(stats.pending).toBeGreaterThanOrEqual(1);
    expect(stats.decisions).toMatchObject({ approved: 1, dismissed: 2 });
    expect(stats.timeToDecisionSeconds.p50).toBeGreaterThanOrEqual(0);
    expect(stats.oldestPendingSeconds).toBeGreaterThanOrEqual(0);
  });

  it('a decision cut off by a crash before its effect is settled by the next ticks, once', async () => {
    // The decision row commits, then the process dies before the held message is resumed: what is on
    // disk is the store's decision alone. Two instances' ticks then find it at the same time.
    const store = new QueueStore(db());
    const approved = await send('clinic', "you're a worthless idiot");
    const rejected = await send('strict', 'I know where you live');
    const approvedItem = await itemFor('clinic', approved.message.id);
    const rejectedItem = await itemFor('strict', rejected.message.id);
    await store.decide('clinic', approvedItem.id, 'approved', { actor: 'ana', reason: null, notes: null });
    await store.decide('strict', rejectedItem.id, 'rejected', { actor: 'ben', reason: 'threat', notes: null });
    // A third one died between closing the message and queueing the reject reply.
    const cutReply = await send('strict', 'I know where you live, really');
    const cutReplyItem = await itemFor('strict', cutReply.message.id);
    await store.decide('strict', cutReplyItem.id, 'rejected', { actor: 'ben', reason: 'threat', notes: null });
    await gw.gateway.services().resume('strict', cutReply.message.id, { stop: 'moderation: rejected' });
    expect(await statusOf(approved.message.id)).toBe('held');
    // Not yet: a decision is given 30 s to settle itself before a tick takes it over.
    await service.tick();
    expect(await statusOf(approved.message.id)).toBe('held');
    await db().query(`UPDATE moderation_items SET decided_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])`, [[approvedItem.id, rejectedItem.id, cutReplyItem.id]]);
    await Promise.all([service.tick(), service.tick()]);
    await service.tick();
    expect(await statusOf(approved.message.id)).toBe('processed');
    expect(await statusOf(rejected.message.id)).toBe('stopped');
    const answers = (await gw.outbox('clinic')).filter((i) => i.inboundId === approved.message.id).map((i) => i.text);
    expect(answers.filter((t) => t.startsWith('fake/gpt-4o-mini: echo:'))).toEqual(["fake/gpt-4o-mini: echo: you're a worthless idiot"]);
    const rejections = (await gw.outbox('strict')).filter((i) => i.conversationId === rejected.message.conversationId && i.text === 'A moderator did not accept your message.');
    expect(rejections).toHaveLength(1);
    const lateRejections = (await gw.outbox('strict')).filter((i) => i.conversationId === cutReply.message.conversationId && i.text === 'A moderator did not accept your message.');
    expect(lateRejections).toHaveLength(1);
    const settled = await db().query(`SELECT settled_at FROM moderation_items WHERE id = ANY($1::uuid[])`, [[approvedItem.id, rejectedItem.id, cutReplyItem.id]]);
    expect(settled.rows.every((r) => r.settled_at !== null)).toBe(true);
  });
});

describe('crisis precedence', () => {
  it('a crisis message is never held or blocked: the crisis reply goes out and moderation only flags', async () => {
    const r = await send('strict', 'I want to kill myself, you fucking idiots never help');
    expect(r.message.status).not.toBe('held');
    expect(r.message.status).not.toBe('stopped');
    expect(texts(r)[0]).toMatch(/988/);
    expect((await annotations(r.message.id)).moderation).toMatchObject({ action: 'flag', crisis: true });
  });
});

describe('outbound screening', () => {
  it('redacts personal data in a model reply before it is stored or sent', async () => {
    fake.answer = () => 'The card on file is 4111-1111-1111-1111, SSN 123-45-6789.';
    const r = await send('clinic', 'what card do you have for me?');
    expect(texts(r)).toEqual(['fake/gpt-4o-mini: The card on file is [redacted card], SSN [redacted ssn].']);
    expect(await everyRow()).not.toContain('123-45-6789');
  });

  it('holds an abusive model reply; approving it sends it once', async () => {
    fake.answer = () => 'you are a worthless idiot';
    const r = await send('clinic', 'tell me something');
    expect(r.message.status).toBe('processed');
    expect(texts(r)).toEqual([]);
    const held = (await gw.outbox('clinic', 'held')).find((i) => i.inboundId === r.message.id)!;
    expect(held.errorCode).toBe('moderation');
    const items = (await gw.request('GET', '/v1/tenants/clinic/moderation/queue?direction=outbound&status=pending', { key: key('clinic') })).body.items;
    const item = items.find((i: { messageId: string }) => i.messageId === r.message.id);
    expect(item).toMatchObject({ direction: 'outbound', ref: `reply:${r.message.id}:0` });
    expect((await gw.request('GET', `/v1/tenants/clinic/moderation/queue/${item.id}`, { key: key('clinic') })).body.message).toBeNull();
    const results = await Promise.all([1, 2].map(() => gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/approve`, { key: key('clinic') })));
    expect(results.map((x) => x.status).sort()).toEqual([200, 409]);
    await gw.waitForOutbox('clinic', (all) => all.some((i) => i.id === held.id && i.status === 'delivered'));
    expect((await gw.request('GET', `/v1/tenants/clinic/moderation/queue/${item.id}`, { key: key('clinic') })).body.item.outboxId).toBe(held.id);
  });
});

describe('the model detector (optional)', () => {
  it("holds on the model's toxicity score, and a model failure never blocks the message", async () => {
    fake.answer = (t) => (t.includes('mean words') ? '{"toxicity": 0.93, "labels": ["insult"]}' : `echo: ${t}`);
    const r = await send('modeled', 'some mean words for you');
    expect(r.message.status).toBe('held');
    expect((await itemFor('modeled', r.message.id)).flags).toEqual([expect.objectContaining({ category: 'toxicity', detector: 'model:gpt-4o-mini', score: 0.93 })]);
    fake.failNext({ status: 500 });
    const ok = await send('modeled', 'When is my appointment?');
    expect(ok.message.status).toBe('processed');
    expect(fake.calls.map((c) => c.outcome)).toContain('500');
    // The failed call, and the check of the reply (an echo, not the JSON asked for) counts as failed too.
    expect(await gw.metrics()).toMatch(/parley_moderation_model_checks_total\{result="failed"\} [1-9]/);
  });
});

describe('the screening API', () => {
  it('returns { safe, flags, action } and stores nothing', async () => {
    const r = await gw.request('POST', '/v1/tenants/clinic/moderation/screen', { key: key('clinic'), body: { text: 'FREE MONEY!!! click here, call 555-123-4567, idiot', contentType: 'feedback_text' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ safe: false, action: 'redact', contentType: 'feedback_text' });
    expect(r.body.flags.map((f: { type: string }) => f.type).sort()).toEqual(['pii', 'spam']);
    expect((await gw.request('POST', '/v1/tenants/clinic/moderation/screen', { key: key('clinic'), body: { text: 'hello' } })).body).toEqual({ safe: true, action: 'allow', confidence: 0, requiresReview: false, flags: [] });
    expect((await gw.request('POST', '/v1/tenants/clinic/moderation/screen', { key: key('clinic'), body: {} })).status).toBe(400);
  });

  it('keeps tenants apart: 401 without a key, 403 for another tenant, the operator sees all', async () => {
    for (const [method, path] of [['POST', '/v1/tenants/clinic/moderation/screen'], ['GET', '/v1/tenants/clinic/moderation/queue'], ['GET', '/v1/tenants/clinic/moderation/stats']] as const) {
      const body = method === 'POST' ? { text: 'x' } : undefined;
      expect((await gw.request(method, path, { body })).status).toBe(401);
      expect((await gw.request(method, path, { key: key('strict'), body })).status).toBe(403);
      expect((await gw.request(method, path, { key: OP, body })).status).toBe(200);
      expect((await gw.request(method, path, { key: key('clinic'), body })).status).toBe(200);
    }
    const strictItem = (await gw.request('GET', '/v1/tenants/strict/moderation/queue?status=rejected', { key: key('strict') })).body.items[0];
    expect((await gw.request('GET', `/v1/tenants/clinic/moderation/queue/${strictItem.id}`, { key: key('clinic') })).status).toBe(404);
    expect((await gw.request('POST', `/v1/tenants/clinic/moderation/queue/${strictItem.id}/approve`, { key: key('clinic') })).status).toBe(404);
  });
});

describe('the backlog', () => {
  it('alerts at Slack when the oldest pending item is older than the SLA, and auto-dismisses low confidence after N hours', async () => {
    const old = await send('backlog', 'shut up');
    const fresh = await send('backlog', "I'm going to hurt you");
    await db().query(`UPDATE moderation_items SET created_at = now() - interval '2 hours' WHERE tenant_id = 'backlog' AND message_id = $1`, [fresh.message.id]);
    await db().query(`UPDATE moderation_items SET created_at = now() - interval '1 hour' WHERE tenant_id = 'backlog' AND message_id = $1`, [old.message.id]);
    await service.tick();
    await slackSays(/backlog: the oldest moderation item has waited 120 min \(SLA 1 min\)/);
    const dismissed = await itemFor('backlog', old.message.id);
    expect(dismissed).toMatchObject({ status: 'dismissed', auto: true, decidedBy: 'auto-dismiss' });
    expect(await statusOf(old.message.id)).toBe('processed');
    expect((await itemFor('backlog', fresh.message.id)).status).toBe('pending');
    expect(await gw.metrics()).toMatch(/parley_moderation_decisions_total\{tenant="backlog",outcome="auto-dismissed"\} 1/);
    const gauge = (await gw.metrics()).split('\n').find((l) => l.startsWith('parley_moderation_queue_oldest_seconds{tenant="backlog"}'));
    expect(gauge, (await gw.metrics()).split('\n').filter((l) => l.includes('moderation_queue')).join('\n')).toMatch(/ 7[12]\d\d$/);
  });
});

describe('data subjects', () => {
  it('exports and erases queue items with the person', async () => {
    const sender = from();
    const r = await send('clinic', 'you are pathetic', sender);
    const item = await itemFor('clinic', r.message.id);
    await gw.request('POST', `/v1/tenants/clinic/moderation/queue/${item.id}/reject`, { key: key('clinic'), body: { notes: 'about this person' } });
    const exported = await gw.gateway.exportSubject({ tenantId: 'clinic', addresses: [sender] });
    const mine = exported.find((e) => e.provider === 'moderation.queue')!;
    expect(mine.records).toEqual([expect.objectContaining({ kind: 'moderation-item', id: item.id, status: 'rejected', audit: [expect.objectContaining({ action: 'rejected', notes: 'about this person' })] })]);
    const erased = await gw.gateway.eraseSubject({ tenantId: 'clinic', addresses: [sender] }, 'test');
    expect(erased['moderation.queue']).toBe(1);
    expect(await itemFor('clinic', r.message.id)).toBeUndefined();
    const audit = await db().query(`SELECT notes FROM moderation_audit WHERE tenant_id = 'clinic' AND item_id IS NULL`);
    expect(audit.rows.every((a) => a.notes === null)).toBe(true);
    expect(JSON.stringify(audit.rows)).not.toContain('about this person');
  });
});

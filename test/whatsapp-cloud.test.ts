/**
 * The whatsapp-cloud channel end to end: a real gateway, Meta-signed webhooks, and the real Graph
 * client talking to a fake Graph API on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeGraph, type FakeGraph } from './fakes/whatsapp-graph-api.js';
import { signMetaBody } from '../channels/whatsapp-cloud/signature.js';
import { WEBHOOK_PATH } from '../channels/whatsapp-cloud/index.js';
import type { OutboundMessage } from '../core/message.js';

const TOKEN = 'graph-test-token';
const ACME = { phoneNumberId: '106540352242922', display: '15550783881', secret: 'acme-app-secret', verify: 'acme-verify-token' };
const BETA = { phoneNumberId: '200000000000001', display: '15550009000', secret: 'beta-app-secret', verify: 'beta-verify-token' };
const REPLY = 'Thanks, we got your message.';

let gw: TestGateway;
let graph: FakeGraph;
let seq = 0;

beforeAll(async () => {
  graph = await startFakeGraph({ accessToken: TOKEN });
  const tenant = (id: string, t: typeof ACME, extra: Record<string, unknown>) => ({
    id,
    apiKeys: [`${id}-key`],
    pipeline: ['keyword-replies'],
    plugins: {
      'whatsapp-cloud': { phoneNumberId: t.phoneNumberId, displayNumber: `+${t.display}`, accessToken: TOKEN, appSecret: t.secret, verifyToken: t.verify, ...extra },
      'keyword-replies': { rules: [{ match: 'hush', reply: 'ok', final: true }], defaultReply: REPLY },
    },
  });
  gw = await startTestGateway({
    config: {
      outbox: { attempts: 4, backoffMs: 20 },
      plugins: [{ name: 'whatsapp-cloud', options: { graphBaseUrl: graph.baseUrl } }, 'keyword-replies'],
      tenants: [
        tenant('acme', ACME, { template: { name: 'reply_waiting', language: 'en_US', textParameter: true } }),
        tenant('beta', BETA, {}),
        // Its token, secret and verify token come from variables that are not set: the channel is off for it.
        { id: 'gamma', apiKeys: ['gamma-key'], pipeline: ['keyword-replies'], plugins: { 'whatsapp-cloud': { phoneNumberId: '109999999999999' }, 'keyword-replies': { defaultReply: REPLY } } },
      ],
    },
  });
});

afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await graph?.close();
});

/** A unique WhatsApp user id, so tests do not see each other's conversations. */
function user(): string {
  seq += 1;
  return `1650555${String(1000 + seq).padStart(4, '0')}`;
}

function envelope(t: typeof ACME, value: Record<string, unknown>): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: t.display, phone_number_id: t.phoneNumberId }, ...value } }] }],
  };
}

function inbound(t: typeof ACME, from: string, message: Record<string, unknown>, at = new Date()): Record<string, unknown> {
  seq += 1;
  return envelope(t, {
    contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: from }],
    messages: [{ from, id: `wamid.IN${seq}${Date.now()}`, timestamp: String(Math.floor(at.getTime() / 1000)), type: 'text', text: { body: 'hello' }, ...message }],
  });
}

function statuses(t: typeof ACME, wamid: string, recipient: string, status: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return envelope(t, { statuses: [{ id: wamid, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: recipient, ...extra }] });
}

async function post(body: Record<string, unknown> | string, secret: string | null = ACME.secret, headers: Record<string, string> = {}) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return gw.request('POST', WEBHOOK_PATH, {
    raw,
    headers: { 'content-type': 'application/json', ...(secret ? { 'x-hub-signature-256': signMetaBody(raw, secret) } : {}), ...headers },
  });
}

async function inboundRows(tenant: string, from: string) {
  const { rows } = await gw.gateway.db.pool.query(`SELECT * FROM parley_inbound WHERE tenant_id = $1 AND channel = 'whatsapp-cloud' AND from_address = $2 ORDER BY received_at`, [tenant, `+${from}`]);
  return rows;
}

async function replyTo(tenant: string, from: string, status: (s: OutboundMessage['status']) => boolean = (s) => s === 'sent'): Promise<OutboundMessage> {
  const items = await gw.waitForOutbox(tenant, (all) => all.some((i) => i.to === `+${from}` && status(i.status)));
  return items.find((i) => i.to === `+${from}` && status(i.status))!;
}

const sentTo = (waId: string) => graph.sent.filter((s) => s.body['to'] === waId);

describe('whatsapp-cloud without credentials', () => {
  it('stays off for a tenant missing its token, app secret or verify token, says why in /readyz, and the gateway is ready', async () => {
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.components['whatsapp-cloud']).toMatchObject({ ok: true, detail: 'on for 2 tenant(s)', info: { tenants: { acme: 'on', beta: 'on', gamma: 'off: missing accessToken, appSecret, verifyToken' } } });
    expect(gw.logs.some((l) => l['tenant'] === 'gamma' && l['msg'] === 'whatsapp-cloud is off for this tenant')).toBe(true);
  });
});

describe('whatsapp-cloud webhook verification handshake', () => {
  it('echoes hub.challenge as plain text when the verify token is one a tenant configured', async () => {
    const r = await gw.request('GET', `${WEBHOOK_PATH}?hub.mode=subscribe&hub.verify_token=${BETA.verify}&hub.challenge=1158201444`);
    expect(r.status).toBe(200);
    expect(r.text).toBe('1158201444');
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
  });

  it('answers 403 to a wrong verify token or mode', async () => {
    expect((await gw.request('GET', `${WEBHOOK_PATH}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1`)).status).toBe(403);
    expect((await gw.request('GET', `${WEBHOOK_PATH}?hub.mode=unsubscribe&hub.verify_token=${ACME.verify}&hub.challenge=1`)).status).toBe(403);
    expect((await gw.request('GET', WEBHOOK_PATH)).status).toBe(403);
  });
});

describe('whatsapp-cloud signed webhooks', () => {
  it('accepts a body signed over its raw bytes (accents, emoji, spacing) and replies through the Graph API', async () => {
    const from = user();
    const raw = JSON.stringify(inbound(ACME, from, { text: { body: 'Bonjour, café é😀 ?' } }), null, 1);
    const r = await post(raw);
    expect(r.status).toBe(200);
    const reply = await replyTo('acme', from);
    expect(reply.providerMessageId).toMatch(/^wamid\./);
    expect(sentTo(from)).toEqual([expect.objectContaining({ phoneNumberId: ACME.phoneNumberId, wamid: reply.providerMessageId, body: expect.objectContaining({ type: 'text', text: { preview_url: false, body: REPLY } }) })]);
    const [row] = await inboundRows('acme', from);
    expect(row).toMatchObject({ body: 'Bonjour, café é😀 ?', to_address: `+${ACME.display}` });
    expect(row.attributes.whatsapp).toMatchObject({ type: 'text', profileName: 'Sheena Nelson', phoneNumberId: ACME.phoneNumberId });
    // The webhook answered once the message was stored, not after its pipeline.
    expect(await gw.metrics()).toMatch(/parley_whatsapp_cloud_events_total\{tenant="acme",kind="message",result="recorded"\} [1-9]/);
  });

  it('refuses with 403 a body that was re-serialised after signing, an unsigned one and a forged one', async () => {
    const from = user();
    const raw = JSON.stringify(inbound(ACME, from, { text: { body: 'café é😀' } }), null, 2);
    const reserialised = JSON.stringify(JSON.parse(raw));
    const before = await gw.metrics();
    expect((await post(reserialised, null, { 'x-hub-signature-256': signMetaBody(raw, ACME.secret) })).status).toBe(403);
    expect((await post(raw, null)).status).toBe(403);
    const forged = await post(raw, 'not-the-app-secret');
    expect(forged.status).toBe(403);
    expect(forged.body).toEqual({ error: { code: 'PARLEY_FORBIDDEN', message: 'Invalid X-Hub-Signature-256' } });
    expect(await inboundRows('acme', from)).toHaveLength(0);
    const failures = (text: string) => [...text.matchAll(/parley_whatsapp_cloud_signature_failures_total\{reason="[a-z-]+"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(failures(await gw.metrics()) - failures(before)).toBe(3);
  });

  it("ignores events for one tenant's number signed with another tenant's app secret", async () => {
    const from = user();
    expect((await post(inbound(ACME, from, {}), BETA.secret)).status).toBe(200);
    expect(await inboundRows('acme', from)).toHaveLength(0);
  });

  it('answers 400 to a signed body that is not a WhatsApp webhook', async () => {
    expect((await post({ object: 'page', entry: [] })).status).toBe(400);
  });

  it('records the same wamid once and replies once, however often Meta delivers it', async () => {
    const from = user();
    const raw = JSON.stringify(inbound(ACME, from, {}));
    const answers = await Promise.all([post(raw), post(raw), post(raw)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    await replyTo('acme', from);
    expect(await inboundRows('acme', from)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(sentTo(from)).toHaveLength(1);
  });
});

describe('whatsapp-cloud inbound message types', () => {
  it('maps an image to a typed media attachment with its caption as text', async () => {
    const from = user();
    await post(inbound(ACME, from, { type: 'image', image: { id: '1003383421387256', mime_type: 'image/jpeg', sha256: 'abc=', caption: 'Is this a rash?' } }));
    await replyTo('acme', from);
    const [row] = await inboundRows('acme', from);
    expect(row.body).toBe('Is this a rash?');
    expect(row.media).toEqual([{ url: 'whatsapp-cloud-media:1003383421387256', contentType: 'image/jpeg', caption: 'Is this a rash?' }]);
    expect(row.attributes.whatsapp).toMatchObject({ type: 'image', mediaType: 'image', mediaId: '1003383421387256' });
  });

  it('maps a document with its file name', async () => {
    const from = user();
    await post(inbound(ACME, from, { type: 'document', document: { id: '55', mime_type: 'application/pdf', filename: 'results.pdf' } }));
    await replyTo('acme', from);
    const [row] = await inboundRows('acme', from);
    expect(row.media).toEqual([{ url: 'whatsapp-cloud-media:55', contentType: 'application/pdf', filename: 'results.pdf' }]);
  });

  it('maps an interactive button reply to its title, with the button id for stages', async () => {
    const from = user();
    await post(inbound(ACME, from, { type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'confirm-appt-42', title: 'Confirm' } } }));
    await replyTo('acme', from);
    const [row] = await inboundRows('acme', from);
    expect(row.body).toBe('Confirm');
    expect(row.attributes.whatsapp.interactive).toEqual({ type: 'button_reply', id: 'confirm-appt-42', title: 'Confirm' });
  });

  it('maps a list reply the same way', async () => {
    const from = user();
    await post(inbound(ACME, from, { type: 'interactive', interactive: { type: 'list_reply', list_reply: { id: 'slot-9am', title: 'Tuesday 9am', description: 'Dr Osei' } } }));
    await replyTo('acme', from);
    const [row] = await inboundRows('acme', from);
    expect(row.body).toBe('Tuesday 9am');
    expect(row.attributes.whatsapp.interactive).toMatchObject({ type: 'list_reply', id: 'slot-9am' });
  });
});

describe('whatsapp-cloud delivery statuses', () => {
  it('moves the reply to delivered and read, and a late delivered or failed never undoes read', async () => {
    const from = user();
    await post(inbound(ACME, from, {}));
    const reply = await replyTo('acme', from);
    const wamid = reply.providerMessageId!;
    await post(statuses(ACME, wamid, from, 'delivered'));
    await replyTo('acme', from, (s) => s === 'delivered');
    await post(statuses(ACME, wamid, from, 'read'));
    await replyTo('acme', from, (s) => s === 'read');
    await post(statuses(ACME, wamid, from, 'delivered'));
    await post(statuses(ACME, wamid, from, 'failed', { errors: [{ code: 131026, title: 'Message undeliverable' }] }));
    const [item] = await gw.outbox('acme').then((all) => all.filter((i) => i.id === reply.id));
    expect(item!.status).toBe('read');
  });

  it('records a failed status with Meta’s error code', async () => {
    const from = user();
    await post(inbound(ACME, from, {}));
    const reply = await replyTo('acme', from);
    await post(statuses(ACME, reply.providerMessageId!, from, 'failed', { errors: [{ code: 131026, title: 'Message undeliverable' }] }));
    const failed = await replyTo('acme', from, (s) => s === 'failed');
    expect(failed).toMatchObject({ errorCode: '131026', error: 'Message undeliverable' });
  });
});

describe('whatsapp-cloud sending', () => {
  it('retries 429 and 5xx answers with backoff and sends once', async () => {
    const from = user();
    graph.failNext(1, '429');
    graph.failNext(1, '500');
    await post(inbound(ACME, from, {}));
    const reply = await replyTo('acme', from);
    expect(reply.attempts).toBe(3);
    expect(graph.requests.filter((r) => (r.body as { to: string }).to === from).map((r) => r.failure ?? 'ok')).toEqual(['429', '500', 'ok']);
    expect(sentTo(from)).toHaveLength(1);
  });

  it('never resends when the answer was lost: the reply is a dead letter with outcome-unknown', async () => {
    const from = user();
    graph.failNext(1, 'drop');
    await post(inbound(ACME, from, {}));
    const dead = await replyTo('acme', from, (s) => s === 'dead');
    expect(dead).toMatchObject({ errorCode: 'outcome-unknown', attempts: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(graph.requests.filter((r) => (r.body as { to: string }).to === from)).toHaveLength(1);
  });

  it('outside the 24-hour window sends the configured template instead of the free-form reply', async () => {
    const from = user();
    await post(inbound(ACME, from, {}, new Date(Date.now() - 25 * 3600_000)));
    const reply = await replyTo('acme', from);
    expect(sentTo(from)).toHaveLength(1);
    expect(sentTo(from)[0]!.body).toMatchObject({
      type: 'template',
      template: { name: 'reply_waiting', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: REPLY }] }] },
    });
    expect(reply.providerMessageId).toBe(sentTo(from)[0]!.wamid);
  });

  it('outside the window with no template, the reply is a dead letter with that reason and Meta is not called', async () => {
    const from = user();
    await post(inbound(BETA, from, {}, new Date(Date.now() - 25 * 3600_000)), BETA.secret);
    const dead = await replyTo('beta', from, (s) => s === 'dead');
    expect(dead).toMatchObject({ errorCode: 'outside-24h-window', attempts: 1 });
    expect(graph.requests.filter((r) => (r.body as { to: string }).to === from)).toHaveLength(0);
  });

  it('when Meta says the window closed (#131047), falls back to the template, or dead-letters without one', async () => {
    const a = user();
    graph.failNext(1, '131047');
    await post(inbound(ACME, a, {}));
    await replyTo('acme', a);
    expect(sentTo(a).map((s) => s.body['type'])).toEqual(['template']);

    const b = user();
    graph.failNext(1, '131047');
    await post(inbound(BETA, b, {}), BETA.secret);
    const dead = await replyTo('beta', b, (s) => s === 'dead');
    expect(dead.errorCode).toBe('131047');
    expect(sentTo(b)).toHaveLength(0);
  });

  it('sends a reminder as free-form text while the window is open, whatever form its address takes', async () => {
    const from = user();
    await post(inbound(ACME, from, {}, new Date(Date.now() - 23 * 3600_000)));
    await replyTo('acme', from);
    for (const to of [`+${from}`, `whatsapp:+${from}`, from]) {
      const item = await gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'whatsapp-cloud', to, text: `Reminder for ${to}` });
      await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    }
    expect(sentTo(from).map((s) => s.body['type'])).toEqual(['text', 'text', 'text', 'text']);
  });

  it('sends a message queued outside any conversation (a reminder) as a template when the window is closed', async () => {
    const to = user();
    const item = await gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'whatsapp-cloud', to: `+${to}`, text: 'Your appointment is tomorrow at 9' });
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    expect(sentTo(to).map((s) => s.body['type'])).toEqual(['template']);
  });
});

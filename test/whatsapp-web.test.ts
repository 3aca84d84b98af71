/**
 * The whatsapp-web channel end to end: a real gateway running the plugin with the fake
 * whatsapp-web.js client injected through its client factory (test/fixtures/whatsapp-web-fake.ts).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import wwebjs from 'whatsapp-web.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { Gateway } from '../core/gateway.js';
import { parseConfig } from '../core/config.js';
import { builtinPlugins } from '../config/builtins.js';
import { fakeWhatsAppWeb } from './fixtures/whatsapp-web-fake.js';
import type { FakeWhatsAppWebClient } from './fakes/whatsapp-web-client.js';
import { SendRelay, SessionLease, realClientFactory } from '../channels/whatsapp-web/index.js';
import type { OutboundMessage } from '../core/message.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/whatsapp-web-fake.ts', import.meta.url));
const CLINIC = { number: '+15550001111', wid: '15550001111@c.us', key: 'clinic-key' };
const CLUB = { number: '+15550002222', wid: '15550002222@c.us', key: 'club-key' };
const LEASE_TTL_MS = 1_500;
const LEASE_RENEW_MS = 300;

const config = {
  outbox: { attempts: 6, backoffMs: 100 },
  operator: { apiKeys: ['operator-key'] },
  plugins: [
    {
      name: 'whatsapp-web',
      options: { leaseTtlMs: LEASE_TTL_MS, leaseRenewMs: LEASE_RENEW_MS, readyTimeoutMs: 400, sendTimeoutMs: 500, notReadyRetryMs: 250, reconnectInitialMs: 30, reconnectMaxMs: 200, relayPollMs: 50, maxMediaBytes: 1_024 },
    },
    'keyword-replies',
  ],
  tenants: [
    { id: 'clinic', apiKeys: [CLINIC.key], pipeline: ['keyword-replies'], plugins: { 'whatsapp-web': { number: CLINIC.number }, 'keyword-replies': { rules: [{ match: 'hours', reply: '8am to 6pm' }], defaultReply: 'Thanks!' } } },
    { id: 'club', apiKeys: [CLUB.key], pipeline: ['keyword-replies'], plugins: { 'whatsapp-web': { number: '+1 555 000 2222', allowGroups: true }, 'keyword-replies': { defaultReply: 'Club here' } } },
    // Its number comes from a variable that is not set: no session.
    { id: 'dormant', apiKeys: ['dormant-key-0123456789'], pipeline: ['keyword-replies'], plugins: { 'whatsapp-web': {}, 'keyword-replies': { defaultReply: 'ok' } } },
  ],
};

let gw: TestGateway;
let seq = 0;

beforeAll(async () => {
  gw = await startTestGateway({ config, catalogue: { 'whatsapp-web': FIXTURE } });
});
afterAll(() => gw?.stop({ cleanup: true }));

async function waitFor<T>(what: string, probe: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const client = (tenant: string): FakeWhatsAppWebClient => fakeWhatsAppWeb.latest(tenant);
const status = async (tenant = 'clinic', key = CLINIC.key) => (await gw.request('GET', `/v1/tenants/${tenant}/whatsapp-web/status`, { key })).body;
const openAlert = (key: string, tenant: string) => gw.gateway.alerts.openAlerts().find((a) => a.key === key && a.tenantId === tenant);
const user = () => `1555${String(2000000 + ++seq)}`;

async function bringUp(tenant: string, wid: string): Promise<FakeWhatsAppWebClient> {
  const c = client(tenant);
  c.authenticate();
  c.becomeReady(wid);
  await waitFor(`${tenant} ready`, async () => (await status(tenant, tenant === 'clinic' ? CLINIC.key : CLUB.key)).state === 'ready');
  return c;
}

async function inboundRows(tenant: string, from: string) {
  const { rows } = await gw.gateway.db.pool.query(`SELECT * FROM parley_inbound WHERE tenant_id = $1 AND channel = 'whatsapp-web' AND from_address = $2`, [tenant, from]);
  return rows;
}

async function replyTo(tenant: string, to: string, wanted: (s: OutboundMessage['status']) => boolean = (s) => s === 'sent'): Promise<OutboundMessage> {
  const items = await gw.waitForOutbox(tenant, (all) => all.some((i) => i.to === to && wanted(i.status)));
  return items.filter((i) => i.to === to && wanted(i.status)).at(-1)!;
}

describe('whatsapp-web without a number', () => {
  it('starts no session for the tenant, says so in /readyz and the log, and answers 404 on its status route', async () => {
    expect(fakeWhatsAppWeb.count('dormant')).toBe(0);
    const ready = await gw.request('GET', '/readyz');
    expect(ready.body.components['whatsapp-web:dormant']).toMatchObject({ ok: true, detail: 'off: no number configured' });
    expect(gw.logs.some((l) => l['tenant'] === 'dormant' && String(l['msg']).startsWith('whatsapp-web is off for this tenant'))).toBe(true);
    expect((await gw.request('GET', '/v1/tenants/dormant/whatsapp-web/status', { key: 'dormant-key-0123456789' })).status).toBe(404);
  });
});

describe('whatsapp-web sessions and login', () => {
  it('creates one client per tenant number, with its LocalAuth session kept under the data directory', () => {
    const clinic = fakeWhatsAppWeb.created.find((c) => c.tenantId === 'clinic')!;
    expect(clinic).toMatchObject({ clientId: 'clinic-15550001111', dataPath: join(gw.dataDir, 'whatsapp-web'), executablePath: process.env['PUPPETEER_EXECUTABLE_PATH'] ?? '/usr/bin/chromium', number: CLINIC.number, auth: { kind: 'local' } });
    expect(fakeWhatsAppWeb.created.find((c) => c.tenantId === 'club')).toMatchObject({ clientId: 'club-15550002222', number: CLUB.number });
    expect(clinic.client.initializeCount).toBe(1);
  });

  it('the real factory builds a whatsapp-web.js Client with LocalAuth at that path and does not start a browser', () => {
    const real = realClientFactory({ clientId: 'clinic-15550001111', dataPath: '/nonexistent/whatsapp-web', executablePath: '/usr/bin/chromium', tenantId: 'clinic', number: CLINIC.number }) as unknown as { authStrategy: { clientId: string; dataPath: string }; pupBrowser: unknown };
    expect(real).toBeInstanceOf(wwebjs.Client);
    expect(real.authStrategy).toBeInstanceOf(wwebjs.LocalAuth);
    expect(real.authStrategy).toMatchObject({ clientId: 'clinic-15550001111', dataPath: '/nonexistent/whatsapp-web' });
    expect(real.pupBrowser).toBeFalsy();
  });

  it('shows the QR code on the terminal and at the admin route (PNG and text), with the state in status, /readyz and metrics', async () => {
    client('clinic').emitQr('2@parley-test-qr');
    await waitFor('qr state', async () => (await status()).state === 'qr');
    const s = await status();
    expect(s).toMatchObject({ tenant: 'clinic', number: CLINIC.number, state: 'qr', needsQr: true, owner: { instance: 'instance-a', thisInstance: true }, qr: { available: true, png: '/v1/tenants/clinic/whatsapp-web/qr.png' } });
    await waitFor('the QR drawn on the terminal', () => fakeWhatsAppWeb.terminal.some((t) => t.includes('tenant "clinic"') && t.includes('▄')));

    const png = await fetch(`${gw.url}/v1/tenants/clinic/whatsapp-web/qr.png`, { headers: { authorization: `Bearer ${CLINIC.key}` } });
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await png.arrayBuffer()).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const txt = await gw.request('GET', '/v1/tenants/clinic/whatsapp-web/qr.txt', { key: CLINIC.key });
    expect(txt.status).toBe(200);
    expect(txt.text).toMatch(/[█▀▄]/);

    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.components['whatsapp-web:clinic']).toMatchObject({ ok: false, info: { state: 'qr', needsQr: true, number: CLINIC.number } });
    expect(await gw.metrics()).toMatch(/parley_whatsapp_web_session_state\{tenant="clinic",state="qr"\} 1/);
    expect(openAlert('whatsapp-web.needs-qr', 'clinic')).toMatchObject({ severity: 'warning' });
  });

  it('keeps the QR and status routes to the tenant: another tenant key gets 403, no key 401', async () => {
    expect((await gw.request('GET', '/v1/tenants/clinic/whatsapp-web/qr.png', { key: CLUB.key })).status).toBe(403);
    expect((await gw.request('GET', '/v1/tenants/clinic/whatsapp-web/status')).status).toBe(401);
    expect((await gw.request('GET', '/v1/tenants/clinic/whatsapp-web/status', { key: 'operator-key' })).status).toBe(200);
  });

  it('becomes ready after the scan: QR withdrawn, /readyz ok, metrics and memory reported, alert resolved', async () => {
    await bringUp('clinic', CLINIC.wid);
    const s = await status();
    expect(s).toMatchObject({ state: 'ready', needsQr: false, loggedInAs: CLINIC.number, qr: { available: false } });
    expect(s.memoryBytes).toBeGreaterThan(1_000_000);
    expect((await gw.request('GET', '/v1/tenants/clinic/whatsapp-web/qr.png', { key: CLINIC.key })).status).toBe(404);
    const ready = await gw.request('GET', '/readyz');
    expect(ready.body.components['whatsapp-web:clinic']).toMatchObject({ ok: true, info: { state: 'ready', thisInstance: true } });
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/parley_whatsapp_web_session_state\{tenant="clinic",state="ready"\} 1/);
    expect(metrics).toMatch(/parley_whatsapp_web_session_state\{tenant="clinic",state="qr"\} 0/);
    expect(metrics).toMatch(/parley_whatsapp_web_session_memory_bytes\{tenant="clinic"\} [1-9]\d{6,}/);
    expect(openAlert('whatsapp-web.needs-qr', 'clinic')).toBeUndefined();
  });
});

describe('whatsapp-web inbound messages', () => {
  it('turns a text into an InboundMessage and sends the reply through the outbox with the client', async () => {
    const from = user();
    const msg = client('clinic').receive({ from, body: 'what are your hours?' });
    const reply = await replyTo('clinic', `+${from}`);
    const [row] = await inboundRows('clinic', `+${from}`);
    expect(row).toMatchObject({ body: 'what are your hours?', to_address: CLINIC.number, provider_message_id: msg.id._serialized });
    expect(reply.text).toBe('8am to 6pm');
    const call = client('clinic').sent.find((c) => c.chatId === `${from}@c.us`)!;
    expect(call.content).toBe('8am to 6pm');
    expect(reply.providerMessageId).toBe(call.message!.id._serialized);
  });

  it('runs the pipeline once for a message WhatsApp delivers twice', async () => {
    const from = user();
    client('clinic').receive({ from, body: 'hello', id: 'DUPLICATE1' });
    client('clinic').receive({ from, body: 'hello', id: 'DUPLICATE1' });
    await replyTo('clinic', `+${from}`);
    await new Promise((r) => setTimeout(r, 200));
    expect(await inboundRows('clinic', `+${from}`)).toHaveLength(1);
    expect(client('clinic').sent.filter((c) => c.chatId === `${from}@c.us`)).toHaveLength(1);
  });

  it('stores media as a typed attachment the tenant can download, and only the tenant', async () => {
    const from = user();
    const bytes = Buffer.from('not really a jpeg, but bytes');
    client('clinic').receive({ from, body: 'is this normal?', type: 'image', media: { mimetype: 'image/jpeg', data: bytes.toString('base64'), filename: 'rash.jpg' } });
    await replyTo('clinic', `+${from}`);
    const [row] = await inboundRows('clinic', `+${from}`);
    expect(row.media).toEqual([{ url: expect.stringMatching(/^\/v1\/tenants\/clinic\/whatsapp-web\/media\/[0-9a-f-]{36}$/), contentType: 'image/jpeg', filename: 'rash.jpg', caption: 'is this normal?' }]);
    expect(row.attributes).toMatchObject({ type: 'image', mediaType: 'image' });
    const res = await fetch(`${gw.url}${row.media[0].url}`, { headers: { authorization: `Bearer ${CLINIC.key}` } });
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
    expect((await gw.request('GET', row.media[0].url, { key: CLUB.key })).status).toBe(403);
  });

  it('flags media over the size limit instead of storing it', async () => {
    const from = user();
    client('clinic').receive({ from, body: '', type: 'document', media: { mimetype: 'application/pdf', data: Buffer.alloc(4_096).toString('base64'), filename: 'big.pdf' } });
    await replyTo('clinic', `+${from}`);
    const [row] = await inboundRows('clinic', `+${from}`);
    expect(row.media).toEqual([]);
    expect(row.attributes).toMatchObject({ type: 'document', mediaUnavailable: 'too-large' });
  });

  it('ignores group messages unless the tenant enables groups; then replies go to the group', async () => {
    client('clinic').receive({ from: '120363000000000001', isGroup: true, body: 'hi all', author: '15550007777@c.us' });
    await waitFor('the ignored count', async () => /parley_whatsapp_web_ignored_total\{tenant="clinic",reason="group"\} 1/.test(await gw.metrics()));
    expect(await inboundRows('clinic', '120363000000000001@g.us')).toHaveLength(0);

    await bringUp('club', CLUB.wid);
    client('club').receive({ from: '120363000000000002', isGroup: true, body: 'meeting tonight?', author: '15550007777@c.us' });
    await replyTo('club', '120363000000000002@g.us');
    const [row] = await inboundRows('club', '120363000000000002@g.us');
    expect(row.attributes).toMatchObject({ group: '120363000000000002@g.us', author: '+15550007777' });
    expect(client('club').sent.find((c) => c.chatId === '120363000000000002@g.us')?.content).toBe('Club here');
  });

  it('records delivery acks on the reply, and a late ack never undoes read', async () => {
    const from = user();
    client('clinic').receive({ from, body: 'ping' });
    const reply = await replyTo('clinic', `+${from}`);
    const sent = client('clinic').sent.find((c) => c.chatId === `${from}@c.us`)!.message!;
    client('clinic').ackMessage(sent, 2);
    await replyTo('clinic', `+${from}`, (s) => s === 'delivered');
    client('clinic').ackMessage(sent, 3);
    await replyTo('clinic', `+${from}`, (s) => s === 'read');
    client('clinic').ackMessage(sent, 2);
    await new Promise((r) => setTimeout(r, 100));
    expect((await gw.outbox('clinic')).find((i) => i.id === reply.id)!.status).toBe('read');
  });
});

describe('whatsapp-web sending when things go wrong', () => {
  it('fails a sendMessage that never returns with an unknown outcome, never resends it, and restarts the frozen client', async () => {
    const frozen = client('clinic');
    const before = fakeWhatsAppWeb.count('clinic');
    frozen.hangSends(true);
    const to = `+${user()}`;
    await gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'whatsapp-web', to, text: 'your results are ready' });
    const dead = await replyTo('clinic', to, (s) => s === 'dead');
    expect(dead).toMatchObject({ errorCode: 'outcome-unknown', attempts: 1 });
    expect(frozen.sendCalls.filter((c) => c.chatId === `${to.slice(1)}@c.us`).map((c) => c.outcome)).toEqual(['hanging']);
    await waitFor('a new client', () => fakeWhatsAppWeb.count('clinic') > before);
    expect(frozen.destroyCount).toBe(1);
    expect(await gw.metrics()).toMatch(/parley_whatsapp_web_reconnects_total\{tenant="clinic",reason="send-timeout"\} 1/);
    await bringUp('clinic', CLINIC.wid);
  });

  it('on a disconnect, alerts, reconnects with a new client and retries queued replies until the session is ready', async () => {
    const before = fakeWhatsAppWeb.count('clinic');
    client('clinic').disconnect('NAVIGATION');
    await waitFor('disconnected', async () => (await status()).state !== 'ready');
    expect(openAlert('whatsapp-web.disconnected', 'clinic')).toMatchObject({ severity: 'warning' });
    await waitFor('a new client', () => fakeWhatsAppWeb.count('clinic') > before);
    const to = `+${user()}`;
    await gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'whatsapp-web', to, text: 'queued while offline' });
    const retrying = await replyTo('clinic', to, (s) => s === 'retrying');
    expect(retrying.errorCode).toBe('session-not-ready');
    await bringUp('clinic', CLINIC.wid);
    const sent = await replyTo('clinic', to);
    expect(sent.attempts).toBeGreaterThan(1);
    expect(openAlert('whatsapp-web.disconnected', 'clinic')).toBeUndefined();
  });

  it('on LOGOUT, marks the session as needing a QR code, alerts operators, and clears both when scanned again', async () => {
    const before = fakeWhatsAppWeb.count('clinic');
    client('clinic').disconnect('LOGOUT');
    await waitFor('logged-out', async () => (await status()).state === 'logged-out');
    expect(await status()).toMatchObject({ needsQr: true, detail: 'LOGOUT' });
    expect(openAlert('whatsapp-web.logged-out', 'clinic')).toMatchObject({ severity: 'critical', source: 'whatsapp-web', details: { number: CLINIC.number, reason: 'LOGOUT' } });
    await waitFor('a new client for a new QR code', () => fakeWhatsAppWeb.count('clinic') > before);
    expect((await status()).state).toBe('logged-out');
    client('clinic').emitQr('2@after-logout');
    await waitFor('the new QR', async () => (await status()).qr.available);
    expect(openAlert('whatsapp-web.logged-out', 'clinic')).toBeDefined();
    await bringUp('clinic', CLINIC.wid);
    expect(openAlert('whatsapp-web.logged-out', 'clinic')).toBeUndefined();
  });

  it('treats a failed session restore (auth_failure) as logged out', async () => {
    const before = fakeWhatsAppWeb.count('clinic');
    client('clinic').failAuth();
    await waitFor('logged-out', async () => (await status()).state === 'logged-out');
    expect(openAlert('whatsapp-web.logged-out', 'clinic')?.details).toMatchObject({ reason: expect.stringContaining('auth_failure') });
    await waitFor('a new client', () => fakeWhatsAppWeb.count('clinic') > before);
    client('clinic').emitQr();
    await bringUp('clinic', CLINIC.wid);
  });

  it('restarts a client that authenticated but never became ready', async () => {
    const before = fakeWhatsAppWeb.count('clinic');
    client('clinic').disconnect('CONFLICT');
    await waitFor('a new client', () => fakeWhatsAppWeb.count('clinic') > before);
    const stuck = client('clinic');
    stuck.authenticate();
    await waitFor('the stuck client replaced', () => fakeWhatsAppWeb.count('clinic') > before + 1, 5_000);
    expect(stuck.destroyCount).toBe(1);
    expect(await gw.metrics()).toMatch(/parley_whatsapp_web_reconnects_total\{tenant="clinic",reason="ready-timeout"\} 1/);
    await bringUp('clinic', CLINIC.wid);
  });
});

describe('whatsapp-web ownership across instances', () => {
  const log = pino({ level: 'silent' });

  it('gives a number to one lease holder at a time, and to another within TTL + one renew interval after the owner dies', async () => {
    const pool = gw.gateway.db.pool;
    const ttl = 600;
    const a = new SessionLease(pool, 'lease-test', '+19990000001', 'instance-x', ttl);
    const b = new SessionLease(pool, 'lease-test', '+19990000001', 'instance-y', ttl);
    expect(await a.acquire()).toBe(true);
    expect(await b.acquire()).toBe(false);
    expect(await a.acquire()).toBe(true);
    expect(a.heldLocally()).toBe(true);
    // A dies: it stops renewing. B keeps trying.
    const died = Date.now();
    await waitFor('B to take over', () => b.acquire(), 5_000);
    const tookMs = Date.now() - died;
    expect(tookMs).toBeGreaterThanOrEqual(ttl - 150);
    expect(tookMs).toBeLessThan(ttl + 500);
    expect(a.heldLocally()).toBe(false);
    expect(await a.acquire()).toBe(false);
    // A clean release hands over at once.
    await b.release();
    expect(await a.acquire()).toBe(true);
  });

  it('stands by when another instance owns the number, relays sends to it, and takes over when it dies', async () => {
    const pool = gw.gateway.db.pool;
    const before = fakeWhatsAppWeb.count('club');
    const local = client('club');
    await pool.query(`UPDATE whatsapp_web_sessions SET owner_instance = 'instance-b', lease_until = now() + interval '1 hour', state = 'ready' WHERE tenant_id = 'club'`);
    await waitFor('standby', async () => (await status('club', CLUB.key)).owner.thisInstance === false);
    expect(local.destroyCount).toBe(1);
    expect(await status('club', CLUB.key)).toMatchObject({ state: 'ready', owner: { instance: 'instance-b', thisInstance: false } });
    expect(await gw.metrics()).toMatch(/parley_whatsapp_web_session_owner\{tenant="club"\} 0/);

    // The owner publishes its QR code, so any instance's admin route can show it.
    await pool.query(`UPDATE whatsapp_web_sessions SET state = 'qr', qr = '2@published-by-instance-b' WHERE tenant_id = 'club'`);
    expect(await status('club', CLUB.key)).toMatchObject({ state: 'qr', needsQr: true, qr: { available: true } });
    const png = await fetch(`${gw.url}/v1/tenants/club/whatsapp-web/qr.png`, { headers: { authorization: `Bearer ${CLUB.key}` } });
    expect(png.status).toBe(200);
    await pool.query(`UPDATE whatsapp_web_sessions SET state = 'ready', qr = NULL WHERE tenant_id = 'club'`);

    // A reply queued here is sent by instance-b, which owns the session.
    const to = `+${user()}`;
    const item = await gw.gateway.enqueueOutbound({ tenantId: 'club', channel: 'whatsapp-web', to, text: 'relayed' });
    const other = new SendRelay(pool, 'instance-b', log, 20);
    const relayed: string[] = [];
    await waitFor('instance-b to serve the relay', async () => (await other.serve(['club'], async (_tenant, send) => (relayed.push(`${send.to}:${send.text}`), { providerMessageId: 'true_relayed_1', status: 'sent' }))) > 0);
    await gw.waitForOutbox('club', (all) => all.some((i) => i.id === item.id && i.status === 'sent' && i.providerMessageId === 'true_relayed_1'));
    expect(relayed).toEqual([`${to}:relayed`]);

    // instance-b dies: its lease runs out and this instance takes the number within TTL + renew.
    await pool.query(`UPDATE whatsapp_web_sessions SET lease_until = now() + $1 * interval '1 millisecond' WHERE tenant_id = 'club'`, [LEASE_TTL_MS]);
    const died = Date.now();
    await waitFor('take-over', () => fakeWhatsAppWeb.count('club') > before, 5_000);
    expect(Date.now() - died).toBeLessThan(LEASE_TTL_MS + LEASE_RENEW_MS + 500);
    await bringUp('club', CLUB.wid);
    expect(await status('club', CLUB.key)).toMatchObject({ owner: { instance: 'instance-a', thisInstance: true } });
  });
});

describe('whatsapp-web personal data', () => {
  it('exports and erases the media a person sent', async () => {
    const from = user();
    client('clinic').receive({ from, body: 'scan', type: 'image', media: { mimetype: 'image/png', data: Buffer.from('png-bytes').toString('base64') } });
    await replyTo('clinic', `+${from}`);
    const provider = gw.gateway.dataSubjectProviders.find((p) => p.provider.name === 'whatsapp-web-media')!.provider;
    const exported = await provider.export({ tenantId: 'clinic', addresses: [`whatsapp:+${from}`] });
    expect(exported).toEqual([expect.objectContaining({ contentType: 'image/png', size: 9, url: expect.stringContaining('/whatsapp-web/media/') })]);
    expect(await provider.erase({ tenantId: 'clinic', addresses: [`+${from}`] })).toEqual({ erased: 1 });
    expect((await gw.request('GET', exported[0]!['url'] as string, { key: CLINIC.key })).status).toBe(404);
  });
});

describe('whatsapp-web configuration', () => {
  it('fails at start, naming the option, when the real client has no Chromium to run', async () => {
    const yaml = `
plugins:
  - name: whatsapp-web
    options: { executablePath: /nonexistent/chromium }
tenants:
  - id: clinic
    plugins:
      whatsapp-web: { number: "+15550001111" }
`;
    const loaded = { config: parseConfig(yaml, 'test'), baseDir: process.cwd(), source: 'test' };
    await expect(Gateway.validate({ loaded, catalogue: builtinPlugins, logger: pino({ level: 'silent' }) })).rejects.toThrow(
      /plugins\[0\] \(whatsapp-web\)\.options\.executablePath: Chromium not found at \/nonexistent\/chromium/,
    );
  });

  it('refuses a number that is not a phone number, naming the tenant and key', async () => {
    const yaml = `
tenants:
  - id: clinic
    plugins:
      whatsapp-web: { number: "reception" }
`;
    const loaded = { config: parseConfig(yaml, 'test'), baseDir: process.cwd(), source: 'test' };
    await expect(Gateway.validate({ loaded, catalogue: { ...builtinPlugins, 'whatsapp-web': FIXTURE }, logger: pino({ level: 'silent' }) })).rejects.toThrow(/tenants\[0\] \(clinic\)\.plugins\.whatsapp-web\.number: an E\.164 phone number/);
  });
});

describe('whatsapp-web restart', () => {
  it('after a restart, the same number gets the same LocalAuth session folder (no new QR code needed)', async () => {
    const first = fakeWhatsAppWeb.created.find((c) => c.tenantId === 'clinic')!;
    const dataDir = gw.dataDir;
    const databaseUrl = gw.databaseUrl;
    await gw.stop();
    const count = fakeWhatsAppWeb.count('clinic');
    gw = await startTestGateway({ config, catalogue: { 'whatsapp-web': FIXTURE }, dataDir, ...(databaseUrl ? { databaseUrl } : {}) });
    await waitFor('a client after restart', () => fakeWhatsAppWeb.count('clinic') > count);
    const again = fakeWhatsAppWeb.created.filter((c) => c.tenantId === 'clinic').at(-1)!;
    expect({ clientId: again.clientId, dataPath: again.dataPath }).toEqual({ clientId: first.clientId, dataPath: first.dataPath });
    expect(await status()).toMatchObject({ owner: { instance: 'instance-a', thisInstance: true } });
  });
});

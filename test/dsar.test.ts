/**
 * `dsar`: a person who used SMS, a phone call, WhatsApp and a model-answered chat is exported
 * completely and nobody else with them; erased with two keys and verified to 0 matches (with their
 * number planted in a job payload and a log line first, to prove the scan finds those); the end-user
 * flow with a one-time code (English and Spanish); one-time, expiring download links; an overdue
 * request alerting at the fake Slack; tampering with the audit trail detected; retention; tenant
 * isolation. Runs on both backends (test/run-external.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { startFakeGraph, type FakeGraph } from './fakes/whatsapp-graph-api.js';
import { startFakeSlack, type FakeSlack } from './fakes/slack-api.js';
import { startFakeModelApi, type FakeModelApi } from './fakes/model-api.js';
import { inboundSmsParams, newSid, post, signedWebhook, voiceParams } from './fakes/twilio-webhook.js';
import { signMetaBody } from '../channels/whatsapp-cloud/signature.js';
import { WEBHOOK_PATH } from '../channels/whatsapp-cloud/index.js';
import { recordedHead, verifyAuditChain } from '../core/audit.js';
import { backupFileName } from '../core/backup.js';
import { auditVerifyCommand } from '../bin/ops.js';
import { TEST_BACKEND } from './backend.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signLink } from '../plugins/dsar/run.js';
import { scanSubject } from '../plugins/dsar/scan.js';
import { subjectNeedles } from '../core/data-subjects.js';
import { suppressionHash } from '../core/consent.js';
import { hashAddress } from '../core/logger.js';

const CLINIC = '+15557654321';
const PERSON = '+15550107777';
const OTHER = '+15550108888';
const KEY = 'key-clinic-dsar-0123456789';
const KEY2 = 'key-clinic-dsar-second-0123';
const ELSEWHERE = 'key-elsewhere-0123456789';
const OP = 'key-operator-dsar-0123456789';
const WA = { phoneNumberId: '106540352242922', display: '15550783881', secret: 'wa-app-secret', verify: 'wa-verify-token' };
const GRAPH_TOKEN = 'graph-test-token';

let gw: TestGateway;
let twilio: FakeTwilio;
let graph: FakeGraph;
let slack: FakeSlack;
let model: FakeModelApi;
let service: { checkDeadlines(now?: Date): Promise<number>; retention(t: string, dry: boolean): Promise<Record<string, number>>; recordAuditHead(): Promise<{ seq: string; hash: string } | null> };

beforeAll(async () => {
  twilio = await startFakeTwilio();
  graph = await startFakeGraph({ accessToken: GRAPH_TOKEN });
  slack = await startFakeSlack({ token: 'xoxb-dsar' });
  model = await startFakeModelApi();
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OP] },
      log: { file: 'parley.log' },
      outbox: { attempts: 2, backoffMs: 20, concurrency: 4 },
      ai: { providers: { fake: { type: 'openai', baseUrl: `${model.url}/v1`, chatModel: 'gpt-4o-mini', maxRetries: 0 } } },
      plugins: [
        'http',
        { name: 'twilio-sms', options: { apiBaseUrl: twilio.baseUrl } },
        { name: 'twilio-voice', options: { apiBaseUrl: twilio.baseUrl } },
        { name: 'whatsapp-cloud', options: { graphBaseUrl: graph.baseUrl } },
        { name: 'slack-alerts', options: { token: 'xoxb-dsar', signingSecret: 'dsar-secret-0123456789abcdef', apiUrl: slack.apiUrl, defaultChannel: 'C0DSAR', quietPeriodMs: 0, rules: [] } },
        { name: 'ask' },
        'dsar',
      ],
      tenants: [
        {
          id: 'clinic',
          apiKeys: [KEY, KEY2],
          ai: { chat: 'fake' },
          pipeline: ['dsar', 'ask'],
          plugins: {
            http: {},
            ask: {},
            'twilio-sms': { accountSid: twilio.accountSid, authToken: twilio.authToken, numbers: [CLINIC] },
            'twilio-voice': { accountSid: twilio.accountSid, authToken: twilio.authToken, numbers: [CLINIC] },
            'whatsapp-cloud': { phoneNumberId: WA.phoneNumberId, displayNumber: `+${WA.display}`, accessToken: GRAPH_TOKEN, appSecret: WA.secret, verifyToken: WA.verify },
            dsar: { retention: { messages: 30, inactiveContacts: 400, batchSize: 10 } },
          },
        },
        { id: 'elsewhere', apiKeys: [ELSEWHERE], pipeline: ['dsar'], plugins: { http: {}, dsar: { regime: 'ccpa' } } },
      ],
    },
    catalogue: { ask: fileURLToPath(new URL('./fixtures/cost-guard-ask.ts', import.meta.url)) },
  });
  service = gw.gateway.container.resolve(Symbol.for('dsar.service')) as typeof service;
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await Promise.all([twilio?.close(), graph?.close(), slack?.close(), model?.close()]);
});

const base = '/v1/tenants/clinic/data-subjects/requests';

async function waitFor(id: string, statuses: string[], key = KEY, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await gw.request('GET', `${base}/${id}`, { key });
    if (statuses.includes(r.body?.request?.status)) return r.body.request;
    if (Date.now() > deadline) throw new Error(`request ${id} stayed ${r.body?.request?.status}: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function useEveryChannel(person: string, tag: string): Promise<void> {
  const sms = await post(signedWebhook({ url: `${gw.url}/twilio/sms`, authToken: twilio.authToken, params: inboundSmsParams({ from: person, to: CLINIC, body: `sms ${tag}` }) }));
  expect(sms.status).toBe(200);
  const callSid = newSid('CA');
  const hook = (path: string, params: Record<string, string>) => post(signedWebhook({ url: `${gw.url}${path}`, authToken: twilio.authToken, params }));
  expect((await hook('/twilio/voice', voiceParams({ callSid, from: person, to: CLINIC, accountSid: twilio.accountSid, callStatus: 'ringing' }))).status).toBe(200);
  expect((await hook('/twilio/voice/gather?turn=1', voiceParams({ callSid, from: person, to: CLINIC, accountSid: twilio.accountSid, speech: `voice ${tag}` }))).status).toBe(200);
  const wa = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: WA.display, phone_number_id: WA.phoneNumberId }, contacts: [{ profile: { name: 'P' }, wa_id: person.slice(1) }], messages: [{ from: person.slice(1), id: `wamid.${tag}${Date.now()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: `whatsapp ${tag}` } }] } }] }],
  });
  const res = await fetch(`${gw.url}${WEBHOOK_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(wa, WA.secret) }, body: wa });
  expect(res.status).toBe(200);
  const chat = await gw.send('clinic', { from: person, text: `model ${tag}` }, KEY);
  expect(chat.status).toBeLessThan(300);
}

async function waitForInbound(n: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { rows } = await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_inbound WHERE tenant_id = 'clinic' AND status NOT IN ('received', 'processing')`);
    if (rows[0].n >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${rows[0].n} inbound messages processed`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('export', () => {
  let exportId: string;
  it("contains every record of a person who used SMS, voice, WhatsApp and a model-answered chat, and nothing of anyone else's", async () => {
    await useEveryChannel(PERSON, 'from-person');
    await useEveryChannel(OTHER, 'someone-else');
    await waitForInbound(8);
    const created = await gw.request('POST', base, { key: KEY, body: { type: 'export', subject: { addresses: [PERSON] }, reason: 'Art. 15 request by email', requestedBy: 'Dana (front desk)' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.any(String), status: 'queued', dueAt: expect.any(String) });
    const due = new Date(created.body.dueAt).getTime() - Date.now();
    expect(due).toBeGreaterThan(27 * 86_400_000);
    expect(due).toBeLessThan(32 * 86_400_000);
    exportId = created.body.id;
    const done = await waitFor(exportId, ['completed', 'failed']);
    expect(done).toMatchObject({ status: 'completed', progress: 100 });
    expect(done.download).toMatchObject({ expiresAt: expect.any(String), downloadedAt: null });

    const link = await gw.request('POST', `${base}/${exportId}/link`, { key: KEY });
    expect(link.status).toBe(201);
    const res = await fetch(link.body.url);
    expect(res.status).toBe(200);
    const text = await res.text();
    const doc = JSON.parse(text);
    for (const t of ['sms from-person', 'voice from-person', 'whatsapp from-person', 'model from-person', 'echo: model from-person']) expect(text).toContain(t);
    expect(text).not.toContain('someone-else');
    expect(text).not.toContain(OTHER.slice(2));
    const core = doc.providers.find((p: any) => p.provider === 'core');
    expect(core.about).toMatchObject({ purpose: expect.any(String), recipients: expect.any(Array), retention: expect.any(String), source: expect.any(String) });
    const channels = new Set(core.records.filter((r: any) => r.kind === 'message-received').map((r: any) => r.channel));
    expect([...channels].sort()).toEqual(['http', 'twilio-sms', 'twilio-voice', 'whatsapp-cloud']);
    expect(Object.keys(doc.csv)).toContain('core.message-received.csv');
    expect(doc.csv['core.message-received.csv']).toContain('sms from-person');
    expect(doc.notes.join(' ')).toMatch(/opt-out is kept/i);
    // Once only.
    const again = await fetch(link.body.url);
    expect(again.status).toBe(410);
    expect(((await again.json()) as any).error.code).toBe('PARLEY_DSAR_LINK_USED');
  });

  it('refuses an expired link, and a forged one', async () => {
    const link = await gw.request('POST', `${base}/${exportId}/link`, { key: KEY });
    const token = link.body.url.split('/').pop() as string;
    const [, nonce] = token.split('.');
    const { rows } = await gw.gateway.db.pool.query(`SELECT value FROM dsar_secrets WHERE name = 'download-links'`);
    const expired = signLink(rows[0].value, exportId, nonce!, new Date(Date.now() - 1000));
    const r = await fetch(`${gw.url}/v1/dsar/downloads/${expired}`);
    expect(r.status).toBe(410);
    expect(((await r.json()) as any).error.code).toBe('PARLEY_DSAR_LINK_EXPIRED');
    expect((await fetch(`${gw.url}/v1/dsar/downloads/${token.slice(0, -2)}xx`)).status).toBe(404);
    // The expiry is also enforced in the database, whatever the token says.
    await gw.gateway.db.pool.query(`UPDATE dsar_requests SET download_expires_at = now() - interval '1 minute' WHERE id = $1`, [exportId]);
    expect((await fetch(link.body.url)).status).toBe(410);
  });
});

describe('erasure', () => {
  it('needs a second key, erases every provider, and the scan finds 0 matches (after proving it finds a planted job payload and log lines, in the log and in its rotated copies)', async () => {
    await gw.gateway.consent.set({ tenantId: 'clinic', address: PERSON, status: 'opted-out', source: 'sms-stop' });
    // Plant the number where nothing should put it: a job payload and a log line.
    await gw.gateway.jobs.add('dsar-run', { requestId: '00000000-0000-4000-8000-000000000000', leaked: PERSON }, { delayMs: 3_600_000, jobId: 'planted-job' });
    gw.gateway.log.info({ leaked: `caller ${PERSON}` }, 'a careless plugin logged a number');
    // And copies logrotate left beside the log: one plain, one gzipped.
    const logPath = gw.gateway.logFile!.path;
    writeFileSync(`${logPath}.1`, `{"msg":"rotated","to":"${PERSON}"}\n{"msg":"kept","to":"${OTHER}"}\n`);
    writeFileSync(`${logPath}.2.gz`, gzipSync(`{"msg":"older","to":"whatsapp:${PERSON}"}\n{"msg":"kept too"}\n`));
    const scanBefore = await scanSubject({ db: gw.gateway.db.pool, jobs: gw.gateway.jobs, logFile: gw.gateway.logFile, needles: subjectNeedles, suppressionHash }, { tenantId: 'clinic', addresses: [PERSON] });
    const places = scanBefore.found.map((f) => f.where);
    expect(places).toEqual(expect.arrayContaining(['log file parley.log', 'log file parley.log.1', 'log file parley.log.2.gz']));
    expect(places.some((p) => p.startsWith('job dsar-run/planted-job'))).toBe(true);
    expect(places).toContain('table public.parley_inbound');

    const created = await gw.request('POST', base, { key: KEY, body: { type: 'erase', subject: { addresses: [PERSON] }, reason: 'Art. 17', requestedBy: 'Dana' } });
    expect(created.body.status).toBe('pending-approval');
    const same = await gw.request('POST', `${base}/${created.body.id}/approve`, { key: KEY, body: {} });
    expect(same.status).toBe(403);
    expect(same.body.error.code).toBe('PARLEY_DSAR_SAME_APPROVER');
    const approved = await gw.request('POST', `${base}/${created.body.id}/approve`, { key: KEY2, body: { note: 'checked ID' } });
    expect(approved.status).toBe(200);
    const done = await waitFor(created.body.id, ['completed', 'failed']);
    expect(done.error).toBeNull();
    expect(done.status).toBe('completed');
    expect(done.result.verification.remaining).toBe(0);
    expect(done.result.verification.found).toEqual([]);
    expect(done.result.erased.core).toBeGreaterThanOrEqual(8);
    expect(done.result.erased['core.logs']).toBeGreaterThanOrEqual(3);
    expect(readFileSync(`${logPath}.1`, 'utf8')).toBe(`{"msg":"kept","to":"${OTHER}"}\n`);
    expect(gunzipSync(readFileSync(`${logPath}.2.gz`)).toString()).toBe('{"msg":"kept too"}\n');
    expect(done.result.erased['core.job-payloads']).toBe(1);
    expect(done.result.verification.retained.map((r: any) => r.where)).toContain('table public.parley_consent');
    // The opt-out is kept, hashed: sends are still refused.
    expect(await gw.gateway.consent.isOptedOut('clinic', PERSON)).toBe(true);
    const { rows } = await gw.gateway.db.pool.query(`SELECT address FROM parley_consent WHERE tenant_id = 'clinic'`);
    expect(rows.map((r) => r.address)).toEqual([suppressionHash(PERSON)]);
    // The other person is untouched.
    const other = await gw.gateway.exportSubject({ tenantId: 'clinic', addresses: [OTHER] });
    expect(JSON.stringify(other)).toContain('sms someone-else');
    // The audit trail holds hashes, never the number.
    const audit = await gw.request('GET', `${base}/${created.body.id}/audit`, { key: KEY });
    expect(audit.body.audit.map((a: any) => a.action)).toEqual(['dsar.requested', 'dsar.approved', 'dsar.started', 'dsar.erased']);
    expect(JSON.stringify(audit.body)).not.toContain('5550107777');
    const all = await gw.gateway.db.pool.query(`SELECT * FROM parley_audit`);
    expect(JSON.stringify(all.rows)).not.toContain('5550107777');
    const listed = await gw.request('GET', `${base}?subject=${encodeURIComponent(PERSON)}`, { key: KEY });
    expect(listed.body.requests.map((r: any) => r.type).sort()).toEqual(['erase', 'export']);
  });

  it('the scan reads every page of a table in batches: json, arrays and text past the first batch, only the tenant where the table has one', async () => {
    const db = gw.gateway.db.pool;
    const probe = '+15550109999';
    await db.query('CREATE TABLE scan_probe (id int, tenant_id text, note text, tags varchar[], doc jsonb)');
    await db.query('CREATE TABLE scan_probe_shared (id int, payload json)');
    try {
      await db.query(`INSERT INTO scan_probe SELECT i, 'clinic', 'an unrelated note of some length ' || i, ARRAY['x'], '{}' FROM generate_series(1, 3000) i`);
      await db.query(`INSERT INTO scan_probe VALUES (3001, 'clinic', NULL, ARRAY['whatsapp:${probe}'], NULL), (3002, 'clinic', NULL, NULL, '{"to": "${probe.slice(1)}@c.us"}'), (3003, 'other-tenant', '${probe}', NULL, NULL)`);
      await db.query(`INSERT INTO scan_probe_shared SELECT i, '{}' FROM generate_series(1, 3000) i`);
      await db.query(`INSERT INTO scan_probe_shared VALUES (3001, '{"log": "caller ${hashAddress(probe.slice(1))}"}')`);
      const pages = Number((await db.query(`SELECT pg_relation_size('scan_probe') / current_setting('block_size')::int AS n`)).rows[0].n);
      expect(pages).toBeGreaterThan(3);
      const scan = await scanSubject({ db, jobs: gw.gateway.jobs, logFile: gw.gateway.logFile, needles: subjectNeedles, suppressionHash, batchPages: 2 }, { tenantId: 'clinic', addresses: [probe] });
      expect(scan.found).toEqual([
        { where: 'table public.scan_probe', matches: 2 },
        { where: 'table public.scan_probe_shared', matches: 1 },
      ]);
      expect(scan.scanned.rows).toBeGreaterThanOrEqual(6004);
    } finally {
      await db.query('DROP TABLE scan_probe, scan_probe_shared');
    }
  });
});

describe('people asking on their channel', () => {
  const codeOf = (text: string) => /(\d{6})$/.exec(text)?.[1];

  it('creates an unverified request, sends a one-time code to the same address, and goes on only with the right code', async () => {
    const who = '+15550109001';
    const asked = await gw.send('clinic', { from: who, text: 'Please DELETE MY DATA.' }, KEY);
    expect(asked.replies[0]!.text).toMatch(/We received your request to delete your data/);
    const code = codeOf(asked.replies[0]!.text)!;
    const pending = (await gw.request('GET', `${base}?status=unverified`, { key: KEY })).body.requests;
    expect(pending).toHaveLength(1);
    const wrong = await gw.send('clinic', { from: who, text: code === '000000' ? '111111' : '000000' }, KEY);
    expect(wrong.replies[0]!.text).toMatch(/not right/);
    expect(model.calls.some((c) => JSON.stringify(c).includes(code))).toBe(false);
    const right = await gw.send('clinic', { from: who, text: code }, KEY);
    expect(right.replies[0]!.text).toMatch(/confirmed/);
    const request = await waitFor(pending[0].id, ['pending-approval']);
    expect(request.requestedVia).toBe('channel');
    // Someone else cannot use that code.
    expect((await gw.send('clinic', { from: '+15550109002', text: code }, KEY)).replies[0]!.text).not.toMatch(/confirmed/);
  });

  it('answers in Spanish, and an export asked on the channel sends the link to the person', async () => {
    const who = '+15550109003';
    const asked = await gw.send('clinic', { from: who, text: 'enviar mis datos por favor' }, KEY);
    expect(asked.replies[0]!.text).toMatch(/Recibimos su solicitud para enviarle sus datos/);
    const right = await gw.send('clinic', { from: who, text: codeOf(asked.replies[0]!.text)! }, KEY);
    expect(right.replies[0]!.text).toMatch(/Gracias/);
    const items = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.to === who && /\/v1\/dsar\/downloads\//.test(i.text)), 30_000);
    const link = /(http\S+)/.exec(items.find((i) => i.to === who && /downloads/.test(i.text))!.text)![1]!;
    const res = await fetch(link);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('enviar mis datos');
  });
});

describe('deadlines', () => {
  it('alerts at Slack before a request is due and when it is overdue, once each', async () => {
    const created = await gw.request('POST', base, { key: KEY, body: { type: 'erase', subject: { addresses: ['+15550109100'] }, requestedBy: 'Dana' } });
    await gw.gateway.db.pool.query(`UPDATE dsar_requests SET due_at = now() + interval '2 days' WHERE id = $1`, [created.body.id]);
    expect(await service.checkDeadlines()).toBe(1);
    await gw.gateway.db.pool.query(`UPDATE dsar_requests SET due_at = now() - interval '1 hour' WHERE id = $1`, [created.body.id]);
    expect(await service.checkDeadlines()).toBe(1);
    expect(await service.checkDeadlines()).toBe(0);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const texts = slack.messages.map((m) => JSON.stringify(m));
      if (texts.some((t) => t.includes(`request ${created.body.id.slice(0, 8)} is overdue`)) && texts.some((t) => t.includes(`request ${created.body.id.slice(0, 8)} is due`))) break;
      if (Date.now() > deadline) throw new Error(`no overdue alert at Slack: ${texts.join('\n').slice(0, 2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await gw.request('GET', `${base}/${created.body.id}`, { key: KEY })).body.request.overdue).toBe(true);
    expect(await gw.metrics()).toMatch(/parley_dsar_requests\{tenant="clinic",status="pending-approval",overdue="true"\} 1/);
  });
});

describe('retention', () => {
  it('previews, then purges messages past the tenant retention in batches, and erases inactive contacts', async () => {
    const old = '+15550109200';
    for (let i = 0; i < 12; i++) await gw.send('clinic', { from: old, text: `old message ${i}` }, KEY);
    await gw.send('clinic', { from: '+15550109201', text: 'recent message' }, KEY);
    await gw.gateway.db.pool.query(`UPDATE parley_inbound SET received_at = now() - interval '40 days' WHERE body LIKE 'old message%'`);
    const preview = await gw.request('GET', '/v1/tenants/clinic/retention/preview', { key: KEY });
    expect(preview.body.rows.messages).toBeGreaterThanOrEqual(12);
    expect((await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_inbound WHERE body LIKE 'old message%'`)).rows[0].n).toBe(12);
    const run = await gw.request('POST', '/v1/tenants/clinic/retention/run', { key: KEY });
    expect(run.body.rows.messages).toBeGreaterThanOrEqual(12);
    expect((await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_inbound WHERE body LIKE 'old message%'`)).rows[0].n).toBe(0);
    expect((await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_inbound WHERE body = 'recent message'`)).rows[0].n).toBe(1);
    expect(await gw.metrics()).toMatch(/parley_retention_purged_rows_total\{tenant="clinic",kind="messages"\} \d+/);
    // Inactive for longer than 400 days: erased entirely.
    await gw.gateway.db.pool.query(`UPDATE parley_conversations SET last_message_at = now() - interval '500 days' WHERE participant = '+15550109201'`);
    expect((await service.retention('clinic', true)).inactiveContacts).toBe(1);
    await service.retention('clinic', false);
    expect((await gw.gateway.db.pool.query(`SELECT count(*)::int AS n FROM parley_inbound WHERE body = 'recent message'`)).rows[0].n).toBe(0);
  });
});

describe('tenant isolation and input', () => {
  it('answers 401 without a key, 403 to another tenant, 404 for its ids; the operator sees all', async () => {
    const { body } = await gw.request('POST', base, { key: KEY, body: { type: 'export', subject: { addresses: ['+15550109300'] }, requestedBy: 'Dana' } });
    expect((await gw.request('GET', base)).status).toBe(401);
    expect((await gw.request('GET', base, { key: ELSEWHERE })).status).toBe(403);
    expect((await gw.request('GET', `/v1/tenants/elsewhere/data-subjects/requests/${body.id}`, { key: ELSEWHERE })).status).toBe(404);
    expect((await gw.request('POST', `${base}/${body.id}/approve`, { key: ELSEWHERE })).status).toBe(403);
    expect((await gw.request('GET', `${base}/${body.id}`, { key: OP })).status).toBe(200);
    const ccpa = await gw.request('POST', '/v1/tenants/elsewhere/data-subjects/requests', { key: ELSEWHERE, body: { type: 'export', subject: { addresses: ['+15550109301'] }, requestedBy: 'x' } });
    expect(Math.round((new Date(ccpa.body.dueAt).getTime() - Date.now()) / 86_400_000)).toBe(45);
  });

  it('answers 400 for a contactId without a contacts plugin, and for a bad body', async () => {
    const r = await gw.request('POST', base, { key: KEY, body: { type: 'erase', subject: { contactId: 'c_1' }, requestedBy: 'Dana' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('PARLEY_DSAR_NO_CONTACTS_PLUGIN');
    expect((await gw.request('POST', base, { key: KEY, body: { type: 'erase', subject: {}, requestedBy: 'Dana' } })).status).toBe(400);
  });

  it('never logs a number or a body at info level', () => {
    const dsarLines = gw.logs.filter((l) => l.plugin === 'dsar').map((l) => JSON.stringify(l));
    expect(dsarLines.join('\n')).not.toMatch(/\+1555010\d{4}/);
  });
});

describe('the audit trail', () => {
  it('records its head outside the database (backup manifest, log line, metric), so deleting the newest rows is reported', async () => {
    const pool = gw.gateway.db.pool;
    const backups = mkdtempSync(join(tmpdir(), 'parley-audit-head-'));
    // Requests of earlier tests finish first: their audit rows would land between the steps below.
    for (const deadline = Date.now() + 30_000; ; await new Promise((res) => setTimeout(res, 100))) {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM dsar_requests WHERE status IN ('queued', 'running')`);
      if (rows[0].n === 0) break;
      if (Date.now() > deadline) throw new Error('requests of earlier tests are still running');
    }
    try {
      const manifest = await gw.gateway.backup(join(backups, backupFileName()), undefined);
      const atBackup = manifest.auditHead!;
      for (const n of [1, 2]) await pool.query(`INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ('clinic', 'operator', 'test.later', $1)`, [{ n }]);
      const logged = await service.recordAuditHead();
      expect(BigInt(logged!.seq)).toBe(BigInt(atBackup.seq) + 2n);
      expect(await gw.metrics()).toContain(`parley_audit_head_seq ${logged!.seq}`);
      const logFile = gw.gateway.logFile!.path;
      expect(readFileSync(logFile, 'utf8')).toContain(`"auditHead":{"seq":"${logged!.seq}","hash":"${logged!.hash}"}`);
      // The newest record wins: the log line, written after the backup.
      expect(await recordedHead([backups, logFile])).toEqual({ ...logged, from: logFile });
      expect(await recordedHead([backups])).toEqual({ ...atBackup, from: join(backups, readdirSync(backups)[0]!) });

      // The two newest rows are deleted around the trigger: the rest is still a valid chain.
      await pool.query(`ALTER TABLE parley_audit DISABLE TRIGGER parley_audit_append_only; DELETE FROM parley_audit WHERE seq > $1; ALTER TABLE parley_audit ENABLE TRIGGER parley_audit_append_only`.replace('$1', atBackup.seq));
      expect((await verifyAuditChain(pool)).ok).toBe(true);
      const truncated = await verifyAuditChain(pool, { expectHead: (await recordedHead([backups, logFile]))! });
      expect(truncated.problems).toEqual([expect.objectContaining({ seq: logged!.seq, problem: 'truncated' })]);
      // The limit: rows written after the newest record and deleted are not noticed.
      expect((await verifyAuditChain(pool, { expectHead: (await recordedHead([backups]))! })).ok).toBe(true);

      if (TEST_BACKEND === 'external') {
        // The command finds the record itself: the operator remembers nothing.
        const out: string[] = [];
        const ok = await auditVerifyCommand({ databaseUrl: gw.databaseUrl, dataDir: gw.dataDir, headSources: [backups, logFile] }, undefined, (l) => out.push(l));
        expect(ok).toBe(false);
        expect(out.join('\n')).toMatch(/checked against the head recorded in .*parley\.log: seq \d+[\s\S]*truncated[\s\S]*audit chain BROKEN/);
      }
    } finally {
      rmSync(backups, { recursive: true, force: true });
    }
  }, 60_000);

  it('is append-only, and an edited or deleted row is detected', async () => {
    const pool = gw.gateway.db.pool;
    const before = await verifyAuditChain(pool);
    expect(before).toMatchObject({ ok: true, problems: [] });
    expect(before.rows).toBeGreaterThan(5);
    await expect(pool.query(`UPDATE parley_audit SET actor = 'mallory' WHERE seq = 2`)).rejects.toThrow(/append-only/);
    // Someone with the table owner's rights goes around the trigger.
    await pool.query(`ALTER TABLE parley_audit DISABLE TRIGGER parley_audit_append_only; UPDATE parley_audit SET actor = 'mallory' WHERE seq = 2; ALTER TABLE parley_audit ENABLE TRIGGER parley_audit_append_only`);
    const edited = await verifyAuditChain(pool);
    expect(edited.ok).toBe(false);
    expect(edited.problems).toEqual([expect.objectContaining({ seq: '2', problem: 'hash-mismatch' })]);
    await pool.query(`ALTER TABLE parley_audit DISABLE TRIGGER parley_audit_append_only; DELETE FROM parley_audit WHERE seq = 4; ALTER TABLE parley_audit ENABLE TRIGGER parley_audit_append_only`);
    const deleted = await verifyAuditChain(pool);
    expect(deleted.problems.map((p) => `${p.seq}:${p.problem}`)).toEqual(expect.arrayContaining(['5:seq-gap', '5:broken-link']));
  });
});

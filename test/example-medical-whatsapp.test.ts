/**
 * examples/medical-whatsapp (seed 001) end to end: the example's own parley.yaml, booted through the
 * test kit with the fake Graph API (WhatsApp Cloud, webhooks signed as Meta signs them), the fake
 * whatsapp-web.js client (WhatsApp Web) and a 12-document slice of MedQuAD for the library. Questions
 * are answered with citations and confidence, unsure ones get the fallback, the seed's metrics are
 * there under Parley's names, /readyz shows the chunks loaded, and the runbook's procedures run as
 * `parley` commands (validate, backup, backup verify) against the running gateway.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeGraph, type FakeGraph } from './fakes/whatsapp-graph-api.js';
import { fakeWhatsAppWeb } from './fixtures/whatsapp-web-fake.js';
import { signMetaBody } from '../channels/whatsapp-cloud/signature.js';
import { WEBHOOK_PATH } from '../channels/whatsapp-cloud/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = join(ROOT, 'examples/medical-whatsapp');
const CONFIG = readFileSync(join(EXAMPLE, 'parley.yaml'), 'utf8');
const SLICE = join(ROOT, 'plugins/medical-answers/test-fixtures/corpus-small.jsonl');
const WEB_FIXTURE = fileURLToPath(new URL('./fixtures/whatsapp-web-fake.ts', import.meta.url));
const KEY = 'key-jeevo-example-0123456789';
const OPERATOR = 'key-operator-jeevo-0123456789';
const TOKEN = 'graph-jeevo-token';
const CLOUD = { phoneNumberId: '106540352242922', display: '15550783881', secret: 'jeevo-app-secret', verify: 'jeevo-verify-token' };
const WEB_NUMBER = '+15550001111';

let graph: FakeGraph;
let gw: TestGateway;
let seq = 0;
const waUser = () => `91987650${String(++seq).padStart(4, '0')}`;

beforeAll(async () => {
  graph = await startFakeGraph({ accessToken: TOKEN });
  gw = await startTestGateway({
    config: CONFIG,
    baseDir: EXAMPLE,
    catalogue: { 'whatsapp-web': WEB_FIXTURE },
    env: {
      PARLEY_OPERATOR_KEY: OPERATOR,
      JEEVO_API_KEY: KEY,
      MEDICAL_CORPUS: SLICE,
      WHATSAPP_GRAPH_URL: graph.baseUrl,
      WHATSAPP_PHONE_NUMBER_ID: CLOUD.phoneNumberId,
      WHATSAPP_DISPLAY_NUMBER: `+${CLOUD.display}`,
      WHATSAPP_ACCESS_TOKEN: TOKEN,
      WHATSAPP_APP_SECRET: CLOUD.secret,
      WHATSAPP_VERIFY_TOKEN: CLOUD.verify,
      WHATSAPP_WEB_NUMBER: WEB_NUMBER,
      GROQ_API_KEY: '',
    },
  });
  const web = fakeWhatsAppWeb.latest('jeevo');
  web.authenticate();
  web.becomeReady();
  for (let i = 0; i < 600; i++) {
    const state = (await gw.request('GET', '/v1/tenants/jeevo/medical-answers', { key: KEY })).body;
    if (state.chunks > 0 && !state.ingest) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await graph?.close();
});

/** A text message to the Cloud API number, delivered as Meta delivers it: signed over the raw body. */
async function cloudMessage(from: string, body: string, secret = CLOUD.secret) {
  const raw = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: CLOUD.display, phone_number_id: CLOUD.phoneNumberId }, contacts: [{ profile: { name: 'Asha' }, wa_id: from }], messages: [{ from, id: `wamid.JEEVO${++seq}${Date.now()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body } }] } }] }],
  });
  return gw.request('POST', WEBHOOK_PATH, { raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, secret) } });
}

/** The reply the Graph API received for `waId`, once the outbox sent it. */
async function cloudReply(waId: string): Promise<string> {
  const items = await gw.waitForOutbox('jeevo', (all) => all.some((i) => i.to === `+${waId}` && i.status === 'sent'));
  const sent = graph.sent.filter((s) => s.body['to'] === waId);
  expect(sent.length).toBeGreaterThan(0);
  return items.filter((i) => i.to === `+${waId}`).map((i) => i.text).join('\n');
}

async function annotationOf(waId: string) {
  const { rows } = await gw.gateway.db.pool.query(`SELECT id FROM parley_inbound WHERE tenant_id = 'jeevo' AND from_address = $1 ORDER BY received_at DESC LIMIT 1`, [`+${waId}`]);
  return (await gw.request('GET', `/v1/tenants/jeevo/messages/${rows[0].id}`, { key: KEY })).body.message.annotations['medical-answers'];
}

/** The `parley` command, run asynchronously: the gateway it may call runs in this process. */
const parley = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/parley.js'), ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });

describe('examples/medical-whatsapp: seed 001 as a Parley deployment', () => {
  it('answers a WhatsApp Cloud question from the library with its source and a confidence', async () => {
    const from = waUser();
    expect((await cloudMessage(from, 'what are the symptoms of shingles?')).status).toBe(200);
    const reply = await cloudReply(from);
    expect(reply).toMatch(/\nSource: Shingles https:\/\//);
    expect(reply).toContain('General information, not medical advice.');
    const note = await annotationOf(from);
    expect(note).toMatchObject({ outcome: 'answered', answerer: 'extractive', citations: [expect.objectContaining({ title: 'Shingles' })] });
    expect(note.confidence).toBeGreaterThanOrEqual(0.15);
  });

  it('answers on WhatsApp Web the same way, through the logged-in session', async () => {
    const web = fakeWhatsAppWeb.latest('jeevo');
    web.receive({ from: '919876500999', body: 'what is a normal a1c level?' });
    const items = await gw.waitForOutbox('jeevo', (all) => all.some((i) => i.channel === 'whatsapp-web' && i.status === 'sent'));
    const reply = items.find((i) => i.channel === 'whatsapp-web')!;
    expect(reply.text).toMatch(/\nSource: A1C https:\/\//);
    expect(web.sent.map((c) => c.content)).toContain(reply.text);
  });

  it('sends the fallback or the off-topic reply, not a guess, when the library is not sure enough', async () => {
    const from = waUser();
    // The library has pages on blood pressure but none on which fruit: confidence stays under 0.2. Its
    // words read about evenly as a health question and as an errand to the confidence's text part
    // (engine/confidence.ts), so the reply is the fallback or the off-topic reply; never a page's text.
    await cloudMessage(from, 'which fruit is good for blood pressure?');
    const reply = await cloudReply(from);
    expect([
      "I'm not sure enough to answer that. Please ask a doctor or pharmacist; if it is urgent, call your local emergency number.",
      'I answer health questions, with the source. Ask me about a condition, a symptom or a treatment.',
    ]).toContain(reply);
    const note = await annotationOf(from);
    expect(['fallback', 'passed']).toContain(note.outcome);
    expect(note.citations ?? []).toEqual([]);
    if (note.outcome === 'fallback') expect(note.confidence).toBeLessThan(0.2);
  });

  it("refuses a forged webhook with 403 and counts it (the seed's validation errors)", async () => {
    expect((await cloudMessage(waUser(), 'hello', 'not-the-app-secret')).status).toBe(403);
    expect(await gw.metrics()).toMatch(/parley_whatsapp_cloud_webhooks_total\{result="forged"\} [1-9]/);
  });

  it("exposes the seed's metrics under Parley's names", async () => {
    const metrics = await gw.metrics();
    const chunks = (await gw.request('GET', '/v1/tenants/jeevo/medical-answers', { key: KEY })).body.chunks as number;
    // medical_queries_total, query_duration_seconds, vector_search_duration_seconds, vector_db_chunks
    expect(metrics).toMatch(/parley_rag_queries_total\{tenant="jeevo",outcome="answered"\} [1-9]/);
    expect(metrics).toMatch(/parley_rag_answer_duration_seconds_count\{tenant="jeevo",answerer="extractive"\} [1-9]/);
    expect(metrics).toMatch(/parley_rag_retrieval_duration_seconds_count\{tenant="jeevo"\} [1-9]/);
    expect(metrics).toContain(`parley_rag_chunks{tenant="jeevo"} ${chunks}`);
    expect(metrics).toMatch(/parley_rag_confidence_count\{tenant="jeevo"\} [1-9]/);
  });

  it('/readyz shows the database, the jobs, both WhatsApp channels and the library with its chunks and last update', async () => {
    const ready = await gw.request('GET', '/readyz');
    expect(ready.status).toBe(200);
    const c = ready.body.components;
    expect(c.database).toMatchObject({ ok: true });
    expect(c.jobs).toMatchObject({ ok: true, info: { backend: expect.any(String) } });
    expect(c['whatsapp-cloud']).toMatchObject({ ok: true, info: { tenants: { jeevo: 'on' } } });
    expect(c['whatsapp-web:jeevo']).toMatchObject({ ok: true, info: { state: 'ready', number: WEB_NUMBER } });
    expect(c['medical-answers']).toMatchObject({ ok: true, info: { jeevo: { docs: 12, chunks: expect.any(Number), lastIngestAt: expect.any(String) } } });
    expect(c['medical-answers'].info.jeevo.chunks).toBeGreaterThan(12);
  });

  it("keeps the seed's 30 days of daily backups, and the runbook's backup and verify run as parley commands", async () => {
    const dsar = (parse(CONFIG).plugins as { name?: string; options?: { backup: { cron: string; keep: number } } }[]).find((p) => p.name === 'dsar')!;
    expect(dsar.options!.backup).toMatchObject({ cron: '0 2 * * *', keep: 30 });
    const dir = mkdtempSync(join(tmpdir(), 'parley-jeevo-backup-'));
    try {
      const file = join(dir, 'jeevo.backup');
      const storage = gw.databaseUrl ? { DATABASE_URL: gw.databaseUrl } : { PARLEY_DATA_DIR: gw.dataDir, DATABASE_URL: '' };
      const backup = await parley(['backup', '--config', join(EXAMPLE, 'parley.yaml'), '--out', file, '--url', gw.url, '--key', OPERATOR], storage);
      expect(backup.stdout + backup.stderr).toMatch(/Wrote .*jeevo\.backup/);
      expect(backup.status).toBe(0);
      const verify = await parley(['backup', 'verify', file, '--config', join(EXAMPLE, 'parley.yaml')], storage);
      expect(verify.stdout + verify.stderr).toMatch(/every row count matches/);
      expect(verify.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('passes `parley validate` with nothing set in the environment', async () => {
    const env: NodeJS.ProcessEnv = {};
    for (const k of Object.keys(process.env)) if (/^(WHATSAPP_|GROQ_|JEEVO_|MEDICAL_|DATABASE_URL|REDIS_URL)/.test(k)) env[k] = '';
    const r = await parley(['validate', '--config', join(EXAMPLE, 'parley.yaml')], env);
    expect(r.stdout + r.stderr).toMatch(/is valid: 1 tenant\(s\) \(jeevo\)/);
    expect(r.status).toBe(0);
  });
});

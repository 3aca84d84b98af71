/** `POST /twilio/sms`: inline TwiML replies, idempotency, MMS, WhatsApp, segments, malformed input. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, newSid, post, signedSmsRequest, signedWebhook } from './fakes/twilio-webhook.js';
import { twilioTest } from './fixtures/twilio-stages.js';
import { CLINIC_NUMBER, OTHER_NUMBER, PATIENT, twilioConfig } from './fixtures/twilio-config.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

let fake: FakeTwilio;
let gw: TestGateway;

beforeAll(async () => {
  fake = await startFakeTwilio();
  gw = await startTestGateway({
    config: twilioConfig(fake, {
      voice: false,
      sms: { maxSegments: 1, overflow: 'split' },
      extraTenants: [
        {
          id: 'dental',
          name: 'Bay Dental',
          pipeline: ['twilio-test.echo'],
          plugins: { 'twilio-sms': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [OTHER_NUMBER], maxSegments: 1, overflow: 'truncate', consent: { contact: 'call 555-0199' } } },
        },
      ],
    }),
  });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});
beforeEach(() => twilioTest.reset());

const sms = (body: string, o: Partial<Parameters<typeof inboundSmsParams>[0]> = {}) =>
  signedSmsRequest({ baseUrl: gw.url, authToken: fake.authToken, params: inboundSmsParams({ from: PATIENT, to: CLINIC_NUMBER, body, accountSid: fake.accountSid, ...o }) });

async function segmentsOf(ref: string) {
  const { rows } = await gw.gateway.db.pool.query('SELECT direction, via, part, encoding, segments, cost::float8 AS cost FROM twilio_sms_segments WHERE ref = $1 ORDER BY part', [ref]);
  return rows;
}

describe('an inbound SMS', () => {
  it('runs the tenant pipeline and answers inline with TwiML, recorded in the outbox as sent inline', async () => {
    const req = sms('hours?');
    const res = await post(req);
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/xml/);
    expect(twimlMessages(res.text)).toEqual([{ body: 'echo: hours? [turn 1]', media: [] }]);
    expect(twilioTest.seen[0]!.message).toMatchObject({ channel: 'twilio-sms', tenantId: 'clinic', from: PATIENT, to: CLINIC_NUMBER, providerMessageId: req.params.MessageSid });
    // Settled once the response finished, a moment after the client has it.
    const settled = await gw.waitForOutbox('clinic', (all) => all.some((i) => i.text === 'echo: hours? [turn 1]' && i.status !== 'sending'));
    const [item] = settled.filter((i) => i.text === 'echo: hours? [turn 1]');
    expect(item).toMatchObject({ status: 'sent', via: 'inline', to: PATIENT, from: CLINIC_NUMBER, channel: 'twilio-sms' });
    expect(fake.sent).toHaveLength(0);
  });

  it('runs the pipeline once for a MessageSid delivered twice, and answers the retry with the same reply', async () => {
    const req = sms('same message');
    const first = await post(req);
    const second = await post(req);
    expect(second.status).toBe(200);
    expect(second.text).toBe(first.text);
    expect(twilioTest.texts()).toEqual(['same message']);
    const { rows } = await gw.gateway.db.pool.query('SELECT count(*)::int AS n FROM parley_inbound WHERE provider_message_id = $1', [req.params.MessageSid]);
    expect(rows[0].n).toBe(1);
  });

  it('gives two identical requests arriving at once one row and one reply', async () => {
    const req = sms('at once');
    const [a, b] = await Promise.all([post(req), post(req)]);
    expect(a.text).toBe(b.text);
    expect(twimlMessages(a.text)).toHaveLength(1);
    expect(twilioTest.texts()).toEqual(['at once']);
    expect((await gw.outbox('clinic')).filter((i) => i.text.startsWith('echo: at once'))).toHaveLength(1);
  });

  it('keeps the conversation of one number together, so the pipeline sees its history', async () => {
    const from = '+15550002001';
    await post(sms('first', { from }));
    const res = await post(sms('second', { from }));
    expect(twimlMessages(res.text)[0]!.body).toBe('echo: second [turn 2]');
    expect(twilioTest.seen[1]!.historyLength).toBe(2);
  });

  it('hands MMS media URLs and types to the pipeline, and replies with media', async () => {
    const media = [
      { url: 'https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1', contentType: 'image/jpeg' },
      { url: 'https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2', contentType: 'application/pdf' },
    ];
    const res = await post(sms('', { media, from: '+15550002002' }));
    expect(twilioTest.seen[0]!.message.media).toEqual(media);
    expect(twimlMessages(res.text)[0]!.body).toBe('echo: (no text) +2 media [turn 1]');

    const picture = await post(sms('picture'));
    expect(twimlMessages(picture.text)).toEqual([{ body: 'Here is the map.', media: ['https://cdn.example.com/map.png'] }]);
  });

  it('takes WhatsApp-through-Twilio messages on a whatsapp: number and answers them the same way', async () => {
    const res = await post(sms('hola', { from: `whatsapp:${PATIENT}`, to: `whatsapp:${CLINIC_NUMBER}` }));
    expect(twimlMessages(res.text)[0]!.body).toMatch(/^echo: hola/);
    expect(twilioTest.seen[0]!.message).toMatchObject({ tenantId: 'clinic', from: `whatsapp:${PATIENT}` });
  });

  it('resolves the tenant from To: each number reaches its own tenant', async () => {
    await post(sms('which tenant?', { to: OTHER_NUMBER }));
    expect(twilioTest.seen[0]!.message.tenantId).toBe('dental');
  });
});

describe('text handling', () => {
  it.each([
    ['plain GSM-7', 'Hello, see you at 9am tomorrow!', 'GSM-7', 1],
    ['GSM-7 accents (é, ñ, ü are in the GSM alphabet)', 'Café niño über', 'GSM-7', 1],
    ['accented text outside GSM-7', 'Olá, amanhã às 9h', 'UCS-2', 1],
    ['an emoji', 'Thanks 😀', 'UCS-2', 1],
    ['GSM-7 over 160 septets', 'a'.repeat(161), 'GSM-7', 2],
    ['an emoji plus 69 characters', '😀' + '1'.repeat(69), 'UCS-2', 2],
    ['GSM extension characters counting twice', '{' + 'a'.repeat(159), 'GSM-7', 2],
  ])('counts %s: %s', async (_name, body, encoding, segments) => {
    const req = sms(body);
    await post(req);
    const [inbound] = await segmentsOf(req.params.MessageSid!);
    expect(inbound).toMatchObject({ direction: 'in', via: 'inbound', encoding, segments });
    expect(twilioTest.seen[0]!.message.attributes).toMatchObject({ encoding });
  });

  it('splits a reply longer than the segment budget on word boundaries, each part within it, and records every part', async () => {
    const res = await post(sms('long 60'));
    const messages = twimlMessages(res.text);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(m.body.length).toBeLessThanOrEqual(160);
    expect(messages.map((m) => m.body).join(' ')).toBe(Array.from({ length: 60 }, (_, i) => `word${i}`).join(' '));
    const [item] = (await gw.outbox('clinic')).filter((i) => i.text.startsWith('word0 word1'));
    const parts = await segmentsOf(item!.id);
    expect(parts).toHaveLength(messages.length);
    expect(parts.every((p: { via: string; segments: number; cost: number }) => p.via === 'inline' && p.segments === 1 && p.cost === 0.0083)).toBe(true);
  });

  it("shortens a long reply instead when the tenant's overflow is truncate", async () => {
    const res = await post(sms('long 60', { to: OTHER_NUMBER }));
    const messages = twimlMessages(res.text);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.body.length).toBeLessThanOrEqual(160);
    expect(messages[0]!.body).toMatch(/^word0 word1 .*\.\.\.$/);
  });

  it('counts segments per tenant and encoding in the metrics', async () => {
    await post(sms('Thanks 😀'));
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/parley_twilio_segments_total\{tenant="clinic",direction="in",encoding="UCS-2"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_segments_total\{tenant="clinic",direction="out",encoding="GSM-7"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_sends_total\{tenant="clinic",status="inline"\} [1-9]/);
    expect(metrics).toMatch(/parley_twilio_requests_total\{tenant="clinic",endpoint="sms"\} [1-9]/);
  });
});

describe('segment bookkeeping before the reply', () => {
  const usageOf = async (ref: string) =>
    (await gw.gateway.db.pool.query('SELECT kind, quantity::float8 AS quantity, cost_usd::float8 AS cost, plugin, attributes FROM parley_usage WHERE ref = $1 ORDER BY kind', [ref])).rows;

  it('records every part in the segment ledger and their sum in the usage ledger together, once however often the webhook is retried', async () => {
    const req = sms('long 60');
    const first = await post(req);
    const parts = twimlMessages(first.text).length;
    expect(parts).toBeGreaterThan(1);
    expect((await post(req)).text).toBe(first.text);
    const [item] = (await gw.outbox('clinic')).filter((i) => i.inboundId && i.text.startsWith('word0 word1'));
    expect(await segmentsOf(item!.id)).toHaveLength(parts);
    expect(await segmentsOf(req.params.MessageSid!)).toHaveLength(1);
    expect(await usageOf(item!.id)).toEqual([
      expect.objectContaining({ kind: 'messages.out', quantity: 1 }),
      { kind: 'sms.segments.out', quantity: parts, cost: Number((parts * 0.0083).toFixed(4)), plugin: 'twilio-sms', attributes: { via: 'inline', currency: 'USD' } },
    ]);
    expect(await usageOf(req.params.MessageSid!)).toEqual([{ kind: 'sms.segments.in', quantity: 1, cost: 0.0083, plugin: 'twilio-sms', attributes: { via: 'inbound', currency: 'USD' } }]);
  });

  it('keeps the segment ledger rows when the usage ledger refuses them, and still answers', async () => {
    const req = sms('usage refused', { from: '+15550009001' });
    const db = gw.gateway.db.pool;
    await db.query(`CREATE FUNCTION fold_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.ref = '${req.params.MessageSid}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
    await db.query('CREATE TRIGGER fold_test_refuse BEFORE INSERT ON parley_usage FOR EACH ROW EXECUTE FUNCTION fold_test_refuse()');
    try {
      const res = await post(req);
      expect(res.status).toBe(200);
      expect(twimlMessages(res.text)).toEqual([{ body: 'echo: usage refused [turn 1]', media: [] }]);
      const [item] = (await gw.outbox('clinic')).filter((i) => i.text === 'echo: usage refused [turn 1]');
      expect(await segmentsOf(req.params.MessageSid!)).toEqual([expect.objectContaining({ direction: 'in', segments: 1 })]);
      expect(await segmentsOf(item!.id)).toEqual([expect.objectContaining({ direction: 'out', via: 'inline', segments: 1 })]);
      expect(await usageOf(req.params.MessageSid!)).toEqual([]);
      expect((await usageOf(item!.id)).map((u) => u.kind)).toContain('sms.segments.out');
      expect(await gw.metrics()).toMatch(/parley_twilio_errors_total\{tenant="clinic",code="usage"\} [1-9]/);
    } finally {
      await db.query('DROP TRIGGER fold_test_refuse ON parley_usage');
      await db.query('DROP FUNCTION fold_test_refuse()');
    }
  });
});

describe('malformed requests', () => {
  const url = () => `${gw.url}/twilio/sms`;
  const form = (params: Record<string, string>) => signedWebhook({ url: url(), authToken: fake.authToken, params });

  it('answers a JSON body with 400', async () => {
    const res = await post({ url: url(), headers: { 'content-type': 'application/json' }, body: JSON.stringify(inboundSmsParams({ from: PATIENT, to: CLINIC_NUMBER, body: 'hi' })) });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).error.code).toBe('PARLEY_BAD_REQUEST');
  });

  it('answers broken JSON and an empty body with 400', async () => {
    expect((await post({ url: url(), headers: { 'content-type': 'application/json' }, body: '{"To": ' })).status).toBe(400);
    expect((await post({ url: url(), headers: {}, body: '' })).status).toBe(400);
  });

  it('answers a signed request with a missing or bad field with 400 naming it', async () => {
    const base = inboundSmsParams({ from: PATIENT, to: CLINIC_NUMBER, body: 'hi', accountSid: fake.accountSid });
    const cases: [Record<string, string>, RegExp][] = [
      [{ ...base, MessageSid: '' }, /MessageSid/],
      [{ ...base, MessageSid: 'not-a-sid' }, /MessageSid/],
      [{ ...base, From: 'somebody' }, /From/],
      [{ ...base, NumMedia: 'lots' }, /NumMedia/],
      [{ ...base, NumMedia: '2' }, /MediaUrl0/],
      [{ ...base, NumMedia: '1', MediaUrl0: 'javascript:alert(1)' }, /MediaUrl0/],
    ];
    for (const [params, reason] of cases) {
      const res = await post(form(params));
      expect(res.status, JSON.stringify(params)).toBe(400);
      expect(JSON.parse(res.text).error.message).toMatch(reason);
    }
    const { MessageSid: _omit, ...withoutSid } = base;
    expect((await post(form(withoutSid))).status).toBe(400);
  });

  it('answers a request without To with 400, and one for a number nobody owns with 404', async () => {
    const { To: _to, ...noTo } = inboundSmsParams({ from: PATIENT, to: CLINIC_NUMBER, body: 'hi' });
    expect((await post(form(noTo))).status).toBe(400);
    expect((await post(form(inboundSmsParams({ from: PATIENT, to: '+15550009999', body: 'hi' })))).status).toBe(404);
  });

  it('refuses a repeated single-valued parameter with 400', async () => {
    const req = sms('hi');
    const res = await post({ ...req, body: `${req.body}&MessageSid=${newSid()}` });
    expect([400, 403]).toContain(res.status);
    const signed = signedWebhook({ url: url(), authToken: fake.authToken, params: req.params });
    const body = `${signed.body}&To=${encodeURIComponent(OTHER_NUMBER)}`;
    expect((await post({ ...signed, body })).status).toBe(400);
  });

  it('never answers random or garbage payloads, signed or not, with a 5xx', async () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
    const values = ['', ' ', 'x', CLINIC_NUMBER, `whatsapp:${CLINIC_NUMBER}`, PATIENT, newSid(), newSid('MM'), 'SM' + 'z'.repeat(32), '%', '%E0%A4%A', '😀', '\u0000', 'a'.repeat(3000), '-1', '99', 'STOP', 'https://x', '[]', '{}'];
    const keys = ['To', 'From', 'Body', 'MessageSid', 'NumMedia', 'MediaUrl0', 'MediaContentType0', 'OptOutType', 'AccountSid', 'NumSegments', '__proto__', 'constructor', 'To[]', 'a[b]'];
    const contentTypes = ['application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=latin1'];
    const statuses: number[] = [];
    for (let i = 0; i < 120; i += 1) {
      const params: Record<string, string> = {};
      const n = Math.floor(random() * 8);
      for (let j = 0; j < n; j += 1) params[pick(keys)] = pick(values);
      if (random() < 0.6) params.To = pick([CLINIC_NUMBER, OTHER_NUMBER, `whatsapp:${CLINIC_NUMBER}`]);
      const signed = signedWebhook({ url: url(), authToken: fake.authToken, params });
      const contentType = pick(contentTypes);
      const body = random() < 0.2 ? pick(['{"To":', '\u0000\u0001garbage', '%%%', 'To=%ZZ&From', JSON.stringify(params)]) : signed.body;
      const headers: Record<string, string> = { 'content-type': contentType };
      if (random() < 0.6) headers['x-twilio-signature'] = signed.headers['x-twilio-signature']!;
      const res = await post({ url: url(), headers, body });
      statuses.push(res.status);
      expect(res.status, `payload ${i}: ${contentType} ${body.slice(0, 200)}`).toBeLessThan(500);
    }
    expect(new Set(statuses).size).toBeGreaterThan(2);
  });
});

describe('signature checking without a public base URL', () => {
  it('validates against the URL the request arrived on', async () => {
    const res = await post(sms('signed for this host'));
    expect(res.status).toBe(200);
  });

  it('ignores X-Forwarded-Host/Proto when the proxy is not trusted', async () => {
    const params = inboundSmsParams({ from: PATIENT, to: CLINIC_NUMBER, body: 'via proxy', accountSid: fake.accountSid });
    const signed = signedWebhook({ url: `${gw.url}/twilio/sms`, signedUrl: 'https://proxy.example.com/twilio/sms', authToken: fake.authToken, params });
    const res = await post({ ...signed, headers: { ...signed.headers, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'proxy.example.com' } });
    expect(res.status).toBe(403);
  });
});

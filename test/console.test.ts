/**
 * The operations console in real Chromium (Debian's `chromium`, driven by puppeteer-core; no browser
 * download): sign-in and sign-out, the cookie and CSRF rules, the Content-Security-Policy, tenant
 * isolation by URL, a crisis hand-off answered by a person (the reply reaches the fake Twilio), a held
 * message approved from the review queue, an erasure approved with a second key, a dead letter
 * retried, the WhatsApp QR code replaced when the session becomes ready, a tenant's health answers
 * (library, outcomes, errands, the log filtered by errand), and an axe-core check of every page. Runs embedded and on PostgreSQL + Redis (PARLEY_TEST_BACKEND=external).
 *
 * Without Chromium the file is skipped, except under CI=true where it fails (`.ci/run` installs it).
 * `PARLEY_CONSOLE_SCREENSHOTS=1` writes the README's screenshots to core/console/screenshots/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, post, signedSmsRequest } from './fakes/twilio-webhook.js';
import { fakeWhatsAppWeb } from './fixtures/whatsapp-web-fake.js';

// Browser globals, inside page.evaluate callbacks only (this project is type-checked without the DOM library).
declare const document: any, location: any, window: any, localStorage: any, sessionStorage: any;
type HTMLElement = any;
type HTMLInputElement = any;
type HTMLSelectElement = any;
type HTMLImageElement = any;

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === 'true') throw new Error(`Chromium is not at ${CHROMIUM}: the console tests need it in CI (apt-get install chromium)`);

const OPERATOR = 'key-operator-console-0123456789';
const CLINIC_A = 'key-clinic-console-a-0123456789';
const CLINIC_B = 'key-clinic-console-b-0123456789';
const CLUB = 'key-club-console-0123456789';
const HEALTH = 'key-health-console-0123456789';
const HEALTH_CORPUS = fileURLToPath(new URL('../plugins/medical-answers/test-fixtures/corpus-small.jsonl', import.meta.url));
const CLINIC_NUMBER = '+15557650100';
const CLUB_NUMBER = '+15557650200';
const WA_FIXTURE = fileURLToPath(new URL('./fixtures/whatsapp-web-fake.ts', import.meta.url));
const SCREENSHOTS = fileURLToPath(new URL('../core/console/screenshots/', import.meta.url));
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let gw: TestGateway;
let twilio: FakeTwilio;
let browser: Browser;
let n = 0;
const person = () => `+1555765${String(++n).padStart(4, '0')}`;

describe("the console's script", () => {
  it('parses (checked without a browser, so a broken page fails everywhere)', () => {
    const r = spawnSync(process.execPath, ['--check', fileURLToPath(new URL('../core/console/assets/console.js', import.meta.url))], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe.skipIf(!haveChromium)('the operations console', () => {
  beforeAll(async () => {
    twilio = await startFakeTwilio();
    gw = await startTestGateway({
      config: {
        operator: { apiKeys: [OPERATOR] },
        outbox: { attempts: 2, backoffMs: 50 },
        plugins: [
          'http',
          { name: 'twilio-sms', options: { apiBaseUrl: twilio.baseUrl } },
          { name: 'whatsapp-web', options: { readyTimeoutMs: 400, sendTimeoutMs: 500, notReadyRetryMs: 250 } },
          'crisis-guard',
          'moderation',
          'dsar',
          'keyword-replies',
          'contacts',
          { name: 'reminders', options: { tickCron: '0 0 1 1 *' } },
          'cost-guard',
          'medical-answers',
        ],
        tenants: [
          {
            id: 'clinic',
            name: 'Harbour Clinic',
            apiKeys: [CLINIC_A, CLINIC_B],
            pipeline: ['crisis-guard', 'moderation', 'keyword-replies'],
            replyPipeline: ['moderation'],
            plugins: {
              http: {},
              'twilio-sms': { accountSid: twilio.accountSid, authToken: twilio.authToken, numbers: [CLINIC_NUMBER], consent: { programName: 'Harbour Clinic', contact: 'call 555-0100' } },
              'crisis-guard': {},
              moderation: { holdNotice: { skipChannels: ['twilio-sms'] } },
              dsar: {},
              contacts: { defaultChannel: 'twilio-sms' },
              reminders: {},
              'cost-guard': { rateLimits: { user: { perMinute: 30, perDay: 500 } }, budgets: { total: { daily: 20 } } },
              'keyword-replies': { rules: [{ match: 'hours', reply: 'We are open 8am to 6pm.' }], defaultReply: 'Thanks, we will get back to you.' },
            },
          },
          {
            id: 'club',
            apiKeys: [CLUB],
            pipeline: ['keyword-replies'],
            plugins: { http: {}, 'whatsapp-web': { number: CLUB_NUMBER }, 'keyword-replies': { defaultReply: 'Club here' } },
          },
          {
            id: 'health',
            apiKeys: [HEALTH],
            pipeline: ['medical-answers'],
            plugins: { http: {}, 'medical-answers': { corpus: HEALTH_CORPUS, errands: { replies: { refill: 'For refills, call the pharmacy line.' } } } },
          },
        ],
      },
      catalogue: { 'whatsapp-web': WA_FIXTURE },
    });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await gw?.stop({ cleanup: true });
    await twilio?.close();
  });

  /** A fresh browser profile (its own cookies), with CSP reports and script errors collected. */
  async function newPage(): Promise<Page & { problems: string[] }> {
    const context = await browser.createBrowserContext();
    const page = (await context.newPage()) as Page & { problems: string[] };
    page.problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(m.text());
    });
    page.on('pageerror', (e) => page.problems.push(String(e)));
    await page.setViewport({ width: 1200, height: 900 });
    return page;
  }

  async function signIn(key: string): Promise<Page & { problems: string[] }> {
    const page = await newPage();
    await page.goto(`${gw.url}/console`);
    await page.waitForSelector('#key');
    await page.type('#key', key);
    await page.click('form.sign-in button[type=submit]');
    await page.waitForSelector('nav a[aria-current="page"]');
    return page;
  }

  /** Waits for the text; a timeout says what the page showed instead. */
  const sees = async (page: Page, text: string, timeout = 8_000) => {
    try {
      await page.waitForFunction((t: string) => document.body.innerText.includes(t), { timeout, polling: 50 }, text);
    } catch (error) {
      const shown = await page.evaluate(() => `${location.hash}: ${document.querySelector('main')?.innerText ?? ''}`.slice(0, 500)).catch(() => '?');
      throw new Error(`"${text}" not seen in ${timeout} ms; the page showed ${shown}`, { cause: error });
    }
  };
  /** Navigates and waits until the console has rendered that page (main[data-shown] names it). */
  const go = async (page: Page, hash: string) => {
    await page.evaluate((h: string) => (location.hash = h), hash);
    await page.waitForFunction((h: string) => document.querySelector('main')?.dataset.shown === h, { timeout: 8_000, polling: 50 }, hash);
  };
  const clickText = async (page: Page, selector: string, text: string) => {
    await page.waitForFunction((s: string, t: string) => [...document.querySelectorAll(s)].some((e) => e.textContent?.includes(t)), { timeout: 8_000, polling: 50 }, selector, text);
    await page.evaluate((s: string, t: string) => ([...document.querySelectorAll(s)].find((e) => e.textContent?.includes(t)) as HTMLElement).click(), selector, text);
  };

  async function axe(page: Page): Promise<string[]> {
    await page.evaluate(AXE);
    const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) })))`)) as { id: string; impact: string; nodes: string[] }[];
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.nodes.join(', ')}`);
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    if (process.env.PARLEY_CONSOLE_SCREENSHOTS !== '1') return;
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOTS}${name}.png` as `${string}.png` });
  }

  const sms = (from: string, body: string) => post(signedSmsRequest({ baseUrl: gw.url, authToken: twilio.authToken, params: inboundSmsParams({ from, to: CLINIC_NUMBER, body, accountSid: twilio.accountSid }) }));
  const conversationOf = async (participant: string) => (await gw.gateway.db.pool.query(`SELECT id FROM parley_conversations WHERE participant = $1`, [participant])).rows[0]?.id as string;
  const sessionCookie = async (page: Page) => (await page.browserContext().cookies()).find((c) => c.name === 'parley_console');

  it('serves one page with a strict Content-Security-Policy and no inline script or style', async () => {
    const res = await fetch(`${gw.url}/console`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style/);
    // The browser enforces it: a script injected into the page does not run.
    const page = await newPage();
    await page.goto(`${gw.url}/console`);
    await page.waitForSelector('#key');
    const ran = await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__injected = true';
      document.body.append(s);
      return (window as unknown as { __injected?: boolean }).__injected === true;
    });
    expect(ran).toBe(false);
    await page.browserContext().close();
  });

  it('signs in with a key for an httpOnly, SameSite=Strict session, never shows the key, and signs out', async () => {
    const page = await newPage();
    await page.goto(`${gw.url}/console`);
    await page.waitForSelector('#key');
    expect(await page.$eval('header a.docs-link', (a) => a.getAttribute('href'))).toBe('/docs');
    expect(await axe(page)).toEqual([]);
    await page.type('#key', 'key-that-does-not-exist-000');
    await page.click('form.sign-in button[type=submit]');
    await sees(page, 'That key is not valid');
    await page.evaluate(() => ((document.getElementById('key') as HTMLInputElement).value = ''));
    await page.type('#key', CLINIC_A);
    await page.click('form.sign-in button[type=submit]');
    await page.waitForSelector('nav a[aria-current="page"]');
    await sees(page, 'Messages, last hour');
    await screenshot(page, 'overview');
    const cookie = (await sessionCookie(page))!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(page.url()).not.toContain(CLINIC_A);
    expect(await page.content()).not.toContain(CLINIC_A);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    expect(JSON.stringify(await page.evaluate(() => ({ ...localStorage, ...sessionStorage })))).not.toContain(CLINIC_A);
    expect(await axe(page)).toEqual([]);
    // The header links to the API reference, which renders the gateway's OpenAPI document.
    expect(await page.$eval('header a.docs-link', (a) => [a.textContent, a.getAttribute('href')])).toEqual(['API reference', '/docs']);
    const docs = await page.browserContext().newPage();
    await docs.goto(`${gw.url}/docs`);
    await docs.waitForSelector('body[data-rendered]', { timeout: 20_000 });
    await docs.close();

    await page.click('#sign-out');
    await page.waitForSelector('#key');
    expect(await sessionCookie(page)).toBeUndefined();
    // The session is gone on the server, not only in this browser.
    const replay = await fetch(`${gw.url}/v1/tenants/clinic/conversations`, { headers: { cookie: `parley_console=${cookie.value}` } });
    expect(replay.status).toBe(401);
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('refuses a change without the CSRF token, a sign-in posted from another site, and a revoked key', async () => {
    const signedIn = await fetch(`${gw.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: CLINIC_A }) });
    expect(signedIn.status).toBe(201);
    const { csrf } = (await signedIn.json()) as { csrf: string };
    const cookie = signedIn.headers.get('set-cookie')!.split(';')[0]!;
    const convo = person();
    await sms(convo, 'hours?');
    const id = await conversationOf(convo);
    const put = (headers: Record<string, string>) => fetch(`${gw.url}/v1/tenants/clinic/conversations/${id}/handoff`, { method: 'PUT', headers: { 'content-type': 'application/json', cookie, ...headers }, body: JSON.stringify({ state: 'human' }) });
    const without = await put({});
    expect(without.status).toBe(403);
    expect(((await without.json()) as { error: { code: string } }).error.code).toBe('PARLEY_CSRF');
    expect((await put({ 'x-parley-csrf': 'not-the-token-000000000000000000' })).status).toBe(403);
    expect((await put({ 'x-parley-csrf': csrf })).status).toBe(200);
    // Reads need no token; another tenant's routes stay closed to this cookie.
    expect((await fetch(`${gw.url}/v1/tenants/clinic/conversations`, { headers: { cookie } })).status).toBe(200);
    expect((await fetch(`${gw.url}/v1/tenants/club/conversations`, { headers: { cookie } })).status).toBe(403);
    expect((await fetch(`${gw.url}/v1/alerts`, { headers: { cookie } })).status).toBe(403);

    const crossSite = await fetch(`${gw.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: JSON.stringify({ key: CLINIC_A }) });
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get('set-cookie')).toBeNull();

    // A session made from a stored key ends when the key is revoked.
    const made = await gw.request('POST', '/v1/tenants/clinic/keys', { key: OPERATOR, body: { label: 'temp' } });
    const temp = await fetch(`${gw.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: made.body.key.secret }) });
    const tempCookie = temp.headers.get('set-cookie')!.split(';')[0]!;
    expect((await fetch(`${gw.url}/console/session`, { headers: { cookie: tempCookie } })).status).toBe(200);
    await gw.request('DELETE', `/v1/tenants/clinic/keys/${made.body.key.id}`, { key: OPERATOR });
    expect((await fetch(`${gw.url}/console/session`, { headers: { cookie: tempCookie } })).status).toBe(401);
    expect((await fetch(`${gw.url}/v1/tenants/clinic/conversations`, { headers: { cookie: tempCookie } })).status).toBe(401);
  });

  it("keeps tenants apart: a tenant's console cannot open another tenant's conversation by URL", async () => {
    const convo = person();
    await sms(convo, 'hours?');
    const id = await conversationOf(convo);
    const page = await signIn(CLUB);
    await go(page, `#/t/clinic/conversations/${id}`);
    await sees(page, 'Not allowed');
    expect(await page.evaluate(() => document.body.innerText)).not.toContain(convo.slice(-4));
    await go(page, '#/t/clinic/overview');
    await sees(page, 'Not allowed');
    await go(page, '#/t/clinic/queue');
    await sees(page, 'Not allowed');
    // The operator switches tenants and sees both.
    const op = await signIn(OPERATOR);
    await go(op, `#/t/clinic/conversations/${id}`);
    await sees(op, `••••${convo.slice(-4)}`);
    expect(await op.$eval('#tenant-switch', (s) => [...(s as HTMLSelectElement).options].map((o) => o.value))).toEqual(['clinic', 'club', 'health']);
    expect([...page.problems, ...op.problems].filter((p) => !/403/.test(p))).toEqual([]);
    await page.browserContext().close();
    await op.browserContext().close();
  });

  it('shows the page navigated to last, when a page left earlier answers later', async () => {
    const page = await signIn(CLINIC_A);
    await go(page, '#/t/clinic/queue');
    // The overview's first request is held until the person has moved on to the conversations.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.setRequestInterception(true);
    page.on('request', (req) => {
      if (req.isInterceptResolutionHandled()) return;
      if (new URL(req.url()).pathname === '/v1/tenants/clinic') void held.then(() => req.continue());
      else void req.continue();
    });
    await page.evaluate(() => (location.hash = '#/t/clinic/overview'));
    await page.waitForFunction(() => document.title.startsWith('Overview'), { timeout: 8_000, polling: 50 });
    await go(page, '#/t/clinic/conversations');
    release();
    // The overview's request answers now; give its render the time to (wrongly) replace the page.
    await page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/tenants/clinic', { timeout: 8_000 });
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
    expect(await page.$eval('main', (m) => [(m as HTMLElement).dataset.shown, m.querySelector('h1')?.textContent])).toEqual(['#/t/clinic/conversations', 'Conversations']);
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('lists a crisis hand-off first; a person answers it on SMS, and the reply reaches Twilio', async () => {
    const calm = person();
    await sms(calm, 'hours?');
    const inCrisis = person();
    await sms(inCrisis, 'I want to end my life tonight');
    const page = await signIn(CLINIC_A);
    await go(page, '#/t/clinic/conversations');
    const first = await page.$eval('table.list tbody tr', (tr) => (tr as HTMLElement).innerText);
    expect(first).toContain(inCrisis.slice(-4));
    expect(first).toContain('crisis');
    expect(await page.evaluate(() => document.body.innerText)).not.toContain(inCrisis);
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'conversations');

    await clickText(page, 'table.list a', inCrisis.slice(-4));
    await page.waitForSelector('#reply');
    await sees(page, 'the bot is paused');
    await page.type('#reply', 'This is Ana from Harbour Clinic. I am here with you now.');
    await page.type('#reply-by', 'Ana');
    const before = twilio.sent.length;
    await page.click('form.reply button[type=submit]');
    await sees(page, 'I am here with you now.');
    await expect.poll(() => twilio.sent.slice(before).find((m) => m.to === inCrisis)?.body, { timeout: 8_000 }).toBe('This is Ana from Harbour Clinic. I am here with you now.');
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'thread');

    // Revealing the number is audited.
    await page.click('#reveal');
    await sees(page, inCrisis);
    const { rows } = await gw.gateway.db.pool.query(`SELECT actor, action FROM parley_audit WHERE tenant_id = 'clinic' AND action IN ('conversation.reveal', 'conversation.person-reply') ORDER BY seq`);
    expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(['conversation.reveal', 'conversation.person-reply']));

    // Take over a bot conversation, then hand it back.
    await go(page, `#/t/clinic/conversations/${await conversationOf(calm)}`);
    await page.click('#take-over');
    await page.waitForSelector('#hand-back');
    expect((await gw.request('GET', `/v1/tenants/clinic/conversations/${await conversationOf(calm)}/handoff`, { key: CLINIC_A })).body.handoff).toMatchObject({ state: 'human', by: expect.stringMatching(/^key:/) });
    await page.click('#hand-back');
    await page.waitForSelector('#take-over');
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('approves a held message from the review queue, and the pipeline answers it once', async () => {
    const sender = person();
    await sms(sender, "you're a worthless idiot");
    const page = await signIn(CLINIC_B);
    await go(page, '#/t/clinic/queue');
    expect(await axe(page)).toEqual([]);
    await clickText(page, 'table.list a', sender.slice(-4));
    await page.waitForSelector('button[data-verb="approve"]');
    await sees(page, "you're a worthless idiot");
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'review');
    await page.type('#decision-reason', 'venting, not abuse');
    await page.click('button[data-verb="approve"]');
    await sees(page, 'approved');
    await expect.poll(() => twilio.sent.filter((m) => m.to === sender).map((m) => m.body), { timeout: 8_000 }).toEqual(['Thanks, we will get back to you.']);
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('approves an erasure only with a second key', async () => {
    const subject = person();
    await sms(subject, 'hours?');
    const made = await gw.request('POST', '/v1/tenants/clinic/data-subjects/requests', { key: CLINIC_A, body: { type: 'erase', subject: { addresses: [subject] }, requestedBy: 'front desk', reason: 'asked by phone' } });
    expect(made.body.request.status).toBe('pending-approval');
    const sameKey = await signIn(CLINIC_A);
    await go(sameKey, `#/t/clinic/requests/${made.body.request.id}`);
    // `go` can return before the new route has rendered (the page it leaves is not "Loading" either).
    await sameKey.waitForSelector('button[data-verb="approve"]');
    await sameKey.click('button[data-verb="approve"]');
    await sees(sameKey, 'different key than the one that requested it');
    await sameKey.browserContext().close();

    const page = await signIn(CLINIC_B);
    await go(page, '#/t/clinic/requests');
    expect(await axe(page)).toEqual([]);
    await clickText(page, 'table.list a', made.body.request.id.slice(0, 8));
    await page.waitForSelector('button[data-verb="approve"]');
    await screenshot(page, 'erasure');
    await page.click('button[data-verb="approve"]');
    await expect.poll(async () => (await gw.request('GET', `/v1/tenants/clinic/data-subjects/requests/${made.body.request.id}`, { key: CLINIC_A })).body.request.status, { timeout: 15_000 }).toBe('completed');
    expect(await conversationOf(subject)).toBeUndefined();
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('retries a dead letter', async () => {
    const to = person();
    // Only this send fails: another test's send still in flight must not take the failure.
    twilio.failNext(1, '21211', { to });
    const item = await gw.gateway.services().enqueueOutbound({ tenantId: 'clinic', channel: 'twilio-sms', to, from: CLINIC_NUMBER, text: 'Your results are ready.' });
    await gw.waitForOutbox('clinic', (all) => all.some((i) => i.id === item.id && i.status === 'dead'));
    const page = await signIn(CLINIC_A);
    await go(page, '#/t/clinic/outbox');
    await page.waitForSelector(`button[data-retry="${item.id}"]`);
    expect(await axe(page)).toEqual([]);
    await page.click(`button[data-retry="${item.id}"]`);
    await gw.waitForOutbox('clinic', (all) => all.some((i) => i.id === item.id && i.status === 'sent'));
    expect(twilio.sent.filter((m) => m.to === to).map((m) => m.body)).toEqual(['Your results are ready.']);
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('previews a scheduled delivery without sending, runs it now, and shows the run', async () => {
    for (const [name, address] of [['Ada', person()], ['Ben', person()]] as const) {
      expect((await gw.request('POST', '/v1/tenants/clinic/contacts', { key: CLINIC_A, body: { name, tags: ['flu'], addresses: [{ channel: 'twilio-sms', address }] } })).status).toBe(201);
    }
    const made = await gw.request('POST', '/v1/tenants/clinic/schedules', { key: CLINIC_A, body: { name: 'Flu shots', schedule: '0 9 1 * *', timezone: 'America/New_York', channel: 'twilio-sms', audience: { tags: ['flu'] }, template: 'Hi {{name}}, flu shots are in.', respectQuietHours: false } });
    expect(made.status).toBe(201);
    const page = await signIn(CLINIC_A);
    await go(page, '#/t/clinic/contacts');
    await sees(page, 'Ada');
    expect(await axe(page)).toEqual([]);
    await go(page, '#/t/clinic/schedules');
    await clickText(page, 'table.list a', 'Flu shots');
    await page.waitForSelector('#schedule-preview');
    const before = twilio.sent.length;
    await page.click('#schedule-preview');
    await sees(page, 'This is a preview. No actual delivery will be made.');
    await sees(page, 'Hi Ada, flu shots are in.');
    expect(twilio.sent.length).toBe(before);
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'schedule');
    await page.click('#schedule-run-now');
    await expect.poll(() => twilio.sent.slice(before).map((m) => m.body).sort(), { timeout: 10_000 }).toEqual(['Hi Ada, flu shots are in.', 'Hi Ben, flu shots are in.']);
    await go(page, `#/t/clinic/schedules/${made.body.schedule.id}`);
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 1, { timeout: 8_000 });
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it('shows the WhatsApp QR code, a new one when it changes, and the session once ready', async () => {
    const page = await signIn(CLUB);
    await go(page, '#/t/club/channels');
    const client = fakeWhatsAppWeb.latest('club');
    client.emitQr('2@parley-console-first');
    await page.waitForSelector('#wa-qr', { timeout: 8_000 });
    // The element comes before its image has loaded (a data URL still decodes): wait for the picture itself.
    await page.waitForFunction(() => { const img = document.getElementById('wa-qr') as HTMLImageElement | null; return Boolean(img?.complete && img.naturalWidth > 0); }, { timeout: 8_000, polling: 50 });
    const first = await page.$eval('#wa-qr', (img) => (img as HTMLImageElement).naturalWidth);
    expect(first).toBeGreaterThan(0);
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'whatsapp-qr');
    const firstSrc = await page.$eval('#wa-qr', (img) => (img as HTMLImageElement).src);
    client.emitQr('2@parley-console-second');
    await page.waitForFunction((src: string) => (document.getElementById('wa-qr') as HTMLImageElement | null)?.src !== src, { timeout: 8_000 }, firstSrc);
    client.authenticate();
    client.becomeReady();
    await page.waitForFunction(() => !document.getElementById('wa-qr') && document.getElementById('wa-state')?.textContent?.includes('ready'), { timeout: 8_000, polling: 100 });
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it("shows the Twilio numbers with their webhook, and the cost limits in force", async () => {
    twilio.provisionNumber(CLINIC_NUMBER, { smsUrl: `${gw.url}/twilio/sms`, friendlyName: 'Front desk' });
    const page = await signIn(CLINIC_A);
    await go(page, '#/t/clinic/channels');
    await page.waitForFunction(() => /ok/.test(document.querySelector('section[aria-label="Twilio numbers"] tbody')?.textContent ?? ''), { timeout: 8_000, polling: 100 });
    const api = await gw.request('GET', '/v1/tenants/clinic/twilio-sms/numbers', { key: CLINIC_A });
    expect(api.body.numbers).toEqual([expect.objectContaining({ number: CLINIC_NUMBER, kind: 'sms', status: 'ok', smsUrl: `${gw.url}/twilio/sms`, friendlyName: 'Front desk' })]);
    expect((await gw.request('GET', '/v1/tenants/clinic/twilio-sms/numbers', { key: CLUB })).status).toBe(403);
    await go(page, '#/t/clinic/costs');
    await sees(page, 'Inbound messages per sender: 30 a minute, 500 a day');
    expect(await axe(page)).toEqual([]);
    expect(page.problems).toEqual([]);
    await page.browserContext().close();
  });

  it("shows a tenant's health answers: the library, last week's outcomes and errands, and the log filtered by errand", async () => {
    await expect.poll(async () => (await gw.request('GET', '/v1/tenants/health/medical-answers', { key: HEALTH })).body.chunks, { timeout: 30_000, interval: 100 }).toBeGreaterThan(0);
    const refill = await gw.send('health', { from: person(), text: 'can you send a refill of my metformin to the cvs on main st' }, HEALTH);
    expect(refill.replies.map((r) => r.text)).toEqual(['For refills, call the pharmacy line.']);
    const question = await gw.send('health', { from: person(), text: 'whats a normal a1c number?' }, HEALTH);
    expect(question.replies[0]?.text).toContain('Source: A1C');
    const page = await signIn(HEALTH);
    await go(page, '#/t/health/answers');
    await sees(page, '12 documents');
    expect(await page.$eval('#answers-errands', (t) => t.textContent)).toContain('refill1');
    expect(await page.$eval('#answers-outcomes', (t) => t.textContent)).toMatch(/answered1/);
    await page.select('#answers-errand', 'refill');
    await page.click('main form button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#answer-log tbody tr').length === 1, { timeout: 8_000, polling: 50 });
    expect(await page.$eval('#answer-log tbody', (t) => t.textContent)).toContain('passedrefill');
    expect(await axe(page)).toEqual([]);
    await screenshot(page, 'health-answers');
    // The log holds no text of the messages.
    expect(await page.evaluate(() => document.body.innerText)).not.toContain('metformin');
    // A tenant without medical-answers sees that it is not used, and another tenant's key may not look.
    await go(page, '#/t/clinic/answers');
    await sees(page, 'Not allowed');
    const clinic = await signIn(CLINIC_A);
    await go(clinic, '#/t/clinic/answers');
    await sees(clinic, 'Not used by this tenant.');
    expect([...page.problems, ...clinic.problems].filter((p) => !/40[34]/.test(p))).toEqual([]);
    await page.browserContext().close();
    await clinic.browserContext().close();
  });

  it('has no serious or critical accessibility problems on the other pages, and works on a phone screen', async () => {
    const page = await signIn(OPERATOR);
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    for (const view of ['overview', 'conversations', 'outbox', 'contacts', 'schedules', 'costs', 'keys', 'requests', 'channels', 'answers']) {
      await go(page, `#/t/clinic/${view}`);
      expect([view, await axe(page)]).toEqual([view, []]);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect([view, overflow <= 1]).toEqual([view, true]);
    }
    await screenshot(page, 'phone');
    expect(page.problems.filter((p) => !/404/.test(p))).toEqual([]);
    await page.browserContext().close();
  });
});

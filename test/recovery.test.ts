/**
 * Exactly-once replies under recovery: a run overtaken by the recovery sweep cannot finish its
 * message, and two instances sharing one database answer every message once, even when one of them is
 * killed mid-burst and its requests are retried on the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Redis } from 'ioredis';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants } from './fixtures/configs.js';
import { TEST_BACKEND, TEST_REDIS_URL, freshDatabase } from './backend.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { inboundSmsParams, newSid, signedSmsRequest } from './fakes/twilio-webhook.js';
import { twimlMessages } from './fixtures/twilio-twiml.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('a run overtaken by the recovery sweep', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ config: twoTenants({ pipeline: ['probe.slow', 'probe.echo'] }), catalogue });
  });
  afterAll(() => gw?.stop({ cleanup: true }));

  it('writes nothing: the message is answered once, by the newer run', async () => {
    probeControl.reset();
    const received = await gw.gateway.receive(
      { channel: 'probe-channel', to: '+15550001111', from: '+15559990001', text: 'slow:1500 race', providerMessageId: 'race-1' },
      { until: 'recorded' },
    );
    // Another instance's sweep (or this one's, with a short window) decides the run is dead while its
    // slow stage is still running.
    await new Promise((r) => setTimeout(r, 300));
    expect(await gw.gateway.recoverInbound('100 milliseconds')).toBe(1);
    const items = await gw.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === received.inboundId && i.status === 'sent'));
    // Wait until both runs have ended, then count.
    for (let i = 0; i < 100 && probeControl.currentRuns.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(probeControl.currentRuns.sort()).toEqual([false, true]);
    const mine = (await gw.outbox('acme')).filter((i) => i.inboundId === received.inboundId);
    expect(mine.map((i) => i.text)).toEqual(['acme says: slow:1500 race']);
    expect(items.filter((i) => i.inboundId === received.inboundId)).toHaveLength(1);
    expect(probeControl.sends.filter((m) => m.inboundId === received.inboundId)).toHaveLength(1);
    expect(gw.logs.some((l) => l.msg === "a newer run holds this message; this run's replies were discarded")).toBe(true);
    const { rows } = await gw.gateway.db.pool.query('SELECT status FROM parley_inbound WHERE id = $1', [received.inboundId]);
    expect(rows).toEqual([{ status: 'processed' }]);
  });

  it('keeps the claim of a live run fresh, so the regular sweep leaves it alone', async () => {
    const live = await startTestGateway({ config: twoTenants({ pipeline: ['probe.slow', 'probe.echo'] }), catalogue, recoverAfterMs: 1_000 });
    try {
      probeControl.reset();
      const received = await live.gateway.receive(
        { channel: 'probe-channel', to: '+15550001111', from: '+15559990002', text: 'slow:2500 long stage', providerMessageId: 'heartbeat-1' },
        { until: 'recorded' },
      );
      // The heartbeat (every quarter of the window) refreshes the claim while the stage runs.
      await new Promise((r) => setTimeout(r, 1_800));
      expect(await live.gateway.recoverInbound('1000 milliseconds')).toBe(0);
      await live.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === received.inboundId && i.status === 'sent'));
      expect(probeControl.currentRuns).toEqual([true]);
    } finally {
      await live.stop({ cleanup: true });
    }
  });
});

describe.skipIf(TEST_BACKEND !== 'external')('two instances on one PostgreSQL + Redis', () => {
  const PUBLIC = 'https://sms.parley.test';
  const CLINIC = '+15557654321';
  const FRONT_DESK = '+15557654322';
  let fake: FakeTwilio;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let dir: string;
  let redisUrl: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    fake = await startFakeTwilio();
    db = await freshDatabase();
    dir = mkdtempSync(join(tmpdir(), 'parley-two-'));
    // A Redis database of its own, so no other test's workers take these jobs.
    const url = new URL(TEST_REDIS_URL);
    url.pathname = '/11';
    redisUrl = url.toString();
    const redis = new Redis(redisUrl);
    await redis.flushdb();
    redis.disconnect();
    writeFileSync(
      join(dir, 'parley.yaml'),
      stringify({
        server: { port: 0, publicBaseUrl: PUBLIC },
        outbox: { attempts: 6, backoffMs: 100, concurrency: 8 },
        plugins: [{ name: 'twilio-sms', options: { apiBaseUrl: fake.baseUrl } }, 'keyword-replies'],
        tenants: [
          {
            id: 'clinic',
            pipeline: ['keyword-replies'],
            plugins: {
              'twilio-sms': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [CLINIC] },
              'keyword-replies': { defaultReply: 'got it' },
            },
          },
          {
            id: 'front-desk',
            pipeline: ['keyword-replies'],
            plugins: {
              // The default budget: replies go back inline in the TwiML answer.
              'twilio-sms': { accountSid: fake.accountSid, authToken: fake.authToken, numbers: [FRONT_DESK] },
              'keyword-replies': { defaultReply: 'noted' },
            },
          },
        ],
      }),
    );
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await fake?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  function startInstance(): Promise<{ child: ChildProcess; url: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: db.url, REDIS_URL: redisUrl };
    delete env.PARLEY_DEMO_KEY;
    const child = spawn(process.execPath, [join(ROOT, 'bin/parley.js'), 'start'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stderr!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`parley did not start: ${out}`)), 40_000);
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /Parley is ready on (http:\/\/[\d.:]+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve({ child, url: m[1]! });
        }
      });
      child.on('exit', (code) => reject(new Error(`parley exited with ${code}: ${out}`)));
    });
  }

  async function post(baseUrl: string, messageSid: string, from: string, body: string, to = CLINIC): Promise<{ status: number; replies: string[] }> {
    const req = signedSmsRequest({ baseUrl, authToken: fake.authToken, publicBaseUrl: PUBLIC, params: inboundSmsParams({ from, to, body, accountSid: fake.accountSid, messageSid }) });
    const res = await fetch(req.url, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, replies: res.status === 200 ? twimlMessages(text).map((m) => m.body) : [] };
  }

  it('stores and answers a message once when 40 copies reach both instances at once, and every copy gets a 2xx', async () => {
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const sid = newSid();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => post(i % 2 ? a.url : b.url, sid, '+15550002000', 'same one')));
    // The copies that lost the race were answered 200 too (before the fix: 500 "missing result row").
    expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    // A copy answers with the original's reply once it is written, or empty while it is still running.
    for (const r of results) expect(r.replies.every((t) => t === 'got it')).toBe(true);
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const { rows: inbound } = await pool.query(`SELECT id FROM parley_inbound WHERE provider_message_id = $1`, [sid]);
      expect(inbound).toHaveLength(1);
      const outbox = async () => (await pool.query(`SELECT status, via FROM parley_outbox WHERE inbound_id = $1`, [inbound[0].id])).rows;
      let items = await outbox();
      for (let i = 0; i < 100 && !items.some((x) => x.status === 'sent' || x.status === 'delivered'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        items = await outbox();
      }
      expect(items).toHaveLength(1);
      // One reply: in a TwiML answer, or through the REST API when the pipeline missed the budget.
      expect(fake.sent.filter((m) => m.to === '+15550002000')).toHaveLength(items[0].via === 'api' ? 1 : 0);
    } finally {
      await pool.end();
    }
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([a.child, b.child].map((c) => new Promise((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', r)))));
  }, 120_000);

  it('loses and duplicates nothing when one instance is killed mid-burst and its requests are retried on the other', async () => {
    const [a, b] = await Promise.all([startInstance(), startInstance()]);
    const before = fake.sent.length;
    const total = 800;
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const accepted = new Set<number>();
    // What each sender got back: inline in a TwiML answer that reached the load balancer, or later
    // through the REST API (the fake counts those).
    const answered = new Map<string, number>();
    let sentToA = 0;
    const fire = async (i: number) => {
      const sid = `SM${String(i).padStart(32, '0')}`;
      const from = `+1555${String(3_000_000 + i).slice(1)}`;
      const first = i % 2 === 0 ? a : b;
      if (first === a && ++sentToA === 150) a.child.kill('SIGKILL');
      // The load balancer: a connection error or a 5xx is retried on the other instance.
      for (const target of first === a ? [a, b] : [b, a]) {
        try {
          const r = await post(target.url, sid, from, `burst ${i}`, FRONT_DESK);
          if (r.status === 200) {
            accepted.add(i);
            answered.set(from, (answered.get(from) ?? 0) + r.replies.filter((t) => t === 'noted').length);
            return;
          }
        } catch {
          // connection refused or reset: the instance died; try the next one
        }
      }
    };
    const workers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < total; i += 16) await fire(i);
    });
    await Promise.all(workers);
    expect(accepted.size).toBe(total);
    // What the dead instance left (messages recorded but not finished, replies whose send job was lost)
    // is taken over by a sweep once the recovery window has passed: age them rather than wait 2 minutes.
    try {
      await pool.query(`UPDATE parley_inbound_claims SET claimed_at = now() - interval '1 hour'`);
      await pool.query(`UPDATE parley_outbox SET updated_at = now() - interval '1 hour' WHERE status IN ('pending', 'retrying', 'sending')`);
      const c = await startInstance(); // a fresh instance sweeps at start
      const { rows } = await pool.query<{ pmid: string; status: string; replies: number }>(
        `SELECT i.provider_message_id AS pmid, i.status, count(o.id)::int AS replies FROM parley_inbound i LEFT JOIN parley_outbox o ON o.inbound_id = i.id
          WHERE i.provider_message_id LIKE 'SM0000%' GROUP BY 1, 2`,
      );
      expect(rows).toHaveLength(total);
      // Wait until every message is processed with one reply, and every deferred reply has been sent.
      const deadline = Date.now() + 90_000;
      const restSends = () => fake.sent.slice(before).filter((m) => m.body === 'noted');
      for (;;) {
        const { rows: pending } = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM parley_inbound i WHERE i.provider_message_id LIKE 'SM0000%' AND (i.status <> 'processed' OR NOT EXISTS (
             SELECT 1 FROM parley_outbox o WHERE o.inbound_id = i.id AND o.status IN ('sent', 'delivered')))`,
        );
        if (pending[0]!.n === 0 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const { rows: final } = await pool.query<{ pmid: string; status: string; replies: number }>(
        `SELECT i.provider_message_id AS pmid, i.status, count(o.id)::int AS replies FROM parley_inbound i LEFT JOIN parley_outbox o ON o.inbound_id = i.id
          WHERE i.provider_message_id LIKE 'SM0000%' GROUP BY 1, 2`,
      );
      expect(final.filter((r) => r.status !== 'processed' || r.replies !== 1)).toEqual([]);
      for (const m of restSends()) answered.set(m.to, (answered.get(m.to) ?? 0) + 1);
      expect(answered.size).toBe(total);
      // The one case allowed twice: the dead instance wrote the TwiML answer but died before recording
      // that it finished, so the sweep sent it again (at-least-once: never lost, at worst repeated).
      const { rows: unconfirmed } = await pool.query<{ to: string }>(`SELECT to_address AS to FROM parley_outbox WHERE details->>'inline' = 'unconfirmed'`);
      const repeatable = new Set(unconfirmed.map((r) => r.to));
      expect([...answered].filter(([to, n]) => n !== 1 && !(n === 2 && repeatable.has(to)))).toEqual([]);
      console.log(`[two instances] ${total} messages, ${[...answered.values()].filter((n) => n === 2).length} answered twice after an unconfirmed inline answer`);
      for (const x of [b, c]) x.child.kill('SIGTERM');
    } finally {
      await pool.end();
    }
  }, 180_000);
});

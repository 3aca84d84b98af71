/**
 * Uniform paging of list routes (core/http/paging.ts): `?limit=&cursor=` in, `next` out. Rows that
 * tie on the sort time (or differ by a microsecond, below what a JS Date holds) come once each; a
 * cursor that was altered or belongs to another list is a 400; the old parameters still answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';

const OPERATOR = 'op-paging-key-0123456789';
const ACME = 'acme-paging-key-0123456789';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OPERATOR] },
      plugins: ['http', 'keyword-replies', 'contacts', 'moderation'],
      tenants: [
        {
          id: 'acme',
          apiKeys: [ACME],
          pipeline: ['keyword-replies'],
          plugins: { http: {}, 'keyword-replies': { rules: [], defaultReply: 'Hello.' }, contacts: {}, moderation: {} },
        },
      ],
    },
    logLevel: 'warn',
  });
  // Seven people write: seven conversations and seven replies in the outbox.
  for (let i = 0; i < 7; i++) expect((await gw.send('acme', { from: `person-${i}`, text: 'hi' })).status).toBe(200);
  // Ties on the sort time: four rows at one instant, three one microsecond later (one JS millisecond).
  const db = gw.gateway.db.pool;
  for (const [table, column] of [['parley_outbox', 'created_at'], ['parley_conversations', 'last_message_at']] as const) {
    await db.query(
      `UPDATE ${table} t SET ${column} = CASE WHEN n <= 4 THEN timestamptz '2026-11-30T10:00:00.123456Z' ELSE timestamptz '2026-11-30T10:00:00.123457Z' END
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ${table} WHERE tenant_id = 'acme') o WHERE t.id = o.id`,
    );
  }
  for (let i = 0; i < 5; i++) {
    const r = await gw.request('POST', '/v1/tenants/acme/contacts', { key: ACME, body: { name: `Contact ${i}`, addresses: [{ channel: 'http', address: `contact-${i}` }] } });
    expect(r.status).toBe(201);
  }
  await db.query(`UPDATE contacts SET created_at = timestamptz '2026-11-30T09:00:00Z' WHERE tenant_id = 'acme'`);
}, 120_000);

afterAll(() => gw?.stop({ cleanup: true }));

/** Follows `next` from `first` to the end: every page's items, by `field`. */
async function pageThrough(first: string, field: string): Promise<{ pages: string[][]; links: string[] }> {
  const pages: string[][] = [];
  const links: string[] = [];
  let path: string | null = first;
  while (path) {
    const r = await gw.request('GET', path, { key: ACME });
    expect(r.status, r.text).toBe(200);
    pages.push((r.body[field] as { id: string }[]).map((x) => x.id));
    links.push(path);
    path = r.body.next as string | null;
    expect(pages.length).toBeLessThan(20);
  }
  return { pages, links };
}

describe('paging with a cursor', () => {
  it('pages through the outbox, where rows tie on their time, returning every row once', async () => {
    const all = (await gw.request('GET', '/v1/tenants/acme/outbox?limit=500', { key: ACME })).body.outbox.map((x: { id: string }) => x.id) as string[];
    expect(all).toHaveLength(7);
    const { pages, links } = await pageThrough('/v1/tenants/acme/outbox?limit=3&status=sent', 'outbox');
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(all);
    // The link keeps the filters and the limit.
    expect(links[1]).toMatch(/^\/v1\/tenants\/acme\/outbox\?limit=3&status=sent&cursor=[A-Za-z0-9_-]+$/);
  });

  it('pages through conversations and dead letters the same way; next is null on the last page', async () => {
    const { pages } = await pageThrough('/v1/tenants/acme/conversations?limit=2', 'conversations');
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    expect(new Set(pages.flat()).size).toBe(7);
    const exact = await gw.request('GET', '/v1/tenants/acme/conversations?limit=7', { key: ACME });
    expect(exact.body.conversations).toHaveLength(7);
    expect(exact.body.next).toBeNull();
    const none = await gw.request('GET', '/v1/tenants/acme/dead-letters', { key: ACME });
    expect(none.body).toEqual({ deadLetters: [], next: null });
  });

  it('pages through the messages of a conversation, older ones on the next page', async () => {
    const conversation = (await gw.request('GET', '/v1/tenants/acme/conversations?limit=1', { key: ACME })).body.conversations[0].id as string;
    const { pages } = await pageThrough(`/v1/tenants/acme/conversations/${conversation}/messages?limit=1`, 'messages');
    expect(pages.map((p) => p.length)).toEqual([1, 1]);
    expect(new Set(pages.flat()).size).toBe(2);
  });

  it('pages a plugin list (contacts, all created at one instant) with its filters', async () => {
    const { pages } = await pageThrough('/v1/tenants/acme/contacts?limit=2&q=Contact', 'contacts');
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(new Set(pages.flat()).size).toBe(5);
  });

  it('pages a list kept in memory (tenants, plugins) by its key', async () => {
    const plugins = await gw.request('GET', '/v1/plugins?limit=2', { key: OPERATOR });
    expect(plugins.body.plugins.map((p: { name: string }) => p.name)).toEqual(['contacts', 'http']);
    const rest = await gw.request('GET', plugins.body.next, { key: OPERATOR });
    expect(rest.body.plugins.map((p: { name: string }) => p.name)).toEqual(['keyword-replies', 'moderation']);
    expect(rest.body.next).toBeNull();
  });
});

describe('a cursor is opaque and checked', () => {
  it('answers 400 to a cursor that was altered, is not base64url JSON, or names another list', async () => {
    const first = await gw.request('GET', '/v1/tenants/acme/outbox?limit=2', { key: ACME });
    const cursor = new URL(first.body.next, 'http://x').searchParams.get('cursor')!;
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    const forged = (value: unknown[]) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const bad = [
      `${cursor.slice(0, -2)}!!`, // not base64url
      cursor.slice(3), // shifted: not JSON
      forged(['conversations', ...decoded.slice(1)]), // another list's
      forged([decoded[0], 'yesterday', decoded[2]]), // not a time
      forged([decoded[0], '-99999999999999999', decoded[2]]), // before PostgreSQL's first timestamp
      forged([decoded[0], decoded[1], "x' OR 1=1 --"]), // not an id
      forged([decoded[0], decoded[1]]), // a key too short
      forged({ 0: 'outbox' } as never),
      'A'.repeat(2000),
    ];
    for (const c of bad) {
      const r = await gw.request('GET', `/v1/tenants/acme/outbox?limit=2&cursor=${encodeURIComponent(c)}`, { key: ACME });
      expect(r.status, c).toBe(400);
      expect(r.body.error.code).toBe('PARLEY_BAD_REQUEST');
    }
    // A plugin's list refuses the kernel's cursor too.
    const contacts = await gw.request('GET', `/v1/tenants/acme/contacts?cursor=${cursor}`, { key: ACME });
    expect(contacts.status).toBe(400);
    // A time far ahead is a valid key: a page from there, not a database error.
    const far = await gw.request('GET', `/v1/tenants/acme/outbox?cursor=${forged([decoded[0], '99999999999999999', decoded[2]])}`, { key: ACME });
    expect(far.status).toBe(200);
    // The untouched one works.
    expect((await gw.request('GET', `/v1/tenants/acme/outbox?limit=2&cursor=${cursor}`, { key: ACME })).status).toBe(200);
  });

  it('caps limit and says so', async () => {
    const r = await gw.request('GET', '/v1/tenants/acme/outbox?limit=501', { key: ACME });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('limit');
  });
});

describe('the old ways of paging still answer within /v1', () => {
  it('before (a time) on the outbox', async () => {
    const r = await gw.request('GET', `/v1/tenants/acme/outbox?before=${encodeURIComponent('2026-11-30T10:00:00.124Z')}`, { key: ACME });
    expect(r.status).toBe(200);
    expect(r.body.outbox).toHaveLength(7);
    const older = await gw.request('GET', `/v1/tenants/acme/outbox?before=${encodeURIComponent('2026-11-30T10:00:00.123Z')}`, { key: ACME });
    expect(older.body.outbox).toHaveLength(0);
  });

  it('offset on contacts (and its next link continues from where the page ended), but not with a cursor', async () => {
    const r = await gw.request('GET', '/v1/tenants/acme/contacts?limit=2&offset=2', { key: ACME });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ count: 2, total: 5, offset: 2 });
    const all = (await gw.request('GET', '/v1/tenants/acme/contacts', { key: ACME })).body.contacts.map((c: { id: string }) => c.id);
    expect(r.body.contacts.map((c: { id: string }) => c.id)).toEqual(all.slice(2, 4));
    expect(r.body.next).not.toContain('offset=');
    const rest = await gw.request('GET', r.body.next, { key: ACME });
    expect(rest.body.contacts.map((c: { id: string }) => c.id)).toEqual(all.slice(4));
    const both = await gw.request('GET', `${r.body.next}&offset=1`, { key: ACME });
    expect(both.status).toBe(400);
  });
});

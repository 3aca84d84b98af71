/**
 * The CRM plugin on its own: its texts and CSV as pure functions, then loaded by module path into a
 * real gateway (the http channel, contacts, a fixed clock): every route's tenant isolation, the
 * owner's commands, and its data-subject provider through the kernel's export and erasure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { startTestGateway, type TestGateway } from 'parley/testing';
import { scheduleText, summaryText, toCsv } from './summaries.js';
import type { Appointment } from './store.js';

const NOW = new Date('2026-12-01T15:00:00Z'); // 10:00 in New York, a Tuesday
const appointment = (o: Partial<Appointment>): Appointment => ({ id: 'a', tenantId: 't', contactId: null, customerName: 'Ana', phone: '+15550001', serviceType: 'leak repair', emergency: false, startsAt: NOW, status: 'SCHEDULED', notes: null, createdAt: NOW, updatedAt: NOW, ...o });

describe('crm texts and CSV', () => {
  it('writes tomorrow\'s schedule in the tenant time zone, leaving cancelled jobs out', () => {
    const day = new Date('2026-12-02T15:00:00Z');
    const text = scheduleText([appointment({ startsAt: new Date('2026-12-02T14:00:00Z'), status: 'CONFIRMED' }), appointment({ customerName: 'Bo', startsAt: new Date('2026-12-02T18:30:00Z'), emergency: true }), appointment({ customerName: 'Cy', status: 'CANCELLED' })], day, 'America/New_York');
    expect(text).toBe('Tomorrow (Wed, Dec 2): 2 jobs.\n9:00 AM Ana, leak repair (confirmed)\n1:30 PM Bo, leak repair (EMERGENCY)');
    expect(scheduleText([], day, 'America/New_York')).toBe('Tomorrow (Wed, Dec 2): no jobs booked.');
  });

  it("counts today's jobs, emergencies, done, cancelled and reschedules", () => {
    const text = summaryText([appointment({ status: 'COMPLETED' }), appointment({ customerName: 'Bo', emergency: true, status: 'PENDING_RESCHEDULE', startsAt: new Date('2026-12-01T20:00:00Z') }), appointment({ status: 'CANCELLED' })], NOW, 'America/New_York');
    expect(text).toBe('Today (Tue, Dec 1): 2 jobs, 1 emergency, 1 done, 1 cancelled, 1 waiting to reschedule.\n3:00 PM Bo, leak repair (EMERGENCY, wants to reschedule)');
  });

  it('quotes CSV fields as RFC 4180 says and keeps formulas out of spreadsheets, phone numbers intact', () => {
    expect(toCsv(['a', 'b', 'c', 'd'], [['x, y', 'say "hi"', '=HYPERLINK("x")', '+15551234567'], ['-5', '@cmd', '+1+1', null]])).toBe('a,b,c,d\r\n"x, y","say ""hi""","\'=HYPERLINK(""x"")",+15551234567\r\n-5,\'@cmd,\'+1+1,\r\n');
  });
});

describe('crm loaded by module path into a real gateway', () => {
  let gw: TestGateway;
  const KEYS = { shop: 'shop-key-0123456789', other: 'other-key-0123456789' };
  const OPERATOR = 'operator-key-0123456789';
  const OWNER = '+15550100999';
  const tenant = (id: string) => ({
    id,
    timezone: 'America/New_York',
    apiKeys: [KEYS[id as keyof typeof KEYS]],
    pipeline: ['contacts', 'crm', 'keyword-replies'],
    plugins: { http: {}, contacts: { defaultChannel: 'http' }, crm: { ownerNumbers: [OWNER], contactChannel: 'http' }, 'keyword-replies': { defaultReply: 'Thanks!' } },
  });
  beforeAll(async () => {
    gw = await startTestGateway({
      baseDir: fileURLToPath(new URL('.', import.meta.url)),
      config: { operator: { apiKeys: [OPERATOR] }, plugins: ['http', 'contacts', { name: 'crm', module: './index.ts' }, 'keyword-replies'], tenants: [tenant('shop'), tenant('other')] },
    });
  });
  afterAll(() => gw?.stop({ cleanup: true }));

  let id: string;
  it('books through the API, and answers the owner\'s "schedule tomorrow" by text', async () => {
    const startsAt = new Date(Date.now() + 86_400_000);
    const made = await gw.request('POST', '/v1/tenants/shop/crm/appointments', { key: KEYS.shop, body: { customer: { phone: '+15550100001', name: 'Ana Ruiz' }, serviceType: 'boiler service', startsAt: startsAt.toISOString() } });
    expect(made.status).toBe(201);
    id = made.body.appointment.id;
    const r = await gw.send('shop', { from: OWNER, text: 'Schedule tomorrow' }, KEYS.shop);
    expect(r.replies.map((x) => x.text).join('\n')).toContain('Ana Ruiz, boiler service');
    // Anyone else saying it gets the rest of the pipeline.
    expect((await gw.send('shop', { from: '+15550100002', text: 'schedule tomorrow' }, KEYS.shop)).replies.map((x) => x.text)).toEqual(['Thanks!']);
  });

  it('every route: 401 without a key, 403 with another tenant\'s key, the operator key works', async () => {
    const routes: [string, string, unknown?][] = [
      ['POST', '/v1/tenants/shop/crm/appointments', { customer: { phone: '+15550100003' }, serviceType: 'x', startsAt: new Date(Date.now() + 3600_000).toISOString() }],
      ['GET', '/v1/tenants/shop/crm/appointments'],
      ['GET', `/v1/tenants/shop/crm/appointments/${id}`],
      ['PATCH', `/v1/tenants/shop/crm/appointments/${id}`, { notes: 'gate code 1234' }],
      ['GET', '/v1/tenants/shop/crm/owner/schedule/tomorrow'],
      ['GET', '/v1/tenants/shop/crm/schedule-tomorrow'],
      ['GET', '/v1/tenants/shop/crm/owner/summary/today'],
      ['GET', '/v1/tenants/shop/crm/owner/reschedules'],
      ['GET', '/v1/tenants/shop/crm/owner/service-mix'],
      ['GET', '/v1/tenants/shop/crm/owner/export/service-mix.csv'],
      ['GET', '/v1/tenants/shop/crm/owner/export/appointments.csv'],
    ];
    for (const [method, path, body] of routes) {
      const opts = body === undefined ? {} : { body };
      expect((await gw.request(method, path, opts)).status, `${method} ${path} without a key`).toBe(401);
      expect((await gw.request(method, path, { ...opts, key: KEYS.other })).status, `${method} ${path} with another tenant's key`).toBe(403);
      expect((await gw.request(method, path, { ...opts, key: OPERATOR })).status, `${method} ${path} with the operator key`).toBeLessThan(300);
    }
    expect((await gw.request('GET', `/v1/tenants/other/crm/appointments/${id}`, { key: KEYS.other })).status).toBe(404);
    expect((await gw.request('PATCH', `/v1/tenants/shop/crm/appointments/${id}`, { key: KEYS.shop, body: {} })).status).toBe(400);
    expect((await gw.request('GET', '/v1/tenants/shop/crm/appointments/not-a-uuid', { key: KEYS.shop })).status).toBe(400);
    expect((await gw.request('GET', '/v1/tenants/shop/crm/appointments?cursor=forged', { key: KEYS.shop })).status).toBe(400);
  });

  it('pages appointments with limit and next', async () => {
    const first = await gw.request('GET', '/v1/tenants/shop/crm/appointments?limit=1', { key: KEYS.shop });
    expect(first.body.appointments).toHaveLength(1);
    const second = await gw.request('GET', first.body.next, { key: KEYS.shop });
    expect(second.body.appointments).toHaveLength(1);
    expect(second.body.appointments[0].id).not.toBe(first.body.appointments[0].id);
    expect(second.body.next).toBeNull();
  });

  it("exports and erases a person's appointments through the kernel's data-subject requests, and no one else's", async () => {
    const subject = { tenantId: 'shop', addresses: ['+15550100001'] };
    const exported = await gw.gateway.exportSubject(subject);
    const crm = exported.find((e) => e.provider === 'crm.appointments')!;
    expect(crm.records).toEqual([expect.objectContaining({ kind: 'appointment', customerName: 'Ana Ruiz', serviceType: 'boiler service', notes: 'gate code 1234' })]);
    const erased = await gw.gateway.eraseSubject(subject, 'test');
    expect(erased['crm.appointments']).toBe(1);
    expect((await gw.request('GET', `/v1/tenants/shop/crm/appointments/${id}`, { key: KEYS.shop })).status).toBe(404);
    expect((await gw.request('GET', '/v1/tenants/shop/crm/appointments', { key: KEYS.shop })).body.appointments).toHaveLength(1);
  });
});

/**
 * dsar with the contacts plugin: a request may name the person by `contactId`; contacts provides the
 * `contacts.resolver` dsar looks for, so the request covers every address of that contact, and an
 * unknown contact is a 404, not a request about nobody.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { hashAddress } from '../core/logger.js';

const KEY = 'key-dsar-contacts-0123456789';
let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({
    config: {
      plugins: ['http', 'contacts', 'dsar'],
      tenants: [{ id: 'clinic', apiKeys: [KEY], pipeline: ['contacts'], plugins: { http: {}, contacts: {}, dsar: { export: { requireApproval: false } } } }],
    },
  });
});
afterAll(() => gw?.stop({ cleanup: true }));

describe('a data-subject request by contact id', () => {
  it('covers every address of the contact', async () => {
    const created = await gw.request('POST', '/v1/tenants/clinic/contacts', {
      key: KEY,
      body: { name: 'Ana', addresses: [{ channel: 'http', address: 'ana-http' }, { channel: 'twilio-sms', address: '+15550107001' }] },
    });
    expect(created.status).toBe(201);
    await gw.send('clinic', { from: 'ana-http', text: 'hello' }, KEY);
    const r = await gw.request('POST', '/v1/tenants/clinic/data-subjects/requests', { key: KEY, body: { type: 'export', subject: { contactId: created.body.contact.id }, requestedBy: 'Dana' } });
    expect(r.status).toBe(201);
    const request = (await gw.request('GET', `/v1/tenants/clinic/data-subjects/requests/${r.body.id}`, { key: KEY })).body;
    expect(request.request.contactId).toBe(created.body.contact.id);
    // Both addresses, in the forms they may be stored under, are in the request (as hashes only).
    expect(request.request.subjectHashes).toEqual(expect.arrayContaining([hashAddress('ana-http'), hashAddress('+15550107001')]));
    expect(JSON.stringify(request)).not.toContain('15550107001');
  });

  it('refuses a contact that does not exist', async () => {
    const r = await gw.request('POST', '/v1/tenants/clinic/data-subjects/requests', { key: KEY, body: { type: 'export', subject: { contactId: '00000000-0000-4000-8000-000000000000' }, requestedBy: 'Dana' } });
    expect(r.status).toBe(404);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants } from './fixtures/configs.js';
import { hashAddress } from '../core/logger.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ config: twoTenants(), catalogue });
});
afterAll(() => gw?.stop({ cleanup: true }));

describe("the kernel's data-subject provider", () => {
  it("exports one person's conversations, messages, replies and consent, and nobody else's", async () => {
    await gw.send('acme', { from: '+15550100001', text: 'my knee hurts' });
    await gw.send('acme', { from: '+15550100002', text: 'someone else' });
    await gw.send('globex', { from: '+15550100001', text: 'other tenant' });
    await gw.gateway.consent.set({ tenantId: 'acme', address: 'whatsapp:+15550100001', status: 'opted-out', source: 'test' });
    const exported = await gw.gateway.exportSubject({ tenantId: 'acme', addresses: ['+15550100001'] });
    const core = exported.find((e) => e.provider === 'core')!;
    expect(core.about.purpose).toBeTruthy();
    const kinds = core.records.map((r) => `${r.kind}:${(r.text as string) ?? r.status ?? ''}`);
    expect(kinds).toContain('message-received:my knee hurts');
    expect(kinds).toContain('message-sent:acme says: my knee hurts');
    expect(kinds).toContain('consent:opted-out');
    expect(JSON.stringify(core.records)).not.toContain('someone else');
    expect(JSON.stringify(core.records)).not.toContain('other tenant');
  });

  it('erases the messages but keeps the opt-out, and audits the request with a hash only', async () => {
    const erased = await gw.gateway.eraseSubject({ tenantId: 'acme', addresses: ['+15550100001'] }, 'test-operator');
    expect(erased.core).toBeGreaterThanOrEqual(3);
    const after = await gw.gateway.exportSubject({ tenantId: 'acme', addresses: ['+15550100001'] });
    const records = after.find((e) => e.provider === 'core')!.records;
    expect(records.map((r) => r.kind)).toEqual(['consent']);
    expect(await gw.gateway.consent.isOptedOut('acme', '+15550100001')).toBe(true);
    const { rows } = await gw.gateway.db.pool.query(`SELECT subject_hash, detail FROM parley_audit WHERE action = 'data-subject.erase'`);
    expect(rows[0].subject_hash).toMatch(/^ph_/);
    expect(JSON.stringify(rows)).not.toContain('5550100001');
    const other = await gw.gateway.exportSubject({ tenantId: 'globex', addresses: ['+15550100001'] });
    expect(JSON.stringify(other)).toContain('other tenant');
  });
});

describe("the kernel's provider for parked webhooks", () => {
  const person = '+15550100077';
  const payload = { entry: [{ changes: [{ value: { contacts: [{ wa_id: person.slice(1) }], messages: [{ from: person.slice(1), id: 'x'.repeat(2000), text: { body: 'my knee hurts' } }] } }] }] };

  it('exports the parked deliveries naming the person, with addresses only as hashes, and nobody else’s', async () => {
    await gw.gateway.services().park({ channel: 'whatsapp-cloud', tenantId: 'acme', reason: 'message: id over 1 kB', payload, addresses: [person] });
    // A delivery the channel could not name the person in: found by the hash of Meta's wa_id (no "+").
    await gw.gateway.services().park({ channel: 'whatsapp-cloud', tenantId: 'acme', reason: 'status: timestamp out of range', payload: { statuses: [{ recipient_id: person.slice(1) }] } });
    await gw.gateway.services().park({ channel: 'whatsapp-cloud', tenantId: 'acme', reason: 'someone else', payload: { from: '15550100078' }, addresses: ['+15550100078'] });
    await gw.gateway.services().park({ channel: 'whatsapp-cloud', tenantId: 'globex', reason: 'other tenant', payload, addresses: [person] });
    const exported = await gw.gateway.exportSubject({ tenantId: 'acme', addresses: [person] });
    const records = exported.find((e) => e.provider === 'core.parked-webhooks')!.records;
    expect(records).toEqual([
      expect.objectContaining({ kind: 'parked-webhook', channel: 'whatsapp-cloud', reason: 'message: id over 1 kB', addressHashes: expect.arrayContaining([hashAddress(person)]), parkedAt: expect.any(Date) }),
      expect.objectContaining({ reason: 'status: timestamp out of range', addressHashes: [hashAddress(person.slice(1))] }),
    ]);
    expect(records[0]!.payload).toContain(hashAddress(person));
    expect(JSON.stringify(records)).not.toContain('5550100077');
  });

  it('erases them, leaving other people and other tenants alone', async () => {
    const erased = await gw.gateway.eraseSubject({ tenantId: 'acme', addresses: [person] }, 'test-operator');
    expect(erased['core.parked-webhooks']).toBe(2);
    const { rows } = await gw.gateway.db.pool.query<{ tenant_id: string; reason: string }>(`SELECT tenant_id, reason FROM parley_parked_webhooks ORDER BY reason`);
    expect(rows).toEqual([
      { tenant_id: 'globex', reason: 'other tenant' },
      { tenant_id: 'acme', reason: 'someone else' },
    ]);
  });
});

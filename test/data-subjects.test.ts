import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants } from './fixtures/configs.js';

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

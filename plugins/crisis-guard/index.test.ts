/**
 * crisis-guard end to end on the embedded backend: the crisis reply, the alert, the handoff, the
 * audit row, an opted-out sender, pass-through of ordinary messages, and operator review.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from 'parley/testing';

const KEYS = { acme: 'key-acme-crisis-0123456789', globex: 'key-globex-crisis-0123456789', operator: 'key-operator-crisis-0123456789' };
const pipeline = ['crisis-guard', 'keyword-replies'];
let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [KEYS.operator] },
      server: { publicBaseUrl: 'https://parley.example' },
      plugins: ['http', 'keyword-replies', 'crisis-guard'],
      tenants: [
        { id: 'acme', name: 'Acme Clinic', apiKeys: [KEYS.acme], pipeline, plugins: { http: {}, 'keyword-replies': { defaultReply: 'later stage answered' }, 'crisis-guard': {} } },
        {
          id: 'globex', apiKeys: [KEYS.globex], pipeline,
          plugins: { http: {}, 'keyword-replies': { defaultReply: 'globex answered' }, 'crisis-guard': { country: 'MX', numbers: { MX: { emergency: '911', crisisLine: '800 911 2000' } }, handoff: false } },
        },
      ],
    },
  });
});
afterAll(() => gw?.stop({ cleanup: true }));

const send = (tenant: 'acme' | 'globex', from: string, text: string) => gw.send(tenant, { from, text }, KEYS[tenant]);
const detections = async (tenant: string, key: string) => gw.request('GET', `/v1/tenants/${tenant}/crisis-detections`, { key });

describe('a message in crisis', () => {
  const from = '+15558880001';
  let result: Awaited<ReturnType<typeof send>>;
  beforeAll(async () => {
    result = await send('acme', from, "I don't want to be alive anymore");
  });

  it('gets the crisis reply with the current numbers at once', () => {
    const crisis = result.replies.find((r) => r.text.includes('988'));
    expect(crisis).toMatchObject({ status: 'sent' });
    expect(crisis!.text).toContain('911');
    expect(crisis!.text).toContain('741741');
  });

  it('still goes through later stages, which see the crisis annotation', async () => {
    const record = (await gw.request('GET', `/v1/tenants/acme/messages/${result.message.id}`, { key: KEYS.acme })).body.message;
    expect(record.stages.map((s: { stage: string }) => s.stage)).toEqual(['crisis-guard', 'keyword-replies']);
    expect(record.annotations.crisis).toMatchObject({ categories: ['suicidal_ideation'], language: 'en', detectionId: expect.any(String) });
    expect(result.replies[0]!.text).toContain('988');
  });

  it('raises a critical alert with the tenant, a hashed number and a link, never the number or the text', async () => {
    const alerts = (await gw.request('GET', '/v1/alerts', { key: KEYS.operator })).body.alerts as { severity: string; tenantId: string; details: Record<string, unknown> }[];
    const alert = alerts.find((a) => a.details.messageId === result.message.id)!;
    expect(alert).toMatchObject({ severity: 'critical', tenantId: 'acme', details: { tenant: 'acme', from: expect.stringMatching(/^ph_/) } });
    expect(alert.details.link).toBe(`https://parley.example/v1/tenants/acme/conversations/${result.message.conversationId}/messages`);
    const logged = JSON.stringify(alerts) + JSON.stringify(gw.logs.filter((l) => JSON.stringify(l).includes('crisis')));
    expect(logged).not.toContain('5558880001');
    expect(logged).not.toContain('want to be alive');
  });

  it('hands the conversation to a person until an operator gives it back', async () => {
    const handoff = await gw.request('GET', `/v1/tenants/acme/conversations/${result.message.conversationId}/handoff`, { key: KEYS.acme });
    expect(handoff.body.handoff).toMatchObject({ state: 'human', by: 'stage:crisis-guard' });
    const quiet = await send('acme', from, 'hello?');
    expect(quiet.replies).toEqual([]);
    const again = await send('acme', from, 'i still want to die');
    expect(again.replies.map((r) => r.text).join()).toContain('988');
    await gw.request('PUT', `/v1/tenants/acme/conversations/${result.message.conversationId}/handoff`, { key: KEYS.operator, body: { state: 'bot' } });
    expect((await send('acme', from, 'thanks, feeling safer')).replies.map((r) => r.text)).toEqual(['later stage answered']);
  });

  it('leaves an audit row with what matched, not the text, and counts it', async () => {
    const list = (await detections('acme', KEYS.acme)).body.detections as Record<string, unknown>[];
    const row = list.find((d) => d.messageId === result.message.id)!;
    expect(row).toMatchObject({ tenantId: 'acme', conversationId: result.message.conversationId, categories: ['suicidal_ideation'], language: 'en', handedOff: true, falsePositive: null });
    expect(row.ruleIds).toContain('suicide.not-live');
    expect(JSON.stringify(list)).not.toContain('alive anymore');
    expect(await gw.metrics()).toMatch(/parley_crisis_detections_total\{tenant="acme",category="suicidal_ideation",language="en"\} [1-9]/);
  });
});

describe('senders and tenants', () => {
  it('reaches a sender who opted out, because they wrote to us', async () => {
    const from = '+15558880002';
    await gw.gateway.consent.set({ tenantId: 'acme', address: from, status: 'opted-out', source: 'test' });
    const r = await send('acme', from, 'my dad just collapsed and isnt breathing');
    expect(r.replies.find((x) => x.text.includes('911'))).toMatchObject({ status: 'sent' });
    // The consent exception is claimed only for the opted-out sender; other crisis replies take the ordinary path.
    const items = await gw.outbox('acme');
    expect(items.find((i) => i.to === from && i.text.includes('911'))!.options).toMatchObject({ crisisGuard: true, consentNotice: true });
    expect(items.find((i) => i.to === '+15558880001' && i.text.includes('988'))!.options).not.toHaveProperty('consentNotice');
  });

  it('answers in Spanish with the numbers of the tenant’s country, without handing off when the tenant says not to', async () => {
    const r = await send('globex', '+5215550000003', 'ya no quiero vivir, no aguanto más');
    expect(r.replies[0]!.text).toContain('800 911 2000');
    expect(r.replies[0]!.text).toMatch(/^Si usted/);
    const handoff = await gw.request('GET', `/v1/tenants/globex/conversations/${r.message.conversationId}/handoff`, { key: KEYS.globex });
    expect(handoff.body.handoff.state).toBe('bot');
  });

  it('passes a message that is not a crisis untouched to later stages', async () => {
    const r = await send('acme', '+15558880004', 'this traffic is killing me');
    expect(r.replies.map((x) => x.text)).toEqual(['later stage answered']);
    const record = (await gw.request('GET', `/v1/tenants/acme/messages/${r.message.id}`, { key: KEYS.acme })).body.message;
    expect(record.annotations.crisis).toBeUndefined();
    expect(record.stages[0]).toMatchObject({ stage: 'crisis-guard', outcome: 'passed' });
  });
});

describe('operator review', () => {
  it('marks a detection a false positive once, audited and counted', async () => {
    const r = await send('acme', '+15558880005', 'i want to hurt someone in this video game');
    const id = r.message.id;
    const row = ((await detections('acme', KEYS.acme)).body.detections as { id: string; messageId: string }[]).find((d) => d.messageId === id)!;
    const marked = await gw.request('POST', `/v1/tenants/acme/crisis-detections/${row.id}/false-positive`, { key: KEYS.acme, body: { note: 'game talk' } });
    expect(marked.status).toBe(200);
    expect(marked.body.detection.falsePositive).toMatchObject({ by: expect.stringMatching(/^key:/), note: 'game talk' });
    const again = await gw.request('POST', `/v1/tenants/acme/crisis-detections/${row.id}/false-positive`, { key: KEYS.operator, body: {} });
    expect(again.body.detection.falsePositive.note).toBe('game talk');
    expect(await gw.metrics()).toMatch(/parley_crisis_false_positives_total\{tenant="acme",category="violence_danger"\} 1\n/);
    const onlyFalse = (await gw.request('GET', '/v1/tenants/acme/crisis-detections?falsePositive=true', { key: KEYS.operator })).body.detections;
    expect(onlyFalse.map((d: { id: string }) => d.id)).toEqual([row.id]);
  });

  it("refuses another tenant's key, and another tenant's ids under its own tenant", async () => {
    expect((await detections('acme', KEYS.globex)).status).toBe(403);
    const row = ((await detections('acme', KEYS.acme)).body.detections as { id: string }[])[0]!;
    expect((await gw.request('POST', `/v1/tenants/acme/crisis-detections/${row.id}/false-positive`, { key: KEYS.globex, body: {} })).status).toBe(403);
    expect((await gw.request('POST', `/v1/tenants/globex/crisis-detections/${row.id}/false-positive`, { key: KEYS.globex, body: {} })).status).toBe(404);
  });

  it('exports and erases the detections of one person’s conversations', async () => {
    const person = '+15558880006';
    await send('acme', person, 'my throat is closing up after eating shrimp');
    const exported = await gw.gateway.exportSubject({ tenantId: 'acme', addresses: [person] });
    expect(exported.find((e) => e.provider === 'crisis-guard.detections')!.records).toEqual([expect.objectContaining({ kind: 'crisis-detection', categories: ['breathing_anaphylaxis'] })]);
    const erased = await gw.gateway.eraseSubject({ tenantId: 'acme', addresses: [person] }, 'test');
    expect(erased['crisis-guard.detections']).toBe(1);
    const after = await gw.gateway.exportSubject({ tenantId: 'acme', addresses: [person] });
    expect(after.find((e) => e.provider === 'crisis-guard.detections')!.records).toEqual([]);
  });
});

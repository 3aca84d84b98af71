/**
 * Reply stages: every outgoing message of a tenant that lists them (replies, inline or queued, and
 * sends that are not replies) runs through them before the outbox; consent is the kernel's, after them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { probeControl } from './fixtures/probe-plugins.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';
import { Gateway } from '../core/gateway.js';
import { parseConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { builtinPlugins } from '../config/builtins.js';
import { stringify } from 'yaml';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway({ config: twoTenants({ pipeline: ['probe.echo'], replyPipeline: ['probe.redact', 'probe.screen', 'probe.meter'] }), catalogue });
});
afterAll(() => gw?.stop({ cleanup: true }));
beforeEach(() => probeControl.reset());

const receive = (text: string, from: string, options: Parameters<TestGateway['gateway']['receive']>[1] = {}) =>
  gw.gateway.receive({ channel: 'probe-channel', to: '+15550001111', from, text, providerMessageId: `${from}-${text}-${Math.random()}` }, { inline: { budgetMs: 5_000 }, ...options });

describe('reply stages', () => {
  it('rewrite a reply before it is stored, so the inline answer carries the final text', async () => {
    const r = await gw.send('acme', { from: 'alice', text: 'my secret' });
    expect(r.replies.map((x) => x.text)).toEqual(['acme says: my [redacted]']);
    // Settled once the response finished, a moment after the client has it.
    const items = await gw.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === r.message.id && i.status !== 'sending'));
    const item = items.find((i) => i.inboundId === r.message.id)!;
    expect(item).toMatchObject({ status: 'sent', via: 'inline', details: { annotations: { 'probe.redacted': true } } });
    expect(probeControl.outgoing).toEqual([{ key: `reply:${r.message.id}:0`, reply: true, text: 'acme says: my [redacted]' }]);
  });

  it('a reply or rewrite with NUL or a lone surrogate is stored with U+FFFD, and the message is processed', async () => {
    const replied = await gw.send('acme', { from: '+15557771010', text: 'unstorable reply' });
    expect(replied.message.status).toBe('processed');
    expect(replied.replies.map((x) => x.text)).toEqual(['nul \uFFFD here', 'lone \uFFFD surrogate']);
    const rewritten = await gw.send('acme', { from: '+15557771011', text: 'unstorable rewrite' });
    expect(rewritten.message.status).toBe('processed');
    expect(rewritten.replies.map((x) => x.text)).toEqual(['acme says: unstorable rewrite \uFFFD\uFFFD']);
    const stored = (await gw.outbox('acme')).filter((i) => i.to === '+15557771010' || i.to === '+15557771011').map((i) => i.text);
    expect(stored.sort()).toEqual(['acme says: unstorable rewrite \uFFFD\uFFFD', 'lone \uFFFD surrogate', 'nul \uFFFD here']);
  });

  it('block or hold a reply with the reason, kept in the outbox and never sent', async () => {
    const blocked = await receive('forbidden', '+15557771001');
    const held = await receive('review me', '+15557771002');
    expect([blocked.inline, held.inline]).toEqual([[], []]);
    const items = await gw.outbox('acme');
    expect(items.find((i) => i.inboundId === blocked.inboundId)).toMatchObject({ status: 'blocked', errorCode: 'probe.screen', error: 'forbidden word' });
    expect(items.find((i) => i.inboundId === held.inboundId)).toMatchObject({ status: 'held', errorCode: 'probe.screen', error: 'needs a human look' });
    // The stage that decided ends the chain: the meter after it never saw either message.
    expect(probeControl.outgoing).toEqual([]);
    expect(await gw.metrics()).toMatch(/parley_reply_stage_verdicts_total\{tenant="acme",stage="probe.screen",verdict="held"\} 1/);
  });

  it('hold a reply queued for the outbox, and the operator can release it after review', async () => {
    const held = await receive('review later', '+15557771003', { until: 'recorded' });
    const items = await gw.waitForOutbox('acme', (all) => all.some((i) => i.inboundId === held.inboundId));
    const mine = items.find((i) => i.inboundId === held.inboundId)!;
    expect(mine).toMatchObject({ status: 'held', via: 'api' });
    const released = await gw.request('POST', `/v1/tenants/acme/outbox/${mine.id}/retry`, { key: KEYS.acme });
    expect(released.status).toBe(202);
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === mine.id && i.status === 'sent'));
  });

  it('hold the message when a reply stage throws (fail closed) and log it with the plugin', async () => {
    const r = await receive('crash', '+15557771004');
    expect(r.inline).toEqual([]);
    const item = (await gw.outbox('acme')).find((i) => i.inboundId === r.inboundId)!;
    expect(item).toMatchObject({ status: 'held', errorCode: 'probe.screen' });
    expect(item.error).toContain('the screen crashed');
    expect(gw.logs.some((l) => l.msg === 'a reply stage failed; the message is held' && l.plugin === 'probe')).toBe(true);
  });

  it('run on sends that are not replies, before the insert, with the outbox id as key', async () => {
    const sent = await gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'probe-channel', to: '+15557771005', text: 'reminder: your secret code' });
    expect(sent).toMatchObject({ status: 'pending', text: 'reminder: your [redacted] code' });
    expect(probeControl.outgoing).toEqual([{ key: `out:${sent.id}`, reply: false, text: 'reminder: your [redacted] code' }]);
    const held = await gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'probe-channel', to: '+15557771005', text: 'campaign to review' });
    expect(held).toMatchObject({ status: 'held', errorCode: 'probe.screen', error: 'needs a human look' });
    await gw.waitForOutbox('acme', (all) => all.some((i) => i.id === sent.id && i.status === 'sent'));
    expect(probeControl.sends.map((m) => m.text)).toEqual(['reminder: your [redacted] code']);
  });

  it('leave consent to the kernel, after them', async () => {
    await gw.gateway.consent.set({ tenantId: 'acme', address: '+15557771006', status: 'opted-out', source: 'test' });
    const r = await receive('a secret hello', '+15557771006');
    const item = (await gw.outbox('acme')).find((i) => i.inboundId === r.inboundId)!;
    expect(item).toMatchObject({ status: 'blocked', errorCode: 'opted-out', text: 'acme says: a [redacted] hello' });
    expect(probeControl.outgoing).toHaveLength(1);
  });

  it('do not touch the messages of a tenant that does not list them', async () => {
    const r = await gw.send('globex', { from: 'bob', text: 'my secret' });
    expect(r.replies.map((x) => x.text)).toEqual(['echo: my secret']);
    expect(probeControl.outgoing).toEqual([]);
  });

  it('must be registered: an unknown name in replyPipeline fails validation naming the tenant', async () => {
    const config = twoTenants({ replyPipeline: ['probe.redact', 'probe.nope'] });
    const loaded = { config: parseConfig(stringify(config), 'test', {}), baseDir: process.cwd(), source: 'test' };
    await expect(Gateway.validate({ loaded, catalogue: { ...builtinPlugins, ...catalogue }, logger: createLogger('silent') })).rejects.toThrow(
      /tenants\[0\] \(acme\)\.replyPipeline\[1\]: unknown reply stage "probe\.nope"/,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { RuleEvaluator, histogramQuantile, type MetricSample, type RuleDecision, type Snapshot } from './rules.js';
import { ruleSchema, type Rule } from './types.js';

const rule = (r: Record<string, unknown>): Rule => ruleSchema.parse(r);
const t0 = Date.parse('2026-11-02T10:00:00Z');

function messagesIn(tenant: string, counts: Partial<Record<'processed' | 'failed' | 'duplicate', number>>): MetricSample[] {
  return Object.entries(counts).map(([result, value]) => ({ name: 'parley_messages_in_total', labels: { tenant, channel: 'http', result }, value: value! }));
}

/** Cumulative pipeline-duration buckets for `durations` (seconds). */
function latency(tenant: string, durations: number[]): MetricSample[] {
  const bounds = [0.1, 0.5, 1, 2.5, 5, 10, Infinity];
  return bounds.map((le) => ({
    name: 'parley_pipeline_duration_seconds_bucket',
    labels: { tenant, channel: 'http', le: le === Infinity ? '+Inf' : le },
    value: durations.filter((d) => d <= le).length,
  }));
}

const snap = (atMs: number, samples: MetricSample[], counts: Snapshot['counts'] = {}): Snapshot => ({ at: t0 + atMs, samples, counts });
const raised = (d: RuleDecision[]) => d.filter((x) => x.action === 'raise').map((x) => (x.action === 'raise' ? { key: x.alert.key, tenantId: x.alert.tenantId } : null));
const resolved = (d: RuleDecision[]) => d.filter((x) => x.action === 'resolve').map((x) => (x.action === 'resolve' ? { key: x.key, tenantId: x.tenantId } : null));

describe('error-rate rule', () => {
  const ev = () => new RuleEvaluator([rule({ kind: 'error-rate', windowMs: 60_000, threshold: 0.2, minMessages: 10, severity: 'critical' })]);

  it('needs a baseline: the first snapshot raises nothing', () => {
    expect(ev().evaluate(snap(0, messagesIn('acme', { processed: 0, failed: 50 })))).toEqual([]);
  });

  it('fires for the tenant whose failures within the window pass the threshold, with the figures', () => {
    const e = ev();
    e.evaluate(snap(0, [...messagesIn('acme', { processed: 100, failed: 0 }), ...messagesIn('beta', { processed: 100 })]));
    const d = e.evaluate(snap(30_000, [...messagesIn('acme', { processed: 108, failed: 4, duplicate: 40 }), ...messagesIn('beta', { processed: 150 })]));
    expect(d).toEqual([
      {
        action: 'raise',
        rule: 'error-rate',
        alert: {
          key: 'rule.error-rate',
          tenantId: 'acme',
          severity: 'critical',
          summary: '33% of messages failed in the last 1 min',
          details: { 'Error rate': '33%', Failed: 4, Messages: 12, Threshold: '20%', Window: '1 min' },
        },
      },
    ]);
  });

  it('ignores a tenant with fewer messages than minMessages', () => {
    const e = ev();
    e.evaluate(snap(0, messagesIn('acme', { processed: 0, failed: 0 })));
    expect(e.evaluate(snap(10_000, messagesIn('acme', { processed: 3, failed: 5 })))).toEqual([]);
  });

  it('keeps firing while the window holds the failures, and resolves once they slide out', () => {
    const e = ev();
    e.evaluate(snap(0, messagesIn('acme', { processed: 0, failed: 0 })));
    expect(raised(e.evaluate(snap(10_000, messagesIn('acme', { processed: 5, failed: 10 }))))).toEqual([{ key: 'rule.error-rate', tenantId: 'acme' }]);
    expect(raised(e.evaluate(snap(50_000, messagesIn('acme', { processed: 6, failed: 10 }))))).toHaveLength(1);
    // At 75 s the baseline is the 10 s snapshot: no failure since then.
    const d = e.evaluate(snap(75_000, messagesIn('acme', { processed: 30, failed: 10 })));
    expect(raised(d)).toEqual([]);
    expect(resolved(d)).toEqual([{ key: 'rule.error-rate', tenantId: 'acme' }]);
    expect(e.evaluate(snap(80_000, messagesIn('acme', { processed: 31, failed: 10 })))).toEqual([]);
  });
});

describe('p95-latency rule', () => {
  it('computes p95 from histogram bucket deltas in the window, like histogram_quantile', () => {
    const e = new RuleEvaluator([rule({ kind: 'p95-latency', windowMs: 60_000, thresholdMs: 2_000, minMessages: 20 })]);
    const slowStart = Array(100).fill(9);
    e.evaluate(snap(0, latency('acme', slowStart)));
    const fast = Array(19).fill(0.05).concat([0.3]);
    expect(e.evaluate(snap(10_000, latency('acme', [...slowStart, ...fast])))).toEqual([]);
    const slow = Array(10).fill(0.05).concat(Array(10).fill(4));
    const d = e.evaluate(snap(20_000, latency('acme', [...slowStart, ...fast, ...slow])));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ action: 'raise', alert: { key: 'rule.p95-latency', tenantId: 'acme', details: { p95: '4.5 s', Messages: 40 } } });
  });

  it('interpolates inside the bucket and never answers +Inf', () => {
    expect(histogramQuantile(0.5, new Map([[1, 0], [2, 10], [Infinity, 10]]))).toBe(1.5);
    expect(histogramQuantile(0.95, new Map([[1, 1], [Infinity, 10]]))).toBe(1);
    expect(histogramQuantile(0.95, new Map([[Infinity, 0]]))).toBe(0);
  });
});

describe('database-backed rules', () => {
  it('raise from the counts the plugin queries, per tenant, and resolve when they drop', () => {
    const e = new RuleEvaluator([rule({ kind: 'outbox-backlog', threshold: 50 }), rule({ kind: 'dead-letters', threshold: 1, severity: 'critical' })]);
    const d = e.evaluate(snap(0, [], { 'outbox-backlog': { acme: 120, beta: 3 }, 'dead-letters': { beta: 2 } }));
    expect(d.map((x) => x.action === 'raise' && [x.alert.key, x.alert.tenantId, x.alert.severity, x.alert.summary])).toEqual([
      ['rule.outbox-backlog', 'acme', 'warning', '120 replies waiting in the outbox for more than 1 min'],
      ['rule.dead-letters', 'beta', 'critical', '2 replies became dead letters in the last 1 h'],
    ]);
    expect(resolved(e.evaluate(snap(1_000, [], { 'outbox-backlog': { acme: 10 }, 'dead-letters': {} })))).toEqual([
      { key: 'rule.outbox-backlog', tenantId: 'acme' },
      { key: 'rule.dead-letters', tenantId: 'beta' },
    ]);
  });
});

describe('channel-down rule', () => {
  const out = (tenant: string, channel: string, status: string, value: number): MetricSample => ({ name: 'parley_messages_out_total', labels: { tenant, channel, status }, value });
  const session = (tenant: string, state: string): MetricSample[] =>
    ['ready', 'disconnected', 'logged-out'].map((s) => ({ name: 'parley_whatsapp_web_session_state', labels: { tenant, state: s }, value: s === state ? 1 : 0 }));

  it('fires per tenant and channel when every send in the window failed', () => {
    const e = new RuleEvaluator([rule({ kind: 'channel-down', windowMs: 60_000, minFailures: 5 })]);
    e.evaluate(snap(0, [out('acme', 'twilio-sms', 'sent', 10), out('beta', 'twilio-sms', 'sent', 10)]));
    const d = e.evaluate(snap(30_000, [out('acme', 'twilio-sms', 'sent', 10), out('acme', 'twilio-sms', 'retrying', 6), out('beta', 'twilio-sms', 'sent', 11), out('beta', 'twilio-sms', 'retrying', 9)]));
    expect(raised(d)).toEqual([{ key: 'rule.channel-down.twilio-sms', tenantId: 'acme' }]);
  });

  it('fires when a session gauge stays out of ready longer than sessionDownForMs, and resolves when ready', () => {
    const e = new RuleEvaluator([rule({ kind: 'channel-down', sessionDownForMs: 120_000 })]);
    expect(e.evaluate(snap(0, session('acme', 'disconnected')))).toEqual([]);
    expect(e.evaluate(snap(60_000, session('acme', 'logged-out')))).toEqual([]);
    const d = e.evaluate(snap(125_000, session('acme', 'logged-out')));
    expect(d).toEqual([expect.objectContaining({ action: 'raise', alert: expect.objectContaining({ key: 'rule.channel-down.whatsapp-web', tenantId: 'acme', summary: 'whatsapp-web session has been logged-out for 2 min' }) })]);
    expect(resolved(e.evaluate(snap(130_000, session('acme', 'ready'))))).toEqual([{ key: 'rule.channel-down.whatsapp-web', tenantId: 'acme' }]);
    // Down again: the clock starts over.
    expect(e.evaluate(snap(140_000, session('acme', 'disconnected')))).toEqual([]);
  });
});

describe('signature-failures rule', () => {
  it('sums the configured counters by tenant, or globally when they carry no tenant', () => {
    const e = new RuleEvaluator([rule({ kind: 'signature-failures', windowMs: 60_000, threshold: 10 })]);
    const twilio = (tenant: string, value: number): MetricSample => ({ name: 'parley_twilio_signature_failures_total', labels: { tenant }, value });
    const meta = (value: number): MetricSample => ({ name: 'parley_whatsapp_cloud_signature_failures_total', labels: { reason: 'mismatch' }, value });
    e.evaluate(snap(0, [twilio('acme', 1), meta(0)]));
    const d = e.evaluate(snap(20_000, [twilio('acme', 12), twilio('beta', 4), meta(10)]));
    expect(raised(d)).toEqual([
      { key: 'rule.signature-failures', tenantId: 'acme' },
      { key: 'rule.signature-failures', tenantId: undefined },
    ]);
  });
});

describe('rule options', () => {
  it('names keys after the rule name, so two rules of one kind stay apart', () => {
    const e = new RuleEvaluator([rule({ kind: 'outbox-backlog', name: 'backlog-page', threshold: 500, severity: 'critical' }), rule({ kind: 'outbox-backlog', threshold: 50 })]);
    const d = e.evaluate(snap(0, [], { 'backlog-page': { acme: 600 }, 'outbox-backlog': { acme: 600 } }));
    expect(raised(d)).toEqual([
      { key: 'rule.backlog-page', tenantId: 'acme' },
      { key: 'rule.outbox-backlog', tenantId: 'acme' },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { alertLink, escapeMrkdwn, renderAlert, type AlertRecord } from './blocks.js';

const record = (over: Partial<AlertRecord> = {}): AlertRecord => ({
  id: 'acme/rule.error-rate',
  key: 'rule.error-rate',
  tenantId: 'acme',
  source: 'slack-alerts',
  severity: 'critical',
  state: 'firing',
  summary: '12% of messages failed',
  details: { 'Error rate': '12%', Failed: 12, Messages: 100 },
  firstAt: new Date('2026-11-02T10:00:00Z'),
  lastFiredAt: new Date('2026-11-02T10:00:00Z'),
  resolvedAt: null,
  occurrences: 1,
  ackedBy: null,
  ackedAt: null,
  ...over,
});

type Block = { type: string; text?: { text: string }; fields?: { text: string }[]; elements?: { text?: unknown; action_id?: string }[] };

describe('renderAlert', () => {
  it('escapes what people and plugins wrote, so a summary cannot ping @channel or forge links', () => {
    expect(escapeMrkdwn('<!channel> & <https://evil|click>')).toBe('&lt;!channel&gt; &amp; &lt;https://evil|click&gt;');
    const { text, blocks } = renderAlert(record({ summary: '<!channel> rate high', details: { note: '<@U123>' } }));
    expect(text).toBe('[CRITICAL] acme: &lt;!channel&gt; rate high');
    expect(JSON.stringify(blocks)).not.toContain('<@U123>');
  });

  it('stays within Block Kit limits: a 150-character header and 10 fields', () => {
    const details = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`figure ${i}`, i]));
    const { blocks } = renderAlert(record({ summary: 'x'.repeat(400), details }));
    const b = blocks as Block[];
    expect(b[0]!.text!.text.length).toBe(150);
    expect(b.find((x) => x.fields)!.fields).toHaveLength(10);
  });

  it('formats numbers and shows how long a resolved alert lasted, without buttons to act on', () => {
    const { blocks } = renderAlert(record({ state: 'resolved', resolvedAt: new Date('2026-11-02T10:12:00Z'), details: { Messages: 12345 } }), { dashboardUrl: 'https://grafana.example.com/d/x?t={tenant}' });
    const b = blocks as Block[];
    expect(b.find((x) => x.fields)!.fields!.map((f) => f.text)).toContain('*Messages*\n12,345');
    expect(JSON.stringify(b.find((x) => x.type === 'context'))).toContain('after 12 min');
    expect(b.find((x) => x.type === 'actions')!.elements!.map((e) => e.action_id)).toEqual(['parley_open']);
  });

  it('prefers a link the alert carries over the dashboard template', () => {
    expect(alertLink(record({ details: { url: 'https://parley.example.com/v1/tenants/acme/whatsapp-web/qr.png' } }), 'https://grafana/{tenant}')).toBe('https://parley.example.com/v1/tenants/acme/whatsapp-web/qr.png');
    expect(alertLink(record({ details: { url: 'javascript:alert(1)' } }), 'https://grafana/{tenant}/{key}')).toBe('https://grafana/acme/rule.error-rate');
    expect(alertLink(record(), undefined)).toBeUndefined();
  });
});

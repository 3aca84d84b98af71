/** Block Kit for an alert: one message per alert episode, edited in place as it changes. */
import type { Severity } from './types.js';

/** The Acknowledge button's `action_id`; its value is the alert record id. */
export const ACK_ACTION_ID = 'parley_ack';
/** The dashboard link button's `action_id` (Slack still calls the request URL on link clicks). */
export const LINK_ACTION_ID = 'parley_open';

/** An alert as the sink stores it and Slack shows it. */
export interface AlertRecord {
  id: string;
  key: string;
  tenantId: string | null;
  source: string;
  severity: Severity;
  state: 'firing' | 'resolved';
  summary: string;
  details: Record<string, unknown>;
  firstAt: Date;
  lastFiredAt: Date;
  resolvedAt: Date | null;
  /** How many times it fired within the message's quiet period. */
  occurrences: number;
  ackedBy: string | null;
  ackedAt: Date | null;
}

export interface RenderOptions {
  /** `{tenant}` and `{key}` are replaced. */
  dashboardUrl?: string;
  /** Prepended to the notification text of a firing critical alert. */
  mention?: string;
}

const EMOJI: Record<Severity, string> = { critical: '🔴', warning: '🟠', info: '🔵' };

// Block Kit limits: header text 150 characters, a section field 2,000, at most 10 fields.
const HEADER_MAX = 150;
const FIELD_MAX = 2000;
const FIELDS_MAX = 10;

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A date Slack shows in each reader's time zone, with the ISO time as fallback. */
function slackDate(d: Date): string {
  return `<!date^${Math.floor(d.getTime() / 1000)}^{date_short_pretty} {time}|${d.toISOString()}>`;
}

function formatValue(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toLocaleString('en-US', { maximumFractionDigits: 3 });
  if (value instanceof Date) return slackDate(value);
  if (typeof value === 'string') return escapeMrkdwn(value);
  return escapeMrkdwn(JSON.stringify(value));
}

function elapsed(from: Date, to: Date): string {
  const s = Math.max(0, Math.round((to.getTime() - from.getTime()) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function alertLink(record: Pick<AlertRecord, 'tenantId' | 'key' | 'details'>, dashboardUrl: string | undefined): string | undefined {
  const own = record.details['url'];
  if (typeof own === 'string' && /^https?:\/\//.test(own)) return own;
  if (!dashboardUrl) return undefined;
  return dashboardUrl.replace(/\{tenant\}/g, encodeURIComponent(record.tenantId ?? '')).replace(/\{key\}/g, encodeURIComponent(record.key));
}

/**
 * Renders an alert: header with severity, fields with tenant, severity, key, time and the alert's
 * figures, a status line, and the Acknowledge and dashboard buttons while it fires.
 * @example
 * const { text, blocks } = renderAlert(record, { dashboardUrl: 'https://grafana.example.com/d/parley?var-tenant={tenant}' });
 * await web.chat.postMessage({ channel, text, blocks });
 */
export function renderAlert(record: AlertRecord, options: RenderOptions = {}, now = new Date()): { text: string; blocks: Record<string, unknown>[] } {
  const resolved = record.state === 'resolved';
  const label = resolved ? `✅ RESOLVED` : `${EMOJI[record.severity]} ${record.severity.toUpperCase()}`;
  const tenant = record.tenantId ?? 'all tenants';
  const link = alertLink(record, options.dashboardUrl);

  const fields = [
    `*Tenant*\n${escapeMrkdwn(tenant)}`,
    `*Severity*\n${record.severity}`,
    `*Alert*\n\`${escapeMrkdwn(record.key)}\``,
    `*Since*\n${slackDate(record.firstAt)}`,
  ];
  for (const [name, value] of Object.entries(record.details)) {
    if (name === 'url' || fields.length >= FIELDS_MAX) continue;
    fields.push(clip(`*${escapeMrkdwn(name)}*\n${formatValue(value)}`, FIELD_MAX));
  }

  const status: string[] = [];
  if (resolved && record.resolvedAt) status.push(`Resolved ${slackDate(record.resolvedAt)} after ${elapsed(record.firstAt, record.resolvedAt)}`);
  else status.push(`Firing for ${elapsed(record.firstAt, now)}`);
  if (record.occurrences > 1) status.push(`fired ${record.occurrences} times`);
  if (record.ackedBy) status.push(`acknowledged by <@${record.ackedBy}>${record.ackedAt ? ` ${slackDate(record.ackedAt)}` : ''}`);
  status.push(`source: ${escapeMrkdwn(record.source)}`);

  const buttons: Record<string, unknown>[] = [];
  if (!resolved && !record.ackedBy) {
    buttons.push({ type: 'button', action_id: ACK_ACTION_ID, text: { type: 'plain_text', text: 'Acknowledge' }, style: 'primary', value: record.id });
  }
  if (link) buttons.push({ type: 'button', action_id: LINK_ACTION_ID, text: { type: 'plain_text', text: 'Open dashboard' }, url: link });

  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${label} · ${record.summary}`, HEADER_MAX), emoji: true } },
    { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
    { type: 'context', elements: [{ type: 'mrkdwn', text: status.join(' · ') }] },
  ];
  if (buttons.length) blocks.push({ type: 'actions', block_id: 'parley_alert_actions', elements: buttons });

  const mention = !resolved && record.severity === 'critical' && options.mention ? `${options.mention} ` : '';
  const text = `${mention}${resolved ? '[RESOLVED]' : `[${record.severity.toUpperCase()}]`} ${escapeMrkdwn(tenant)}: ${escapeMrkdwn(record.summary)}`;
  return { text, blocks };
}

/**
 * Sends outbox items through the Graph API. Free-form messages are only allowed within 24 hours of
 * the user's last message; outside that window the tenant's template is sent instead, or the item
 * becomes a dead letter with the code `outside-24h-window`. Graph failures become `SendError`s: 429,
 * 5xx and rate-limit codes are retried, a request whose outcome is unknown never is.
 */
import type { Pool } from 'pg';
import { type AlertApi, type ChannelSender, type OutboundMessage, SendError, type SendResult } from 'parley';
import type { CloudMetrics } from './metrics.js';
import { GraphApiError, type GraphClient, type GraphSendResult, type LinkMedia, type TemplateMessage } from './graph-client.js';
import { CHANNEL, SERVICE_WINDOW_MS, templateSchema, type ConnectedSettings, type TemplateSettings, type WhatsAppCloudSettings } from './types.js';
import { toE164, toWaId } from './inbound.js';

/** Meta's "re-engagement" error: the window closed although our records said it was open. */
const OUTSIDE_WINDOW_META_CODE = 131047;
/** Meta's invalid/expired access token. */
const INVALID_TOKEN_META_CODE = 190;

export interface CloudSenderDeps {
  db: Pool;
  /** The tenant's Graph client and settings; undefined when the channel is off for it. */
  connectionFor(tenantId: string): { graph: GraphClient; settings: ConnectedSettings } | undefined;
  now(): Date;
  /** Told about every Graph outcome, for metrics and the token alert. */
  observe(event: { tenantId: string; kind: 'sent' | 'template-fallback' | 'failed' | 'auth-failed'; code?: string }): void;
}

export function createCloudSender(deps: CloudSenderDeps): ChannelSender<WhatsAppCloudSettings> {
  return {
    channel: CHANNEL,
    async send(message) {
      const connection = deps.connectionFor(message.tenantId);
      if (!connection) throw new SendError(`whatsapp-cloud is not configured for tenant "${message.tenantId}"`, { retryable: false, providerCode: 'not-configured' });
      const { graph, settings } = connection;
      const to = toWaId(message.to);
      const explicit = message.options['template'];
      try {
        if (explicit !== undefined) {
          const parsed = templateSchema.safeParse(explicit);
          if (!parsed.success) throw new SendError(`options.template is not a valid template: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { retryable: false, providerCode: 'invalid-template' });
          return done(message.tenantId, await graph.sendTemplate(settings.phoneNumberId, to, toTemplate(parsed.data, message.text)), { template: parsed.data.name });
        }
        if (!(await windowOpen(deps, message))) return await fallback(message, settings, graph, to, 'the 24-hour customer-service window is closed');
        return done(message.tenantId, await sendFreeForm(graph, settings.phoneNumberId, to, message));
      } catch (error) {
        if (error instanceof GraphApiError && error.code === OUTSIDE_WINDOW_META_CODE && settings.template) {
          return fallback(message, settings, graph, to, 'Meta reported the 24-hour window closed (#131047)');
        }
        throw toSendError(error, message.tenantId);
      }
    },
  };

  function done(tenantId: string, result: GraphSendResult, details?: Record<string, unknown>): SendResult {
    deps.observe({ tenantId, kind: 'sent' });
    return { providerMessageId: result.wamid, status: 'sent', ...(details ? { details } : {}) };
  }

  async function fallback(message: OutboundMessage, settings: ConnectedSettings, graph: GraphClient, to: string, why: string): Promise<SendResult> {
    if (!settings.template) {
      throw new SendError(`Free-form reply refused: ${why} and no template is configured`, { retryable: false, providerCode: 'outside-24h-window' });
    }
    try {
      const result = await graph.sendTemplate(settings.phoneNumberId, to, toTemplate(settings.template, message.text));
      deps.observe({ tenantId: message.tenantId, kind: 'template-fallback' });
      return { providerMessageId: result.wamid, status: 'sent', details: { template: settings.template.name, fallbackReason: 'outside-24h-window' } };
    } catch (error) {
      throw toSendError(error, message.tenantId);
    }
  }

  function toSendError(error: unknown, tenantId: string): SendError {
    if (error instanceof SendError) return error;
    if (!(error instanceof GraphApiError)) return new SendError(error instanceof Error ? error.message : String(error), { retryable: true, cause: error });
    const code = error.code !== undefined ? String(error.code) : error.status !== undefined ? `http-${error.status}` : 'network';
    if (error.code === INVALID_TOKEN_META_CODE || error.status === 401) deps.observe({ tenantId, kind: 'auth-failed', code });
    else deps.observe({ tenantId, kind: 'failed', code });
    const message = error.details ? `${error.message} (${error.details})` : error.message;
    if (error.outcomeUnknown) {
      // No idempotency key on the Graph API: sending again could deliver the message twice.
      return new SendError(message, { retryable: false, outcomeUnknown: true, providerCode: 'outcome-unknown', cause: error });
    }
    return new SendError(message, { retryable: error.retryable, providerCode: code, ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}), cause: error });
  }
}

/**
 * Whether the user wrote to this tenant on this channel within the last 24 hours. Read from the
 * kernel's conversation row (read-only): inbound drafts carry no thread key, so the conversation of a
 * user is keyed by their address (`+<wa_id>`), and `last_message_at` is the time of their latest
 * message (outbound messages never move it). The address is normalised, so a reminder queued for
 * `whatsapp:+1555...` or `1555...` finds it too.
 */
async function windowOpen(deps: CloudSenderDeps, message: OutboundMessage): Promise<boolean> {
  const { rows } = await deps.db.query<{ last: Date | null }>(
    `SELECT last_message_at AS last FROM parley_conversations WHERE tenant_id = $1 AND channel = $2 AND thread_key = $3`,
    [message.tenantId, CHANNEL, toE164(toWaId(message.to))],
  );
  const last = rows[0]?.last;
  return last != null && deps.now().getTime() - new Date(last).getTime() < SERVICE_WINDOW_MS;
}

async function sendFreeForm(graph: GraphClient, phoneNumberId: string, to: string, message: OutboundMessage): Promise<GraphSendResult> {
  if (message.media.length === 0) return graph.sendText(phoneNumberId, to, message.text);
  if (message.media.length > 1) {
    // Several Graph calls cannot be retried as one unit without sending some of them twice.
    throw new SendError('whatsapp-cloud sends at most one media attachment per message', { retryable: false, providerCode: 'too-many-media' });
  }
  const attachment = message.media[0]!;
  if (!/^https:\/\//i.test(attachment.url)) {
    throw new SendError('whatsapp-cloud media must be a public https URL (Meta downloads it)', { retryable: false, providerCode: 'media-url' });
  }
  const media: LinkMedia = {
    type: attachment.contentType?.startsWith('image/') ? 'image' : 'document',
    link: attachment.url,
    ...(message.text || attachment.caption ? { caption: message.text || attachment.caption } : {}),
    ...(attachment.filename ? { filename: attachment.filename } : {}),
  };
  return graph.sendMedia(phoneNumberId, to, media);
}

function toTemplate(template: TemplateSettings, text: string): TemplateMessage {
  const components = (template.components ?? []).filter((c) => !(template.textParameter && c.type === 'body'));
  if (template.textParameter) components.push({ type: 'body', parameters: [{ type: 'text', text }] });
  return { name: template.name, language: template.language, ...(components.length ? { components } : {}) };
}

/** Counts each Graph outcome, raises the critical alert when Meta refuses the token, resolves it on the next success. */
export function observeSends(metrics: CloudMetrics, alerts: AlertApi): CloudSenderDeps['observe'] {
  return ({ tenantId, kind, code }) => {
    metrics.sends.inc({ tenant: tenantId, result: kind });
    if (kind === 'auth-failed') {
      alerts.raise({ key: 'whatsapp-cloud.auth-failed', severity: 'critical', tenantId, summary: 'Meta refused the WhatsApp Cloud access token: replies cannot be sent', details: { code } });
    } else if (kind === 'sent' || kind === 'template-fallback') {
      alerts.resolve('whatsapp-cloud.auth-failed', tenantId);
    }
  };
}

/**
 * Sends outbox items through Twilio's Messages API. The outbox has already checked consent; this
 * decides how a failure is retried: 429, 5xx and transport errors retry with backoff (never sooner
 * than Twilio's `Retry-After`, when it sends one), other 4xx are dead letters with Twilio's code, and
 * 21610 (the recipient opted out at Twilio) records the opt-out and makes the item `blocked`, so
 * nothing else is tried for that number.
 */
import type twilio from 'twilio';
import type { Logger } from 'pino';
import { SendError, type ChannelSender, type ConsentStore, type OutboundMessage, type SendResult } from 'parley';
import { describeTwilioError, type TwilioCallFailure } from './client.js';
import { fitToSegments } from './segments.js';
import { usageOf, type RecordSegmentUsage, type SegmentLedger } from './ledger.js';
import type { TwilioMetrics } from './metrics.js';
import { TWILIO_SMS_CHANNEL, type TwilioSmsSettings } from './types.js';

/** A tenant the channel can send for: credentials present and switched on. */
export interface ActiveTenant {
  tenantId: string;
  settings: TwilioSmsSettings & { accountSid: string; authToken: string };
}

export interface SmsSenderDeps {
  log: Logger;
  metrics: TwilioMetrics;
  ledger: SegmentLedger;
  recordUsage: RecordSegmentUsage;
  consent: () => ConsentStore;
  /** The tenant's state, or why the channel is off for it. */
  tenantState(tenantId: string): ActiveTenant | { off: string };
  client(tenant: ActiveTenant): twilio.Twilio;
  /** Absolute StatusCallback URL, when a public base URL is configured. */
  statusCallbackUrl: string | undefined;
  /** Called when Twilio refuses the credentials (health shows it). */
  onAuthFailure(tenantId: string, failure: TwilioCallFailure): void;
}

const isWhatsApp = (address: string) => address.toLowerCase().startsWith('whatsapp:');

/**
 * The sender to use: the number the conversation came in on, else the Messaging Service, else the
 * tenant's first number of the same kind (SMS or WhatsApp) as the recipient.
 */
export function chooseSender(message: Pick<OutboundMessage, 'from' | 'to'>, settings: TwilioSmsSettings): { from: string } | { messagingServiceSid: string } | undefined {
  const wantWhatsApp = isWhatsApp(message.to);
  if (message.from && isWhatsApp(message.from) === wantWhatsApp) return { from: message.from };
  if (settings.messagingServiceSid) return { messagingServiceSid: settings.messagingServiceSid };
  const number = settings.numbers.find((n) => isWhatsApp(n) === wantWhatsApp);
  return number ? { from: number } : undefined;
}

/** Twilio: "Attempt to send to unsubscribed recipient". */
export const UNSUBSCRIBED_RECIPIENT = 21610;

function sendErrorOf(failure: TwilioCallFailure, context: string): SendError {
  if (failure.kind === 'transport') {
    return new SendError(`${context}: no answer from Twilio (${failure.errno ?? failure.message}); Twilio may have accepted it`, {
      retryable: true,
      providerCode: failure.errno ?? 'network',
      outcomeUnknown: true,
      plugin: TWILIO_SMS_CHANNEL,
    });
  }
  const code = failure.code ?? failure.status;
  const message = `${context}: Twilio ${failure.status} error ${code}: ${failure.message}`;
  // Not a failure to retry or dead-letter: the person opted out at Twilio, so the item is blocked.
  if (failure.code === UNSUBSCRIBED_RECIPIENT) return new SendError(message, { retryable: false, blocked: true, providerCode: code, plugin: TWILIO_SMS_CHANNEL });
  const retryable = failure.status === 429 || failure.status >= 500;
  return new SendError(message, {
    retryable,
    providerCode: code,
    ...(retryable && failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
    plugin: TWILIO_SMS_CHANNEL,
  });
}

export function createSmsSender(deps: SmsSenderDeps): ChannelSender<TwilioSmsSettings | undefined> {
  return {
    channel: TWILIO_SMS_CHANNEL,
    async send(message): Promise<SendResult> {
      const state = deps.tenantState(message.tenantId);
      if ('off' in state) throw new SendError(`twilio-sms is off for tenant "${message.tenantId}": ${state.off}`, { retryable: false, providerCode: 'not-configured', plugin: TWILIO_SMS_CHANNEL });
      const { settings } = state;
      const sender = chooseSender(message, settings);
      if (!sender) {
        throw new SendError(`No ${isWhatsApp(message.to) ? 'whatsapp: ' : ''}number or messagingServiceSid to send from for tenant "${message.tenantId}"`, {
          retryable: false,
          providerCode: 'no-sender',
          plugin: TWILIO_SMS_CHANNEL,
        });
      }
      const parts = message.text === '' ? [''] : fitToSegments(message.text, settings.maxSegments, settings.overflow);
      const already = await deps.ledger.sentParts(message.tenantId, message.id);
      const client = deps.client(state);
      const sids: string[] = [];
      let firstStatus: string | undefined;
      let segments = 0;
      let cost = 0;
      let encoding: string | undefined;
      for (const [part, body] of parts.entries()) {
        const media = part === 0 ? message.media.map((m) => m.url) : [];
        const usage = usageOf(body, media.length, settings);
        segments += usage.segments;
        cost += usage.cost;
        encoding = encoding && encoding !== usage.encoding ? 'mixed' : usage.encoding;
        const done = already.get(part);
        if (done) {
          sids.push(done);
          continue;
        }
        let created: { sid: string; status: string };
        try {
          created = await client.messages.create({
            to: message.to,
            ...sender,
            ...(body !== '' ? { body } : {}),
            ...(media.length ? { mediaUrl: media } : {}),
            ...(deps.statusCallbackUrl ? { statusCallback: deps.statusCallbackUrl } : {}),
          });
        } catch (error) {
          const failure = describeTwilioError(error);
          const context = parts.length > 1 ? `part ${part + 1} of ${parts.length}` : 'send';
          const sendError = sendErrorOf(failure, context);
          deps.metrics.errors.inc({ tenant: message.tenantId, code: String(sendError.providerCode ?? 'unknown') });
          deps.metrics.sends.inc({ tenant: message.tenantId, status: sendError.blocked ? 'opted-out' : sendError.retryable ? 'retrying' : 'failed' });
          if (sendError.blocked) {
            await deps.consent().set({ tenantId: message.tenantId, address: message.to, status: 'opted-out', source: 'twilio-21610', channel: TWILIO_SMS_CHANNEL, detail: `Twilio refused outbox item ${message.id}` });
          }
          if (failure.kind === 'api' && (failure.status === 401 || failure.code === 20003)) deps.onAuthFailure(message.tenantId, failure);
          throw sendError;
        }
        await deps.ledger.record({ tenantId: message.tenantId, ref: message.id, part, direction: 'out', via: 'api', address: message.to, messageSid: created.sid, ...usage });
        deps.metrics.sends.inc({ tenant: message.tenantId, status: created.status });
        deps.metrics.segments.inc({ tenant: message.tenantId, direction: 'out', encoding: usage.encoding }, usage.segments);
        deps.metrics.cost.inc({ tenant: message.tenantId, direction: 'out', currency: usage.currency }, usage.cost);
        firstStatus ??= created.status;
        sids.push(created.sid);
      }
      // Keyed by the outbox item, for all its parts: a retry that sends the rest records once.
      await deps.recordUsage([{ tenantId: message.tenantId, ref: message.id, direction: 'out', via: 'api', segments, cost, currency: settings.currency }]);
      return {
        providerMessageId: sids[0]!,
        status: 'sent',
        details: {
          twilioStatus: firstStatus ?? 'queued',
          parts: parts.length,
          segments,
          encoding,
          costEstimate: Math.round(cost * 10_000) / 10_000,
          currency: settings.currency,
          ...(parts.length > 1 ? { sids } : {}),
          ...(parts.length > 1 || parts[0] !== message.text ? { overflow: settings.overflow } : {}),
        },
      };
    },
  };
}

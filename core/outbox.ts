/**
 * The outbox is the source of truth for every outbound message. A send job only carries the outbox id;
 * it claims the item, checks consent, calls the channel's sender and records the result. A job that
 * is retried after the provider accepted the message finds it `sent` and does nothing.
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { ChannelSender, ConsentStore } from './plugin.js';
import type { OutboundMessage } from './message.js';
import type { CoreMetrics } from './metrics.js';
import type { JobRunner } from './jobs/job-runner.js';
import { SendError, describe } from './errors.js';
import { claimForSend, markOutbox } from './storage/message-store.js';
import { hashAddress } from './logger.js';

export const OUTBOX_QUEUE = 'outbox';

export interface OutboxJob {
  outboxId: string;
  tenantId: string;
}

interface OutboxDeps {
  db: Pool;
  log: Logger;
  metrics: CoreMetrics;
  consent: ConsentStore;
  jobs: JobRunner;
  attempts: number;
  backoffMs: number;
  settingsFor(channel: string, tenantId: string): unknown;
  /** After the provider accepted an item (usage metering). A failure here never fails the send. */
  onSent?(message: OutboundMessage): Promise<void>;
}

export class OutboxSender {
  private readonly senders = new Map<string, ChannelSender<any>>();

  constructor(private readonly deps: OutboxDeps) {}

  register(sender: ChannelSender<any>, plugin: string): void {
    if (this.senders.has(sender.channel)) throw new Error(`Plugin "${plugin}": a sender for channel "${sender.channel}" is already registered`);
    this.senders.set(sender.channel, sender);
  }

  hasSender(channel: string): boolean {
    return this.senders.has(channel);
  }

  /** Queues the send jobs; `delayMs` holds them (pacing). A job id that exists already (even delayed) adds nothing. */
  async enqueue(items: Pick<OutboundMessage, 'id' | 'tenantId'>[], retry = 0, delayMs = 0): Promise<void> {
    for (const item of items) {
      await this.deps.jobs.add<OutboxJob>(OUTBOX_QUEUE, { outboxId: item.id, tenantId: item.tenantId }, {
        jobId: retry ? `outbox-${item.id}-r${retry}` : `outbox-${item.id}`,
        ...(delayMs > 0 ? { delayMs: Math.round(delayMs) } : {}),
        attempts: this.deps.attempts,
        backoffMs: this.deps.backoffMs,
      });
    }
  }

  /** The job processor. Throws only to ask BullMQ for a retry with backoff. */
  async process(job: OutboxJob, attemptsMade: number): Promise<string> {
    const { db, log, metrics, consent } = this.deps;
    const claim = await claimForSend(db, job.tenantId, job.outboxId);
    if (!claim) return 'missing';
    if ('skip' in claim) return `skipped (${claim.skip})`;
    const { message, interrupted } = claim;
    const mlog = log.child({ outboxId: message.id, tenant: message.tenantId, channel: message.channel, to: hashAddress(message.to) });
    if (interrupted) mlog.warn('an earlier send attempt was cut off; its outcome is unknown, sending again');

    // The one confirmation of an opt-out (or opt-in) must reach the person although they are now opted
    // out, and so must an answer inside a call they placed (an opt-out of messages does not cover it).
    const exempt = message.options.consentNotice === true || message.options.inSession === true;
    if (!exempt && (await consent.isOptedOut(message.tenantId, message.to))) {
      await markOutbox(db, message.tenantId, message.id, { status: 'blocked', errorCode: 'opted-out', error: 'The recipient opted out' });
      metrics.messagesOut.inc({ tenant: message.tenantId, channel: message.channel, status: 'blocked' });
      return 'blocked';
    }
    const sender = this.senders.get(message.channel);
    if (!sender) {
      await markOutbox(db, message.tenantId, message.id, { status: 'dead', errorCode: 'no-sender', error: `No sender for channel "${message.channel}"` });
      metrics.messagesOut.inc({ tenant: message.tenantId, channel: message.channel, status: 'dead' });
      return 'dead';
    }
    try {
      const result = await sender.send(message, this.deps.settingsFor(message.channel, message.tenantId));
      await markOutbox(db, message.tenantId, message.id, {
        status: result.status ?? 'sent',
        providerMessageId: result.providerMessageId,
        ...(result.details ? { details: result.details } : {}),
      });
      metrics.messagesOut.inc({ tenant: message.tenantId, channel: message.channel, status: 'sent' });
      await this.deps.onSent?.(message).catch((error: unknown) => mlog.error({ err: error }, 'could not meter a sent message; the send itself succeeded'));
      return 'sent';
    } catch (error) {
      const sendError = error instanceof SendError ? error : new SendError(describe(error), { retryable: true, cause: error });
      if (sendError.blocked) {
        await markOutbox(db, message.tenantId, message.id, { status: 'blocked', errorCode: sendError.providerCode ?? 'blocked', error: sendError.message });
        metrics.messagesOut.inc({ tenant: message.tenantId, channel: message.channel, status: 'blocked' });
        mlog.warn({ code: sendError.providerCode }, 'the provider refused this recipient; blocked');
        return 'blocked';
      }
      const final = !sendError.retryable || attemptsMade + 1 >= this.deps.attempts;
      await markOutbox(db, message.tenantId, message.id, {
        status: final ? 'dead' : 'retrying',
        errorCode: sendError.providerCode ?? (sendError.outcomeUnknown ? 'outcome-unknown' : null),
        error: sendError.message,
      });
      metrics.messagesOut.inc({ tenant: message.tenantId, channel: message.channel, status: final ? 'dead' : 'retrying' });
      mlog[final ? 'error' : 'warn']({ code: sendError.providerCode, attempt: attemptsMade + 1, err: sendError }, final ? 'send failed for good: dead letter' : 'send failed; will retry');
      if (final) return 'dead';
      throw sendError;
    }
  }
}

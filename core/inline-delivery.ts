/**
 * Inline replies are only sent when the response that carries them is: a channel writes its answer
 * through `deliverInline`, which records the provisional replies as sent when the response finished
 * and hands them to the outbox when the connection closed first. A process that dies in between
 * leaves them `sending`, and the recovery sweep sends them through the outbox (at least once).
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { InlineOutcome, ReceiveResult } from './gateway-types.js';
import type { OutboundMessage } from './message.js';
import type { OutboxSender } from './outbox.js';
import { handOverInline } from './storage/message-store.js';

export interface InlineDeliveryDeps {
  db: Pool;
  log: Logger;
  outbox: OutboxSender;
  /** Counts replies that went out inline (the settling statement metered them). */
  countSettled(items: readonly OutboundMessage[]): void;
  /** Records provisional replies as sent and meters them (batched across concurrent responses); returns those it changed. */
  settleSent(tenantId: string, replies: readonly OutboundMessage[]): Promise<OutboundMessage[]>;
}

export async function deliverInline(deps: InlineDeliveryDeps, res: ServerResponse, result: ReceiveResult, write: (inline: OutboundMessage[]) => void): Promise<InlineOutcome> {
  const provisional = result.inline.filter((r) => r.status === 'sending' && r.via === 'inline');
  const asSent = result.inline.map((r) => (r.status === 'sending' && r.via === 'inline' ? { ...r, status: 'sent' as const } : r));
  const ended = responseEnd(res);
  try {
    write(asSent);
  } catch (error) {
    if (provisional.length) await handOver(deps, result, provisional);
    throw error;
  }
  if (!provisional.length) return 'sent';
  if ((await ended) === 'finished') {
    const sent = await deps.settleSent(result.tenantId, provisional);
    if (sent.length) deps.countSettled(sent);
    return 'sent';
  }
  await handOver(deps, result, provisional);
  return 'handed-over';
}

async function handOver(deps: InlineDeliveryDeps, result: ReceiveResult, provisional: OutboundMessage[]): Promise<void> {
  const handed = await handOverInline(deps.db, result.tenantId, provisional.map((r) => r.id));
  if (!handed.length) return;
  deps.log.warn({ tenant: result.tenantId, inboundId: result.inboundId, replies: handed.length }, 'the connection closed before the inline replies were written; sending them through the outbox');
  await deps.outbox.enqueue(handed);
}

/** Whether the response finished (handed to the OS) or its connection closed first; listened for before the write. */
function responseEnd(res: ServerResponse): Promise<'finished' | 'closed'> {
  if (res.writableFinished) return Promise.resolve('finished');
  if (res.destroyed || !res.socket || res.socket.destroyed) return Promise.resolve('closed');
  return new Promise((resolve) => {
    res.once('finish', () => resolve('finished'));
    res.once('close', () => resolve(res.writableFinished ? 'finished' : 'closed'));
  });
}

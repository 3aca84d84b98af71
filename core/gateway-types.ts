import type { OutboundMessage } from './message.js';

export interface ReceiveOptions {
  /**
   * The channel can return replies in its webhook response. If the pipeline finishes within
   * `budgetMs`, its replies are recorded as sent inline and returned; otherwise the channel answers
   * without them and they are sent by the outbox when the pipeline ends.
   *
   * `confirm`: the channel answers with `gateway.deliverInline`, so the replies stay provisional
   * (`sending`, via `inline`) until the response has finished; when the connection closes first they
   * go through the outbox instead. Without it the caller vouches for delivery and they are recorded
   * as sent when returned.
   */
  inline?: { budgetMs: number; confirm?: boolean };
  /**
   * `recorded`: return as soon as the message is stored (status `deferred`); the pipeline goes on in
   * the background and its replies go through the outbox. For providers that must get their 200 fast.
   */
  until?: 'recorded' | 'processed';
  /**
   * Replies go back inside a session the person opened and is still in (a phone call): an opt-out of
   * messages does not cover them, so they are neither blocked inline nor in the outbox.
   */
  replyInSession?: boolean;
}

export interface ReceiveResult {
  /** `held`: a stage held the message (`stage.hold`); it continues when `gateway.resume` is called. */
  status: 'processed' | 'stopped' | 'held' | 'failed' | 'duplicate' | 'deferred';
  tenantId: string;
  inboundId: string;
  conversationId: string | null;
  /**
   * Replies to return in the webhook response (`via = inline`). Empty when deferred. With
   * `inline.confirm` (and for a duplicate of such a message) they may still be provisional: answer
   * with `gateway.deliverInline`.
   */
  inline: OutboundMessage[];
  /** Replies the outbox will send through the provider API. */
  queued: OutboundMessage[];
  stopReason?: string;
  /** What stages annotated (e.g. `handoff` for a voice transfer). Empty for duplicates and deferrals. */
  annotations: Record<string, unknown>;
  /** A handoff a stage asked for while processing this message (`stage.handoff`), now stored on the conversation. */
  handoff?: { state: 'bot' | 'human'; reason: string; stage: string };
}

/** How `gateway.deliverInline` settled a response's inline replies. */
export type InlineOutcome =
  /** The response finished: the replies are recorded as sent inline (or there were none to settle). */
  | 'sent'
  /** The connection closed before the response finished: the replies go through the outbox, via `api`. */
  | 'handed-over';

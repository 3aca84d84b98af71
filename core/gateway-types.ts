import type { OutboundMessage } from './message.js';

export interface ReceiveOptions {
  /**
   * The channel can return replies in its webhook response. If the pipeline finishes within
   * `budgetMs`, its replies are recorded as sent inline and returned; otherwise the channel answers
   * without them and they are sent by the outbox when the pipeline ends.
   */
  inline?: { budgetMs: number };
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
  status: 'processed' | 'stopped' | 'failed' | 'duplicate' | 'deferred';
  tenantId: string;
  inboundId: string;
  conversationId: string | null;
  /** Replies to return in the webhook response (`via = inline`). Empty when deferred. */
  inline: OutboundMessage[];
  /** Replies the outbox will send through the provider API. */
  queued: OutboundMessage[];
  stopReason?: string;
  /** What stages annotated (e.g. `handoff` for a voice transfer). Empty for duplicates and deferrals. */
  annotations: Record<string, unknown>;
  /** A handoff a stage asked for while processing this message (`stage.handoff`), now stored on the conversation. */
  handoff?: { state: 'bot' | 'human'; reason: string; stage: string };
}

/** The typed message model every channel produces and consumes. */

export type ChannelName = string;

export interface MediaAttachment {
  /** Provider URL or data reference. Never fetched by the kernel. */
  url: string;
  contentType?: string;
  filename?: string;
  caption?: string;
}

/** What a channel hands to the kernel: one inbound message, already verified. */
export interface InboundDraft {
  channel: ChannelName;
  /** The tenant, when the channel already knows it (the http channel); else resolved from `to`. */
  tenantId?: string;
  /** The sender's address: E.164 number, `whatsapp:+E164`, a chat id... */
  from: string;
  /** The address the message was sent to; resolves the tenant. */
  to: string;
  text: string;
  media?: MediaAttachment[];
  /** The provider's id for this message: the idempotency key (per tenant and channel). */
  providerMessageId: string;
  receivedAt?: Date;
  /** Groups several inbound messages in one conversation regardless of `from` (a phone call). */
  threadKey?: string;
  /** The provider payload as received, for audit and data-subject export. */
  raw?: unknown;
  /** Channel-specific facts for stages (e.g. `{ optOutType: 'STOP' }`, `{ speechConfidence: 0.4 }`). */
  attributes?: Record<string, unknown>;
}

export interface InboundMessage extends Required<Pick<InboundDraft, 'channel' | 'from' | 'to' | 'text' | 'providerMessageId'>> {
  id: string;
  tenantId: string;
  conversationId: string;
  media: MediaAttachment[];
  receivedAt: Date;
  raw: unknown;
  attributes: Record<string, unknown>;
}

/** A reply a stage produced. The kernel stores it in the outbox; the channel sends it. */
export interface ReplyDraft {
  text: string;
  media?: MediaAttachment[];
  /** Channel-specific send options, e.g. a WhatsApp template or a voice hand-off. */
  options?: Record<string, unknown>;
}

export type OutboxStatus =
  | 'pending'
  | 'sending'
  | 'retrying'
  | 'sent'
  | 'delivered'
  | 'read'
  | 'undelivered'
  | 'failed'
  | 'dead'
  | 'blocked'
  /** A reply stage kept it for review: not sent (`errorCode` is the stage, `error` the reason). */
  | 'held';

export interface OutboundMessage {
  id: string;
  tenantId: string;
  channel: ChannelName;
  conversationId: string | null;
  inboundId: string | null;
  to: string;
  from: string;
  text: string;
  media: MediaAttachment[];
  options: Record<string, unknown>;
  status: OutboxStatus;
  /** `inline` when returned in the webhook response (TwiML, http channel), `api` when sent by a job. */
  via: 'inline' | 'api' | null;
  attempts: number;
  providerMessageId: string | null;
  errorCode: string | null;
  error: string | null;
  /** Facts kept with the item: the provider's (segments, price), reply stages' `annotations`. */
  details?: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

/** Conversation history entry given to stages. */
export interface HistoryEntry {
  direction: 'in' | 'out';
  text: string;
  at: Date;
}

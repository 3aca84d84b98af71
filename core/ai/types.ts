/**
 * The AI model service plugins see as `ctx.ai`: per tenant, a LangChain chat model and embeddings, or
 * null when the tenant runs `local` (no generative model; the caller answers extractively and embeds
 * with its own local embedder). Every call is metered in the usage ledger under the calling plugin.
 */
import type { BaseMessageLike } from '@langchain/core/messages';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';

export interface AiInvokeOptions {
  /** What the call is for (`answer`, `rewrite-query`): a usage attribute and a metric-free log field. */
  purpose: string;
  /**
   * Idempotency key of the usage records (a message id, `ReplyStageContext.key`): a re-run of the same
   * message with the same purpose records its tokens once. Without it every call is recorded.
   */
  ref?: string;
  /** Abort the call (and its retries). */
  signal?: AbortSignal;
  /** Cap on output tokens for this call. */
  maxTokens?: number;
}

export interface AiChatResult {
  text: string;
  usage: { inputTokens: number; outputTokens: number };
  /** Wall time of the whole call, retries and backoff included. */
  latencyMs: number;
  /** The model that answered (as the provider reports it when it does). */
  model: string;
  provider: string;
  /** Attempts made (1 without retries). */
  attempts: number;
}

/** A tenant's chat model. Errors are `ParleyError`s with a `PARLEY_AI_*` code (see `AiErrorCode`). */
export interface AiChat {
  readonly provider: string;
  readonly model: string;
  /**
   * @example
   * const chat = ctx.ai.chat(stage.tenant.id);
   * if (!chat) return answerExtractively();
   * try {
   *   const { text } = await chat.invoke([{ role: 'system', content: rules }, { role: 'user', content: question }], { purpose: 'answer', ref: stage.message.id });
   * } catch (error) {
   *   if (error instanceof ParleyError && error.code.startsWith('PARLEY_AI_')) return answerExtractively();
   *   throw error;
   * }
   */
  invoke(messages: readonly BaseMessageLike[], opts: AiInvokeOptions): Promise<AiChatResult>;
}

/**
 * A tenant's embeddings: a LangChain `EmbeddingsInterface` (hand it to a vector store) that retries,
 * times out, trips the provider's breaker and meters `model.tokens.embedding` like chat calls.
 */
export interface AiEmbeddings extends EmbeddingsInterface {
  readonly provider: string;
  readonly model: string;
}

export type AiBreakerState = 'closed' | 'open' | 'half-open';

/** What /readyz shows: each tenant's route and each provider's state. Never a key. */
export interface AiStatus {
  tenants: Record<string, { chat: string; embeddings: string }>;
  providers: Record<string, { type: string; chatModel?: string; embeddingModel?: string; breaker: AiBreakerState; consecutiveFailures: number; off?: string }>;
}

export interface AiService {
  /** The tenant's chat model, or null when the tenant runs `local` (no generative model). */
  chat(tenantId: string): AiChat | null;
  /**
   * The tenant's embeddings, or null for `local` (use your own local embedder). `purpose` is the usage
   * attribute (default `embeddings`); with `ref`, the n-th request of this handle is recorded under
   * `<ref>#<n>`, so a re-run that embeds the same texts in the same order records them once.
   */
  embeddings(tenantId: string, opts?: { purpose?: string; ref?: string }): AiEmbeddings | null;
  status(): AiStatus;
}

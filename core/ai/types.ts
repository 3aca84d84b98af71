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
  /**
   * What the answer depends on besides the messages (a corpus version, a prompt version). Interceptors
   * that cache answers key on it, so a new corpus never serves an answer built from the old one.
   */
  contextVersion?: string;
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

// ---- interceptors ---------------------------------------------------------------------------------

/**
 * One model call as an interceptor sees it, before it is made: a chat call, or one embeddings request
 * (a batch of texts; a handle's `embedDocuments` may make several). Never logged: `messages` and
 * `texts` hold what is sent.
 */
export interface AiCall {
  tenantId: string;
  /** The plugin making the call. */
  plugin: string;
  operation: 'chat' | 'embeddings';
  provider: string;
  /** The chat model, or the embedding model. */
  model: string;
  purpose: string;
  /** Chat: the caller's `ref`; embeddings: `<ref>#<n>` for the handle's n-th request. */
  ref?: string;
  contextVersion?: string;
  /** Chat: the prompt. Embeddings: empty. */
  messages: readonly BaseMessageLike[];
  /** Embeddings: the texts of this request. */
  texts?: readonly string[];
  /** Chat only: the caller's cap on output tokens. */
  maxTokens?: number;
  /** The model's price from `ai.prices` (USD per million tokens; embeddings use `input`), when there is one. */
  price?: { input: number; output: number };
  /** A rough count of the prompt's (or the texts') tokens (characters / 4), for cost estimates. */
  estimatedInputTokens: number;
}

/**
 * What an interceptor decides before a call: `allow` it; `refuse` it (the caller gets a
 * `PARLEY_AI_REFUSED` error and answers without a model, as for any `PARLEY_AI_*` error); `degrade` it
 * to another configured provider's chat model, or to `local` (refused as above, with `degradedTo`);
 * or `answer` it without calling the provider (a cached answer: no tokens are recorded).
 * For an embeddings request (`operation: 'embeddings'`) only `allow` and `refuse` apply: `degrade` and
 * `answer` refuse it too (`PARLEY_AI_REFUSED`, the reason saying why), since vectors of another model
 * would not match the ones already stored and `local` has no embeddings.
 */
export type AiCallDecision =
  | { action: 'allow' }
  | { action: 'refuse'; reason: string }
  | { action: 'degrade'; to: string; reason: string }
  | { action: 'answer'; text: string; model?: string; reason: string };

/** How an intercepted call ended, for `after`. */
export interface AiCallOutcome {
  /** `provider`: a model answered; `interceptor`: an interceptor answered (`answer`); `refused`/`failed`: no answer. */
  answeredBy: 'provider' | 'interceptor' | 'refused' | 'failed';
  /** The chat answer (chat calls only; embeddings report only `costUsd`). */
  result?: AiChatResult;
  /** The coded error the caller got (`refused`, `failed`). */
  error?: Error;
  /** What the call cost by `ai.prices` (0 when answered by an interceptor, refused, or unpriced). */
  costUsd: number;
  /** The decision that changed the call, and which interceptor made it (absent when every one allowed it). */
  decision?: AiCallDecision & { by: string };
}

/**
 * A guard around every chat call and embeddings request of every plugin (registered with
 * `ctx.ai.intercept`); check `call.operation` when only one kind matters. `before` runs in
 * registration order and the first decision other than `allow` wins; later interceptors' `before` are
 * not asked. `after` runs for every interceptor whose `before` ran (also when the call failed or was
 * refused), once the call's usage is in the ledger; its errors are logged, never thrown to the caller.
 * A `before` that throws refuses the call (fail closed).
 */
export interface AiInterceptor {
  name: string;
  before?(call: AiCall): Promise<AiCallDecision> | AiCallDecision;
  after?(call: AiCall, outcome: AiCallOutcome): Promise<void> | void;
}

export interface AiService {
  /**
   * Guard every chat call and embeddings request of every plugin and tenant (budgets, caches,
   * audits). Call it in `setup`.
   * @example
   * ctx.ai.intercept({
   *   name: 'budget',
   *   async before(call) {
   *     return (await budgets.reserve(call)) ? { action: 'allow' } : { action: 'refuse', reason: 'daily AI budget reached' };
   *   },
   *   async after(call, outcome) { await budgets.settle(call, outcome.costUsd); },
   * });
   */
  intercept(interceptor: AiInterceptor): void;
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

/**
 * The public plugin API: `import { definePlugin } from 'parley'`. Plugins (built-in or third-party)
 * import this module and nothing else from the kernel, so the kernel's files can move without breaking
 * them; test/boundary.test.ts enforces it. The author kit is `parley/testing` (test/harness.ts).
 *
 * @example
 * import { z } from 'zod';
 * import { definePlugin } from 'parley';
 *
 * export default definePlugin({
 *   name: 'echo', kind: 'capability', description: 'Replies with what it got',
 *   settingsSchema: z.object({ prefix: z.string().default('') }),
 *   setup(ctx) {
 *     ctx.stage({ name: 'echo', handle: (stage) => stage.reply(stage.settings.prefix + stage.message.text) });
 *   },
 * });
 */
export { definePlugin, token } from './plugin.js';
export type {
  AlertApi,
  ApiGuard,
  ApiGuardVerdict,
  ApiRequestInfo,
  AlertSink,
  AnyPlugin,
  ChannelSender,
  ConsentStore,
  DataSubject,
  DataSubjectProvider,
  GatewayServices,
  HandoffChange,
  HandoffState,
  HealthCheck,
  HealthResult,
  InboundFilter,
  InboundFilterField,
  JobDefinition,
  JobScheduler,
  Migration,
  Next,
  PluginContext,
  PluginDefinition,
  PluginHooks,
  PluginKind,
  PluginMetrics,
  ReplyStageContext,
  ReplyStageDefinition,
  ReplyVerdict,
  ResumeResult,
  RouteHelpers,
  ScheduleDefinition,
  SendResult,
  StageContext,
  StageDefinition,
  StageOutcome,
  StageRecord,
  Token,
  UsageLedger,
  UsageRecord,
  UsageSummaryRow,
} from './plugin.js';
export type { ChannelName, HistoryEntry, InboundDraft, InboundMessage, MediaAttachment, OutboundMessage, OutboxStatus, ReplyDraft } from './message.js';
export type { TenantInfo } from './tenancy.js';
export type { AlertEvent, AlertInput, AlertSeverity } from './alerts.js';
export type { InlineOutcome, ReceiveOptions, ReceiveResult } from './gateway-types.js';
export type { AiBreakerState, AiCall, AiCallDecision, AiCallOutcome, AiInterceptor, AiChat, AiChatResult, AiEmbeddings, AiInvokeOptions, AiService, AiStatus } from './ai/types.js';

export {
  ConfigError,
  HttpError,
  NotImplementedError,
  ParleyError,
  PluginError,
  SendError,
  StageError,
  badRequest,
  forbidden,
  notFound,
  pluginErrorCode,
  unauthenticated,
} from './errors.js';
export type { ErrorCode, KernelErrorCode, ParleyErrorOptions, PluginErrorCode } from './errors.js';

/** Kernel services a plugin may `ctx.inject`. */
export { TOKENS } from './tokens.js';
/** The one-way hash Parley logs instead of a phone number or other address. */
export { hashAddress } from './logger.js';
/** Every hash a data subject's addresses may be stored under, for providers that keep only hashes. */
export { subjectHashes } from './parking.js';
/** The form consent is stored under (`whatsapp:+1555...` and `+1555...` are one person), and the hashed form an opt-out is kept in after erasure. */
export { consentAddress, suppressionHash } from './consent.js';
/** Every string a data subject may be found under (address forms and their `ph_` hashes), for erasure verification. */
export { subjectNeedles } from './data-subjects.js';
export { currentAuditHead } from './audit.js';
/**
 * Whether an error means a webhook can never be stored (park it and answer 200), and why; a channel
 * throws `UnstorableInboundError` for input its own parser finds unstorable (a timestamp out of range).
 */
export { isPoisonInput, poisonReason, UnstorableInboundError } from './inbound-guard.js';
/** Groups concurrent calls into one batch (one SQL statement for many webhooks). */
export { Batcher } from './storage/batcher.js';
/** One transaction on one pooled client (BEGIN, work, COMMIT or ROLLBACK, release). */
export { inTransaction } from './storage/transaction.js';
/** How many edits apart two words are (a swap counts one), bounded: for reading misspelt words. */
export { editDistance } from './edit-distance.js';
/** Route contracts (`helpers.route`), published in `/v1/openapi.json`. */
export type { HttpMethod, RouteAuth, RouteContract, RouteDeprecation, RouteErrorSpec, RouteResponse, HttpKernelErrorCode } from './http/contract.js';
/** The error body every route answers with, as a zod schema (for route contracts and clients). */
export { ErrorBody } from './http/contract.js';
/** The http channel's message and its answer (shared with the typed client `parley/client`). */
export { MessageBody, MessageResult } from './http/api-schemas.js';
/**
 * Uniform paging of list routes (`?limit=&cursor=` in, `next` out): the query schema, the response
 * field, opaque cursors over a sort key and the SQL of an exact time key.
 */
export { Cursor, MicrosKey, NextPage, PAGE_LIMIT_MAX, TimeIdKey, fromMicros, microsOf, nextLink, pageOf, pageOfList, pageQuery, readCursor, writeCursor } from './http/paging.js';
export type { CursorKey } from './http/paging.js';
/** A route parameter as a string (express 5 types allow arrays). */
export { param } from './http/app.js';

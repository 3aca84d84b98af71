/**
 * The inbound path: a channel's draft is recorded once (concurrent copies wait for the first), run
 * through the channel's first stages and the tenant's pipeline under the message's claim, and
 * finished in one statement with its replies, inline when the channel's budget allows.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { ParleyError, describe } from './errors.js';
import { storableText } from './inbound-guard.js';
import type { HandoffState, InboundFilter, InboundFilterField, ResumeResult } from './plugin.js';
import type { InboundDraft, InboundMessage, OutboundMessage, ReplyDraft } from './message.js';
import type { ReceiveOptions, ReceiveResult } from './gateway-types.js';
import { runPipeline, type ResolvedStage } from './pipeline.js';
import type { TenantDirectory, TenantInfo } from './tenancy.js';
import { hashAddress } from './logger.js';
import type { CoreMetrics } from './metrics.js';
import type { OutboxSender } from './outbox.js';
import type { BackgroundWork } from './background.js';
import type { HeldClaims } from './recovery.js';
import { Batcher } from './storage/batcher.js';
import { screenOutgoing, type ResolvedReplyStage } from './reply-stages.js';
import { recordInboundMany, finishInboundMany, repliesFor, loadHistory, type FinishInbound, type FinishResult, type OutgoingReply, type RecordInboundResult } from './storage/message-store.js';

export interface InboundDeps {
  db: Pool;
  log: Logger;
  metrics: CoreMetrics;
  tenants: TenantDirectory;
  outbox: OutboxSender;
  claims: HeldClaims;
  background: BackgroundWork;
  /** The stages a message of `channel` runs through for `tenant`, in order. */
  pipelineFor(tenant: TenantInfo, channel: string, handoff: HandoffState): ResolvedStage[];
  /** The tenant's reply stages, in order. */
  replyStagesFor(tenant: TenantInfo): ResolvedReplyStage[];
  /** Every plugin's inbound filters, in plugin order. */
  inboundFilters(): readonly { plugin: string; filter: InboundFilter }[];
  /** Counts and meters replies sent inline (they never pass the send job). */
  countInline(items: readonly OutboundMessage[]): void;
  isAccepting(): boolean;
  stageTimeoutMs: number;
}

/** How one run goes: its inline window, whether replies stay inside a session, the conversation's handoff state. */
export interface RunOptions {
  window: InlineWindow;
  inSession: boolean;
  handoff: HandoffState;
  /** A resumed run: continue after this stage of the message's pipeline. */
  startAfter?: string | null;
}

/**
 * Whether replies may still go back in the webhook response, whether the pipeline has taken that
 * chance, and whether the channel confirms them once its response finished (`inline.confirm`).
 */
export interface InlineWindow {
  open: boolean;
  claimed: boolean;
  confirm: boolean;
}

export class InboundProcessor {
  private readonly inflight = new Map<string, Promise<ReceiveResult>>();
  private readonly recordWriter: Batcher<{ tenantId: string; draft: InboundDraft }, RecordInboundResult>;
  private readonly finishWriter: Batcher<FinishInbound, FinishResult>;

  constructor(private readonly deps: InboundDeps) {
    const batchFailed = (what: string) => (error: unknown, size: number) =>
      deps.log.warn({ err: error, size, code: (error as { code?: string }).code }, `${what}: a batch failed; retrying its items one by one`);
    this.recordWriter = new Batcher((items) => recordInboundMany(deps.db, items), { onBatchError: batchFailed('recording inbound messages') });
    this.finishWriter = new Batcher((items) => finishInboundMany(deps.db, items), { onBatchError: batchFailed('finishing inbound messages') });
  }

  /** Runs one inbound message through its tenant's pipeline, exactly once per provider message id. */
  async receive(draft: InboundDraft, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    if (!this.deps.isAccepting()) throw new ParleyError('PARLEY_SHUTTING_DOWN', 'Parley is not accepting messages right now', 503);
    const tenant = draft.tenantId ? this.deps.tenants.get(draft.tenantId) : this.deps.tenants.resolve(draft.channel, draft.to);
    if (!tenant) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `No tenant owns ${draft.channel} address ${draft.tenantId ?? hashAddress(draft.to)}`, 404);
    draft = filterInbound(draft, tenant, this.deps.inboundFilters());
    const key = `${tenant.id}\u0000${draft.channel}\u0000${draft.providerMessageId}`;
    const running = this.inflight.get(key);
    if (running) {
      const first = await running;
      return { ...first, status: 'duplicate' };
    }
    const promise = this.receiveOnce(tenant, draft, options);
    this.inflight.set(key, promise);
    try {
      return await promise;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async receiveOnce(tenant: TenantInfo, draft: InboundDraft, options: ReceiveOptions): Promise<ReceiveResult> {
    const { db, metrics, background } = this.deps;
    const recorded = await this.recordWriter.submit({ tenantId: tenant.id, draft });
    if (recorded.duplicate) {
      metrics.messagesIn.inc({ tenant: tenant.id, channel: draft.channel, result: 'duplicate' });
      const replies = await repliesFor(db, tenant.id, recorded.inboundId);
      const sendable = replies.filter(isSendable);
      return { status: 'duplicate', tenantId: tenant.id, inboundId: recorded.inboundId, conversationId: null, inline: sendable.filter((r) => r.via === 'inline'), queued: sendable.filter((r) => r.via !== 'inline'), annotations: {} };
    }
    const message = recorded.message;
    // The inline window: open until the budget runs out, unless the pipeline claims it first. Once
    // claimed, the replies are being written as (provisionally) sent inline, so the response must wait for them.
    const window: InlineWindow = { open: options.inline !== undefined && options.until !== 'recorded', claimed: false, confirm: options.inline?.confirm === true };
    const processing = background.track(this.process(tenant, message, recorded.claim, { window, inSession: options.replyInSession === true, handoff: recorded.handoff }), { plugin: 'core', what: 'process an inbound message' });
    if (options.until === 'recorded') return deferred(tenant, message);
    if (!options.inline) return processing;
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<'deferred'>((r) => {
      timer = setTimeout(() => r('deferred'), options.inline!.budgetMs);
    });
    const winner = await Promise.race([processing, budget]);
    clearTimeout(timer);
    if (winner !== 'deferred') return winner;
    if (window.claimed) return processing;
    window.open = false;
    return deferred(tenant, message);
  }

  /** Pipeline + persistence under `claim`, kept fresh by the heartbeat while it runs. */
  async process(tenant: TenantInfo, message: InboundMessage, claim: string, run: Partial<RunOptions> = {}): Promise<ReceiveResult> {
    this.deps.claims.hold(message.id, claim);
    try {
      return await this.processClaimed(tenant, message, claim, { window: { open: false, claimed: false, confirm: false }, inSession: false, handoff: 'bot', ...run });
    } finally {
      this.deps.claims.release(message.id, claim);
    }
  }

  private async processClaimed(tenant: TenantInfo, message: InboundMessage, claim: string, { window, inSession, handoff, startAfter }: RunOptions): Promise<ReceiveResult> {
    const { db, metrics, outbox } = this.deps;
    const started = performance.now();
    // The message's logger (a hash of the sender and serialised bindings) is made when something logs,
    // not for every message: at the default level most messages log nothing.
    let messageLog: Logger | undefined;
    const log = () => (messageLog ??= this.deps.log.child({ tenant: tenant.id, channel: message.channel, inboundId: message.id, from: hashAddress(message.from) }));
    let stages = this.deps.pipelineFor(tenant, message.channel, handoff);
    let seqBase = 0;
    let earlier: Record<string, unknown> | undefined;
    if (startAfter) {
      stages = stagesAfter(stages, this.deps.pipelineFor(tenant, message.channel, 'bot'), startAfter);
      // The held run's replies keep their sequence numbers; this run's follow them.
      const { rows } = await db.query<{ next: number; annotations: Record<string, unknown> }>(
        `SELECT COALESCE((SELECT max(seq) + 1 FROM parley_outbox WHERE inbound_id = $2), 0)::int AS next, annotations FROM parley_inbound WHERE tenant_id = $1 AND id = $2`,
        [tenant.id, message.id],
      );
      seqBase = rows[0]?.next ?? 0;
      earlier = rows[0]?.annotations;
    }
    const outcome = await runPipeline({
      message,
      tenant,
      stages,
      ...(earlier ? { annotations: earlier } : {}),
      handoff,
      get log() {
        return log();
      },
      db,
      history: (limit) => loadHistory(db, tenant.id, message.conversationId, message.id, limit),
      isCurrentRun: () => holdsClaim(db, message.id, claim),
      stageTimeoutMs: this.deps.stageTimeoutMs,
    });
    for (const r of outcome.records) metrics.stageDuration.observe({ tenant: tenant.id, stage: r.stage, outcome: r.outcome }, r.selfMs / 1000);
    let replies = outcome.replies;
    if (outcome.error) {
      log().error({ err: outcome.error, stage: outcome.error.stage }, 'pipeline failed; sending the fallback reply');
      replies = tenant.fallbackReply ? [{ text: tenant.fallbackReply }] : [];
    }
    if (inSession) replies = replies.map((r) => ({ ...r, options: { ...r.options, inSession: true } }));
    const outgoing = await this.screenReplies(tenant, message, replies, log, seqBase);
    const via = window.open ? 'inline' : 'api';
    if (window.open) window.claimed = true;
    const provisional = via === 'inline' && window.confirm;
    const finished = await this.finishWriter.submit({
      tenantId: tenant.id,
      inbound: message,
      claim,
      status: outcome.status,
      stopReason: outcome.stopReason,
      error: outcome.error ? outcome.error.message : null,
      heldStage: outcome.heldAt ?? null,
      seqBase,
      stages: outcome.records,
      annotations: outcome.annotations,
      replies: outgoing,
      via,
      provisional,
      handoff: outcome.handoff,
    });
    if (finished.superseded) {
      // The recovery sweep gave this message to a newer run (this one took too long, or another
      // instance thought this one dead): that run alone answers it. Nothing of this run was written.
      window.claimed = false;
      metrics.messagesIn.inc({ tenant: tenant.id, channel: message.channel, result: 'superseded' });
      log().warn({ status: outcome.status, replies: replies.length, ms: Math.round(performance.now() - started) }, 'a newer run holds this message; this run\'s replies were discarded');
      return deferred(tenant, message);
    }
    const written = finished.replies;
    if (outcome.handoff && outcome.handoff.state !== handoff) {
      metrics.handoffs.inc({ tenant: tenant.id, to: outcome.handoff.state, by: 'stage' });
      log().info({ handoff: outcome.handoff.state, stage: outcome.handoff.stage }, 'conversation handed off');
    }
    metrics.messagesIn.inc({ tenant: tenant.id, channel: message.channel, result: outcome.status });
    metrics.pipelineDuration.observe({ tenant: tenant.id, channel: message.channel }, (performance.now() - started) / 1000);
    const sendable = written.filter(isSendable);
    for (const w of written) if (!isSendable(w)) metrics.messagesOut.inc({ tenant: tenant.id, channel: message.channel, status: w.status });
    if (via === 'api' && sendable.length) await outbox.enqueue(sendable);
    // Provisional replies are counted and metered when the channel's response settles them.
    else if (sendable.length && !provisional) this.deps.countInline(sendable);
    if (this.deps.log.isLevelEnabled('debug')) log().debug({ status: outcome.status, replies: written.length, ms: Math.round(performance.now() - started) }, 'message processed');
    return {
      status: outcome.status,
      tenantId: tenant.id,
      inboundId: message.id,
      conversationId: message.conversationId,
      inline: via === 'inline' ? sendable : [],
      queued: via === 'api' ? sendable : [],
      annotations: outcome.annotations,
      ...(outcome.stopReason ? { stopReason: outcome.stopReason } : {}),
      ...(outcome.handoff ? { handoff: outcome.handoff } : {}),
    };
  }

  /**
   * Continues a held message once: the conditional update from `held` to processing (with a new
   * claim, in the same statement) lets exactly one caller through; the run goes on after `afterStage`.
   */
  async resume(tenantId: string, messageId: string, options: { afterStage?: string } | { stop: string } = {}): Promise<ResumeResult> {
    const { db } = this.deps;
    const tenant = this.deps.tenants.get(tenantId);
    if (!tenant) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Unknown tenant "${tenantId}"`, 404);
    if (!UUID.test(messageId)) return { resumed: false, status: null };
    if ('stop' in options) {
      const { rows } = await db.query<{ conversation_id: string }>(
        `UPDATE parley_inbound SET status = 'stopped', stop_reason = $3, processed_at = now() WHERE tenant_id = $1 AND id = $2 AND status = 'held' RETURNING conversation_id`,
        [tenantId, messageId, options.stop],
      );
      if (!rows[0]) return { resumed: false, status: await statusOf(db, tenantId, messageId) };
      this.deps.metrics.messagesIn.inc({ tenant: tenantId, channel: 'resumed', result: 'stopped' });
      return { resumed: true, result: { status: 'stopped', tenantId, inboundId: messageId, conversationId: rows[0].conversation_id, inline: [], queued: [], annotations: {}, stopReason: options.stop } };
    }
    const afterStage = options.afterStage ?? null;
    const { rows } = await db.query(
      `WITH m AS (
         UPDATE parley_inbound SET status = 'processing', resume_after = COALESCE($3, held_stage)
          WHERE tenant_id = $1 AND id = $2 AND status = 'held' AND COALESCE($3, held_stage) IS NOT NULL RETURNING *
       ), c AS (
         INSERT INTO parley_inbound_claims (inbound_id, tenant_id) SELECT id, tenant_id FROM m RETURNING token
       )
       SELECT m.*, c.token, v.handoff FROM m CROSS JOIN c JOIN parley_conversations v ON v.id = m.conversation_id`,
      [tenantId, messageId, afterStage],
    );
    const r = rows[0];
    if (!r) return { resumed: false, status: await statusOf(db, tenantId, messageId) };
    const message = inboundFromRow(r);
    this.deps.log.info({ tenant: tenantId, inboundId: messageId, afterStage: r.resume_after }, 'resuming a held message');
    const result = await this.deps.background.track(this.process(tenant, message, r.token, { handoff: r.handoff, startAfter: r.resume_after }), { plugin: 'core', what: 'resume a held message' });
    return { resumed: true, result };
  }

  /** The tenant's reply stages over each reply, in order, before anything is written. */
  private async screenReplies(tenant: TenantInfo, message: InboundMessage, replies: ReplyDraft[], messageLog: () => Logger, seqBase: number): Promise<OutgoingReply[]> {
    const stages = this.deps.replyStagesFor(tenant);
    if (!stages.length) return replies;
    const log = messageLog();
    const screened: OutgoingReply[] = [];
    for (const [i, reply] of replies.entries()) {
      const out = { tenant, channel: message.channel, to: message.from, from: message.to, text: reply.text, media: reply.media ?? [], options: reply.options ?? {}, inbound: message, key: `reply:${message.id}:${seqBase + i}` };
      const result = await screenOutgoing(stages, out, { log, timeoutMs: this.deps.stageTimeoutMs, metrics: this.deps.metrics });
      screened.push({ ...reply, text: result.text, verdict: result.verdict, annotations: result.annotations });
    }
    return screened;
  }
}

/** Blocked and held items are kept in the outbox but never sent (nor returned inline). */
function isSendable(item: OutboundMessage): boolean {
  return item.status !== 'blocked' && item.status !== 'held';
}

function deferred(tenant: TenantInfo, message: InboundMessage): ReceiveResult {
  return { status: 'deferred', tenantId: tenant.id, inboundId: message.id, conversationId: message.conversationId, inline: [], queued: [], annotations: {} };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function statusOf(db: Pool, tenantId: string, id: string): Promise<string | null> {
  const { rows } = await db.query<{ status: string }>('SELECT status FROM parley_inbound WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
  return rows[0]?.status ?? null;
}

/** A stored inbound row as the message stages see. */
export function inboundFromRow(r: Record<string, any>): InboundMessage {
  return { id: r.id, tenantId: r.tenant_id, conversationId: r.conversation_id, channel: r.channel, from: r.from_address, to: r.to_address, text: r.body, media: r.media, providerMessageId: r.provider_message_id, receivedAt: r.received_at, raw: r.raw, attributes: r.attributes };
}

/**
 * The stages of `current` (the list for the conversation's handoff state) that come after `after` in
 * the tenant's full pipeline `all`. A stage no longer in the pipeline (the configuration changed while
 * the message waited) is an error rather than a guess at where to continue.
 */
export function stagesAfter(current: ResolvedStage[], all: ResolvedStage[], after: string): ResolvedStage[] {
  const names = all.map((s) => s.definition.name);
  const at = names.indexOf(after);
  if (at < 0) throw new ParleyError('PARLEY_RESUME_STAGE_UNKNOWN', `Cannot resume after stage "${after}": it is no longer in the pipeline`, 409);
  return current.filter((s) => names.indexOf(s.definition.name) > at);
}

/** A payload no tenant owns through every filter's `unattributed` (a parked webhook of an unknown tenant). */
export function filterUnattributed(text: string, channel: string, filters: readonly { plugin: string; filter: InboundFilter }[]): string {
  let out = text;
  for (const { plugin, filter } of filters) {
    if (!filter.unattributed) continue;
    let next: string | undefined | void;
    try {
      next = filter.unattributed(out, { channel });
    } catch (error) {
      throw new ParleyError('PARLEY_INBOUND_FILTER_FAILED', `Inbound filter "${filter.name}" of plugin "${plugin}" failed: ${describe(error)}`, 500, { plugin });
    }
    if (typeof next === 'string') out = next;
  }
  return out;
}

/** One text through every inbound filter (a parked payload: `field` is `parked`). */
export function filterText(text: string, tenant: TenantInfo, channel: string, filters: readonly { plugin: string; filter: InboundFilter }[]): string {
  return filterInbound({ channel, from: '', to: '', providerMessageId: '', text }, tenant, filters, 'parked').text;
}

/**
 * The draft with every inbound filter applied to its text and to every string of its payload,
 * attributes and media captions, before anything of it is stored. A filter that throws fails it.
 */
export function filterInbound(draft: InboundDraft, tenant: TenantInfo, filters: readonly { plugin: string; filter: InboundFilter }[], textField: InboundFilterField = 'text'): InboundDraft {
  if (!filters.length) return draft;
  const changedBy: string[] = [];
  const apply = (text: string, field: InboundFilterField, track: boolean): string => {
    let out = text;
    for (const { plugin, filter } of filters) {
      let next: string | undefined | void;
      try {
        next = filter.transform(out, { tenant, channel: draft.channel, field });
      } catch (error) {
        throw new ParleyError('PARLEY_INBOUND_FILTER_FAILED', `Inbound filter "${filter.name}" of plugin "${plugin}" failed: ${describe(error)}`, 500, { plugin });
      }
      if (typeof next === 'string' && next !== out) {
        out = storableText(next);
        if (track && !changedBy.includes(filter.name)) changedBy.push(filter.name);
      }
    }
    return out;
  };
  const deep = (value: unknown, field: InboundFilterField, depth = 0): unknown => {
    if (typeof value === 'string') return apply(value, field, false);
    if (value === null || typeof value !== 'object' || depth > 64) return value;
    if (Array.isArray(value)) return value.map((v) => deep(v, field, depth + 1));
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v, field, depth + 1)]));
  };
  const text = apply(draft.text, textField, true);
  const attributes = (draft.attributes !== undefined ? deep(draft.attributes, 'attributes') : {}) as Record<string, unknown>;
  return {
    ...draft,
    text,
    ...(draft.raw !== undefined ? { raw: deep(draft.raw, 'raw') } : {}),
    ...(draft.media !== undefined ? { media: deep(draft.media, 'media') as InboundDraft['media'] } : {}),
    ...(changedBy.length ? { attributes: { ...attributes, filteredBy: changedBy } } : draft.attributes !== undefined ? { attributes } : {}),
  };
}

/** Whether the run holding `claim` still holds the message (the recovery sweep has not moved it on). */
async function holdsClaim(db: Pool, inboundId: string, claim: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM parley_inbound_claims WHERE inbound_id = $1 AND token = $2', [inboundId, claim]);
  return rows.length > 0;
}

/**
 * The inbound path: a channel's draft is recorded once (concurrent copies wait for the first), run
 * through the channel's first stages and the tenant's pipeline under the message's claim, and
 * finished in one statement with its replies, inline when the channel's budget allows.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { ParleyError } from './errors.js';
import type { HandoffState } from './plugin.js';
import type { InboundDraft, InboundMessage, OutboundMessage, ReplyDraft } from './message.js';
import type { ReceiveOptions, ReceiveResult } from './gateway-types.js';
import { runPipeline, type ResolvedStage } from './pipeline.js';
import { runWithTenant, type TenantDirectory, type TenantInfo } from './tenancy.js';
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
    this.recordWriter = new Batcher((items) => recordInboundMany(deps.db, items), 256, 2, batchFailed('recording inbound messages'));
    this.finishWriter = new Batcher((items) => finishInboundMany(deps.db, items), 256, 2, batchFailed('finishing inbound messages'));
  }

  /** Runs one inbound message through its tenant's pipeline, exactly once per provider message id. */
  async receive(draft: InboundDraft, options: ReceiveOptions = {}): Promise<ReceiveResult> {
    if (!this.deps.isAccepting()) throw new ParleyError('PARLEY_SHUTTING_DOWN', 'Parley is not accepting messages right now', 503);
    const tenant = draft.tenantId ? this.deps.tenants.get(draft.tenantId) : this.deps.tenants.resolve(draft.channel, draft.to);
    if (!tenant) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `No tenant owns ${draft.channel} address ${draft.tenantId ?? hashAddress(draft.to)}`, 404);
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

  private async processClaimed(tenant: TenantInfo, message: InboundMessage, claim: string, { window, inSession, handoff }: RunOptions): Promise<ReceiveResult> {
    const { db, metrics, outbox } = this.deps;
    const started = performance.now();
    const log = this.deps.log.child({ tenant: tenant.id, channel: message.channel, inboundId: message.id, from: hashAddress(message.from) });
    const outcome = await runWithTenant(tenant, () =>
      runPipeline({
        message,
        tenant,
        stages: this.deps.pipelineFor(tenant, message.channel, handoff),
        handoff,
        log,
        db,
        history: (limit) => loadHistory(db, tenant.id, message.conversationId, message.id, limit),
        isCurrentRun: () => holdsClaim(db, message.id, claim),
        stageTimeoutMs: this.deps.stageTimeoutMs,
      }),
    );
    for (const r of outcome.records) metrics.stageDuration.observe({ tenant: tenant.id, stage: r.stage, outcome: r.outcome }, r.selfMs / 1000);
    let replies = outcome.replies;
    if (outcome.error) {
      log.error({ err: outcome.error, stage: outcome.error.stage }, 'pipeline failed; sending the fallback reply');
      replies = tenant.fallbackReply ? [{ text: tenant.fallbackReply }] : [];
    }
    if (inSession) replies = replies.map((r) => ({ ...r, options: { ...r.options, inSession: true } }));
    const outgoing = await this.screenReplies(tenant, message, replies, log);
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
      log.warn({ status: outcome.status, replies: replies.length, ms: Math.round(performance.now() - started) }, 'a newer run holds this message; this run\'s replies were discarded');
      return deferred(tenant, message);
    }
    const written = finished.replies;
    if (outcome.handoff && outcome.handoff.state !== handoff) {
      metrics.handoffs.inc({ tenant: tenant.id, to: outcome.handoff.state, by: 'stage' });
      log.info({ handoff: outcome.handoff.state, stage: outcome.handoff.stage }, 'conversation handed off');
    }
    metrics.messagesIn.inc({ tenant: tenant.id, channel: message.channel, result: outcome.status });
    metrics.pipelineDuration.observe({ tenant: tenant.id, channel: message.channel }, (performance.now() - started) / 1000);
    const sendable = written.filter(isSendable);
    for (const w of written) if (!isSendable(w)) metrics.messagesOut.inc({ tenant: tenant.id, channel: message.channel, status: w.status });
    if (via === 'api' && sendable.length) await outbox.enqueue(sendable);
    // Provisional replies are counted and metered when the channel's response settles them.
    else if (sendable.length && !provisional) this.deps.countInline(sendable);
    log.debug({ status: outcome.status, replies: written.length, ms: Math.round(performance.now() - started) }, 'message processed');
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

  /** The tenant's reply stages over each reply, in order, before anything is written. */
  private async screenReplies(tenant: TenantInfo, message: InboundMessage, replies: ReplyDraft[], log: Logger): Promise<OutgoingReply[]> {
    const stages = this.deps.replyStagesFor(tenant);
    if (!stages.length) return replies;
    const screened: OutgoingReply[] = [];
    for (const [seq, reply] of replies.entries()) {
      const out = { tenant, channel: message.channel, to: message.from, from: message.to, text: reply.text, media: reply.media ?? [], options: reply.options ?? {}, inbound: message, key: `reply:${message.id}:${seq}` };
      const result = await runWithTenant(tenant, () => screenOutgoing(stages, out, { log, timeoutMs: this.deps.stageTimeoutMs, metrics: this.deps.metrics }));
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

/** Whether the run holding `claim` still holds the message (the recovery sweep has not moved it on). */
async function holdsClaim(db: Pool, inboundId: string, claim: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM parley_inbound_claims WHERE inbound_id = $1 AND token = $2', [inboundId, claim]);
  return rows.length > 0;
}

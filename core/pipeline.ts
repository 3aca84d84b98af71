/**
 * Runs a tenant's ordered stages over one message, onion-style (as Koa and Hono middleware): a stage
 * passes the message on only by calling `next()`. One that returns without calling it has handled the
 * message: later stages do not run, and the message is processed with the replies queued so far. `stop`
 * does the same with a recorded reason; a stage that throws fails the message.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { HistoryEntry, InboundMessage, ReplyDraft } from './message.js';
import type { StageContext, StageDefinition, StageRecord, AlertApi, HandoffChange, HandoffState } from './plugin.js';
import type { TenantInfo } from './tenancy.js';
import { StageError, describe } from './errors.js';
import { storableText } from './inbound-guard.js';

export interface ResolvedStage {
  plugin: string;
  definition: StageDefinition<any>;
  settings: unknown;
  alerts: AlertApi;
}

export interface PipelineInput {
  message: InboundMessage;
  tenant: TenantInfo;
  stages: ResolvedStage[];
  log: Logger;
  db: Pool;
  history: (limit: number) => Promise<HistoryEntry[]>;
  isCurrentRun: () => Promise<boolean>;
  stageTimeoutMs: number;
  /** The conversation's handoff state when the message arrived (default `bot`). */
  handoff?: HandoffState;
  /** What earlier runs annotated (a resumed message continues with the held run's annotations). */
  annotations?: Record<string, unknown>;
}

export interface PipelineOutcome {
  status: 'processed' | 'stopped' | 'held' | 'failed';
  replies: ReplyDraft[];
  annotations: Record<string, unknown>;
  records: StageRecord[];
  stopReason: string | null;
  error: StageError | null;
  /** The stage that held the message (`stage.hold`), when one did. */
  heldAt?: string;
  /** The last `stage.handoff` call, if any. */
  handoff?: HandoffChange;
}

export async function runPipeline(input: PipelineInput): Promise<PipelineOutcome> {
  const replies: ReplyDraft[] = [];
  const annotations: Record<string, unknown> = { ...input.annotations };
  const records: StageRecord[] = [];
  let stopped: { reason: string; stage: string } | null = null;
  let held: { reason: string; stage: string } | null = null;
  let historyCache: Promise<HistoryEntry[]> | undefined;
  let historyLimit = 0;
  let handoff: HandoffChange | undefined;
  const conversation = { handoff: input.handoff ?? 'bot' };

  const dispatch = async (i: number): Promise<void> => {
    const stage = input.stages[i];
    if (!stage || stopped || held) return;
    const name = stage.definition.name;
    let nextCalled = false;
    let childMs = 0;
    let ownReplies = 0; // this stage's own: after next() `replies` also holds later stages'
    // Made when the stage logs: a child logger for every stage of every message is work for nothing
    // when most stages log nothing at the configured level (bench/README.md, step 4.3).
    let log: Logger | undefined;
    const ctx: StageContext<unknown> = {
      message: input.message,
      tenant: input.tenant,
      settings: stage.settings,
      get log() {
        return (log ??= input.log.child({ stage: name }));
      },
      db: input.db,
      history(limit = 20) {
        if (!historyCache || limit > historyLimit) {
          historyLimit = limit;
          historyCache = input.history(limit);
        }
        return historyCache.then((h) => h.slice(-limit));
      },
      isCurrentRun: input.isCurrentRun,
      reply(reply) {
        ownReplies++;
        // Text PostgreSQL cannot hold (NUL, a lone surrogate) would fail the write that finishes the message.
        replies.push(typeof reply === 'string' ? { text: storableText(reply) } : { ...reply, text: storableText(reply.text) });
      },
      annotate(key, value) {
        annotations[key] = value;
      },
      get annotations() {
        return annotations;
      },
      get replies() {
        return replies;
      },
      stop(reason) {
        if (!held) stopped ??= { reason, stage: name };
      },
      hold(reason) {
        if (!stopped) held ??= { reason, stage: name };
      },
      get held() {
        return held ? { reason: held.reason } : null;
      },
      get stopped() {
        return stopped ? { reason: stopped.reason } : null;
      },
      alert(alert) {
        stage.alerts.raise({ ...alert, tenantId: input.tenant.id });
      },
      conversation,
      handoff(state, reason) {
        handoff = { state, reason, stage: name };
      },
    };
    const next = async () => {
      if (nextCalled) throw new Error(`stage "${name}" called next() twice`);
      nextCalled = true;
      const t = performance.now();
      try {
        await dispatch(i + 1);
      } finally {
        childMs += performance.now() - t;
      }
    };
    const started = performance.now();
    const record: StageRecord = { stage: name, plugin: stage.plugin, outcome: 'passed', selfMs: 0 };
    records.push(record);
    try {
      await withTimeout(Promise.resolve(stage.definition.handle(ctx, next)), input.stageTimeoutMs, name);
      const stop = stopped as { reason: string; stage: string } | null;
      const hold = held as { reason: string; stage: string } | null;
      if (hold?.stage === name) {
        record.outcome = 'held';
        record.reason = hold.reason;
      } else if (stop?.stage === name) {
        record.outcome = 'stopped';
        record.reason = stop.reason;
      } else if (ownReplies > 0) record.outcome = 'replied';
      else if (!nextCalled) record.outcome = 'handled';
    } catch (error) {
      if (error instanceof StageError) throw error;
      record.outcome = 'failed';
      record.error = describe(error);
      throw new StageError(name, stage.plugin, error);
    } finally {
      record.selfMs = Math.max(0, performance.now() - started - childMs);
    }
  };

  try {
    await dispatch(0);
  } catch (error) {
    const stageError = error instanceof StageError ? error : new StageError('(pipeline)', 'kernel', error);
    return { status: 'failed', replies: [], annotations, records, stopReason: null, error: stageError, ...(handoff ? { handoff } : {}) };
  }
  const finalHold = held as { reason: string; stage: string } | null;
  if (finalHold) return { status: 'held', replies, annotations, records, stopReason: finalHold.reason, error: null, heldAt: finalHold.stage, ...(handoff ? { handoff } : {}) };
  const finalStop = stopped as { reason: string } | null;
  return { status: finalStop ? 'stopped' : 'processed', replies, annotations, records, stopReason: finalStop?.reason ?? null, error: null, ...(handoff ? { handoff } : {}) };
}

/** Rejects when `promise` has not settled within `ms`, naming the stage. */
export function withTimeout<T>(promise: Promise<T>, ms: number, stage: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stage "${stage}" did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs a tenant's reply stages over one outgoing message, onion-style: each may rewrite the text,
 * annotate, or block/hold the message with a reason, which ends the chain. The rule for `next` is the
 * inbound pipeline's: a stage that returns without calling it ends the chain there (the message goes
 * out as it is). A stage that throws or times out holds the message (fail closed). Consent is checked
 * after this, by the kernel.
 */
import type { Logger } from 'pino';
import type { InboundMessage, MediaAttachment } from './message.js';
import type { AlertApi, ReplyStageContext, ReplyStageDefinition, ReplyVerdict } from './plugin.js';
import type { TenantInfo } from './tenancy.js';
import { describe } from './errors.js';
import { storableText } from './inbound-guard.js';
import { withTimeout } from './pipeline.js';
import type { CoreMetrics } from './metrics.js';

export interface ResolvedReplyStage {
  plugin: string;
  definition: ReplyStageDefinition<any>;
  settings: unknown;
  alerts: AlertApi;
}

/** An outgoing message before the reply stages. */
export interface Outgoing {
  tenant: TenantInfo;
  channel: string;
  to: string;
  from: string;
  text: string;
  media: MediaAttachment[];
  options: Record<string, unknown>;
  inbound: InboundMessage | null;
  key: string;
}

export interface ReplyStagesOutcome {
  text: string;
  annotations: Record<string, unknown>;
  verdict: ReplyVerdict | null;
  /** The stage that failed (and so held the message), if one did. */
  failed?: { stage: string; plugin: string; error: unknown };
}

export async function runReplyStages(stages: readonly ResolvedReplyStage[], out: Outgoing, log: Logger, timeoutMs: number): Promise<ReplyStagesOutcome> {
  let text = out.text;
  const annotations: Record<string, unknown> = {};
  let verdict: ReplyVerdict | null = null;
  let failed: ReplyStagesOutcome['failed'];

  const dispatch = async (i: number): Promise<void> => {
    const stage = stages[i];
    if (!stage || verdict) return;
    const name = stage.definition.name;
    let nextCalled = false;
    const decide = (status: ReplyVerdict['status'], reason: string) => {
      verdict ??= { status, reason, stage: name };
    };
    const ctx: ReplyStageContext<unknown> = {
      tenant: out.tenant,
      channel: out.channel,
      to: out.to,
      from: out.from,
      get text() {
        return text;
      },
      media: out.media,
      options: out.options,
      inbound: out.inbound,
      key: out.key,
      settings: stage.settings,
      log: log.child({ replyStage: name }),
      rewrite(next) {
        text = storableText(next);
      },
      annotate(key, value) {
        annotations[key] = value;
      },
      get annotations() {
        return annotations;
      },
      block: (reason) => decide('blocked', reason),
      hold: (reason) => decide('held', reason),
      get verdict() {
        return verdict;
      },
    };
    const next = async () => {
      if (nextCalled) throw new Error(`reply stage "${name}" called next() twice`);
      nextCalled = true;
      await dispatch(i + 1);
    };
    try {
      await withTimeout(Promise.resolve(stage.definition.handle(ctx, next)), timeoutMs, name);
    } catch (error) {
      if (failed) throw error;
      failed = { stage: name, plugin: stage.plugin, error };
      decide('held', `reply stage "${name}" failed: ${describe(error)}`);
      throw error;
    }
  };

  try {
    await dispatch(0);
  } catch {
    // Recorded in `failed`; the message is held.
  }
  return { text, annotations, verdict, ...(failed ? { failed } : {}) };
}

/** Runs the reply stages over one outgoing message, logging and counting a failure or a verdict. */
export async function screenOutgoing(
  stages: readonly ResolvedReplyStage[],
  out: Outgoing,
  input: { log: Logger; timeoutMs: number; metrics: CoreMetrics },
): Promise<{ text: string; annotations: Record<string, unknown>; verdict: ReplyVerdict | null }> {
  if (!stages.length) return { text: out.text, annotations: {}, verdict: null };
  const outcome = await runReplyStages(stages, out, input.log, input.timeoutMs);
  if (outcome.failed) {
    input.log.error({ err: outcome.failed.error, plugin: outcome.failed.plugin, replyStage: outcome.failed.stage, key: out.key }, 'a reply stage failed; the message is held');
  }
  if (outcome.verdict) {
    input.metrics.replyVerdicts.inc({ tenant: out.tenant.id, stage: outcome.verdict.stage, verdict: outcome.failed ? 'failed' : outcome.verdict.status });
  }
  return { text: outcome.text, annotations: outcome.annotations, verdict: outcome.verdict };
}

/**
 * The three places moderation screens: the inbound filter (redaction before the kernel stores
 * anything), the inbound stage (flag, hold, block; crisis first) and the reply stage (replies and
 * other sends, model text included).
 */
import type { Pool } from 'pg';
import type { AiService, InboundFilter, ReplyStageDefinition, StageDefinition } from 'parley';
import { redact, screenText, type SpamCounts } from './screen.js';
import { normaliseForRepeat } from './detectors.js';
import { modelOpinion } from './model.js';
import type { ModerationMetrics } from './metrics.js';
import type { QueueStore } from './store.js';
import type { Action, Flag, ModerationSettings, Verdict } from './types.js';

export const MODERATION_STAGE = 'moderation';
export const FILTER_NAME = 'moderation.redact';
/** The annotation later stages read, and the one crisis-guard writes (its stage runs first). */
export const MODERATION_ANNOTATION = 'moderation';
const CRISIS_ANNOTATION = 'crisis';

export interface StageDeps {
  db: Pool;
  store: QueueStore;
  metrics: ModerationMetrics;
  ai: AiService;
  settingsFor(tenantId: string): ModerationSettings | undefined;
}

/** Redaction before storage: pure and cheap, it runs on the text and every string of the payload. */
export function redactionFilter(deps: Pick<StageDeps, 'settingsFor'>, unattributed: ModerationSettings): InboundFilter {
  const masked = (text: string, settings: ModerationSettings) => {
    const r = redact(text, settings);
    return r.categories.length ? r.text : undefined;
  };
  return {
    name: FILTER_NAME,
    transform(text, { tenant }) {
      const settings = deps.settingsFor(tenant.id);
      return settings ? masked(text, settings) : undefined;
    },
    // A webhook no tenant owns: personal data masked with the default thresholds (option `unattributedPiiKinds`).
    unattributed: (text) => (unattributed.piiKinds.length ? masked(text, unattributed) : undefined),
  };
}

/** What is annotated and kept on the queue item: the findings without any text. */
function summary(verdict: Verdict, extra: Record<string, unknown>) {
  return {
    action: verdict.action,
    safe: verdict.safe,
    confidence: verdict.confidence,
    flags: verdict.flags.map(({ category, detector, score, action, details }) => ({ category, detector, score, action, details })),
    ...extra,
  };
}

function categoriesOf(verdict: Verdict, action: Action): Flag['category'][] {
  return [...new Set(verdict.flags.filter((f) => f.action === action).map((f) => f.category))];
}

async function modelFlag(deps: StageDeps, settings: ModerationSettings, tenantId: string, text: string, ref: string, log: { warn: (o: object, m: string) => void }): Promise<Flag | null> {
  if (!settings.model.enabled) return null;
  const r = await modelOpinion(deps.ai, tenantId, text, ref, settings.model.timeoutMs);
  deps.metrics.modelChecks.inc({ result: r.outcome });
  if (r.outcome === 'failed') log.warn({ ref }, 'moderation model check failed; the rules decided alone');
  return r.flag;
}

/** How many of the sender's recent messages say the same, and how many they sent in the burst window. */
async function spamCounts(db: Pool, settings: ModerationSettings, tenantId: string, conversationId: string, messageId: string, text: string, history: () => Promise<{ direction: 'in' | 'out'; text: string }[]>): Promise<SpamCounts> {
  const same = normaliseForRepeat(text);
  const recent = await history();
  const sameAsRecent = same.length ? recent.filter((h) => h.direction === 'in' && normaliseForRepeat(h.text) === same).length : 0;
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM parley_inbound WHERE tenant_id = $1 AND conversation_id = $2 AND received_at > now() - make_interval(secs => $3) AND id <> $4`,
    [tenantId, conversationId, settings.spam.burst.seconds, messageId],
  );
  return { sameAsRecent, recentCount: (rows[0]?.n ?? 0) + 1 };
}

export function inboundStage(deps: StageDeps): StageDefinition<ModerationSettings> {
  return {
    name: MODERATION_STAGE,
    runsDuringHandoff: true,
    async handle(stage, next) {
      const { message, tenant, settings } = stage;
      // crisis-guard runs first: a person in danger is never held or blocked, only flagged.
      const crisis = stage.annotations[CRISIS_ANNOTATION] !== undefined;
      const spam = await spamCounts(deps.db, settings, tenant.id, message.conversationId, message.id, message.text, () => stage.history(20));
      const model = await modelFlag(deps, settings, tenant.id, message.text, message.id, stage.log);
      const verdict = screenText(message.text, settings, { spam, model, ...(crisis ? { cap: 'flag' as const } : {}) });
      const redacted = Array.isArray(message.attributes.filteredBy) && message.attributes.filteredBy.includes(FILTER_NAME);
      if (redacted) deps.metrics.redactions.inc({ tenant: tenant.id });
      const action: Action = verdict.action === 'allow' && redacted ? 'redact' : verdict.action;
      stage.annotate(MODERATION_ANNOTATION, summary(verdict, { action, redacted, ...(crisis ? { crisis: true } : {}) }));
      deps.metrics.actions.inc({ tenant: tenant.id, direction: 'inbound', action });
      for (const f of verdict.flags) if (f.action !== 'allow') deps.metrics.flags.inc({ tenant: tenant.id, direction: 'inbound', category: f.category, action: f.action });

      if (action === 'block') {
        const categories = categoriesOf(verdict, 'block');
        stage.log.info({ categories, confidence: verdict.confidence }, 'moderation blocked a message');
        if (settings.blockReply) stage.reply({ text: settings.blockReply, options: { moderation: 'blocked' } });
        return stage.stop(`moderation: blocked (${categories.join(', ')})`);
      }
      if (action !== 'hold') return next();

      const categories = categoriesOf(verdict, 'hold');
      const { item, created } = await deps.store.ensure({
        tenantId: tenant.id,
        direction: 'inbound',
        ref: message.id,
        messageId: message.id,
        outboxId: null,
        conversationId: message.conversationId,
        channel: message.channel,
        participant: message.from,
        categories,
        flags: summary(verdict, {}).flags,
        confidence: verdict.confidence,
        heldStage: MODERATION_STAGE,
      });
      // A re-run of a message already decided (recovery) follows the decision.
      if (item.status === 'approved' || item.status === 'dismissed') return next();
      if (item.status === 'rejected') return stage.stop('moderation: rejected');
      stage.annotate(MODERATION_ANNOTATION, summary(verdict, { action, redacted, itemId: item.id }));
      if (created) stage.log.info({ itemId: item.id, categories, confidence: verdict.confidence }, 'moderation held a message for review');
      const notice = settings.holdNotice;
      if (notice.text && !notice.skipChannels.includes(message.channel)) stage.reply({ text: notice.text, options: { moderation: 'hold-notice' } });
      return stage.hold(`moderation: held for review (${categories.join(', ')})`);
    },
  };
}

export function replyStage(deps: StageDeps): ReplyStageDefinition<ModerationSettings> {
  return {
    name: MODERATION_STAGE,
    async handle(out, next) {
      // The plugin's own texts (hold notice, block and reject replies) are the tenant's settings, not screened again.
      if (typeof out.options.moderation === 'string') return next();
      const settings = { ...out.settings, piiKinds: out.settings.outbound.piiKinds };
      // crisis-guard's reply (numbers to call) is never held, blocked or rewritten.
      const crisis = out.options.crisisGuard === true;
      const model = crisis ? null : await modelFlag(deps, settings, out.tenant.id, out.text, `${out.key}:moderation`, out.log);
      const verdict = screenText(out.text, settings, { spam: null, model, ...(crisis ? { cap: 'flag' as const } : {}) });
      out.annotate(MODERATION_ANNOTATION, summary(verdict, crisis ? { crisis: true } : {}));
      deps.metrics.actions.inc({ tenant: out.tenant.id, direction: 'outbound', action: verdict.action });
      for (const f of verdict.flags) if (f.action !== 'allow') deps.metrics.flags.inc({ tenant: out.tenant.id, direction: 'outbound', category: f.category, action: f.action });
      if (verdict.action === 'redact') {
        out.rewrite(verdict.redacted);
        return next();
      }
      if (verdict.action === 'block') return out.block(`moderation: blocked (${categoriesOf(verdict, 'block').join(', ')})`);
      if (verdict.action !== 'hold') return next();
      const categories = categoriesOf(verdict, 'hold');
      const { item } = await deps.store.ensure({
        tenantId: out.tenant.id,
        direction: 'outbound',
        ref: out.key,
        messageId: out.inbound?.id ?? null,
        outboxId: out.key.startsWith('out:') ? out.key.slice(4) : null,
        conversationId: out.inbound?.conversationId ?? null,
        channel: out.channel,
        participant: out.to,
        categories,
        flags: summary(verdict, {}).flags,
        confidence: verdict.confidence,
        heldStage: null,
      });
      out.annotate(MODERATION_ANNOTATION, summary(verdict, { itemId: item.id }));
      out.log.info({ itemId: item.id, categories, key: out.key }, 'moderation held an outgoing message for review');
      return out.hold(`moderation: held for review (${categories.join(', ')})`);
    },
  };
}

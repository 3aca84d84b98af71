/**
 * The `crisis-guard` stage: first in a tenant's pipeline, and run during a human handoff too. On
 * present danger it queues the crisis reply (reaching an opted-out sender as well), records the
 * detection, raises a critical alert, hands the conversation to a person, annotates `crisis` for later
 * stages, and passes the message on so later safety stages still run.
 */
import { hashAddress, type StageContext, type StageDefinition } from 'parley';
import { detectCrisis, isBorderline } from './detector.js';
import type { CrisisMetrics } from './metrics.js';
import type { DetectionStore } from './store.js';
import type { CrisisGuardSettings, CrisisVerdict, SecondOpinion } from './types.js';

export const CRISIS_STAGE = 'crisis-guard';
/** The annotation later stages read (`medical-answers` never answers a crisis with a search result alone). */
export const CRISIS_ANNOTATION = 'crisis';

export interface CrisisStageDeps {
  store: DetectionStore;
  metrics: CrisisMetrics;
  isOptedOut(tenantId: string, address: string): Promise<boolean>;
  publicBaseUrl: string | undefined;
  secondOpinion?: SecondOpinion;
  secondOpinionTimeoutMs: number;
}

/** The tenant's crisis text in the message's language, with the current numbers of the tenant's country. */
export function crisisReply(settings: CrisisGuardSettings, language: CrisisVerdict['language']): string {
  const numbers = settings.numbers[settings.country]!;
  const values: Record<string, string> = { emergency: numbers.emergency, crisisLine: numbers.crisisLine, textLine: numbers.textLine ?? '' };
  return settings.templates[language].replace(/\{(emergency|crisisLine|textLine)\}/g, (_, key: string) => values[key]!);
}

async function verdictFor(stage: StageContext<CrisisGuardSettings>, deps: CrisisStageDeps): Promise<CrisisVerdict> {
  const verdict = detectCrisis(stage.message.text, { categories: stage.settings.categories });
  if (!deps.secondOpinion || !stage.settings.secondOpinion || !isBorderline(verdict)) return verdict;
  try {
    const opinion = await deps.secondOpinion({ text: stage.message.text, language: verdict.language, signal: AbortSignal.timeout(deps.secondOpinionTimeoutMs) });
    deps.metrics.secondOpinions.inc({ result: opinion.crisis ? 'crisis' : 'not-crisis' });
    if (!opinion.crisis) return verdict;
    const category = opinion.category && stage.settings.categories.includes(opinion.category) ? opinion.category : 'other_emergency';
    return { ...verdict, crisis: true, categories: [category], ruleIds: [...verdict.ruleIds, 'model'] };
  } catch (error) {
    // The rules decide alone when the model is slow or down: a second opinion is never required.
    deps.metrics.secondOpinions.inc({ result: 'failed' });
    stage.log.warn({ err: error }, 'crisis second opinion failed; the rules decided alone');
    return verdict;
  }
}

export function crisisStage(deps: CrisisStageDeps): StageDefinition<CrisisGuardSettings> {
  return {
    name: CRISIS_STAGE,
    runsDuringHandoff: true,
    async handle(stage, next) {
      const verdict = await verdictFor(stage, deps);
      if (!verdict.crisis) return next();

      const { message, tenant, settings } = stage;
      // An opted-out person still gets the crisis numbers: they wrote to us. Only then is the reply
      // marked as the consent exception, so everyone else's reply takes the ordinary path (notices).
      const optedOut = await deps.isOptedOut(tenant.id, message.from);
      stage.reply({ text: crisisReply(settings, verdict.language), options: { crisisGuard: true, ...(optedOut ? { consentNotice: true } : {}) } });
      const handOff = settings.handoff && stage.conversation.handoff !== 'human';
      if (handOff) stage.handoff('human', `crisis: ${verdict.categories.join(', ')}`);

      const { id, created } = await deps.store.record({
        tenantId: tenant.id,
        conversationId: message.conversationId,
        messageId: message.id,
        channel: message.channel,
        categories: verdict.categories,
        language: verdict.language,
        ruleIds: verdict.ruleIds,
        handedOff: settings.handoff,
      });
      stage.annotate(CRISIS_ANNOTATION, { detectionId: id, categories: verdict.categories, language: verdict.language, ruleIds: verdict.ruleIds });
      stage.log.warn({ detectionId: id, categories: verdict.categories, language: verdict.language, ruleIds: verdict.ruleIds }, 'crisis detected');
      // A re-run of the same message (recovery) alerts and counts once.
      if (created) {
        for (const category of verdict.categories) deps.metrics.detections.inc({ tenant: tenant.id, category, language: verdict.language });
        const link = `${deps.publicBaseUrl?.replace(/\/$/, '') ?? ''}/v1/tenants/${encodeURIComponent(tenant.id)}/conversations/${message.conversationId}/messages`;
        stage.alert({
          key: `crisis-guard.detection:${id}`,
          severity: 'critical',
          summary: `Crisis message (${verdict.categories.join(', ')}) from ${hashAddress(message.from)} to ${tenant.name}${settings.handoff ? ': handed to a person' : ''}`,
          details: {
            tenant: tenant.id,
            from: hashAddress(message.from),
            channel: message.channel,
            conversationId: message.conversationId,
            messageId: message.id,
            detectionId: id,
            categories: verdict.categories,
            language: verdict.language,
            link,
          },
        });
      }
      await next();
    },
  };
}

/**
 * `crisis-guard`: the first stage of a tenant's pipeline. Finds present danger to life in a message
 * (English and Spanish), answers at once with the tenant's crisis text and numbers, alerts operations,
 * hands the conversation to a person and records the detection; operators review false positives.
 */
import { definePlugin } from 'parley';
import { crisisMetrics } from './metrics.js';
import { detectionRoutes } from './routes.js';
import { crisisStage } from './stage.js';
import { DetectionStore, migrations } from './store.js';
import { settingsSchema, type SecondOpinion } from './types.js';

export { detectCrisis, normalise } from './detector.js';
export { crisisReply, CRISIS_ANNOTATION, CRISIS_STAGE } from './stage.js';
export { CRISIS_CATEGORIES, type CrisisCategory, type CrisisGuardSettings, type CrisisVerdict, type SecondOpinion } from './types.js';

export interface CrisisGuardDeps {
  /** A chat-model second opinion on borderline messages (optional: the rules work alone). */
  secondOpinion?: SecondOpinion;
  /** How long the second opinion may take before the rules decide alone (default 2 s). */
  secondOpinionTimeoutMs?: number;
}

/**
 * Builds the plugin. The default export is `createCrisisGuard()`, rules only.
 * @example
 * // parley.yaml
 * // tenants:
 * //   - id: clinic
 * //     pipeline: [crisis-guard, keyword-replies]
 * //     plugins: { crisis-guard: { country: US } }
 */
export function createCrisisGuard(deps: CrisisGuardDeps = {}) {
  return definePlugin({
    name: 'crisis-guard',
    kind: 'capability',
    description: 'Finds present danger to life in messages (EN/ES), replies with crisis numbers, alerts operations and hands the conversation to a person.',
    settingsSchema,
    setup(ctx) {
      const store = new DetectionStore(ctx.db);
      const metrics = crisisMetrics(ctx.metrics);
      ctx.migrations(migrations);
      ctx.dataSubjects(store.dataSubjectProvider());
      ctx.stage(
        crisisStage({
          store,
          metrics,
          isOptedOut: (tenantId, address) => ctx.gateway.consent.isOptedOut(tenantId, address),
          publicBaseUrl: ctx.publicBaseUrl,
          ...(deps.secondOpinion ? { secondOpinion: deps.secondOpinion } : {}),
          secondOpinionTimeoutMs: deps.secondOpinionTimeoutMs ?? 2000,
        }),
      );
      ctx.routes(detectionRoutes({ store, metrics, enabled: (tenantId) => ctx.settingsFor(tenantId) !== undefined }));
    },
  });
}

export default createCrisisGuard();

/**
 * `moderation`: screens what end users send and what Parley is about to send (model replies
 * included) for profanity and slurs, harassment and threats, spam and personal data, with an
 * optional model detector; per tenant a policy of allow, flag, redact, hold or block per category;
 * redaction before the kernel stores anything; held items go to a review queue whose decisions
 * continue the pipeline (or send the held reply) exactly once.
 */
import { z } from 'zod';
import { definePlugin, token } from 'parley';
import { moderationMetrics } from './metrics.js';
import { moderationRoutes } from './routes.js';
import { ModerationService } from './service.js';
import { inboundStage, redactionFilter, replyStage } from './stages.js';
import { QueueStore, migrations } from './store.js';
import { PII_KINDS, settingsSchema } from './types.js';

export { MODERATION_ANNOTATION, MODERATION_STAGE, FILTER_NAME } from './stages.js';
export { ACTIONS, CATEGORIES, PII_KINDS, type Action, type Category, type Flag, type ModerationSettings, type Verdict } from './types.js';
export type { ModerationService } from './service.js';

/** The service, for tests and for plugins that depend on moderation (`ctx.inject`). */
export const MODERATION_SERVICE = token<ModerationService>('moderation.service');

const optionsSchema = z.object({
  /** When the backlog tick runs (SLA alert, auto-dismiss, decisions cut off by a crash): cron, five or six fields. */
  backlogCron: z.string().min(9).default('* * * * *'),
  /**
   * Personal data masked in a webhook parked before its tenant is known (a number no tenant has): no
   * tenant policy applies to it, so this one does. `[]` keeps such payloads as received (addresses hashed).
   */
  unattributedPiiKinds: z.array(z.enum(PII_KINDS)).default([...PII_KINDS]),
});

export default definePlugin({
  name: 'moderation',
  kind: 'capability',
  description: 'Screens messages in both directions (profanity, harassment, spam, personal data, optional model), redacts before storage and holds for human review.',
  optionsSchema,
  settingsSchema,
  setup(ctx) {
    const store = new QueueStore(ctx.db);
    const metrics = moderationMetrics(ctx.metrics, store);
    const settingsFor = (tenantId: string) => ctx.settingsFor(tenantId);
    ctx.migrations(migrations);
    ctx.dataSubjects(store.dataSubjectProvider());
    ctx.inboundFilter(redactionFilter({ settingsFor }, settingsSchema.parse({ piiKinds: ctx.options.unattributedPiiKinds })));
    const stageDeps = { db: ctx.db, store, metrics, ai: ctx.ai, settingsFor };
    ctx.stage(inboundStage(stageDeps));
    ctx.replyStage(replyStage(stageDeps));
    const service = new ModerationService({ db: ctx.db, store, metrics, gateway: ctx.gateway, alerts: ctx.alerts, log: ctx.log, tenants: () => ctx.tenants(), settingsFor, publicBaseUrl: ctx.publicBaseUrl });
    ctx.provide(MODERATION_SERVICE, service);
    ctx.routes(moderationRoutes({ store, service, metrics, ai: ctx.ai, settingsFor }));
    ctx.schedule({ name: 'moderation-backlog', cron: ctx.options.backlogCron, process: () => service.tick() });
  },
});

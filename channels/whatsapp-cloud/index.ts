/**
 * The `whatsapp-cloud` channel: Meta's official WhatsApp Cloud API. One webhook per Meta app
 * (`GET/POST /whatsapp/cloud/webhook`); each tenant brings its phone number id, token and app secret.
 */
import { definePlugin } from 'parley';
import { cloudMetrics } from './metrics.js';
import { createCloudSender, observeSends } from './sender.js';
import { loadTenants } from './tenants.js';
import { optionsSchema, settingsSchema } from './types.js';
import { createBilledUsage } from './usage.js';
import { createCloudWebhook } from './webhook.js';

export { CHANNEL as WHATSAPP_CLOUD_CHANNEL } from './types.js';
import { CHANNEL } from './types.js';
export type { WhatsAppCloudSettings, WhatsAppCloudOptions } from './types.js';
export { WEBHOOK_PATH } from './webhook.js';

/** What tests (or an embedding application) may replace. */
export interface WhatsAppCloudDeps {
  /** HTTP client for the Graph API; the global fetch by default. */
  fetch?: typeof fetch;
  /** Clock for the 24-hour window. */
  now?: () => Date;
}

/**
 * Builds the channel plugin. The default export is `createWhatsAppCloudChannel()`.
 * @example
 * // parley.yaml
 * // tenants:
 * //   - id: acme
 * //     plugins:
 * //       whatsapp-cloud: { phoneNumberId: '1065...', accessToken: '${WA_TOKEN}', appSecret: '${WA_APP_SECRET}', verifyToken: '${WA_VERIFY}' }
 */
export function createWhatsAppCloudChannel(deps: WhatsAppCloudDeps = {}) {
  const now = deps.now ?? (() => new Date());
  return definePlugin({
    name: 'whatsapp-cloud',
    kind: 'channel',
    description: "WhatsApp through Meta's Cloud API: signed webhooks, delivery statuses, template fallback outside the 24-hour window.",
    optionsSchema,
    settingsSchema,
    setup(ctx) {
      const tenants = loadTenants(ctx, deps.fetch);
      const metrics = cloudMetrics(ctx.metrics);
      const webhook = createCloudWebhook({ ctx, metrics, tenants, recordBilled: createBilledUsage({
          usage: ctx.usage,
          metrics,
          conversationOf: async (tenantId, wamid) =>
            (await ctx.db.query<{ conversation_id: string | null }>('SELECT conversation_id FROM parley_outbox WHERE channel = $1 AND provider_message_id = $2 AND tenant_id = $3 LIMIT 1', [CHANNEL, wamid, tenantId])).rows[0]?.conversation_id ?? null,
        }) });

      ctx.routes(webhook.routes);
      ctx.sender(createCloudSender({ db: ctx.db, now, connectionFor: tenants.connectionFor, observe: observeSends(metrics, ctx.alerts) }));
      ctx.health(tenants.health);
      return { stop: webhook.stop };
    },
  });
}

export default createWhatsAppCloudChannel();

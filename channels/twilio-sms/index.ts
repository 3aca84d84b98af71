/**
 * The `twilio-sms` channel: SMS, MMS and WhatsApp-through-Twilio. `POST /twilio/sms` takes inbound
 * messages (signature checked, deduplicated on MessageSid by the kernel), answers consent keywords
 * through the `twilio-sms.consent` stage (the channel's first stage: it runs before every tenant's
 * pipeline), and replies inline in TwiML when the pipeline is quick or through the REST API via the
 * outbox when it is not. `POST /twilio/status` records delivery.
 */
import { definePlugin } from 'parley';
import { createClientCache, createTwilioClient } from './client.js';
import { consentStage } from './consent.js';
import { optOutNoticeStage } from './opt-out-notice.js';
import { credentialHealth } from './health.js';
import { SegmentLedger, createLedgerAccount, createSegmentUsage, ledgerMigrations } from './ledger.js';
import { twilioMetrics } from './metrics.js';
import { TWILIO_SMS_SHARED, twilioSmsShared } from './shared.js';
import { smsWebhooks } from './routes.js';
import { createSmsSender } from './sender.js';
import { webhookUrl } from './signature.js';
import { numbersRoute } from './numbers.js';
import { loadTenants } from './tenants.js';
import { CONSENT_STAGE, TWILIO_SMS_CHANNEL, optionsSchema, settingsSchema } from './types.js';
import { createSignatureGuard } from './webhook.js';

export { TWILIO_SMS_CHANNEL, CONSENT_STAGE } from './types.js';
export type { TwilioSmsSettings, TwilioSmsOptions } from './types.js';
export { offReason } from './webhook.js';
export { consentStageListed } from './tenants.js';

export interface TwilioSmsChannelDeps {
  /** Builds the SDK client of a tenant; by default the real SDK, redirected by `options.apiBaseUrl`. */
  createClient?: typeof createTwilioClient;
}

/**
 * @example
 * // parley.yaml
 * // tenants: [{ id: acme, pipeline: [keyword-replies],
 * //   plugins: { twilio-sms: { accountSid: ${TWILIO_ACCOUNT_SID}, authToken: ${TWILIO_AUTH_TOKEN}, numbers: [+15551234567] } } }]
 */
export function createTwilioSmsChannel(deps: TwilioSmsChannelDeps = {}) {
  const makeClient = deps.createClient ?? createTwilioClient;
  return definePlugin({
    name: TWILIO_SMS_CHANNEL,
    kind: 'channel',
    description: 'SMS, MMS and WhatsApp through Twilio: signed webhooks, consent keywords, inline TwiML or REST replies, delivery status.',
    optionsSchema,
    settingsSchema,
    setup(ctx) {
      const { options } = ctx;
      const metrics = twilioMetrics(ctx.metrics);
      ctx.provide(TWILIO_SMS_SHARED, twilioSmsShared(metrics));
      const ledger = new SegmentLedger(ctx.db);
      const recordUsage = createSegmentUsage({ usage: ctx.usage, metrics, log: ctx.log });
      const tenants = loadTenants(ctx);
      const credentials = credentialHealth(ctx, tenants);
      const consent = () => ctx.gateway.consent;
      const clientFor = createClientCache(makeClient, options);

      ctx.migrations(ledgerMigrations);
      ctx.stage(consentStage({ consent, policyFor: (tenantId) => tenants.get(tenantId)?.policy }));
      // Before every tenant's pipeline, for this channel only (recovered messages too).
      ctx.channelStages(TWILIO_SMS_CHANNEL, [CONSENT_STAGE]);
      ctx.replyStage(optOutNoticeStage(ctx.db));
      ctx.sender(
        createSmsSender({
          log: ctx.log,
          metrics,
          ledger,
          recordUsage,
          consent,
          tenantState: tenants.senderState,
          client: clientFor,
          statusCallbackUrl: ctx.publicBaseUrl ? webhookUrl(ctx.publicBaseUrl, options.statusCallbackPath) : undefined,
          onAuthFailure: credentials.onAuthFailure,
        }),
      );
      ctx.routes(numbersRoute({ tenants, clientFor, publicBaseUrl: ctx.publicBaseUrl }));
      ctx.dataSubjects(ledger.dataSubjectProvider());
      ctx.health(credentials.health);
      ctx.routes(
        smsWebhooks({
          ctx,
          metrics,
          tenants,
          ledger,
          account: createLedgerAccount({ ledger, usage: ctx.usage, metrics, log: ctx.log, recordUsage }),
          guard: createSignatureGuard({ log: ctx.log, metrics, policy: { publicBaseUrl: ctx.publicBaseUrl, trustProxy: options.trustProxy } }),
        }),
      );
    },
  });
}

export default createTwilioSmsChannel();

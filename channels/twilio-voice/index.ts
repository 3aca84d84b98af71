/**
 * The `twilio-voice` channel: a phone call is one conversation with the tenant's pipeline. Twilio
 * posts the call to `/twilio/voice` (greeting, then `<Gather input="speech dtmf">`); each answer
 * posts to `/twilio/voice/gather?turn=N`, runs the pipeline and is spoken with `<Say>`; silence and
 * unclear speech are asked again, then the call ends politely; "goodbye" ends it; a stage asking for
 * a human (`handoff`) transfers the caller with `<Dial>`. Call status callbacks are recorded, and a
 * completed call's billable minutes go to the usage ledger (`voice.minutes.in` / `.out`).
 *
 * Its own settings (not twilio-sms's) so a tenant can take calls without SMS; the credentials are
 * usually the same environment variables.
 */
import { definePlugin } from 'parley';
import { CallStore, callMigrations } from './calls.js';
import { voiceMetrics } from './metrics.js';
import { createVoiceSender } from './sender.js';
import { TWILIO_SMS_SHARED, type TwilioSmsShared } from './shared.js';
import { loadTenants } from './tenants.js';
import { TWILIO_VOICE_CHANNEL, optionsSchema, settingsSchema } from './types.js';
import { createCallUsage } from './usage.js';
import { voiceWebhooks } from './webhook.js';

export { TWILIO_VOICE_CHANNEL } from './types.js';
export type { TwilioVoiceSettings, TwilioVoiceOptions } from './types.js';

export interface TwilioVoiceChannelDeps {
  /** Builds the SDK client of a tenant; by default twilio-sms's (the real SDK, redirected by `options.apiBaseUrl`). */
  createClient?: TwilioSmsShared['createTwilioClient'];
}

export function createTwilioVoiceChannel(deps: TwilioVoiceChannelDeps = {}) {
  return definePlugin({
    name: TWILIO_VOICE_CHANNEL,
    kind: 'channel',
    description: 'Phone calls through Twilio: speech and keypad turns run the tenant pipeline, replies are spoken, hand-off to a person with <Dial>.',
    optionsSchema,
    settingsSchema,
    // The Twilio client, webhook helpers and shared metrics come from twilio-sms (ctx.inject).
    dependencies: ['twilio-sms'],
    setup(ctx) {
      const { options } = ctx;
      const shared = ctx.inject(TWILIO_SMS_SHARED);
      const makeClient = deps.createClient ?? shared.createTwilioClient;
      const metrics = voiceMetrics(ctx.metrics, shared.metrics);
      const calls = new CallStore(ctx.db);
      const tenants = loadTenants(ctx, shared.offReason);

      ctx.migrations(callMigrations);
      ctx.sender(createVoiceSender({ calls, metrics, client: shared.createClientCache(makeClient, options), describeTwilioError: shared.describeTwilioError, tenantState: tenants.senderState }));
      ctx.dataSubjects(calls.dataSubjectProvider());
      ctx.health(tenants.health);

      const policy = { publicBaseUrl: ctx.publicBaseUrl, trustProxy: options.trustProxy };
      const guard = shared.signatureGuard({ log: ctx.log, policy });
      const recordMinutes = createCallUsage({ usage: ctx.usage, metrics });
      ctx.routes(voiceWebhooks({ ctx, metrics, tenants, calls, recordMinutes, guard, policy, helpers: shared.webhook, unknownTenant: shared.UNKNOWN_TENANT }));
    },
  });
}

export default createTwilioVoiceChannel();

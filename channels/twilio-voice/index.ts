/**
 * The `twilio-voice` channel: a phone call is one conversation with the tenant's pipeline. Twilio
 * posts the call to `/twilio/voice` (greeting, then `<Gather input="speech dtmf">`); each answer
 * posts to `/twilio/voice/gather?turn=N`, runs the pipeline and is spoken with `<Say>`; silence and
 * unclear speech are asked again, then the call ends politely; "goodbye" ends it; a stage asking for
 * a human (`handoff`) transfers the caller with `<Dial>`. Call status callbacks are recorded.
 *
 * Its own settings (not twilio-sms's) so a tenant can take calls without SMS; the credentials are
 * usually the same environment variables.
 */
import { definePlugin } from '../../core/plugin.js';
import { createClientCache, createTwilioClient } from '../twilio-sms/client.js';
import { createSignatureGuard } from '../twilio-sms/webhook.js';
import { CallStore, callMigrations } from './calls.js';
import { voiceMetrics } from './metrics.js';
import { createVoiceSender } from './sender.js';
import { loadTenants } from './tenants.js';
import { TWILIO_VOICE_CHANNEL, optionsSchema, settingsSchema } from './types.js';
import { voiceWebhooks } from './webhook.js';

export { TWILIO_VOICE_CHANNEL } from './types.js';
export type { TwilioVoiceSettings, TwilioVoiceOptions } from './types.js';

export interface TwilioVoiceChannelDeps {
  createClient?: typeof createTwilioClient;
}

export function createTwilioVoiceChannel(deps: TwilioVoiceChannelDeps = {}) {
  const makeClient = deps.createClient ?? createTwilioClient;
  return definePlugin({
    name: TWILIO_VOICE_CHANNEL,
    kind: 'channel',
    description: 'Phone calls through Twilio: speech and keypad turns run the tenant pipeline, replies are spoken, hand-off to a person with <Dial>.',
    optionsSchema,
    settingsSchema,
    setup(ctx) {
      const { options } = ctx;
      const metrics = voiceMetrics(ctx.metrics);
      const calls = new CallStore(ctx.db);
      const tenants = loadTenants(ctx);

      ctx.migrations(callMigrations);
      ctx.sender(createVoiceSender({ calls, metrics, client: createClientCache(makeClient, options), tenantState: tenants.senderState }));
      ctx.dataSubjects(calls.dataSubjectProvider());
      ctx.health(tenants.health);

      const policy = { publicBaseUrl: ctx.publicBaseUrl, trustProxy: options.trustProxy };
      const guard = createSignatureGuard({ log: ctx.log, metrics, policy });
      ctx.routes(voiceWebhooks({ ctx, metrics, tenants, calls, guard, policy }));
    },
  });
}

export default createTwilioVoiceChannel();

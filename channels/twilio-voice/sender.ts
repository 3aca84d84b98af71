/**
 * Delivers a voice reply that missed its turn's budget: the caller is on hold, so the answer is
 * pushed into the live call with the REST API (`calls(sid).update({ twiml })`), which interrupts the
 * hold. A call that has ended cannot hear it: that is a dead letter, not a retry.
 */
import type twilio from 'twilio';
import { SendError, type ChannelSender, type SendResult } from 'parley';
import type { TwilioSmsShared } from './shared.js';
import { isFinalCallStatus, type CallStore } from './calls.js';
import { replyTwiml } from './twiml.js';
import { TWILIO_VOICE_CHANNEL, type TwilioVoiceSettings } from './types.js';

export interface VoiceTenant {
  tenantId: string;
  settings: TwilioVoiceSettings & { accountSid: string; authToken: string };
  language: string;
}

/** Twilio: "Call is not in-progress. Cannot redirect." */
const CALL_NOT_IN_PROGRESS = 21220;

export function createVoiceSender(deps: {
  calls: CallStore;
  metrics: TwilioSmsShared['metrics'];
  describeTwilioError: TwilioSmsShared['describeTwilioError'];
  tenantState(tenantId: string): VoiceTenant | { off: string };
  client(tenant: VoiceTenant): twilio.Twilio;
}): ChannelSender<TwilioVoiceSettings | undefined> {
  const fail = (message: string, code: string, retryable = false) => new SendError(message, { retryable, providerCode: code, plugin: TWILIO_VOICE_CHANNEL });
  return {
    channel: TWILIO_VOICE_CHANNEL,
    async send(message): Promise<SendResult> {
      const state = deps.tenantState(message.tenantId);
      if ('off' in state) throw fail(`twilio-voice is off for tenant "${message.tenantId}": ${state.off}`, 'not-configured');
      if (!message.conversationId) throw fail('twilio-voice only answers callers during their call; outbound calls are not supported', 'not-in-call');
      const call = await deps.calls.byConversation(message.tenantId, message.conversationId);
      // The turn is linked to its call right after the webhook answers; a reply can only race that.
      if (!call) throw fail('The call of this conversation is not recorded yet', 'call-unknown', true);
      if (isFinalCallStatus(call.status)) throw fail(`The caller hung up (${call.status}) before the answer was ready`, 'call-ended');
      if (!call.callbackBase) throw fail('No callback address recorded for this call', 'call-unknown');
      const nextTurn = call.lastTurn + 1;
      const twiml = replyTwiml({ base: call.callbackBase, settings: state.settings, language: state.language }, nextTurn, message.text, message.options.handoff === true);
      try {
        await deps.client(state).calls(call.callSid).update({ twiml });
      } catch (error) {
        const failure = deps.describeTwilioError(error);
        const code = failure.kind === 'api' ? String(failure.code ?? failure.status) : (failure.errno ?? 'network');
        deps.metrics.errors.inc({ tenant: message.tenantId, code });
        const retryable = failure.kind === 'transport' || failure.status === 429 || failure.status >= 500;
        if (failure.kind === 'api' && failure.code === CALL_NOT_IN_PROGRESS) throw fail('The caller hung up before the answer was ready', String(CALL_NOT_IN_PROGRESS));
        throw new SendError(`Updating call ${call.callSid} failed: ${failure.message}`, { retryable, providerCode: code, outcomeUnknown: failure.kind === 'transport', plugin: TWILIO_VOICE_CHANNEL });
      }
      deps.metrics.sends.inc({ tenant: message.tenantId, status: 'call-updated' });
      return { providerMessageId: `${call.callSid}:${nextTurn}`, status: 'delivered', details: { callSid: call.callSid, nextTurn } };
    },
  };
}

/** The Twilio metrics twilio-sms owns and shares (ctx.inject), and the two only calls have. */
import type { PluginMetrics } from 'parley';
import type { TwilioMetrics } from './shared.js';

export function voiceMetrics(metrics: PluginMetrics, twilio: TwilioMetrics) {
  return {
    ...twilio,
    turns: metrics.counter({
      name: 'parley_twilio_voice_turns_total',
      help: 'Voice turns by tenant and outcome (reply, deferred, reprompt, low-confidence, goodbye, handoff, no-input-end)',
      labelNames: ['tenant', 'outcome'] as const,
    }),
    callStatuses: metrics.counter({ name: 'parley_twilio_call_status_total', help: 'Call status callbacks by tenant and status', labelNames: ['tenant', 'status'] as const }),
  };
}

export type VoiceMetrics = ReturnType<typeof voiceMetrics>;

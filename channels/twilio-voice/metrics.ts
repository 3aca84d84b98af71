/** The Twilio metrics shared with twilio-sms, and the two only calls have. */
import type { PluginMetrics } from '../../core/plugin.js';
import { twilioMetrics } from '../twilio-sms/metrics.js';

export function voiceMetrics(metrics: PluginMetrics) {
  return {
    ...twilioMetrics(metrics),
    turns: metrics.counter({
      name: 'parley_twilio_voice_turns_total',
      help: 'Voice turns by tenant and outcome (reply, deferred, reprompt, low-confidence, goodbye, handoff, no-input-end)',
      labelNames: ['tenant', 'outcome'] as const,
    }),
    callStatuses: metrics.counter({ name: 'parley_twilio_call_status_total', help: 'Call status callbacks by tenant and status', labelNames: ['tenant', 'status'] as const }),
  };
}

export type VoiceMetrics = ReturnType<typeof voiceMetrics>;

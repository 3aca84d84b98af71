/** The Twilio metrics twilio-sms owns and shares (ctx.inject), and the ones only calls have. */
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
    minutes: metrics.counter({ name: 'parley_twilio_call_minutes_total', help: 'Billable call minutes (each started minute of a completed call) recorded in the usage ledger, by tenant and direction', labelNames: ['tenant', 'direction'] as const }),
  };
}

export type VoiceMetrics = ReturnType<typeof voiceMetrics>;

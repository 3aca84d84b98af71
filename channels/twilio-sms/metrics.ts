/**
 * Prometheus metrics owned by `twilio-sms` and shared with `twilio-voice`, which receives these
 * instances through `ctx.inject` (shared.ts): the registry refuses a metric to a second owner.
 */
import type { PluginMetrics } from 'parley';

/** Label used when a request fails before its tenant is known. */
export const UNKNOWN_TENANT = 'unknown';

export type TwilioEndpoint = 'sms' | 'status' | 'voice' | 'voice-gather' | 'voice-dial' | 'voice-status';

export function twilioMetrics(metrics: PluginMetrics) {
  return {
    requests: metrics.counter({
      name: 'parley_twilio_requests_total',
      help: 'Twilio webhook requests by tenant and endpoint (sms, status, voice, voice-gather, voice-dial, voice-status)',
      labelNames: ['tenant', 'endpoint'] as const,
    }),
    signatureFailures: metrics.counter({
      name: 'parley_twilio_signature_failures_total',
      help: 'Twilio webhooks refused for a missing or wrong X-Twilio-Signature, by tenant, endpoint and reason',
      labelNames: ['tenant', 'endpoint', 'reason'] as const,
    }),
    errors: metrics.counter({
      name: 'parley_twilio_errors_total',
      help: 'Twilio errors by tenant and code: REST error codes, status-callback ErrorCodes, transport, malformed webhooks',
      labelNames: ['tenant', 'code'] as const,
    }),
    sends: metrics.counter({
      name: 'parley_twilio_sends_total',
      help: 'Outbound Twilio messages by tenant and status (inline, queued/accepted by the REST API, retrying, failed, opted-out)',
      labelNames: ['tenant', 'status'] as const,
    }),
    deliveries: metrics.counter({
      name: 'parley_twilio_delivery_status_total',
      help: 'Message status callbacks by tenant and Twilio status (sent, delivered, undelivered, failed...)',
      labelNames: ['tenant', 'status'] as const,
    }),
    segments: metrics.counter({
      name: 'parley_twilio_segments_total',
      help: 'SMS segments by tenant, direction (in, out) and encoding (GSM-7, UCS-2)',
      labelNames: ['tenant', 'direction', 'encoding'] as const,
    }),
    cost: metrics.counter({
      name: 'parley_twilio_cost_estimate_total',
      help: 'Estimated SMS/MMS cost by tenant, direction and currency (from the configured prices)',
      labelNames: ['tenant', 'direction', 'currency'] as const,
    }),
  };
}

export type TwilioMetrics = ReturnType<typeof twilioMetrics>;

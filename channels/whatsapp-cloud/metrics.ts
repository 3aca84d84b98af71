/** The channel's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';

export function cloudMetrics(metrics: PluginMetrics) {
  return {
    webhooks: metrics.counter({ name: 'parley_whatsapp_cloud_webhooks_total', help: 'Cloud API webhook requests by result (ok, forged, malformed)', labelNames: ['result'] as const }),
    signatureFailures: metrics.counter({ name: 'parley_whatsapp_cloud_signature_failures_total', help: 'Cloud API webhooks refused for a missing or wrong X-Hub-Signature-256, by reason', labelNames: ['reason'] as const }),
    events: metrics.counter({ name: 'parley_whatsapp_cloud_events_total', help: 'Cloud API webhook events by tenant, kind (message, status, unsupported) and result', labelNames: ['tenant', 'kind', 'result'] as const }),
    billed: metrics.counter({ name: 'parley_whatsapp_cloud_billed_total', help: 'Billable conversations and messages (from status pricing) recorded in the usage ledger, by tenant, unit (conversation, message) and category', labelNames: ['tenant', 'unit', 'category'] as const }),
    sends: metrics.counter({ name: 'parley_whatsapp_cloud_sends_total', help: 'Graph API sends by tenant and result (sent, template-fallback, failed, auth-failed)', labelNames: ['tenant', 'result'] as const }),
  };
}

export type CloudMetrics = ReturnType<typeof cloudMetrics>;

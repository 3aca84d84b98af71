/** The channel's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';
import type { SessionMemory } from './memory.js';
import type { WhatsAppWebSession } from './session.js';

export function webMetrics(metrics: PluginMetrics, memory: { sessions: () => Iterable<WhatsAppWebSession>; of: SessionMemory }) {
  const m = {
    stateGauge: metrics.gauge({ name: 'parley_whatsapp_web_session_state', help: 'WhatsApp Web session state per tenant on this instance (1 for the current state)', labelNames: ['tenant', 'state'] as const }),
    reconnects: metrics.counter({ name: 'parley_whatsapp_web_reconnects_total', help: 'WhatsApp Web client restarts by tenant and reason', labelNames: ['tenant', 'reason'] as const }),
    ignored: metrics.counter({ name: 'parley_whatsapp_web_ignored_total', help: 'Inbound WhatsApp Web messages not passed to the pipeline, by reason', labelNames: ['tenant', 'reason'] as const }),
    inboundFailures: metrics.counter({ name: 'parley_whatsapp_web_inbound_failures_total', help: 'Inbound WhatsApp Web messages that could not be recorded', labelNames: ['tenant'] as const }),
    sendTimeouts: metrics.counter({ name: 'parley_whatsapp_web_send_timeouts_total', help: 'sendMessage calls that never returned (outcome unknown)', labelNames: ['tenant'] as const }),
    owner: metrics.gauge({ name: 'parley_whatsapp_web_session_owner', help: '1 when this instance drives the tenant number', labelNames: ['tenant'] as const }),
  };
  metrics.gauge({
    name: 'parley_whatsapp_web_session_memory_bytes',
    help: 'Resident memory of each session browser (Chromium and its child processes) on this instance',
    labelNames: ['tenant'] as const,
    async collect() {
      this.reset();
      for (const s of memory.sessions()) {
        const bytes = await memory.of(s);
        if (bytes !== undefined) this.set({ tenant: s.tenantId }, bytes);
      }
    },
  });
  return m;
}

export type WebMetrics = ReturnType<typeof webMetrics>;

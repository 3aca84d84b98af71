/**
 * The channel's line in `/readyz`: on or off per tenant, and whether Twilio refused a tenant's
 * credentials on a send (which also raises a critical alert).
 */
import type { HealthCheck, PluginContext } from 'parley';
import type { TwilioCallFailure } from './client.js';
import type { SmsTenants } from './tenants.js';
import { TWILIO_SMS_CHANNEL } from './types.js';

export function credentialHealth(ctx: Pick<PluginContext, 'alerts'>, tenants: SmsTenants) {
  const authFailures = new Map<string, string>();
  const health: HealthCheck = {
    name: TWILIO_SMS_CHANNEL,
    critical: false,
    async check() {
      const all = tenants.all();
      const states = Object.fromEntries(all.map((s) => [s.tenant.id, s.off ? `off: ${s.off}` : authFailures.has(s.tenant.id) ? `credentials refused: ${authFailures.get(s.tenant.id)}` : 'on']));
      const on = all.filter((s) => !s.off).length;
      return {
        ok: authFailures.size === 0,
        detail: authFailures.size ? `Twilio refused the credentials of ${[...authFailures.keys()].join(', ')}` : on ? `on for ${on} tenant(s)` : 'off: no tenant has Twilio credentials and numbers',
        info: { tenants: states },
      };
    },
  };
  return {
    health,
    /** Remembers the refusal for `/readyz` and raises the critical alert. */
    onAuthFailure(tenantId: string, failure: TwilioCallFailure): void {
      authFailures.set(tenantId, failure.message);
      ctx.alerts.raise({ key: 'twilio-sms.credentials', tenantId, severity: 'critical', summary: `Twilio refused the credentials of tenant "${tenantId}": replies cannot be sent`, details: { error: failure.message } });
    },
  };
}

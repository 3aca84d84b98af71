/** Which tenants take calls, and why not the others: read once at setup, with the start-up checks. */
import { ConfigError, type HealthCheck, type PluginContext, type TenantInfo } from 'parley';
import type { VoiceTenant } from './sender.js';
import type { TwilioSmsShared } from './shared.js';
import { TWILIO_VOICE_CHANNEL, type TwilioVoiceOptions, type TwilioVoiceSettings } from './types.js';

export interface TenantState {
  tenant: TenantInfo;
  settings: TwilioVoiceSettings;
  language: string;
  off: string | undefined;
}

/** Reads every tenant's settings and claims the numbers of those the channel is on for. */
export function loadTenants(ctx: PluginContext<TwilioVoiceOptions, TwilioVoiceSettings>, offReason: TwilioSmsShared['offReason']) {
  const states = new Map<string, TenantState>();
  for (const { tenant, settings } of ctx.tenants()) {
    const off = offReason(settings, ctx.options, ctx.publicBaseUrl);
    states.set(tenant.id, { tenant, settings, language: settings.language ?? tenant.locale, off });
    if (off) {
      ctx.log.warn({ tenant: tenant.id, reason: off }, `twilio-voice is off for tenant "${tenant.id}": ${off}`);
      continue;
    }
    if (!settings.validateSignatures) {
      if (process.env.NODE_ENV === 'production') throw new ConfigError([`${ctx.configPath(tenant.id)}.validateSignatures: false is refused when NODE_ENV=production`]);
      ctx.log.warn({ tenant: tenant.id }, `twilio-voice: X-Twilio-Signature checking is OFF for tenant "${tenant.id}". Local development only.`);
    }
    for (const number of settings.numbers) ctx.claimAddress(TWILIO_VOICE_CHANNEL, number, tenant.id);
  }

  const active = (tenantId: string): VoiceTenant | undefined => {
    const s = states.get(tenantId);
    return s && !s.off ? { tenantId, settings: s.settings as VoiceTenant['settings'], language: s.language } : undefined;
  };
  const health: HealthCheck = {
    name: TWILIO_VOICE_CHANNEL,
    critical: false,
    async check() {
      const on = [...states.values()].filter((s) => !s.off).length;
      return {
        ok: true,
        detail: on ? `on for ${on} tenant(s)` : 'off: no tenant has Twilio credentials and numbers',
        info: { tenants: Object.fromEntries([...states].map(([id, s]) => [id, s.off ? `off: ${s.off}` : 'on'])) },
      };
    },
  };
  return {
    get: (tenantId: string): TenantState | undefined => states.get(tenantId),
    /** What the sender needs: the tenant's credentials and settings, or why the channel is off for it. */
    senderState: (tenantId: string): VoiceTenant | { off: string } => active(tenantId) ?? { off: states.get(tenantId)?.off ?? 'the tenant has no twilio-voice settings' },
    /** The channel's line in `/readyz`: on or off per tenant. */
    health,
  };
}

export type VoiceTenants = ReturnType<typeof loadTenants>;

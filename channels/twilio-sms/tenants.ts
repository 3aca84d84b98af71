/**
 * Which tenants the channel runs for, and why not for the others: read once at setup from each
 * tenant's settings, with the start-up warnings and refusals that go with them.
 */
import { ConfigError, type PluginContext, type TenantInfo, TOKENS } from 'parley';
import { resolveConsentPolicy, type ConsentPolicy } from './consent.js';
import type { ActiveTenant } from './sender.js';
import { CONSENT_STAGE, TWILIO_SMS_CHANNEL, type TwilioSmsOptions, type TwilioSmsSettings } from './types.js';
import { offReason } from './webhook.js';

export interface TenantState {
  tenant: TenantInfo;
  settings: TwilioSmsSettings;
  policy: ConsentPolicy;
  /** Why the channel is off for this tenant; undefined when it is on. */
  off: string | undefined;
}

/**
 * Tenants that list the consent stage in their own pipeline: it runs by itself before every
 * pipeline now, and listing it would run it twice.
 */
export function consentStageListed(tenants: readonly Pick<TenantInfo, 'id' | 'pipeline'>[], pipelinePath: (tenantId: string) => string): string[] {
  return tenants
    .filter((t) => t.pipeline.includes(CONSENT_STAGE))
    .map(
      (t) =>
        `${pipelinePath(t.id)}: remove "${CONSENT_STAGE}": it now runs by itself before every tenant's pipeline for twilio-sms messages, so STOP/HELP never reach other stages (now: [${t.pipeline.join(', ')}])`,
    );
}

/** Reads every tenant's settings, claims the numbers of those the channel is on for, and warns about the rest. */
export function loadTenants(ctx: PluginContext<TwilioSmsOptions, TwilioSmsSettings>) {
  const states = new Map<string, TenantState>();

  // Every tenant, not only those with twilio-sms settings: any of them could list the stage.
  const listed = consentStageListed(ctx.inject(TOKENS.Tenants).list(), (id) => ctx.configPath(id, 'pipeline'));
  if (listed.length) throw new ConfigError(listed);

  for (const { tenant, settings } of ctx.tenants()) {
    const policy = resolveConsentPolicy(settings.consent, tenant);
    const off = offReason(settings, ctx.options, ctx.publicBaseUrl);
    states.set(tenant.id, { tenant, settings, policy, off });
    if (off) {
      ctx.log.warn({ tenant: tenant.id, reason: off }, `twilio-sms is off for tenant "${tenant.id}": ${off}`);
      continue;
    }
    if (!settings.validateSignatures) {
      if (process.env.NODE_ENV === 'production') {
        throw new ConfigError([`${ctx.configPath(tenant.id)}.validateSignatures: false is refused when NODE_ENV=production`]);
      }
      ctx.log.warn({ tenant: tenant.id }, `twilio-sms: X-Twilio-Signature checking is OFF for tenant "${tenant.id}". Anyone can post messages as any number. Local development only.`);
    }
    if (!settings.consent.contact) {
      ctx.log.warn({ tenant: tenant.id }, 'twilio-sms: consent.contact is not set; CTIA expects HELP replies to name a phone number or email');
    }
    for (const number of settings.numbers) ctx.claimAddress(TWILIO_SMS_CHANNEL, number, tenant.id);
  }
  const anyOn = [...states.values()].some((s) => !s.off);
  if (anyOn && !ctx.publicBaseUrl) {
    ctx.log.warn('twilio-sms: server.publicBaseUrl is not set, so signatures are checked against the URL requests arrive on and REST sends ask for no status callbacks. Behind a proxy or tunnel, set it.');
  }

  const active = (tenantId: string): ActiveTenant | undefined => {
    const s = states.get(tenantId);
    return s && !s.off ? { tenantId, settings: s.settings as ActiveTenant['settings'] } : undefined;
  };
  return {
    get: (tenantId: string): TenantState | undefined => states.get(tenantId),
    all: (): TenantState[] => [...states.values()],
    /** What the sender needs: the tenant's credentials and settings, or why the channel is off for it. */
    senderState: (tenantId: string): ActiveTenant | { off: string } => active(tenantId) ?? { off: states.get(tenantId)?.off ?? 'the tenant has no twilio-sms settings' },
  };
}

export type SmsTenants = ReturnType<typeof loadTenants>;

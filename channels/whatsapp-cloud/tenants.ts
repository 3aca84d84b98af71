/** The tenants of one Meta webhook: who owns each phone number id, their Graph clients, every app's secrets, and who is off. */
import type { HealthCheck, PluginContext } from 'parley';
import { createGraphClient, type GraphClient } from './graph-client.js';
import { CHANNEL, cloudConnection, type ConnectedSettings, type WhatsAppCloudOptions, type WhatsAppCloudSettings } from './types.js';

export interface CloudTenant {
  tenantId: string;
  settings: ConnectedSettings;
}

/** Claims the numbers of each tenant with credentials and builds its Graph client; the others stay off. */
export function loadTenants(ctx: PluginContext<WhatsAppCloudOptions, WhatsAppCloudSettings>, fetch: typeof globalThis.fetch | undefined) {
  const byPhoneNumberId = new Map<string, CloudTenant>();
  const connected = new Map<string, { graph: GraphClient; settings: ConnectedSettings }>();
  const off = new Map<string, string>();
  for (const { tenant, settings: configured } of ctx.tenants()) {
    const connection = cloudConnection(configured);
    if (!connection.on) {
      off.set(tenant.id, connection.reason);
      ctx.log.warn({ tenant: tenant.id, reason: connection.reason }, 'whatsapp-cloud is off for this tenant');
      continue;
    }
    const { settings } = connection;
    ctx.claimAddress(CHANNEL, settings.phoneNumberId, tenant.id);
    if (settings.displayNumber) ctx.claimAddress(CHANNEL, `+${settings.displayNumber.replace(/\D/g, '')}`, tenant.id);
    byPhoneNumberId.set(settings.phoneNumberId, { tenantId: tenant.id, settings });
    connected.set(tenant.id, { settings, graph: createGraphClient({ accessToken: settings.accessToken, baseUrl: ctx.options.graphBaseUrl, timeoutMs: ctx.options.timeoutMs, ...(fetch ? { fetch } : {}) }) });
  }
  const health: HealthCheck = {
    name: CHANNEL,
    critical: false,
    async check() {
      const tenants = Object.fromEntries([...connected.keys()].map((id) => [id, 'on']).concat([...off].map(([id, why]) => [id, `off: ${why}`])));
      return { ok: true, detail: connected.size ? `on for ${connected.size} tenant(s)` : 'off: no tenant has a number id and credentials', info: { tenants } };
    },
  };
  return {
    byPhoneNumberId: (phoneNumberId: string | undefined): CloudTenant | undefined => (phoneNumberId === undefined ? undefined : byPhoneNumberId.get(phoneNumberId)),
    appSecrets: [...new Set([...byPhoneNumberId.values()].map((t) => t.settings.appSecret))],
    verifyTokens: [...new Set([...byPhoneNumberId.values()].map((t) => t.settings.verifyToken))],
    /** The tenant's Graph client and settings; undefined when the channel is off for it. */
    connectionFor: (tenantId: string) => connected.get(tenantId),
    health,
  };
}

export type CloudTenants = ReturnType<typeof loadTenants>;

/** The tenants of one Meta webhook: who owns each phone number id, their Graph clients, and every app's secrets. */
import type { PluginContext } from 'parley';
import { createGraphClient, type GraphClient } from './graph-client.js';
import { CHANNEL, type WhatsAppCloudOptions, type WhatsAppCloudSettings } from './types.js';

export interface CloudTenant {
  tenantId: string;
  settings: WhatsAppCloudSettings;
}

/** Claims each tenant's numbers and builds its Graph client. */
export function loadTenants(ctx: PluginContext<WhatsAppCloudOptions, WhatsAppCloudSettings>, fetch: typeof globalThis.fetch | undefined) {
  const byPhoneNumberId = new Map<string, CloudTenant>();
  const graphs = new Map<string, GraphClient>();
  for (const { tenant, settings } of ctx.tenants()) {
    ctx.claimAddress(CHANNEL, settings.phoneNumberId, tenant.id);
    if (settings.displayNumber) ctx.claimAddress(CHANNEL, `+${settings.displayNumber.replace(/\D/g, '')}`, tenant.id);
    byPhoneNumberId.set(settings.phoneNumberId, { tenantId: tenant.id, settings });
    graphs.set(tenant.id, createGraphClient({ accessToken: settings.accessToken, baseUrl: ctx.options.graphBaseUrl, timeoutMs: ctx.options.timeoutMs, ...(fetch ? { fetch } : {}) }));
  }
  return {
    byPhoneNumberId: (phoneNumberId: string | undefined): CloudTenant | undefined => (phoneNumberId === undefined ? undefined : byPhoneNumberId.get(phoneNumberId)),
    appSecrets: [...new Set([...byPhoneNumberId.values()].map((t) => t.settings.appSecret))],
    verifyTokens: [...new Set([...byPhoneNumberId.values()].map((t) => t.settings.verifyToken))],
    graphFor(tenantId: string): GraphClient {
      const graph = graphs.get(tenantId);
      if (!graph) throw new Error(`whatsapp-cloud is not configured for tenant "${tenantId}"`);
      return graph;
    },
  };
}

export type CloudTenants = ReturnType<typeof loadTenants>;

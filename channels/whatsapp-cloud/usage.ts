/**
 * What Meta bills, in the kernel usage ledger, from the `pricing` (and `conversation`) that status
 * webhooks carry. Meta repeats them on each status of a message (sent, delivered, read) and retries
 * webhooks for days, so each billable unit has one ledger ref and is one row whatever arrives:
 *
 * - conversation-based pricing (`pricing_model: CBP`, until July 2025): one row per billable
 *   conversation, kind `whatsapp.conversations.<category>`, ref `conversation:<conversation.id>` (Meta's id,
 *   attribute `metaConversation`; `conversation` is Parley's, when Parley sent the message);
 * - per-message pricing (`PMP`, from 2025-07-01): one row per billable message, kind
 *   `whatsapp.messages.<category>`, ref the message's wamid.
 *
 * Statuses marked `billable: false` (service replies, free entry points, utility templates inside the
 * customer-service window) record nothing. Rows carry no cost: the deployment's price table
 * (cost-guard) prices them by kind (so by category) and by the recipient's country.
 */
import type { UsageLedger, UsageRecord } from 'parley';
import type { CloudMetrics } from './metrics.js';
import type { CloudStatusEvent } from './payload.js';
import { CHANNEL } from './types.js';

/**
 * Calling codes of the markets Meta's rate card prices on their own; other numbers fall under Meta's
 * regional "rest of" rates and get no country (only rules without a country match them). `1` is
 * Meta's "North America" rate (the United States and Canada share +1 and one price), recorded as US;
 * `76`/`77` are Kazakhstan's part of +7.
 */
const RATE_CARD_MARKETS: Record<string, string | null> = {
  '1': 'US', '7': 'RU', '76': null, '77': null, '20': 'EG', '27': 'ZA', '31': 'NL', '33': 'FR', '34': 'ES', '39': 'IT',
  '44': 'GB', '49': 'DE', '51': 'PE', '52': 'MX', '54': 'AR', '55': 'BR', '56': 'CL', '57': 'CO', '60': 'MY', '62': 'ID',
  '90': 'TR', '91': 'IN', '92': 'PK', '234': 'NG', '966': 'SA', '971': 'AE', '972': 'IL',
};

/**
 * The rate-card country of a WhatsApp id (the recipient's number in digits, country code first), or
 * undefined when Meta prices it regionally.
 * @example
 * rateCardCountry('447700900123') // 'GB'
 * rateCardCountry('77011234567')  // undefined (Kazakhstan: Meta's regional rate)
 */
export function rateCardCountry(waId: string): string | undefined {
  const digits = waId.replace(/\D/gu, '');
  for (let len = 3; len >= 1; len -= 1) {
    const code = digits.slice(0, len);
    if (code in RATE_CARD_MARKETS) return RATE_CARD_MARKETS[code] ?? undefined;
  }
  return undefined;
}

/** Meta's category as a usage-kind segment (`marketing`, `authentication_international`, ...). */
function categoryOf(category: string | undefined): string {
  const c = (category ?? '').toLowerCase();
  return /^[a-z][a-z0-9_]{0,49}$/u.test(c) ? c : 'unknown';
}

/** The ledger row a status bills, or null when it bills nothing (not billable, no pricing, or a CBP status without its conversation). */
export function billedUsage(event: CloudStatusEvent, tenantId: string): UsageRecord | null {
  const p = event.pricing;
  if (!p || p.billable !== true) return null;
  const category = categoryOf(p.category);
  const model = (p.pricingModel ?? '').toUpperCase();
  const country = rateCardCountry(event.recipientId);
  const attributes = { channel: CHANNEL, category, pricingModel: model || 'unknown', ...(country ? { country } : {}) };
  if (model === 'PMP') {
    return { tenantId, kind: `whatsapp.messages.${category}`, quantity: 1, unit: 'message', ref: event.wamid, attributes };
  }
  if (!event.conversation) return null;
  return {
    tenantId,
    kind: `whatsapp.conversations.${category}`,
    quantity: 1,
    unit: 'conversation',
    ref: `conversation:${event.conversation.id}`,
    attributes: { ...attributes, metaConversation: event.conversation.id, ...(event.conversation.originType ? { origin: event.conversation.originType } : {}) },
  };
}

/** Records what a status bills; true when it was new (not a repeat of the same conversation or message). */
export function createBilledUsage(deps: { usage: UsageLedger; metrics: CloudMetrics; conversationOf(tenantId: string, wamid: string): Promise<string | null> }) {
  return async function recordBilled(event: CloudStatusEvent, tenantId: string): Promise<boolean> {
    const row = billedUsage(event, tenantId);
    if (!row) return false;
    // Parley's conversation of the message, when Parley sent it (the usage ledger's per-conversation view).
    const conversation = await deps.conversationOf(tenantId, event.wamid);
    if (conversation) row.attributes = { ...row.attributes, conversation };
    const { recorded } = await deps.usage.record(row);
    if (recorded) deps.metrics.billed.inc({ tenant: tenantId, unit: row.unit, category: String(row.attributes!.category) });
    return recorded;
  };
}

export type RecordBilled = ReturnType<typeof createBilledUsage>;

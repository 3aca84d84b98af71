/**
 * Billable call minutes in the kernel usage ledger, so cost guards and billing see calls as they see
 * SMS segments. Twilio bills every started minute of a call that connected: a completed call's
 * `CallDuration` (seconds) is rounded up. The CallSid is the ledger ref, so a status callback Twilio
 * (or a proxy) delivers twice is recorded once.
 */
import type { UsageLedger } from 'parley';
import type { VoiceMetrics } from './metrics.js';

/** Minutes Twilio bills for a call of `seconds`: each started minute; a call that never connected costs nothing. */
export function billableMinutes(seconds: number): number {
  return seconds > 0 ? Math.ceil(seconds / 60) : 0;
}

/** `inbound`, or `outbound` for Twilio's `outbound-api` / `outbound-dial`; undefined when Twilio did not say. */
export function callDirection(direction: string | null | undefined): 'inbound' | 'outbound' | undefined {
  if (!direction) return undefined;
  return direction.startsWith('outbound') ? 'outbound' : direction === 'inbound' ? 'inbound' : undefined;
}

export interface CallMinutes {
  tenantId: string;
  callSid: string;
  durationSeconds: number;
  direction: 'inbound' | 'outbound';
  /**
   * ISO country Twilio prices the call by (its `ToCountry`: the called number's country, which is the
   * tenant's number for an inbound call and the destination for an outbound one).
   */
  country?: string | undefined;
  /** The Parley conversation of the call, once a turn ran. */
  conversationId?: string | null | undefined;
  /** `transfer`: the leg `<Dial>` opened to a person on a hand-off (billed as its own outbound call). */
  leg?: 'transfer';
}

/**
 * Records `voice.minutes.in` / `voice.minutes.out` (unit `minute`, channel `twilio-voice`) without a
 * cost: the deployment's price table (cost-guard) prices it by direction and country. Returns whether
 * this call was recorded now (false for a retried callback or a call that never connected).
 */
export function createCallUsage(deps: { usage: UsageLedger; metrics: VoiceMetrics }) {
  return async function recordMinutes(c: CallMinutes): Promise<boolean> {
    const minutes = billableMinutes(c.durationSeconds);
    if (minutes === 0) return false;
    const { recorded } = await deps.usage.record({
      tenantId: c.tenantId,
      kind: `voice.minutes.${c.direction === 'inbound' ? 'in' : 'out'}`,
      quantity: minutes,
      unit: 'minute',
      ref: c.callSid,
      attributes: {
        channel: 'twilio-voice',
        direction: c.direction,
        seconds: c.durationSeconds,
        ...(c.country ? { country: c.country } : {}),
        ...(c.conversationId ? { conversation: c.conversationId } : {}),
        ...(c.leg ? { leg: c.leg } : {}),
      },
    });
    if (recorded) deps.metrics.minutes.inc({ tenant: c.tenantId, direction: c.direction }, minutes);
    return recorded;
  };
}

export type RecordCallMinutes = ReturnType<typeof createCallUsage>;

/**
 * `GET /v1/tenants/:tenant/twilio-sms/numbers`: the tenant's configured numbers as Twilio's account has
 * them (IncomingPhoneNumbers), and whether their Messaging webhook points at this gateway. The answer
 * is kept for a minute per tenant, so a console polling it does not spend the account's API quota.
 */
import type { Router } from 'express';
import type twilio from 'twilio';
import { z } from 'zod';
import { notFound, param, type RouteHelpers } from 'parley';
import { webhookUrl } from './signature.js';
import type { SmsTenants } from './tenants.js';
import { TWILIO_SMS_CHANNEL } from './types.js';
import { describeTwilioError, type TwilioTenantCredentials } from './client.js';

const NumberStatus = z
  .object({
    number: z.string(),
    kind: z.enum(['sms', 'whatsapp']),
    status: z.enum(['ok', 'webhook-elsewhere', 'not-in-account', 'unchecked', 'error']).describe('`ok`: the number is in the account and its Messaging webhook is this gateway\'s; `unchecked`: a WhatsApp sender, or the channel is off. Compared with `server.publicBaseUrl` + `/twilio/sms`, or without it the origin this request came to'),
    detail: z.string().nullable(),
    smsUrl: z.string().nullable().describe('The Messaging webhook the number has at Twilio'),
    expectedUrl: z.string(),
    friendlyName: z.string().nullable(),
    capabilities: z.record(z.string(), z.boolean()).nullable(),
  })
  .meta({ id: 'TwilioNumberStatus' });
const Numbers = z.object({ channelOn: z.boolean(), off: z.string().nullable(), checkedAt: z.iso.datetime({ offset: true }), numbers: z.array(NumberStatus) });

export function numbersRoute(deps: { tenants: SmsTenants; clientFor: (t: TwilioTenantCredentials) => twilio.Twilio; publicBaseUrl: string | undefined; cacheMs?: number }) {
  const cache = new Map<string, { at: number; body: z.output<typeof Numbers> }>();
  const ttl = deps.cacheMs ?? 60_000;
  return (_router: Router, { route }: RouteHelpers): void => {
    route(
      {
        method: 'get',
        path: '/v1/tenants/:tenant/twilio-sms/numbers',
        auth: 'tenant',
        tags: ['twilio-sms'],
        summary: "The tenant's Twilio numbers and whether their webhook points here",
        description: 'Read from Twilio (IncomingPhoneNumbers) and kept for a minute.',
        responses: { 200: { description: 'The numbers', schema: Numbers } },
        errors: [{ code: 'PARLEY_NOT_FOUND', status: 404, description: 'twilio-sms is not configured for the tenant' }],
      },
      async (req, res) => {
        const tenantId = param(req, 'tenant');
        const state = deps.tenants.get(tenantId);
        if (!state) throw notFound(`${TWILIO_SMS_CHANNEL} is not configured for tenant "${tenantId}"`);
        // Without server.publicBaseUrl, the origin this request came to (what Twilio would be given too).
        const expectedUrl = webhookUrl(deps.publicBaseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`, '/twilio/sms');
        const key = `${tenantId}\u0000${expectedUrl}`;
        const hit = cache.get(key);
        if (hit && Date.now() - hit.at < ttl) return res.json(hit.body);
        const numbers: z.output<typeof NumberStatus>[] = [];
        for (const raw of state.settings.numbers) {
          const whatsapp = raw.startsWith('whatsapp:');
          const base = { number: raw, kind: whatsapp ? ('whatsapp' as const) : ('sms' as const), smsUrl: null, expectedUrl, friendlyName: null, capabilities: null };
          const { accountSid, authToken } = state.settings;
          if (whatsapp || state.off || !accountSid || !authToken) {
            numbers.push({ ...base, status: 'unchecked', detail: state.off ? `the channel is off: ${state.off}` : !whatsapp ? 'no Twilio credentials' : 'a WhatsApp sender is configured in the Twilio console, not as an incoming number' });
            continue;
          }
          try {
            const [found] = await deps.clientFor({ tenantId, settings: { accountSid, authToken } }).incomingPhoneNumbers.list({ phoneNumber: raw, limit: 1 });
            if (!found) {
              numbers.push({ ...base, status: 'not-in-account', detail: 'Twilio has no such number in this account' });
              continue;
            }
            const smsUrl = found.smsUrl || null;
            const status = smsUrl === expectedUrl ? 'ok' : 'webhook-elsewhere';
            numbers.push({
              ...base,
              smsUrl,
              friendlyName: found.friendlyName ?? null,
              capabilities: found.capabilities ? { voice: Boolean(found.capabilities.voice), sms: Boolean(found.capabilities.sms), mms: Boolean(found.capabilities.mms) } : null,
              status,
              detail: status === 'webhook-elsewhere' ? `its Messaging webhook is ${smsUrl ?? 'empty'}, not ${expectedUrl}` : null,
            });
          } catch (error) {
            numbers.push({ ...base, status: 'error', detail: describeTwilioError(error).message });
          }
        }
        const body = { channelOn: !state.off, off: state.off ?? null, checkedAt: new Date().toISOString(), numbers };
        cache.set(key, { at: Date.now(), body });
        res.json(body);
      },
    );
  };
}

/**
 * What twilio-sms shares with plugins that list it in `dependencies` (twilio-voice): the Twilio client
 * factory and cache, error reading, the webhook helpers and the `parley_twilio_*` metrics, which
 * twilio-sms owns. Plugins never import each other's files: a dependent makes the same token from the
 * key (`token<...>('twilio-sms.shared')`: tokens with one key are one token) and calls `ctx.inject`.
 */
import type { Logger } from 'pino';
import { token } from 'parley';
import { createClientCache, createTwilioClient, describeTwilioError } from './client.js';
import { UNKNOWN_TENANT, type TwilioMetrics } from './metrics.js';
import { countMalformed, createSignatureGuard, externalBase, formParams, offReason, parseOrBadRequest, plainParams, required, sendTwiml, type UrlPolicy } from './webhook.js';

export const TWILIO_SMS_SHARED_KEY = 'twilio-sms.shared';

export function twilioSmsShared(metrics: TwilioMetrics) {
  return {
    createTwilioClient,
    createClientCache,
    describeTwilioError,
    metrics,
    UNKNOWN_TENANT,
    offReason,
    signatureGuard: (deps: { log: Logger; policy: UrlPolicy }) => createSignatureGuard({ ...deps, metrics }),
    webhook: {
      formParams,
      required,
      plainParams,
      parseOrBadRequest,
      /** Counts a malformed webhook in `parley_twilio_errors_total` before the 400 goes out. */
      countMalformed: <T>(tenantId: string, parse: () => T): T => countMalformed(metrics, tenantId, parse),
      sendTwiml,
      externalBase,
    },
  };
}

export type TwilioSmsShared = ReturnType<typeof twilioSmsShared>;

export const TWILIO_SMS_SHARED = token<TwilioSmsShared>(TWILIO_SMS_SHARED_KEY);

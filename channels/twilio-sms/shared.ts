/**
 * What twilio-sms shares with plugins that list it in `dependencies` (twilio-voice): the Twilio client
 * factory, error reading, webhook helpers and the `parley_twilio_*` metrics, which twilio-sms owns.
 * Plugins never import each other's files: a dependent makes the same token from the key
 * (`token<...>('twilio-sms.shared')`, tokens with one key are one token) and calls `ctx.inject`.
 */
import type { Logger } from 'pino';
import { token } from 'parley';
import { createTwilioClient, describeTwilioError } from './client.js';
import { UNKNOWN_TENANT, type TwilioMetrics } from './metrics.js';
import { createSignatureGuard, externalBase, formParams, offReason, required, type UrlPolicy } from './webhook.js';

export const TWILIO_SMS_SHARED_KEY = 'twilio-sms.shared';

export function twilioSmsShared(metrics: TwilioMetrics) {
  const signatureGuard = (deps: { log: Logger; policy: UrlPolicy }) => createSignatureGuard({ ...deps, metrics });
  return { createTwilioClient, describeTwilioError, metrics, UNKNOWN_TENANT, signatureGuard, externalBase, formParams, offReason, required };
}

export type TwilioSmsShared = ReturnType<typeof twilioSmsShared>;

export const TWILIO_SMS_SHARED = token<TwilioSmsShared>(TWILIO_SMS_SHARED_KEY);

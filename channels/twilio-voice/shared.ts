/**
 * What twilio-voice uses of twilio-sms, which it lists in `dependencies`: one Twilio client factory,
 * error reading, webhook helpers and the `parley_twilio_*` metrics twilio-sms owns. twilio-sms provides
 * them under the key 'twilio-sms.shared'; plugins do not import each other's files, so this is the
 * type twilio-voice expects (test/twilio-voice.test.ts checks that what twilio-sms provides fits it).
 */
import type { Request } from 'express';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type twilio from 'twilio';
import { token } from 'parley';

export type FormParams = Readonly<Record<string, string | readonly string[]>>;

type VoiceEndpoint = 'voice' | 'voice-gather' | 'voice-dial' | 'voice-status';

export interface TwilioMetrics {
  requests: Counter<'tenant' | 'endpoint'>;
  errors: Counter<'tenant' | 'code'>;
  sends: Counter<'tenant' | 'status'>;
}

export type TwilioCallFailure =
  | { kind: 'api'; status: number; code: number | undefined; message: string }
  | { kind: 'transport'; errno: string | undefined; message: string };

export interface TwilioSmsShared {
  createTwilioClient(options: { accountSid: string; authToken: string; apiBaseUrl?: string | undefined; timeoutMs?: number | undefined }): twilio.Twilio;
  describeTwilioError(error: unknown): TwilioCallFailure;
  metrics: TwilioMetrics;
  /** Label for requests whose tenant is unknown. */
  UNKNOWN_TENANT: string;
  /** Verifies X-Twilio-Signature or throws a 403 (counted in twilio-sms's signature-failure metric). */
  signatureGuard(deps: { log: Logger; policy: { publicBaseUrl: string | undefined; trustProxy: boolean } }): (req: Request, params: FormParams, check: { tenantId: string; authToken: string; validate: boolean; endpoint: VoiceEndpoint }) => void;
  externalBase(req: Request, policy: { publicBaseUrl: string | undefined; trustProxy: boolean }): string;
  formParams(req: Request): FormParams;
  required(params: FormParams, name: string): string;
  offReason(
    settings: { enabled: boolean; accountSid?: string | undefined; authToken?: string | undefined; numbers: readonly string[] },
    options: { requirePublicBaseUrl: boolean },
    publicBaseUrl: string | undefined,
  ): string | undefined;
}

export const TWILIO_SMS_SHARED = token<TwilioSmsShared>('twilio-sms.shared');

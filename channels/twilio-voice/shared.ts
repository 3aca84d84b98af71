/**
 * What twilio-voice uses of twilio-sms, which it lists in `dependencies`: the Twilio client factory and
 * cache, error reading, webhook helpers and the `parley_twilio_*` metrics twilio-sms owns. twilio-sms
 * provides them under the key 'twilio-sms.shared'; plugins do not import each other's files, so this
 * is the type twilio-voice expects (test/twilio-voice.test.ts checks that what twilio-sms provides
 * fits it).
 */
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type twilio from 'twilio';
import type { z } from 'zod';
import { token } from 'parley';

export type FormParams = Readonly<Record<string, string | readonly string[]>>;

export type VoiceEndpoint = 'voice' | 'voice-gather' | 'voice-dial' | 'voice-status';

export interface UrlPolicy {
  publicBaseUrl: string | undefined;
  trustProxy: boolean;
}

export interface TwilioMetrics {
  requests: Counter<'tenant' | 'endpoint'>;
  errors: Counter<'tenant' | 'code'>;
  sends: Counter<'tenant' | 'status'>;
}

export type TwilioCallFailure =
  | { kind: 'api'; status: number; code: number | undefined; message: string }
  | { kind: 'transport'; errno: string | undefined; message: string };

type ClientOptions = { accountSid: string; authToken: string; apiBaseUrl?: string | undefined; timeoutMs?: number | undefined };
type CreateClient = (options: ClientOptions) => twilio.Twilio;

/** Verifies X-Twilio-Signature or throws a 403 (counted in twilio-sms's signature-failure metric). */
export type SignatureGuard = (req: Request, params: FormParams, check: { tenantId: string; authToken: string; validate: boolean; endpoint: VoiceEndpoint }) => void;

export interface TwilioSmsShared {
  createTwilioClient: CreateClient;
  createClientCache(makeClient: CreateClient, options: { apiBaseUrl?: string | undefined; requestTimeoutMs: number }): (t: { tenantId: string; settings: { accountSid: string; authToken: string } }) => twilio.Twilio;
  describeTwilioError(error: unknown): TwilioCallFailure;
  metrics: TwilioMetrics;
  /** Label for requests whose tenant is unknown. */
  UNKNOWN_TENANT: string;
  offReason(
    settings: { enabled: boolean; accountSid?: string | undefined; authToken?: string | undefined; numbers: readonly string[] },
    options: { requirePublicBaseUrl: boolean },
    publicBaseUrl: string | undefined,
  ): string | undefined;
  signatureGuard(deps: { log: Logger; policy: UrlPolicy }): SignatureGuard;
  webhook: {
    formParams(req: Request): FormParams;
    required(params: FormParams, name: string): string;
    plainParams(params: FormParams): Record<string, unknown>;
    parseOrBadRequest<T>(schema: z.ZodType<T>, input: unknown, what: string): T;
    countMalformed<T>(tenantId: string, parse: () => T): T;
    sendTwiml(res: Response, xml: string): void;
    externalBase(req: Request, policy: UrlPolicy): string;
  };
}

export const TWILIO_SMS_SHARED = token<TwilioSmsShared>('twilio-sms.shared');

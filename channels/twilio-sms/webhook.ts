/**
 * The edge of every Twilio webhook (SMS and voice): form parameters as untrusted input, the URL Twilio
 * signed, and the signature check that refuses, logs and counts. Payload parsers return typed values
 * or throw a 400 naming the bad field, so a malformed body is never a 500.
 */
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { badRequest, forbidden, type MediaAttachment, type OutboxStatus } from 'parley';
import { verifyTwilioSignature, webhookUrl } from './signature.js';
import type { TwilioEndpoint, TwilioMetrics } from './metrics.js';
import { twilioAddress } from './types.js';

/** Decoded form parameters; a repeated key keeps all its values. */
export type FormParams = Readonly<Record<string, string | readonly string[]>>;

/** The form body of a Twilio webhook, copied into a prototype-free record. Anything else is a 400. */
export function formParams(req: Request): FormParams {
  if (!req.is('application/x-www-form-urlencoded')) {
    throw badRequest('Twilio webhooks are form posts: expected Content-Type application/x-www-form-urlencoded');
  }
  const body: unknown = req.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The form body is empty or unreadable');
  const params: Record<string, string | string[]> = Object.create(null);
  for (const [key, value] of Object.entries(body)) {
    if (typeof value === 'string') params[key] = value;
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) params[key] = value as string[];
    else throw badRequest(`Form parameter ${JSON.stringify(key.slice(0, 40))} is not a plain value`);
  }
  return params;
}

/** A single-valued parameter; a repeated one is a 400, an absent one `undefined`. */
export function single(params: FormParams, name: string): string | undefined {
  const value = Object.hasOwn(params, name) ? params[name] : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`Form parameter ${name} must appear once`);
  return value;
}

export function required(params: FormParams, name: string): string {
  const value = single(params, name);
  if (value === undefined || value.trim() === '') throw badRequest(`Form parameter ${name} is required`);
  return value;
}

/** Form parameters as a plain record, for a schema. */
export function plainParams(params: FormParams): Record<string, unknown> {
  return Object.fromEntries(Object.keys(params).map((key) => [key, params[key]]));
}

/** Untrusted input through a schema, or a 400 naming each bad field. */
export function parseOrBadRequest<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw badRequest(`Invalid ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

function parse<T>(schema: z.ZodType<T>, params: FormParams, what: string): T {
  return parseOrBadRequest(schema, plainParams(params), what);
}

/** Runs a parser; a malformed webhook is counted for the tenant before its 400 goes out. */
export function countMalformed<T>(metrics: TwilioMetrics, tenantId: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    metrics.errors.inc({ tenant: tenantId, code: 'malformed' });
    throw error;
  }
}

/** Answers a Twilio webhook with TwiML. */
export function sendTwiml(res: Response, xml: string): void {
  res.status(200).type('text/xml').send(xml);
}

const sid = (prefix: string) => z.string().regex(new RegExp(`^${prefix}[0-9a-fA-F]{32}$`, 'u'), `a Twilio SID starting with ${prefix}`);
const messageSid = z.string().regex(/^(?:SM|MM)[0-9a-fA-F]{32}$/u, 'a Twilio message SID (SM or MM followed by 32 hex digits)');
const MAX_MEDIA = 10;

const inboundSmsSchema = z.object({
  MessageSid: messageSid,
  AccountSid: sid('AC').optional(),
  MessagingServiceSid: sid('MG').optional(),
  // Senders may be short codes; the receiving number is always one of ours (E.164).
  From: z.string().regex(/^(?:whatsapp:)?(?:\+[1-9]\d{1,14}|\d{3,8})$/u, 'a phone number (E.164, whatsapp:+E164 or a short code)'),
  To: twilioAddress,
  Body: z.string().max(10_000).default(''),
  NumMedia: z.string().regex(/^\d{1,2}$/u, 'a number').transform(Number).pipe(z.number().max(MAX_MEDIA)).default(0),
  NumSegments: z.string().regex(/^\d{1,3}$/u, 'a number').transform(Number).optional(),
  OptOutType: z.string().max(20).optional(),
});

export interface InboundSms {
  messageSid: string;
  accountSid: string | undefined;
  messagingServiceSid: string | undefined;
  from: string;
  to: string;
  body: string;
  media: MediaAttachment[];
  numSegments: number | undefined;
  optOutType: string | undefined;
}

/** An inbound SMS/MMS (`POST /twilio/sms`): MediaUrlN/MediaContentTypeN become attachments. */
export function parseInboundSms(params: FormParams): InboundSms {
  const p = parse(inboundSmsSchema, params, 'Twilio message webhook');
  const media: MediaAttachment[] = [];
  for (let i = 0; i < p.NumMedia; i += 1) {
    const url = single(params, `MediaUrl${i}`);
    if (!url || !/^https?:\/\/\S+$/iu.test(url) || url.length > 2048) throw badRequest(`MediaUrl${i} must be an http(s) URL (NumMedia is ${p.NumMedia})`);
    const contentType = single(params, `MediaContentType${i}`);
    media.push({ url, ...(contentType && contentType.length <= 255 ? { contentType } : {}) });
  }
  return {
    messageSid: p.MessageSid,
    accountSid: p.AccountSid,
    messagingServiceSid: p.MessagingServiceSid,
    from: p.From,
    to: p.To,
    body: p.Body,
    media,
    numSegments: p.NumSegments,
    optOutType: p.OptOutType?.trim() || undefined,
  };
}

const statusCallbackSchema = z.object({
  MessageSid: messageSid,
  MessageStatus: z.string().regex(/^[a-z_]{2,30}$/u, 'a Twilio message status'),
  ErrorCode: z.string().regex(/^\d{1,6}$/u, 'a Twilio error code').optional(),
  AccountSid: sid('AC').optional(),
  From: z.string().max(64).optional(),
  To: z.string().max(64).optional(),
});

export interface StatusCallback {
  messageSid: string;
  status: string;
  errorCode: string | undefined;
  from: string | undefined;
  to: string | undefined;
}

/** A delivery status callback (`POST /twilio/status`). */
export function parseStatusCallback(params: FormParams): StatusCallback {
  const p = parse(statusCallbackSchema, params, 'Twilio status callback');
  return { messageSid: p.MessageSid, status: p.MessageStatus, errorCode: p.ErrorCode || undefined, from: p.From, to: p.To };
}

/** Twilio statuses before `sent`: kept in the outbox item's history, never changing its status. */
export type TwilioInterimStatus = 'queued' | 'accepted' | 'scheduled' | 'sending';

/**
 * Twilio message status -> outbox status. The statuses before `sent` ("Twilio has it") are passed
 * on as they are: the kernel records them in the history only, since the outbox already holds the
 * item as `sent` once the REST call returned. Inbound statuses are ignored.
 */
export function outboxStatusOf(twilioStatus: string): OutboxStatus | TwilioInterimStatus | null {
  switch (twilioStatus) {
    case 'accepted':
    case 'scheduled':
    case 'queued':
    case 'sending':
      return twilioStatus;
    case 'sent':
      return 'sent';
    case 'delivered':
      return 'delivered';
    case 'read':
      return 'read';
    case 'undelivered':
      return 'undelivered';
    case 'failed':
    case 'canceled':
      return 'failed';
    default:
      return null;
  }
}

function firstHeaderValue(req: Request, name: string): string | undefined {
  const value = req.get(name);
  return value?.split(',')[0]?.trim() || undefined;
}

export interface UrlPolicy {
  publicBaseUrl: string | undefined;
  /** Honour X-Forwarded-Proto/Host for Twilio routes even if the server does not trust the proxy. */
  trustProxy: boolean;
}

/** `https://host[/prefix]`: where Twilio reaches this gateway, for the URLs we sign and hand out. */
export function externalBase(req: Request, policy: UrlPolicy): string {
  if (policy.publicBaseUrl) return policy.publicBaseUrl.replace(/\/+$/u, '');
  // req.protocol and req.host already follow X-Forwarded-* when server.trustProxy is on.
  const proto = (policy.trustProxy && firstHeaderValue(req, 'x-forwarded-proto')) || req.protocol;
  const host = (policy.trustProxy && firstHeaderValue(req, 'x-forwarded-host')) || req.host;
  return `${proto}://${host}`;
}

/** The URL Twilio requested and signed: the public base joined with the path and query as received. */
export function signedUrl(req: Request, policy: UrlPolicy): string {
  return webhookUrl(externalBase(req, policy), req.originalUrl);
}

export interface SignatureCheck {
  tenantId: string;
  authToken: string;
  /** false only in local development (the plugin warned at start). */
  validate: boolean;
  endpoint: TwilioEndpoint;
}

/** Verifies X-Twilio-Signature or throws a 403 after logging the reason and counting it. */
export function createSignatureGuard(deps: { log: Logger; metrics: TwilioMetrics; policy: UrlPolicy }) {
  return function verify(req: Request, params: FormParams, check: SignatureCheck): void {
    if (!check.validate) return;
    const url = signedUrl(req, deps.policy);
    const verdict = verifyTwilioSignature({ authToken: check.authToken, url, params, signature: req.get('x-twilio-signature') });
    if (verdict.ok) return;
    deps.metrics.signatureFailures.inc({ tenant: check.tenantId, endpoint: check.endpoint, reason: verdict.reason });
    deps.log.warn(
      { tenant: check.tenantId, endpoint: check.endpoint, reason: verdict.reason, url, reqId: req.requestId },
      verdict.reason === 'missing-signature'
        ? 'twilio webhook refused: no X-Twilio-Signature header'
        : 'twilio webhook refused: X-Twilio-Signature does not match (wrong auth token, or Twilio signed another URL: check server.publicBaseUrl)',
    );
    throw forbidden(verdict.reason === 'missing-signature' ? 'Missing X-Twilio-Signature' : 'Invalid X-Twilio-Signature');
  };
}

export type SignatureGuard = ReturnType<typeof createSignatureGuard>;

/** What decides whether a Twilio channel can run for a tenant (SMS and voice alike). */
export interface TwilioAvailability {
  enabled: boolean;
  accountSid?: string | undefined;
  authToken?: string | undefined;
  numbers: readonly string[];
  messagingServiceSid?: string | undefined;
}

/** Why a Twilio channel cannot run for a tenant, or undefined when it can. */
export function offReason(settings: TwilioAvailability, options: { requirePublicBaseUrl: boolean }, publicBaseUrl: string | undefined): string | undefined {
  if (!settings.enabled) return 'enabled is false';
  const missing = [!settings.accountSid && 'accountSid', !settings.authToken && 'authToken'].filter(Boolean);
  if (missing.length) return `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set (usually from the TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN environment variables)`;
  if (!settings.numbers.length && !settings.messagingServiceSid) return 'no numbers are configured (for the demo: DEMO_TWILIO_NUMBER)';
  if (options.requirePublicBaseUrl && !publicBaseUrl) return 'server.publicBaseUrl is not set (PUBLIC_BASE_URL): Twilio signs and calls the public URL';
  return undefined;
}

// Schemas and a parser for WhatsApp Cloud API webhooks. Meta's payload is untrusted input (OWASP
// API10): the envelope must match or the route answers 400, but one odd message must not poison a
// batch that Meta would then retry for days, so unknown or invalid messages become 'unsupported'.
import { z } from 'zod';
import { PluginError, pluginErrorCode, UnstorableInboundError } from 'parley';

/** The envelope did not match Meta's webhook shape; the route answers 400. */
export class MalformedPayloadError extends PluginError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(pluginErrorCode('whatsapp-cloud', 'MALFORMED_PAYLOAD'), `Malformed WhatsApp Cloud webhook: ${reason}`, 400, { plugin: 'whatsapp-cloud', cause: options?.cause });
  }
}

/** Timestamps before this are no real message; the kernel's inbound guard draws the same line. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
/** How far ahead of our clock Meta's timestamp may be. */
const MAX_AHEAD_MS = 24 * 60 * 60 * 1000;

/**
 * Why a message's or status's time cannot be stored (out of range, or past what a Date holds), or
 * undefined when it is plausible.
 */
function implausibleTime(at: Date, kind: 'message' | 'status', now: number): UnstorableInboundError | undefined {
  const t = at.getTime();
  if (Number.isFinite(t) && t >= EARLIEST_MS && t <= now + MAX_AHEAD_MS) return undefined;
  return new UnstorableInboundError(`${kind}.timestamp`, 'is not a plausible time (unix seconds)');
}

const unixSeconds = z
  .union([z.string().regex(/^\d+$/), z.number().int().nonnegative()])
  .transform((value) => new Date(Number(value) * 1000));

/** An error object as Meta puts it in statuses, messages and change values. */
export const cloudErrorSchema = z.object({
  code: z.number(),
  title: z.string(),
  message: z.string().optional(),
  error_data: z.object({ details: z.string().optional() }).optional(),
  href: z.string().optional(),
});

const mediaSchema = z.object({
  id: z.string(),
  mime_type: z.string().optional(),
  sha256: z.string().optional(),
  caption: z.string().optional(),
  filename: z.string().optional(),
});

const messageBase = {
  from: z.string(),
  id: z.string(),
  timestamp: unixSeconds,
  context: z.object({ from: z.string().optional(), id: z.string() }).optional(),
};

/** One inbound message of a type Parley understands. */
export const cloudMessageSchema = z.discriminatedUnion('type', [
  z.object({ ...messageBase, type: z.literal('text'), text: z.object({ body: z.string() }) }),
  z.object({ ...messageBase, type: z.literal('image'), image: mediaSchema }),
  z.object({ ...messageBase, type: z.literal('audio'), audio: mediaSchema }),
  z.object({ ...messageBase, type: z.literal('video'), video: mediaSchema }),
  z.object({ ...messageBase, type: z.literal('document'), document: mediaSchema }),
  z.object({ ...messageBase, type: z.literal('sticker'), sticker: mediaSchema }),
  z.object({
    ...messageBase,
    type: z.literal('interactive'),
    interactive: z.discriminatedUnion('type', [
      z.object({ type: z.literal('button_reply'), button_reply: z.object({ id: z.string(), title: z.string() }) }),
      z.object({
        type: z.literal('list_reply'),
        list_reply: z.object({ id: z.string(), title: z.string(), description: z.string().optional() }),
      }),
    ]),
  }),
  z.object({ ...messageBase, type: z.literal('button'), button: z.object({ payload: z.string(), text: z.string() }) }),
  z.object({
    ...messageBase,
    type: z.literal('location'),
    location: z.object({
      latitude: z.number(),
      longitude: z.number(),
      name: z.string().optional(),
      address: z.string().optional(),
      url: z.string().optional(),
    }),
  }),
]);

/** Delivery states Parley tracks, in Meta's spelling. */
export const cloudStatusValues = ['sent', 'delivered', 'read', 'failed'] as const;
export type CloudStatus = (typeof cloudStatusValues)[number];

/** One entry of `value.statuses`. */
export const cloudStatusSchema = z.object({
  id: z.string(),
  status: z.enum(cloudStatusValues),
  timestamp: unixSeconds,
  recipient_id: z.string(),
  errors: z.array(cloudErrorSchema).optional(),
  pricing: z
    .object({
      billable: z.boolean().optional(),
      pricing_model: z.string().optional(),
      category: z.string().optional(),
      type: z.string().optional(),
    })
    .optional(),
  conversation: z
    .object({
      id: z.string(),
      origin: z.object({ type: z.string() }).optional(),
      expiration_timestamp: unixSeconds.optional(),
    })
    .optional(),
});

const rawItem = z.record(z.string(), z.unknown());

/** `entry[].changes[].value` for the `messages` field; items are checked one by one later. */
export const cloudMessagesValueSchema = z.object({
  messaging_product: z.literal('whatsapp').optional(),
  metadata: z.object({ display_phone_number: z.string(), phone_number_id: z.string() }),
  contacts: z
    .array(z.object({ wa_id: z.string(), profile: z.object({ name: z.string().optional() }).optional() }))
    .optional(),
  messages: z.array(rawItem).optional(),
  statuses: z.array(rawItem).optional(),
  errors: z.array(cloudErrorSchema).optional(),
});

/** The webhook envelope Meta POSTs. */
export const cloudWebhookSchema = z.object({
  object: z.literal('whatsapp_business_account'),
  entry: z.array(
    z.object({
      id: z.string(),
      changes: z.array(z.object({ field: z.string(), value: z.unknown() })),
    }),
  ),
});

export type CloudMediaType = 'image' | 'audio' | 'video' | 'document' | 'sticker';
export type CloudMessageType = z.infer<typeof cloudMessageSchema>['type'];

/** An error Meta attached to a status or a change value. */
export interface CloudError {
  code: number;
  title: string;
  message?: string;
  details?: string;
}

/** A message a user sent to one of the business's numbers. */
export interface CloudMessageEvent {
  kind: 'message';
  type: CloudMessageType;
  phoneNumberId: string;
  displayPhoneNumber: string;
  /** The sender's WhatsApp id (digits, no `+`). */
  from: string;
  wamid: string;
  timestamp: Date;
  profileName?: string;
  text?: string;
  media?: {
    type: CloudMediaType;
    id: string;
    mimeType?: string;
    sha256?: string;
    caption?: string;
    filename?: string;
  };
  interactive?: { type: 'button_reply' | 'list_reply'; id: string; title: string };
  button?: { payload: string; text: string };
  location?: { latitude: number; longitude: number; name?: string; address?: string; url?: string };
  context?: { replyToWamid: string };
  /** Set when the message cannot be stored (its timestamp is out of range): park the webhook. */
  unstorable?: UnstorableInboundError;
  raw: unknown;
}

/** A delivery status for a message the business sent. */
export interface CloudStatusEvent {
  kind: 'status';
  phoneNumberId: string;
  wamid: string;
  status: CloudStatus;
  timestamp: Date;
  recipientId: string;
  errors?: CloudError[];
  pricing?: { billable?: boolean; pricingModel?: string; category?: string; type?: string };
  conversation?: { id: string; originType?: string; expiresAt?: Date };
  /** Set when the status cannot be stored (its timestamp is out of range): park the webhook. */
  unstorable?: UnstorableInboundError;
  raw: unknown;
}

/** Anything Parley does not handle: log it, count it, answer 200. */
export interface CloudUnsupportedEvent {
  kind: 'unsupported';
  /** Absent for change fields other than `messages`, which carry no phone number metadata. */
  phoneNumberId: string | undefined;
  reason: string;
  raw: unknown;
}

export type CloudEvent = CloudMessageEvent | CloudStatusEvent | CloudUnsupportedEvent;

const knownMessageTypes: ReadonlySet<string> = new Set(cloudMessageSchema.options.map((o) => o.shape.type.value));
const mediaTypes: ReadonlySet<string> = new Set<CloudMediaType>(['image', 'audio', 'video', 'document', 'sticker']);

/**
 * Turns a Cloud API webhook body into Parley events, in payload order (per change: messages, then
 * statuses, then change-level errors).
 *
 * @throws {MalformedPayloadError} when the envelope or a `messages` change value does not match.
 * @example
 * for (const event of parseCloudWebhook(JSON.parse(rawBody.toString('utf8')))) {
 *   if (event.kind === 'message') await inbound(event);
 * }
 */
export function parseCloudWebhook(json: unknown, now = Date.now()): CloudEvent[] {
  const envelope = cloudWebhookSchema.safeParse(json);
  if (!envelope.success) throw new MalformedPayloadError(z.prettifyError(envelope.error), { cause: envelope.error });

  const events: CloudEvent[] = [];
  for (const entry of envelope.data.entry) {
    for (const change of entry.changes) {
      if (change.field !== 'messages') {
        events.push({
          kind: 'unsupported',
          phoneNumberId: undefined,
          reason: `change field "${change.field}" is not handled`,
          raw: change.value,
        });
        continue;
      }
      const value = cloudMessagesValueSchema.safeParse(change.value);
      if (!value.success) {
        throw new MalformedPayloadError(`entry ${entry.id}: ${z.prettifyError(value.error)}`, { cause: value.error });
      }
      events.push(...changeEvents(value.data, now));
    }
  }
  return events;
}

function changeEvents(value: z.infer<typeof cloudMessagesValueSchema>, now: number): CloudEvent[] {
  const { phone_number_id: phoneNumberId, display_phone_number: displayPhoneNumber } = value.metadata;
  const profileNames = new Map((value.contacts ?? []).map((c) => [c.wa_id, c.profile?.name]));
  const events: CloudEvent[] = [];

  for (const raw of value.messages ?? []) {
    const type = typeof raw['type'] === 'string' ? raw['type'] : undefined;
    if (type === undefined || !knownMessageTypes.has(type)) {
      events.push({ kind: 'unsupported', phoneNumberId, reason: unknownTypeReason(type, raw), raw });
      continue;
    }
    const parsed = cloudMessageSchema.safeParse(raw);
    if (!parsed.success) {
      events.push({
        kind: 'unsupported',
        phoneNumberId,
        reason: `invalid ${type} message: ${z.prettifyError(parsed.error)}`,
        raw,
      });
      continue;
    }
    const message = parsed.data;
    events.push({
      kind: 'message',
      type: message.type,
      phoneNumberId,
      displayPhoneNumber,
      from: message.from,
      wamid: message.id,
      timestamp: message.timestamp,
      profileName: profileNames.get(message.from) ?? (value.contacts?.length === 1 ? value.contacts[0]?.profile?.name : undefined),
      context: message.context ? { replyToWamid: message.context.id } : undefined,
      ...messageContent(message),
      unstorable: implausibleTime(message.timestamp, 'message', now),
      raw,
    });
  }

  for (const raw of value.statuses ?? []) {
    const parsed = cloudStatusSchema.safeParse(raw);
    if (!parsed.success) {
      events.push({ kind: 'unsupported', phoneNumberId, reason: unknownStatusReason(raw, parsed.error), raw });
      continue;
    }
    const s = parsed.data;
    events.push({
      kind: 'status',
      phoneNumberId,
      wamid: s.id,
      status: s.status,
      timestamp: s.timestamp,
      recipientId: s.recipient_id,
      errors: s.errors?.map(toCloudError),
      pricing: s.pricing && {
        billable: s.pricing.billable,
        pricingModel: s.pricing.pricing_model,
        category: s.pricing.category,
        type: s.pricing.type,
      },
      conversation: s.conversation && {
        id: s.conversation.id,
        originType: s.conversation.origin?.type,
        expiresAt: s.conversation.expiration_timestamp,
      },
      unstorable: implausibleTime(s.timestamp, 'status', now),
      raw,
    });
  }

  for (const error of value.errors ?? []) {
    events.push({ kind: 'unsupported', phoneNumberId, reason: `error ${error.code}: ${error.title}`, raw: error });
  }
  return events;
}

type ParsedMessage = z.infer<typeof cloudMessageSchema>;
type MessageContent = Pick<CloudMessageEvent, 'text' | 'media' | 'interactive' | 'button' | 'location'>;

function messageContent(message: ParsedMessage): MessageContent {
  switch (message.type) {
    case 'text':
      return { text: message.text.body };
    case 'image':
      return { media: toMedia('image', message.image) };
    case 'audio':
      return { media: toMedia('audio', message.audio) };
    case 'video':
      return { media: toMedia('video', message.video) };
    case 'document':
      return { media: toMedia('document', message.document) };
    case 'sticker':
      return { media: toMedia('sticker', message.sticker) };
    case 'interactive': {
      const reply =
        message.interactive.type === 'button_reply' ? message.interactive.button_reply : message.interactive.list_reply;
      return { interactive: { type: message.interactive.type, id: reply.id, title: reply.title } };
    }
    case 'button':
      return { button: { payload: message.button.payload, text: message.button.text } };
    case 'location':
      return { location: message.location };
  }
}

function toMedia(type: CloudMediaType, media: z.infer<typeof mediaSchema>): NonNullable<CloudMessageEvent['media']> {
  return {
    type,
    id: media.id,
    mimeType: media.mime_type,
    sha256: media.sha256,
    caption: media.caption,
    filename: media.filename,
  };
}

function toCloudError(error: z.infer<typeof cloudErrorSchema>): CloudError {
  return { code: error.code, title: error.title, message: error.message, details: error.error_data?.details };
}

function unknownTypeReason(type: string | undefined, raw: Record<string, unknown>): string {
  if (type === undefined) return 'message without a type';
  const errors = z.array(cloudErrorSchema).safeParse(raw['errors']);
  const first = errors.success ? errors.data[0] : undefined;
  return `message type "${type}" is not supported${first ? ` (error ${first.code}: ${first.title})` : ''}`;
}

function unknownStatusReason(raw: Record<string, unknown>, error: z.ZodError): string {
  const status = raw['status'];
  if (typeof status === 'string' && !(cloudStatusValues as readonly string[]).includes(status)) {
    return `status "${status}" is not supported`;
  }
  return `invalid status: ${z.prettifyError(error)}`;
}

const statusRanks: Record<CloudStatus, number> = { sent: 1, delivered: 2, read: 3, failed: 3 };

/**
 * Progress rank of a status: sent < delivered < read. `failed` ranks with `read`, so it replaces sent
 * and delivered, never replaces read, and nothing later replaces it. Apply a status only when its rank
 * is strictly higher than the stored one (see {@link shouldApplyStatus}); this also makes repeats no-ops.
 */
export function statusRank(status: CloudStatus): number {
  return statusRanks[status];
}

/**
 * Whether an incoming status may replace the stored one; statuses arrive out of order.
 *
 * @example
 * shouldApplyStatus('read', 'delivered'); // false: a late 'delivered' must not undo 'read'
 */
export function shouldApplyStatus(current: CloudStatus | undefined, incoming: CloudStatus): boolean {
  return current === undefined || statusRank(incoming) > statusRank(current);
}

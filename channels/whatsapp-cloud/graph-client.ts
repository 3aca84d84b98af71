// A small client for sending WhatsApp messages through Meta's Graph API. It classifies every
// failure so the outbox can decide: `retryable` says a later attempt may succeed, `outcomeUnknown`
// says the message may already have gone out (the Graph API has no idempotency key).
import { z } from 'zod';

/** Default Graph API root, version included. */
export const DEFAULT_GRAPH_BASE_URL = 'https://graph.facebook.com/v21.0';
/** Default per-request timeout. */
export const DEFAULT_GRAPH_TIMEOUT_MS = 10_000;

/** Meta error codes that mean "slow down and try again": throughput, spam and pair rate limits. */
export const RETRYABLE_META_CODES: ReadonlySet<number> = new Set([130429, 131048, 131056]);

/** Connection failures where the request cannot have reached Meta. */
const NOT_SENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** A failed Graph API call, classified for retry decisions. */
export class GraphApiError extends Error {
  override readonly name = 'GraphApiError';
  /** HTTP status, or undefined when no response arrived. */
  readonly status: number | undefined;
  /** Meta's numeric error code (e.g. 131047 outside the 24-hour window, 130429 rate limit). */
  readonly code: number | undefined;
  readonly subcode: number | undefined;
  /** Meta's `error_data.details`, the most useful sentence in its error bodies. */
  readonly details: string | undefined;
  readonly fbtraceId: string | undefined;
  /** A later attempt may succeed: 429, 5xx, network errors, timeouts and rate-limit codes. */
  readonly retryable: boolean;
  /** From `Retry-After`, when Meta sent one. */
  readonly retryAfterMs: number | undefined;
  /** The request may have been delivered (timeout, connection lost mid-request, unreadable 200). */
  readonly outcomeUnknown: boolean;

  constructor(
    message: string,
    init: {
      status?: number;
      code?: number;
      subcode?: number;
      details?: string;
      fbtraceId?: string;
      retryable: boolean;
      retryAfterMs?: number;
      outcomeUnknown?: boolean;
      cause?: unknown;
    },
  ) {
    super(message, { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.subcode = init.subcode;
    this.details = init.details;
    this.fbtraceId = init.fbtraceId;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs;
    this.outcomeUnknown = init.outcomeUnknown ?? false;
  }
}

/** How to reach the Graph API. */
export interface GraphClientOptions {
  /** System-user or business access token, sent as `Authorization: Bearer`. */
  accessToken: string;
  /** Defaults to {@link DEFAULT_GRAPH_BASE_URL}; tests point it at the fake Graph server. */
  baseUrl?: string;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Per-request timeout; defaults to {@link DEFAULT_GRAPH_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** What Meta answered for an accepted message. */
export interface GraphSendResult {
  wamid: string;
  /** The recipient's WhatsApp id as Meta resolved it. */
  waId?: string;
}

export interface SendOptions {
  /** Quote this message (`context.message_id`). */
  replyToWamid?: string;
}

/** A template component (header, body or button) with its parameters, in Meta's shape. */
export interface TemplateComponent {
  type: 'header' | 'body' | 'button';
  sub_type?: 'quick_reply' | 'url' | 'copy_code';
  index?: number;
  parameters: Array<{ type: string } & Record<string, unknown>>;
}

export interface TemplateMessage {
  name: string;
  /** Language code the template was approved in, e.g. `en_US`. */
  language: string;
  components?: TemplateComponent[];
}

/** Media sent by public link (Meta downloads it). */
export interface LinkMedia {
  type: 'image' | 'document';
  link: string;
  caption?: string;
  /** Shown for documents. */
  filename?: string;
}

/** Sending side of the WhatsApp Cloud API. */
export interface GraphClient {
  sendText(phoneNumberId: string, to: string, text: string, options?: SendOptions): Promise<GraphSendResult>;
  sendTemplate(phoneNumberId: string, to: string, template: TemplateMessage, options?: SendOptions): Promise<GraphSendResult>;
  sendMedia(phoneNumberId: string, to: string, media: LinkMedia, options?: SendOptions): Promise<GraphSendResult>;
}

const sendResponseSchema = z.object({
  contacts: z.array(z.object({ input: z.string().optional(), wa_id: z.string().optional() })).optional(),
  messages: z.array(z.object({ id: z.string() })).min(1),
});

const errorResponseSchema = z.object({
  error: z.object({
    message: z.string().optional(),
    type: z.string().optional(),
    code: z.number().optional(),
    error_subcode: z.number().optional(),
    is_transient: z.boolean().optional(),
    error_data: z.object({ details: z.string().optional() }).optional(),
    fbtrace_id: z.string().optional(),
  }),
});

/**
 * Creates a Graph API client for one access token.
 *
 * @example
 * const graph = createGraphClient({ accessToken: process.env.WA_TOKEN! });
 * const { wamid } = await graph.sendText('106540352242922', '16505551234', 'Your order shipped');
 */
export function createGraphClient(options: GraphClientOptions): GraphClient {
  const baseUrl = (options.baseUrl ?? DEFAULT_GRAPH_BASE_URL).replace(/\/+$/, '');
  const fetchFn = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_GRAPH_TIMEOUT_MS;

  async function send(phoneNumberId: string, body: Record<string, unknown>): Promise<GraphSendResult> {
    const url = `${baseUrl}/${encodeURIComponent(phoneNumberId)}/messages`;
    let response: Response;
    let text: string;
    try {
      response = await fetchFn(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messaging_product: 'whatsapp', recipient_type: 'individual', ...body }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw transportError(error, timeoutMs);
    }

    if (!response.ok) throw responseError(response, text);

    const parsed = sendResponseSchema.safeParse(safeJson(text));
    if (!parsed.success) {
      throw new GraphApiError('Graph API accepted the request but its answer has no message id', {
        status: response.status,
        retryable: false,
        outcomeUnknown: true,
        cause: parsed.error,
      });
    }
    const [message] = parsed.data.messages;
    return { wamid: message!.id, waId: parsed.data.contacts?.[0]?.wa_id };
  }

  const context = (o?: SendOptions) => (o?.replyToWamid ? { context: { message_id: o.replyToWamid } } : {});

  return {
    sendText: (phoneNumberId, to, text, o) =>
      send(phoneNumberId, { to, type: 'text', text: { preview_url: false, body: text }, ...context(o) }),
    sendTemplate: (phoneNumberId, to, template, o) =>
      send(phoneNumberId, {
        to,
        type: 'template',
        template: {
          name: template.name,
          language: { code: template.language },
          ...(template.components ? { components: template.components } : {}),
        },
        ...context(o),
      }),
    sendMedia: (phoneNumberId, to, media, o) =>
      send(phoneNumberId, {
        to,
        type: media.type,
        [media.type]: {
          link: media.link,
          ...(media.caption !== undefined ? { caption: media.caption } : {}),
          ...(media.type === 'document' && media.filename !== undefined ? { filename: media.filename } : {}),
        },
        ...context(o),
      }),
  };
}

function transportError(error: unknown, timeoutMs: number): GraphApiError {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return new GraphApiError(`Graph API did not answer within ${timeoutMs} ms`, {
      retryable: true,
      outcomeUnknown: true,
      cause: error,
    });
  }
  const code = networkCode(error);
  const notSent = code !== undefined && NOT_SENT_NETWORK_CODES.has(code);
  return new GraphApiError(`Graph API request failed${code ? ` (${code})` : ''}`, {
    retryable: true,
    outcomeUnknown: !notSent,
    cause: error,
  });
}

function responseError(response: Response, text: string): GraphApiError {
  const parsed = errorResponseSchema.safeParse(safeJson(text));
  const meta = parsed.success ? parsed.data.error : undefined;
  const status = response.status;
  const retryable =
    status === 429 ||
    status >= 500 ||
    (meta?.code !== undefined && RETRYABLE_META_CODES.has(meta.code)) ||
    meta?.is_transient === true;
  const label = meta?.code !== undefined ? `${status} (#${meta.code})` : String(status);
  return new GraphApiError(`Graph API answered ${label}: ${meta?.message ?? response.statusText}`, {
    status,
    code: meta?.code,
    subcode: meta?.error_subcode,
    details: meta?.error_data?.details,
    fbtraceId: meta?.fbtrace_id,
    retryable,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
  });
}

function parseRetryAfter(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

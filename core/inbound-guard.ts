/**
 * The kernel's edge for inbound messages: what PostgreSQL cannot hold is made storable or refused
 * before the write. Text is never lost for a character PostgreSQL rejects (NUL, a lone UTF-16
 * surrogate): it becomes U+FFFD. What cannot be stored at all (an id or sender too long for an index,
 * a timestamp out of range, nesting deeper than any provider sends) is an `UnstorableInboundError`:
 * provider channels park the webhook and answer 200, the http channel answers 400.
 */
import { ParleyError } from './errors.js';
import type { InboundDraft } from './message.js';

/** Longest provider message id, sender, recipient or thread key, in UTF-8 bytes (btree rows hold ~2.7 kB). */
export const MAX_ADDRESS_BYTES = 1024;
/** Deepest nesting kept in `raw`, `attributes` or `media`; providers send fewer than ten levels. */
export const MAX_DEPTH = 64;
/** Timestamps before this are not real messages. */
const EARLIEST = Date.UTC(2000, 0, 1);
/** How far ahead of our clock a provider's timestamp may be. */
const MAX_CLOCK_AHEAD_MS = 24 * 60 * 60 * 1000;

/** An inbound message that cannot be stored as it is; `field` names what is wrong. */
export class UnstorableInboundError extends ParleyError {
  readonly field: string;
  constructor(field: string, reason: string) {
    super('PARLEY_INBOUND_UNSTORABLE', `The message cannot be stored: ${field} ${reason}`, 400, { details: { field } });
    this.field = field;
  }
}

const NEEDS_REPAIR = /[\u0000\uD800-\uDFFF]/u;

/** A string PostgreSQL accepts in text and jsonb: NUL and lone surrogates become U+FFFD. */
export function storableText(value: string): string {
  if (!NEEDS_REPAIR.test(value)) return value;
  // String.prototype.toWellFormed is in Node 20 but not in the ES2023 lib types.
  return (value.replaceAll('\u0000', '\uFFFD') as string & { toWellFormed(): string }).toWellFormed();
}

/** Every string (object keys too) of a JSON-like value made storable; throws past `MAX_DEPTH`. */
export function storableValue(value: unknown, field: string, depth = 0): unknown {
  if (typeof value === 'string') return storableText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) throw new UnstorableInboundError(field, `is nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((v) => storableValue(v, field, depth + 1));
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  // fromEntries defines properties, so a "__proto__" key stays a key.
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), storableValue(v, field, depth + 1)]));
}

function bounded(value: string, field: string): string {
  const text = storableText(value);
  if (Buffer.byteLength(text, 'utf8') > MAX_ADDRESS_BYTES) throw new UnstorableInboundError(field, `is longer than ${MAX_ADDRESS_BYTES} bytes`);
  return text;
}

/**
 * The draft as it will be stored, or an `UnstorableInboundError`.
 * @example
 * guardInbound({ channel: 'http', from: 'a', to: 'b', text: 'x\u0000y', providerMessageId: 'm1' }).text; // 'x\uFFFDy'
 */
export function guardInbound(draft: InboundDraft, now = Date.now()): InboundDraft {
  const receivedAt = draft.receivedAt;
  if (receivedAt !== undefined) {
    const t = receivedAt instanceof Date ? receivedAt.getTime() : Number.NaN;
    if (!Number.isFinite(t) || t < EARLIEST || t > now + MAX_CLOCK_AHEAD_MS) throw new UnstorableInboundError('receivedAt', 'is not a plausible time');
  }
  return {
    ...draft,
    from: bounded(draft.from, 'from'),
    to: bounded(draft.to, 'to'),
    providerMessageId: bounded(draft.providerMessageId, 'providerMessageId'),
    ...(draft.threadKey !== undefined ? { threadKey: bounded(draft.threadKey, 'threadKey') } : {}),
    text: storableText(draft.text),
    ...(draft.media !== undefined ? { media: storableValue(draft.media, 'media') as InboundDraft['media'] } : {}),
    ...(draft.raw !== undefined ? { raw: storableValue(draft.raw, 'raw') } : {}),
    ...(draft.attributes !== undefined ? { attributes: storableValue(draft.attributes, 'attributes') as Record<string, unknown> } : {}),
  };
}

/**
 * True for an error no retry can fix: the input is unstorable (refused by the guard, or by PostgreSQL
 * as data: SQLSTATE class 22, or 54000 "index row too large"). A provider webhook that fails this way
 * is parked instead of being answered with a 5xx the provider would retry for days.
 */
export function isPoisonInput(error: unknown): boolean {
  if (error instanceof UnstorableInboundError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/u.test(code)) return false;
  return code.startsWith('22') || code === '54000';
}

/** Why a poison input was refused, without the value (PostgreSQL's messages may quote it). */
export function poisonReason(error: unknown): string {
  if (error instanceof ParleyError) return error.message;
  return `the database refused the data (SQLSTATE ${String((error as { code?: unknown } | null)?.code)})`;
}

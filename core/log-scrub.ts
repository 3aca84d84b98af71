/**
 * What an error may carry into a log line. Provider error texts quote phone numbers ("Invalid 'To'
 * Phone Number: +15551234567"), and PostgreSQL's error context (`where`, `detail`, `hint`,
 * `internalQuery`) quotes the data being written, message bodies included. The `err` serializer
 * drops those fields and replaces phone-number-like runs with their hash (`ph_...`, as `hashAddress`).
 */
import pino from 'pino';
import { hashAddress } from './logger.js';

/** PostgreSQL error fields that can quote the row being written. */
export const DATABASE_CONTEXT_FIELDS = ['where', 'detail', 'hint', 'internalQuery', 'query', 'parameters'] as const;
const CONTEXT = new Set<string>(DATABASE_CONTEXT_FIELDS);

/** 7 to 15 digits, optionally after `+`, with single spaces, dashes or brackets between them. */
const PHONE_LIKE = /(?<![\w+])\+?\(?\d(?:[ ()-]{0,2}\d){6,14}(?![\w])/gu;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/u;

/** Every phone-number-like run replaced by the hash of its digits. */
export function scrubPhoneNumbers(text: string): string {
  return text.replace(PHONE_LIKE, (run) => {
    if (ISO_DATE.test(run)) return run;
    const digits = run.replace(/\D/gu, '');
    return hashAddress(`${run.includes('+') ? '+' : ''}${digits}`);
  });
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return scrubPhoneNumbers(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key] = CONTEXT.has(key) ? '[redacted]' : scrub(v, depth + 1);
  return out;
}

/**
 * pino's `err` serializer, then scrubbed (causes included: pino appends their messages and stacks).
 * @example
 * pino({ serializers: { err: scrubbedErr } }).error({ err }, 'send failed');
 */
export function scrubbedErr(err: unknown): unknown {
  const serialized = err instanceof Error ? pino.stdSerializers.err(err) : err;
  return scrub(serialized, 0);
}

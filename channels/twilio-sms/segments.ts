/**
 * SMS encoding and segment arithmetic, matching Twilio's message-segment-calculator:
 * GSM-7 (GSM 03.38 basic set plus extension table) or UCS-2, 160/153 septets or 70/67 code units
 * per segment, and characters that are never split across the parts of a concatenated message.
 */

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SegmentCount {
  encoding: SmsEncoding;
  /** Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2 (an emoji counts 2). */
  units: number;
  /** At least 1: Twilio bills an empty body as one segment. */
  segments: number;
  /** Capacity of each segment in `units`: 160/70 for a single segment, 153/67 once the message is split. */
  perSegment: number;
}

export type FitMode = 'split' | 'truncate';

/** GSM 03.38 default alphabet, in table order, without the escape code 0x1B. */
const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅå' +
  'Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ' +
  ' !"#¤%&\'()*+,-./' +
  '0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNO' +
  'PQRSTUVWXYZÄÖÑÜ§' +
  '¿abcdefghijklmno' +
  'pqrstuvwxyzäöñüà';

/** Characters reached through the escape code: each costs two septets. */
const GSM_EXTENSION = '\f^{}\\[~]|€';

const GSM_BASIC_SET = new Set(GSM_BASIC);
const GSM_EXTENSION_SET = new Set(GSM_EXTENSION);

const LIMITS = {
  'GSM-7': { single: 160, multi: 153 },
  'UCS-2': { single: 70, multi: 67 },
} as const satisfies Record<SmsEncoding, { single: number; multi: number }>;

/**
 * Twilio refuses a longer body (error 21617). Counted here in UTF-16 units, which is never less than
 * Twilio's character count, so a body within it is always accepted.
 */
export const MAX_BODY_LENGTH = 1600;

const graphemeSegmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

function isGsmChar(char: string): boolean {
  return GSM_BASIC_SET.has(char) || GSM_EXTENSION_SET.has(char);
}

/** GSM-7 when every character is in the GSM 03.38 basic or extension table, UCS-2 otherwise. */
export function detectEncoding(text: string): SmsEncoding {
  for (const char of text) {
    if (!isGsmChar(char)) return 'UCS-2';
  }
  return 'GSM-7';
}

/**
 * Sizes of the indivisible pieces of `text`, in encoding units. GSM-7 pieces are characters (an escape
 * pair is one piece of 2 septets); UCS-2 pieces are grapheme clusters, so an emoji sequence stays in
 * one part, except a cluster larger than a whole part, which falls back to code points.
 */
function pieceSizes(text: string, encoding: SmsEncoding): number[] {
  if (encoding === 'GSM-7') {
    return Array.from(text, (char) => (GSM_EXTENSION_SET.has(char) ? 2 : 1));
  }
  const sizes: number[] = [];
  for (const { segment } of graphemeSegmenter.segment(text)) {
    if (segment.length <= LIMITS['UCS-2'].multi) {
      sizes.push(segment.length);
    } else {
      for (const codePoint of segment) sizes.push(codePoint.length);
    }
  }
  return sizes;
}

/**
 * Encoding, size and segment count of an SMS body as Twilio bills it.
 *
 * Once a message needs more than one segment, each part loses room to the concatenation header
 * (153 septets or 67 code units) and a piece that does not fit whole in the current part moves to the
 * next one: a GSM-7 escape pair (`{`, `€`, ...) is never split across parts, nor is an emoji, so a
 * multi-part message may need one more segment than `units / perSegment` suggests.
 *
 * @example countSegments('{' + 'a'.repeat(158)) // { encoding: 'GSM-7', units: 160, segments: 1, perSegment: 160 }
 */
export function countSegments(text: string): SegmentCount {
  const encoding = detectEncoding(text);
  const { single, multi } = LIMITS[encoding];
  const sizes = pieceSizes(text, encoding);
  const units = sizes.reduce((sum, size) => sum + size, 0);
  if (units <= single) return { encoding, units, segments: 1, perSegment: single };

  let segments = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > multi) {
      segments += 1;
      used = 0;
    }
    used += size;
  }
  return { encoding, units, segments, perSegment: multi };
}

/** Price of a message of `segments` segments, rounded to 1/10000 of the currency unit. */
export function estimateCost(segments: number, pricePerSegment: number): number {
  return Math.round(segments * pricePerSegment * 10_000) / 10_000;
}

const WHITESPACE = /\s/u;

/**
 * No text longer than this many UTF-16 units fits in `maxSegments` (a GSM-7 character is one unit)
 * or is accepted by Twilio.
 */
function upperBound(maxSegments: number): number {
  return Math.min(maxSegments * LIMITS['GSM-7'].single, MAX_BODY_LENGTH);
}

/** Ends of prefixes that stop right after a word (before whitespace), in increasing order. */
function wordEnds(text: string): number[] {
  const ends: number[] = [];
  for (let i = 1; i < text.length; i += 1) {
    if (WHITESPACE.test(text[i]!) && !WHITESPACE.test(text[i - 1]!)) ends.push(i);
  }
  return ends;
}

function graphemeEnds(text: string): number[] {
  return Array.from(graphemeSegmenter.segment(text), ({ index, segment }) => index + segment.length);
}

function codePointEnds(text: string): number[] {
  const ends: number[] = [];
  let end = 0;
  for (const codePoint of text) ends.push((end += codePoint.length));
  return ends;
}

/**
 * Largest end in `ends` whose prefix `fits`, or 0. Binary search is sound because fitting is
 * monotonic in the prefix length: a longer prefix never needs fewer segments, and when it flips from
 * GSM-7 to UCS-2 the smaller UCS-2 segments only make it need more.
 */
function lastFitting(text: string, ends: readonly number[], fits: (prefix: string) => boolean): number {
  let best = 0;
  let low = 0;
  let high = ends.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const end = ends[middle]!;
    if (fits(text.slice(0, end))) {
      best = end;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return best;
}

/**
 * End index of the longest prefix of `text` accepted by `fits`: cut after a word when possible,
 * otherwise (a first word too long on its own) after a grapheme, otherwise after a code point, so a
 * surrogate pair is never cut. Only the first `bound + 1` units are examined, since no longer prefix
 * can fit. Always at least one code point, so callers make progress.
 */
function cutIndex(text: string, bound: number, fits: (prefix: string) => boolean): number {
  const window = text.slice(0, bound + 1);
  return (
    lastFitting(text, wordEnds(window), fits) ||
    lastFitting(text, graphemeEnds(window), fits) ||
    lastFitting(text, codePointEnds(window), fits) ||
    String.fromCodePoint(text.codePointAt(0) ?? 0).length
  );
}

/** '…' is not in GSM-7: appending it to GSM-7 text would flip the whole message to UCS-2. */
function ellipsisFor(text: string): string {
  return detectEncoding(text) === 'GSM-7' ? '...' : '…';
}

const TRAILING_BEFORE_ELLIPSIS = /[\s.,;:]+$/u;

/**
 * Makes `text` fit in at most `maxSegments` segments per message, and within {@link MAX_BODY_LENGTH}.
 * Twilio concatenates multi-part messages itself, so this bounds cost, not the size of one part.
 *
 * - `truncate` returns one message, cut after a word and ended with an ellipsis ('...' when the kept
 *   text is GSM-7, '…' otherwise), the ellipsis counted in the limit.
 * - `split` returns as many messages as needed, each within `maxSegments`, cut between words; the
 *   whitespace at a cut is dropped and every other character is kept, in order. A word longer than a
 *   message is hard-cut between graphemes.
 *
 * Text that already fits is returned unchanged as the only element (an empty text gives `['']`).
 * Each message is encoded on its own, so a GSM-7 part of a UCS-2 text is billed as GSM-7.
 *
 * @example fitToSegments(longText, 2, 'truncate') // ['First words of the text...']
 */
export function fitToSegments(text: string, maxSegments: number, mode: FitMode): string[] {
  if (!Number.isInteger(maxSegments) || maxSegments < 1) {
    throw new RangeError(`maxSegments must be a positive integer, got ${maxSegments}`);
  }
  const bound = upperBound(maxSegments);
  const fits = (candidate: string): boolean =>
    candidate.length <= bound && countSegments(candidate).segments <= maxSegments;
  if (fits(text)) return [text];

  if (mode === 'truncate') {
    const kept = text
      .slice(0, cutIndex(text, bound, (prefix) => fits(prefix + ellipsisFor(prefix))))
      .replace(TRAILING_BEFORE_ELLIPSIS, '');
    return [kept + ellipsisFor(kept)];
  }

  const messages: string[] = [];
  let rest = text;
  while (!fits(rest)) {
    const end = cutIndex(rest, bound, fits);
    messages.push(rest.slice(0, end));
    rest = rest.slice(end).trimStart();
  }
  if (rest !== '') messages.push(rest);
  return messages;
}

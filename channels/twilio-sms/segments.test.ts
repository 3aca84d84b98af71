import { describe, expect, it } from 'vitest';
import { countSegments, detectEncoding, estimateCost, fitToSegments, MAX_BODY_LENGTH } from './segments.js';

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

describe('detectEncoding', () => {
  it('keeps the whole GSM 03.38 basic table in GSM-7', () => {
    const basic =
      '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
      '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
    expect([...basic]).toHaveLength(127);
    expect(detectEncoding(basic)).toBe('GSM-7');
  });

  it('keeps the extension table in GSM-7', () => {
    expect(detectEncoding('^{}\\[~]|€\f')).toBe('GSM-7');
  });

  it('treats é and Ç as GSM-7 but ç as UCS-2', () => {
    expect(detectEncoding('café')).toBe('GSM-7');
    expect(detectEncoding('ÇA VA')).toBe('GSM-7');
    expect(detectEncoding('ça va')).toBe('UCS-2');
  });

  it('switches to UCS-2 for characters outside both tables', () => {
    expect(detectEncoding('hi 😀')).toBe('UCS-2');
    expect(detectEncoding('wait…')).toBe('UCS-2');
    expect(detectEncoding('`code`')).toBe('UCS-2');
    expect(detectEncoding('“quoted”')).toBe('UCS-2');
    expect(detectEncoding('á')).toBe('UCS-2');
  });
});

describe('countSegments', () => {
  // Bodies copied from Twilio's message-segment-calculator tests (tests/index.test.js).
  // Note the GSM-7 pair: the one-segment body is `{` followed by 158 characters (159 in all, 160
  // septets); `{` followed by 159 characters is 161 septets and needs two segments.
  const twilioVectors = [
    {
      body: '{23456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789',
      encoding: 'GSM-7',
      segments: 1,
    },
    {
      body: '{234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890',
      encoding: 'GSM-7',
      segments: 2,
    },
    { body: '😜23456789012345678901234567890123456789012345678901234567890123456789', encoding: 'UCS-2', segments: 1 },
    { body: '😜234567890123456789012345678901234567890123456789012345678901234567890', encoding: 'UCS-2', segments: 2 },
  ] as const;

  it.each(twilioVectors)('matches Twilio: $encoding, $segments segment(s) for a $body.length-unit body', (vector) => {
    const count = countSegments(vector.body);
    expect(count.encoding).toBe(vector.encoding);
    expect(count.segments).toBe(vector.segments);
  });

  it('counts `{` as two septets: 160 septets fit one segment, 161 need two', () => {
    expect(countSegments('{' + 'a'.repeat(158))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1, perSegment: 160 });
    expect(countSegments('{' + 'a'.repeat(159))).toEqual({ encoding: 'GSM-7', units: 161, segments: 2, perSegment: 153 });
  });

  it('counts an emoji as two UTF-16 units: emoji + 68 digits is one segment, + 69 is two', () => {
    expect(countSegments('😀' + '1'.repeat(68))).toEqual({ encoding: 'UCS-2', units: 70, segments: 1, perSegment: 70 });
    expect(countSegments('😀' + '1'.repeat(69))).toEqual({ encoding: 'UCS-2', units: 71, segments: 2, perSegment: 67 });
  });

  it('bills an empty body as one segment, like Twilio', () => {
    expect(countSegments('')).toEqual({ encoding: 'GSM-7', units: 0, segments: 1, perSegment: 160 });
  });

  it('splits GSM-7 into 153-septet parts and UCS-2 into 67-unit parts', () => {
    expect(countSegments('a'.repeat(306)).segments).toBe(2);
    expect(countSegments('a'.repeat(307)).segments).toBe(3);
    expect(countSegments('ç'.repeat(134)).segments).toBe(2);
    expect(countSegments('ç'.repeat(135)).segments).toBe(3);
  });

  it('counts every extension character as two septets', () => {
    for (const char of '^{}\\[~]|€\f') expect(countSegments(char).units).toBe(2);
    expect(countSegments('€'.repeat(80)).segments).toBe(1);
    expect(countSegments('€'.repeat(81)).segments).toBe(2);
  });

  it('never splits an escape pair across parts, which can cost an extra segment', () => {
    const text = 'a'.repeat(152) + '{' + 'a'.repeat(152);
    expect(countSegments(text)).toMatchObject({ units: 306, segments: 3 });
    expect(countSegments('a'.repeat(306)).segments).toBe(2);
  });

  it('never splits an emoji across parts', () => {
    const text = 'ç'.repeat(66) + '😀' + 'ç'.repeat(66);
    expect(countSegments(text)).toMatchObject({ units: 134, segments: 3 });
    expect(countSegments('ç'.repeat(134)).segments).toBe(2);
  });
});

describe('estimateCost', () => {
  it('multiplies segments by the price without float noise', () => {
    expect(estimateCost(3, 0.0079)).toBe(0.0237);
    expect(estimateCost(0, 0.0079)).toBe(0);
  });
});

describe('fitToSegments', () => {
  const longGsm = 'The quick brown fox jumps over the lazy dog. '.repeat(12);

  it('returns text that already fits unchanged', () => {
    expect(fitToSegments('hello', 1, 'split')).toEqual(['hello']);
    expect(fitToSegments('hello', 1, 'truncate')).toEqual(['hello']);
    expect(fitToSegments('', 1, 'split')).toEqual(['']);
  });

  it('refuses a limit below one segment', () => {
    expect(() => fitToSegments('hello', 0, 'split')).toThrow(RangeError);
    expect(() => fitToSegments('hello', 1.5, 'truncate')).toThrow(RangeError);
  });

  it('truncates GSM-7 text after a word with "..." so it stays GSM-7', () => {
    const [result] = fitToSegments(longGsm, 1, 'truncate');
    expect(result).toBeDefined();
    expect(result!.endsWith('...')).toBe(true);
    expect(countSegments(result!)).toMatchObject({ encoding: 'GSM-7', segments: 1 });
    const kept = result!.slice(0, -3);
    expect(longGsm.startsWith(kept)).toBe(true);
    expect(longGsm[kept.length]).toMatch(/[\s.,;:]/);
    expect(result!.length).toBeGreaterThan(150);
  });

  it('uses "..." when only the cut-off tail was UCS-2', () => {
    const [result] = fitToSegments('hello '.repeat(40) + 'ça va', 1, 'truncate');
    expect(result!.endsWith('...')).toBe(true);
    expect(countSegments(result!)).toMatchObject({ encoding: 'GSM-7', segments: 1 });
  });

  it('truncates UCS-2 text with "…"', () => {
    const [result] = fitToSegments('ça va bien merci '.repeat(10), 1, 'truncate');
    expect(result!.endsWith('…')).toBe(true);
    expect(result!.endsWith(' …')).toBe(false);
    expect(countSegments(result!)).toMatchObject({ encoding: 'UCS-2', segments: 1 });
  });

  it('truncates within several segments when allowed', () => {
    const [result] = fitToSegments(longGsm, 2, 'truncate');
    expect(countSegments(result!).segments).toBe(2);
    expect(result!.length).toBeGreaterThan(290);
  });

  it('hard-cuts a single word longer than the limit', () => {
    expect(fitToSegments('x'.repeat(400), 1, 'split')).toEqual(['x'.repeat(160), 'x'.repeat(160), 'x'.repeat(80)]);
    expect(fitToSegments('x'.repeat(400), 1, 'truncate')).toEqual(['x'.repeat(157) + '...']);
  });

  it('splits between words, keeping every word in order', () => {
    const parts = fitToSegments(longGsm, 1, 'split');
    expect(parts.length).toBe(4);
    for (const part of parts) expect(countSegments(part).segments).toBe(1);
    expect(parts.join(' ').split(/\s+/).filter(Boolean)).toEqual(longGsm.split(/\s+/).filter(Boolean));
  });

  it("keeps every message within Twilio's 1,600-character body limit, whatever the segment budget", () => {
    const text = 'word '.repeat(1000);
    const parts = fitToSegments(text, 20, 'split');
    expect(parts.length).toBe(4);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(MAX_BODY_LENGTH);
    const [truncated] = fitToSegments(text, 20, 'truncate');
    expect(truncated!.length).toBeLessThanOrEqual(MAX_BODY_LENGTH);
    expect(truncated!.length).toBeGreaterThan(MAX_BODY_LENGTH - 10);
  });

  it('never cuts inside an emoji or a joined emoji sequence', () => {
    const family = '👨‍👩‍👧‍👦';
    for (const text of ['😀'.repeat(100), family.repeat(30)]) {
      const parts = fitToSegments(text, 1, 'split');
      expect(parts.join('')).toBe(text);
      for (const part of parts) {
        expect(LONE_SURROGATE.test(part)).toBe(false);
        expect(countSegments(part).segments).toBe(1);
      }
    }
    expect(fitToSegments(family.repeat(30), 1, 'split')[0]).toBe(family.repeat(6));
  });

  describe('on generated texts', () => {
    const alphabet = [
      ...'abcdefghijklmnopqrstuvwxyz',
      ...'ABCDEF0123456789',
      ' ', ' ', ' ', ' ', ' ', '\n', '.', ',',
      'é', 'Ç', 'ç', '€', '{', '}', '[', '~', '😀', '👍🏽', '🇫🇷', '…', 'ñ', 'Ω', '中',
    ];

    function* texts(): Generator<string> {
      let seed = 0x9e3779b9;
      const random = (): number => {
        seed = (seed * 1664525 + 1013904223) >>> 0;
        return seed / 2 ** 32;
      };
      for (let i = 0; i < 150; i += 1) {
        const length = Math.floor(random() * 900);
        const gsmOnly = random() < 0.4;
        const pool = gsmOnly ? alphabet.filter((char) => detectEncoding(char) === 'GSM-7') : alphabet;
        let text = '';
        for (let j = 0; j < length; j += 1) {
          text += random() < 0.02 ? 'w'.repeat(Math.floor(random() * 400)) : pool[Math.floor(random() * pool.length)];
        }
        yield text;
      }
    }

    const withoutWhitespace = (text: string): string => text.replace(/\s/gu, '');

    it('split never exceeds the limit, never loses a visible character and never splits a surrogate pair', () => {
      for (const text of texts()) {
        for (const maxSegments of [1, 2, 3]) {
          const parts = fitToSegments(text, maxSegments, 'split');
          expect(withoutWhitespace(parts.join(''))).toBe(withoutWhitespace(text));
          for (const part of parts) {
            expect(countSegments(part).segments).toBeLessThanOrEqual(maxSegments);
            expect(LONE_SURROGATE.test(part)).toBe(false);
          }
          if (parts.length > 1) for (const part of parts) expect(withoutWhitespace(part)).not.toBe('');
        }
      }
    });

    it('truncate gives one message within the limit, a prefix of the text plus the right ellipsis', () => {
      for (const text of texts()) {
        for (const maxSegments of [1, 2, 3]) {
          const result = fitToSegments(text, maxSegments, 'truncate');
          expect(result).toHaveLength(1);
          const [message] = result as [string];
          expect(countSegments(message).segments).toBeLessThanOrEqual(maxSegments);
          expect(LONE_SURROGATE.test(message)).toBe(false);
          if (message === text) continue;

          const ellipsis = message.endsWith('...') ? '...' : '…';
          const kept = message.slice(0, -ellipsis.length);
          expect(message.endsWith(ellipsis)).toBe(true);
          expect(text.startsWith(kept)).toBe(true);
          expect(ellipsis).toBe(detectEncoding(kept) === 'GSM-7' ? '...' : '…');
          if (/\S\s+\S/u.test(kept)) expect(text[kept.length]).toMatch(/[\s.,;:]/u);
        }
      }
    });
  });
});

import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { emptyTwiml, MAX_TWIML_BYTES, messagingTwiml, TwimlError } from './twiml.js';

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

describe('emptyTwiml', () => {
  it('is an empty Response document', () => {
    expect(emptyTwiml()).toBe(`${DECLARATION}<Response/>`);
  });
});

describe('messagingTwiml', () => {
  it('answers with no message when there is nothing to say', () => {
    expect(messagingTwiml([])).toBe(`${DECLARATION}<Response/>`);
  });

  it('writes one Message per reply, in order', () => {
    expect(messagingTwiml([{ text: 'first' }, { text: 'second' }])).toBe(
      `${DECLARATION}<Response><Message><Body>first</Body></Message><Message><Body>second</Body></Message></Response>`,
    );
  });

  it('escapes XML special characters in text', () => {
    const xml = messagingTwiml([{ text: `a <b> & "c" 'd' ]]>` }]);
    expect(xml).toBe(`${DECLARATION}<Response><Message><Body>a &lt;b&gt; &amp; "c" 'd' ]]&gt;</Body></Message></Response>`);
    expect(xml).not.toContain('<b>');
  });

  it('adds media, escaping URLs, and omits an empty body', () => {
    const xml = messagingTwiml([{ text: '', mediaUrls: ['https://cdn.example.com/a.png?x=1&y=<2>'] }]);
    expect(xml).toBe(
      `${DECLARATION}<Response><Message><Media>https://cdn.example.com/a.png?x=1&amp;y=&lt;2&gt;</Media></Message></Response>`,
    );
  });

  it('keeps text and several media in one message', () => {
    const xml = messagingTwiml([{ text: 'Your receipt', mediaUrls: ['https://a.example/1.pdf', 'https://a.example/2.pdf'] }]);
    expect(xml).toContain('<Message><Body>Your receipt</Body><Media>https://a.example/1.pdf</Media><Media>https://a.example/2.pdf</Media></Message>');
  });

  it('keeps Unicode and line breaks, and drops characters XML cannot carry', () => {
    const xml = messagingTwiml([{ text: 'Olá 😀\nline\u0000two\u0007' }]);
    expect(xml).toContain('<Body>Olá 😀\nlinetwo</Body>');
  });

  it('refuses a reply with neither text nor media', () => {
    expect(() => messagingTwiml([{ text: '' }])).toThrow(TwimlError);
    expect(() => messagingTwiml([{ text: '\u0001' }])).toThrow(expect.objectContaining({ code: 'PARLEY_TWILIO_SMS_TWIML_EMPTY_MESSAGE' }));
  });

  it("refuses a document over Twilio's 64 kB limit with a typed error", () => {
    const justUnder = messagingTwiml([{ text: 'a'.repeat(MAX_TWIML_BYTES - 200) }]);
    expect(Buffer.byteLength(justUnder)).toBeLessThanOrEqual(MAX_TWIML_BYTES);

    let caught: unknown;
    try {
      messagingTwiml([{ text: '&'.repeat(MAX_TWIML_BYTES / 5) }]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TwimlError);
    expect(caught).toMatchObject({ code: 'PARLEY_TWILIO_SMS_TWIML_TOO_LARGE', channel: 'twilio-sms' });
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    expect(() => messagingTwiml([{ text: '😀'.repeat(MAX_TWIML_BYTES / 4) }])).toThrow(TwimlError);
  });
});

describe('messagingTwiml and the twilio SDK', () => {
  /** The document the SDK's MessagingResponse writes for the same replies. */
  const sdkTwiml = (replies: { text: string; mediaUrls?: string[] }[]) => {
    const response = new twilio.twiml.MessagingResponse();
    for (const reply of replies) {
      const message = response.message({}, '');
      if (reply.text !== '') message.body(reply.text);
      for (const url of reply.mediaUrls ?? []) message.media(url);
    }
    return response.toString();
  };

  it('writes the same document as the SDK, escapes and line breaks included', () => {
    const replies = [
      { text: `a <b> & "c" 'd' ]]> e` },
      { text: 'line one\r\nline two\ttab \u2028 Olá 😀 {€}' },
      { text: '', mediaUrls: ['https://cdn.example.com/a.png?x=1&y=<2>&z="3"\r'] },
      { text: 'caption', mediaUrls: ['https://a.example/1.pdf', 'https://a.example/2.pdf'] },
      { text: '&amp; &lt; already escaped' },
    ];
    expect(messagingTwiml(replies)).toBe(sdkTwiml(replies));
    expect(emptyTwiml()).toBe(new twilio.twiml.MessagingResponse().toString());
  });
});

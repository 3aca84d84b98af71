import { PluginError, pluginErrorCode } from 'parley';

/** One `<Message>` of a TwiML answer to an inbound SMS. */
export interface TwimlReply {
  text: string;
  mediaUrls?: readonly string[];
}

/** Twilio refuses TwiML documents larger than 64 kB. */
export const MAX_TWIML_BYTES = 64 * 1024;

/** `PARLEY_TWILIO_SMS_TWIML_TOO_LARGE` / `PARLEY_TWILIO_SMS_TWIML_EMPTY_MESSAGE` in the error catalogue. */
export type TwimlErrorCode = 'TWIML_TOO_LARGE' | 'TWIML_EMPTY_MESSAGE';

export class TwimlError extends PluginError {
  readonly channel = 'twilio-sms';

  constructor(what: TwimlErrorCode, message: string) {
    super(pluginErrorCode('twilio-sms', what), message, 500, { plugin: 'twilio-sms' });
  }
}

/**
 * Characters XML 1.0 cannot carry (most C0 controls, lone surrogates, U+FFFE/U+FFFF). Model output or
 * echoed user text can contain them, so they are dropped.
 */
const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** What the twilio SDK's XML writer (xmlbuilder) escapes in element text, escaped the same way. */
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#xD;' };

function xmlText(text: string): string {
  return text.replace(XML_ILLEGAL, '').replace(/[&<>\r]/g, (c) => XML_ESCAPES[c]!);
}

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

function assertSize(xml: string): string {
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_TWIML_BYTES) {
    throw new TwimlError('TWIML_TOO_LARGE', `TwiML is ${bytes} bytes, over Twilio's ${MAX_TWIML_BYTES}-byte limit`);
  }
  return xml;
}

/**
 * TwiML answering an inbound SMS with zero or more messages: the document the twilio SDK's
 * `MessagingResponse` writes, built as a string instead of through the SDK's XML builder, which cost
 * about 3% of the webhook's CPU (issue 13's profile); twiml.test.ts holds the two to the same output.
 * Throws `TwimlError` (`PARLEY_TWILIO_SMS_TWIML_EMPTY_MESSAGE`) for a reply with neither text nor media and
 * (`PARLEY_TWILIO_SMS_TWIML_TOO_LARGE`) when the document exceeds {@link MAX_TWIML_BYTES}.
 *
 * @example messagingTwiml([{ text: 'Hi & welcome' }])
 * // '<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>Hi &amp; welcome</Body></Message></Response>'
 */
export function messagingTwiml(replies: readonly TwimlReply[]): string {
  if (!replies.length) return emptyTwiml();
  let xml = `${DECLARATION}<Response>`;
  for (const reply of replies) {
    const text = xmlText(reply.text);
    const mediaUrls = reply.mediaUrls ?? [];
    if (text === '' && mediaUrls.length === 0) {
      throw new TwimlError('TWIML_EMPTY_MESSAGE', 'A TwiML reply needs text or media');
    }
    xml += '<Message>';
    if (text !== '') xml += `<Body>${text}</Body>`;
    for (const url of mediaUrls) xml += `<Media>${xmlText(url)}</Media>`;
    xml += '</Message>';
  }
  return assertSize(`${xml}</Response>`);
}

/** `<Response/>`: acknowledges a webhook without replying (status callbacks, opted-out senders). */
export function emptyTwiml(): string {
  return `${DECLARATION}<Response/>`;
}

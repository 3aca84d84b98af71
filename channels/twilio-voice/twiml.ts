/**
 * Voice TwiML: every answer either listens again (`<Gather input="speech dtmf">` posting the next
 * turn to `/twilio/voice/gather?turn=N`), transfers (`<Dial>`), or says goodbye and hangs up.
 * Built with the twilio SDK, which escapes the text.
 */
import { createRequire } from 'node:module';
import type VoiceResponse from 'twilio/lib/twiml/VoiceResponse.js';
import type { TwilioVoiceSettings } from './types.js';

let builder: typeof VoiceResponse | undefined;
/**
 * A TwiML document, with the SDK's builder loaded on the first call: the builder (with xmlbuilder) costs
 * 50 ms of a start that may never answer a call, and the package's index would load its whole REST
 * client too (0.2 s; bench/README.md, step 8). A synchronous `require`: the SDK is CommonJS.
 */
function newVoiceResponse(): VoiceResponse {
  builder ??= createRequire(import.meta.url)('twilio/lib/twiml/VoiceResponse.js') as typeof VoiceResponse;
  return new builder();
}

/** Twilio reads at most 4,096 characters per <Say>; longer pipeline output is cut after a sentence or word. */
export const MAX_SAY_CHARS = 4000;

const XML_ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text safe to speak: XML-legal, whitespace collapsed, within {@link MAX_SAY_CHARS}. */
export function speakable(text: string): string {
  const clean = text.replace(XML_ILLEGAL, '').replace(/\s+/gu, ' ').trim();
  if (clean.length <= MAX_SAY_CHARS) return clean;
  const head = clean.slice(0, MAX_SAY_CHARS);
  const sentence = head.search(/[.!?][^.!?]*$/u);
  if (sentence > MAX_SAY_CHARS / 2) return head.slice(0, sentence + 1);
  const space = head.lastIndexOf(' ');
  return space > 0 ? head.slice(0, space) : head;
}

export interface VoiceScript {
  /** `https://host[/prefix]`, where Twilio reaches this gateway. */
  base: string;
  settings: TwilioVoiceSettings;
  language: string;
}

export function gatherUrl(base: string, turn: number, retry = 0): string {
  return `${base}/twilio/voice/gather?turn=${turn}${retry ? `&retry=${retry}` : ''}`;
}

export function dialUrl(base: string, turn: number): string {
  return `${base}/twilio/voice/dial?turn=${turn}`;
}

function say(node: VoiceResponse | VoiceResponse.Gather, script: VoiceScript, text: string): void {
  const t = speakable(text);
  if (t) node.say({ voice: script.settings.voice as VoiceResponse.SayAttributes['voice'], language: script.language as VoiceResponse.SayAttributes['language'] }, t);
}

function gather(response: VoiceResponse, script: VoiceScript, turn: number, retry: number, prompt: string | undefined): void {
  const s = script.settings;
  const g = response.gather({
    input: ['speech', 'dtmf'],
    action: gatherUrl(script.base, turn, retry),
    method: 'POST',
    language: script.language as VoiceResponse.GatherAttributes['language'],
    speechTimeout: s.speechTimeout,
    timeout: s.gatherTimeoutSec,
    // Silence still posts to the action, so re-prompts and the polite end are decided in one place.
    actionOnEmptyResult: true,
    ...(s.hints ? { hints: s.hints } : {}),
    ...(s.speechModel ? { speechModel: s.speechModel } : {}),
  });
  if (prompt) say(g, script, prompt);
}

/** Says `text` (if any) while listening for turn `turn`. */
export function listenTwiml(script: VoiceScript, turn: number, text: string | undefined, retry = 0): string {
  const response = newVoiceResponse();
  gather(response, script, turn, retry, text);
  return response.toString();
}

/** Says goodbye and hangs up. */
export function hangupTwiml(script: VoiceScript, text: string): string {
  const response = newVoiceResponse();
  say(response, script, text);
  response.hangup();
  return response.toString();
}

/** Says `text`, then transfers the caller; the outcome of the transfer posts to `/twilio/voice/dial`. */
export function handoffTwiml(script: VoiceScript, turn: number, text: string, number: string): string {
  const response = newVoiceResponse();
  say(response, script, text);
  response.dial({ action: dialUrl(script.base, turn), method: 'POST' }, number);
  return response.toString();
}

/**
 * The pipeline missed its budget: hold the caller. The answer replaces this document through the
 * REST API as soon as it is ready; if it never comes, the caller is asked again.
 */
export function holdTwiml(script: VoiceScript, nextTurn: number): string {
  const response = newVoiceResponse();
  say(response, script, script.settings.holdMessage);
  response.pause({ length: script.settings.holdSeconds });
  gather(response, script, nextTurn, 0, script.settings.slowFallback);
  return response.toString();
}

/** A reply, as the caller hears it: transferred when asked for (and possible), else listened after. */
export function replyTwiml(script: VoiceScript, nextTurn: number, text: string, handoff: boolean): string {
  const s = script.settings;
  if (handoff && s.handoffNumber) return handoffTwiml(script, nextTurn, text || s.handoffMessage, s.handoffNumber);
  if (handoff) return listenTwiml(script, nextTurn, [text, s.handoffUnavailable].filter(Boolean).join(' '));
  return listenTwiml(script, nextTurn, text || undefined);
}

const normalise = (text: string) =>
  text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019`´]/gu, "'")
    .replace(/[^\p{L}\p{N}' ]+/gu, ' ')
    .replace(/\s+/gu, ' ')
    .trim();

/**
 * "Goodbye", "okay, thanks, bye!", "that's all": the whole utterance is a goodbye phrase, or a short
 * one (six words at most) contains one as whole words. "Bye" inside a longer request is not a goodbye.
 */
export function isGoodbye(utterance: string, phrases: readonly string[]): boolean {
  const u = normalise(utterance);
  if (!u) return false;
  const short = u.split(' ').length <= 6;
  return phrases.some((phrase) => {
    const p = normalise(phrase);
    return p !== '' && (u === p || (short && ` ${u} `.includes(` ${p} `)));
  });
}

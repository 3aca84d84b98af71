/**
 * Consent keywords: whether an inbound SMS opts the sender out, back in, or asks for help.
 * Exact keywords follow CTIA and Twilio's defaults; plain-language opt-outs follow the TCPA rule
 * (from 2025-04-11) that a revocation "through any reasonable means" must be honoured.
 */

export interface ConsentKeywords {
  optOut: readonly string[];
  optIn: readonly string[];
  help: readonly string[];
}

export type KeywordClass = 'opt-out' | 'opt-in' | 'help';

export interface ClassifyKeywordOptions {
  /**
   * Twilio's `OptOutType` webhook parameter (`STOP`, `START` or `HELP`), sent when Advanced Opt-Out
   * matched the message. Twilio has already acted on it, so it wins over our own matching.
   */
  optOutType?: string | null | undefined;
  /** Recognise plain-language opt-outs ("please stop texting me"). Default true. */
  plainLanguage?: boolean;
}

/** Twilio's default long-code keywords (plus CTIA's INFO for help). */
export const DEFAULT_KEYWORDS: ConsentKeywords = Object.freeze({
  optOut: Object.freeze(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE']),
  optIn: Object.freeze(['START', 'YES', 'UNSTOP', 'OPTIN']),
  help: Object.freeze(['HELP', 'INFO']),
});

const OPT_OUT_TYPES: ReadonlyMap<string, KeywordClass> = new Map([
  ['STOP', 'opt-out'],
  ['START', 'opt-in'],
  ['HELP', 'help'],
]);

/**
 * Punctuation, symbols (emoji included), format characters (zero-width joiner), emoji variation
 * selectors and whitespace, ignored around a keyword: "Stop!!", "stop.", "STOP 🙏".
 */
const EDGE_NOISE = /^[\p{White_Space}\p{P}\p{S}\p{Cf}\u{FE0E}\u{FE0F}\u{20E3}]+|[\p{White_Space}\p{P}\p{S}\p{Cf}\u{FE0E}\u{FE0F}\u{20E3}]+$/gu;

/** Upper case, NFKC, inner whitespace collapsed and edge noise dropped: how a message is compared with keywords. */
export function normaliseKeyword(text: string): string {
  return text.normalize('NFKC').replace(EDGE_NOISE, '').replace(/\s+/gu, ' ').toUpperCase();
}

/** Lower case, straight apostrophes, every other non-letter/digit turned into a single space. */
function normaliseSentence(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019\u02BC`´]/gu, "'")
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .trim();
}

const NEGATION = String.raw`(?:can't|cant|cannot|can not|won't|wont|couldn't|couldnt|don't|dont|do not|didn't|didnt|never|not|shouldn't)`;
const CONTACT_VERB = String.raw`(?:text|txt|message|msg|sms|contact|spam)`;
const CONTACTING = String.raw`(?:texting|txting|texing|messaging|msging|contacting|spamming)`;
const ME = String.raw`(?:me|us|this number|my number|my phone)`;
const TEXTS = String.raw`(?:(?:(?:all\s+)?(?:these|those|your|the|any|all)\s+)?(?:texts|txts|text messages|messages|msgs|sms|spam)|these|this|them)`;
const FILLER = String.raw`(?:\s+(?:please|pls|plz|now|anymore|any more|again|thanks|thank you|thx|ever|asap))*`;
const LEADING_FILLER = /^(?:(?:please|pls|plz|just)\s+)+/u;
const TRAILING_FILLER = new RegExp(`${FILLER}$`, 'u');

/**
 * Plain-language opt-outs, matched against the message lower-cased with punctuation turned into
 * spaces. "stop" alone is ambiguous ("don't stop", "stop by tomorrow?", "I can't stop coughing"),
 * so stop-phrases need a contact verb or a texts noun, and are refused after a negation.
 * A configured opt-out keyword wrapped in politeness ("please stop", "STOP now thanks") is also an
 * opt-out; that check uses the configured keywords, not this list.
 */
export const PLAIN_OPT_OUT_PATTERNS: readonly { name: string; pattern: RegExp }[] = [
  {
    name: 'stop-contacting', // "please stop texting me", "stop messaging me", "quit sending me texts"
    pattern: new RegExp(
      String.raw`(?<!\b${NEGATION}\s+)\b(?:stop|quit|cease)\s+(?:${CONTACTING}|sending(?:\s+${ME})?\s+${TEXTS}|(?:receiving|getting)\s+${TEXTS})(?:\s+(?:to\s+)?${ME}\b.*|${FILLER})$`,
      'u',
    ),
  },
  {
    name: 'do-not-contact', // "don't text me anymore", "do not contact this number", "never message me again"
    pattern: new RegExp(String.raw`\b(?:don't|dont|do not|never)\s+${CONTACT_VERB}\s+${ME}\b`, 'u'),
  },
  {
    name: 'unsubscribe-me', // "unsubscribe me", "opt me out", "remove me please"
    pattern: new RegExp(
      String.raw`(?<!\b${NEGATION}\s+)\b(?:unsubscribe\s+${ME}|opt\s+${ME}\s+out)\b|^(?:please\s+)?(?:unsubscribe|opt\s*out|remove me)${FILLER}$`,
      'u',
    ),
  },
  {
    name: 'want-out', // "I want to unsubscribe", "I'd like to opt out", "I want to stop getting these texts"
    pattern: new RegExp(
      String.raw`(?<!\b${NEGATION}\s+)\b(?:want|wish|would like|'d like|need)\s+to\s+(?:unsubscribe|opt\s*out|stop\s+(?:receiving|getting)\s+${TEXTS})\b`,
      'u',
    ),
  },
  {
    name: 'remove-from-list', // "take me off your list", "remove my number from your texting list"
    pattern: new RegExp(
      String.raw`\b(?:take|remove|delete)\s+${ME}\s+(?:off|from)\s+(?:of\s+)?(?:your|ur|the|this|these|all|any)\s+(?:\p{L}+\s+)?(?:list|lists|database|system)\b`,
      'u',
    ),
  },
  {
    name: 'no-more-texts', // "no more texts please"
    pattern: new RegExp(String.raw`^(?:please\s+)?no\s+more\s+${TEXTS}\b`, 'u'),
  },
  {
    name: 'leave-me-alone',
    pattern: new RegExp(String.raw`^(?:(?:please|pls|just)\s+)*leave\s+me\s+alone${FILLER}$`, 'u'),
  },
];

/** Each keyword list normalised once (lists are fixed per tenant policy), then a set lookup per message. */
const normalisedLists = new WeakMap<readonly string[], ReadonlySet<string>>();

function matchesKeyword(normalised: string, list: readonly string[]): boolean {
  let set = normalisedLists.get(list);
  if (!set) {
    set = new Set(list.map(normaliseKeyword));
    normalisedLists.set(list, set);
  }
  return set.has(normalised);
}

/** The exact keyword a message already passed through {@link normaliseKeyword} is, if any. */
export function exactKeyword(normalised: string, keywords: ConsentKeywords): KeywordClass | null {
  if (normalised === '') return null;
  if (matchesKeyword(normalised, keywords.optOut)) return 'opt-out';
  if (matchesKeyword(normalised, keywords.optIn)) return 'opt-in';
  if (matchesKeyword(normalised, keywords.help)) return 'help';
  return null;
}

/** A plain-language opt-out ("please stop", "stop texting me"), with the tenant's opt-out keywords. */
export function isPlainOptOut(body: string, optOut: readonly string[]): boolean {
  const sentence = normaliseSentence(body);
  const withoutFiller = normaliseKeyword(sentence.replace(LEADING_FILLER, '').replace(TRAILING_FILLER, ''));
  if (withoutFiller !== '' && matchesKeyword(withoutFiller, optOut)) return true;
  return PLAIN_OPT_OUT_PATTERNS.some(({ pattern }) => pattern.test(sentence));
}

/**
 * Classifies an inbound SMS as a consent keyword, or `null` for an ordinary message.
 *
 * Order: Twilio's `OptOutType` when present; then the whole message equal to a keyword (any case,
 * NFKC-normalised, surrounding whitespace, punctuation and emoji ignored); then, unless disabled,
 * plain-language opt-outs: a configured opt-out keyword wrapped in politeness ("please stop") or one
 * of the documented {@link PLAIN_OPT_OUT_PATTERNS}. Plain language only ever yields `'opt-out'`.
 *
 * @example classifyKeyword('  Stop!! ') // 'opt-out'
 * @example classifyKeyword('please stop texting me') // 'opt-out'
 * @example classifyKeyword("don't stop") // null
 * @example classifyKeyword('hi', DEFAULT_KEYWORDS, { optOutType: 'START' }) // 'opt-in'
 */
export function classifyKeyword(
  body: string,
  keywords: ConsentKeywords = DEFAULT_KEYWORDS,
  opts: ClassifyKeywordOptions = {},
): KeywordClass | null {
  const fromTwilio = opts.optOutType ? OPT_OUT_TYPES.get(opts.optOutType.trim().toUpperCase()) : undefined;
  if (fromTwilio) return fromTwilio;

  const normalised = normaliseKeyword(body);
  if (normalised === '') return null;
  const exact = exactKeyword(normalised, keywords);
  if (exact || opts.plainLanguage === false) return exact;
  return isPlainOptOut(body, keywords.optOut) ? 'opt-out' : null;
}

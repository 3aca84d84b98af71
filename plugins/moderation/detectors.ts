/**
 * The rule-based detectors: pure functions of the text (and, for spam, of counts the stage looks up).
 * Each returns its finding with a score and details that never hold the matched personal data, and
 * the spans a redaction would mask.
 */
import { RegExpMatcher, englishDataset, englishRecommendedTransformers, type MatchPayload } from 'obscenity';
import type { Flag, PiiKind, Span } from './types.js';

// ---- profanity and slurs (obscenity) ----------------------------------------------------------------

/** Slurs: aimed at a group of people. The strongest profanity score. */
const SLURS = new Set(['abo', 'abeed', 'africoon', 'arabush', 'boonga', 'chingchong', 'chink', 'dyke', 'fag', 'kike', 'nigger', 'retard', 'spastic', 'tranny']);
/**
 * Words of the English dataset that are anatomy, sex or crime rather than abuse: a clinic's patients
 * write "pain during sex" or report a rape. Scored low (under the default threshold): they are worth a
 * flag only when a tenant lowers it. `negro` is Spanish for black.
 */
const CLINICAL = new Set(['anal', 'anus', 'penis', 'vagina', 'sex', 'semen', 'ejaculate', 'orgasm', 'masturbate', 'boob', 'tit', 'rape', 'incest', 'negro', 'porn', 'hentai', 'bestiality', 'scat', 'fellatio', 'dildo', 'buttplug', 'hooker']);
/** Dataset matches inside ordinary words (the dataset's own whitelist misses these). */
const BASE_WHITELIST = ['shiitake', 'niggardly', 'scunthorpe', 'penistone', 'cockburn', 'cocktail', 'hancock', 'dickens', 'analysis', 'therapist', 'assassin', 'sextant', 'sussex', 'essex', 'middlesex', 'grape', 'document'];

const matchers = new Map<string, RegExpMatcher>();

function matcherFor(allowWords: readonly string[]): RegExpMatcher {
  const key = allowWords.join('\u0000');
  let m = matchers.get(key);
  if (!m) {
    const built = englishDataset.build();
    m = new RegExpMatcher({ ...built, ...englishRecommendedTransformers, whitelistedTerms: [...(built.whitelistedTerms ?? []), ...BASE_WHITELIST, ...allowWords.map((w) => w.toLowerCase())] });
    if (matchers.size > 100) matchers.clear();
    matchers.set(key, m);
  }
  return m;
}

const INVISIBLE = /[\u00AD\u200B-\u200F\u2060\uFEFF]/gu;
/** Runs of single characters with separators: "f u c k", "s.h.i.t", "b-i-t-c-h". */
const SPACED = /(?<![\p{L}\p{N}])(?:[\p{L}\p{N}@$*!][\s.\-_*~]{1,3}){2,}[\p{L}\p{N}@$*!](?![\p{L}\p{N}])/gu;

interface ProfanityHit {
  word: string;
  start: number;
  end: number;
}

function hitsOf(matcher: RegExpMatcher, text: string): ProfanityHit[] {
  return matcher.getAllMatches(text, true).map((match: MatchPayload) => ({
    word: englishDataset.getPayloadWithPhraseMetadata(match).phraseMetadata?.originalWord ?? 'unknown',
    start: match.startIndex,
    end: match.endIndex + 1,
  }));
}

/** Profanity and slurs, with look-alike characters (obscenity's transformers) and spaced-out letters. */
export function detectProfanity(input: string, allowWords: readonly string[] = []): { flag: Flag | null; spans: Span[] } {
  const text = input.replace(INVISIBLE, '');
  const matcher = matcherFor(allowWords);
  const hits = hitsOf(matcher, text);
  for (const run of text.matchAll(SPACED)) {
    const collapsed = run[0].replace(/[\s.\-_*~]/gu, '');
    for (const h of hitsOf(matcher, collapsed)) hits.push({ word: h.word, start: run.index, end: run.index + run[0].length });
  }
  if (!hits.length) return { flag: null, spans: [] };
  const words = [...new Set(hits.map((h) => h.word))];
  const slurs = words.filter((w) => SLURS.has(w));
  const strong = words.filter((w) => !SLURS.has(w) && !CLINICAL.has(w));
  const base = slurs.length ? 0.95 : strong.length ? 0.8 : 0.3;
  const score = Math.min(0.99, base + 0.05 * Math.min(3, hits.length - 1));
  const spans = hits.map((h) => ({ start: h.start, end: h.end, replacement: maskWord(text.slice(h.start, h.end)) }));
  // Spans index the text without invisible characters: only use them when there were none.
  return {
    flag: { category: 'profanity', detector: 'obscenity', score, details: { count: hits.length, slur: slurs.length > 0, words: words.map(censorWord) } },
    spans: text === input ? spans : [],
  };
}

/** `fuck` -> `f***`: enough for a moderator to see which word, never reproducing it. */
function censorWord(word: string): string {
  return word.length <= 1 ? '*' : `${word[0]}${'*'.repeat(word.length - 1)}`;
}

function maskWord(text: string): string {
  return text.replace(/[\p{L}\p{N}@$!*]/gu, (c, i: number) => (i === 0 ? c : '*'));
}

// ---- harassment and threats ---------------------------------------------------------------------

interface Rule {
  id: string;
  pattern: RegExp;
  score: number;
}

const YOU = String.raw`(?:you|u|ya|yall|y'all|your (?:family|kids|staff)|you people)`;
const HARASSMENT_RULES: Rule[] = [
  { id: 'threat.kill', pattern: new RegExp(String.raw`\b(?:i(?:'m| am)? ?(?:going to|gonna|will|'ll)|i'll|imma|we(?:'re| are)? ?(?:going to|gonna|will)|someone should|i want to|i'd like to)\s+(?:\w+\s+)?(?:kill|murder|shoot|stab|hurt|beat|strangle|choke|burn|destroy|end)\s+${YOU}\b`, 'i'), score: 0.92 },
  { id: 'threat.find', pattern: /\b(?:i know where (?:you|u) live|watch your back|you(?:'ll| will) (?:regret|pay for) (?:this|it)|you(?:'re| are) (?:dead|going to die)|i(?:'ll| will) (?:find|get) (?:you|u)|(?:see|meet) you (?:outside|after work))\b/i, score: 0.88 },
  { id: 'threat.self-harm-incitement', pattern: /\b(?:kill|hang|shoot) (?:yo)?urself\b|\bkys\b|\bgo (?:die|jump off)\b|\bdie in a (?:fire|hole|ditch)\b|\bhope (?:you|u) (?:die|get cancer|rot)\b|\bdrop dead\b/i, score: 0.93 },
  { id: 'insult.direct', pattern: /\b(?:you(?:'re| are)?|ur|u r|you people are|your (?:staff|doctors|nurses|team) (?:is|are))\s+(?:a |an |so |such (?:a |an )?|all |just |complete |total |fucking |f\*+ing )*(?:stupid|idiots?|morons?|imbeciles?|worthless|pathetic|losers?|useless|dumb|retards?|ugly|disgusting|trash|garbage|scum|clowns?|incompetent (?:idiots?|clowns?|morons?)|piece of (?:shit|crap|garbage))\b/i, score: 0.72 },
  { id: 'insult.noun', pattern: /\b(?:stupid|dumb|fat|ugly|useless|worthless)\s+(?:bitch|cow|pig|idiot|moron|bot|loser|slut|whore|bastard)\b/i, score: 0.75 },
  { id: 'dismissive.shut-up', pattern: /\bshut (?:the (?:fuck|hell) )?up\b|\bnobody (?:likes|wants|cares about) (?:you|u)\b|\bget lost,? (?:loser|idiot)\b/i, score: 0.62 },
];

/** Harassment and threats aimed at a person (the reader, staff), not danger to the writer: that is crisis-guard's. */
export function detectHarassment(text: string): Flag | null {
  const normal = text.replace(INVISIBLE, '').replace(/[’‘]/g, "'");
  const matched = HARASSMENT_RULES.filter((r) => r.pattern.test(normal));
  if (!matched.length) return null;
  const score = combine(matched.map((r) => r.score));
  return { category: 'harassment', detector: 'threat-rules', score, details: { rules: matched.map((r) => r.id), threat: matched.some((r) => r.id.startsWith('threat.')) } };
}

// ---- spam ------------------------------------------------------------------------------------------

const URL_PATTERN = /\b(?:https?:\/\/)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|info|biz|xyz|top|click|link|io|co|ru|cn|tk|ml|ga|cf|gq|ly|me|app|site|online|shop|us|uk|de|fr|es|example))(?:[/?#][^\s]*)?/gi;
const SPAM_PHRASES: Rule[] = [
  { id: 'phrase.prize', pattern: /\b(?:you(?:'ve| have)? (?:won|been selected)|claim (?:your|ur) (?:prize|reward|gift)|congratulations[!,. ]+(?:you|u)|winner\b.*\b(?:claim|call|click))/i, score: 0.55 },
  { id: 'phrase.click', pattern: /\b(?:click (?:here|the link|this link|below)|tap (?:here|the link)|visit (?:now|today))\b/i, score: 0.4 },
  { id: 'phrase.money', pattern: /\b(?:free (?:money|cash|gift ?card|iphone|crypto)|earn \$?\d[\d,]*(?:k)?\s*(?:a|per) (?:day|week|month)|work from home|make money fast|double your (?:money|bitcoin|crypto)|guaranteed (?:returns|profit|income)|bitcoin investment|crypto (?:investment|giveaway|opportunity))\b/i, score: 0.55 },
  { id: 'phrase.urgency', pattern: /\b(?:act now|limited time (?:offer|only)|offer expires|only \d+ (?:left|spots)|don'?t miss (?:out|this))\b/i, score: 0.35 },
  { id: 'phrase.promo', pattern: /\b(?:100% free|no credit check|lowest price|best prices?|cheap (?:meds|pills|viagra|rolex)|buy now|order now|subscribe (?:now|today)|promo code|discount code|use code [A-Z0-9]{3,})\b/i, score: 0.45 },
];

export interface SpamContext {
  blockedDomains: readonly string[];
  /** How many of the sender's recent messages have this same text (normalised), this one excluded. */
  sameAsRecent: number;
  repeats: number;
  /** The sender's messages within the burst window, this one included. */
  recentCount: number;
  burstCount: number;
  capsRatio: number;
}

/** Lower case, spaces squeezed, trailing punctuation dropped: "Hi!! " and "hi" are the same message. */
export function normaliseForRepeat(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').replace(/[\s!?.]+$/u, '').trim();
}

/** Links to blocked domains, repeated identical messages, shouting, bursts, and spam phrasing. */
export function detectSpam(text: string, context: SpamContext): Flag | null {
  const signals: { id: string; score: number; detail?: unknown }[] = [];
  const domains = [...text.matchAll(URL_PATTERN)].map((m) => m[1]!.toLowerCase());
  const blocked = domains.filter((d) => context.blockedDomains.some((b) => d === b.toLowerCase() || d.endsWith(`.${b.toLowerCase()}`)));
  if (blocked.length) signals.push({ id: 'blocked-domain', score: 0.95, detail: [...new Set(blocked)] });
  if (domains.length >= 3) signals.push({ id: 'many-links', score: 0.6, detail: domains.length });
  else if (domains.length && SPAM_PHRASES.some((r) => r.pattern.test(text))) signals.push({ id: 'link-with-pitch', score: 0.45 });
  if (context.sameAsRecent + 1 >= context.repeats) signals.push({ id: 'repeated', score: 0.8, detail: context.sameAsRecent + 1 });
  if (context.recentCount > context.burstCount) signals.push({ id: 'burst', score: 0.7, detail: context.recentCount });
  const letters = text.match(/\p{L}/gu) ?? [];
  const upper = text.match(/\p{Lu}/gu) ?? [];
  if (letters.length >= 12 && upper.length / letters.length >= context.capsRatio) signals.push({ id: 'caps', score: 0.4, detail: Math.round((upper.length / letters.length) * 100) / 100 });
  if (/(.)\1{7,}/u.test(text) || /([!?$])\1{4,}/u.test(text)) signals.push({ id: 'repeated-characters', score: 0.3 });
  for (const r of SPAM_PHRASES) if (r.pattern.test(text)) signals.push({ id: r.id, score: r.score });
  if (!signals.length) return null;
  return {
    category: 'spam',
    detector: 'spam-rules',
    score: combine(signals.map((s) => s.score)),
    details: { signals: signals.map((s) => s.id), ...(blocked.length ? { blockedDomains: [...new Set(blocked)] } : {}), ...(signals.some((s) => s.id === 'repeated') ? { repeats: context.sameAsRecent + 1 } : {}), ...(signals.some((s) => s.id === 'burst') ? { burst: context.recentCount } : {}) },
  };
}

// ---- personal data -------------------------------------------------------------------------------

/** Luhn's checksum over the digits of a card number. */
export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** ISO 13616 check: the rearranged IBAN as a number, mod 97, is 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/\s+/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(s)) return false;
  const rearranged = s.slice(4) + s.slice(0, 4);
  let rest = 0;
  for (const ch of rearranged) {
    const v = /\d/.test(ch) ? ch : String(ch.charCodeAt(0) - 55);
    for (const d of v) rest = (rest * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rest === 1;
}

const PII_PATTERNS: Record<PiiKind, RegExp> = {
  card: /(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g,
  iban: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b/g,
  ssn: /(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])/g,
  email: /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}/gu,
  phone: /(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)|(?<![\w+])\+\d{7,14}(?!\d)/g,
};
const SCORES: Record<PiiKind, number> = { card: 0.97, iban: 0.95, ssn: 0.9, email: 0.95, phone: 0.8 };
/** Checked in this order; a later kind never matches inside an earlier one's span. */
const ORDER: PiiKind[] = ['card', 'iban', 'ssn', 'email', 'phone'];
const SSN_CONTEXT = /\b(?:ssn|social security|social sec|ss#|ss no)\b/i;

/** Phone, email, U.S. SSN, payment cards (Luhn) and IBANs (mod 97), with masks for each. */
export function detectPii(text: string, kinds: readonly PiiKind[]): { flag: Flag | null; spans: Span[] } {
  const spans: (Span & { kind: PiiKind })[] = [];
  const taken = (start: number, end: number) => spans.some((s) => start < s.end && end > s.start);
  for (const kind of ORDER) {
    if (!kinds.includes(kind)) continue;
    for (const m of text.matchAll(PII_PATTERNS[kind])) {
      let value = m[0];
      // A following word in capitals may have been taken into an IBAN: drop groups from the end until it checks.
      while (kind === 'iban' && !ibanValid(value) && / ?[A-Z0-9]{1,4}$/.test(value) && value.replace(/\s/g, '').length > 15) value = value.replace(/ ?[A-Z0-9]{1,4}$/, '');
      const start = m.index;
      const end = start + value.length;
      if (taken(start, end)) continue;
      const digits = value.replace(/\D/g, '');
      if (kind === 'card' && !(digits.length >= 13 && digits.length <= 19 && luhn(digits))) continue;
      if (kind === 'iban' && !ibanValid(value)) continue;
      spans.push({ start, end, replacement: `[redacted ${kind}]`, kind });
    }
    // Nine bare digits are a social security number only when the text says so.
    if (kind === 'ssn' && SSN_CONTEXT.test(text)) {
      for (const m of text.matchAll(/(?<!\d)\d{9}(?!\d)/g)) if (!taken(m.index, m.index + 9)) spans.push({ start: m.index, end: m.index + 9, replacement: '[redacted ssn]', kind: 'ssn' });
    }
  }
  if (!spans.length) return { flag: null, spans: [] };
  const found = [...new Set(spans.map((s) => s.kind))];
  const counts = Object.fromEntries(found.map((k) => [k, spans.filter((s) => s.kind === k).length]));
  return {
    flag: { category: 'pii', detector: 'pii-patterns', score: Math.max(...found.map((k) => SCORES[k])), details: { kinds: found, counts } },
    spans: spans.sort((a, b) => a.start - b.start).map(({ start, end, replacement }) => ({ start, end, replacement })),
  };
}

/** The text with each span replaced (overlapping spans: the first wins). */
export function applySpans(text: string, spans: readonly Span[]): string {
  let out = '';
  let at = 0;
  for (const s of [...spans].sort((a, b) => a.start - b.start)) {
    if (s.start < at) continue;
    out += text.slice(at, s.start) + s.replacement;
    at = s.end;
  }
  return out + text.slice(at);
}

/** Independent signals: 1 - prod(1 - s). */
export function combine(scores: readonly number[]): number {
  return Math.round((1 - scores.reduce((p, s) => p * (1 - s), 1)) * 1000) / 1000;
}

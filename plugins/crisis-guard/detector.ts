/**
 * Finds present danger in one message. Rules (rules.ts) match kinds of danger; the detector then sets
 * aside what is not danger now: a negated match ("I'm not suicidal"), an idiom ("this traffic is killing
 * me", removed before matching), a general question ("what are the warning signs of a stroke?") and a
 * past or resolved event ("had a stroke in 2015", "bleeding already stopped"), unless the message
 * also says it is happening now. Recall comes first: when in doubt, it is a crisis.
 *
 * @example
 * detectCrisis('ya no quiero vivir');          // { crisis: true, categories: ['suicidal_ideation'], language: 'es', ... }
 * detectCrisis('this traffic is killing me');  // { crisis: false, ... }
 */
import { CRISIS_RULES, type CrisisRule } from './rules.js';
import type { CrisisCategory, CrisisLanguage, CrisisVerdict } from './types.js';

/** Lower case, no accents, no apostrophes, one space: the form every rule is written for. */
export function normalise(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[’‘`´']/g, '')
    .replace(/\bno one\b/g, 'noone')
    .replace(/[^\p{L}\p{N}.,!?;:\n%-]+/gu, ' ')
    .replace(/ +/g, ' ')
    .trim();
}

/** Figures of speech that use the words of danger; removed before the rules run. */
const IDIOMS: readonly RegExp[] = [
  /\b(?:is|are|s|was|were|its|it is|been|keeps?) (?:literally |absolutely |slowly )?killing me\b/g,
  /\bkilling it\b/g,
  /\bkiller\b/g,
  /\b(?:id|i would|would|could) kill for\b/g,
  /\b(?:dying|dyin) (?:to|for)\b/g,
  /\b(?:die|died|dying|dead) (?:of|from) (?:laughter|laughing|boredom|embarrassment|cuteness|shame)\b/g,
  /\b(?:died|dying|dead) laughing\b/g,
  /\b(?:laughing|laughed|crying laughing) so hard (?:i|that i) (?:cant|couldnt|almost couldnt) breathe\b/g,
  /\bto die for\b/g,
  /\b(?:the )?death of me\b/g,
  /\b(?:phone|battery|car|laptop|computer|plant|plants|tv|wifi|internet|engine|charger) (?:just |has |is )?(?:died|dead|dying)\b/g,
  /\bdead (?:tired|serious|set|end|line|lines|week)\b/g,
  /\b(?:nearly|almost|practically|about to|literally) (?:had|have|having|gave me|give me|giving me) (?:a )?(?:heart attack|stroke|aneurysm)\b/g,
  /\b(?:gave|give|giving) me a heart attack\b/g,
  /\b(?:overdos(?:e|ed|ing)|od(?:d|ed)?) on (?:coffee|caffeine|espresso|sugar|candy|chocolate|carbs|pizza|cookies|netflix|tv|memes|cake|cheese|tacos|sun|sunshine|cuteness|christmas|cardio)\b/g,
  /\b(?:(?:is|are|s|gonna|going to|will|would) (?:going to |gonna )?kill me) (?:if|when) (?!(?:i|we) (?:leave|tell|call|report|go to the police|talk))/g,
  /\bkill me now\b/g,
  /\bshoot me now\b/g,
  /\b(?:died|dyed) my hair\b/g,
  /\bhair dye\b/g,
  /\bbreathe (?:through|out of) (?:my|his|her|the) nose\b/g,
  /\bsuicide (?:hotline|prevention|awareness|line|number|rates?|statistics|squad)\b/g,
  /\bme muero de (?:risa|hambre|sueno|ganas|calor|frio|aburrimiento)\b/g,
  /\bme (?:esta|estan) matando (?:los|las|el|la) \w+\b/g,
];

/** Words that say the danger is not there: checked in the few words before a match, in its clause. */
const NEGATION = /\b(?:not|no|never|dont|didnt|doesnt|isnt|arent|wasnt|werent|havent|hasnt|without|nor|denies|nunca|sin|tampoco|ni)\b/;
/** A general question about a topic, not about someone's present state. */
const QUESTION_START = /^(?:what|whats|how|why|when|where|which|who|is|are|can|could|should|does|do|any|tell me|explain|que|cual|cuales|como|cuando|por que|es|hay|donde)\b/;
const TOPIC = /\b(?:signs?|symptoms?|warning|causes?|cause|risk|risks|prevent\w*|treat\w*|learn|class|course|training|first aid|difference|mean|means|normal|rehab|recover\w*|someone|somebody|a person|people|anyone|statistics|common|limit|dosage|dose|maximum|max|how much|how many|recogni[sz]e|spot|identify|alguien|una persona|que hacer|que hago si|tell if|know if|what to do|handle|respond|talk to|talk about|ask about|bring up|senales|sintomas|causas|prevenir)\b/;
/** Said about now: a present-danger marker overrides a past marker or a question's framing. */
const NOW = /\b(?:right now|now (?!(?:its|it is|im|i am|hes|shes|he is|she is|they are|were|everything is|all) (?:fine|ok|okay|better|good|normal|back|gone|stable|over|\d))|currently|at the moment|still|again|keeps?|keep|happening|this minute|tonight|just now|ahora|ahorita|ahora mismo|todavia|otra vez)\b/;
/** Said about the past, or about something that is over. */
const PAST = /\b(?:in (?:19|20)\d\d|(?:years?|months?|weeks?|decades?) ago|last (?:year|month|week|summer|winter|spring|fall)|when i was (?:a |younger|little|\d)|used to|back in|history of|(?:already|has|have|finally) (?:stopped|healed|passed|gone)|(?:is|im|hes|shes|was|were|all) (?:fine|okay|ok|better|recovered) now|(?:recovered|recovering) from|survived|hace (?:\d+ |unos |varios )?(?:anos|meses|semanas)|el ano pasado|ya (?:paso|se le paso|esta bien))\b/;
/** Laughter that turns a threat into a figure of speech; never applied to self-directed danger. */
const JOKE = /\b(?:lol|lmao|haha\w*|jk|jaja\w*|rofl)\b/;

const SPANISH = /\b(?:que|de|la|el|los|las|mi|me|se|no|y|es|esta|estoy|por|para|con|una|un|ya|mas|muy|tengo|tiene|hijo|hija|mama|papa|quiero|puedo|puede|porque|pero|como|le|lo)\b/g;
const ENGLISH = /\b(?:the|and|is|i|im|my|me|to|a|of|it|its|in|on|with|for|this|that|he|she|his|her|have|has|was|can|cant|dont|not|what|how|you)\b/g;

export function detectLanguage(normalised: string): CrisisLanguage {
  const es = normalised.match(SPANISH)?.length ?? 0;
  const en = normalised.match(ENGLISH)?.length ?? 0;
  return es > en ? 'es' : 'en';
}

interface Hit {
  rule: CrisisRule;
  clause: string;
  index: number;
}

function hitsIn(clause: string, rules: readonly CrisisRule[]): Hit[] {
  const hits: Hit[] = [];
  for (const rule of rules) {
    const m = rule.pattern.exec(clause);
    if (m) hits.push({ rule, clause, index: m.index });
  }
  return hits;
}

function negated(hit: Hit): boolean {
  // "no point", "no one", "no way out" are despair, not negation.
  const before = hit.clause.slice(0, hit.index).replace(/\bno (?:point|reason|hope|way|more|longer|one)\b/g, '').trim().split(' ').slice(-4).join(' ');
  return NEGATION.test(before);
}

/** Clauses: sentences, and the halves of a "but" (negation does not reach across it). */
function clausesOf(text: string): string[] {
  return text
    .split(/[.!?;\n]+|\bbut\b|\bpero\b/)
    .map((c) => c.replace(/^[\s,:-]+|[\s,:-]+$/g, ''))
    .filter(Boolean);
}

export interface DetectOptions {
  /** Only these categories count (a tenant's `categories`). */
  categories?: readonly CrisisCategory[];
}

export function detectCrisis(text: string, options: DetectOptions = {}): CrisisVerdict {
  const normalisedText = normalise(text);
  const language = detectLanguage(normalisedText);
  let cleaned = normalisedText;
  for (const idiom of IDIOMS) cleaned = cleaned.replace(idiom, ' ');
  const rules = options.categories ? CRISIS_RULES.filter((r) => options.categories!.includes(r.category)) : CRISIS_RULES;

  const now = NOW.test(cleaned);
  const past = PAST.test(cleaned) && !now;
  const joking = JOKE.test(cleaned);
  const suppressed: CrisisVerdict['suppressed'] = [];
  const counted: Hit[] = [];
  for (const clause of clausesOf(cleaned)) {
    const educational = QUESTION_START.test(clause) && TOPIC.test(clause) && !NOW.test(clause) && !/\b(?:im|i am|i feel|i think im|just|my \w+ (?:is|has|cant|wont)|mi \w+ (?:esta|tiene|no))\b/.test(clause);
    for (const hit of hitsIn(clause, rules)) {
      const why = negated(hit) ? 'negated' : educational ? 'educational' : past ? 'past' : joking && hit.rule.category === 'violence_danger' ? 'joke' : null;
      if (why) suppressed.push({ ruleId: hit.rule.id, why });
      else counted.push(hit);
    }
  }

  const strong = counted.filter((h) => h.rule.weight === 'strong');
  const weakIds = new Set(counted.filter((h) => h.rule.weight === 'weak').map((h) => h.rule.id));
  const crisis = strong.length > 0 || weakIds.size >= 2;
  return {
    crisis,
    categories: crisis ? [...new Set((strong.length > 0 ? strong : counted).map((h) => h.rule.category))] : [],
    language,
    ruleIds: [...new Set(counted.map((h) => h.rule.id))],
    suppressed,
  };
}

/** Whether a message is borderline: one weak cue and nothing strong (worth a second opinion). */
export function isBorderline(verdict: CrisisVerdict): boolean {
  return !verdict.crisis && verdict.ruleIds.length > 0;
}

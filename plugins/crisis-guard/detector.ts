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
import { readdirSync, readFileSync } from 'node:fs';
import { editDistance } from 'parley';
import { type CrisisModel, type RuleView, score, shippedModel, stem } from './classifier.js';
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
    .trim()
    .replace(TEXT_SPEAK, (word) => TEXT_SPEAK_WORDS[word] ?? word)
    .replace(/\b(\d+) ?yo\b/g, '$1 year old');
}

/** Texting shorthand the rules would otherwise have to spell twice ("cutting rn", "10 yrs ago"). */
const TEXT_SPEAK_WORDS: Record<string, string> = {
  rn: 'right now',
  rite: 'right',
  yrs: 'years',
  yr: 'year',
  mins: 'minutes',
  min: 'minutes',
  hrs: 'hours',
  hr: 'hour',
  u: 'you',
  ur: 'your',
  tonite: 'tonight',
  '2nite': 'tonight',
  cuz: 'because',
  bc: 'because',
  pls: 'please',
  plz: 'please',
  gf: 'girlfriend',
  bf: 'boyfriend',
  ppl: 'people',
  abt: 'about',
  w: 'with',
  idk: 'i dont know',
  ima: 'im going to',
  imma: 'im going to',
  gonna: 'going to',
  wanna: 'want to',
  tryna: 'trying to',
  gotta: 'have to',
};
const TEXT_SPEAK = new RegExp(`(?<![\\p{L}\\p{N}])(?:${Object.keys(TEXT_SPEAK_WORDS).join('|')})(?![\\p{L}\\p{N}])`, 'gu');

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
  /\b(?:the )?(?:death|end) of me\b/g,
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
  /\b(?:only|just|meant|mainly) for suicid\w*\b/g,
  /\bsounds? like (?:hes |shes |he is |she is |im |i am |a )?(?:choking|gasping|drowning|dying)\b/g,
  /\boverdoses? (?:can|could|may|might|will|wrecks?|damages?|destroys?|causes?|ruins?|harms?|hurts?)\b/g,
  // Words of a song or poem the writer quotes ("whats that song that goes i dont wanna live forever"), to the clause's end.
  /\b(?:song|lyrics?|poem)\b (?:that goes|that says|called|titled|named|with the (?:line|lyrics?)|where (?:she|he|they) (?:says?|sings?))\b[^,.?!;\n]*/g,
  /\bme muero de (?:risa|hambre|sueno|ganas|calor|frio|aburrimiento)\b/g,
  /\bme (?:esta|estan) matando (?:los|las|el|la) \w+\b/g,
];

/** Words that say the danger is not there: checked in the few words before a match, in its clause. */
const NEGATION = /\b(?:not|no|never|dont|didnt|doesnt|isnt|arent|wasnt|werent|havent|hasnt|without|nor|denies|nunca|sin|tampoco|ni)\b/;
/** A general question about a topic, not about someone's present state. */
const QUESTION_START = /(?:^|, )(?:what|whats|how|why|when|where|which|who|is|are|can|could|should|does|do|any|tell me|explain|que|cual|cuales|como|cuando|por que|es|hay|donde)\b/;
/** A question about people in general ("can you overdose on melatonin?", "is it possible to..."). */
const GENERIC_QUESTION = /\b(?:can|could|do|does|will|would|should) (?:you|a person|people|someone|somebody|anyone|one|kids|children|a child|a baby|teens)\b|\bis it (?:possible|normal|common|dangerous|safe|true|bad)\b|\bwhat happens (?:if|when) (?:you|a person|people|someone|somebody|anyone)\b/;
/** Someone in particular, in a present event ("my son drank", "she cant", "i took"): never a general question. */
const PERSONAL = /\b(?:im|i am|i feel|i think im|just (?:took|drank|ate|swallowed|collapsed|fell|started|had|got|now)|my \w+ (?:is|has|cant|wont)|mi \w+ (?:esta|tiene|no))\b|\b(?:i|he|she|they|we|my \w+|his \w+|her \w+) (?:just |accidentally |already )?(?:took|drank|ate|swallowed|got|have|has|cant|wont|feel|feels|keep|keeps|is|am|are|started|bit|fell|hit|think)\b/;
const TOPIC = /\b(?:signs?|symptoms?|warning|causes?|cause|risk|risks|prevent\w*|treat\w*|learn|class|course|training|first aid|difference|mean|means|normal|rehab|recover\w*|someone|somebody|a person|people|anyone|statistics|common|limit|dosage|dose|maximum|max|how much|how many|recogni[sz]e|spot|identify|alguien|una persona|que hacer|que hago si|tell if|know if|what to do|handle|respond|talk to|talk about|ask about|bring up|senales|sintomas|causas|prevenir)\b/;
/** Said to be for school ("its for bio homework"): a question in the message is a question about the topic. */
const SCHOOLWORK = /\b(?:homework|assignment|essay|school project|for (?:a |my )?(?:class|school|bio|biology|chem|chemistry|health class|project|paper|report)|tarea|para la escuela)\b/;
/** Said about now: a present-danger marker in the same clause overrides a past marker or a question's framing. */
const NOW = /\b(?:right now|now (?!(?:its|it is|im|i am|hes|shes|he is|she is|they are|were|everything is|all|doing|feeling|ive been) (?:fine|ok|okay|better|good|great|well|normal|back|gone|stable|over|\d))|currently|at the moment|(?<!\b(?:scars?|marks?|scarring) (?:are |is )?)still|again|keeps?|keep|happening|this minute|tonight|just now|relapsed|relapsing|most nights|every night|every day|these days|lately|all the time|ahora|ahorita|ahora mismo|todavia|otra vez)\b/;
/**
 * A question that ends on "now" asks what to do after the event ("had a heart attack two years ago, what
 * should he eat now", "que dieta le conviene ahora"): that "now" is not the danger's.
 */
const ASKED_NOW = /((?:^|, )(?:what|whats|how|which|where|should|can|could|is|are|do|does|que|cual|cuales|como|donde|debe|puede)\b[^,]*?) (?:now|ahora)$/;
/** Present markers strong enough to count anywhere in the message ("...years ago. i want to do it tonight"). */
const NOW_ANYWHERE = /\b(?:right now|currently|at the moment|this minute|tonight|just now|ahora mismo|ahorita|esta noche)\b/;
/** Said about the past, or about something that is over. */
const PAST = new RegExp(
  [
    String.raw`\bin (?:19|20)\d\d\b`,
    String.raw`\b(?:years?|months?|weeks?|decades?) ago\b`,
    String.raw`\blast (?:year|month|week|summer|winter|spring|fall|autumn|christmas)\b`,
    String.raw`\bwhen (?:i|he|she) was (?:a |younger|little|in |\d)`,
    String.raw`\bas a (?:kid|child|teen|teenager|baby)\b`,
    String.raw`\bin (?:college|high school|middle school|my teens|my twenties|my 20s|my thirties|my 30s)\b`,
    String.raw`\bused to\b`,
    String.raw`\bback in\b`,
    String.raw`\bhistory of\b`,
    String.raw`\b(?:already|has|have|finally) (?:stopped|healed|passed|gone)\b`,
    String.raw`\b(?:is|im|hes|shes|was|were|all|been|doing|feeling|feel) (?:fine|okay|ok|better|recovered|well|good|great) (?:now|since)\b`,
    String.raw`\b(?:recovered|recovering) from\b`,
    String.raw`\bsurvived\b`,
    String.raw`\b(?:it|that|the \w+|they) (?:passed|went away|stopped|resolved|cleared up) (?:after|in|within|on its own|by itself)\b`,
    String.raw`\btoday (?:im|i am|i feel|hes|shes|he is|she is|were|its) (?:ok|okay|fine|better|good|normal)\b`,
    String.raw`\b(?:came to|woke up|came around) (?:right away|quickly|after a (?:few|couple of) (?:seconds|minutes))\b`,
    String.raw`\ball (?:normal|clear|fine|negative|good)\b`,
    String.raw`\b(?:the er|er|doctor|dr|they|hospital|nurse|urgent care|poison control) (?:said|says|told (?:us|me|her|him)) (?:it was|its|it is|she was|he was|shes|hes)\b`,
    String.raw`\b(?:been|was|has been|have been) (?:totally |completely |perfectly |acting )?(?:normal|fine|ok|okay) (?:for|since|all)\b`,
    String.raw`\b(?:\d+|a few|many|several|two|three|four|five|six|ten) (?:years|months|weeks|days) (?:sober|clean)\b`,
    String.raw`\b(?:sober|clean) (?:for|since) \w+`,
    String.raw`\b(?:almost|nearly) killed (?:me|him|her)\b`,
    String.raw`\b(?:every |all the |the )?(?:tests?|ekg|ecg|scans?|bloodwork|results) (?:was |were |came back |came out )?(?:normal|fine|clear|negative)\b`,
    String.raw`\bhace (?:\d+ |un |una |dos |tres |cuatro |cinco |seis |siete |ocho |nueve |diez |unos |unas |varios |varias |muchos |mucho |un par de )?(?:anos?|mes|meses|semanas?|tiempo)\b`,
    String.raw`\bel ano pasado\b`,
    String.raw`\bya (?:paso|se le paso|esta bien)\b`,
  ].join('|'),
);
/**
 * A scene of a film, show, book or game the writer asks about ("watching greys anatomy and someone got
 * stabbed in the heart and lived. is that even possible"): with a question whether it could happen, a
 * match in a clause that names no one of the writer's is fiction, not danger.
 */
const FICTION = /\b(?:watching|watched|in (?:a|the|this|that) (?:movie|film|show|episode|book|novel|game|series|scene)|on (?:tv|netflix|the show)|(?:a|the|this|that) (?:tv )?(?:show|movie|film|episode|book|novel|video game|scene) (?:where|when))\b/;
const REALISM = /\b(?:is (?:that|it|this) (?:even |actually |really )?(?:possible|realistic|real|accurate|true)|(?:can|could|would|does) (?:that|this|someone|somebody|a person|people|anyone|you) (?:really |actually |even )?(?:happen|survive|live|do that)|how (?:realistic|accurate))\b/;
const WRITERS_OWN = /\b(?:i|im|me|my|mine|we|us|our|mi|yo)\b/;
/**
 * Self-directed rules that people also use as hyperbole; with laughter and a condition ("ill die if i
 * have to eat one more salad haha") or a cause ("mondays make me want to die lol") they are a joke.
 */
const HYPERBOLE_PRONE = new Set(['suicide.want-die', 'suicide.method']);
/** Laughter: turns a threat to others into a figure of speech, and a conditional hyperbole-prone one to oneself. */
const JOKE = /\b(?:lol|lmao|haha\w*|jk|jaja\w*|rofl)\b/;
/** Said and taken back ("...lol jk"): with a condition, even a threat to kill oneself reads as a figure of speech. */
const RETRACTED = /\b(?:jk|(?:just|only|im|i am|i was) (?:kidding|joking)|es broma|(?:solo )?bromeando)\b/;
const RETRACTABLE = new Set(['suicide.kill-self', ...HYPERBOLE_PRONE]);
/**
 * The writer fainted or passed out and asks about it ("i fainted at the blood drive, is that normal",
 * "passed out at the gym yesterday, how much water should i drink"): they are awake to write it, so
 * that alone is not someone unresponsive now. Not "almost fainted", "keeps fainting" or "just passed
 * out"; a message that asks nothing, or a present marker, still counts.
 */
const SELF_FAINTED = /^(?:fainted|passed out|blacked out|collapsed)\b/;
const WRITER = /(?:^|\b(?:i|and i|then i|so i|i think i|i kinda|i sort of|i literally))$/;

const SPANISH = /\b(?:que|de|la|el|los|las|mi|me|se|no|y|es|esta|estoy|por|para|con|una|un|ya|mas|muy|tengo|tiene|hijo|hija|mama|papa|quiero|puedo|puede|porque|pero|como|le|lo)\b/g;
const ENGLISH = /\b(?:the|and|is|i|im|my|me|to|a|of|it|its|in|on|with|for|this|that|he|she|his|her|have|has|was|can|cant|dont|not|what|how|you)\b/g;

export function detectLanguage(normalised: string): CrisisLanguage {
  const es = normalised.match(SPANISH)?.length ?? 0;
  const en = normalised.match(ENGLISH)?.length ?? 0;
  return es > en ? 'es' : 'en';
}

/**
 * A clause that asks about a topic or about people in general, and says nothing about someone in
 * particular now. Only the question itself is read for a person ("for health class we have to make a
 * poster, what are the warning signs that a friend might be suicidal" is a general question).
 */
function isGeneralQuestion(clause: string, nowInClause: boolean, schoolwork: boolean): boolean {
  if (nowInClause) return false;
  const start = QUESTION_START.exec(clause);
  const question = start ? clause.slice(start.index) : clause;
  if ((start && (schoolwork || TOPIC.test(question))) || GENERIC_QUESTION.test(question)) return !PERSONAL.test(question);
  return false;
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
  /** The model that reads what the rules miss (default: the shipped one; `null`: rules alone). */
  model?: CrisisModel | null;
}

interface RuleReading {
  language: CrisisLanguage;
  /** What the model reads, the set-aside rules among it. */
  view: RuleView & { suppressed: CrisisVerdict['suppressed'] };
  counted: Hit[];
}

/** Runs the rules over one message: what counted, what was set aside and why, and the message's markers. */
function readRules(text: string, rules: readonly CrisisRule[]): RuleReading {
  const normalisedText = normalise(text);
  const language = detectLanguage(normalisedText);
  let cleaned = normalisedText;
  for (const idiom of IDIOMS) cleaned = cleaned.replace(idiom, ' ');

  const nowAnywhere = NOW_ANYWHERE.test(cleaned);
  const pastAnywhere = PAST.test(cleaned);
  const joking = JOKE.test(cleaned);
  const retracting = RETRACTED.test(cleaned);
  const clauses = clausesOf(cleaned);
  const fiction = FICTION.test(cleaned) && REALISM.test(cleaned) && !nowAnywhere;
  const schoolwork = SCHOOLWORK.test(cleaned) && !nowAnywhere;
  const asks = cleaned.includes('?') || clauses.some((c) => QUESTION_START.test(c));
  const suppressed: CrisisVerdict['suppressed'] = [];
  const counted: Hit[] = [];
  const flags = new Set<string>();
  if (nowAnywhere) flags.add('now-anywhere');
  if (pastAnywhere) flags.add('past');
  if (joking) flags.add('joke');
  if (cleaned !== normalisedText) flags.add('idiom');
  for (const clause of clauses) {
    const nowInClause = NOW.test(clause.replace(ASKED_NOW, '$1'));
    const educational = isGeneralQuestion(clause, nowInClause, schoolwork);
    const past = pastAnywhere && !nowInClause && !nowAnywhere;
    if (nowInClause) flags.add('now');
    if (educational) flags.add('general-question');
    if (QUESTION_START.test(clause)) flags.add('question');
    if (NEGATION.test(clause)) flags.add('negation');
    for (const hit of hitsIn(clause, rules)) {
      const joke = joking && (hit.rule.category === 'violence_danger' || (HYPERBOLE_PRONE.has(hit.rule.id) && (/\bif\b/.test(clause.slice(hit.index)) || /\bmakes? me$/.test(clause.slice(0, hit.index).trim()))));
      const retracted = retracting && RETRACTABLE.has(hit.rule.id) && /\bif\b/.test(clause);
      const selfReport = asks && hit.rule.id === 'unresponsive.collapsed' && !nowInClause && !nowAnywhere && SELF_FAINTED.test(clause.slice(hit.index)) && WRITER.test(clause.slice(0, hit.index).trim());
      const fictional = fiction && !WRITERS_OWN.test(clause);
      const why = negated(hit) ? 'negated' : educational || fictional ? 'educational' : past || selfReport ? 'past' : joke || retracted ? 'joke' : null;
      if (why) suppressed.push({ ruleId: hit.rule.id, why });
      else counted.push(hit);
    }
  }
  return { language, view: { cleaned, counted: counted.map((h) => h.rule.id), suppressed, flags: [...flags] }, counted };
}

/** What the rules see in a message, as the model reads it (for training). */
export function ruleView(text: string): RuleView {
  return readRules(text, CRISIS_RULES).view;
}

export function detectCrisis(text: string, options: DetectOptions = {}): CrisisVerdict {
  const verdict = detectAsWritten(text, options);
  if (verdict.crisis) return verdict;
  // A person in danger types fast: read once more with each word the detector does not know that is
  // one edit from a word it does ("toinght", "tylenl", "goobdye") as that word.
  const respelt = respell(normalise(text), options.model === undefined ? shippedModel() : options.model);
  if (respelt === null) return verdict;
  const again = detectAsWritten(respelt, options);
  return again.crisis ? { ...again, ruleIds: [...again.ruleIds, 'respelled'] } : verdict;
}

function detectAsWritten(text: string, options: DetectOptions): CrisisVerdict {
  const rules = options.categories ? CRISIS_RULES.filter((r) => options.categories!.includes(r.category)) : CRISIS_RULES;
  const { language, view, counted } = readRules(text, rules);
  const { suppressed } = view;

  const strong = counted.filter((h) => h.rule.weight === 'strong');
  const weakIds = new Set(counted.filter((h) => h.rule.weight === 'weak').map((h) => h.rule.cue ?? h.rule.id));
  const ruleIds = [...new Set(counted.map((h) => h.rule.id))];
  if (strong.length > 0 || weakIds.size >= 2) {
    return { crisis: true, categories: [...new Set((strong.length > 0 ? strong : counted).map((h) => h.rule.category))], language, ruleIds, suppressed };
  }
  const model = options.model === undefined ? shippedModel() : options.model;
  if (model) {
    const read = score(model, view);
    if (read.crisis >= model.threshold && (!options.categories || options.categories.includes(read.category))) {
      return { crisis: true, categories: [read.category], language, ruleIds: [...ruleIds, 'classifier'], suppressed, modelScore: round3(read.crisis) };
    }
    return { crisis: false, categories: [], language, ruleIds, suppressed, modelScore: round3(read.crisis) };
  }
  return { crisis: false, categories: [], language, ruleIds, suppressed };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * What `respell` reads: its targets (5 letters or more, by first letter), the words the rules are
 * written with and the words the model counts for some kind of crisis more than against; and every
 * word the detector knows (the rules', the texting shorthand's, the words of the model's features and
 * of the training messages), which are never respelled.
 */
interface Vocabulary {
  targets: Map<string, string[]>;
  known: Set<string>;
}
const VOCABULARY = new WeakMap<object, Vocabulary>();
const NO_MODEL = {};
const TRAINING_SETS = new URL('./train/sets/', import.meta.url);

function vocabulary(model: CrisisModel | null): Vocabulary {
  let v = VOCABULARY.get(model ?? NO_MODEL);
  if (v) return v;
  const targets = new Map<string, string[]>();
  const known = new Set<string>();
  const target = (w: string) => {
    if (w.length < 5 || targets.get(w[0]!)?.includes(w)) return;
    const list = targets.get(w[0]!);
    if (list) list.push(w);
    else targets.set(w[0]!, [w]);
  };
  for (const rule of CRISIS_RULES) {
    for (const w of rule.pattern.source.match(/[a-z]{4,}/g) ?? []) {
      known.add(w);
      target(w);
    }
  }
  for (const [short, long] of Object.entries(TEXT_SPEAK_WORDS)) for (const w of [short, ...long.split(' ')]) known.add(w);
  for (const [feature, weights] of Object.entries(model?.weights ?? {})) {
    if (!feature.startsWith('w:')) continue;
    const w = feature.slice(2);
    known.add(w);
    // A word the model counts for some kind of crisis more than against ("roommate", "garage").
    if (/^[a-z]+$/.test(w) && Math.max(...weights.slice(1)) > weights[0]!) target(w);
  }
  try {
    for (const file of readdirSync(TRAINING_SETS).filter((f) => f.endsWith('.jsonl'))) {
      for (const line of readFileSync(new URL(file, TRAINING_SETS), 'utf8').split('\n').filter(Boolean)) {
        for (const w of normalise((JSON.parse(line) as { text?: string }).text ?? '').match(/\p{L}+/gu) ?? []) known.add(w);
      }
    }
  } catch {
    // The build copies the training sets beside the compiled module; without them, the rules' and the model's words.
  }
  v = { targets, known };
  VOCABULARY.set(model ?? NO_MODEL, v);
  return v;
}

/** Whether a word is one the detector knows, or an ending on one ("takes", "kills", "cooked"). */
function isKnown(w: string, known: ReadonlySet<string>): boolean {
  if (known.has(w) || known.has(stem(w))) return true;
  const base = w.replace(/(?:ing|ed|es|s|ly)$/, '');
  return base !== w && (known.has(base) || known.has(`${base}e`) || known.has(base.replace(/(.)\1$/, '$1')));
}

/**
 * The normalised message with each word of 5 letters or more that the detector does not know, and
 * that is one edit from a target (a swap of two letters is one; the same first letter), replaced by
 * that word; null when no word changes.
 */
export function respell(normalised: string, model: CrisisModel | null): string | null {
  const { targets, known } = vocabulary(model);
  let changed = false;
  const out = normalised.replace(/\p{L}{5,}/gu, (w) => {
    if (isKnown(w, known)) return w;
    for (const k of targets.get(w[0]!) ?? []) {
      if (Math.abs(k.length - w.length) > 1 || editDistance(w, k, 1) > 1) continue;
      changed = true;
      return k;
    }
    return w;
  });
  return changed ? out : null;
}

/** Whether a message is borderline: one weak cue and nothing strong (worth a second opinion). */
export function isBorderline(verdict: CrisisVerdict): boolean {
  return !verdict.crisis && verdict.ruleIds.length > 0;
}

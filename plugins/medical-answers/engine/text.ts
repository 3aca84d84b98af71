/**
 * Text handling shared by ingest, retrieval and answers: normalisation, a Porter stemmer (the classic
 * 1980 algorithm, written here rather than adding a dependency for ~100 lines), stop words and
 * SMS-speak, a small lay→medical vocabulary, section parsing and question-type detection.
 */

export function normalise(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[\u2018\u2019`]/g, "'");
}

// ---- Porter stemmer -----------------------------------------------------------------------------

const isCons = (w: string, i: number): boolean => {
  const c = w[i];
  if (c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u') return false;
  if (c === 'y') return i === 0 ? true : !isCons(w, i - 1);
  return true;
};
/** m(): the number of vowel-consonant sequences in w[0..end). */
function measure(w: string, end: number): number {
  let n = 0;
  let i = 0;
  while (i < end && isCons(w, i)) i++;
  while (i < end) {
    while (i < end && !isCons(w, i)) i++;
    if (i >= end) break;
    n++;
    while (i < end && isCons(w, i)) i++;
  }
  return n;
}
const hasVowel = (w: string, end: number): boolean => {
  for (let i = 0; i < end; i++) if (!isCons(w, i)) return true;
  return false;
};
const doubleCons = (w: string): boolean => w.length >= 2 && w[w.length - 1] === w[w.length - 2] && isCons(w, w.length - 1);
const cvc = (w: string, end: number): boolean => {
  if (end < 3) return false;
  if (!isCons(w, end - 1) || isCons(w, end - 2) || !isCons(w, end - 3)) return false;
  const c = w[end - 1];
  return c !== 'w' && c !== 'x' && c !== 'y';
};

const STEP2: [string, string][] = [
  ['ational', 'ate'], ['tional', 'tion'], ['enci', 'ence'], ['anci', 'ance'], ['izer', 'ize'], ['bli', 'ble'],
  ['alli', 'al'], ['entli', 'ent'], ['eli', 'e'], ['ousli', 'ous'], ['ization', 'ize'], ['ation', 'ate'],
  ['ator', 'ate'], ['alism', 'al'], ['iveness', 'ive'], ['fulness', 'ful'], ['ousness', 'ous'], ['aliti', 'al'],
  ['iviti', 'ive'], ['biliti', 'ble'], ['logi', 'log'],
];
const STEP3: [string, string][] = [['icate', 'ic'], ['ative', ''], ['alize', 'al'], ['iciti', 'ic'], ['ical', 'ic'], ['ful', ''], ['ness', '']];
const STEP4 = ['al', 'ance', 'ence', 'er', 'ic', 'able', 'ible', 'ant', 'ement', 'ment', 'ent', 'ion', 'ou', 'ism', 'ate', 'iti', 'ous', 'ive', 'ize'];

const stemCache = new Map<string, string>();

export function stem(word: string): string {
  if (word.length <= 2) return word;
  const cached = stemCache.get(word);
  if (cached !== undefined) return cached;
  let w = word;
  // 1a
  if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('ies')) w = w.slice(0, -2);
  else if (w.endsWith('ss')) {
    /* keep */
  } else if (w.endsWith('s')) w = w.slice(0, -1);
  // 1b
  let step1bExtra = false;
  if (w.endsWith('eed')) {
    if (measure(w, w.length - 3) > 0) w = w.slice(0, -1);
  } else if (w.endsWith('ed') && hasVowel(w, w.length - 2)) {
    w = w.slice(0, -2);
    step1bExtra = true;
  } else if (w.endsWith('ing') && hasVowel(w, w.length - 3)) {
    w = w.slice(0, -3);
    step1bExtra = true;
  }
  if (step1bExtra) {
    if (w.endsWith('at') || w.endsWith('bl') || w.endsWith('iz')) w += 'e';
    else if (doubleCons(w) && !/[lsz]$/.test(w)) w = w.slice(0, -1);
    else if (measure(w, w.length) === 1 && cvc(w, w.length)) w += 'e';
  }
  // 1c
  if (w.endsWith('y') && hasVowel(w, w.length - 1)) w = w.slice(0, -1) + 'i';
  // 2
  for (const [suf, rep] of STEP2) {
    if (w.endsWith(suf)) {
      if (measure(w, w.length - suf.length) > 0) w = w.slice(0, -suf.length) + rep;
      break;
    }
  }
  // 3
  for (const [suf, rep] of STEP3) {
    if (w.endsWith(suf)) {
      if (measure(w, w.length - suf.length) > 0) w = w.slice(0, -suf.length) + rep;
      break;
    }
  }
  // 4
  for (const suf of STEP4) {
    if (w.endsWith(suf)) {
      const base = w.length - suf.length;
      if (measure(w, base) > 1 && (suf !== 'ion' || /[st]$/.test(w.slice(0, base)))) w = w.slice(0, base);
      break;
    }
  }
  // 5
  if (w.endsWith('e')) {
    const m = measure(w, w.length - 1);
    if (m > 1 || (m === 1 && !cvc(w, w.length - 1))) w = w.slice(0, -1);
  }
  if (measure(w, w.length) > 1 && doubleCons(w) && w.endsWith('l')) w = w.slice(0, -1);
  if (stemCache.size < 200_000) stemCache.set(word, w);
  return w;
}

// ---- stop words, SMS-speak, lay vocabulary -------------------------------------------------------

export const STOP_WORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both but by can could ' +
    'did do does doing down during each few for from further had has have having he her here hers herself him himself his how i if in into ' +
    'is it its itself just me more most my myself no nor not of off on once only or other our ours ourselves out over own same she should so ' +
    'some such than that the their theirs them themselves then there these they this those through to too under until up very was we were ' +
    'what when where which while who whom why will with would you your yours yourself yourselves ' +
    // question scaffolding and chat words
    'also get got go going know want tell thing things really like just still ever even much many lot lots kind sort maybe please pls plz ' +
    'thanks thx ok okay hi hello hey yes yeah dont doesnt didnt cant wont isnt arent im ive id youre hes shes thats whats hows whos ' +
    'wheres theres u ur r ya yall tho bc cuz cos coz w wat wut y da dat dis n kinda gonna wanna gotta someone somebody anyone anybody ' +
    'something anything one people person normal usually always often sometimes need needs may might must shall would could does mean ' +
    'means say said'
  ).split(/\s+/).filter(Boolean),
);

/**
 * General lay→medical vocabulary: what people text versus what health pages say. Each entry adds terms
 * to the query (it never removes the person's own words). Kept to general medical language.
 */
export const LAY_TERMS: [RegExp, string, 'abbr'?][] = [
  [/\bsugar\b/, 'glucose'],
  [/\bblood sugar\b/, 'glucose diabetes'],
  [/\blow (blood )?sugar\b/, 'hypoglycemia'],
  [/\bhigh (blood )?sugar\b/, 'hyperglycemia'],
  [/\bpee(ing|s)?\b|\bpiss\w*/, 'urine urinary urination'],
  [/\bpoop\w*|\bpoo\b|\bcrap\b/, 'stool bowel'],
  [/\bpuk\w*|\bthrow(ing)? up\b|\bthrew up\b|\bbarf\w*/, 'vomiting nausea'],
  [/\btumm(y|ies)\b|\bbelly\b/, 'abdominal stomach'],
  [/\bbp\b/, 'blood pressure', 'abbr'],
  [/\bhigh blood pressure\b/, 'hypertension'],
  [/\blow blood pressure\b/, 'hypotension'],
  [/\bheart attack\b/, 'myocardial infarction'],
  [/\bpimples?\b|\bzits?\b|\bbreak(ing)? out\b|\bbreakouts?\b/, 'acne'],
  [/\bbad breath\b/, 'halitosis'],
  [/\bshots?\b|\bjabs?\b/, 'vaccine vaccines immunization'],
  [/\bpreg(o|go|gers|nant)\b|\bexpecting\b/, 'pregnancy'],
  [/\bperiods?\b/, 'menstruation menstrual'],
  [/\bpink ?eye\b/, 'conjunctivitis'],
  [/\bcold sores?\b/, 'herpes'],
  [/\bflu\b/, 'influenza', 'abbr'],
  [/\bstds?\b|\bstis?\b/, 'sexually transmitted', 'abbr'],
  [/\btb\b/, 'tuberculosis', 'abbr'],
  [/\bhep\b/, 'hepatitis', 'abbr'],
  [/\butis?\b/, 'urinary tract infection', 'abbr'],
  [/\bweed\b|\bpot\b/, 'marijuana'],
  [/\bbooze\b|\bdrinking\b|\bhangover\b/, 'alcohol'],
  [/\bcigs?\b|\bcigarettes?\b|\bvap(e|es|ing)\b/, 'smoking tobacco'],
  [/\bfart\w*|\bgassy\b/, 'gas'],
  [/\bheartburn\b|\bacid reflux\b/, 'gerd reflux'],
  [/\bbug bites?\b/, 'insect bites'],
  [/\bhurts?\b|\bhurting\b|\baches?\b|\baching\b|\bsore\b/, 'pain'],
  [/\bitch(y|es|ing)?\b/, 'itching'],
  [/\bbab(y|ies)\b|\bnewborns?\b/, 'infant'],
  [/\bkids?\b|\btoddlers?\b/, 'child children'],
  [/\belderly\b|\bseniors?\b|\bold (people|folks)\b/, 'older adults'],
  [/\bcan'?t sleep\b|\bsleepless\b/, 'insomnia sleep'],
  [/\bdepressed\b|\bsad all the time\b/, 'depression'],
  [/\banxious\b|\bworr(y|ied|ying)\b|\bnervous\b/, 'anxiety'],
  [/\bmemory loss\b|\bforgetful\b/, 'memory dementia'],
  [/\bpass(ed)? out\b|\bfaint(ed|s)?\b/, 'fainting'],
  [/\bcontagious\b|\bcatch(ing)?\b|\bspread(s|ing)?\b/, 'spread transmitted infection'],
  [/\bteeth\b|\btooth\b/, 'dental teeth'],
  [/\bcavit(y|ies)\b/, 'tooth decay'],
  [/\bdizz(y|iness)\b/, 'dizziness vertigo'],
  [/\bshort of breath\b|\bcan'?t breathe\b|\bout of breath\b/, 'breathing shortness breath'],
  [/\bfat\b|\boverweight\b/, 'obesity weight'],
  [/\bpills?\b|\bmeds\b/, 'medicines'],
  [/\bboobs?\b/, 'breast'],
  [/\bpoison(ed)?\b/, 'poisoning'],
  [/\bsunburn\w*/, 'sun skin'],
  [/\brunny nose\b|\bstuffy nose\b|\bsniffles\b/, 'nasal cold'],
  [/\bstomach (bug|flu)\b/, 'gastroenteritis'],
  [/\bmono\b/, 'mononucleosis', 'abbr'],
  [/\bstrep\b/, 'streptococcal', 'abbr'],
  [/\bchemo\b/, 'chemotherapy', 'abbr'],
  [/\bc-? ?section\b/, 'cesarean', 'abbr'],
  [/\bibs\b/, 'irritable bowel syndrome', 'abbr'],
  [/\ba-?fib\b/, 'atrial fibrillation', 'abbr'],
  [/\bbladder infection\b/, 'urinary tract infection'],
  [/\byeast infection\b/, 'candidiasis'],
  [/\bjock itch\b|\bathlete'?s foot\b|\bringworm\b/, 'tinea fungal'],
  [/\bswollen glands?\b/, 'lymph nodes'],
  [/\bcharley horse\b|\bcramps?\b/, 'muscle cramps'],
  [/\bpins and needles\b|\btingl\w*/, 'numbness tingling'],
  [/\bthe runs\b|\bloose stools?\b/, 'diarrhea'],
  [/\bhot flash\w*/, 'menopause'],
  [/\bmorning sickness\b/, 'pregnancy nausea'],
  [/\bbaby blues\b/, 'postpartum depression'],
  [/\bbald\w*|\bhair falling out\b/, 'hair loss'],
  [/\bbroken bones?\b|\bbroke my\b/, 'fractures'],
  [/\bsprain\w*|\btwisted (my )?ankle\b/, 'sprains strains'],
  [/\bbed ?wetting\b|\bwets the bed\b/, 'bedwetting enuresis'],
  [/\bnose ?bleeds?\b/, 'nosebleeds'],
  // Lay names of conditions and signs (consumer-health vocabulary).
  [/\bsalt(y)?\b/, 'sodium'],
  [/\bunderactive thyroid\b|\bslow thyroid\b|\blow thyroid\b/, 'hypothyroidism'],
  [/\boveractive thyroid\b|\bhigh thyroid\b/, 'hyperthyroidism'],
  [/\b(ringing|buzzing) (in )?(my |the |his |her )?ears?\b|\bears? (are |keep |have been )?(ringing|buzzing)\b/, 'tinnitus'],
  [/\b(heart )?(flutter\w*|skip(s|ped|ping)? (a )?beats?|pounding heart|racing heart|heart (is )?racing)\b/, 'palpitations arrhythmia'],
  [/\bfevers?\b|\bfeverish\b/, 'febrile fever'],
  [/\byellow (skin|eyes)\b|\b(skin|eyes) (look |looks |are |is )?(kinda |kind of |a bit )?yellow\b|\byellowish\b/, 'jaundice'],
  [/\b(blood|red|pink\w*) (in (my |his |her |the )?)?(pee|urine)\b|\b(pee|urine) (is |was |looks )?(pink\w*|red|bloody)\b/, 'hematuria blood urine'],
  [/\b(blood|red) (in (my |his |her |the )?)?(poop|stool)\b|\bbloody (poop|stool)\b/, 'rectal bleeding blood stool'],
  [/\bcan'?t poop\b|\bbacked up\b|\bhard (poop|stools?)\b/, 'constipation'],
  [/\bthe change\b|\bhot flash\w*|\bnight sweats\b/, 'menopause'],
  [/\btired all the time\b|\balways (tired|exhausted)\b|\bno energy\b|\bexhausted\b|\bworn out\b/, 'fatigue'],
  [/\bswollen (feet|ankles|legs)\b|\b(feet|ankles|legs) (are )?swollen\b|\bwater retention\b/, 'edema swelling'],
  [/\bwater pills?\b/, 'diuretics'],
  [/\bblood thinners?\b/, 'anticoagulants'],
  [/\bsugar (drink )?test\b|\bglucose drink\b/, 'glucose tolerance test'],
  [/\btrigs\b/, 'triglycerides', 'abbr'],
  [/\bchol\b/, 'cholesterol', 'abbr'],
  [/\bhives\b|\bwelts\b/, 'hives urticaria'],
  [/\bgoop\w*|\bcrust(y|ed) (eye|eyes|shut)\b|\beye (is )?(red and )?(goopy|crusty|gunky)\b/, 'conjunctivitis pinkeye'],
  [/\bchicken ?pox\b/, 'chickenpox varicella'],
  [/\bshingles (shot|vaccine)\b/, 'shingles vaccine zoster'],
  [/\bbed ?bugs?\b/, 'bedbugs'],
  [/\bhead lice\b|\bnits\b/, 'lice'],
  [/\bpink ?eye\b/, 'pinkeye conjunctivitis'],
  [/\bheart ?burn\b/, 'heartburn'],
  [/\bnose ?bleed\w*/, 'nosebleeds'],
  [/\bwisdom teeth\b/, 'wisdom tooth'],
  [/\bbeer belly\b|\bbelly fat\b/, 'obesity weight'],
  [/\bthrew my back out\b|\bback (is )?(out|killing me)\b/, 'back pain'],
  [/\bstiff (neck|joints?|knees?)\b|\bjoints? (hurt|ache|aching)\b|\bachy joints\b/, 'arthritis joint pain'],
  [/\bshort(ness)? of breath\b|\bwinded\b|\bcan'?t catch (my|his|her) breath\b/, 'shortness breath'],
  [/\bpassing a (kidney )?stone\b/, 'kidney stones'],
  [/\bbrain freeze\b|\bmigraines?\b|\bsplitting headache\b/, 'headache migraine'],
  [/\bsinus\w*/, 'sinusitis sinus'],
  [/\bear ?aches?\b|\bear infections?\b/, 'ear infections'],
  [/\bsore throat\b|\bthroat (hurts|is sore)\b/, 'sore throat pharyngitis'],
  [/\bmoles?\b/, 'moles skin'],
  [/\bwarts?\b/, 'warts'],
  [/\bcold hands\b|\bcold feet\b|\balways cold\b|\balways freezing\b/, 'cold intolerance circulation'],
  [/\bmemory (problems?|issues?)\b|\bforget(ting|s)? things\b/, 'memory dementia alzheimer'],
  [/\bhard of hearing\b|\bcan'?t hear\b/, 'hearing loss'],
  [/\bblurr(y|ed) vision\b|\bcan'?t see well\b/, 'vision eye'],
  [/\bthrowing up blood\b|\bvomiting blood\b/, 'gastrointestinal bleeding'],
  [/\bpot ?belly\b|\bbloat\w*/, 'bloating gas'],
  [/\bsleepwalk\w*/, 'sleepwalking'],
  [/\bsnor(e|es|ing)\b/, 'snoring sleep apnea'],
  [/\bpeeing a lot\b|\bpee a lot\b|\bgo(ing)? to the bathroom a lot\b|\bfrequent urination\b/, 'frequent urination'],
  [/\bleaking (pee|urine)\b|\bpee (my|his|her)self\b|\bwet (my|his|her)self\b/, 'urinary incontinence'],
  [/\bimpotence\b|\bcan'?t get it up\b|\b\bed\b/, 'erectile dysfunction'],
  [/\bbirth control\b|\bthe pill\b/, 'birth control contraception'],
  [/\bmorning after pill\b/, 'emergency contraception'],
  [/\bpot\b|\bedibles?\b/, 'marijuana'],
  [/\bfoot fungus\b|\btoenail fungus\b/, 'fungal nail infections tinea'],
  [/\bcold ?sores?\b|\bfever blisters?\b/, 'cold sores herpes'],
  [/\bcanker sores?\b|\bmouth sores?\b/, 'mouth sores'],
  [/\bgum (disease|bleeding)\b|\bgums bleed\w*|\bbleeding gums\b/, 'gum disease periodontal'],
  // More lay names of conditions (general consumer-health vocabulary, 2026-12-02, third session).
  [/\bmini[ -]?strokes?\b|\bwarning strokes?\b/, 'transient ischemic attack'],
  [/\blittle (people|person)\b|\bdwarfs?\b/, 'dwarfism'],
  [/\bbrittle bones?\b|\bthin(ning)? bones?\b|\bbone loss\b/, 'osteoporosis'],
  [/\brehab\b/, 'rehabilitation', 'abbr'],
  [/\bhardening of the arteries\b|\bclogged arteries\b/, 'atherosclerosis'],
  [/\bwater on the brain\b/, 'hydrocephalus'],
  [/\blazy eye\b/, 'amblyopia'],
  [/\block ?jaw\b/, 'tetanus'],
  [/\bpertussis\b/, 'whooping cough'],
  [/\bgerman measles\b/, 'rubella'],
  [/\b(curved|crooked|curvy) (spine|back)\b|\bspine (is )?curv\w*/, 'scoliosis'],
  [/\bpiles\b/, 'hemorrhoids'],
  [/\b(spider|bulging|twisted) veins\b/, 'varicose veins'],
  [/\bgall ?bladder attack\b/, 'gallstones'],
  [/\bstop(s|ped)? breathing (in|during|while) (my |his |her )?sleep\w*/, 'sleep apnea'],
  [/\bkissing disease\b/, 'mononucleosis'],
  [/\bslipped dis[ck]s?\b|\bbulging dis[ck]s?\b/, 'herniated disk'],
  [/\bblood clots? in (my |his |her |the )?(leg|legs|calf|thigh)\b/, 'deep vein thrombosis'],
  [/\benlarged prostate\b|\bbph\b/, 'prostate'],
  [/\bbed ?sores?\b/, 'pressure sores'],
  [/\b(near|far)[ -]?sighted\w*/, 'refractive errors'],
  [/\b(the )?shakes\b|\bshaky hands\b|\bhands? (shake|shaking|tremble)\b/, 'tremor'],
  [/\bfits\b|\bconvulsions?\b/, 'seizures'],
  [/\bcan'?t (digest|drink) (milk|dairy)\b|\bdairy (makes|gives)\b/, 'lactose intolerance'],
  [/\b(sugar|type (1|2|one|two)) diabetes\b/, 'diabetes'],
  [/\btrouble (in the bedroom|getting hard|keeping it up)\b|\bcan'?t (keep|get) it up\b/, 'erectile dysfunction'],
  [/\bhiccough\w*/, 'hiccups'],
  [/\bheat ?stroke\b|\bheat exhaustion\b/, 'heat illness'],
  // Adjectives whose stem differs from the condition's (the Porter stem of "allergic" is not that of "allergy").
  [/\ballergic\b/, 'allergy', 'abbr'],
  [/\basthmatic\b/, 'asthma', 'abbr'],
  [/\banemic\b/, 'anemia', 'abbr'],
  [/\barthritic\b/, 'arthritis', 'abbr'],
  [/\bepileptic\b/, 'epilepsy', 'abbr'],
  [/\bobese\b/, 'obesity', 'abbr'],
  [/\bautistic\b/, 'autism', 'abbr'],
  [/\bpsychotic\b/, 'psychosis', 'abbr'],
  [/\bcancerous\b/, 'cancer', 'abbr'],
  [/\bdiabetic\b/, 'diabetes', 'abbr'],
];

const SMS_EXPAND: [RegExp, string][] = [
  [/\bw\//g, 'with '],
  [/\bb4\b/g, 'before'],
  [/\b2day\b/g, 'today'],
  [/\bbc\b/g, 'because'],
  [/&/g, ' and '],
];

export interface QueryTerm {
  term: string;
  /** 1 for the person's own words, lower for words added by the lay vocabulary or question cues. */
  weight: number;
}

/**
 * How many letters a stem may add to another of its word family: the Porter stemmer keeps "safe" /
 * "safety" ("safe" / "safeti"), "asthma" / "asthmatic" and "teens" / "teenagers" ("teen" / "teenag") apart.
 */
export const FAMILY_LETTERS = 3;

/** Whether two stems are one word family: one starts with the other, at most `FAMILY_LETTERS` longer, four letters shared. */
export function sameFamily(a: string, b: string): boolean {
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  return short.length >= 4 && long.length - short.length <= FAMILY_LETTERS && long.startsWith(short);
}

/** Words of a text, lower-case, digits kept (a1c, 6.1 becomes 6 1 → dropped later). */
export function words(text: string): string[] {
  return normalise(text).replace(/'s\b/g, '').replace(/'/g, '').split(/[^a-z0-9]+/).filter(Boolean);
}

/** Stemmed content terms of a document text (no lay expansion). */
export function docTerms(text: string): string[] {
  const out: string[] = [];
  for (const w of words(text)) {
    if (STOP_WORDS.has(w)) continue;
    if (/^\d+$/.test(w)) continue;
    out.push(stem(w));
  }
  return out;
}

// ---- question types and sections ---------------------------------------------------------------

export type QuestionType =
  | 'information' | 'symptoms' | 'causes' | 'treatment' | 'exams' | 'prevention' | 'susceptibility'
  | 'outlook' | 'research' | 'stages' | 'complications' | 'frequency' | 'considerations' | 'support';

/** Cue patterns, most specific first. The cue words themselves count less as topic words. */
const TYPE_CUES: [QuestionType, RegExp][] = [
  ['research', /\b(research|clinical trials?|studies|being done)\b/],
  ['outlook', /\b(outlook|prognosis|life expectancy|life ?span|survival|surviv\w+|go away|get better|recover\w*|heal|come back|back to normal|normal life)\b/],
  ['stages', /\b(stages?|staging)\b/],
  ['complications', /\b(complications?)\b/],
  ['frequency', /\b(how many people|how common|prevalen\w+|affected by)\b/],
  ['support', /\b(support groups?|find support)\b/],
  ['susceptibility', /\b(at risk|risk factors?|who gets|who is likely|more likely|risk)\b/],
  ['prevention', /\b(prevent\w*|avoid\w*|protect\w*|lower (my|the) (risk|chance))\b/],
  ['exams', /\b(diagnos\w*|tests?|tested|testing|screen\w*|exams?|check (for|if)|figure out|find out (if|whether))\b/],
  ['treatment', /\b(treat\w*|cure\w*|therap\w*|get rid of|remed\w*|manage\w*|medicines?|medications?|surgery|fix(es|ed)?)\b/],
  // "How can I tell if my baby is dehydrated": a person tells by the signs; a doctor's tests are "diagnosed", "tested".
  ['symptoms', /\b(symptoms?|signs?|feel like|look like|(tell|know) (if|whether))\b/],
  ['causes', /\b(causes?|caused|causing|reason|why (do|does|am|is)|what makes|trigger\w*)\b/],
  ['considerations', /\b(what to do for|diet|eat|eating|foods?|nutrition)\b/],
  ['information', /\b(what (is|are)|information about|tell me about|whats)\b/],
];

const TYPE_HEADINGS: Record<QuestionType, string[]> = {
  information: ['overview'],
  symptoms: ['symptoms'],
  causes: ['causes'],
  treatment: ['treatment'],
  exams: ['exams and tests'],
  prevention: ['prevention'],
  susceptibility: ['risk factors'],
  outlook: ['outlook'],
  research: ['research'],
  stages: ['stages'],
  complications: ['complications'],
  frequency: ['frequency'],
  considerations: ['other considerations'],
  support: ['support groups'],
};

/** Every cue word pattern (used to down-weight those words as topic terms). */
const CUE_WORDS = new Set(
  (
  'research clinical trial trials studies study done outlook prognosis expectancy survival go away better recover heal stage stages staging ' +
    'complication complications affected support groups group risk factors prevent prevention avoid protect diagnose diagnosed diagnosis ' +
    'test tests tested testing screen screening exam exams check treat treated treatment treatments cure cured therapy therapies ' +
    'manage rid remedy remedies symptom symptoms sign signs feel look cause causes caused causing reason makes trigger information ' +
    // An advice question's verbs ("what can i use/take/try") and fillers ("all the time").
    'use take try give time'
  ).split(' '),
);

export function questionType(question: string): QuestionType | null {
  const q = normalise(question);
  for (const [type, re] of TYPE_CUES) if (re.test(q)) return type;
  return null;
}

export function headingsFor(type: QuestionType | null): string[] {
  return type ? TYPE_HEADINGS[type] : [];
}

/** Types that an advice question ("my eyes feel dry, what can I use") is not really asking about: it wants the treatment. */
const ADVICE_OVERRIDES = new Set<QuestionType | null>([null, 'information', 'symptoms', 'considerations']);

/** The sections that answer a parsed question: its type's, or Treatment for an advice question. */
export function answerHeadings(parsed: Pick<ParsedQuery, 'type' | 'advice'>): string[] {
  return parsed.advice && ADVICE_OVERRIDES.has(parsed.type) ? ['treatment'] : headingsFor(parsed.type);
}

/** The known section headings of the corpus format (a heading is a line of its own). */
export const SECTION_HEADINGS = new Set([
  'overview', 'treatment', 'outlook', 'research', 'symptoms', 'exams and tests', 'risk factors', 'causes', 'prevention',
  'other considerations', 'stages', 'complications', 'frequency', 'inheritance', 'genetic changes', 'support groups',
]);

export interface Section {
  heading: string;
  text: string;
}

/** Splits a document's text at its heading lines; text before the first heading is an Overview. */
export function sectionsOf(text: string): Section[] {
  const out: Section[] = [];
  let heading = 'Overview';
  let buf: string[] = [];
  const flush = () => {
    const body = buf.join('\n').trim();
    if (body) out.push({ heading, text: body });
    buf = [];
  };
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t.length < 30 && SECTION_HEADINGS.has(t.toLowerCase())) {
      flush();
      heading = t[0]!.toUpperCase() + t.slice(1).toLowerCase();
    } else buf.push(line);
  }
  flush();
  return out;
}

// ---- queries -------------------------------------------------------------------------------------

export const ADVICE = /\b(what (should|can|do) (i|you|we) (do|use|take|try|give)|what to do|how (do|can|should) (i|you) (treat|help|stop|get rid|ease|relieve)|should i (take|use|see|go))\b/;

export interface ParsedQuery {
  type: QuestionType | null;
  /** "What should I do", "what can I use/take": the person wants advice (treatment, care). */
  advice: boolean;
  terms: QueryTerm[];
  /** The person's own content words (unstemmed), for the full-text query. */
  ftsWords: string[];
  /** Misspelt stems and the stem most likely meant for each (store.ts, `corrections`). */
  respelt?: [string, string][];
}

/** Content terms of a question: stop words and SMS-speak out, cue words down-weighted, lay terms added. */
export function parseQuery(question: string): ParsedQuery {
  let q = normalise(question);
  for (const [re, rep] of SMS_EXPAND) q = q.replace(re, rep);
  // Template scaffolding of the "What is (are) X?" kind.
  q = q.replace(/\(are\)/g, ' ').replace(/\bdo you have information about\b/g, ' information about ');
  const type = questionType(q);
  const weights = new Map<string, number>();
  const ftsWords: string[] = [];
  const add = (w: string, weight: number) => {
    if (STOP_WORDS.has(w) || /^\d+$/.test(w)) return;
    const s = stem(w);
    weights.set(s, Math.max(weights.get(s) ?? 0, weight));
    if (weight >= 0.5 && !ftsWords.includes(w)) ftsWords.push(w);
  };
  for (const w of words(q)) add(w, CUE_WORDS.has(w) ? 0.35 : 1);
  // An abbreviation's expansion counts as the person's own words; other lay mappings add the medical
  // word beside the person's, at a lower weight.
  for (const [re, rep, kind] of LAY_TERMS) if (re.test(q)) for (const w of rep.split(' ')) add(w, kind === 'abbr' ? 1 : 0.6);
  return { type, advice: ADVICE.test(q), terms: [...weights].map(([term, weight]) => ({ term, weight })), ftsWords };
}

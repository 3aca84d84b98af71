/**
 * Extractive answers: the sentences of the best section that best match the question, in document
 * order, within a character budget that includes the citation line. No model; redactions always applied.
 */
import { pairScore, parsePairs, type PairTable } from './answer-pairs.js';
import { ANSWER_PAIRS, FITTED_UNIT_WEIGHTS } from './answer-weights.js';
import { confidenceOf } from './confidence.js';
import type { Answer, Citation, Hit } from './types.js';
import { answerHeadings, docTerms, parseQuery, sameFamily } from './text.js';

export interface Redaction {
  /** Regular expression source, applied case-insensitively and globally. */
  pattern: string;
  replacement: string;
}

export interface ComposeOptions {
  maxChars: number;
  minConfidence: number;
  redactions?: Redaction[];
  /** Other weights of `UNIT_FEATURES` (for eval/fit-answer.ts). */
  unitWeights?: readonly number[];
  /** Another table of learned word pairs (for eval/fit-answer.ts; default: the shipped one). */
  pairs?: PairTable;
  /** Whether a question that asks something leads with the best unit that says it (default `LEAD_BY_SAYING`). */
  leadBySaying?: boolean;
  /**
   * Whether the source line carries the link (default true; false on a voice call, where it would be
   * read out), or which link it carries for a page (a short link on SMS: the stage's `shortLinks`).
   */
  links?: boolean | LinkOf;
}

/** The link a source line carries for a page: a short link to it, or null for its own. */
export type LinkOf = (doc: { docId: string; url: string | null }) => string | null;

/** The page as its source line names it: its title, and the link `links` gives (its own by default). */
export function sourceOf(doc: { docId: string; title: string; url: string | null }, links: boolean | LinkOf | undefined): { title: string; url: string | null } {
  return { title: doc.title, url: links === false ? null : typeof links === 'function' ? (links(doc) ?? doc.url) : doc.url };
}

/**
 * Always applied: the corpus is from about 2017 and names the retired U.S. suicide line; the current
 * number is 988 (call or text). A deployment may add its own.
 */
export const DEFAULT_REDACTIONS: Redaction[] = [
  { pattern: String.raw`1[\s.-]*800[\s.-]*273[\s.-]*(?:TALK|8255)(?:\s*\(\s*8255\s*\))?`, replacement: '988 (call or text)' },
  { pattern: String.raw`(?:National\s+)?Suicide\s+Prevention\s+Lifeline`, replacement: '988 Suicide & Crisis Lifeline' },
];

/**
 * For SMS: typographic marks the corpus uses (curly quotes, dashes, degrees, fractions) replaced by
 * GSM-7 look-alikes. One character outside GSM-7 makes Twilio send the whole message as UCS-2, 70
 * characters a segment instead of 160, so a two-segment answer would cost five.
 */
export const GSM_LOOKALIKES: Redaction[] = [
  { pattern: '[\u2018\u2019\u201a\u201b\u2032]', replacement: "'" },
  { pattern: '[\u201c\u201d\u201e\u2033]', replacement: '"' },
  { pattern: '[\u2010-\u2015\u2212]', replacement: '-' },
  { pattern: '\u2026', replacement: '...' },
  { pattern: String.raw`\s*\u00b0\s*([FC])\b`, replacement: ' $1' },
  { pattern: String.raw`\s*\u00b0`, replacement: ' degrees' },
  { pattern: '\u00bc', replacement: '1/4' },
  { pattern: '\u00bd', replacement: '1/2' },
  { pattern: '\u00be', replacement: '3/4' },
  { pattern: '[\u00ae\u2122\u00a9]', replacement: '' },
  { pattern: '[\u00a0\u2009\u202f]', replacement: ' ' },
  { pattern: '\u2022', replacement: '-' },
  { pattern: '\u00d7', replacement: 'x' },
];

export function applyRedactions(text: string, redactions: Redaction[]): string {
  let out = text;
  for (const r of redactions) out = out.replace(new RegExp(r.pattern, 'gi'), r.replacement);
  return out;
}

/** Sentences of a section, with list items ("- a - b") kept as their own pieces. */
export function sentencesOf(text: string): string[] {
  return text
    .replace(/\s+/g, ' ')
    // Sentence ends, list items (" - "), and the crawl's lost full stops after a list's last item
    // ("- Heart problems When someone faints, ...").
    .split(/(?<=[.!?])\s+(?=[A-Z0-9"(])|\s+-\s+(?=[A-Za-z0-9])|(?<=[a-z])\s+(?=(?:When|If|The|Most|Some|It|You|Your|This|These|Many|Call|See|Ask|Talk|Treatment|Symptoms|Doctors|People)\s)/)
    .map((s) => s.trim().replace(/^-\s*/, ''))
    .filter((s) => s.length > 2);
}

/** Sentence cues of each question type: a sentence that says "treated with" answers "how is it treated". */
const CUES: Record<string, RegExp[]> = {
  treatment: [/\b(treat\w*|therap\w*|medicines?|medications?|surgery|drugs?)\b/i],
  exams: [/\b(diagnos\w*|tests?|exam\w*|screen\w*)\b/i],
  causes: [/\b(caus\w*|because|due to|results? from|leads? to)\b/i],
  prevention: [/\b(prevent\w*|avoid\w*|reduce (your|the) risk|lower (your|the) risk|protect\w*)\b/i],
  symptoms: [/\b(symptoms?|signs?|may (feel|have|notice))\b/i],
  susceptibility: [/\b(risk|more likely|at risk)\b/i],
  outlook: [/\b(prognosis|outlook|recover\w*|most people|life expectancy|life ?spans?|normal li(fe|ves)|improve\w*|permanent)\b/i],
  // "How common is it": a share or a count.
  frequency: [/\b((\d+|one|two|three|four|five) (in|out of) (every )?\d+|\d+ percent|percent|half|million|thousand|most people|many people|common|rare)\b/i],
  information: [/\b(is an?|are)\b/i],
};
/** What a sentence gains for saying what the question type asks (treated with, caused by, should). */
const CUE_WEIGHT = 1.5;
/** "What should I do", "what can I use/take": advice is wanted. */
const ADVICE_QUESTION = /\b(what (should|can|do) (i|you|we)|how (do|can|should) (i|you)|what to do|should i)\b/;
const ADVICE_SENTENCE = /\b(should|can help|try|use|take|call|see (a|your)|wash|avoid|keep|drink|eat|get)\b/i;
/** An instruction: a sentence or a clause after "if/when ...," that starts with a verb ("When someone faints, make sure ..."). */
const INSTRUCTION = /(^|[,;:]\s*)(make sure|wash|call|get|go|see|try|take|keep|stay|lie|drink|avoid|ask|use|put|apply|remove|rinse|seek|check|give|loosen|cool|rest|raise|clean|cover|don'?t|do not|never)\b/i;

/**
 * What the question asks beyond its topic, read from its wording, and the sentences that say it: "how
 * often" wants a frequency, "how long" a duration, "normal level" a number, "is it contagious" how it
 * spreads, "is it ok to give" a safety rule.
 */
/** A number of its own ("below 5.7", "140/90"), not the digit in a name ("A1C", "type 2 diabetes"). */
const NUMBER = /(?<![A-Za-z\d])(?<!\b(?:type|stage|grade|phase) )\d+(?:[.,/]\d+)*(?![A-Za-z\d])/i;
const INTENTS: { ask: RegExp; say: RegExp }[] = [
  { ask: /\bhow (often|many times|frequently)\b/, say: /\b(every|once|twice|times? (a|per)|per (day|week|month|year)|daily|weekly|monthly|yearly|annual(ly)?)\b/i },
  { ask: /\bhow (long|soon)\b|\bwhen (will|does|do|can|should)\b|\bbefore\b/, say: /\b(\d+|one|two|three|four|five|six|few|several)\s*(to \d+\s*)?(seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b/i },
  // Not "high" alone: "high blood pressure" names a condition, "how high" / "too high" asks for a number.
  { ask: /\b(normal|level|range|number|reading|how (much|many|high|low)|dose|dosage|too (high|low))\b/, say: NUMBER },
  // A person who quotes a reading ("my a1c came back 6.1", "145/92") wants the ranges it falls in.
  { ask: /(?<![a-z\d])\d+(?:[.,/]\d+)+(?![a-z\d])|\b\d{2,3}\s*(?:over|\/)\s*\d{2,3}\b/, say: NUMBER },
  // Not "infection": a sentence that names the infection does not say how it passes on.
  { ask: /\b(contagious|catch|spread|give (it|this)|pass (it|on)|infectious)\b/, say: /\b(contagious|spread\w*|catch|pass(ed)? (it|the|on)|transmit\w*|person to person|infectious|(direct|close) contact|contact with|touching)\b/i },
  // "Who gets it", not "who can I call".
  { ask: /\bwho (is|are|gets?|has|have|can get|should get)\b|\b(more likely|at risk)\b|\bcan (kids|children|teens|teenagers|babies|infants|toddlers|women|men|older (people|adults)|adults|elderly|young people|guys|girls) (get|have)\b/, say: /\b(risk|more likely|people (who|with|over)|over age|older|women|men|children|teens|young adults|any age|african|family history)\b/i },
  { ask: /\b(safe|ok to|okay to|can i give|should i give|allowed|smart to|good idea|bad (idea )?to|harmful)\b/, say: /\b(should not|shouldn'?t|never|do not|don'?t|not safe|safe|avoid|less than \d+|may increase the risk|harm\w*)\b/i },
  // "Should I be scared", "is that dangerous": how serious it is, either way.
  { ask: /\b(should i (be )?(worried|scared|concerned|worry)|be (worried|scared|concerned)|is (it|that|this) (bad|serious|dangerous)|dangerous|freaking out|scared|worried|is (it|that|this) normal)\b/, say: /\b(rarely|usually (not|harmless|mild)|harmless|not (serious|dangerous|cancer\w*|harmful)|benign|innocent|most (people|cases|are|often)|common|normal|go(es)? away|serious|dangerous|life-threatening|can lead to)\b/i },
  { ask: /\b(need to take|should i take|do i need)\b/, say: /\b(may need|need to|should|supplement)\b/i },
  { ask: /\b(how do (they|doctors)|figure out|find out|test for|diagnos)\w*/, say: /\b(diagnos\w*|tests?|exam\w*|based on)\b/i },
  { ask: /\bhow (can|do|would|will) (i|you|we|they) (tell|know)\b|\bsigns? of\b|\blook like\b/, say: /\b(symptoms?|signs?|include|look (like|for)|watch for)\b/i },
  // "When is it serious enough to see someone", "do I need a doctor": when to get help.
  { ask: /\b(see (a |my |the )?(doctor|dr|someone|somebody|nurse)|need (a|to see a) doctor|go to the (er|hospital|emergency)|serious enough|should i (worry|be worried)|(need|have) to worry|when (should|do) i (worry|call)|emergency|urgent)\b/, say: /\b(call (9-1-1|911|your)|get (medical|emergency) (help|care)|seek (medical|emergency)|see (a|your) (doctor|health care)|let your (doctor|health care provider) know|emergency|right away|immediately)\b/i },
  { ask: /\b(why|what causes|cause|going on|what happens|happening)\b/, say: /\b(caus\w*|because|due to|from|bacteria|virus|when)\b/i },
  // "What age do people get it", "how old": an age or a stage of life.
  { ask: /\b(what age|at what age|how old|which age|age (do|does|is|when))\b/, say: /\b(\d+ (to|and) \d+ years|years? old|(age|ages|aged) \d+|over (age )?\d+|under (age )?\d+|older (than|adults|people)|younger|childhood|in (their|your) \d+s|teens?|middle age|adults?|infants?|children)\b/i },
  // "Is it hereditary", "does it run in families", "will my kids get it": inheritance.
  { ask: /\b(hereditary|genetic|inherit\w*|run(s)? in (the |my |our )?famil\w*|pass (it )?(on|down) to|(my|our) (kids|children|son|daughter|baby) (get|have) it|chance (i|we|my \w+) (have|get))\b/, say: /\b(inherit\w*|genes?|genetic\w*|run(s)? in famil\w*|family history|passed (down|on|from)|hereditary|parents?)\b/i },
  // "Will it go away", "will he walk again", "will it get worse": the course of it.
  { ask: /\bwill (it|this|that|they|he|she|i|my \w+|his \w+|her \w+) (ever )?(go away|get better|get worse|heal|recover|come back|clear up|improve|walk again|grow out|outgrow|be (ok|okay|fine|normal)|last|stay|keep)\b|\b(forever|for life|rest of (my|his|her|their) life|permanent\w*|get worse|grow out of|outgrow)\b/, say: /\b(recover\w*|get better|improv\w*|go(es)? away|heal\w*|outgrow\w*|worse\w*|progress\w*|lifelong|life-long|rest of (your|their|his|her) life|for life|permanent\w*|chronic|prognosis|outlook|most people|no cure|cure\w*|disappear\w*|resolv\w*)\b/i },
];
const INTENT_WEIGHT = 2;
/** What a question word that is also a word of the page's title counts for, against the question's other words. */
const TOPIC_SHARE = 0.3;
/** What a sentence that starts with a conjunction ("And", "But", "However") loses: it continues the one before it. */
const LEANS_ON_CONTEXT = 2;
/** What the question's words count for when it asks something specific (see `asks`). */
const ASKING_SHARE = 0.5;
const LIST_TYPES = new Set(['symptoms', 'susceptibility', 'prevention', 'treatment', 'causes', 'exams']);
const LIST_WEIGHT = 1;
/** What a unit of the section the question's type points to gains over the rest of the document. */
const SECTION_WEIGHT = 2;
/** The same when that section is the one the question's type asks for. */
const TYPED_SECTION_WEIGHT = 3.5;

/** The page's own scaffolding, not content: "Summary :", a heading glued to the text, "(See more ...)". */
function clean(text: string): string {
  return text
    .replace(/\bSummary\s*:\s*/g, '')
    .replace(/\((see|read) (more|also)[^)]*\)/gi, '')
    // A full stop the crawl doubled ("weakness of the neck or arm.. Arterial TOS", 31 in the corpus), not an ellipsis.
    .replace(/([A-Za-z\d)])\.\.(?!\.)/g, '$1.')
    // A full stop the crawl left without its space ("treatment options.The prognosis ...").
    .replace(/([a-z)])\.([A-Z][a-z])/g, '$1. $2')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Answer units of a section: sentences, and a list with the sentence that introduces it as one unit
 * ("To help prevent cavities: brush your teeth every day with a fluoride toothpaste; ..."), so an
 * answer that is a list reads as one.
 */
export function unitsOf(text: string): { text: string; items: string[] }[] {
  const units: { text: string; items: string[] }[] = [];
  const parts = clean(readLines(text)).split(/\s+-\s+(?=[A-Za-z0-9])/);
  // The list the previous item went into (the units after it are sentences that followed its items),
  // and how many sentences followed that item.
  let open: { list: number; last: number } | null = null;
  const asItem = (item: string) => item.trim().replace(/[.;]$/, '');
  for (const [i, part] of parts.entries()) {
    if (i === 0) {
      for (const s of sentencesOf(part)) units.push({ text: s, items: [] });
      continue;
    }
    // A list item: the crawl lost the full stop after a list's last item ("- Heart problems When someone
    // faints, ..."), so what follows the item's first sentence break starts ordinary sentences again.
    const [glued, ...rest] = sentencesOf(part);
    if (!glued) continue;
    // The crawl also lost the full stop after a list's last item when the next sentence starts with any
    // capitalised word ("- Dizziness and fainting Signs of dehydration in babies include ..."): a
    // capitalised word after a lower-case one, followed by a sentence's length of text (or a question,
    // the page's next heading: "- Sore throat Is it a cold or the flu?"), starts a sentence.
    // A shorter one when a verb follows the capitalised word ("- Holding your breath Hiccups aren't
    // usually serious.", "- People with weak immune systems Valley Fever is often mild."): an item names
    // something, a sentence says something of it.
    const split = /^(.{3,}?[a-z)])\s+([A-Z][a-z]+\s.{40,}|(?:[A-Z][a-z]+\s)+(?:is|are|isn't|aren't|can|cannot|can't|may|might|should|will|won't|usually|often|rarely|do|does|don't|doesn't|has|have)\s.*[.!]|(?:Is|Are|What|How|When|Why|Can|Do|Does|Should|Who)\s[^.!?]*\?.*)$/.exec(glued);
    const item = split ? split[1]! : glued;
    if (split) rest.unshift(split[2]!);
    // An item of a sentence or two more, and then the list goes on ("Common ones include - Circulation
    // problems from atherosclerosis or diabetes. They may cause you to need an amputation. - Traumatic
    // injuries ... - Cancer"): the item goes into that list, and the sentences stay units of their own
    // after it. Without this, the item stood alone and the next took it for its introduction
    // ("Traumatic injuries ...: Cancer - Birth defects"). A sentence that introduces ("here are steps
    // to take:") starts a list of its own.
    if (open && open.list < units.length - 1 && open.last <= 2 && /[.!?]$/.test(units[units.length - 1]!.text)) {
      units[open.list]!.items.push(asItem(item));
      for (const s of rest) units.push({ text: s, items: [] });
      open = { list: open.list, last: rest.length };
      continue;
    }
    open = null;
    const intro = units[units.length - 1];
    if (intro && (intro.items.length > 0 || !/[.!?]$/.test(intro.text) || /:$/.test(intro.text))) {
      // "They include" says nothing without the sentence before it ("Some people are at higher risk").
      if (!intro.items.length && ANAPHORIC.test(intro.text) && units.length > 1) {
        const previous = units[units.length - 2]!;
        if (!previous.items.length) {
          units.splice(units.length - 2, 2, { text: `${previous.text} ${intro.text}`, items: [] });
        }
      }
      const list = units[units.length - 1]!;
      // The crawl repeats a list's items run together after its last item: cut the item where they start again.
      const first = list.items[0]?.toLowerCase();
      const again = first && first.length >= 8 ? item.toLowerCase().indexOf(first, 1) : -1;
      list.items.push(asItem(again > 0 ? item.slice(0, again) : item));
      open = { list: units.length - 1, last: rest.length };
    } else if (/^[a-z]/.test(item)) {
      // An item in lower case after a full sentence ("... you may have depression. - feeling nervous or
      // emotionally "empty" - feelings of excessive guilt"): a list without an introduction, not a
      // sentence that introduces the next item.
      units.push({ text: '', items: [asItem(item)] });
      open = { list: units.length - 1, last: rest.length };
    } else units.push({ text: item, items: [] });
    for (const s of rest) units.push({ text: s, items: [] });
  }
  for (const u of units) {
    // A list without an introduction that got no second item was a lone item: a unit as before.
    if (!u.text && u.items.length === 1) [u.text, u.items] = [u.items[0]!, []];
    u.text = withoutInlineHeading(u.text);
    // A dash inside an item, which the crawl wrote as it wrote the items' own: a term and its definition
    // ("Cataract - a clouding in the lens of the eye"), an aside ("Put the affected area in warm - not
    // hot - water"). What follows such a dash starts in lower case where the items start in capitals:
    // it stays with its item, so an item is never quoted without it.
    if (u.items.length > 1 && /^[A-Z0-9]/.test(u.items[0]!)) {
      u.items = u.items.reduce<string[]>((out, item) => {
        if (out.length && /^[a-z]/.test(item)) out[out.length - 1] = `${out[out.length - 1]} - ${item}`;
        else out.push(item);
        return out;
      }, []);
    }
    // The agency a page credits, glued to the last item of a list that ends the page ("- Close
    // unscreened doors and windows NIH: National Institute of Allergy and Infectious Diseases").
    if (u.items.length) u.items[u.items.length - 1] = u.items[u.items.length - 1]!.replace(CREDIT_AFTER_ITEM, '');
  }
  // The crawl sometimes repeats a list's items run together after it; and pages end with credits.
  return units.filter((u, i) => {
    if (u.text.length <= 2 && !u.items.length) return false;
    if (BOILERPLATE.test(u.text)) return false;
    // The agency a page credits, on its last line ("... can benefit from them. National Institute on
    // Deafness and Other Communication Disorders"; "NIH:" is not always there).
    if (i === units.length - 1 && !u.items.length && isSubheading(u.text) && !SAYS_SOMETHING.test(u.text) && u.text.split(' ').length >= 3) return false;
    const before = units[i - 1];
    return !(before?.items.length && !u.items.length && u.text.toLowerCase().startsWith(before.items[0]!.toLowerCase()));
  });
}

/**
 * What a section's line breaks say, before `clean` joins its lines: a list whose items are lines of
 * their own becomes a "- " list, and the section's own subheadings ("Treating the Cause of a Cough",
 * "Acute and Subacute Cough"), in title case on lines of their own with more text after them, are left
 * out: they name what follows and answer nothing, and once the lines are joined they would be glued to
 * its first sentence ("Acute and Subacute Cough An acute cough lasts ..."). The line before a
 * subheading then ends a sentence.
 */
function readLines(text: string): string {
  if (!text.includes('\n')) return text;
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  // A list whose items are lines of their own after its introduction ("The goals of treatment include:"
  // / "Reducing pain and inflammation" / "Checking for complications"): marked as the crawl marks other
  // lists ("- "), so it reads as one and keeps as many items as fit, instead of running together.
  for (let i = 1, inList = false; i < lines.length; i++) {
    const line = lines[i]!;
    // A subheading of two title-case words or more before a sentence ends the list ("Risk Factors in
    // Children"); a one-word item ("Fatigue") does not.
    const heading = isSubheading(line) && titledWords(line.split(/\s+/)) >= 2 && /[.!?:]$/.test(lines[i + 1] ?? '');
    inList = (inList || lines[i - 1]!.endsWith(':')) && !heading && !line.startsWith('- ') && line.length <= 200 && !/[.!?:]$/.test(line);
    if (inList) lines[i] = `- ${line}`;
  }
  const out: string[] = [];
  let dropped = false;
  for (const [i, line] of lines.entries()) {
    const before = out[out.length - 1];
    const after = lines[i + 1];
    // Between a sentence (or a "- " list, or another subheading) and a sentence: a list's one-word items
    // on lines of their own ("Fatigue") sit between other items, and stay.
    const heading: boolean = isSubheading(line) && after !== undefined && (isSubheading(after) || /[.!?:]$|^- /.test(after))
      && (before === undefined || dropped || /[.!?]$|^- /.test(before));
    dropped = heading;
    if (!heading) {
      out.push(line);
      continue;
    }
    if (before !== undefined && !/[.!?:;]$/.test(before)) out[out.length - 1] = `${before}.`;
  }
  return out.join('\n');
}

/** Small words a title-case heading keeps in lower case ("Depression in Older Adults"). */
const HEADING_SMALL_WORDS = new Set(['of', 'and', 'in', 'the', 'to', 'for', 'a', 'an', 'on', 'with', 'or', 'at', 'by', 'your', 'you', 'is', 'are', 'from', 'about']);
/** What a heading does not start with, or hold: the start of a sentence, an instruction ("See the ... section"). */
const NOT_A_HEADING = /^(The|A|An|This|These|That|Many|Some|Most|If|When|In|For|To|It|You|Your|See)$/;

/**
 * A subheading the crawl put on the same line as the sentence after it ("Depression in Older Adults
 * Important life changes ...", "How Our Sense of Taste Works Our sense of taste ..."): three to nine
 * words in title case at the start of a unit, then a capitalised word followed by a lower-case one,
 * where the sentence starts. The heading is left out. About 950 units of the corpus start so, most on
 * NIH SeniorHealth, NHLBI and NIDDK pages.
 */
function withoutInlineHeading(text: string): string {
  const words = text.split(' ');
  for (let i = 0; i < words.length - 1; i++) {
    const word = words[i]!;
    if (!/^[A-Z][A-Za-z'-]*$/.test(word) && !HEADING_SMALL_WORDS.has(word)) return text;
    const next = words[i + 1]!;
    if (!/^[A-Z][a-z'-]+$/.test(word) || !/^[a-z]/.test(next) || HEADING_SMALL_WORDS.has(next)) continue;
    const heading = words.slice(0, i);
    const titled = titledWords(heading);
    if (heading.length < 3 || heading.length > 9 || titled < 2 || NOT_A_HEADING.test(heading[0]!) || heading.includes('See') || !/^[A-Z]/.test(heading.at(-1)!)) return text;
    return words.slice(i).join(' ');
  }
  return text;
}

/** How many words of four letters or more start with a capital: what makes a run of words a title. */
const titledWords = (words: string[]): number => words.filter((w) => /^[A-Z][a-z]{3}/.test(w)).length;

function isSubheading(line: string): boolean {
  if (!line || line.length > 80 || /[.!?:;,]$/.test(line) || !/^[A-Z0-9]/.test(line)) return false;
  const words = line.split(/\s+/);
  // Title case: every word of four letters or more starts with a capital ("Signs and Symptoms of ...").
  return words.length <= 10 && words.every((w) => w.length < 4 || !/^[a-z]/.test(w));
}

/** A verb or a negation: what a short unit needs to say something rather than name it. */
const SAYS_SOMETHING = /\b(is|are|was|were|can|may|does|do|will|not|no|has|have)\b/i;
const ANAPHORIC = /^(they|these|this|those|it|such|examples?)\b/i;
const CREDIT_AFTER_ITEM = /\s+(?:NIH:\s.*|Centers for Disease Control and Prevention)$/;
const BOILERPLATE = /^(NIH:|See this graphic|Click |Learn more|For more information|Source:|More on:)/i;

/**
 * A unit as text within `max` characters: a list keeps as many items as fit, separated as in the source.
 * When they do not all fit and some hold the question's words or say what it asks (`relevant`, one
 * number per item), those are kept first ("should i rub them" keeps "Don't rub the frostbitten area
 * with snow" from the fifth place of a list of steps), then the list's first items while they fit, all
 * quoted in the source's order.
 */
export function render(unit: { text: string; items: string[]; relevant?: number[] }, max: number): string | null {
  if (!unit.items.length) return unit.text.length <= max ? unit.text : null;
  const intro = unit.text.replace(/[:.,;\s]+$/, '');
  // A list without an introduction starts with its first item, as a sentence would.
  const lead = (first: string) => (intro ? `${intro}: ${first}` : first.charAt(0).toUpperCase() + first.slice(1));
  const picked = new Set<number>();
  let length = intro ? intro.length + 1 : -1;
  const fits = (i: number) => {
    const more = unit.items[i]!.length + (picked.size ? 3 : 1);
    if (length + more + 1 > max) return false;
    picked.add(i);
    length += more;
    return true;
  };
  // When not all fit: the items that hold the question's words, the most first, as many as fit.
  const relevant = unit.relevant;
  if (relevant && lead(unit.items.join(' - ')).length + 1 > max) {
    for (const i of unit.items.map((_, i) => i).filter((i) => relevant[i]! > 0).sort((a, b) => relevant[b]! - relevant[a]! || a - b)) fits(i);
  }
  // Then the list's first items while they fit (the source's own words and marks, "Chest discomfort -
  // pressure, squeezing, or pain - Shortness of breath": a vetted text is quoted, not rewritten), so the
  // rest of the room is not filled with fragments from its middle.
  for (let i = 0; i < unit.items.length; i++) if (!picked.has(i) && !fits(i)) break;
  // An introduction without any of its items ("Some causes of fainting include.") says nothing, nor
  // does one item of a list without an introduction (often a dash inside a sentence: "- to standard care").
  if (picked.size < (intro ? 1 : 2)) return null;
  return `${lead(unit.items.filter((_, i) => picked.has(i)).join(' - '))}.`;
}

/** Cut at a word, with "..." (three full stops: the ellipsis character is not GSM-7, see GSM_LOOKALIKES). */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, Math.max(0, max - 3));
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).replace(/[,;:\s]+$/, '')}...`;
}

/**
 * What each answer unit is scored by, in the order of `UNIT_WEIGHTS`: the question's words it holds
 * (idf-weighted at sentence level; the page's title words apart: they name the topic, present
 * everywhere; both scaled down when the question asks something specific), whether it says what the
 * question's type asks (a cue), advice and instructions for "what should I do", how many of the
 * question's intents it says, the opening definition of a "what is" question, the best section
 * (and the section the question's type asks for), a list for a question a list answers, and what
 * reads badly first: a fragment, an example, a leading conjunction, a question (the page's heading),
 * a run-on unit longer than the budget; then its position, its length and whether it holds a number;
 * last, the learned word pairs it makes with the question (`answer-pairs.ts`).
 */
export const UNIT_FEATURES = ['words', 'topicWords', 'cue', 'advises', 'instructs', 'intentsSaid', 'opening', 'bestSection', 'typedSection', 'list', 'fragment', 'example', 'conjunction', 'question', 'runOn', 'position', 'length', 'number', 'pairs'] as const;
/** A question that asks something is answered first by the best unit that says it (a cue, an intent, advice). */
export const LEAD_BY_SAYING = true;
/** Set by hand on the dev set's design half (eval/README.md): where `eval/fit-answer.ts` starts, and what its fit is pulled toward. */
export const HAND_UNIT_WEIGHTS: readonly number[] = [1, TOPIC_SHARE, CUE_WEIGHT, CUE_WEIGHT, CUE_WEIGHT, INTENT_WEIGHT, 1, SECTION_WEIGHT, TYPED_SECTION_WEIGHT, LIST_WEIGHT, -2, -2, -LEANS_ON_CONTEXT, -2, -2, -0.01, 0, 0, 0];
/** Fitted by `eval/fit-answer.ts --write` (answer-weights.ts). */
export const UNIT_WEIGHTS: readonly number[] = FITTED_UNIT_WEIGHTS;
let shippedPairs: PairTable | undefined;
/** The shipped word pairs, read on first use. */
export const shippedPairTable = (): PairTable => (shippedPairs ??= parsePairs(ANSWER_PAIRS));

export interface AnswerUnit {
  text: string;
  items: string[];
  /** For a list: how much of the question each item holds (its own words, the topic's left out, and what its intents ask). */
  relevant?: number[];
  features: number[];
  /** Whether it says what the question asks: a cue of its type, an intent's words, advice. */
  says: boolean;
  /** Its stems less the page's title stems (what the word pairs read). */
  stems: string[];
}

/**
 * The top hit's answer units with their features, whether the question asks something specific, and
 * the question's own stems less the page's title stems (what the word pairs read).
 */
export function answerUnits(question: string, top: Hit, budget: number, redactions: Redaction[], pairs: PairTable = shippedPairTable()): { units: AnswerUnit[]; asking: boolean; questionStems: string[] } {
  // Units of the best section first, then the rest of the document.
  const sections = top.sections?.length ? top.sections : [{ heading: top.section ?? '', text: top.text }];
  const seen = new Set<string>();
  const units = sections.flatMap((section, index) => unitsOf(applyRedactions(section.text, redactions)).map((u) => ({ ...u, best: index === 0 }))).filter((u) => {
    const key = `${u.text}|${u.items.join('|')}`.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const q = parseQuery(question);
  const asked = question.toLowerCase();
  const wholes = units.map((u) => `${u.text} ${u.items.join(' ')}`);
  const unitTerms = wholes.map((whole) => new Set(docTerms(whole)));
  // Unit-level idf: a word in every sentence (the topic itself) tells little about which one answers.
  const df = new Map<string, number>();
  for (const set of unitTerms) for (const t of set) df.set(t, (df.get(t) ?? 0) + 1);
  const n = Math.max(1, units.length);
  const cues = CUES[q.type ?? ''] ?? [];
  const advice = q.advice || ADVICE_QUESTION.test(asked);
  const intents = INTENTS.filter((i) => i.ask.test(asked));
  // The words of the page's title name the topic: they chose the page, and say little about which of
  // its sentences answers ("touched poison ivy, what do i do now" wants the sentence that says what to do).
  const topic = new Set(docTerms(top.title));
  // A question that asks something specific (how it is treated, how often, what to do) describes the
  // person's situation in its other words ("cant fall asleep or stay asleep"): they count less than what it asks.
  const asks = (q.type && q.type !== 'information') || advice || intents.length ? ASKING_SHARE : 1;
  // The best section is the one the question's type asks for (Treatment for "how is it treated").
  const typedSection = Boolean(top.section && answerHeadings(q).includes(top.section.toLowerCase()));
  // The person's own words (not the lay vocabulary's lighter additions) that do not name the topic.
  const questionStems = q.terms.filter((t) => t.weight >= 0.5 && !topic.has(t.term)).map((t) => t.term);
  const ownStems = new Set(questionStems);
  const out = units.map((u, i): AnswerUnit => {
    const terms = unitTerms[i]!;
    const stems = [...terms].filter((t) => !topic.has(t));
    const whole = wholes[i]!;
    let words = 0;
    let topicWords = 0;
    let termList: string[] | undefined;
    for (const { term, weight } of q.terms) {
      // The word itself, or one of its family the stemmer keeps apart ("teenagers" / "teens").
      if (!terms.has(term) && !(term.length >= 4 && (termList ??= [...terms]).some((t) => sameFamily(t, term)))) continue;
      const w = asks * weight * Math.log(1 + n / (df.get(term) ?? 1));
      if (topic.has(term)) topicWords += w;
      else words += w;
    }
    const cue = cues.some((c) => c.test(whole));
    const advises = advice && ADVICE_SENTENCE.test(whole);
    const instructs = advice && INSTRUCTION.test(u.text);
    const intentsSaid = intents.filter((intent) => intent.say.test(whole)).length;
    const features = [
      words,
      topicWords,
      cue ? 1 : 0,
      advises ? 1 : 0,
      instructs ? 1 : 0,
      intentsSaid,
      // A definition opens a "what is" answer.
      i === 0 && (q.type === 'information' || (!q.type && !intents.length && !advice)) ? 1 : 0,
      u.best && !typedSection ? 1 : 0,
      u.best && typedSection ? 1 : 0,
      // Who is at risk, what are the signs, how to prevent or treat it: a list answers these best.
      u.items.length >= 2 && (LIST_TYPES.has(q.type ?? '') || advice || intents.length) ? 1 : 0,
      // A fragment (a heading, "Being thirsty") answers nothing on its own; a short sentence with a verb
      // does ("Rosacea is not dangerous.").
      !u.items.length && u.text.split(' ').length < 5 && !SAYS_SOMETHING.test(u.text) ? 1 : 0,
      // An example ("(For example, you might note: ...)") illustrates the sentence before it.
      /^\(?(for example|for instance|e\.g\.)/i.test(u.text) ? 1 : 0,
      // A sentence that leans on the one before it ("And of course smoking causes its own bad aroma").
      /^(and|but|also|however|so|or)\b/i.test(u.text) ? 1 : 0,
      // A question is the page's heading ("Is it a cold or the flu?"), not an answer.
      !u.items.length && /\?$/.test(u.text) ? 1 : 0,
      // A run-on unit longer than the whole budget would be cut mid-sentence.
      !u.items.length && u.text.length > budget ? 1 : 0,
      i,
      Math.min(whole.length, 600) / 100,
      NUMBER.test(whole) ? 1 : 0,
      pairScore(pairs, questionStems, stems),
    ];
    const says = intentsSaid > 0 || (q.type !== 'information' && cue) || advises || instructs;
    const relevant = u.items.length ? u.items.map((item) => docTerms(item).filter((t) => ownStems.has(t)).length + intents.filter((intent) => intent.say.test(item)).length) : undefined;
    return { text: u.text, items: u.items, ...(relevant ? { relevant } : {}), features, says, stems };
  });
  const asking = intents.length > 0 || (q.type !== null && q.type !== 'information' && cues.length > 0) || advice;
  return { units: out, asking, questionStems };
}

/** The most of an answer's budget its source line takes: the rest is the answer's. */
const SOURCE_SHARE = 0.5;

/**
 * The line that cites a document: `Source: <title> <link>`. A line that would take more than half the
 * budget (an SMS, with some NIDDK pages' 150–200-character links and long titles) is shortened, so the
 * answer keeps its room and the reply its length: first the title, to its main part ("Monogenic Forms
 * of Diabetes", not its subtitle) and then cut at a word; when the link alone leaves no room for a
 * title, the title alone is the source (the reply's citations still carry the link). Which link, if
 * any, is `sourceOf`'s to say (none on a voice call, a short one on SMS).
 */
export function sourceLine(doc: { title: string; url?: string | null }, maxChars: number, redactions: Redaction[] = []): string {
  const url = doc.url;
  const line = (title: string, link?: string | null) => applyRedactions(`Source: ${title}${link ? ` ${link}` : ''}`, redactions);
  const limit = Math.floor(maxChars * SOURCE_SHARE);
  const full = line(doc.title, url);
  if (full.length <= limit) return full;
  const main = doc.title.split(/: | \(| - /)[0]!.trim() || doc.title;
  const room = limit - 'Source: '.length - (url ? url.length + 1 : 0);
  if (url && room >= 12) return line(clip(main, room), url);
  return line(clip(main, limit - 'Source: '.length));
}

export function composeAnswer(question: string, hits: Hit[], opts: ComposeOptions): Answer | null {
  const top = hits[0];
  if (!top) return null;
  const confidence = confidenceOf(hits, question);
  if (confidence < opts.minConfidence) return null;
  const redactions = [...DEFAULT_REDACTIONS, ...(opts.redactions ?? [])];
  const citation: Citation = { docId: top.docId, title: top.title, url: top.url };
  const cite = sourceLine(sourceOf(top, opts.links), opts.maxChars, redactions);
  const budget = opts.maxChars - cite.length - 1;
  const sectionText = top.sections?.[0]?.text ?? top.text;
  const { units, asking } = answerUnits(question, top, budget, redactions, opts.pairs);
  const weights = opts.unitWeights ?? UNIT_WEIGHTS;
  const scored = units.map((u, i) => ({ i, u, says: u.says, score: u.features.reduce((n, x, j) => n + x * weights[j]!, 0) }));
  // The best unit first (it must answer), then the next best that fit, each in full, in the order of
  // the document; a unit that repeats one already chosen is left out.
  const chosen: { i: number; text: string }[] = [];
  let used = 0;
  const norm = (t: string) => t.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
  const order = [...scored].sort((a, b) => b.score - a.score || a.i - b.i);
  // A question that asks something (how it is treated, how often, what to do) is answered first by a
  // unit that says it, when the page has one: the sentence that best matches the person's own story
  // ("working at your desk ... tingling") comes after it, if at all.
  const lead = asking && (opts.leadBySaying ?? LEAD_BY_SAYING) ? order.find((c) => c.score > 0 && c.says) : undefined;
  if (lead) order.splice(order.indexOf(lead), 1), order.unshift(lead);
  for (const c of order) {
    const room = budget - used - (chosen.length ? 1 : 0);
    // The best unit is the answer: cut at a word if it is longer than the budget, never skipped.
    const text = render(c.u, room) ?? (chosen.length ? null : clip(c.u.items.length ? render(c.u, 100_000)! : c.u.text, room));
    if (!text || (chosen.length && c.score <= 0)) continue;
    const key = norm(text);
    if (chosen.some((x) => norm(x.text).includes(key) || key.includes(norm(x.text)))) continue;
    chosen.push({ i: c.i, text });
    used += text.length + (chosen.length > 1 ? 1 : 0);
    if (used > budget * 0.85) break;
  }
  const [best, ...more] = chosen;
  const body = best ? [best, ...more.sort((a, b) => a.i - b.i)].map((c) => c.text).join(' ') : clip(render(units[0] ?? { text: sectionText, items: [] }, 100_000) ?? sectionText, budget);
  const text = applyRedactions(`${body}\n${cite}`, redactions);
  return { text: text.length <= opts.maxChars ? text : `${clip(body, opts.maxChars - cite.length - 1)}\n${cite}`, citations: [citation], confidence, hits };
}

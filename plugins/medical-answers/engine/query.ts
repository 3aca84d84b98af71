/**
 * Follow-up condensation without a model: a question that leans on the conversation ("is it
 * contagious?", "how is that treated", "what about for kids") borrows the topic words of the person's
 * most recent message that had one. A question that names its own topic is returned unchanged.
 */
import { normalise, parseQuery, STOP_WORDS, words } from './text.js';

/** Words that point back at an earlier topic. */
const ANAPHORA = /\b(it|its|it's|this|that|these|those|they|them|the same|one|he|she|him|her|his)\b/;
/** Words that carry no topic: question cues and generic health words. */
const GENERIC = new Set(
  (
    'contagious serious dangerous bad common normal treat treated treatment treatments cure cured symptom symptoms sign signs cause causes ' +
    'caused prevent prevention diagnose diagnosed test tests risk outlook last long take help helps work works worse better go away ' +
    'about kids children adults women men pregnant pregnancy baby babies doctor see call hospital er emergency spread catch how what ' +
    'when why who where which worry worried sure ok okay thanks really also else has have had got gets think thought feel ' +
    'dad mom mum mother father son daughter wife husband partner brother sister friend grandma grandpa grandmother grandfather boyfriend girlfriend'
  ).split(' '),
);

function topicWords(text: string): string[] {
  return words(text).filter((w) => !STOP_WORDS.has(w) && !GENERIC.has(w) && w.length > 1 && !/^\d+$/.test(w));
}

/**
 * Whether a message leans on the conversation: a question with a pointer back (it, that, "what
 * about...") or without a topic of its own. "ok thanks" does not, nor does a question naming its topic.
 */
export function pointsBack(question: string): boolean {
  const q = question.trim();
  if (!q) return false;
  const own = topicWords(q);
  const n = normalise(q);
  const asks = /\?\s*$/.test(q) || /^(is|are|can|could|do|does|did|how|what|when|why|who|should|will|would|and|but|what about|how about)\b/.test(n);
  // "ok thanks" is not a question about the earlier topic.
  if (!asks && own.length === 0) return false;
  const leansBack = ANAPHORA.test(n) || /^(and|what about|how about|also|but)\b/.test(n) || own.length === 0;
  // A question with its own topic words and no pointer back stands alone.
  return leansBack && !(own.length >= 2 && !ANAPHORA.test(n));
}

export function condenseFollowUp(question: string, history: string[]): string {
  const q = question.trim();
  if (history.length === 0 || !pointsBack(q)) return q;
  const own = topicWords(q);
  for (let i = history.length - 1; i >= 0; i--) {
    const earlier = history[i]!;
    const topic = topicWords(earlier);
    if (topic.length === 0 || parseQuery(earlier).terms.length === 0) continue;
    // Only topic words are carried over; the earlier message's question type is not (this question's is kept).
    const extra = topic.filter((w) => !own.includes(w));
    if (extra.length === 0) return q;
    return `${q.replace(/[?.!\s]+$/, '')} (${extra.join(' ')})?`;
  }
  return q;
}

/**
 * A follow-up ("is it contagious?" after "my dad has shingles") rewritten by the tenant's chat model
 * into a standalone search question from the person's earlier messages. The rewrite is checked (one
 * line, bounded, a question rather than an answer or a refusal); a refused rewrite, a provider
 * failure, an open breaker or `followUps.condenseTimeoutMs` without an answer hands the question to
 * the rule-based condensation (engine/query.ts), so the person is answered either way.
 */
import type { StageContext } from 'parley';
import { condenseFollowUp, pointsBack } from './engine/query.js';
import { normalise } from './engine/text.js';
import type { RagMetrics } from './metrics.js';
import type { ChatModel } from './model-answer.js';
import type { MedicalAnswersSettings } from './settings.js';

export const CONDENSE_PURPOSE = 'medical-answers.condense';

export type Condensed = { ok: true; query: string } | { ok: false; reason: 'empty' | 'multiline' | 'too_long' | 'answer' };

/** `history`: the person's earlier messages, oldest first. */
export function condensePrompt(question: string, history: string[]): { role: 'system' | 'user'; content: string }[] {
  return [
    {
      role: 'system',
      content: [
        "You rewrite a person's latest text message to a clinic's health line into one standalone question for searching the clinic's health library.",
        "The earlier messages are the same person's own earlier texts, oldest first and newest last. They are context only: do not answer them.",
        'When the latest message refers back to them (it, that, this, they, "what about...", or a question with no subject), replace the reference with what it means, usually the condition, medicine or test named most recently.',
        "Keep what the latest message asks (contagious, symptoms, treatment, for kids...) and its details; do not add the earlier messages' questions, facts or guesses.",
        'When the latest message already stands alone, or the earlier messages are about something else, return it unchanged.',
        'Never answer the question, never give advice, never refuse.',
        'Reply with the question only: one line, no quotes, no label, no explanation, in the language of the latest message.',
      ].join(' '),
    },
    { role: 'user', content: `Earlier messages:\n${history.map((h, i) => `${i + 1}. ${oneLine(h)}`).join('\n')}\n\nLatest message: ${oneLine(question)}` },
  ];
}

/** The longest rewrite accepted: a question may gain a topic, not become an essay. */
export const maxCondensedChars = (question: string) => question.length * 3 + 200;

/** An answer, a refusal or a preamble instead of a question (English and Spanish openers, citation markers, more than one sentence). */
const NOT_A_QUESTION = [
  /^(yes|no|yeah|nope|sure|s[ií]|claro)\s*[,.!:;]/i,
  /^(sorry|lo siento|disculp)/i,
  /^(i'?m|i am) (sorry|unable|not able)\b/i,
  /^i (can ?not|can'?t|won'?t) (help|answer|assist|provide|rewrite|do that)\b/i,
  /^(as an ai|here('s| is)|the (standalone|rewritten) question)\b/i,
  /\[\d+\]|NO_ANSWER/,
  /[.!?]\s+\p{L}/u,
];

/** Checks the model's rewrite; a label ("Question:") or wrapping quotes are taken off first. */
export function parseCondensed(raw: string, question: string): Condensed {
  const text = raw
    .trim()
    .replace(/^(standalone |rewritten )?(search )?question\s*:\s*/i, '')
    .replace(/^["'“«]+|["'”»]+$/g, '')
    .trim();
  if (!text) return { ok: false, reason: 'empty' };
  if (/[\r\n]/.test(text)) return { ok: false, reason: 'multiline' };
  if (text.length > maxCondensedChars(question)) return { ok: false, reason: 'too_long' };
  if (NOT_A_QUESTION.some((re) => re.test(text))) return { ok: false, reason: 'answer' };
  return { ok: true, query: normalise(text) === normalise(question) ? question : text };
}

/**
 * The search question for a message with follow-up history (`history` newest last, not empty). The
 * model is asked only for a question that points back (`pointsBack`), when the tenant has a chat
 * model and `followUps.condenseWithModel`; every path counts `parley_rag_condense_total{result}`.
 */
export async function condenseQuery(stage: StageContext<MedicalAnswersSettings>, question: string, history: string[], chat: ChatModel | null, metrics: RagMetrics): Promise<string> {
  const tenant = stage.tenant.id;
  const { condenseWithModel, condenseTimeoutMs } = stage.settings.followUps;
  const rules = (result: 'rules' | 'fallback') => {
    metrics.condense.inc({ tenant, result });
    return condenseFollowUp(question, history);
  };
  if (!chat || !condenseWithModel || !pointsBack(question)) return rules('rules');
  const deadline = AbortSignal.timeout(condenseTimeoutMs);
  try {
    const { text } = await chat.invoke(condensePrompt(question, history), {
      purpose: CONDENSE_PURPOSE,
      ref: stage.message.id,
      signal: deadline,
      // One fixed cap, so the AI service keeps one model per cap; the length check bounds the rest.
      maxTokens: 200,
    });
    const condensed = parseCondensed(text, question);
    if (!condensed.ok) {
      stage.log.warn({ reason: condensed.reason, model: chat.model }, 'medical-answers: the model rewrite of a follow-up was refused; the rules rewrite it');
      return rules('fallback');
    }
    metrics.condense.inc({ tenant, result: 'model' });
    return condensed.query;
  } catch (error) {
    // Timeouts, provider failures and an open breaker (the AI service alerts) alike: the rules answer.
    // `timedOut`: followUps.condenseTimeoutMs ran out (the AI service reports it as an aborted call).
    stage.log.warn({ code: (error as { code?: unknown }).code, timedOut: deadline.aborted, reason: (error as Error).message, model: chat.model }, 'medical-answers: the chat model could not rewrite a follow-up; the rules rewrite it');
    return rules('fallback');
  }
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/**
 * The `medical-answers` stage: a health question gets an answer from the tenant's library with its
 * source, or, when the library is not sure enough, the tenant's safe fallback (and a person, if the
 * tenant wants). A message that is not a health question passes on to later stages; one that
 * crisis-guard found in danger never gets a search result (crisis-guard has answered it).
 */
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import type { StageContext, StageDefinition } from 'parley';
import { AnswerCache, type CachedAnswer } from './cache.js';
import type { AnswerLog } from './answer-log.js';
import { condenseQuery } from './condense.js';
import { confidenceParts } from './engine/confidence.js';
import { errandIntent, type ErrandIntent } from './engine/errands.js';
import { applyRedactions, composeAnswer, DEFAULT_REDACTIONS, GSM_LOOKALIKES, type LinkOf } from './engine/answer.js';
import { linkCode } from './engine/store.js';
import type { Hit } from './engine/types.js';
import type { Library } from './library.js';
import type { QueryOutcome, RagMetrics } from './metrics.js';
import { fit, groundedPrompt, parseGrounded, type ChatModel } from './model-answer.js';
import { LINK_PATH } from './routes.js';
import type { MedicalAnswersSettings } from './settings.js';

export const STAGE = 'medical-answers';
/** Set by crisis-guard on a message in present danger. */
const CRISIS_ANNOTATION = 'crisis';
/** The health factor (engine/confidence.ts) from which a text's words clearly ask a health question: never passed on as something else. */
const CLEARLY_HEALTH = 0.9;

export interface StageDeps {
  library: Library;
  log: AnswerLog;
  cache: AnswerCache;
  metrics: RagMetrics;
  chat(tenantId: string): ChatModel | null;
  /** The tenant's embeddings model when it is not the local one (its index was built with it). */
  embeddings(tenantId: string): EmbeddingsInterface | null;
  /** Whether a start-up ingest is configured for the tenant (the stage then says "still loading"). */
  autoIngest(tenantId: string): boolean;
  /** `server.publicBaseUrl`, where short source links are served; null when unset. */
  linkBase: string | null;
}

/**
 * The links an answer's source line carries on CHANNEL: none on a call (a link read out is noise), a
 * short link where the tenant's `shortLinks` and `server.publicBaseUrl` allow it and it is shorter
 * than the page's own, else the page's own.
 */
export function linksFor(channel: string, tenantId: string, shortLinks: MedicalAnswersSettings['shortLinks'], linkBase: string | null): boolean | LinkOf {
  if (channel.endsWith('voice')) return false;
  const sms = channel.endsWith('sms');
  if (!linkBase || shortLinks === 'off' || ((shortLinks === 'auto' || shortLinks === 'sms') && !sms)) return true;
  const base = linkBase.replace(/\/+$/, '');
  return (doc) => {
    const short = `${base}${LINK_PATH}/${linkCode(tenantId, doc.docId)}`;
    // Only a web page's link is shortened (the redirect follows http and https only).
    return doc.url && /^https?:\/\//i.test(doc.url) && short.length < doc.url.length ? short : null;
  };
}

export function budgetFor(channel: string, maxChars: MedicalAnswersSettings['maxChars']): number {
  if (channel.endsWith('sms')) return maxChars.sms;
  if (channel.startsWith('whatsapp')) return maxChars.whatsapp;
  if (channel.endsWith('voice')) return maxChars.voice;
  return maxChars.default;
}

export function redactionsFor(settings: MedicalAnswersSettings): { pattern: string; replacement: string }[] {
  return [...(settings.builtinRedactions ? DEFAULT_REDACTIONS : []), ...settings.redactions];
}

/** The earlier messages of the person within the follow-up window, newest last. */
async function followUpHistory(stage: StageContext<MedicalAnswersSettings>): Promise<string[]> {
  const { messages, withinMinutes } = stage.settings.followUps;
  if (messages === 0) return [];
  const since = stage.message.receivedAt.getTime() - withinMinutes * 60_000;
  const earlier = await stage.history(messages * 3);
  return earlier
    .filter((h) => h.direction === 'in' && h.at.getTime() >= since && h.text.trim())
    .slice(-messages)
    .map((h) => h.text);
}

export function medicalAnswersStage(deps: StageDeps): StageDefinition<MedicalAnswersSettings> {
  const { library, metrics } = deps;
  return {
    name: STAGE,
    async handle(stage, next) {
      const { tenant, message, settings } = stage;
      const record = (outcome: QueryOutcome, extra: Partial<{ answer: CachedAnswer; followUp: boolean; cached: boolean; errand: string }> = {}) => {
        metrics.queries.inc({ tenant: tenant.id, outcome });
        stage.annotate(STAGE, { outcome, confidence: extra.answer?.confidence ?? null, citations: extra.answer?.citations ?? [], answerer: extra.answer?.answerer ?? null, ...(extra.errand ? { errand: extra.errand } : {}) });
        return deps.log.record({
          tenantId: tenant.id,
          messageId: message.id,
          conversationId: message.conversationId,
          outcome,
          answerer: extra.answer?.answerer ?? null,
          confidence: extra.answer?.confidence ?? null,
          docIds: extra.answer?.citations.map((c) => c.docId) ?? [],
          followUp: extra.followUp ?? false,
          cached: extra.cached ?? false,
          errand: extra.errand ?? null,
        });
      };

      if (stage.annotations[CRISIS_ANNOTATION]) {
        // crisis-guard has answered with help; nothing after it (a search result, a keyword reply) may.
        await record('crisis');
        return;
      }
      const question = message.text.trim();
      if (!question) return next();

      const status = await library.status(tenant.id);
      if (status.chunks === 0) {
        // Later stages (keyword replies) still answer what they know; a question nobody answered is told
        // the truth, and an errand (read from its words alone: there is no library to search) gets its reply.
        const loading = Boolean(library.progress(tenant.id)) || deps.autoIngest(tenant.id);
        const errand = confidenceParts([], question).health < 0.5 ? errandOf(stage, question, metrics) : null;
        await next();
        if (loading && stage.replies.length === 0) await record('loading', errand ? { errand } : {});
        settleErrand(stage, errand, loading ? settings.loadingReply : settings.offTopicReply);
        return;
      }

      const chat = deps.chat(tenant.id);
      const history = await followUpHistory(stage);
      const query = history.length ? await condenseQuery(stage, question, history, chat, metrics) : question;
      const followUp = query !== question;
      const maxChars = budgetFor(message.channel, settings.maxChars);
      // An SMS answer keeps to GSM-7 characters, or its segments would hold 70 characters instead of 160.
      const sms = message.channel.endsWith('sms');
      // A call hears its answer: the source is the page's title, without a link read out character by
      // character. An SMS carries a short link where the tenant has them.
      const links = linksFor(message.channel, tenant.id, settings.shortLinks, deps.linkBase);
      const disclaimer = sms ? applyRedactions(settings.disclaimer.trim(), GSM_LOOKALIKES) : settings.disclaimer.trim();
      const budget = disclaimer ? maxChars - disclaimer.length - 1 : maxChars;
      const key = AnswerCache.key(`${status.corpusVersion ?? ''}${sms ? '|gsm' : ''}${links === false ? '|spoken' : typeof links === 'function' ? '|short' : ''}`, maxChars, query);
      const cachedAnswer = deps.cache.get(tenant.id, key);
      metrics.cache.inc({ tenant: tenant.id, result: cachedAnswer ? 'hit' : 'miss' });

      let answer = cachedAnswer;
      if (!answer) {
        const started = performance.now();
        const endRetrieval = metrics.retrieval.startTimer({ tenant: tenant.id });
        const embeddings = deps.embeddings(tenant.id);
        const hits = await library.store.search(tenant.id, query, { k: 10, ...(embeddings ? { embeddings, onEmbedError: (error) => lexicalOnly(stage, error, metrics) } : {}) });
        endRetrieval();
        const redactions = sms ? [...redactionsFor(settings), ...GSM_LOOKALIKES] : redactionsFor(settings);
        const extractive = composeAnswer(query, hits, { maxChars: budget, minConfidence: 0, redactions, links });
        const confidence = extractive?.confidence ?? 0;
        metrics.confidence.observe({ tenant: tenant.id }, confidence);
        // Not taken for a health question: too little found, or not sure of the answer and the words
        // more likely something else ("what are your opening times?", "can i move my appt"). Words that
        // clearly ask a health question are never passed on: when the library has nothing for them
        // ("how long does a bruise take to fade" to a clinic with 19 pages) they get the fallback.
        const health = confidenceParts(hits, question).health;
        if (((!extractive || confidence < settings.passBelow) && health < CLEARLY_HEALTH) || (confidence < settings.minConfidence && health < 0.5)) {
          const errand = errandOf(stage, question, metrics);
          await record('passed', { followUp, errand: errand ?? 'unknown' });
          await next();
          settleErrand(stage, errand, settings.offTopicReply);
          return;
        }
        const unsure = confidence < settings.minConfidence;
        // A chat model answers from the passages when there is one; below minConfidence only when the
        // tenant asks for its second opinion, and "cannot answer" (or an invalid answer) keeps the fallback.
        const read = chat && extractive && (!unsure || settings.askModelWhenUnsure) ? await modelAnswer(stage, chat, query, hits.slice(0, settings.passages), budget, links, deps) : null;
        const fromModel = read?.ok ? read : null;
        // The model read the passages and found no answer in them: the extractive answer, chosen by how
        // well the page matches the question's words, would be from a page that does not say what was
        // asked ("can i take ibuprofen with high blood pressure" gets the blood pressure ranges).
        const declined = read !== null && !read.ok && read.reason === 'no_answer' && settings.fallbackWhenModelDeclines;
        if (!extractive || ((unsure || declined) && !fromModel)) {
          await record('fallback', { followUp, answer: { text: '', citations: [], confidence, answerer: declined ? 'model' : 'extractive' } });
          stage.reply(settings.fallbackReply);
          if (settings.handoffWhenUnsure && stage.conversation.handoff !== 'human') stage.handoff('human', 'medical-answers: not certain enough to answer');
          return;
        }
        answer = fromModel
          ? { text: applyRedactions(fromModel.text, redactions), citations: fromModel.citations, confidence, answerer: 'model' }
          : { text: extractive.text, citations: extractive.citations, confidence, answerer: 'extractive' };
        metrics.answer.observe({ tenant: tenant.id, answerer: answer.answerer }, (performance.now() - started) / 1000);
        deps.cache.set(tenant.id, key, answer, settings.cache.ttlSeconds, settings.cache.maxEntries);
      }
      await record('answered', { answer, followUp, cached: Boolean(cachedAnswer) });
      const text = disclaimer && answer.text.length + disclaimer.length + 1 <= maxChars ? `${answer.text}\n${disclaimer}` : fit(answer.text, maxChars);
      stage.reply(text);
    },
  };
}

/**
 * Which errand a message that is not a health question is, when one is likely enough: later stages read
 * it in the annotation, and the tenant's reply for it is sent when none of them answers.
 */
function errandOf(stage: StageContext<MedicalAnswersSettings>, question: string, metrics: RagMetrics): ErrandIntent | null {
  const read = errandIntent(question);
  const errand = read.probability >= stage.settings.errands.minProbability ? read.intent : null;
  metrics.errands.inc({ tenant: stage.tenant.id, intent: errand ?? 'unknown' });
  return errand;
}

/** After later stages: the errand's reply (else `otherwise`) when none answered; a person for the errands the tenant hands over. */
function settleErrand(stage: StageContext<MedicalAnswersSettings>, errand: ErrandIntent | null, otherwise: string | undefined): void {
  const reply = (errand && stage.settings.errands.replies[errand]) || otherwise;
  if (stage.replies.length === 0 && reply) stage.reply(reply);
  if (errand && stage.settings.errands.handoff.includes(errand) && stage.conversation.handoff !== 'human') stage.handoff('human', `medical-answers: ${errand} errand`);
}

/**
 * The question's embedding was refused (a spent ai budget: cost-guard refuses embeddings rather than
 * degrade them) or failed: retrieval goes on lexical-only, counted and logged (no question text).
 * Anything that is not a coded AI error still fails the stage.
 */
function lexicalOnly(stage: StageContext<MedicalAnswersSettings>, error: unknown, metrics: RagMetrics): void {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('PARLEY_AI_')) throw error;
  metrics.lexicalOnly.inc({ tenant: stage.tenant.id, reason: code });
  stage.log.warn({ code, reason: (error as Error).message }, 'medical-answers: the question could not be embedded; answering from lexical retrieval alone');
}

async function modelAnswer(stage: StageContext<MedicalAnswersSettings>, chat: ChatModel, question: string, hits: Hit[], budget: number, links: boolean | LinkOf, deps: StageDeps) {
  const tenant = stage.tenant.id;
  try {
    const { text } = await chat.invoke(groundedPrompt(question, hits, budget), { purpose: 'medical-answers.answer', ref: stage.message.id, maxTokens: Math.ceil(budget / 2) + 50 });
    const parsed = parseGrounded(text, hits, budget, links);
    deps.metrics.modelAnswers.inc({ tenant, result: parsed.ok ? 'grounded' : parsed.reason });
    if (!parsed.ok) stage.log.warn({ reason: parsed.reason, model: chat.model }, parsed.reason === 'no_answer' ? 'the model found no answer in the passages' : 'the model answer was refused; sending the extractive answer');
    return parsed;
  } catch (error) {
    // The AI service retried and may have opened its breaker (and alerted): the extractive answer stands.
    deps.metrics.modelAnswers.inc({ tenant, result: 'unavailable' });
    stage.log.warn({ err: error, model: chat.model }, 'the chat model failed; sending the extractive answer');
    return null;
  }
}

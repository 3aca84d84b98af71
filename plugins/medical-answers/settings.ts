/** Per-tenant settings of `medical-answers` (`tenants[].plugins.medical-answers`), documented in the README. */
import { z } from 'zod';
import { ERRAND_INTENTS } from './engine/errands.js';

const redactionSchema = z
  .object({
    /** A regular expression (case-insensitive) matched anywhere in an answer. */
    pattern: z.string().min(1),
    /** What replaces it (`$&` keeps the match). Empty: the match is removed. */
    replacement: z.string().default(''),
  })
  .superRefine((r, ctx) => {
    try {
      new RegExp(r.pattern, 'giu');
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: `not a valid regular expression: ${(error as Error).message}` });
    }
  });

export const settingsSchema = z.object({
  /**
   * A corpus ingested at start when the tenant's index is empty or the file changed (JSONL like the
   * shared MedQuAD corpus, or a folder of Markdown, HTML or text files): an absolute path or one
   * relative to the configuration file. Omit it and ingest with `parley ingest --tenant <id> PATH`.
   */
  corpus: z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined)),
  /**
   * Index each document with the words people use for its topic, so that a description without the
   * medical term ("my knees grind and creak") finds the page (engine/lay.ts): `true`, the engine's
   * built-in vocabulary (the 1,537 topics of the shipped corpus, matched by a document's title or
   * synonym); `false`, none; a path (relative to the configuration file), a JSONL file of the
   * deployment's own topics, `{"title": "...", "lay": ["...", ...]}` per line, added to the built-in.
   * The phrases are never quoted in an answer. A change re-indexes the library at the next start.
   */
  layPhrases: z.union([z.boolean(), z.string().min(1)]).default(true),
  /** Answer length by channel, in characters (SMS: 2 segments of 153 characters by default). */
  maxChars: z
    .object({
      sms: z.number().int().min(80).max(1600).default(306),
      whatsapp: z.number().int().min(80).max(4096).default(900),
      voice: z.number().int().min(80).max(1600).default(400),
      default: z.number().int().min(80).max(4096).default(900),
    })
    .default({ sms: 306, whatsapp: 900, voice: 400, default: 900 }),
  /**
   * Below this confidence (0..1) the person gets `fallbackReply` instead of an answer. The confidence
   * (engine/confidence.ts: the chance that the text is a health question times the chance that the
   * top page answers it) is fitted on health questions and on texts that are not (train/README.md).
   * At 0.12, the eleven sets of hand-written questions it never saw (eval/sets, 1,600) are not
   * answered 0–3.5% of the time (1.8% pooled), and 25 of 429 test errands get an answer (23 before the
   * idf's prior and the `elsewhere` signal, 2026-12-04; 19 and 2.4% before the library's size became a signal, 2026-12-03's
   * seventh session; 11 at 0.15, with up to 6%
   * of a set not answered). Before 2026-12-03's fifth session the default was 0.15, with
   * a confidence that answered 56 of the 429 and left up to 6% of a set unanswered.
   */
  minConfidence: z.number().min(0).max(1).default(0.12),
  /**
   * Below this confidence the message is not taken for a health question at all ("what are your
   * hours?") and passes on to later stages (keyword replies, a default reply). Below `minConfidence`
   * it also passes on when its words are more likely something other than a health question (the
   * confidence's health factor under one half, engine/confidence.ts). Words that clearly ask a health
   * question (that factor 0.9 or more) never pass on: with nothing in the library for them they get
   * `fallbackReply` ("how long does a bruise take to fade" to a clinic with a few dozen pages).
   */
  passBelow: z.number().min(0).max(1).default(0.08),
  fallbackReply: z
    .string()
    .min(1)
    .max(1600)
    .default("I'm not certain about that one, so I won't guess. Please ask your clinician or pharmacist. If it is urgent, call 911."),
  /** Sent while the library's first ingest runs, to a message no later stage answered. */
  loadingReply: z
    .string()
    .min(1)
    .max(1600)
    .default("I'm still loading my health library. Please ask again in a minute. If it is urgent, call 911."),
  /** Sent when a message is not a health question and no later stage answered it (omit: stay silent). */
  offTopicReply: z.string().min(1).max(1600).optional(),
  /**
   * Clinic errands in the tenant's own words. A message that is not a health question is read for
   * which errand it is (engine/errands.ts: appointment, refill, results, billing, service, message,
   * social); when no later stage answered it and the errand is at least `minProbability` likely, it
   * gets that errand's reply here instead of `offTopicReply` ("For refills, call the pharmacy line at
   * ..."). Measured with each of five writers' errands left out of the fit in turn, at 0.7: 77% of
   * errands get their errand's reply and 94% of those are the right one (train/README.md).
   */
  errands: z
    .object({
      replies: z.partialRecord(z.enum(ERRAND_INTENTS), z.string().min(1).max(1600)).default({}),
      minProbability: z.number().min(0).max(1).default(0.7),
      /** Errands whose conversation is handed to a person after the reply (for example `message`: "please tell dr. lee ..."). */
      handoff: z.array(z.enum(ERRAND_INTENTS)).default([]),
    })
    .strict()
    .default({ replies: {}, minProbability: 0.7, handoff: [] }),
  /**
   * With a chat model: a health question below `minConfidence` is put to the model over the retrieved
   * passages before the fallback is sent; a grounded answer citing passages that exist is sent instead
   * (the model's second opinion), "cannot answer" or an invalid answer keeps the fallback.
   */
  askModelWhenUnsure: z.boolean().default(true),
  /**
   * With a chat model: when it reads the passages and finds no answer in them (`NO_ANSWER`), the
   * fallback is sent, not the extractive answer (whose page matched the words, not the question).
   * false: the extractive answer goes out as before. An invalid answer or a model that is down always
   * leaves the extractive answer.
   */
  fallbackWhenModelDeclines: z.boolean().default(true),
  /** Hand the conversation to a person when the answer is not certain enough (the fallback is still sent). */
  handoffWhenUnsure: z.boolean().default(false),
  /** Appended to every answer when it fits the length budget (empty: none). */
  disclaimer: z.string().max(300).default('Not medical advice.'),
  /**
   * Which answers carry a short source link, `<server.publicBaseUrl>/l/<code>` (a 302 to the page), in
   * place of the page's own link, where it is shorter: `auto` (default) SMS answers when
   * `server.publicBaseUrl` is set; `sms`; `all` (SMS, WhatsApp, http; a call reads no link); `off`.
   * `sms` and `all` need `server.publicBaseUrl` (the start fails without it). On SMS the source line
   * (title and link) took 84 characters of a 306-character answer on average, and with a 38-character short link 32 more of
   * 1,654 hand-written questions got the key fact into the SMS reply (eval/README.md, 2026-12-04).
   */
  shortLinks: z.enum(['auto', 'sms', 'all', 'off']).default('auto'),
  /** Replacements applied to every answer after the built-in ones (retired crisis numbers). */
  redactions: z.array(redactionSchema).default([]),
  /** Keep the built-in replacements (1-800-273-TALK and 1-800-273-8255 become 988). */
  builtinRedactions: z.boolean().default(true),
  /** Follow-ups ("is it contagious?") use the person's earlier messages within this window. */
  followUps: z
    .object({
      messages: z.number().int().min(0).max(10).default(3),
      withinMinutes: z.number().int().min(1).max(24 * 60).default(30),
      /**
       * With a chat model (tenant `ai.chat`), a follow-up that points back is rewritten by the model
       * into a standalone question; the rules rewrite it when this is off, the tenant has no model, or
       * the model fails.
       */
      condenseWithModel: z.boolean().default(true),
      /** The longest the answer waits for the model's rewrite (retries included) before the rules rewrite it. */
      condenseTimeoutMs: z.number().int().min(100).max(60_000).default(4000),
    })
    .default({ messages: 3, withinMinutes: 30, condenseWithModel: true, condenseTimeoutMs: 4000 }),
  /** Repeated questions are answered from memory (per tenant, normalised question and corpus version). */
  cache: z
    .object({
      ttlSeconds: z.number().int().min(0).max(7 * 24 * 3600).default(3600),
      maxEntries: z.number().int().min(0).max(100_000).default(2000),
    })
    .default({ ttlSeconds: 3600, maxEntries: 2000 }),
  /** With a chat model (tenant `ai.chat`): how many retrieved passages it may read. */
  passages: z.number().int().min(1).max(10).default(4),
});

export type MedicalAnswersSettings = z.output<typeof settingsSchema>;

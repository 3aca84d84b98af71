/** The plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';

export type QueryOutcome = 'answered' | 'fallback' | 'crisis' | 'passed' | 'loading';

export function ragMetrics(metrics: PluginMetrics, collectChunks: (set: (tenant: string, chunks: number) => void) => Promise<void>) {
  return {
    queries: metrics.counter({ name: 'parley_rag_queries_total', help: 'Messages medical-answers saw, by tenant and outcome (answered, fallback, crisis, passed: not a health question, loading: index not ready)', labelNames: ['tenant', 'outcome'] as const }),
    errands: metrics.counter({ name: 'parley_rag_errands_total', help: 'Messages medical-answers passed on as not a health question, by tenant and the errand they read as (appointment, refill, results, billing, service, message, social; unknown: no errand likely enough)', labelNames: ['tenant', 'intent'] as const }),
    retrieval: metrics.histogram({ name: 'parley_rag_retrieval_duration_seconds', help: 'Hybrid retrieval time per question', labelNames: ['tenant'] as const, buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1] }),
    answer: metrics.histogram({ name: 'parley_rag_answer_duration_seconds', help: 'Time from question to answer text, by answerer (extractive, model)', labelNames: ['tenant', 'answerer'] as const, buckets: [0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20] }),
    confidence: metrics.histogram({ name: 'parley_rag_confidence', help: 'Confidence of the best answer per question (0..1)', labelNames: ['tenant'] as const, buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] }),
    cache: metrics.counter({ name: 'parley_rag_cache_requests_total', help: 'Answer cache lookups, by tenant and result (hit, miss)', labelNames: ['tenant', 'result'] as const }),
    modelAnswers: metrics.counter({ name: 'parley_rag_model_answers_total', help: 'Chat-model answers, by result (grounded; no_answer: the passages do not answer, the fallback unless fallbackWhenModelDeclines is off; invalid_citations or unavailable: the extractive answer)', labelNames: ['tenant', 'result'] as const }),
    condense: metrics.counter({ name: 'parley_rag_condense_total', help: 'Messages with follow-up history, by who wrote the search question (model: the chat model; rules: the rules, the model was not asked; fallback: the model failed or its rewrite was refused, the rules wrote it)', labelNames: ['tenant', 'result'] as const }),
    lexicalOnly: metrics.counter({ name: 'parley_rag_lexical_only_total', help: "Questions answered from lexical retrieval alone because their embedding was not made, by tenant and the AI error's code (PARLEY_AI_REFUSED: a budget refused it; PARLEY_AI_UNAVAILABLE...)", labelNames: ['tenant', 'reason'] as const }),
    linkOpens: metrics.counter({ name: 'parley_rag_source_link_opens_total', help: "Short source links opened (GET /l/:code, 302 to the page), by the tenant whose answer sent it; a link preview counts too", labelNames: ['tenant'] as const }),
    mode: metrics.gauge({ name: 'parley_rag_retrieval_mode', help: '1 for the retrieval mode in use (hybrid: full text + pgvector; lexical: the database has no vector extension)', labelNames: ['mode'] as const }),
    chunks: metrics.gauge({
      name: 'parley_rag_chunks',
      help: 'Chunks in each tenant index',
      labelNames: ['tenant'] as const,
      async collect() {
        await collectChunks((tenant, chunks) => this.set({ tenant }, chunks));
      },
    }),
  };
}

export type RagMetrics = ReturnType<typeof ragMetrics>;

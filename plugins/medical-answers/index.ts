/**
 * `medical-answers`: answers health questions from the tenant's own vetted documents with their
 * source, says when it is not sure, and follows a conversation ("is it contagious?"). Retrieval is
 * hybrid (PostgreSQL full text + pgvector, fused by reciprocal rank; lexical only on a database without
 * the vector extension); answers are extractive, or written by the tenant's chat model from the
 * retrieved passages with checked citations. See README.md.
 */
import { resolve } from 'node:path';
import { ConfigError, definePlugin, type AiEmbeddings } from 'parley';
import { AnswerLog, logMigrations } from './answer-log.js';
import { AnswerCache } from './cache.js';
import { openCorpus } from './corpus.js';
import { MedicalStore } from './engine/store.js';
import { Library, progressLine } from './library.js';
import { ragMetrics } from './metrics.js';
import { libraryRoutes, sourceLinkRoute } from './routes.js';
import { settingsSchema } from './settings.js';
import { layPhrasesSetting, type LayPhrases } from './lay-file.js';
import { medicalAnswersStage, STAGE } from './stage.js';

export { openCorpus, CorpusError, type CorpusSource } from './corpus.js';
export { Library, progressLine } from './library.js';
export { MedicalStore } from './engine/store.js';
export { settingsSchema, type MedicalAnswersSettings } from './settings.js';
export { layPhrasesSetting, readLayPhrasesFile } from './lay-file.js';

export const migrations = [...MedicalStore.migrations(), ...logMigrations];

export default definePlugin({
  name: 'medical-answers',
  kind: 'capability',
  description: "Answers health questions from the tenant's documents with citations and a confidence threshold (hybrid full-text + pgvector retrieval).",
  settingsSchema,
  setup(ctx) {
    const store = new MedicalStore(ctx.db, { log: ctx.log });
    const library = new Library(store, ctx.log);
    const log = new AnswerLog(ctx.db);
    const cache = new AnswerCache();
    // A tenant whose `ai.embeddings` is a real model embeds its library and its questions with it.
    const queryEmbeddings = new Map<string, AiEmbeddings>();
    for (const { tenant } of ctx.tenants()) {
      const embeddings = ctx.ai.embeddings(tenant.id, { purpose: 'medical-answers.query' });
      if (embeddings) queryEmbeddings.set(tenant.id, embeddings);
    }
    let mode: { mode: 'hybrid' | 'lexical'; reason?: string } = { mode: 'lexical', reason: 'not started' };
    const tenants = () => ctx.tenants().map((t) => t.tenant.id);
    const metrics = ragMetrics(ctx.metrics, async (set) => {
      for (const tenantId of tenants()) set(tenantId, (await library.status(tenantId)).chunks);
    });

    // A corpus that is not there fails at start, naming the tenant and key, not minutes later in a log.
    const problems: string[] = [];
    const layPhrases = new Map<string, LayPhrases>();
    for (const { tenant, settings } of ctx.tenants()) {
      try {
        layPhrases.set(tenant.id, layPhrasesSetting(settings.layPhrases, ctx.configDir));
      } catch (error) {
        problems.push(`${ctx.configPath(tenant.id)}.layPhrases: ${(error as Error).message}`);
      }
      if ((settings.shortLinks === 'sms' || settings.shortLinks === 'all') && !ctx.publicBaseUrl) problems.push(`${ctx.configPath(tenant.id)}.shortLinks: "${settings.shortLinks}" needs server.publicBaseUrl, where the links are served (or "auto": short links whenever it is set)`);
      if (!settings.corpus) continue;
      try {
        openCorpus(resolve(ctx.configDir, settings.corpus));
      } catch (error) {
        problems.push(`${ctx.configPath(tenant.id)}.corpus: ${(error as Error).message}`);
      }
    }
    if (problems.length) throw new ConfigError(problems);

    ctx.migrations(migrations);
    ctx.dataSubjects(log.dataSubjectProvider());
    ctx.stage(
      medicalAnswersStage({
        library,
        log,
        cache,
        metrics,
        chat: (tenantId) => ctx.ai.chat(tenantId),
        embeddings: (tenantId) => queryEmbeddings.get(tenantId) ?? null,
        autoIngest: (tenantId) => Boolean(ctx.settingsFor(tenantId)?.corpus),
        linkBase: ctx.publicBaseUrl ?? null,
      }),
    );
    ctx.routes(libraryRoutes({ library, log, enabled: (tenantId) => ctx.settingsFor(tenantId) !== undefined }));
    ctx.routes(sourceLinkRoute({ store, tenants, metrics }));
    ctx.health({
      name: STAGE,
      // An empty library while its corpus loads is reported, not a reason to take the gateway out of service.
      critical: false,
      async check() {
        const info: Record<string, unknown> = { retrieval: mode.mode, ...(mode.reason ? { lexicalOnlyBecause: mode.reason } : {}) };
        let ok = true;
        for (const tenantId of tenants()) {
          const status = await library.status(tenantId);
          const progress = library.progress(tenantId);
          const error = library.error(tenantId);
          if (error) ok = false;
          info[tenantId] = {
            docs: status.docs,
            chunks: status.chunks,
            lastIngestAt: status.lastIngestAt,
            corpusVersion: status.corpusVersion,
            embedder: status.embedder,
            ...(progress ? { ingest: progressLine(progress) } : {}),
            ...(error ? { lastError: error.message } : {}),
          };
        }
        return { ok, ...(ok ? {} : { detail: 'a corpus ingest failed' }), info };
      },
    });

    /** Ingests a tenant's configured corpus when the library is empty or the file changed since. */
    async function ingestConfigured(tenantId: string, path: string): Promise<void> {
      const source = openCorpus(resolve(ctx.configDir, path));
      // Set for every tenant, or the start failed on its `layPhrases`.
      const lay = layPhrases.get(tenantId)!;
      // The corpus as indexed: its files and the lay phrases its documents are indexed with.
      const indexed = `${source.fingerprint}/lay:${lay.fingerprint()}`;
      const [status, fingerprint] = await Promise.all([library.status(tenantId, true), log.sourceFingerprint(tenantId, source.path)]);
      if (status.chunks > 0 && fingerprint === indexed) {
        ctx.log.info({ tenant: tenantId, docs: status.docs, chunks: status.chunks }, 'medical-answers: library loaded');
        return;
      }
      const total = await source.count();
      ctx.log.info({ tenant: tenantId, corpus: source.path, docs: total }, 'medical-answers: ingesting the corpus (answers start when it is done)');
      let lastLine = 0;
      const embeddings = ctx.ai.embeddings(tenantId, { purpose: 'medical-answers.ingest' });
      const result = await library.ingest(tenantId, source.docs(), {
        total,
        ...(embeddings ? { embeddings, embedderName: `${embeddings.provider}/${embeddings.model}` } : {}),
        signal: stopping.signal,
        layPhrases: lay.vocabulary,
        onProgress: (p) => {
          if (Date.now() - lastLine < 5_000) return;
          lastLine = Date.now();
          ctx.log.info({ tenant: tenantId }, `medical-answers: ${progressLine(p)}`);
        },
      });
      if (result === 'busy') return;
      await log.saveSourceFingerprint(tenantId, source.path, indexed);
      cache.clearTenant(tenantId);
      ctx.log.info({ tenant: tenantId, ...result }, 'medical-answers: library ready');
    }

    // Not ctx.background: shutdown must not wait for a long ingest, it interrupts it (the next start resumes).
    const stopping = new AbortController();
    const ingests: Promise<void>[] = [];
    return {
      async stop() {
        stopping.abort();
        await Promise.allSettled(ingests);
      },
      async start() {
        mode = await store.init();
        metrics.mode.set({ mode: mode.mode }, 1);
        metrics.mode.set({ mode: mode.mode === 'hybrid' ? 'lexical' : 'hybrid' }, 0);
        if (mode.mode === 'lexical') ctx.log.warn({ reason: mode.reason }, 'medical-answers: lexical retrieval only (no pgvector on this database)');
        for (const { tenant, settings } of ctx.tenants()) {
          if (!settings.corpus) continue;
          ingests.push(
            ingestConfigured(tenant.id, settings.corpus).catch((error: unknown) => {
              if (!stopping.signal.aborted) ctx.log.error({ err: error, tenant: tenant.id }, 'medical-answers: the corpus ingest failed; /readyz shows the error');
            }),
          );
        }
      },
    };
  },
});

/**
 * A tenant's health library as the plugin sees it: the engine's store plus what is happening to it
 * (an ingest in progress, its progress, its last error) and a short-lived copy of its status, so the
 * stage does not ask the database on every message whether the corpus changed.
 */
import type { Logger } from 'pino';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import type { MedicalStore } from './engine/store.js';
import type { CorpusDoc } from './engine/types.js';
import type { LayVocabulary } from './engine/lay.js';

export type LibraryStatus = Awaited<ReturnType<MedicalStore['status']>>;

export interface IngestProgress {
  phase: string;
  done: number;
  total?: number | undefined;
  startedAt: Date;
}

export type IngestResult = Awaited<ReturnType<MedicalStore['ingest']>>;

const STATUS_TTL_MS = 5_000;

export class Library {
  private readonly ingesting = new Map<string, IngestProgress>();
  private readonly lastError = new Map<string, { at: Date; message: string }>();
  private readonly statusCache = new Map<string, { status: LibraryStatus; at: number }>();

  constructor(
    readonly store: MedicalStore,
    private readonly log: Logger,
  ) {}

  progress(tenantId: string): IngestProgress | undefined {
    return this.ingesting.get(tenantId);
  }

  error(tenantId: string): { at: Date; message: string } | undefined {
    return this.lastError.get(tenantId);
  }

  async status(tenantId: string, fresh = false): Promise<LibraryStatus> {
    const cached = this.statusCache.get(tenantId);
    if (!fresh && cached && Date.now() - cached.at < STATUS_TTL_MS) return cached.status;
    const status = await this.store.status(tenantId);
    this.statusCache.set(tenantId, { status, at: Date.now() });
    return status;
  }

  /** Ingests `docs` for a tenant; one ingest per tenant at a time (a second is refused with `busy`). */
  async ingest(
    tenantId: string,
    docs: AsyncIterable<CorpusDoc> | Iterable<CorpusDoc>,
    opts: { total?: number; embeddings?: EmbeddingsInterface; embedderName?: string; layPhrases?: LayVocabulary | null; onProgress?: (p: IngestProgress) => void; signal?: AbortSignal } = {},
  ): Promise<IngestResult | 'busy'> {
    if (this.ingesting.has(tenantId)) return 'busy';
    const progress: IngestProgress = { phase: 'reading', done: 0, total: opts.total, startedAt: new Date() };
    this.ingesting.set(tenantId, progress);
    try {
      const result = await this.store.ingest(tenantId, docs, {
        ...(opts.embeddings ? { embeddings: opts.embeddings, embedderName: opts.embedderName ?? 'external' } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.layPhrases !== undefined ? { layPhrases: opts.layPhrases } : {}),
        onProgress: (p) => {
          progress.phase = p.phase;
          progress.done = p.done;
          if (p.total !== undefined) progress.total = p.total;
          opts.onProgress?.(progress);
        },
      });
      this.lastError.delete(tenantId);
      return result;
    } catch (error) {
      this.lastError.set(tenantId, { at: new Date(), message: (error as Error).message });
      this.log.error({ err: error, tenant: tenantId }, 'medical-answers ingest failed');
      throw error;
    } finally {
      this.ingesting.delete(tenantId);
      this.statusCache.delete(tenantId);
    }
  }
}

/** A one-line progress bar with rate and ETA, for the CLI and the start-up log. */
export function progressLine(p: IngestProgress, width = 24): string {
  const elapsed = (Date.now() - p.startedAt.getTime()) / 1000;
  const rate = elapsed > 0 ? p.done / elapsed : 0;
  if (!p.total) return `${p.phase} ${p.done} (${rate.toFixed(0)}/s)`;
  const ratio = Math.min(1, p.done / p.total);
  const filled = Math.round(ratio * width);
  const eta = rate > 0 ? Math.max(0, (p.total - p.done) / rate) : NaN;
  return `${p.phase.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} ${(ratio * 100).toFixed(0)}% ${rate.toFixed(0)}/s${Number.isFinite(eta) ? ` ETA ${eta.toFixed(0)}s` : ''}`;
}

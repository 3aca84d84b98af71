/**
 * MedicalStore: per-tenant corpus storage and hybrid retrieval on `pg` (embedded PGlite or PostgreSQL).
 *
 * Tables (all keyed by tenant):
 * - medical_answers_docs: one row per document, its content hash, a weighted full-text vector
 *   (title A, synonyms B, body D) with a GIN index, and the term statistics the in-process reranker uses.
 * - medical_answers_chunks: the document cut along its sections (long sections split by LangChain's
 *   RecursiveCharacterTextSplitter); with pgvector, an untyped `embedding vector` column and one partial
 *   HNSW index per tenant on `embedding::vector(dims)` (dimensions may differ between tenants).
 * - medical_answers_index: per tenant, the serialised local embedder, corpus statistics and ingest state.
 *
 * Retrieval: a full-text candidate list (OR of the question's content words) and a vector candidate list
 * (chunks, aggregated to their documents) are fused by reciprocal rank; the fused candidates are then
 * rescored in-process with BM25F (title/synonym boosts, document frequencies kept at ingest), a title-match
 * feature and a question-type→section feature. The term statistics are cached in memory per tenant and
 * rebuilt from the database after a restart.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import pgvector from 'pgvector';
import type { EmbeddingsInterface } from '@langchain/core/embeddings';
import type { RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { editDistance, inTransaction, type Migration } from 'parley';
import type { CorpusDoc, Hit } from './types.js';
import { LocalEmbeddings, type LocalEmbeddingsJSON } from './embedder.js';
import { TermCounts, TermDictionary } from './term-counts.js';
import { BUILT_IN_LAY_PHRASES, layPhrasesFor, type LayVocabulary } from './lay.js';
import { EVERYDAY_STEMS } from './everyday-stems.js';
import { REFERENCE_DF } from './reference-df.js';
import { elsewhere, heldTopics } from './elsewhere.js';
import { answerHeadings, docTerms, FAMILY_LETTERS, headingsFor, normalise, parseQuery, sectionsOf, stem, STOP_WORDS, words, type ParsedQuery } from './text.js';

export type RetrievalMode = 'hybrid' | 'lexical';

export interface IngestProgress {
  phase: 'read' | 'fit' | 'embed' | 'remove' | 'index' | 'done';
  done: number;
  total?: number;
}

export interface IngestOptions {
  /** A real embeddings model from configuration; default: the local LSA embedder fitted on the corpus. */
  embeddings?: EmbeddingsInterface;
  /** A stable name for `embeddings` (model id); a change re-embeds everything. */
  embedderName?: string;
  onProgress?: (p: IngestProgress) => void;
  signal?: AbortSignal;
  /**
   * Lay phrases indexed with each document's synonyms, by topic title (lay.ts); default: the engine's
   * built-in vocabulary; `null`: none.
   */
  layPhrases?: LayVocabulary | null;
  /** Documents written per transaction (default 60); each batch is durable on its own, so an interrupted ingest resumes after it. */
  batchSize?: number;
}

export interface IngestResult {
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  chunks: number;
  corpusVersion: string;
  ms: number;
  /** Documents whose content was unchanged but were re-embedded (a new embedder). */
  reembedded: number;
}

export interface StoreStatus {
  docs: number;
  chunks: number;
  lastIngestAt: Date | null;
  corpusVersion: string | null;
  mode: RetrievalMode;
  embedder: string | null;
}

export interface SearchOptions {
  k?: number;
  /** The embeddings model the tenant was ingested with, when it is not the local one. */
  embeddings?: EmbeddingsInterface;
  /** Filled with milliseconds per phase (embed, candidates, rerank, chunks, section), for eval/search-timing.ts. */
  timings?: Record<string, number>;
  /**
   * The question could not be embedded (a spent budget refused it, the provider is down): when set,
   * it is told why and the search goes on with the lexical candidates alone; without it the error is
   * thrown. It may throw to stop the search.
   */
  onEmbedError?: (error: unknown) => void;
  /** Given every fused candidate's ranking features (`RERANK_FEATURES` order), for eval/fit-rerank.ts. */
  onCandidates?: (candidates: { docId: string; features: number[] }[]) => void;
}

/**
 * The features each fused candidate is ranked by, in the order of `RERANK_WEIGHTS`: BM25F, title match,
 * full title named, section fit, reciprocal-rank fusion (×60, so about 0–2), query coverage, 1/rank in
 * the lexical list and in the vector list (0 when absent). Fitted by `eval/fit-rerank.ts` on twelve
 * files of questions (2026-12-03, with the lay phrases indexed): each file left out in turn, 1,033 of
 * 1,634 hand-written questions right at rank 1 against 999 with the earlier hand-set weights
 * (1, 8, 6, 3, 1, 0, 0, 0). A later fit on eighteen files gained 1,426 → 1,450 of 2,234 but lost
 * templated R@1 to 0.943, under the 0.95 target, and was not shipped (eval/README.md).
 */
export const RERANK_FEATURES = ['bm25f', 'titleMatch', 'fullTitle', 'sectionFit', 'rrf', 'coverage', 'lexicalRecip', 'vectorRecip'] as const;

/** Tuning constants (chosen on the design half of the dev set; see eval/README.md). */
const CHUNK_SIZE = 1200;
const CHUNK_OVERLAP = 150;
const DOC_BATCH = 60;
const CANDIDATES = 60;
const RRF_K = 60;
/** Weights of `RERANK_FEATURES`. The confidence reads the top page's BM25F, not this score, so a refit does not move it. */
export const RERANK_WEIGHTS = [0.39, 7, 1.49, 1.06, 1.27, -0.15, 0.19, 0.46];
/**
 * A summary page (one Overview, the consumer pages' form) that speaks of what a typed question asks
 * ("High blood pressure usually has no symptoms") answers it nearly as well as a page with that section.
 */
const SUMMARY_FIT = 0.3;
const TYPE_STEMS: Partial<Record<string, string[]>> = {
  symptoms: ['symptom', 'sign'],
  treatment: ['treat', 'treatment'],
  causes: ['caus'],
  exams: ['diagnos', 'diagnosi', 'test'],
  prevention: ['prevent'],
  susceptibility: ['risk'],
  outlook: ['outlook', 'prognosi', 'recoveri', 'recov'],
  complications: ['complic'],
};
function summaryAnswers(doc: { headings: Set<string>; body: { has(term: string): boolean } }, type: string): boolean {
  if (doc.headings.size !== 1 || !doc.headings.has('overview')) return false;
  return (TYPE_STEMS[type] ?? []).some((t) => doc.body.has(t));
}
const COMMON_SHARE = 0.2;
/** Documents read per statement when a tenant's cache is loaded (with their chunks). */
const CACHE_PAGE = 250;
/** How often a cached tenant index checks whether another instance re-ingested. */
const CACHE_CHECK_MS = 30_000;
/** Most documents the full-text match hands to the in-process ranking. */
const LEXICAL_MATCHES = 800;
/** Most chunks of the top document read for the answer (its best section first). */
const FIRST_DOC_CHUNKS = 16;
/** HNSW returns at most hnsw.ef_search (40 by default) rows per scan. */
const VECTOR_CHUNKS = 40;
const BM25 = { k1: 1.2, bTitle: 0.3, bBody: 0.75, wTitle: 3, wSyn: 3, wLay: 3, wBody: 1 };
/** Refit the local embedder when more than this share of documents is new or changed. */
const REFIT_SHARE = 0.2;

export function medicalMigrations(): Migration[] {
  return [
    {
      id: '001_create_medical_corpus',
      sql: `
        CREATE TABLE medical_answers_docs (
          tenant_id text NOT NULL,
          doc_id text NOT NULL,
          title text NOT NULL,
          url text,
          source text,
          collection text,
          synonyms text[] NOT NULL DEFAULT '{}',
          content_hash text NOT NULL,
          embedder text,
          headings text[] NOT NULL DEFAULT '{}',
          tsv tsvector NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, doc_id)
        );
        CREATE INDEX medical_answers_docs_tsv ON medical_answers_docs USING gin (tsv);
        -- Term statistics live apart so the full-text rows stay narrow (a scan of wide, toasted rows was 4x slower).
        CREATE TABLE medical_answers_doc_terms (
          tenant_id text NOT NULL,
          doc_id text NOT NULL,
          terms jsonb NOT NULL,
          PRIMARY KEY (tenant_id, doc_id),
          FOREIGN KEY (tenant_id, doc_id) REFERENCES medical_answers_docs (tenant_id, doc_id) ON DELETE CASCADE
        );
        CREATE TABLE medical_answers_chunks (
          tenant_id text NOT NULL,
          chunk_id text NOT NULL,
          doc_id text NOT NULL,
          ord int NOT NULL,
          section text,
          text text NOT NULL,
          -- The chunk's distinct stemmed terms, space-separated (the best-chunk choice reads these, not the text).
          terms text NOT NULL DEFAULT '',
          PRIMARY KEY (tenant_id, chunk_id),
          FOREIGN KEY (tenant_id, doc_id) REFERENCES medical_answers_docs (tenant_id, doc_id) ON DELETE CASCADE
        );
        CREATE INDEX medical_answers_chunks_doc ON medical_answers_chunks (tenant_id, doc_id, ord);
        CREATE TABLE medical_answers_index (
          tenant_id text PRIMARY KEY,
          embedder text,
          dims int,
          model jsonb,
          stats jsonb,
          corpus_version text,
          last_ingest_at timestamptz,
          updated_at timestamptz NOT NULL DEFAULT now()
        );
      `,
    },
    {
      // Each page's short source link (`linkCode`): ingest writes it, this fills the rows written before.
      id: '002_doc_link_codes',
      sql: `
        ALTER TABLE medical_answers_docs ADD COLUMN link_code text;
        UPDATE medical_answers_docs SET link_code = left(translate(encode(sha256(convert_to(tenant_id || E'\\n' || doc_id, 'UTF8')), 'base64'), '+/', '-_'), 8);
        CREATE INDEX medical_answers_docs_link_code ON medical_answers_docs (link_code);
      `,
    },
  ];
}

/** How many characters a short source link's code has: 48 bits of SHA-256, base64url. */
export const LINK_CODE_LENGTH = 8;
const LINK_CODE = new RegExp(`^[A-Za-z0-9_-]{${LINK_CODE_LENGTH}}$`);

/**
 * A page's short-link code: the first 48 bits of SHA-256 over the tenant and the document id, base64url
 * (migration `002_doc_link_codes` computes the same in SQL). The same page of the same tenant always
 * has the same code, so a link sent last month still opens after a restart or a re-ingest; no person
 * is in it.
 */
export function linkCode(tenantId: string, docId: string): string {
  return createHash('sha256').update(`${tenantId}\n${docId}`, 'utf8').digest('base64url').slice(0, LINK_CODE_LENGTH);
}

interface DocTerms {
  /** Stemmed title terms. */
  t: string[];
  /** Stemmed synonym terms (the document's own). */
  s: string[];
  /** Stemmed terms of its topic's lay phrases (lay.ts); absent in rows written before them. */
  l?: string[];
  /** Body term frequencies. */
  b: Record<string, number>;
  /** Body length in terms. */
  n: number;
  /** Share of the text under the Overview heading (a summary page is all overview). */
  o: number;
}

interface CachedDoc {
  docId: string;
  title: string;
  url: string | null;
  source: string | null;
  headings: Set<string>;
  overviewShare: number;
  title_: Map<string, number>;
  /** The document's own synonyms' terms: with the title's, the words that name it. */
  syn: Map<string, number>;
  /** Its lay phrases' terms (lay.ts): they describe the topic, they do not name it. */
  lay: Map<string, number>;
  /** The body's term counts (term-counts.ts). */
  body: TermCounts;
  titleLen: number;
  synLen: number;
  bodyLen: number;
  /** BM25F's length normalisation of each field, and the idf of each title term and their sum: constants of the corpus, kept so no search recomputes them. */
  titleNorm: number;
  synNorm: number;
  bodyNorm: number;
  titleIdfs: [string, number][];
  titleIdf: number;
  /** Every chunk's terms are body terms: a query term the body lacks is in none of the chunks. */
  chunkTermsInBody: boolean;
  /** The document's chunks in order (no text: that is fetched for the chosen ones only). */
  chunks: CachedChunk[];
}

interface CachedChunk {
  chunkId: string;
  ord: number;
  section: string | null;
  /** The section in lower case (one string per distinct heading), for the question type's headings. */
  sectionKey: string | null;
  /** Distinct stemmed terms, space-separated with a space at both ends (substring tests, no splitting). */
  terms: string;
}

interface Stats {
  n: number;
  df: Record<string, number>;
  avgTitle: number;
  avgSyn: number;
  avgBody: number;
}

interface TenantCache {
  version: string | null;
  docs: Map<string, CachedDoc>;
  /** Stems of the documents' title words (sorted) and a word each stem came from, for variant matching. */
  titleStems: string[];
  titleWords: Map<string, string>;
  stats: Stats;
  embedder: LocalEmbeddings | null;
  embedderName: string | null;
  dims: number | null;
  /** The lexemes of the documents' full-text vectors, each with the documents that hold it: the full-text match, in process. */
  lexemes: Map<string, string[]>;
  /** Each stemmed title term with the documents whose title holds it (for the documents a question names in full). */
  byTitleTerm: Map<string, CachedDoc[]>;
  /** The reference topics the library holds (elsewhere.ts: `heldTopics`). */
  held: Set<number>;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** The names a document is indexed under: its own synonyms, then the lay phrases of its topic (lay.ts). */
function indexedSynonyms(d: CorpusDoc, lay: readonly string[]): string[] {
  return [...(d.synonyms ?? []), ...lay];
}

function contentHash(d: CorpusDoc, lay: readonly string[]): string {
  // The lay phrases are part of what is indexed: a vocabulary that changes re-indexes the documents it touches.
  return sha(JSON.stringify([d.title, d.url ?? null, d.source ?? null, d.text, d.synonyms ?? [], d.collection ?? null, ...(lay.length ? [lay] : [])])).slice(0, 32);
}

function termsOf(d: CorpusDoc, lay: readonly string[]): DocTerms {
  const body: Record<string, number> = {};
  const bodyTerms = docTerms(d.text);
  for (const t of bodyTerms) body[t] = (body[t] ?? 0) + 1;
  const sections = sectionsOf(d.text);
  const total = sections.reduce((n, s) => n + s.text.length, 0) || 1;
  const overview = sections.filter((s) => s.heading === 'Overview').reduce((n, s) => n + s.text.length, 0);
  return { t: docTerms(d.title), s: docTerms((d.synonyms ?? []).join(' ; ')), ...(lay.length ? { l: docTerms(lay.join(' ; ')) } : {}), b: body, n: bodyTerms.length, o: Math.round((overview / total) * 1000) / 1000 };
}

/**
 * The body words the full-text vector keeps: the document's most distinctive words (TF-IDF over this
 * engine's stems, written back as the surface word seen first). A compact vector keeps ranking in
 * PostgreSQL fast; the in-process BM25F rescoring reads the full term statistics.
 */
function salientWords(text: string, terms: DocTerms, stats: Stats, n = 40): string {
  const surface = new Map<string, string>();
  for (const w of words(text)) {
    if (STOP_WORDS.has(w) || /^\d+$/.test(w)) continue;
    const s = stem(w);
    if (!surface.has(s)) surface.set(s, w);
    if (surface.size > 4000) break;
  }
  return Object.entries(terms.b)
    .map(([t, tf]) => [t, (1 + Math.log(tf)) * idf(stats, t)] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([t]) => surface.get(t) ?? t)
    .join(' ');
}

function counts(terms: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of terms) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
}

/** A safe SQL identifier fragment for a tenant (per-tenant index names). */
const tenantTag = (tenantId: string) => sha(tenantId).slice(0, 10);
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A text to embed for a chunk: its document's title and section give the chunk its topic. */
const chunkEmbedText = (title: string, section: string | null, text: string) => `${title}\n${section ?? ''}\n${text}`;

function roundVector(v: number[]): number[] {
  return v.map((x) => Math.round(x * 1e5) / 1e5);
}

/**
 * Consecutive chunks of a section as one text: chunks overlap (CHUNK_OVERLAP) so each reads on its
 * own, and the overlap must not be repeated when they are put back together.
 */
export function joinChunks(texts: string[]): string {
  let out = '';
  for (const text of texts.filter(Boolean)) {
    if (!out) {
      out = text;
      continue;
    }
    let overlap = 0;
    for (let n = Math.min(out.length, text.length, CHUNK_OVERLAP * 2); n >= 20; n--) {
      if (out.endsWith(text.slice(0, n))) {
        overlap = n;
        break;
      }
    }
    out = overlap ? out + text.slice(overlap) : `${out}\n${text}`;
  }
  return out;
}

export class MedicalStore {
  private mode: RetrievalMode = 'lexical';
  private modeReason: string | undefined;
  private readonly log: Logger | undefined;
  private readonly caches = new Map<string, Promise<TenantCache>>();
  private readonly checkedAt = new Map<string, number>();
  private readonly ingests = new Map<string, Promise<unknown>>();
  /** Embeddings passed at ingest, remembered for search. */
  private readonly externalEmbeddings = new Map<string, EmbeddingsInterface>();
  /**
   * The splitter for long sections, loaded on the first ingest that needs one: the text splitters
   * pull in much of LangChain, which a gateway that only searches a stored library never uses
   * (0.3 s to import alone on the bench machine; bench/README.md, step 8).
   */
  private splitter: Promise<RecursiveCharacterTextSplitter> | undefined;

  constructor(
    private readonly db: pg.Pool,
    opts: { log?: Logger } = {},
  ) {
    this.log = opts.log;
  }

  private textSplitter(): Promise<RecursiveCharacterTextSplitter> {
    this.splitter ??= import('@langchain/textsplitters').then(({ RecursiveCharacterTextSplitter }) => new RecursiveCharacterTextSplitter({ chunkSize: CHUNK_SIZE, chunkOverlap: CHUNK_OVERLAP }));
    return this.splitter;
  }

  static migrations(): Migration[] {
    return medicalMigrations();
  }

  /**
   * After the migrations: enables pgvector when the server has it and adds the vector column; otherwise
   * the store runs lexical-only and says why. `vector: false` forces lexical-only (tests, diagnostics).
   */
  async init(opts: { vector?: boolean } = {}): Promise<{ mode: RetrievalMode; reason?: string }> {
    if (opts.vector === false) return this.setMode('lexical', 'vector search disabled by configuration');
    try {
      const { rows } = await this.db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'vector'");
      if ((rows[0]?.n ?? 0) === 0) return this.setMode('lexical', 'the pgvector extension is not installed on this PostgreSQL server');
      await this.db.query('CREATE EXTENSION IF NOT EXISTS vector');
      await this.db.query('ALTER TABLE medical_answers_chunks ADD COLUMN IF NOT EXISTS embedding vector');
      return this.setMode('hybrid');
    } catch (error) {
      return this.setMode('lexical', `pgvector could not be enabled: ${(error as Error).message}`);
    }
  }

  private setMode(mode: RetrievalMode, reason?: string): { mode: RetrievalMode; reason?: string } {
    this.mode = mode;
    this.modeReason = reason;
    if (reason) this.log?.info({ mode, reason }, 'medical-answers retrieval mode');
    return reason ? { mode, reason } : { mode };
  }

  get retrievalMode(): { mode: RetrievalMode; reason?: string } {
    return this.modeReason ? { mode: this.mode, reason: this.modeReason } : { mode: this.mode };
  }

  // ---- ingest --------------------------------------------------------------------------------------

  async ingest(tenantId: string, source: AsyncIterable<CorpusDoc> | Iterable<CorpusDoc>, opts: IngestOptions = {}): Promise<IngestResult> {
    // One ingest per tenant at a time in this process: a second call waits for the first.
    const previous = this.ingests.get(tenantId) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.ingestNow(tenantId, source, opts));
    const settled = run.catch(() => undefined);
    this.ingests.set(tenantId, settled);
    void settled.then(() => this.ingests.get(tenantId) === settled && this.ingests.delete(tenantId));
    return run;
  }

  private async ingestNow(tenantId: string, source: AsyncIterable<CorpusDoc> | Iterable<CorpusDoc>, opts: IngestOptions): Promise<IngestResult> {
    const started = performance.now();
    const progress = opts.onProgress ?? (() => undefined);
    const checkAbort = () => {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new DOMException('Ingest aborted', 'AbortError');
    };
    const docs: CorpusDoc[] = [];
    const seen = new Set<string>();
    for await (const d of source as AsyncIterable<CorpusDoc>) {
      if (!d || typeof d.id !== 'string' || !d.id || typeof d.text !== 'string' || typeof d.title !== 'string') throw new Error(`A corpus document needs id, title and text (got ${JSON.stringify(d)?.slice(0, 120)})`);
      if (seen.has(d.id)) throw new Error(`Duplicate document id ${d.id} in the corpus`);
      seen.add(d.id);
      docs.push(d);
      if (docs.length % 500 === 0) progress({ phase: 'read', done: docs.length });
    }
    progress({ phase: 'read', done: docs.length, total: docs.length });
    checkAbort();

    const vocabulary = opts.layPhrases === null ? {} : (opts.layPhrases ?? BUILT_IN_LAY_PHRASES);
    const lay = new Map(docs.map((d) => [d.id, layPhrasesFor(d, vocabulary)]));
    const layOf = (d: CorpusDoc) => lay.get(d.id) ?? [];
    const hashes = new Map(docs.map((d) => [d.id, contentHash(d, layOf(d))]));
    const { rows: existingRows } = await this.db.query<{ doc_id: string; content_hash: string; embedder: string | null }>(
      'SELECT doc_id, content_hash, embedder FROM medical_answers_docs WHERE tenant_id = $1',
      [tenantId],
    );
    const existing = new Map(existingRows.map((r) => [r.doc_id, r]));
    const changedShare = docs.filter((d) => existing.get(d.id)?.content_hash !== hashes.get(d.id)).length / Math.max(1, docs.length);

    // The embedder: an external model, or the stored local model when the corpus changed little (so
    // unchanged documents keep their vectors), or a freshly fitted one.
    const vectors = this.mode === 'hybrid';
    let embeddings: EmbeddingsInterface | null = null;
    let embedderName: string | null = null;
    let model: LocalEmbeddingsJSON | null = null;
    if (!vectors) {
      // Lexical-only: no embedder is fitted or stored.
    } else if (opts.embeddings) {
      embeddings = opts.embeddings;
      embedderName = opts.embedderName ?? `external:${opts.embeddings.constructor.name}`;
      this.externalEmbeddings.set(tenantId, opts.embeddings);
    } else {
      const { rows } = await this.db.query<{ model: LocalEmbeddingsJSON | null; embedder: string | null }>('SELECT model, embedder FROM medical_answers_index WHERE tenant_id = $1', [tenantId]);
      const stored = rows[0]?.model ?? null;
      if (stored && rows[0]?.embedder?.startsWith('local-lsa') && changedShare <= REFIT_SHARE) {
        const local = LocalEmbeddings.fromJSON(stored);
        embeddings = local;
        embedderName = rows[0].embedder;
      } else {
        progress({ phase: 'fit', done: 0, total: docs.length });
        const local = LocalEmbeddings.fit(docs.map((d) => `${d.title}\n${indexedSynonyms(d, layOf(d)).join(', ')}\n${d.text}`));
        embeddings = local;
        embedderName = local.name;
        model = local.toJSON();
        progress({ phase: 'fit', done: docs.length, total: docs.length });
      }
      this.externalEmbeddings.delete(tenantId);
    }
    checkAbort();
    // The model is saved before any document is embedded with it, so an interrupted ingest resumes with it.
    if (!vectors) {
      await this.db.query('INSERT INTO medical_answers_index (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING', [tenantId]);
    } else if (model) {
      await this.db.query(
        `INSERT INTO medical_answers_index (tenant_id, embedder, dims, model) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET embedder = EXCLUDED.embedder, dims = EXCLUDED.dims, model = EXCLUDED.model, updated_at = now()`,
        [tenantId, embedderName, model.dims, JSON.stringify(model)],
      );
    } else {
      await this.db.query(
        `INSERT INTO medical_answers_index (tenant_id, embedder) VALUES ($1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET embedder = EXCLUDED.embedder, model = CASE WHEN EXCLUDED.embedder = medical_answers_index.embedder THEN medical_answers_index.model ELSE NULL END, updated_at = now()`,
        [tenantId, embedderName],
      );
    }

    // Which documents need (re)writing: new, changed, or embedded by another embedder.
    const effectiveEmbedder = vectors ? embedderName : null;
    let added = 0;
    let updated = 0;
    let unchanged = 0;
    let reembedded = 0;
    const todo: CorpusDoc[] = [];
    for (const d of docs) {
      const prev = existing.get(d.id);
      if (!prev) {
        added++;
        todo.push(d);
      } else if (prev.content_hash !== hashes.get(d.id)) {
        updated++;
        todo.push(d);
      } else {
        unchanged++;
        if (vectors && prev.embedder !== effectiveEmbedder) {
          reembedded++;
          todo.push(d);
        }
      }
    }

    // Corpus statistics for BM25F (document frequencies over title, synonyms and body).
    const allTerms = new Map(docs.map((d) => [d.id, termsOf(d, layOf(d))]));
    const stats = computeStats([...allTerms.values()]);

    let dims: number | null = model?.dims ?? (embeddings instanceof LocalEmbeddings ? embeddings.dims : null);
    let written = 0;
    progress({ phase: 'embed', done: 0, total: todo.length });
    const batchSize = Math.max(1, opts.batchSize ?? DOC_BATCH);
    for (let i = 0; i < todo.length; i += batchSize) {
      checkAbort();
      const batch = todo.slice(i, i + batchSize);
      const docRows = batch.map((d) => {
        const sections = sectionsOf(d.text);
        return {
          doc_id: d.id,
          title: d.title,
          url: d.url ?? null,
          source: d.source ?? null,
          collection: d.collection ?? null,
          synonyms: d.synonyms ?? [],
          content_hash: hashes.get(d.id)!,
          embedder: effectiveEmbedder,
          headings: [...new Set(sections.map((s) => s.heading.toLowerCase()))],
          terms: allTerms.get(d.id)!,
          synonyms_text: indexedSynonyms(d, layOf(d)).join(' ; '),
          body: salientWords(d.text, allTerms.get(d.id)!, stats),
          link_code: linkCode(tenantId, d.id),
          sections,
        };
      });
      const chunkRows: { chunk_id: string; doc_id: string; ord: number; section: string; text: string; terms: string; embedding?: string }[] = [];
      for (const d of docRows) {
        let ord = 0;
        for (const s of d.sections) {
          const pieces = s.text.length <= CHUNK_SIZE ? [s.text] : await (await this.textSplitter()).splitText(s.text);
          for (const text of pieces) chunkRows.push({ chunk_id: `${d.doc_id}#${ord}`, doc_id: d.doc_id, ord: ord++, section: s.heading, text, terms: [...new Set(docTerms(text))].join(' ') });
        }
      }
      if (vectors && embeddings) {
        const titles = new Map(docRows.map((d) => [d.doc_id, d.title]));
        const vecs = await embeddings.embedDocuments(chunkRows.map((c) => chunkEmbedText(titles.get(c.doc_id)!, c.section, c.text)));
        vecs.forEach((v, j) => {
          dims ??= v.length;
          if (v.length !== dims) throw new Error(`The embeddings model returned ${v.length} dimensions, expected ${dims}`);
          chunkRows[j]!.embedding = pgvector.toSql(roundVector(v)) as string;
        });
      }
      await inTransaction(this.db, async (client) => {
        await client.query(
          `INSERT INTO medical_answers_docs (tenant_id, doc_id, title, url, source, collection, synonyms, content_hash, embedder, headings, tsv, link_code, updated_at)
           SELECT $1, r.doc_id, r.title, r.url, r.source, r.collection, r.synonyms, r.content_hash, r.embedder, r.headings,
                  setweight(to_tsvector('english', r.title), 'A') || setweight(to_tsvector('english', r.synonyms_text), 'B') || setweight(to_tsvector('english', r.body), 'D'),
                  r.link_code, now()
           FROM jsonb_to_recordset($2::jsonb) AS r(doc_id text, title text, url text, source text, collection text, synonyms text[], content_hash text,
                embedder text, headings text[], synonyms_text text, body text, link_code text)
           ON CONFLICT (tenant_id, doc_id) DO UPDATE SET title = EXCLUDED.title, url = EXCLUDED.url, source = EXCLUDED.source, collection = EXCLUDED.collection,
             synonyms = EXCLUDED.synonyms, content_hash = EXCLUDED.content_hash, embedder = EXCLUDED.embedder, headings = EXCLUDED.headings,
             tsv = EXCLUDED.tsv, link_code = EXCLUDED.link_code, updated_at = now()`,
          [tenantId, JSON.stringify(docRows.map(({ sections: _s, terms: _t, ...rest }) => rest))],
        );
        await client.query(
          `INSERT INTO medical_answers_doc_terms (tenant_id, doc_id, terms)
           SELECT $1, r.doc_id, r.terms FROM jsonb_to_recordset($2::jsonb) AS r(doc_id text, terms jsonb)
           ON CONFLICT (tenant_id, doc_id) DO UPDATE SET terms = EXCLUDED.terms`,
          [tenantId, JSON.stringify(docRows.map((d) => ({ doc_id: d.doc_id, terms: d.terms })))],
        );
        await client.query('DELETE FROM medical_answers_chunks WHERE tenant_id = $1 AND doc_id = ANY($2::text[])', [tenantId, batch.map((d) => d.id)]);
        if (vectors) {
          await client.query(
            `INSERT INTO medical_answers_chunks (tenant_id, chunk_id, doc_id, ord, section, text, terms, embedding)
             SELECT $1, r.chunk_id, r.doc_id, r.ord, r.section, r.text, r.terms, r.embedding::vector
             FROM jsonb_to_recordset($2::jsonb) AS r(chunk_id text, doc_id text, ord int, section text, text text, terms text, embedding text)`,
            [tenantId, JSON.stringify(chunkRows)],
          );
        } else {
          await client.query(
            `INSERT INTO medical_answers_chunks (tenant_id, chunk_id, doc_id, ord, section, text, terms)
             SELECT $1, r.chunk_id, r.doc_id, r.ord, r.section, r.text, r.terms
             FROM jsonb_to_recordset($2::jsonb) AS r(chunk_id text, doc_id text, ord int, section text, text text, terms text)`,
            [tenantId, JSON.stringify(chunkRows)],
          );
        }
      });
      written += batch.length;
      progress({ phase: 'embed', done: written, total: todo.length });
    }

    // Only a complete pass may remove documents that vanished from the corpus.
    checkAbort();
    progress({ phase: 'remove', done: 0 });
    const { rowCount: removed } = await this.db.query('DELETE FROM medical_answers_docs WHERE tenant_id = $1 AND NOT (doc_id = ANY($2::text[]))', [tenantId, docs.map((d) => d.id)]);

    if (vectors && dims) {
      progress({ phase: 'index', done: 0, total: 1 });
      await this.ensureVectorIndex(tenantId, dims);
      progress({ phase: 'index', done: 1, total: 1 });
    }

    if (todo.length > 0 || (removed ?? 0) > 0) {
      // Bulk inserts sit in the GIN index's pending list, which makes every full-text query scan the
      // list (and the planner fall back to a sequential scan: ~10 ms instead of ~1 ms here). Merge it,
      // and refresh planner statistics, which otherwise still describe an empty table.
      await this.db.query("SELECT gin_clean_pending_list('medical_answers_docs_tsv'::regclass)");
      await this.db.query('ANALYZE medical_answers_docs, medical_answers_chunks');
    }
    const corpusVersion = sha(docs.map((d) => `${d.id}:${hashes.get(d.id)}`).sort().join('\n')).slice(0, 16);
    await this.db.query(
      `UPDATE medical_answers_index SET stats = $2, dims = COALESCE($3, dims), corpus_version = $4, last_ingest_at = now(), updated_at = now() WHERE tenant_id = $1`,
      [tenantId, JSON.stringify(stats), dims, corpusVersion],
    );
    this.caches.delete(tenantId);
    const { rows: chunkCount } = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM medical_answers_chunks WHERE tenant_id = $1', [tenantId]);
    const result: IngestResult = { added, updated, unchanged, removed: removed ?? 0, chunks: chunkCount[0]?.n ?? 0, corpusVersion, ms: Math.round(performance.now() - started), reembedded };
    progress({ phase: 'done', done: docs.length, total: docs.length });
    this.log?.info({ tenantId, ...result }, 'medical corpus ingested');
    return result;
  }

  /** One partial HNSW index per tenant and dimension count; an index of an older dimension count is dropped. */
  private async ensureVectorIndex(tenantId: string, dims: number): Promise<void> {
    const tag = tenantTag(tenantId);
    const name = `medical_answers_chunks_hnsw_${tag}_${dims}`;
    const { rows } = await this.db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'medical_answers_chunks' AND indexname LIKE $1", [`medical_answers_chunks_hnsw_${tag}_%`]);
    for (const r of rows) if (r.indexname !== name) await this.db.query(`DROP INDEX IF EXISTS ${r.indexname}`);
    if (!rows.some((r) => r.indexname === name)) {
      await this.db.query(
        `CREATE INDEX IF NOT EXISTS ${name} ON medical_answers_chunks USING hnsw ((embedding::vector(${dims})) vector_cosine_ops) WHERE tenant_id = ${literal(tenantId)}`,
      );
    }
  }

  // ---- search ----------------------------------------------------------------------------------------

  private cache(tenantId: string): Promise<TenantCache> {
    let c = this.caches.get(tenantId);
    if (!c) {
      c = this.loadCache(tenantId);
      this.caches.set(tenantId, c);
      c.catch(() => this.caches.delete(tenantId));
      this.checkedAt.set(tenantId, Date.now());
    } else if (Date.now() - (this.checkedAt.get(tenantId) ?? 0) > CACHE_CHECK_MS) {
      // Another instance may have ingested: compare the corpus version now and then, off the hot path.
      this.checkedAt.set(tenantId, Date.now());
      const current = c;
      void Promise.all([current, this.db.query<{ corpus_version: string | null }>('SELECT corpus_version FROM medical_answers_index WHERE tenant_id = $1', [tenantId])])
        .then(([cached, { rows }]) => {
          if ((rows[0]?.corpus_version ?? null) !== cached.version && this.caches.get(tenantId) === current) this.caches.delete(tenantId);
        })
        .catch((error: unknown) => this.log?.warn({ err: error, tenantId }, 'medical-answers: corpus version check failed'));
    }
    return c;
  }

  private async loadCache(tenantId: string): Promise<TenantCache> {
    // The index row, then the documents a page at a time with their chunks, one statement after
    // another: each page's rows become the cache's compact form before the next page is read, so the
    // rows die young. Read all at once, the bundled corpus's rows were alive together (some 40 MB of
    // parsed JSON), and the heap they grew stayed with the gateway.
    const { embedder, embedderName, dims, stats, version } = await this.loadIndexRow(tenantId);
    const docs = new Map<string, CachedDoc>();
    const dictionary = new TermDictionary();
    const sectionKeys = new Map<string, string>();
    const titleWords = new Map<string, string>();
    const lexemes = new Map<string, string[]>();
    const byTitleTerm = new Map<string, CachedDoc[]>();
    const names: string[] = [];
    for (let after = ''; ; ) {
      const { rows: page } = await this.db.query<{ doc_id: string; title: string; url: string | null; source: string | null; synonyms: string[]; headings: string[]; terms: DocTerms; lexemes: string[] }>({
        name: 'medical-answers-cache-docs',
        text: `SELECT d.doc_id, d.title, d.url, d.source, d.synonyms, d.headings, t.terms, tsvector_to_array(d.tsv) AS lexemes FROM medical_answers_docs d
               JOIN medical_answers_doc_terms t USING (tenant_id, doc_id) WHERE d.tenant_id = $1 AND d.doc_id > $2 ORDER BY d.doc_id LIMIT ${CACHE_PAGE}`,
        values: [tenantId, after],
      });
      if (page.length === 0) break;
      const last = page[page.length - 1]!.doc_id;
      const { rows: chunkRows } = await this.db.query<{ doc_id: string; chunk_id: string; ord: number; section: string | null; terms: string }>({
        name: 'medical-answers-cache-chunks',
        text: 'SELECT doc_id, chunk_id, ord, section, terms FROM medical_answers_chunks WHERE tenant_id = $1 AND doc_id > $2 AND doc_id <= $3 ORDER BY doc_id, ord',
        values: [tenantId, after, last],
      });
      const chunksByDoc = new Map<string, CachedChunk[]>();
      for (const c of chunkRows) {
        const list = chunksByDoc.get(c.doc_id) ?? [];
        let sectionKey: string | null = null;
        if (c.section !== null) {
          sectionKey = sectionKeys.get(c.section) ?? c.section.toLowerCase();
          sectionKeys.set(c.section, sectionKey);
        }
        list.push({ chunkId: c.chunk_id, ord: c.ord, section: c.section, sectionKey, terms: ` ${c.terms} ` });
        chunksByDoc.set(c.doc_id, list);
      }
      const bodies = TermCounts.pack(dictionary, page.map((r) => r.terms.b));
      for (const [i, r] of page.entries()) {
        const title_ = counts(r.terms.t);
        const body = bodies[i]!;
        const chunks = chunksByDoc.get(r.doc_id) ?? [];
        const titleIdfs = [...title_.keys()].map((term) => [term, idf(stats, term)] as [string, number]);
        let titleIdf = 0;
        for (const [, w] of titleIdfs) titleIdf += w;
        const synLen = synonymTerms(r.terms).length;
        const doc: CachedDoc = {
          docId: r.doc_id,
          title: r.title,
          url: r.url,
          source: r.source,
          headings: new Set(r.headings),
          overviewShare: r.terms.o ?? 0,
          title_,
          syn: counts(r.terms.s),
          lay: counts(r.terms.l ?? []),
          body,
          titleLen: r.terms.t.length,
          synLen,
          bodyLen: r.terms.n,
          titleNorm: 1 - BM25.bTitle + (BM25.bTitle * r.terms.t.length) / stats.avgTitle,
          synNorm: 1 - BM25.bTitle + (BM25.bTitle * synLen) / stats.avgSyn,
          bodyNorm: 1 - BM25.bBody + (BM25.bBody * r.terms.n) / stats.avgBody,
          titleIdfs,
          titleIdf,
          chunkTermsInBody: chunks.every((c) => c.terms.split(' ').every((t) => t === '' || body.has(t))),
          chunks,
        };
        docs.set(r.doc_id, doc);
        for (const term of title_.keys()) {
          const list = byTitleTerm.get(term);
          if (list) list.push(doc);
          else byTitleTerm.set(term, [doc]);
        }
        for (const w of words(r.title)) if (w.length >= 4 && !STOP_WORDS.has(w) && !/\d/.test(w)) titleWords.set(stem(w), w);
        for (const l of r.lexemes) {
          const list = lexemes.get(l);
          if (list) list.push(r.doc_id);
          else lexemes.set(l, [r.doc_id]);
        }
        names.push(r.title, ...(r.synonyms ?? []));
      }
      if (page.length < CACHE_PAGE) break;
      after = last;
    }
    const titleStems = [...titleWords.keys()].sort();
    return { version, docs, titleStems, titleWords, stats, embedder, embedderName, dims, lexemes, byTitleTerm, held: heldTopics(names) };
  }

  /** The tenant's index row, with the embedder built from its model (the model's JSON is not kept). */
  private async loadIndexRow(tenantId: string): Promise<{ embedder: LocalEmbeddings | null; embedderName: string | null; dims: number | null; stats: Stats; version: string | null }> {
    const { rows } = await this.db.query<{ embedder: string | null; dims: number | null; model: LocalEmbeddingsJSON | null; stats: Stats | null; corpus_version: string | null }>(
      'SELECT embedder, dims, model, stats, corpus_version FROM medical_answers_index WHERE tenant_id = $1',
      [tenantId],
    );
    const row = rows[0];
    // An index written before the statistics were stored: count them from the documents' terms.
    const stats =
      row?.stats ?? computeStats((await this.db.query<{ terms: DocTerms }>('SELECT terms FROM medical_answers_doc_terms WHERE tenant_id = $1 ORDER BY doc_id', [tenantId])).rows.map((r) => r.terms));
    return {
      embedder: row?.model && row.embedder?.startsWith('local-lsa') ? LocalEmbeddings.fromJSON(row.model) : null,
      embedderName: row?.embedder ?? null,
      dims: row?.dims ?? null,
      stats,
      version: row?.corpus_version ?? null,
    };
  }

  async search(tenantId: string, query: string, opts: SearchOptions = {}): Promise<Hit[]> {
    const k = opts.k ?? 5;
    const cache = await this.cache(tenantId);
    if (cache.docs.size === 0) return [];
    const parsed = withTitleVariants(parseQuery(query), cache);
    if (parsed.terms.length === 0) return [];

    const embeddings = opts.embeddings ?? this.externalEmbeddings.get(tenantId) ?? cache.embedder;
    const useVectors = this.mode === 'hybrid' && embeddings !== null && cache.dims !== null;
    const tm = opts.timings;
    let t0 = performance.now();
    const lap = (name: string) => {
      const now = performance.now();
      if (tm) tm[name] = (tm[name] ?? 0) + now - t0;
      t0 = now;
    };
    // The question's vector first (the local embedder takes a fraction of a millisecond), then both
    // candidate lists in one statement: the embedded database is one thread, so two concurrent
    // statements only took turns, each paying its own round trip.
    let v: number[] | null = null;
    if (useVectors) {
      try {
        // The local embedder knows only the library's words: it reads a misspelt one as the word meant.
        v = await embeddings!.embedQuery(parsed.respelt && embeddings === cache.embedder ? respell(query, parsed.respelt) : query);
      } catch (error) {
        if (!opts.onEmbedError) throw error;
        opts.onEmbedError(error);
      }
      if (v && v.length !== cache.dims) v = null;
    }
    lap('embed');
    const { lexical, vector } = await this.candidates(tenantId, ftsWords(parsed, cache.stats), v, cache.lexemes);
    lap('candidates');

    // The lexical list: the documents the full-text match found, ranked by BM25F (title and synonyms weighted
    // above the body; document frequencies kept at ingest). Ranking in-process is ~5x cheaper than
    // ts_rank over every match in the embedded database, and better: ts_rank has no idf.
    const qw = queryWeights(parsed, cache.stats);
    const lexScores = new Map<string, ReturnType<typeof bm25f>>();
    for (const id of lexical) {
      const doc = cache.docs.get(id);
      if (doc) lexScores.set(id, bm25f(doc, qw));
    }
    // A document whose every title term the question names is a candidate even when those words are too
    // common to pick candidates ("whats the most common cancer in kids" names Cancer in Children).
    for (const id of titleNamed(parsed, cache.byTitleTerm)) if (!lexScores.has(id)) lexScores.set(id, bm25f(cache.docs.get(id)!, qw));
    const lexicalRanked = [...lexScores].sort((a, b) => b[1].score - a[1].score || (a[0] < b[0] ? -1 : 1)).slice(0, CANDIDATES).map(([id]) => id);
    // Reciprocal-rank fusion of the two candidate lists, then rescoring with title and section features.
    const cands = new Map<string, { lex: number | null; vec: number | null; rrf: number }>();
    lexicalRanked.forEach((id, i) => cands.set(id, { lex: i + 1, vec: null, rrf: 1 / (RRF_K + i + 1) }));
    vector.forEach(({ docId }, i) => {
      const c = cands.get(docId) ?? { lex: null, vec: null, rrf: 0 };
      c.vec = i + 1;
      c.rrf += 1 / (RRF_K + i + 1);
      cands.set(docId, c);
    });
    const wanted = headingsFor(parsed.type);
    const scored: { docId: string; score: number; bm25f: number; coverage: number; titleMatch: number; lex: number | null; vec: number | null }[] = [];
    const explained: { docId: string; features: number[] }[] = [];
    for (const [docId, c] of cands) {
      const doc = cache.docs.get(docId);
      if (!doc) continue;
      const { score: bm, coverage, titleMatch, fullTitle } = lexScores.get(docId) ?? bm25f(doc, qw);
      // Section fit: a "what is" question, or one with no recognisable type, is answered by a summary
      // (overview) page; any other question type by a document that has the matching section at all.
      const sectionFit = parsed.type === 'information' || parsed.type === null ? doc.overviewShare : wanted.some((h) => doc.headings.has(h)) ? 1 : summaryAnswers(doc, parsed.type) ? SUMMARY_FIT : 0;
      const features = [bm, titleMatch, fullTitle, sectionFit, RRF_K * c.rrf, coverage, c.lex ? 1 / c.lex : 0, c.vec ? 1 / c.vec : 0];
      let score = 0;
      for (let i = 0; i < features.length; i++) score += RERANK_WEIGHTS[i]! * features[i]!;
      scored.push({ docId, score, bm25f: bm, coverage, titleMatch, lex: c.lex, vec: c.vec });
      if (opts.onCandidates) explained.push({ docId, features });
    }
    opts.onCandidates?.(explained);
    scored.sort((a, b) => b.score - a.score || (a.docId < b.docId ? -1 : 1));
    const top = scored.slice(0, k);
    lap('rerank');
    if (top.length === 0) return [];

    // The best chunk of each returned document: the question type's section first, then the
    // (idf-weighted) query terms it holds, then position. Only the chosen chunks' text is read.
    const weights = parsed.terms.map((t, i) => ({ stem: t.term, term: ` ${t.term} `, w: t.weight * qw.idf[i]! }));
    // A term the document's body lacks is in none of its chunks (when that holds for the document): not looked for.
    const weightsIn = (doc: CachedDoc) => (doc.chunkTermsInBody ? weights.filter((x) => doc.body.has(x.stem)) : weights);
    // An advice question without another type ("what can I use") reads the Treatment section when the document has one.
    const chunkWanted = answerHeadings(parsed);
    const chosen = new Map<string, CachedChunk>();
    for (const t of top) {
      let best: CachedChunk | undefined;
      let bestScore = -Infinity;
      const doc = cache.docs.get(t.docId)!;
      const docWeights = weightsIn(doc);
      for (const c of doc.chunks) {
        let score = c.sectionKey && chunkWanted.includes(c.sectionKey) ? 20 : 0;
        for (const { term, w } of docWeights) if (c.terms.includes(term)) score += w;
        score -= c.ord * 0.05;
        if (score > bestScore) {
          bestScore = score;
          best = c;
        }
      }
      if (best) chosen.set(t.docId, best);
    }
    // The top document goes to the answer composer: its best section (up to two chunks either side)
    // first, then the rest of the document (at most FIRST_DOC_CHUNKS chunks, nearest first), since the
    // sentence that answers may sit in another section than the one the question's type points to.
    const firstDoc = top[0]!.docId;
    const firstChunk = chosen.get(firstDoc);
    const firstChunks = firstChunk ? cache.docs.get(firstDoc)!.chunks : [];
    const inBest = (c: CachedChunk) => c.section === firstChunk!.section && Math.abs(c.ord - firstChunk!.ord) <= 2;
    const sectionIds = firstChunks.filter(inBest).map((c) => c.chunkId);
    // The rest by the query's terms they hold (a long page's answer may sit far from the typed section), then nearness.
    const firstWeights = firstChunk ? weightsIn(cache.docs.get(firstDoc)!) : [];
    const termScores = new Map(firstChunks.map((c) => [c, firstWeights.reduce((n, { term, w }) => n + (c.terms.includes(term) ? w : 0), 0)]));
    const termScore = (c: CachedChunk) => termScores.get(c)!;
    const otherIds = firstChunks
      .filter((c) => !inBest(c))
      .sort((a, b) => termScore(b) - termScore(a) || Math.abs(a.ord - firstChunk!.ord) - Math.abs(b.ord - firstChunk!.ord))
      .slice(0, Math.max(0, FIRST_DOC_CHUNKS - sectionIds.length))
      .sort((a, b) => a.ord - b.ord);
    const ids = [...new Set([...[...chosen.values()].map((c) => c.chunkId), ...sectionIds, ...otherIds.map((c) => c.chunkId)])];
    const { rows: texts } = await this.db.query<{ chunk_id: string; text: string }>({
      name: 'medical-answers-chunk-text',
      text: 'SELECT chunk_id, text FROM medical_answers_chunks WHERE tenant_id = $1 AND chunk_id = ANY($2::text[])',
      values: [tenantId, ids],
    });
    lap('chunks');
    const textOf = new Map(texts.map((r) => [r.chunk_id, r.text]));
    const hits: Hit[] = [];
    for (const t of top) {
      const doc = cache.docs.get(t.docId)!;
      const c = chosen.get(t.docId);
      if (!c) continue;
      hits.push({
        docId: t.docId,
        chunkId: c.chunkId,
        title: doc.title,
        url: doc.url,
        source: doc.source,
        section: c.section,
        text: textOf.get(c.chunkId) ?? '',
        score: t.score,
        bm25f: t.bm25f,
        lexicalRank: t.lex,
        vectorRank: t.vec,
        coverage: t.coverage,
        titleMatch: t.titleMatch,
        questionType: parsed.type,
        libraryDocs: cache.docs.size,
      });
    }
    const first = hits[0];
    if (first) {
      // The person's own words (not the lay vocabulary's lighter additions), each once, by idf.
      const own = [...new Set(parsed.terms.filter((t) => t.weight >= 0.5).map((t) => t.term))].map((term) => ({ term, weight: idf(cache.stats, term) }));
      const names = hits.map((h) => cache.docs.get(h.docId)!).map((d) => (term: string) => d.title_.has(term) || d.syn.has(term) || d.lay.has(term));
      first.elsewhere = elsewhere(own, cache.held, names);
    }
    if (first && first.docId === firstDoc) {
      first.sections = [{ heading: first.section ?? '', text: joinChunks(sectionIds.map((id) => textOf.get(id) ?? '')) }];
      const rest = new Map<string, string[]>();
      for (const c of otherIds) rest.set(c.section ?? '', [...(rest.get(c.section ?? '') ?? []), textOf.get(c.chunkId) ?? '']);
      for (const [heading, texts] of rest) first.sections.push({ heading, text: joinChunks(texts) });
    }
    lap('section');
    return hits;
  }

  /**
   * The two candidate lists: the documents whose full-text vector matches any of `words` (at most
   * LEXICAL_MATCHES, in no particular order: the in-process BM25F ranks them), and the documents of the
   * chunks nearest to `vector` (HNSW, best chunk per document, nearest first).
   *
   * One statement: PostgreSQL turns the words into lexemes (`to_tsquery`, its English stemmer and stop
   * words) and, when there is a vector, runs the HNSW search in the same round trip; the lexemes are
   * looked up in the tenant's cached lexeme lists, which hold what the GIN index holds. Should the
   * query be anything but an OR of lexemes, or match more than LEXICAL_MATCHES documents (PostgreSQL
   * then picks which), the GIN index answers as before. Named (prepared) statements: planning costs
   * more than running them.
   */
  private async candidates(tenantId: string, words: string[], vector: number[] | null, lexemes: Map<string, string[]>): Promise<{ lexical: string[]; vector: { docId: string; chunkId: string }[] }> {
    // The tenant is a literal so the planner can match the partial per-tenant HNSW index.
    const vectorSql = (dims: number, param: number) =>
      `SELECT doc_id, chunk_id, NULL::text AS tsquery FROM medical_answers_chunks WHERE tenant_id = ${literal(tenantId)}
       ORDER BY embedding::vector(${dims}) <=> $${param}::vector(${dims}) LIMIT ${VECTOR_CHUNKS}`;
    const tsquery = `SELECT NULL::text AS doc_id, NULL::text AS chunk_id, to_tsquery('english', $1)::text AS tsquery`;
    type Row = { doc_id: string | null; chunk_id: string | null; tsquery: string | null };
    let rows: Row[];
    if (words.length && vector) {
      // UNION ALL appends the nearest chunks after the query's row, in their order.
      ({ rows } = await this.db.query<Row>({
        name: `medical-answers-candidates-${tenantTag(tenantId)}-${vector.length}`,
        text: `${tsquery} UNION ALL (${vectorSql(vector.length, 2)})`,
        values: [words.join(' | '), pgvector.toSql(vector)],
      }));
    } else if (words.length) {
      ({ rows } = await this.db.query<Row>({ name: 'medical-answers-tsquery', text: tsquery, values: [words.join(' | ')] }));
    } else if (vector) {
      ({ rows } = await this.db.query<Row>({ name: `medical-answers-vec-${tenantTag(tenantId)}-${vector.length}`, text: vectorSql(vector.length, 1), values: [pgvector.toSql(vector)] }));
    } else {
      rows = [];
    }
    let lexical: string[] = [];
    const seen = new Set<string>();
    const nearest: { docId: string; chunkId: string }[] = [];
    for (const r of rows) {
      if (r.chunk_id === null) {
        const matched = matchLexemes(r.tsquery ?? '', lexemes);
        lexical = matched ?? (await this.fullTextMatch(tenantId, words));
      } else if (!seen.has(r.doc_id!)) {
        seen.add(r.doc_id!);
        nearest.push({ docId: r.doc_id!, chunkId: r.chunk_id });
      }
    }
    return { lexical, vector: nearest.slice(0, CANDIDATES) };
  }

  /** The full-text match by the GIN index (the first LEXICAL_MATCHES matches in the table's order). */
  private async fullTextMatch(tenantId: string, words: string[]): Promise<string[]> {
    const { rows } = await this.db.query<{ doc_id: string }>({
      name: 'medical-answers-fts',
      text: `SELECT doc_id FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2) LIMIT ${LEXICAL_MATCHES}`,
      values: [tenantId, words.join(' | ')],
    });
    return rows.map((r) => r.doc_id);
  }

  /**
   * The page a short source link's code opens (`linkCode`), with its tenant, or null: an unknown code,
   * a page without a web link (http or https: the route redirects to nothing else), or one removed from
   * the library. Among the tenants given (those with the plugin on) only.
   */
  async resolveLink(code: string, tenants: readonly string[]): Promise<{ tenantId: string; docId: string; url: string } | null> {
    if (!LINK_CODE.test(code) || !tenants.length) return null;
    const { rows } = await this.db.query<{ tenant_id: string; doc_id: string; url: string }>({
      name: 'medical-answers-resolve-link',
      text: "SELECT tenant_id, doc_id, url FROM medical_answers_docs WHERE link_code = $1 AND tenant_id = ANY($2::text[]) AND url ~* '^https?://' ORDER BY tenant_id, doc_id LIMIT 1",
      values: [code, tenants],
    });
    const row = rows[0];
    return row ? { tenantId: row.tenant_id, docId: row.doc_id, url: row.url } : null;
  }

  async status(tenantId: string): Promise<StoreStatus> {
    const [{ rows: d }, { rows: c }, { rows: i }] = await Promise.all([
      this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM medical_answers_docs WHERE tenant_id = $1', [tenantId]),
      this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM medical_answers_chunks WHERE tenant_id = $1', [tenantId]),
      this.db.query<{ last_ingest_at: Date | null; corpus_version: string | null; embedder: string | null }>(
        'SELECT last_ingest_at, corpus_version, embedder FROM medical_answers_index WHERE tenant_id = $1',
        [tenantId],
      ),
    ]);
    return {
      docs: d[0]?.n ?? 0,
      chunks: c[0]?.n ?? 0,
      lastIngestAt: i[0]?.last_ingest_at ?? null,
      corpusVersion: i[0]?.corpus_version ?? null,
      mode: this.mode,
      embedder: this.mode === 'hybrid' ? (i[0]?.embedder ?? null) : null,
    };
  }

  async eraseTenant(tenantId: string): Promise<void> {
    await this.db.query('DELETE FROM medical_answers_docs WHERE tenant_id = $1', [tenantId]);
    await this.db.query('DELETE FROM medical_answers_index WHERE tenant_id = $1', [tenantId]);
    if (this.mode === 'hybrid') {
      const tag = tenantTag(tenantId);
      const { rows } = await this.db.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'medical_answers_chunks' AND indexname LIKE $1", [`medical_answers_chunks_hnsw_${tag}_%`]);
      for (const r of rows) await this.db.query(`DROP INDEX IF EXISTS ${r.indexname}`);
    }
    this.caches.delete(tenantId);
    this.externalEmbeddings.delete(tenantId);
  }
}

/**
 * The words of the full-text match. Words in more than a fifth of the documents do not pick
 * candidates (the reranker still scores them): a selective query keeps the matches few (under the 800
 * that the cached lexemes answer; the GIN index, when it is asked, is used instead of a scan of every
 * row). Words in no document are not selective either: alone they would
 * match nothing (a small library, a question whose rare words are all expansions), and then every
 * word picks candidates.
 */
function ftsWords(parsed: ParsedQuery, stats: Stats): string[] {
  const selective = parsed.ftsWords.filter((w) => {
    const df = stats.df[stem(w)] ?? 0;
    return /^[a-z0-9]+$/.test(w) && df > 0 && df <= stats.n * COMMON_SHARE;
  });
  return selective.length ? selective : parsed.ftsWords.filter((w) => /^[a-z0-9]+$/.test(w));
}

/**
 * The documents matching a tsquery's text (`'fever' | 'rash'`) by the cached lexeme lists, or null
 * when the query is not a plain OR of lexemes or matches more than LEXICAL_MATCHES documents (the
 * caller asks the GIN index then). An empty query (only stop words) matches nothing, as in PostgreSQL.
 * `lexemes`: each lexeme of the documents' `tsv` (tsvector_to_array) with the documents holding it.
 */
export function matchLexemes(tsquery: string, lexemes: Map<string, string[]>, limit = LEXICAL_MATCHES): string[] | null {
  if (tsquery === '') return [];
  const docs = new Set<string>();
  for (const part of tsquery.split(' | ')) {
    const m = /^'((?:[^']|'')*)'$/.exec(part);
    if (!m) return null;
    for (const d of lexemes.get(m[1]!.replace(/''/g, "'")) ?? []) docs.add(d);
  }
  return docs.size > limit ? null : [...docs];
}

/** BM25F's synonym field: the document's own synonyms and its lay phrases, one field. */
const synonymTerms = (d: DocTerms): string[] => (d.l?.length ? [...d.s, ...d.l] : d.s);

/**
 * The document frequencies of DOCS' terms as ingest counts them (title, synonyms, lay phrases of the
 * vocabulary, body): `eval/reference-df.ts` writes the shipped corpus's as `REFERENCE_DF`.
 */
export function documentFrequencies(docs: readonly CorpusDoc[], vocabulary: LayVocabulary = BUILT_IN_LAY_PHRASES): { n: number; df: Record<string, number> } {
  const { n, df } = computeStats(docs.map((d) => termsOf(d, layPhrasesFor(d, vocabulary))));
  return { n, df };
}

function computeStats(all: DocTerms[]): Stats {
  const df: Record<string, number> = {};
  let t = 0;
  let s = 0;
  let b = 0;
  for (const d of all) {
    const syn = synonymTerms(d);
    for (const term of new Set([...d.t, ...syn, ...Object.keys(d.b)])) df[term] = (df[term] ?? 0) + 1;
    t += d.t.length;
    s += syn.length;
    b += d.n;
  }
  const n = Math.max(1, all.length);
  return { n: all.length, df, avgTitle: t / n || 1, avgSyn: s / n || 1, avgBody: b / n || 1 };
}

/**
 * How many documents of a reference collection (`REFERENCE_DF`, the shipped MedQuAD corpus) every
 * library's document frequencies are mixed with, as a prior: p(term in a page) =
 * (df + PRIOR_DOCS × p_reference) / (n + PRIOR_DOCS). A library of a dozen pages cannot tell on its
 * own which words are common: a word it lacks ("baby", "catch") took the highest idf there and
 * outweighed the title it was asked about ("my grandma has shingles, can my baby catch shingles from
 * her?" named Shingles at a title match of 0.09, against 0.3 over the whole corpus). Over a thousand
 * pages the library's own counts dominate, and over the reference corpus itself nothing changes.
 */
export const PRIOR_DOCS = 200;

/** BM25's idf of TERM in the library STATS describes, with the reference collection as a prior (PRIOR_DOCS). */
export function idf(stats: Pick<Stats, 'n' | 'df'>, term: string): number {
  const reference = ((REFERENCE_DF.df[term] ?? 0.5) / (REFERENCE_DF.n + 1)) * PRIOR_DOCS;
  const n = stats.n + PRIOR_DOCS;
  const df = (stats.df[term] ?? 0) + reference;
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/** A question's terms with their idf, their total weight and the set of them: computed once per search, not per document. */
interface QueryWeights {
  terms: ParsedQuery['terms'];
  idf: number[];
  total: number;
  set: Set<string>;
}

function queryWeights(q: ParsedQuery, stats: Stats): QueryWeights {
  const w = q.terms.map((t) => idf(stats, t.term));
  let total = 0;
  q.terms.forEach((t, i) => (total += t.weight * w[i]!));
  return { terms: q.terms, idf: w, total, set: new Set(q.terms.map((t) => t.term)) };
}

/**
 * BM25F over title, synonyms and body, plus: the share of query weight the document covers, and how
 * well the title (or a synonym) matches the question as a whole (all of a title's terms asked about).
 * The document's field normalisations and title idfs are cached with it (loadCache).
 */
function bm25f(doc: CachedDoc, q: QueryWeights): { score: number; coverage: number; titleMatch: number; fullTitle: number } {
  let score = 0;
  let covered = 0;
  let titleHit = 0;
  const { total } = q;
  for (let i = 0; i < q.terms.length; i++) {
    const { term, weight } = q.terms[i]!;
    const w = q.idf[i]!;
    const inTitle = doc.title_.get(term);
    const inSyn = doc.syn.get(term);
    const tf =
      (BM25.wTitle * (inTitle ?? 0)) / doc.titleNorm +
      (BM25.wSyn * (inSyn ?? 0) + BM25.wLay * (doc.lay.get(term) ?? 0)) / doc.synNorm +
      (BM25.wBody * (doc.body.get(term) ?? 0)) / doc.bodyNorm;
    if (tf > 0) {
      score += weight * w * ((tf * (BM25.k1 + 1)) / (tf + BM25.k1));
      covered += weight * w;
    }
    // A lay phrase ("knees grind") describes the topic; only the title and its synonyms name it.
    if (inTitle !== undefined || inSyn !== undefined) titleHit += weight * w;
  }
  // Title match: the fraction of the title's own (idf-weighted) terms the question names.
  let titleShare = 0;
  if (doc.titleIdf > 0) {
    let named = 0;
    for (const [term, w] of doc.titleIdfs) if (q.set.has(term)) named += w;
    titleShare = named / doc.titleIdf;
  }
  const titleMatch = titleShare * (total > 0 ? titleHit / total : 0);
  return { score, coverage: total > 0 ? covered / total : 0, titleMatch, fullTitle: titleShare > 0.9 ? 1 : 0 };
}

/** The documents whose title terms the question's terms hold every one of. */
function titleNamed(parsed: ParsedQuery, byTitleTerm: Map<string, CachedDoc[]>): string[] {
  const named = new Map<CachedDoc, number>();
  for (const { term } of parsed.terms) for (const doc of byTitleTerm.get(term) ?? []) named.set(doc, (named.get(doc) ?? 0) + 1);
  const out: string[] = [];
  for (const [doc, n] of named) if (n === doc.title_.size) out.push(doc.docId);
  return out;
}

/** What a word counts for when it stands in for a misspelt one. */
const SPELLING_WEIGHT = 0.9;

/** What a variant of the person's word counts for: like a lay synonym, below the word itself. */
const VARIANT_WEIGHT = 0.6;

/**
 * The Porter stemmer does not join a word with its derivations ("safe" and "safety", "asthma" and
 * "asthmatic"): a person's word that is a close prefix of a title word's stem, or the other way round,
 * also looks for that title word, at a lower weight. Only title words: they name what pages are about.
 * A misspelt word is replaced by the words it most likely stands for (`corrections`), and two words a
 * title writes as one are joined.
 */
function withTitleVariants(parsed: ParsedQuery, cache: Pick<TenantCache, 'titleStems' | 'titleWords' | 'stats'>): ParsedQuery {
  const have = new Set(parsed.terms.map((t) => t.term));
  const misspelt = new Set<string>();
  const respelt: [string, string][] = [];
  const extra: { term: string; weight: number }[] = [];
  const words: string[] = [];
  const add = (s: string) => {
    if (have.has(s)) return;
    have.add(s);
    extra.push({ term: s, weight: VARIANT_WEIGHT });
    const w = cache.titleWords.get(s);
    if (w && !parsed.ftsWords.includes(w)) words.push(w);
  };
  for (const { term, weight } of parsed.terms) {
    if (weight < 1 || term.length < 4) continue;
    // Longer title stems that start with the term.
    let lo = 0;
    let hi = cache.titleStems.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cache.titleStems[mid]! < term) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < cache.titleStems.length && cache.titleStems[i]!.startsWith(term); i++) {
      const s = cache.titleStems[i]!;
      if (s.length > term.length && s.length - term.length <= FAMILY_LETTERS) add(s);
    }
    // Shorter title stems the term starts with.
    for (let n = Math.max(4, term.length - FAMILY_LETTERS); n < term.length; n++) {
      const s = term.slice(0, n);
      if (cache.titleWords.has(s)) add(s);
    }
    // A word no document holds is most likely misspelt ("tetnus", "trigliserides", "lupis"): the
    // library's words fewest edits away stand in for it, and it goes (it matches nothing, and would
    // count as a part of the question no page covers).
    if (!cache.stats.df[term]) {
      let fixes = corrections(term, cache.stats).filter((s) => !have.has(s));
      // The stemmer can cut a misspelt word far from where it cuts the word ("appendiciis" keeps its
      // letters, "appendicitis" is "append"): the word as written, against the titles' words.
      if (!fixes.length) {
        const written = parsed.ftsWords.find((w) => stem(w) === term);
        if (written) fixes = titleWordCorrections(written, cache.titleWords).filter((s) => !have.has(s));
      }
      if (fixes.length) {
        misspelt.add(term);
        respelt.push([term, fixes[0]!]);
      }
      for (const s of fixes) {
        have.add(s);
        extra.push({ term: s, weight: SPELLING_WEIGHT });
        const w = cache.titleWords.get(s);
        if (w && !parsed.ftsWords.includes(w)) words.push(w);
      }
    }
  }
  // Two words a title writes as one ("bed bugs" / Bedbugs, "pink eye" / Pinkeye, "nose bleed").
  for (let i = 0; i + 1 < parsed.ftsWords.length; i++) {
    const joined = `${parsed.ftsWords[i]}${parsed.ftsWords[i + 1]}`;
    const s = stem(joined);
    if (s.length >= 6 && cache.titleWords.has(s) && !have.has(s)) {
      have.add(s);
      extra.push({ term: s, weight: 1 });
      words.push(cache.titleWords.get(s)!);
    }
  }
  if (!extra.length) return parsed;
  const terms = misspelt.size ? parsed.terms.filter((t) => !misspelt.has(t.term)) : parsed.terms;
  return { ...parsed, terms: [...terms, ...extra], ftsWords: [...parsed.ftsWords, ...words], ...(respelt.length ? { respelt } : {}) };
}

/** The stems of the titles' words a word as written is fewest edits from (one; two from 8 letters); the same guards as `corrections`. */
function titleWordCorrections(word: string, titleWords: ReadonlyMap<string, string>): string[] {
  if (word.length < 4 || EVERYDAY_STEMS.has(stem(word))) return [];
  // `titleWords` maps each stem to a title word with that stem.
  return nearest(word, [...titleWords.values()].filter((w) => w[0] === word[0])).map(stem).slice(0, 3);
}

/** How many edits a misspelt word may be from the word meant: one; two from 8 letters. */
const editBudget = (word: string) => (word.length >= 8 ? 2 : 1);

/** The candidates fewest edits from `word`, within its budget, in the order met. */
function nearest(word: string, candidates: Iterable<string>): string[] {
  const budget = editBudget(word);
  let best = budget + 1;
  let found: string[] = [];
  for (const c of candidates) {
    const d = editDistance(word, c, Math.min(budget, best));
    if (d > budget || d > best) continue;
    if (d < best) {
      best = d;
      found = [c];
    } else found.push(c);
  }
  return found;
}

/** The question with each misspelt word replaced by the stem most likely meant, for the local embedder (which knows only the library's words). */
export function respell(question: string, respelt: readonly [string, string][]): string {
  const meant = new Map(respelt);
  return question.replace(/[\p{L}']+/gu, (w) => meant.get(stem(normalise(w))) ?? w);
}

/**
 * The stems of a library and of the reference corpus (for `corrections`), by their first letter and by
 * their second, each by length; made on a library's first misspelt word.
 */
interface SpellingIndex {
  first: Map<string, string[][]>;
  second: Map<string, string[][]>;
}
const SPELLING_INDEX = new WeakMap<Pick<Stats, 'df'>, SpellingIndex>();

function spellingIndex(stats: Pick<Stats, 'df'>): SpellingIndex {
  let index = SPELLING_INDEX.get(stats);
  if (index) return index;
  index = { first: new Map(), second: new Map() };
  const put = (by: Map<string, string[][]>, letter: string, s: string) => {
    let lengths = by.get(letter);
    if (!lengths) by.set(letter, (lengths = []));
    (lengths[s.length] ??= []).push(s);
  };
  for (const s of new Set([...Object.keys(stats.df), ...Object.keys(REFERENCE_DF.df)])) {
    if (s.length < 4) continue;
    put(index.first, s[0]!, s);
    put(index.second, s[1]!, s);
  }
  SPELLING_INDEX.set(stats, index);
  return index;
}

/**
 * What a stem no page holds most likely stands for: the stems of the library and of the reference corpus
 * the fewest edits away (one; two for a stem of 8 letters or more; a swap of two letters is one), the
 * three most frequent of them; none for a stem under 4 letters, or one the reference corpus or everyday
 * writing holds. A word the library lacks is read the same whatever the library's size: a small
 * library's few words do not stand in for it (they would answer questions about other topics). Only
 * stems that start with the word's first letter are compared, or that lost it ("neumonia") or gained
 * one: people seldom get a word's first letter wrong, and it keeps the search to about a millisecond.
 */
export function corrections(term: string, stats: Pick<Stats, 'df'>): string[] {
  // A word of the reference corpus or of everyday writing is a word, not a misspelling, even where a
  // small library lacks it ("baby" among a dozen pages, "anyway").
  if (term.length < 4 || REFERENCE_DF.df[term] !== undefined || EVERYDAY_STEMS.has(term)) return [];
  const index = spellingIndex(stats);
  const pools = [index.first.get(term[0]!), index.second.get(term[0]!), index.first.get(term[1]!)];
  const budget = editBudget(term);
  const candidates = function* () {
    for (let n = Math.max(4, term.length - budget); n <= term.length + budget; n++) for (const pool of pools) yield* pool?.[n] ?? [];
  };
  const found = new Set(nearest(term, candidates()));
  const frequency = (x: string) => (stats.df[x] ?? 0) + (REFERENCE_DF.df[x] ?? 0);
  return [...found].sort((a, b) => frequency(b) - frequency(a) || (a < b ? -1 : 1)).slice(0, 3);
}

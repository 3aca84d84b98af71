/** The engine's public shapes: what the plugin shell (stage, routes, CLI) consumes. */

/** One source document (a topic page) as ingested. */
export interface CorpusDoc {
  id: string;
  title: string;
  url?: string | null;
  source?: string | null;
  text: string;
  synonyms?: string[];
  collection?: string | null;
}

/** One retrieved document, represented by its best chunk. */
export interface Hit {
  docId: string;
  chunkId: string;
  title: string;
  url: string | null;
  source: string | null;
  /** The section heading the chunk belongs to (Overview, Symptoms, ...). */
  section: string | null;
  text: string;
  /** Final ranking score (higher is better); comparable within one search only. */
  score: number;
  /**
   * The document's BM25F for the question (title and synonyms boosted), on its own scale: unlike `score`
   * it does not move when the ranking's weights are refitted, so the confidence model reads it.
   */
  bm25f: number;
  /** 1-based rank in the full-text candidate list, null when full-text search did not return it. */
  lexicalRank: number | null;
  /** 1-based rank in the vector candidate list, null when not returned (or lexical-only mode). */
  vectorRank: number | null;
  /** Fraction of the query's content terms found in the document (0..1). */
  coverage?: number;
  /** How fully the question names this document's title or a synonym (0..1); low for off-topic text. */
  titleMatch?: number;
  /** Every section of the document that best matches the question (for the answer composer). */
  sections?: { heading: string; text: string }[];
  /** The question type the query was read as ('symptoms', 'treatment', ...), null when none. */
  questionType?: string | null;
  /**
   * On the first hit: how much more of the question a health topic the library does not hold names
   * than its top pages do (engine/elsewhere.ts), 0..1; the confidence reads it.
   */
  elsewhere?: number;
  /**
   * How many documents the tenant's library held when it was searched. The confidence reads it: in a
   * library of a few dozen pages every question finds some page first, however far from it.
   */
  libraryDocs?: number;
}

export interface Citation {
  docId: string;
  title: string;
  url: string | null;
}

export interface Answer {
  text: string;
  citations: Citation[];
  /** Calibrated from retrieval (margin between the top documents, query-term coverage), 0..1. */
  confidence: number;
  hits: Hit[];
}

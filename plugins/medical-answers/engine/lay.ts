/**
 * Lay phrases for the documents: the words people use for a topic (`lay-phrases.ts`), given at ingest to
 * every document whose title, or one of whose synonyms, is that topic. They are indexed like the
 * document's synonyms (the full-text vector's B weight, BM25F's synonym field, the local embedder's
 * fitting text) so that "my knees grind and creak" finds Osteoarthritis, and are never quoted in an
 * answer: the document's text and its own synonyms are stored as given.
 */
import { LAY_PHRASES } from './lay-phrases.js';
import type { CorpusDoc } from './types.js';

/** Topic → phrases; keys as `layKey` writes them. */
export type LayVocabulary = Readonly<Record<string, readonly string[]>>;

/** The vocabulary shipped with the engine. */
export const BUILT_IN_LAY_PHRASES: LayVocabulary = LAY_PHRASES;

/** A title as the vocabulary keys it: lower case, letters and digits, single spaces. */
export function layKey(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

/** The vocabulary's phrases for a document: those of its title, then of its synonyms, each once. */
export function layPhrasesFor(doc: Pick<CorpusDoc, 'title' | 'synonyms'>, vocabulary: LayVocabulary): string[] {
  const out = new Set<string>();
  for (const name of [doc.title, ...(doc.synonyms ?? [])]) for (const phrase of vocabulary[layKey(name)] ?? []) out.add(phrase);
  return [...out];
}

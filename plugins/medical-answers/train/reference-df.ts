/**
 * The table `engine/reference-df.ts` ships: the document frequencies of the engine's terms over the
 * bundled corpus (`corpora/medquad/corpus.jsonl`, with the built-in lay phrases), terms of two pages
 * or more, in sorted order. `eval/reference-df.ts` writes it; `engine/reference-df.test.ts` checks it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { documentFrequencies } from '../engine/store.js';
import type { CorpusDoc } from '../engine/types.js';

export const BUNDLED_CORPUS = fileURLToPath(new URL('../../../corpora/medquad/corpus.jsonl', import.meta.url));

export function referenceTable(corpus = BUNDLED_CORPUS): { n: number; df: Record<string, number> } {
  const docs = readFileSync(corpus, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as CorpusDoc);
  const { n, df } = documentFrequencies(docs);
  return { n, df: Object.fromEntries(Object.entries(df).filter(([, k]) => k >= 2).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
}

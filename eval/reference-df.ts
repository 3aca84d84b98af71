/**
 * Writes `plugins/medical-answers/engine/reference-df.ts`: the document frequencies of the engine's
 * terms over the shipped corpus (`corpora/medquad/corpus.jsonl`, 1,710 pages, with the built-in lay
 * phrases), the prior every library's idf is mixed with (`PRIOR_DOCS`, engine/store.ts). Terms in one
 * page only are left out (the idf reads a missing term as half a page).
 *
 *   npx tsx eval/reference-df.ts [--check]
 *
 * `--check` exits 1 when the shipped table is not what the corpus gives (engine/reference-df.test.ts
 * runs the same comparison).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REFERENCE_DF } from '../plugins/medical-answers/engine/reference-df.js';
import { referenceTable } from '../plugins/medical-answers/train/reference-df.js';

const OUT = fileURLToPath(new URL('../plugins/medical-answers/engine/reference-df.ts', import.meta.url));

const table = referenceTable();
if (process.argv.includes('--check')) {
  const same = JSON.stringify(table) === JSON.stringify(REFERENCE_DF);
  console.log(same ? 'reference-df.ts is what the corpus gives' : 'reference-df.ts differs from the corpus: run npx tsx eval/reference-df.ts');
  process.exit(same ? 0 : 1);
}
writeFileSync(
  OUT,
  `/**\n * Document frequencies of the engine's stems over the shipped MedQuAD corpus (corpora/medquad, ${table.n} pages, with the\n * built-in lay phrases), terms of two pages or more: the prior of every library's idf (PRIOR_DOCS in store.ts).\n * Written by eval/reference-df.ts; do not edit by hand.\n */\nexport const REFERENCE_DF: { readonly n: number; readonly df: Readonly<Record<string, number>> } = { n: ${table.n}, df: ${JSON.stringify(table.df)} };\n`,
);
console.log(`wrote ${OUT}: ${Object.keys(table.df).length} terms`);

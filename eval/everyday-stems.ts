/**
 * Writes `plugins/medical-answers/engine/everyday-stems.ts`: the everyday words people write to the
 * clinic that the shipped corpus does not hold (`plugins/medical-answers/train/everyday-stems.ts`
 * says which). The search never takes them for misspellings (engine/store.ts, `corrections`).
 *
 *   npx tsx eval/everyday-stems.ts [--check]
 *
 * `--check` exits 1 when the shipped list is not what the training texts give
 * (engine/everyday-stems.test.ts runs the same comparison).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EVERYDAY_STEMS } from '../plugins/medical-answers/engine/everyday-stems.js';
import { everydayStems } from '../plugins/medical-answers/train/everyday-stems.js';

const OUT = fileURLToPath(new URL('../plugins/medical-answers/engine/everyday-stems.ts', import.meta.url));

const stems = everydayStems();
if (process.argv.includes('--check')) {
  const same = JSON.stringify(stems) === JSON.stringify([...EVERYDAY_STEMS]);
  console.log(same ? 'everyday-stems.ts is what the training texts give' : 'everyday-stems.ts differs from the training texts: run npx tsx eval/everyday-stems.ts');
  process.exit(same ? 0 : 1);
}
writeFileSync(
  OUT,
  `/**\n * Stems of everyday words people write that the shipped corpus does not hold (train/everyday-stems.ts): never read as\n * misspellings (store.ts, \`corrections\`). Written by eval/everyday-stems.ts; do not edit by hand.\n */\nexport const EVERYDAY_STEMS: ReadonlySet<string> = new Set(${JSON.stringify(stems)});\n`,
);
console.log(`wrote ${OUT}: ${stems.length} stems`);

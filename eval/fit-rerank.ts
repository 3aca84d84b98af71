/**
 * Fits the weights of medical-answers' candidate ranking (`RERANK_WEIGHTS` in engine/store.ts) on
 * questions with known answers, and reports recall@1 with the fitted and the current weights.
 *
 *   npx tsx eval/fit-rerank.ts --data-dir DIR --train FILE [--train FILE ...] [--test FILE ...] [--cv]
 *
 * DIR is an embedded database with the corpus ingested as tenant `eval` (made on first use). Each
 * question's fused candidates and their features (`RERANK_FEATURES`) are read once through
 * `search(..., { onCandidates })`; the weights are then fitted in memory by a listwise softmax
 * (the probability mass on the expected documents among the candidates, maximised), every question
 * weighing the same (templated ones at a quarter, as before 2026-12-03, won 10 more hand-written
 * questions in the cross-validation and lost 4 more templated ones), with a small L2 pull toward the
 * current weights.
 */
import { readFileSync } from 'node:fs';
import { RERANK_FEATURES, RERANK_WEIGHTS } from '../plugins/medical-answers/engine/store.js';
import { argValues, fitListwise, openStore, type RankedList } from './fitting.js';

interface Item extends RankedList {
  file: string;
  templated: boolean;
}

const dataDir = argValues('--data-dir')[0];
if (!dataDir) throw new Error('--data-dir DIR is required');

/** Each question's fused candidates, their features, and which are expected. */
async function collect(files: string[]): Promise<Item[]> {
  const { store, close } = await openStore(dataDir!);
  try {
    const items: Item[] = [];
    for (const file of files) {
      for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
        const q = JSON.parse(line) as { id: string; question: string; expected_doc_ids: string[]; origin: string };
        let cands: { docId: string; features: number[] }[] = [];
        await store.search('eval', q.question, { k: 1, onCandidates: (c) => (cands = c) });
        const templated = q.origin === 'medquad_template';
        items.push({ file, templated, weight: 1, features: cands.map((c) => c.features), good: cands.map((c) => q.expected_doc_ids.includes(c.docId)) });
      }
    }
    return items;
  } finally {
    await close();
  }
}

const scoreOf = (w: readonly number[], f: readonly number[]) => f.reduce((n, x, i) => n + x * w[i]!, 0);

/** How many of the items have an expected document ranked first by `w`. */
function rightAt1(items: Item[], w: readonly number[]): number {
  let hit = 0;
  for (const it of items) {
    let best = -1;
    let bestScore = -Infinity;
    it.features.forEach((f, i) => {
      const s = scoreOf(w, f);
      if (s > bestScore) [best, bestScore] = [i, s];
    });
    if (best >= 0 && it.good[best]) hit++;
  }
  return hit;
}

const recallAt1 = (items: Item[], w: readonly number[]) => rightAt1(items, w) / Math.max(1, items.length);
const fit = (items: Item[]) => fitListwise(items, RERANK_WEIGHTS, { l2: 0.01, epochs: 3000 });

const train = argValues('--train');
const test = argValues('--test');
const items = await collect([...train, ...test]);
if (process.argv.includes('--cv')) {
  let before = 0;
  let after = 0;
  for (const file of train) {
    const held = items.filter((it) => it.file === file && !it.templated);
    const fold = fit(items.filter((it) => it.file !== file && train.includes(it.file)));
    const [b, a] = [rightAt1(held, RERANK_WEIGHTS), rightAt1(held, fold)];
    before += b;
    after += a;
    console.log(`cv ${file.split('/').pop()} hand-written (${held.length}): right at rank 1 current ${b}, fitted without it ${a}`);
  }
  console.log(`cv all: current ${before}, fitted ${after}`);
}
const w = fit(items.filter((it) => train.includes(it.file)));
console.log(`features ${RERANK_FEATURES.join(', ')}`);
console.log(`current ${RERANK_WEIGHTS.join(', ')}`);
console.log(`fitted  ${w.join(', ')}`);
for (const file of [...train, ...test]) {
  for (const templated of [true, false]) {
    const group = items.filter((it) => it.file === file && it.templated === templated);
    if (!group.length) continue;
    console.log(`${train.includes(file) ? 'train' : 'test '} ${file.split('/').pop()} ${templated ? 'templated' : 'hand-written'} (${group.length}): R@1 current ${recallAt1(group, RERANK_WEIGHTS).toFixed(3)}, fitted ${recallAt1(group, w).toFixed(3)}`);
  }
}

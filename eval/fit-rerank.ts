/**
 * Fits the weights of medical-answers' candidate ranking (`RERANK_WEIGHTS` in engine/store.ts) on
 * questions with known answers, and reports recall@1 with the fitted and the current weights.
 *
 *   npx tsx eval/fit-rerank.ts --data-dir DIR --train FILE [--train FILE ...] [--test FILE ...]
 *
 * DIR is an embedded database with the corpus ingested as tenant `eval` (made on first use). Each
 * question's fused candidates and their features (`RERANK_FEATURES`) are read once through
 * `search(..., { onCandidates })`; the weights are then fitted in memory by a listwise softmax
 * (the probability mass on the expected documents among the candidates, maximised), templated
 * questions weighted a quarter of hand-written ones, with a small L2 pull toward the current weights.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { pino } from 'pino';
import { openDatabase } from '../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../core/storage/migrations.js';
import { MedicalStore, RERANK_FEATURES, RERANK_WEIGHTS } from '../plugins/medical-answers/engine/store.js';
import { readCorpus } from './medical-answers.js';

interface Item {
  file: string;
  id: string;
  templated: boolean;
  cands: { features: number[]; good: boolean }[];
}

const args = process.argv.slice(2);
const many = (flag: string) => args.flatMap((a, i) => (a === flag && args[i + 1] ? [args[i + 1]!] : []));
const dataDir = many('--data-dir')[0];
if (!dataDir) throw new Error('--data-dir DIR is required');

async function collect(files: string[]): Promise<Item[]> {
  const fresh = !existsSync(dataDir!);
  mkdirSync(dataDir!, { recursive: true });
  const log = pino({ level: 'warn' });
  const db = await openDatabase({ dataDir: dataDir!, poolSize: 4, log });
  try {
    await ensureMigrationTable(db.pool);
    await applyMigrations(db.pool, 'medical-answers', MedicalStore.migrations());
    const store = new MedicalStore(db.pool, { log });
    await store.init({});
    if (fresh) await store.ingest('eval', readCorpus(new URL('../corpora/medquad/corpus.jsonl', import.meta.url).pathname));
    const items: Item[] = [];
    for (const file of files) {
      for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
        const q = JSON.parse(line) as { id: string; question: string; expected_doc_ids: string[]; origin: string };
        let cands: Item['cands'] = [];
        await store.search('eval', q.question, { k: 1, onCandidates: (c) => (cands = c.map((x) => ({ features: x.features, good: q.expected_doc_ids.includes(x.docId) }))) });
        items.push({ file, id: q.id, templated: q.origin === 'medquad_template', cands });
      }
    }
    return items;
  } finally {
    await db.close();
  }
}

const scoreOf = (w: readonly number[], f: readonly number[]) => f.reduce((n, x, i) => n + x * w[i]!, 0);

function fit(items: Item[], start: readonly number[], l2 = 0.01, epochs = 3000): number[] {
  const w = [...start];
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  const usable = items.filter((it) => it.cands.some((c) => c.good));
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const g = w.map(() => 0);
    let total = 0;
    for (const it of usable) {
      const weight = it.templated ? 0.25 : 1;
      total += weight;
      const s = it.cands.map((c) => scoreOf(w, c.features));
      const max = Math.max(...s);
      const e = s.map((x) => Math.exp(x - max));
      const z = e.reduce((a, b) => a + b, 0);
      const zGood = it.cands.reduce((a, c, i) => a + (c.good ? e[i]! : 0), 0);
      // d(-log(zGood/z))/dw = E_all[f] - E_good[f]
      it.cands.forEach((c, i) => {
        const p = e[i]! / z - (c.good ? e[i]! / zGood : 0);
        c.features.forEach((x, j) => (g[j]! += weight * p * x));
      });
    }
    for (let j = 0; j < w.length; j++) {
      const grad = g[j]! / total + l2 * (w[j]! - start[j]!);
      m[j] = 0.9 * m[j]! + 0.1 * grad;
      v[j] = 0.999 * v[j]! + 0.001 * grad * grad;
      w[j]! -= (0.02 * (m[j]! / (1 - 0.9 ** epoch))) / (Math.sqrt(v[j]! / (1 - 0.999 ** epoch)) + 1e-8);
    }
  }
  return w.map((x) => Math.round(x * 100) / 100);
}

function recallAt1(items: Item[], w: readonly number[]): number {
  let hit = 0;
  for (const it of items) {
    let best = -1;
    let bestScore = -Infinity;
    it.cands.forEach((c, i) => {
      const s = scoreOf(w, c.features);
      if (s > bestScore) [best, bestScore] = [i, s];
    });
    if (best >= 0 && it.cands[best]!.good) hit++;
  }
  return hit / Math.max(1, items.length);
}

const train = many('--train');
const test = many('--test');
const items = await collect([...train, ...test]);
const w = fit(items.filter((it) => train.includes(it.file)), RERANK_WEIGHTS);
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

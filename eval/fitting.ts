/**
 * What the medical-answers fitting scripts share (`fit-confidence.ts`, `fit-rerank.ts`, `fit-answer.ts`):
 * an embedded database with the corpus ingested as tenant `eval`, their command-line values, and a
 * listwise softmax fit of linear weights.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openDatabase } from '../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../core/storage/migrations.js';
import { MedicalStore } from '../plugins/medical-answers/engine/store.js';
import { readCorpus } from './medical-answers.js';

/** Every value given after `flag` on the command line (`--test A --test B`). */
export const argValues = (flag: string): string[] => process.argv.slice(2).flatMap((a, i, all) => (a === flag && all[i + 1] ? [all[i + 1]!] : []));

/** The shared corpus, a JSONL file of its pages. */
export const CORPUS = fileURLToPath(new URL('../corpora/medquad/corpus.jsonl', import.meta.url));

/** The store over DIR, made and ingested with CORPUS (the shared one unless given) on first use (about 20 s). */
export async function openStore(dataDir: string, corpus = CORPUS): Promise<{ store: MedicalStore; close: () => Promise<void> }> {
  const fresh = !existsSync(dataDir);
  mkdirSync(dataDir, { recursive: true });
  const log = pino({ level: 'warn' });
  const db = await openDatabase({ dataDir, poolSize: 4, log });
  await ensureMigrationTable(db.pool);
  await applyMigrations(db.pool, 'medical-answers', MedicalStore.migrations());
  const store = new MedicalStore(db.pool, { log });
  await store.init({});
  if (fresh) await store.ingest('eval', readCorpus(corpus));
  return { store, close: () => db.close() };
}

/** One ranked list: each candidate's features, which candidates are right, and what the list weighs. */
export interface RankedList {
  features: number[][];
  good: boolean[];
  weight: number;
}

/**
 * Linear weights that put the probability mass of a softmax over each list on its right candidates
 * (lists without one are left out), fitted by full-batch Adam from `start` with an L2 pull back toward
 * it; rounded to two decimals.
 */
export function fitListwise(lists: readonly RankedList[], start: readonly number[], opts: { l2: number; epochs: number }): number[] {
  const w = [...start];
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  const usable = lists.filter((l) => l.good.some(Boolean));
  const total = usable.reduce((n, l) => n + l.weight, 0);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const g = w.map(() => 0);
    for (const list of usable) {
      const s = list.features.map((f) => f.reduce((n, x, j) => n + x * w[j]!, 0));
      const max = Math.max(...s);
      const e = s.map((x) => Math.exp(x - max));
      const z = e.reduce((a, b) => a + b, 0);
      const zGood = e.reduce((a, x, i) => a + (list.good[i] ? x : 0), 0);
      // d(-log(zGood/z))/dw = E_all[f] - E_good[f]
      list.features.forEach((f, i) => {
        const p = e[i]! / z - (list.good[i] ? e[i]! / zGood : 0);
        f.forEach((x, j) => (g[j]! += list.weight * p * x));
      });
    }
    for (let j = 0; j < w.length; j++) {
      const grad = g[j]! / total + opts.l2 * (w[j]! - start[j]!);
      m[j] = 0.9 * m[j]! + 0.1 * grad;
      v[j] = 0.999 * v[j]! + 0.001 * grad * grad;
      w[j]! -= (0.02 * (m[j]! / (1 - 0.9 ** epoch))) / (Math.sqrt(v[j]! / (1 - 0.999 ** epoch)) + 1e-8);
    }
  }
  return w.map((x) => Math.round(x * 100) / 100);
}

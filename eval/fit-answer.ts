/**
 * Fits the weights of the answer composer's unit scoring (`UNIT_WEIGHTS` in
 * plugins/medical-answers/engine/answer.ts) on
 * hand-written questions whose `evidence` phrases say what a good answer contains, and reports
 * evidence recall within the SMS budget with the current and the fitted weights.
 *
 *   npx tsx eval/fit-answer.ts --data-dir DIR [--test FILE ...]
 *
 * Trains on the dev set's hand-written questions and `plugins/medical-answers/train/sets/questions_*.jsonl`: for each question
 * whose first hit is an expected document, the units of that document's answer sections, labelled by
 * whether they hold an evidence phrase; a listwise softmax (probability mass on the evidence units)
 * with a small L2 pull toward the current weights. DIR as for fit-confidence.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { answerUnits, composeAnswer, DEFAULT_REDACTIONS, render, UNIT_FEATURES, UNIT_WEIGHTS } from '../plugins/medical-answers/engine/answer.js';
import type { Hit } from '../plugins/medical-answers/engine/types.js';
import { settingsSchema } from '../plugins/medical-answers/settings.js';
import { openStore } from './fit-confidence.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SETS = `${ROOT}plugins/medical-answers/train/sets/`;
const DEFAULTS = settingsSchema.parse({});
/** The eval's SMS budget: two segments less the disclaimer line (eval/medical-answers.ts). */
const SMS = DEFAULTS.maxChars.sms - ((DEFAULTS.disclaimer?.length ?? 0) + 1);

interface Q {
  id: string;
  question: string;
  expected_doc_ids: string[];
  evidence?: string[];
  origin: string;
}
const read = (path: string): Q[] => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Q).filter((q) => q.origin !== 'medquad_template' && q.evidence?.length);

function fit(items: { features: number[][]; good: boolean[] }[], start: readonly number[], l2 = 0.02, epochs = 2000): number[] {
  const w = [...start];
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const g = w.map(() => 0);
    for (const it of items) {
      const s = it.features.map((f) => f.reduce((n, x, j) => n + x * w[j]!, 0));
      const max = Math.max(...s);
      const e = s.map((x) => Math.exp(x - max));
      const z = e.reduce((a, b) => a + b, 0);
      const zGood = e.reduce((a, x, i) => a + (it.good[i] ? x : 0), 0);
      it.features.forEach((f, i) => {
        const p = e[i]! / z - (it.good[i] ? e[i]! / zGood : 0);
        f.forEach((x, j) => (g[j]! += p * x));
      });
    }
    for (let j = 0; j < w.length; j++) {
      const grad = g[j]! / items.length + l2 * (w[j]! - start[j]!);
      m[j] = 0.9 * m[j]! + 0.1 * grad;
      v[j] = 0.999 * v[j]! + 0.001 * grad * grad;
      w[j]! -= (0.02 * (m[j]! / (1 - 0.9 ** epoch))) / (Math.sqrt(v[j]! / (1 - 0.999 ** epoch)) + 1e-8);
    }
  }
  return w.map((x) => Math.round(x * 100) / 100);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const many = (flag: string) => args.flatMap((a, i) => (a === flag && args[i + 1] ? [args[i + 1]!] : []));
  const dataDir = many('--data-dir')[0];
  if (!dataDir) throw new Error('--data-dir DIR is required');
  const trainFiles = [`${ROOT}corpora/medquad/dev_eval.jsonl`, ...readdirSync(SETS).filter((f) => /^questions_.*\.jsonl$/.test(f)).sort().map((f) => `${SETS}${f}`)];
  const { store, close } = await openStore(dataDir);
  try {
    const hitsOf = new Map<string, Hit[]>();
    const search = async (q: Q) => hitsOf.get(q.id) ?? (hitsOf.set(q.id, await store.search('eval', q.question, { k: 10 })), hitsOf.get(q.id)!);
    const items: { features: number[][]; good: boolean[] }[] = [];
    for (const file of trainFiles) {
      for (const q of read(file)) {
        const hits = await search(q);
        if (!hits[0] || !q.expected_doc_ids.includes(hits[0].docId)) continue;
        const cite = `Source: ${hits[0].title}${hits[0].url ? ` ${hits[0].url}` : ''}`;
        const { units } = answerUnits(q.question, hits[0], SMS - cite.length - 1, DEFAULT_REDACTIONS);
        const good = units.map((u) => {
          const whole = (render(u, 100_000) ?? u.text).toLowerCase();
          return q.evidence!.some((e) => whole.includes(e.toLowerCase()));
        });
        if (good.some(Boolean)) items.push({ features: units.map((u) => u.features), good });
      }
    }
    const fitted = fit(items, UNIT_WEIGHTS);
    console.log(`units of ${items.length} questions; features ${UNIT_FEATURES.join(', ')}`);
    console.log(`current ${UNIT_WEIGHTS.join(', ')}\nfitted  ${fitted.join(', ')}`);
    const recall = async (qs: Q[], unitWeights: readonly number[], leadBySaying: boolean) => {
      let hit = 0;
      for (const q of qs) {
        const a = composeAnswer(q.question, await search(q), { maxChars: SMS, minConfidence: DEFAULTS.minConfidence, unitWeights, leadBySaying });
        if (a && q.evidence!.some((e) => a.text.toLowerCase().includes(e.toLowerCase()))) hit++;
      }
      return (hit / Math.max(1, qs.length)).toFixed(3);
    };
    for (const file of [...trainFiles, ...many('--test')]) {
      const qs = read(file);
      console.log(`${trainFiles.includes(file) ? 'train' : 'test '} ${file.replace(ROOT, '')} (${qs.length}): evidence SMS current ${await recall(qs, UNIT_WEIGHTS, true)}, fitted ${await recall(qs, fitted, true)}, fitted without the lead rule ${await recall(qs, fitted, false)}`);
    }
  } finally {
    await close();
  }
}

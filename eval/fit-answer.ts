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
import { argValues, fitListwise, openStore, type RankedList } from './fitting.js';

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

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dataDir = argValues('--data-dir')[0];
  if (!dataDir) throw new Error('--data-dir DIR is required');
  const trainFiles = [`${ROOT}corpora/medquad/dev_eval.jsonl`, ...readdirSync(SETS).filter((f) => /^questions_.*\.jsonl$/.test(f)).sort().map((f) => `${SETS}${f}`)];
  const { store, close } = await openStore(dataDir);
  try {
    const hitsOf = new Map<string, Hit[]>();
    const search = async (q: Q) => hitsOf.get(q.id) ?? (hitsOf.set(q.id, await store.search('eval', q.question, { k: 10 })), hitsOf.get(q.id)!);
    const items: RankedList[] = [];
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
        if (good.some(Boolean)) items.push({ features: units.map((u) => u.features), good, weight: 1 });
      }
    }
    const fitted = fitListwise(items, UNIT_WEIGHTS, { l2: 0.02, epochs: 2000 });
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
    for (const file of [...trainFiles, ...argValues('--test')]) {
      const qs = read(file);
      console.log(`${trainFiles.includes(file) ? 'train' : 'test '} ${file.replace(ROOT, '')} (${qs.length}): evidence SMS current ${await recall(qs, UNIT_WEIGHTS, true)}, fitted ${await recall(qs, fitted, true)}, fitted without the lead rule ${await recall(qs, fitted, false)}`);
    }
  } finally {
    await close();
  }
}

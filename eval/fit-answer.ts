/**
 * Fits the answer composer's unit scoring (`UNIT_WEIGHTS` in plugins/medical-answers/engine/answer.ts)
 * and learns its word pairs (`answer-pairs.ts`) on hand-written questions whose `evidence` phrases say
 * what a good answer contains; reports evidence recall within the SMS budget.
 *
 *   npx tsx eval/fit-answer.ts --data-dir DIR [--cv] [--write] [--test FILE ...]
 *
 * Trains on the dev set's hand-written questions, `plugins/medical-answers/train/sets/questions_*.jsonl`
 * and `eval/sets/questions_{c,d,e,f,test}.jsonl` (never the `questions_final*` sets): for each question
 * whose first hit is an expected document, the units of that document's answer sections, labelled by
 * whether they hold an evidence phrase. The pairs are learned on one half of these lists and scored on
 * the other (cross-fitting: a pair learned from a list would otherwise vouch for itself there), the
 * weights fitted over both halves by a listwise softmax with a small L2 pull toward the hand-set
 * weights; the shipped table is then learned from every list. `--cv` repeats all of it with each
 * training file left out in turn and reports that file; `--write` writes
 * plugins/medical-answers/engine/answer-weights.ts. DIR as for fit-confidence.ts.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { learnPairs, pairScore, serialisePairs, type PairList, type PairTable } from '../plugins/medical-answers/engine/answer-pairs.js';
import { answerUnits, composeAnswer, DEFAULT_REDACTIONS, HAND_UNIT_WEIGHTS, LEAD_BY_SAYING, render, shippedPairTable, UNIT_FEATURES, UNIT_WEIGHTS } from '../plugins/medical-answers/engine/answer.js';
import type { Hit } from '../plugins/medical-answers/engine/types.js';
import { settingsSchema } from '../plugins/medical-answers/settings.js';
import { argValues, fitListwise, openStore, type RankedList } from './fitting.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SETS = `${ROOT}plugins/medical-answers/train/sets/`;
const DEFAULTS = settingsSchema.parse({});
/** The eval's SMS budget: two segments less the disclaimer line (eval/medical-answers.ts). */
const SMS = DEFAULTS.maxChars.sms - ((DEFAULTS.disclaimer?.length ?? 0) + 1);
const PAIRS = UNIT_FEATURES.indexOf('pairs');
const NONE: PairTable = new Map();

interface Q {
  id: string;
  question: string;
  expected_doc_ids: string[];
  evidence?: string[];
  origin: string;
}
const read = (path: string): Q[] => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Q).filter((q) => q.origin !== 'medquad_template' && q.evidence?.length);
const holds = (q: Q, text: string) => q.evidence!.some((e) => text.toLowerCase().includes(e.toLowerCase()));

/** One question's answer list: the units' features without the pairs, their stems, which answer. */
interface Item extends RankedList, PairList {
  file: string;
  asking: boolean;
  says: boolean[];
}

/** The lists' features with the pairs of `table`. */
const withPairs = (items: readonly Item[], table: PairTable): RankedList[] =>
  items.map((it) => ({ weight: 1, good: it.good, features: it.features.map((f, i) => f.map((x, j) => (j === PAIRS ? pairScore(table, it.question, it.units[i]!.stems) : x))) }));

/** Cross-fitted weights and the table learned from every list (see the header). */
function fit(items: readonly Item[]): { weights: number[]; table: PairTable } {
  const halves = [items.filter((_, i) => i % 2 === 0), items.filter((_, i) => i % 2 === 1)];
  const tables = halves.map((h) => learnPairs(h));
  const lists = [...withPairs(halves[0]!, tables[1]!), ...withPairs(halves[1]!, tables[0]!)];
  return { weights: fitListwise(lists, HAND_UNIT_WEIGHTS, { l2: 0.02, epochs: 2000 }), table: learnPairs(items) };
}

/** Of the lists, how many have an answering unit first, and within the first two, as the composer orders them. */
function ranks(items: readonly Item[], weights: readonly number[], table: PairTable): [number, number] {
  let first = 0;
  let two = 0;
  for (const [k, list] of withPairs(items, table).entries()) {
    const it = items[k]!;
    const score = list.features.map((f) => f.reduce((n, x, j) => n + x * weights[j]!, 0));
    const order = score.map((_, i) => i).sort((a, b) => score[b]! - score[a]! || a - b);
    const lead = it.asking && LEAD_BY_SAYING ? order.find((i) => score[i]! > 0 && it.says[i]) : undefined;
    if (lead !== undefined) order.splice(order.indexOf(lead), 1), order.unshift(lead);
    if (it.good[order[0]!]) first++;
    if (it.good[order[0]!] || (order.length > 1 && it.good[order[1]!])) two++;
  }
  return [first, two];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dataDir = argValues('--data-dir')[0];
  if (!dataDir) throw new Error('--data-dir DIR is required');
  const trainFiles = [
    `${ROOT}corpora/medquad/dev_eval.jsonl`,
    ...readdirSync(SETS).filter((f) => /^questions_.*\.jsonl$/.test(f)).sort().map((f) => `${SETS}${f}`),
    ...['c', 'd', 'e', 'f', 'test'].map((s) => `${ROOT}eval/sets/questions_${s}.jsonl`),
  ];
  const { store, close } = await openStore(dataDir);
  try {
    const hitsOf = new Map<string, Hit[]>();
    const search = async (q: Q) => hitsOf.get(q.id) ?? (hitsOf.set(q.id, await store.search('eval', q.question, { k: 10 })), hitsOf.get(q.id)!);
    const items: Item[] = [];
    for (const file of trainFiles) {
      for (const q of read(file)) {
        const hits = await search(q);
        if (!hits[0] || !q.expected_doc_ids.includes(hits[0].docId)) continue;
        const cite = `Source: ${hits[0].title}${hits[0].url ? ` ${hits[0].url}` : ''}`;
        const { units, asking, questionStems } = answerUnits(q.question, hits[0], SMS - cite.length - 1, DEFAULT_REDACTIONS, NONE);
        const good = units.map((u) => holds(q, render(u, 100_000) ?? u.text));
        if (!good.some(Boolean)) continue;
        items.push({ file, weight: 1, features: units.map((u) => u.features), good, asking, says: units.map((u) => u.says), question: questionStems, units: units.map((u, i) => ({ stems: u.stems, good: good[i]! })) });
      }
    }
    const recall = async (qs: Q[], unitWeights: readonly number[], pairs: PairTable) => {
      let hit = 0;
      for (const q of qs) {
        const a = composeAnswer(q.question, await search(q), { maxChars: SMS, minConfidence: DEFAULTS.minConfidence, unitWeights, pairs });
        if (a && holds(q, a.text)) hit++;
      }
      return hit;
    };
    const name = (file: string) => file.replace(ROOT, '');
    if (process.argv.includes('--cv')) {
      // Each training file left out in turn: fitted on the others, measured on it.
      console.log('left out | questions | answer lists | first unit answers: hand-set, fitted | within two | evidence in the SMS reply: hand-set, fitted');
      const sum = [0, 0, 0, 0, 0, 0, 0, 0];
      for (const file of trainFiles) {
        const { weights, table } = fit(items.filter((it) => it.file !== file));
        const held = items.filter((it) => it.file === file);
        const qs = read(file);
        const [h1, h2] = ranks(held, HAND_UNIT_WEIGHTS, NONE);
        const [f1, f2] = ranks(held, weights, table);
        const [e0, e1] = [await recall(qs, HAND_UNIT_WEIGHTS, NONE), await recall(qs, weights, table)];
        [qs.length, held.length, h1, f1, h2, f2, e0, e1].forEach((x, i) => (sum[i]! += x));
        console.log(`${name(file)} | ${qs.length} | ${held.length} | ${h1}, ${f1} | ${h2}, ${f2} | ${e0}, ${e1}`);
      }
      console.log(`all | ${sum[0]} | ${sum[1]} | ${sum[2]}, ${sum[3]} | ${sum[4]}, ${sum[5]} | ${sum[6]}, ${sum[7]}`);
    }
    const { weights, table } = fit(items);
    const pairs = serialisePairs(table);
    console.log(`units of ${items.length} questions from ${trainFiles.length} files; ${pairs.split('\n').filter(Boolean).length} word pairs; features ${UNIT_FEATURES.join(', ')}`);
    console.log(`hand-set ${HAND_UNIT_WEIGHTS.join(', ')}\nshipped  ${UNIT_WEIGHTS.join(', ')}\nfitted   ${weights.join(', ')}`);
    for (const file of [...trainFiles, ...argValues('--test')]) {
      const qs = read(file);
      console.log(`${trainFiles.includes(file) ? 'train' : 'test '} ${name(file)} (${qs.length}): evidence SMS shipped ${await recall(qs, UNIT_WEIGHTS, shippedPairTable())}, fitted ${await recall(qs, weights, table)}`);
    }
    if (process.argv.includes('--write')) {
      const path = `${ROOT}plugins/medical-answers/engine/answer-weights.ts`;
      writeFileSync(
        path,
        `/**\n * Written by \`eval/fit-answer.ts --write\` (${new Date().toISOString().slice(0, 10)}); do not edit by hand. The weights of\n * UNIT_FEATURES (answer.ts) and the word pairs (answer-pairs.ts: question stem, unit stem, value),\n * from ${items.length} answer lists of ${trainFiles.length} files.\n */\nexport const FITTED_UNIT_WEIGHTS: readonly number[] = [${weights.join(', ')}];\nexport const ANSWER_PAIRS = ${JSON.stringify(pairs)};\n`,
      );
      console.log(`wrote ${path}`);
    }
  } finally {
    await close();
  }
}

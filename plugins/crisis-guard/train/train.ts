/**
 * Trains the crisis detector's classifier (`../classifier.ts`) and writes `../model.json`.
 *
 *   npx tsx plugins/crisis-guard/train/train.ts [--write] [--holdout FILE ...]
 *
 * Data: the hand-written crisis sets (`corpora/medquad/crisis_dev.jsonl` and `sets/*.jsonl`, labelled
 * `crisis` with a category, or `not_crisis`) and the health questions of `corpora/medquad/dev_eval.jsonl`
 * as ordinary traffic (`not_crisis`). Multinomial logistic regression, full-batch gradient descent
 * with Adam and L2, fixed order and initial weights: the same data gives the same model. The
 * threshold is chosen by 5-fold cross-validation (folds by a hash of the id): see `chooseThreshold`. `--holdout FILE` prints recall and false alarms on a set the training never saw.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CrisisModel, featuresOf, MODEL_PATH, probabilities } from '../classifier.js';
import { detectCrisis, ruleView } from '../detector.js';
import { CRISIS_CATEGORIES } from '../types.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DATA_DIR = fileURLToPath(new URL('./sets/', import.meta.url));
export const CRISIS_FILES = [`${ROOT}corpora/medquad/crisis_dev.jsonl`, ...readdirSync(DATA_DIR).filter((f) => f.endsWith('.jsonl')).sort().map((f) => `${DATA_DIR}${f}`)];
export const QUESTION_FILE = `${ROOT}corpora/medquad/dev_eval.jsonl`;
/**
 * More ordinary traffic: hand-written health questions and clinic errands written for medical-answers
 * (its train/README.md). The halves of `off_topic_b` and `off_topic_c` that medical-answers holds out are
 * held out here too, by the same rule as its `train/text-model.ts` `heldOut` (a plugin may not import
 * another plugin's code, so the rule is written twice; change both together).
 */
const TRAFFIC_DIR = `${ROOT}plugins/medical-answers/train/sets/`;
/**
 * Named, not every file there: medical-answers adds question sets for its own fits (`questions_t1` …
 * `_t6`, 2026-12-03), some close to the crisis line (yesterday's brief numbness and slurred speech), and
 * a set joins this classifier's training as "not a crisis" only after someone has read it for that.
 */
export const TRAFFIC_FILES = ['off_topic_a.jsonl', 'off_topic_b.jsonl', 'off_topic_c.jsonl', 'questions_a.jsonl', 'questions_b.jsonl'].map((f) => `${TRAFFIC_DIR}${f}`);
export const heldOutTraffic = (file: string, id: string) => /off_topic_[bc]\.jsonl$/.test(file) && createHash('sha256').update(id).digest()[0]! % 2 === 1;

export interface Row {
  id: string;
  text: string;
  /** Class index: 0 not_crisis, then CRISIS_CATEGORIES order. */
  label: number;
  /** From a crisis set (false: a health question). */
  crisisSet: boolean;
}

const CLASSES = ['not_crisis', ...CRISIS_CATEGORIES];
const rel = (path: string) => path.replace(ROOT, '');

export function readCrisisFile(path: string): Row[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => {
    const r = JSON.parse(line) as { id: string; text: string; label: string; category: string };
    const label = r.label === 'crisis' ? CLASSES.indexOf(r.category) : 0;
    if (label < 0) throw new Error(`${rel(path)} ${r.id}: unknown category ${r.category}`);
    return { id: r.id, text: r.text, label, crisisSet: true };
  });
}

export function trainingRows(): { rows: Row[]; files: { file: string; rows: number }[] } {
  const files: { file: string; rows: number }[] = [];
  const rows: Row[] = [];
  for (const path of CRISIS_FILES) {
    const got = readCrisisFile(path);
    rows.push(...got);
    files.push({ file: rel(path), rows: got.length });
  }
  for (const path of [QUESTION_FILE, ...TRAFFIC_FILES]) {
    const traffic = readFileSync(path, 'utf8').split('\n').filter(Boolean).flatMap((line) => {
      const q = JSON.parse(line) as { id: string; question?: string; text?: string };
      return heldOutTraffic(path, q.id) ? [] : [{ id: q.id, text: (q.question ?? q.text)!, label: 0, crisisSet: false }];
    });
    rows.push(...traffic);
    files.push({ file: rel(path), rows: traffic.length });
  }
  return { rows, files };
}

interface Fitted {
  features: string[];
  weights: Float64Array[]; // per feature, per class
  bias: Float64Array;
}

/** A row's features, read once: the five cross-validation fits and the final one share them. */
const featureCache = new WeakMap<Row, string[]>();
function rowFeatures(row: Row): string[] {
  let f = featureCache.get(row);
  if (!f) featureCache.set(row, (f = featuresOf(ruleView(row.text))));
  return f;
}

/** Softmax regression over binary features; crisis and not-crisis weigh the same in total (see the weights below). */
export function fit(rows: readonly Row[], opts: { epochs?: number; l2?: number; rate?: number } = {}): Fitted {
  const epochs = opts.epochs ?? 300;
  const l2 = opts.l2 ?? 3e-3;
  const rate = opts.rate ?? 0.05;
  const featureRows = rows.map(rowFeatures);
  const counts = new Map<string, number>();
  for (const fs of featureRows) for (const f of fs) counts.set(f, (counts.get(f) ?? 0) + 1);
  const features = [...counts].filter(([, n]) => n >= 2).map(([f]) => f).sort();
  const index = new Map(features.map((f, i) => [f, i]));
  const X = featureRows.map((fs) => fs.map((f) => index.get(f)).filter((i): i is number => i !== undefined));
  const K = CLASSES.length;
  // Crisis messages weigh half in total; the crisis sets' not-crisis messages (idioms, past events,
  // questions about danger: the hard ones) 35%; ordinary traffic (health questions, errands) 15%.
  const crisisN = rows.filter((r) => r.label > 0).length;
  const hardN = rows.filter((r) => r.label === 0 && r.crisisSet).length;
  const trafficN = rows.filter((r) => !r.crisisSet).length;
  const traffic = Number(process.env.CRISIS_TRAFFIC_SHARE ?? 0.15);
  const sampleWeight = rows.map((r) => rows.length * (r.label > 0 ? 0.5 / crisisN : r.crisisSet ? (0.5 - traffic) / hardN : traffic / trafficN));

  const W = features.map(() => new Float64Array(K));
  const b = new Float64Array(K);
  const mW = features.map(() => new Float64Array(K));
  const vW = features.map(() => new Float64Array(K));
  const mb = new Float64Array(K);
  const vb = new Float64Array(K);
  const gW = features.map(() => new Float64Array(K));
  const gb = new Float64Array(K);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (const g of gW) g.fill(0);
    gb.fill(0);
    for (let n = 0; n < rows.length; n++) {
      const logits = Array.from(b);
      for (const j of X[n]!) for (let c = 0; c < K; c++) logits[c]! += W[j]![c]!;
      const max = Math.max(...logits);
      const exps = logits.map((l) => Math.exp(l - max));
      const sum = exps.reduce((a, x) => a + x, 0);
      for (let c = 0; c < K; c++) {
        const d = ((exps[c]! / sum) - (rows[n]!.label === c ? 1 : 0)) * sampleWeight[n]! / rows.length;
        gb[c]! += d;
        for (const j of X[n]!) gW[j]![c]! += d;
      }
    }
    const step = (p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, decay: number) => {
      for (let c = 0; c < K; c++) {
        const grad = g[c]! + decay * p[c]!;
        m[c] = beta1 * m[c]! + (1 - beta1) * grad;
        v[c] = beta2 * v[c]! + (1 - beta2) * grad * grad;
        const mh = m[c]! / (1 - beta1 ** epoch);
        const vh = v[c]! / (1 - beta2 ** epoch);
        p[c]! -= (rate * mh) / (Math.sqrt(vh) + eps);
      }
    };
    for (let j = 0; j < features.length; j++) step(W[j]!, gW[j]!, mW[j]!, vW[j]!, l2);
    step(b, gb, mb, vb, 0);
  }
  return { features, weights: W, bias: b };
}

/** Four decimals, and no negative zero (JSON would not keep it). */
const round4 = (x: number) => Math.round(x * 1e4) / 1e4 || 0;

export function toModel(fitted: Fitted, threshold: number, trainedOn: CrisisModel['trainedOn']): CrisisModel {
  const weights: Record<string, number[]> = {};
  fitted.features.forEach((f, j) => {
    const w = Array.from(fitted.weights[j]!, round4);
    if (w.some((x) => Math.abs(x) >= 0.005)) weights[f] = w;
  });
  return { version: 1, classes: CLASSES, weights, bias: Array.from(fitted.bias, round4), threshold, trainedOn };
}

const fold = (id: string) => createHash('sha256').update(id).digest()[0]! % 5;

/** Cross-validated P(crisis) of every row (each scored by a model trained without its fold). */
export function crossValidated(rows: readonly Row[]): number[] {
  const scores = new Array<number>(rows.length).fill(0);
  for (let k = 0; k < 5; k++) {
    const model = toModel(fit(rows.filter((r) => fold(r.id) !== k)), 0.5, []);
    rows.forEach((r, i) => {
      if (fold(r.id) === k) scores[i] = 1 - probabilities(model, rowFeatures(r))[0]!;
    });
  }
  return scores;
}

/**
 * The lowest threshold at which the model adds at most `maxAdded` false alarms (cross-validated) to
 * the rules' own on the crisis sets' `not_crisis` messages, and flags at most `maxTraffic` of the
 * ordinary traffic (health questions, clinic errands, rude messages): a false alarm there pages an
 * operator and pauses the bot for that person.
 */
export function chooseThreshold(rows: readonly Row[], scores: readonly number[], maxAdded = 0.02, maxTraffic = Number(process.env.CRISIS_MAX_TRAFFIC ?? 0.015)): { threshold: number; recall: number; falseAlarms: number; rulesRecall: number; rulesFalseAlarms: number } {
  const byRules = rows.map((r) => detectCrisis(r.text, { model: null }).crisis);
  const negatives = rows.map((r, i) => i).filter((i) => rows[i]!.crisisSet && rows[i]!.label === 0);
  const positives = rows.map((r, i) => i).filter((i) => rows[i]!.label > 0);
  const rulesFalseAlarms = negatives.filter((i) => byRules[i]).length / negatives.length;
  const rulesRecall = positives.filter((i) => byRules[i]).length / positives.length;
  if (process.env.CRISIS_TRAIN_CURVE) {
    for (let t = 0.1; t <= 0.951; t += 0.05) {
      const fa = negatives.filter((i) => byRules[i] || scores[i]! >= t).length / negatives.length;
      const recall = positives.filter((i) => byRules[i] || scores[i]! >= t).length / positives.length;
      const qfa = rows.filter((r, i) => !r.crisisSet && (byRules[i] || scores[i]! >= t)).length;
      console.log(`  t ${t.toFixed(2)} recall ${recall.toFixed(3)} false alarms ${fa.toFixed(3)} health questions flagged ${qfa}`);
    }
  }
  const traffic = rows.map((r, i) => i).filter((i) => !rows[i]!.crisisSet);
  for (let t = 0.05; t <= 0.951; t += 0.01) {
    const fa = negatives.filter((i) => byRules[i] || scores[i]! >= t).length / negatives.length;
    const trafficFa = traffic.filter((i) => byRules[i] || scores[i]! >= t).length / Math.max(1, traffic.length);
    if (fa <= rulesFalseAlarms + maxAdded && trafficFa <= maxTraffic) {
      const recall = positives.filter((i) => byRules[i] || scores[i]! >= t).length / positives.length;
      return { threshold: Math.round(t * 100) / 100, recall, falseAlarms: fa, rulesRecall, rulesFalseAlarms };
    }
  }
  return { threshold: 0.95, recall: rulesRecall, falseAlarms: rulesFalseAlarms, rulesRecall, rulesFalseAlarms };
}

export function trainModel(): { model: CrisisModel; cv: ReturnType<typeof chooseThreshold> } {
  const { rows, files } = trainingRows();
  const cv = chooseThreshold(rows, crossValidated(rows));
  return { model: toModel(fit(rows), cv.threshold, files), cv };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  const { model, cv } = trainModel();
  console.log(`trained on ${model.trainedOn.map((f) => `${f.file} (${f.rows})`).join(', ')}; ${Object.keys(model.weights).length} features; ${Math.round(performance.now() - t0)} ms`);
  console.log(`cross-validated on the crisis sets: rules alone recall ${(cv.rulesRecall * 100).toFixed(1)}%, false alarms ${(cv.rulesFalseAlarms * 100).toFixed(1)}%; rules + model recall ${(cv.recall * 100).toFixed(1)}%, false alarms ${(cv.falseAlarms * 100).toFixed(1)}%; threshold ${cv.threshold}`);
  for (const name of ['off_topic_b.jsonl', 'off_topic_c.jsonl']) {
    const errands = readFileSync(`${TRAFFIC_DIR}${name}`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; text: string }).filter((r) => heldOutTraffic(name, r.id));
    console.log(`held-out ${name} (${errands.length}) flagged: rules alone ${errands.filter((r) => detectCrisis(r.text, { model: null }).crisis).length}, rules + model ${errands.filter((r) => detectCrisis(r.text, { model }).crisis).length}`);
  }
  const holdouts: string[] = [];
  process.argv.forEach((a, i) => a === '--holdout' && process.argv[i + 1] && holdouts.push(process.argv[i + 1]!));
  for (const path of holdouts) {
    const rows = readCrisisFile(path);
    const pos = rows.filter((r) => r.label > 0);
    const neg = rows.filter((r) => r.label === 0);
    const rulesOnly = (r: Row) => detectCrisis(r.text, { model: null }).crisis;
    const both = (r: Row) => detectCrisis(r.text, { model }).crisis;
    console.log(`${rel(path)}: rules alone recall ${pos.filter(rulesOnly).length}/${pos.length}, false alarms ${neg.filter(rulesOnly).length}/${neg.length}; rules + model recall ${pos.filter(both).length}/${pos.length}, false alarms ${neg.filter(both).length}/${neg.length}`);
    if (process.argv.includes('--misses')) for (const r of rows) if (both(r) !== r.label > 0) console.log(`  ${r.label > 0 ? 'MISS' : 'FALSE'} ${r.id} ${JSON.stringify(r.text)}`);
  }
  if (process.argv.includes('--write')) {
    writeFileSync(MODEL_PATH, `${JSON.stringify(model)}\n`);
    console.log(`wrote ${fileURLToPath(MODEL_PATH)}`);
  }
}

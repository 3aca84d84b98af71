/**
 * The crisis detector's second reader: a multinomial logistic regression over the words of a message
 * and over what the rules saw in it (rules that counted, rules set aside and why, past/present and
 * question markers). The rules find the phrasings they were written for; people in danger use many
 * more, and a model trained on a few hundred hand-written messages reads the words around them ("i
 * think this is it", "parked by the train tracks") that no rule lists. It only adds detections: a
 * message is a crisis when the rules say so or when the model's probability of "not a crisis" falls
 * below `1 - threshold`. The classes are the crisis categories and `not_crisis`, so a detection also
 * names its category.
 *
 * Training (`train/train.ts`) is deterministic; the weights ship in `model.json` beside this file and
 * a test retrains and compares. No network, no download.
 */
import { readFileSync } from 'node:fs';
import type { CrisisCategory } from './types.js';

/** What the rules saw, given to the model beside the words. */
export interface RuleView {
  /** Cleaned text: normalised, idioms removed. */
  cleaned: string;
  counted: readonly string[];
  suppressed: readonly { ruleId: string; why: string }[];
  flags: readonly string[];
}

export interface CrisisModel {
  version: 1;
  /** `not_crisis` first, then categories. */
  classes: string[];
  /** Feature name → weights per class (same order as `classes`). */
  weights: Record<string, number[]>;
  bias: number[];
  /** A message is a crisis when P(not_crisis) < 1 - threshold. */
  threshold: number;
  /** What it was trained on (files and counts), for the README and the audit. */
  trainedOn: { file: string; rows: number }[];
}

const SUFFIXES = ['ingly', 'ing', 'edly', 'ed', 'ies', 'es', 's', 'ly'];

/** A crude stem: enough to let "cutting"/"cuts"/"cut" and "pills"/"pill" share a feature. */
export function stem(word: string): string {
  if (/^\d+$/.test(word)) return word.length >= 3 ? '<num3>' : '<num>';
  for (const suffix of SUFFIXES) {
    if (word.length - suffix.length >= 3 && word.endsWith(suffix)) {
      const base = word.slice(0, -suffix.length);
      return suffix === 'ies' ? `${base}y` : base.replace(/(.)\1$/, '$1');
    }
  }
  return word;
}

/** The model's features of one message: stems, adjacent stem pairs, and what the rules saw. */
export function featuresOf(view: RuleView): string[] {
  const words = view.cleaned.split(/[^\p{L}\p{N}]+/u).filter(Boolean).map(stem);
  const features = new Set<string>();
  for (let i = 0; i < words.length; i++) {
    features.add(`w:${words[i]}`);
    if (i + 1 < words.length) features.add(`b:${words[i]} ${words[i + 1]}`);
  }
  for (const id of view.counted) features.add(`r:${id}`);
  for (const s of view.suppressed) {
    features.add(`s:${s.why}`);
    features.add(`s:${s.ruleId}`);
  }
  for (const flag of view.flags) features.add(`f:${flag}`);
  return [...features];
}

export interface ModelScore {
  /** Probability that the message is a crisis (1 - P(not_crisis)). */
  crisis: number;
  /** The most likely crisis category. */
  category: CrisisCategory;
}

/** Class probabilities of one message under a model (softmax of the summed weights). */
export function probabilities(model: CrisisModel, features: readonly string[]): number[] {
  const logits = [...model.bias];
  for (const f of features) {
    const w = model.weights[f];
    if (w) for (let c = 0; c < logits.length; c++) logits[c]! += w[c]!;
  }
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export function score(model: CrisisModel, view: RuleView): ModelScore {
  const p = probabilities(model, featuresOf(view));
  let best = 1;
  for (let c = 2; c < p.length; c++) if (p[c]! > p[best]!) best = c;
  return { crisis: 1 - p[0]!, category: model.classes[best] as CrisisCategory };
}

export const MODEL_PATH = new URL('./model.json', import.meta.url);
let shipped: CrisisModel | null | undefined;

/** The shipped model, read on first use; `null` when the file is missing (the rules then decide alone). */
export function shippedModel(): CrisisModel | null {
  if (shipped === undefined) {
    try {
      shipped = JSON.parse(readFileSync(MODEL_PATH, 'utf8')) as CrisisModel;
    } catch {
      shipped = null;
    }
  }
  return shipped;
}

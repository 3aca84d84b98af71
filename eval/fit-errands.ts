/**
 * Fits the errand model of medical-answers (`plugins/medical-answers/engine/errands.ts`: which clinic
 * errand a text that is not a health question is) on the labelled errands of
 * `plugins/medical-answers/train/sets/off_topic_f` … `_j`, one file per writer.
 *
 *   npx tsx eval/fit-errands.ts [--cv] [--write]
 *
 * `--cv` fits on four writers' files and measures on the fifth, each in turn: accuracy, and at each
 * probability threshold the share of errands that get their intent's reply and how many of those are
 * right, then the commonest confusions. `--write` writes `engine/errand-weights.ts` from all five.
 * No database: a few seconds per fit.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERRAND_INTENTS, errandProbabilities } from '../plugins/medical-answers/engine/errands.js';
import { ERRAND_L2, ERRAND_SETS, errandRows, fitErrands } from '../plugins/medical-answers/train/errand-model.js';

const THRESHOLDS = [0, 0.5, 0.6, 0.7, 0.8, 0.9];

const rows = errandRows();
if (process.argv.includes('--cv')) {
  for (const l2 of [ERRAND_L2 / 10, ERRAND_L2, ERRAND_L2 * 10]) {
    const scored: { right: boolean; p: number; label: string; guess: string }[] = [];
    const perFile: string[] = [];
    for (const file of ERRAND_SETS) {
      const model = fitErrands(rows.filter((r) => r.file !== file), { l2 });
      const held = rows.filter((r) => r.file === file);
      let right = 0;
      for (const r of held) {
        const p = errandProbabilities(r.text, model);
        const k = p.indexOf(Math.max(...p));
        const guess = ERRAND_INTENTS[k]!;
        scored.push({ right: guess === r.intent, p: p[k]!, label: r.intent, guess });
        if (guess === r.intent) right++;
      }
      perFile.push(`${file.replace('.jsonl', '')} ${right}/${held.length}`);
    }
    const right = scored.filter((s) => s.right).length;
    console.log(`l2 ${l2}${l2 === ERRAND_L2 ? ' (shipped)' : ''}: each writer left out in turn, right ${right}/${scored.length} = ${(right / scored.length).toFixed(3)} (${perFile.join(', ')})`);
    for (const t of THRESHOLDS) {
      const taken = scored.filter((s) => s.p >= t);
      const ok = taken.filter((s) => s.right).length;
      console.log(`  probability >= ${t}: ${taken.length} of ${scored.length} (${((100 * taken.length) / scored.length).toFixed(1)}%) get their intent's reply, ${ok} right (${((100 * ok) / Math.max(1, taken.length)).toFixed(1)}%)`);
    }
    const confusions = new Map<string, number>();
    for (const s of scored) if (!s.right) confusions.set(`${s.label} → ${s.guess}`, (confusions.get(`${s.label} → ${s.guess}`) ?? 0) + 1);
    console.log(`  commonest confusions: ${[...confusions].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }
}
if (process.argv.includes('--write')) {
  const model = fitErrands(rows);
  const path = fileURLToPath(new URL('../plugins/medical-answers/engine/errand-weights.ts', import.meta.url));
  writeFileSync(
    path,
    `/**\n * Fitted by eval/fit-errands.ts (${new Date().toISOString().slice(0, 10)}); do not edit by hand. ${Object.keys(model.weights).length} features from ${rows.length} labelled\n * errands (train/sets/off_topic_f … _j); one bias and one weight per intent, in ERRAND_INTENTS order (errands.ts).\n */\nimport type { ErrandWeights } from './errands.js';\n\nexport const ERRAND_WEIGHTS: ErrandWeights = ${JSON.stringify(model)};\n`,
  );
  console.log(`wrote ${path}: ${Object.keys(model.weights).length} features`);
}

/**
 * Measures the detector on the hand-written crisis dev set (`corpora/medquad/crisis_dev.jsonl`, shipped
 * with its licence note): recall on `crisis`, false-alarm rate on `not_crisis`, and each miss.
 * Run: npx tsx plugins/crisis-guard/eval/dev-set.ts [path]
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { detectCrisis } from '../detector.js';

export const DEV_SET = fileURLToPath(new URL('../../../corpora/medquad/crisis_dev.jsonl', import.meta.url));
/** 60 messages written the way the dev set was, by a writer who saw neither the rules nor the other sets; never trained on (README). */
export const HOLDOUT_SET = fileURLToPath(new URL('./holdout.jsonl', import.meta.url));
/** 60 more, by another such writer, measured once unseen (27 of 31) before four rules were added (README). */
export const HOLDOUT_B_SET = fileURLToPath(new URL('./holdout_b.jsonl', import.meta.url));
/** 60 more by a third such writer, measured once unseen (32 of 32, 3 false alarms of 28) before two set-asides were added (README). */
export const HOLDOUT_C_SET = fileURLToPath(new URL('./holdout_c.jsonl', import.meta.url));
/** 64 more by a fourth such writer, measured once unseen (31 of 32, 4 false alarms of 32) before the changes of the README's holdout d row. */
export const HOLDOUT_D_SET = fileURLToPath(new URL('./holdout_d.jsonl', import.meta.url));
/** 64 more by a fifth such writer, measured once unseen (30 of 32, 1 false alarm of 32) before the changes of the README's holdout e row. */
export const HOLDOUT_E_SET = fileURLToPath(new URL('./holdout_e.jsonl', import.meta.url));

export interface DevFigures {
  crisis: number;
  found: number;
  notCrisis: number;
  falseAlarms: number;
  recall: number;
  falseAlarmRate: number;
  misses: { id: string; label: string; text: string; ruleIds: string[] }[];
}

export function evaluate(path: string): DevFigures {
  const rows = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; text: string; label: string });
  const figures: DevFigures = { crisis: 0, found: 0, notCrisis: 0, falseAlarms: 0, recall: 0, falseAlarmRate: 0, misses: [] };
  for (const row of rows) {
    const verdict = detectCrisis(row.text);
    if (row.label === 'crisis') {
      figures.crisis++;
      if (verdict.crisis) figures.found++;
      else figures.misses.push({ id: row.id, label: row.label, text: row.text, ruleIds: verdict.ruleIds });
    } else {
      figures.notCrisis++;
      if (verdict.crisis) {
        figures.falseAlarms++;
        figures.misses.push({ id: row.id, label: row.label, text: row.text, ruleIds: verdict.ruleIds });
      }
    }
  }
  figures.recall = figures.found / Math.max(1, figures.crisis);
  figures.falseAlarmRate = figures.falseAlarms / Math.max(1, figures.notCrisis);
  return figures;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const path = process.argv[2] ?? DEV_SET;
  if (!existsSync(path)) {
    console.log(`skipped: no dev set at ${path} (the shared data folder is not beside this checkout)`);
  } else {
    const f = evaluate(path);
    console.log(`crisis recall ${f.found}/${f.crisis} = ${(f.recall * 100).toFixed(1)}%; false alarms ${f.falseAlarms}/${f.notCrisis} = ${(f.falseAlarmRate * 100).toFixed(1)}%`);
    for (const m of f.misses) console.log(`  ${m.label === 'crisis' ? 'missed' : 'false alarm'} ${m.id}: ${m.text} [${m.ruleIds.join(', ')}]`);
  }
}

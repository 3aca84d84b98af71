/**
 * Precision and recall of the rule detectors on the hand-labelled set (labelled.jsonl, written for
 * this project; see the plugin README). A detector "fires" when its score reaches the default
 * threshold of its category. Spam is judged on single messages with `bad.example` as the blocked
 * domain; repeats and bursts need a sender's history and are covered by the tests instead.
 *
 *   npx tsx plugins/moderation/eval/run.ts [--misses]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { detect } from '../screen.js';
import { settingsSchema, type Category } from '../types.js';

const file = fileURLToPath(new URL('./labelled.jsonl', import.meta.url));
const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { text: string; labels: Category[] });
const settings = settingsSchema.parse({ spam: { blockedDomains: ['bad.example'] } });
const categories: Category[] = ['profanity', 'harassment', 'spam', 'pii'];
const showMisses = process.argv.includes('--misses');

console.log(`${rows.length} messages (${rows.filter((r) => r.labels.length === 0).length} clean)\n`);
console.log('| detector | threshold | labelled | TP | FP | FN | precision | recall |');
console.log('|---|---|---|---|---|---|---|---|');
const misses: string[] = [];
for (const category of categories) {
  const threshold = settings.categories[category].threshold;
  let tp = 0, fp = 0, fn = 0;
  for (const row of rows) {
    const fired = detect(row.text, settings, null).flags.some((f) => f.category === category && f.score >= threshold);
    const labelled = row.labels.includes(category);
    if (fired && labelled) tp++;
    else if (fired) fp++, misses.push(`FP ${category}: ${row.text}`);
    else if (labelled) fn++, misses.push(`FN ${category}: ${row.text}`);
  }
  const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
  console.log(`| ${category} | ${threshold} | ${tp + fn} | ${tp} | ${fp} | ${fn} | ${pct(tp / (tp + fp))} | ${pct(tp / (tp + fn))} |`);
}
if (showMisses) console.log(`\n${misses.join('\n')}`);

import { parseQuery } from '../engine/text.js';
import { readFileSync } from 'node:fs';
for (const q of process.argv.slice(2)) console.log(q, JSON.stringify(parseQuery(q)));
const docs = readFileSync('/work/shared/data/medical/corpus.jsonl', 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const d = docs.find((x: any) => x.id === 'ninds-0000187');
console.log(d.title, d.synonyms, d.text.slice(0, 300));

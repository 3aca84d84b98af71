import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
import { MedicalStore } from '../engine/store.js';
import { half } from './run.js';
const db = await openDatabase({ dataDir: '/tmp/medscratch/db', poolSize: 4, log: pino({ level: 'warn' }) });
const store = new MedicalStore(db.pool);
await store.init();
const qs = readFileSync('/work/shared/data/medical/dev_eval.jsonl', 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((q: any) => half(q.id) === 'design');
const res: Record<string, [number, number]> = {};
const lat: number[] = [];
const tms: Record<string, number> = {};
await store.search('eval', 'warm diabetes');
for (const q of qs) {
  const t0 = performance.now();
  const hits = await store.search('eval', q.question, { k: 10, timings: tms });
  lat.push(performance.now() - t0);
  const r = res[q.origin] ??= [0, 0];
  r[1]++;
  if (q.expected_doc_ids.includes(hits[0]?.docId)) r[0]++;
  else if (process.argv.includes('-v') && q.origin !== 'medquad_template') console.log('miss', q.question, q.expected_doc_ids[0], hits.slice(0, 2).map((h) => h.docId + ':' + h.title));
  else if (process.argv.includes('-t') && q.origin === 'medquad_template') console.log('miss', q.question, q.expected_doc_ids[0], hits.slice(0, 2).map((h) => h.docId + ':' + h.title));
}
console.log(process.env.MED_TW, process.env.MED_SW, Object.entries(res).map(([k, [a, n]]) => `${k} ${(a / n).toFixed(3)}`).join(' '));
lat.sort((a, b) => a - b);
console.log(Object.entries(tms).map(([k, v]) => `${k} ${(v / qs.length).toFixed(2)}`).join(' '));
console.log('p50', lat[Math.floor(lat.length / 2)]!.toFixed(1), 'p95', lat[Math.floor(lat.length * 0.95)]!.toFixed(1));
await db.close();

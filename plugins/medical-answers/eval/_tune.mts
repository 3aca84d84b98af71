import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
import { MedicalStore } from '../engine/store.js';
import { half } from './run.js';
import { composeAnswer } from '../engine/answer.js';
const db = await openDatabase({ dataDir: '/tmp/medscratch/db', poolSize: 4, log: pino({ level: 'warn' }) });
const store = new MedicalStore(db.pool);
await store.init();
const qs = readFileSync('/work/shared/data/medical/dev_eval.jsonl', 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((q: any) => half(q.id) === 'design');
const res: Record<string, [number, number]> = {};
const lat: number[] = [];
const dump: unknown[] = [];
const tms: Record<string, number> = {};
await store.search('eval', 'warm diabetes');
const neg = ['whats the weather tomorrow', 'can you book me a table for two', 'my car makes a weird noise when braking', 'lol ok thanks', 'who won the game last night', 'what time do you close', 'is it contagious', 'how much does it cost', 'where are you located', 'can i change my appointment', 'tell me a joke', 'what is the capital of france', 'my phone screen is cracked', 'how do i reset my password', 'is the pharmacy open on sunday', 'recommend a good movie', 'how do i bake bread', 'whats your name', 'stop texting me', 'the bus is late again'];
if (process.argv.includes('-d')) for (const q of neg) { const hits = await store.search('eval', q, { k: 5 }); dump.push({ o: 'neg', ok: 0, cov: hits[0]?.coverage, tm: hits[0]?.titleMatch, s1: hits[0]?.score, s2: hits[1]?.score, l: hits[0]?.lexicalRank, v: hits[0]?.vectorRank }); }
for (const q of qs) {
  const t0 = performance.now();
  const hits = await store.search('eval', q.question, { k: 10, timings: tms });
  lat.push(performance.now() - t0);
  if (process.argv.includes('-a') && q.evidence && q.expected_doc_ids.includes(hits[0]?.docId)) {
    const a = composeAnswer(q.question, hits, { maxChars: 306, minConfidence: 0 });
    const ok = q.evidence.some((e: string) => a?.text.toLowerCase().includes(e.toLowerCase()));
    if (!ok) console.log('\n### ' + q.question + ' [' + hits[0]?.section + '] want: ' + q.evidence.join(' / ') + '\n' + a?.text);
  }
  if (process.argv.includes('-d')) dump.push({ o: q.origin, ok: q.expected_doc_ids.includes(hits[0]?.docId) ? 1 : 0, cov: hits[0]?.coverage, tm: hits[0]?.titleMatch, s1: hits[0]?.score, s2: hits[1]?.score, t: hits[0]?.questionType, l: hits[0]?.lexicalRank, v: hits[0]?.vectorRank });
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
if (dump.length) (await import('node:fs')).writeFileSync('/tmp/medscratch/dump.json', JSON.stringify(dump));
await db.close();

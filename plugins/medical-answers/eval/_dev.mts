// scratch: persistent db for iteration (not committed)
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
import { applyMigrations, ensureMigrationTable } from '../../../core/storage/migrations.js';
import { MedicalStore } from '../engine/store.js';
import type { CorpusDoc } from '../engine/types.js';
async function* readCorpus(path: string): AsyncIterable<CorpusDoc> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim()) yield JSON.parse(line) as CorpusDoc;
}
const log = pino({ level: 'warn' });
const db = await openDatabase({ dataDir: '/tmp/medscratch/db2', poolSize: 4, log });
await ensureMigrationTable(db.pool);
await applyMigrations(db.pool, 'medical-answers', MedicalStore.migrations());
const store = new MedicalStore(db.pool, { log });
await store.init();
if (process.argv.includes('--ingest')) { const t0 = performance.now(); const r = await store.ingest('eval', readCorpus('/work/shared/data/medical/corpus.jsonl'), { onProgress: (p) => { if (p.done === 0 || p.phase === 'done' || p.phase==='index') console.log(p.phase, p.done, ((performance.now() - t0)/1000).toFixed(1)); } }); console.log(r.ms); }
const qs = process.argv.slice(2).filter((a) => !a.startsWith('--'));
await store.search('eval', 'warm up diabetes', { k: 10 });
for (const q of qs) {
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const hits = await store.search('eval', q, { k: 10 });
    if (i === 2) console.log(q, (performance.now() - t).toFixed(1), 'ms', hits.slice(0, 5).map((h) => `${h.docId}:${h.title}:${h.score.toFixed(2)}:L${h.lexicalRank}:V${h.vectorRank}:${h.section}`));
  }
}
if (process.argv.includes('--explain')) {
  const t = performance.now();
  const r = await db.pool.query(`EXPLAIN ANALYZE SELECT doc_id FROM medical_answers_docs, to_tsquery('english', 'cancer | chemotherapy') q WHERE tenant_id = 'eval' AND tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT 60`);
  console.log(r.rows.map((x) => x['QUERY PLAN']).join('\n'), performance.now() - t);
}
await db.close();

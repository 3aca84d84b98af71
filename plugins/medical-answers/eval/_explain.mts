import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
const db = await openDatabase({ dataDir: '/tmp/medscratch/db', poolSize: 4, log: pino({ level: 'warn' }) });
console.log(await db.pool.query("select avg(pg_column_size(tsv))::int a, max(pg_column_size(tsv)) m, avg(length(tsv::text))::int l from medical_answers_docs").then(r=>r.rows));
const q = 'hep | b | hepatitis | chemotherapy';
const tests: [string, string][] = [
  ['count', `SELECT count(*) FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2)`],
  ['rank', `SELECT doc_id FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2) ORDER BY ts_rank(tsv, to_tsquery('english', $2)) DESC LIMIT 60`],
  ['rankcd', `SELECT doc_id FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2) ORDER BY ts_rank_cd(tsv, to_tsquery('english', $2)) DESC LIMIT 60`],
  ['select1', `SELECT 1 WHERE $1::text IS NOT NULL AND $2::text IS NOT NULL`],
];

await db.pool.query('SET enable_seqscan = off');
console.log((await db.pool.query(`EXPLAIN ANALYZE SELECT doc_id FROM medical_answers_docs WHERE tenant_id = 'eval' AND tsv @@ to_tsquery('english', '${q}') ORDER BY ts_rank(tsv, to_tsquery('english', '${q}')) DESC LIMIT 60`)).rows.map((r) => r['QUERY PLAN']).join('\n'));
for (const [name, text] of tests) {
  const ts: number[] = [];
  for (let i = 0; i < 15; i++) { const t = performance.now(); await db.pool.query({ name, text, values: ['eval', q] }); ts.push(performance.now() - t); }
  ts.sort((a, b) => a - b);
  console.log(name, ts.map((x) => x.toFixed(1)).join(' '));
}
await db.close();

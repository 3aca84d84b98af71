import { pino } from 'pino';
import { openDatabase } from '../../../core/storage/database.js';
import { LocalEmbeddings } from '../engine/embedder.js';
import pgvector from 'pgvector';
const db = await openDatabase({ dataDir: '/tmp/medscratch/db', poolSize: 4, log: pino({ level: 'warn' }) });
const { rows } = await db.pool.query("SELECT model, dims FROM medical_answers_index WHERE tenant_id='eval'");
const e = LocalEmbeddings.fromJSON(rows[0].model);
const v = pgvector.toSql(await e.embedQuery('how do people catch hep b'));
const { rows: tag } = await db.pool.query("select indexname from pg_indexes where indexname like '%hnsw%'");
const tests: [string, string, unknown[]][] = [
  ['select1', `SELECT 1 WHERE $1::text IS NOT NULL`, ['x']],
  ['fts', `SELECT doc_id FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2) ORDER BY ts_rank(tsv, to_tsquery('english', $2)) DESC, doc_id LIMIT 60`, ['eval', 'hep | b | hepatitis | spread | transmitted | infection']],
  ['ftsnr', `SELECT doc_id FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2) LIMIT 600`, ['eval', 'hep | b | hepatitis | spread | transmitted | infection']],
  ['ftscount', `SELECT count(*) FROM medical_answers_docs WHERE tenant_id = $1 AND tsv @@ to_tsquery('english', $2)`, ['eval', 'hep | b | hepatitis | spread | transmitted | infection']],
  ['vec', `SELECT doc_id, chunk_id FROM medical_answers_chunks WHERE tenant_id = 'eval' ORDER BY embedding::vector(128) <=> $1::vector(128) LIMIT 40`, [v]],
  ['text', `SELECT chunk_id, text FROM medical_answers_chunks WHERE tenant_id = $1 AND chunk_id = ANY($2::text[])`, ['eval', ['mplus-0000461#0', 'niddk-0000186#3', 'mplus-0000811#0', 'nhlbi-0000071#7', 'seniorhealth-0000036#1']]],
];
for (const [name, text, values] of tests) {
  const ts: number[] = [];
  for (let i = 0; i < 20; i++) { const t = performance.now(); await db.pool.query({ name, text, values }); ts.push(performance.now() - t); }
  ts.sort((a, b) => a - b);
  console.log(name.padEnd(8), ts.map((x) => x.toFixed(1)).join(' '));
}
console.log(tag);
await db.close();

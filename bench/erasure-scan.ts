/**
 * How fast the erasure verification scan reads a tenant with a large history. Seeds MESSAGES inbound
 * messages (and as many outbox rows) from 1,000 other people into a gateway on the test backend
 * (PARLEY_TEST_BACKEND=external for PostgreSQL + Redis), plants the subject's number in one message,
 * then scans for the subject and prints rows scanned, time and rows/s. Nothing is asserted.
 *
 *   npx tsx bench/erasure-scan.ts               # embedded PGlite, 100k messages
 *   MESSAGES=20000 PARLEY_TEST_BACKEND=external npx tsx bench/erasure-scan.ts
 */
import { startTestGateway } from '../test/harness.js';
import { TEST_BACKEND } from '../test/backend.js';
import { scanSubject } from '../plugins/dsar/scan.js';
import { subjectNeedles } from '../core/data-subjects.js';
import { suppressionHash } from '../core/consent.js';

const MESSAGES = Number(process.env.MESSAGES ?? 100_000);
const SUBJECT = '+15557770001';
const gw = await startTestGateway({ config: { plugins: ['http', 'dsar'], log: { file: 'parley.log' }, tenants: [{ id: 'big', apiKeys: ['key-bench-scan-0123456789'], pipeline: ['dsar'], plugins: { http: {}, dsar: {} } }] }, logLevel: 'warn' });
try {
  const db = gw.gateway.db.pool;
  const t0 = performance.now();
  await db.query(`INSERT INTO parley_conversations (tenant_id, channel, thread_key, participant) SELECT 'big', 'http', 'p' || i, '+1555100' || lpad(i::text, 4, '0') FROM generate_series(0, 999) i`);
  for (let from = 0; from < MESSAGES; from += 20_000) {
    const to = Math.min(MESSAGES, from + 20_000) - 1;
    await db.query(
      `INSERT INTO parley_inbound (tenant_id, channel, provider_message_id, conversation_id, from_address, to_address, body, raw, status)
         SELECT 'big', 'http', 'm' || i, c.id, c.participant, '+15550000000', 'a message of ordinary length, number ' || i, jsonb_build_object('From', c.participant, 'Body', 'text ' || i), 'done'
           FROM generate_series($1::int, $2::int) i JOIN parley_conversations c ON c.tenant_id = 'big' AND c.thread_key = 'p' || (i % 1000)`,
      [from, to],
    );
    await db.query(
      `INSERT INTO parley_outbox (tenant_id, channel, conversation_id, to_address, body, status)
         SELECT 'big', 'http', c.id, c.participant, 'a reply of ordinary length ' || i, 'sent'
           FROM generate_series($1::int, $2::int) i JOIN parley_conversations c ON c.tenant_id = 'big' AND c.thread_key = 'p' || (i % 1000)`,
      [from, to],
    );
  }
  await db.query(`UPDATE parley_inbound SET body = body || ' call me on ${SUBJECT}' WHERE tenant_id = 'big' AND provider_message_id = 'm${Math.floor(MESSAGES / 2)}'`);
  await db.query('ANALYZE');
  console.log(`[erasure-scan ${TEST_BACKEND}] seeded ${MESSAGES} messages + ${MESSAGES} outbox rows in ${Math.round(performance.now() - t0)} ms`);

  for (let run = 1; run <= 2; run++) {
    const t1 = performance.now();
    const r = await scanSubject({ db, jobs: gw.gateway.jobs, logFile: gw.gateway.logFile, needles: subjectNeedles, suppressionHash }, { tenantId: 'big', addresses: [SUBJECT] });
    const ms = performance.now() - t1;
    console.log(
      `[erasure-scan ${TEST_BACKEND}] run ${run}: ${Math.round(ms)} ms, ${r.scanned.tables} tables, ${r.scanned.columns} columns, ${r.scanned.rows} rows scanned, ${Math.round(r.scanned.rows / (ms / 1000))} rows/s; found ${JSON.stringify(r.found)}`,
    );
  }
} finally {
  await gw.stop({ cleanup: true });
}

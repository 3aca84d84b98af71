/**
 * How long an embedded backup holds the database session (`exclusive`: every other client waits),
 * and what in it takes the time: the row counts, the audit head, and PGlite's `dumpDataDir` with and
 * without gzip. Seeds MESSAGES inbound messages first (default 20,000). Nothing is asserted.
 *
 *   npx tsx bench/embedded-dump.ts
 */
import { gzipSync } from 'node:zlib';
import { startTestGateway } from '../test/harness.js';
import { dumpEmbedded, tableCounts } from '../core/backup.js';

const MESSAGES = Number(process.env.MESSAGES ?? 20_000);
const RUNS = 3;
process.env.PARLEY_TEST_BACKEND = 'embedded';
const gw = await startTestGateway({ config: { plugins: ['http', 'dsar'], tenants: [{ id: 'big', apiKeys: ['key-bench-dump-0123456789'], pipeline: ['dsar'], plugins: { http: {}, dsar: {} } }] }, logLevel: 'warn' });
try {
  const db = gw.gateway.db.pool;
  await db.query(`INSERT INTO parley_conversations (tenant_id, channel, thread_key, participant) SELECT 'big', 'http', 'p' || i, '+1555100' || lpad(i::text, 4, '0') FROM generate_series(0, 999) i`);
  await db.query(
    `INSERT INTO parley_inbound (tenant_id, channel, provider_message_id, conversation_id, from_address, to_address, body, status)
       SELECT 'big', 'http', 'm' || i, c.id, c.participant, '+15550000000', 'a message of ordinary length, number ' || i, 'done'
         FROM generate_series(1, $1::int) i JOIN parley_conversations c ON c.tenant_id = 'big' AND c.thread_key = 'p' || (i % 1000)`,
    [MESSAGES],
  );
  const embedded = gw.gateway.db.embedded!;
  const ms = (t0: number) => Math.round(performance.now() - t0);
  for (let run = 1; run <= RUNS; run++) {
    const parts: string[] = [];
    await embedded.exclusive(async () => {
      let t = performance.now();
      const counts = await tableCounts((s) => embedded.query(s));
      parts.push(`counts of ${Object.keys(counts).length} tables ${ms(t)} ms`);
      t = performance.now();
      await embedded.query('SELECT seq::text AS seq, hash FROM parley_audit WHERE seq IS NOT NULL ORDER BY parley_audit.seq DESC LIMIT 1');
      parts.push(`audit head ${ms(t)} ms`);
      t = performance.now();
      const gz = await embedded.dumpDataDir('gzip');
      parts.push(`dumpDataDir(gzip) ${ms(t)} ms (${gz.size} bytes)`);
      t = performance.now();
      const tar = await embedded.dumpDataDir('none');
      parts.push(`dumpDataDir(none) ${ms(t)} ms (${tar.size} bytes)`);
      t = performance.now();
      gzipSync(Buffer.from(await tar.arrayBuffer()), { level: 6 });
      parts.push(`then gzip in Node ${ms(t)} ms`);
    });
    const t = performance.now();
    const dump = await dumpEmbedded(embedded);
    parts.push(`dumpEmbedded total ${ms(t)} ms (session held ${dump.heldMs} ms, ${dump.payload.length} bytes)`);
    console.log(`[embedded-dump] run ${run}: ${parts.join('; ')}`);
  }
} finally {
  await gw.stop({ cleanup: true });
}

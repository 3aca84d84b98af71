/**
 * The "stored data" scenario's preload: `count` past messages of the demo tenant's twilio-sms channel,
 * written by bulk SQL as the pipeline would have left them (a conversation per ten messages, the
 * processed inbound row, its inline reply in the outbox, both segment ledger rows and the usage
 * event), so the bench can compare requests/s on a full database with an empty one.
 */
export interface Queryable {
  query(sql: string): Promise<{ rows: unknown[] }>;
}

const TABLES = ['parley_conversations', 'parley_inbound', 'parley_outbox', 'twilio_sms_segments', 'parley_usage'];

/** Rows per statement: keeps each one's memory small on the embedded database. */
const CHUNK = 50_000;

/**
 * Bulk-loads as `pg_restore` does: the tables' keys, unique constraints, foreign keys and indexes
 * are dropped, the rows inserted, then each index is built once by sorting instead of by one random
 * insert per row (conversation ids are random, as gen_random_uuid's are) and each foreign key checked by one
 * join instead of a trigger per row. About 3x faster than inserting under all of them.
 */
export async function preloadMessages(db: Queryable, count: number, onProgress: (done: number) => void = () => undefined): Promise<void> {
  const tables = TABLES.map((t) => `'${t}'::regclass`).join(', ');
  // Foreign keys last to be made (they need the keys they reference) and first to go.
  const { rows: constraints } = (await db.query(`
    SELECT conrelid::regclass::text AS "table", conname AS name, pg_get_constraintdef(oid) AS definition
      FROM pg_constraint
     WHERE contype IN ('p', 'u', 'f') AND (conrelid IN (${tables}) OR confrelid IN (${tables}))
     ORDER BY contype = 'f' DESC`)) as { rows: { table: string; name: string; definition: string }[] };
  const { rows: indexes } = (await db.query(`
    SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition
      FROM pg_index i
     WHERE indrelid IN (${tables}) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`)) as { rows: { name: string; definition: string }[] };
  for (const c of constraints) await db.query(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
  for (const index of indexes) await db.query(`DROP INDEX ${index.name}`);
  await insertMessages(db, count, onProgress);
  for (const c of [...constraints].reverse()) await db.query(`ALTER TABLE ${c.table} ADD CONSTRAINT ${c.name} ${c.definition}`);
  for (const index of indexes) await db.query(index.definition);
}

async function insertMessages(db: Queryable, count: number, onProgress: (done: number) => void): Promise<void> {
  const conversations = Math.max(1, Math.ceil(count / 10));
  // Messages and replies have time-ordered ids (migration 010_time_ordered_ids), here of the second
  // each past message arrived, from one base time so that every statement computes the same id.
  const base = new Date(Date.now() - 30 * 86_400_000).toISOString();
  const idOf = (label: 'i' | 'o') => `parley_uuid_v7('${base}'::timestamptz + g * interval '1 second', md5('${label}' || g)::uuid)`;
  for (let from = 1; from <= count; from += CHUNK) {
    const to = Math.min(count, from + CHUNK - 1);
    const c0 = Math.floor((from - 1) / 10) + 1;
    const c1 = Math.min(conversations, Math.floor((to - 1) / 10) + 1);
    // Deterministic ids (md5 of a label and the number, for messages and replies with the time in front) tie the rows together without a lookup.
    await db.query(`
      INSERT INTO parley_conversations (id, tenant_id, channel, thread_key, participant, created_at, last_message_at)
      SELECT md5('c' || g)::uuid, 'demo', 'twilio-sms', '+1444' || lpad(g::text, 7, '0'), '+1444' || lpad(g::text, 7, '0'), now() - interval '30 days', now() - interval '1 day'
        FROM generate_series(${c0}, ${c1}) g
      ON CONFLICT DO NOTHING`);
    await db.query(`
      INSERT INTO parley_inbound (id, tenant_id, channel, provider_message_id, conversation_id, from_address, to_address, body, raw, received_at, status, stages, processed_at)
      SELECT ${idOf('i')}, 'demo', 'twilio-sms', 'SMpre' || lpad(g::text, 28, '0'), md5('c' || ((g - 1) / 10 + 1))::uuid,
             '+1444' || lpad(((g - 1) / 10 + 1)::text, 7, '0'), '+15558880001', 'what are your hours?',
             jsonb_build_object('Body', 'what are your hours?', 'MessageSid', 'SMpre' || g, 'NumSegments', '1'),
             now() - interval '30 days' + g * interval '1 second', 'processed',
             '[{"stage":"twilio-sms.consent","outcome":"next","ms":0.1},{"stage":"crisis-guard","outcome":"next","ms":0.2},{"stage":"keyword-replies","outcome":"replied","ms":0.1}]'::jsonb,
             now() - interval '30 days' + g * interval '1 second'
        FROM generate_series(${from}, ${to}) g`);
    await db.query(`
      INSERT INTO parley_outbox (id, tenant_id, channel, conversation_id, inbound_id, seq, to_address, from_address, body, status, via, created_at, updated_at, sent_at)
      SELECT ${idOf('o')}, 'demo', 'twilio-sms', md5('c' || ((g - 1) / 10 + 1))::uuid, ${idOf('i')}, 0,
             '+1444' || lpad(((g - 1) / 10 + 1)::text, 7, '0'), '+15558880001', 'We are open Monday to Friday, 8am to 6pm.', 'sent', 'inline',
             now() - interval '30 days' + g * interval '1 second', now() - interval '30 days' + g * interval '1 second', now() - interval '30 days' + g * interval '1 second'
        FROM generate_series(${from}, ${to}) g`);
    await db.query(`
      INSERT INTO twilio_sms_segments (tenant_id, ref, part, direction, via, address, message_sid, encoding, units, segments, media, cost, currency, at)
      SELECT 'demo', CASE d WHEN 'in' THEN 'SMpre' || lpad(g::text, 28, '0') ELSE (${idOf('o')})::text END, 0, d, CASE d WHEN 'in' THEN 'inbound' ELSE 'inline' END,
             '+1444' || lpad(((g - 1) / 10 + 1)::text, 7, '0'), CASE d WHEN 'in' THEN 'SMpre' || lpad(g::text, 28, '0') END, 'GSM-7', 20, 1, 0, 0.0079, 'USD',
             now() - interval '30 days' + g * interval '1 second'
        FROM generate_series(${from}, ${to}) g, (VALUES ('in'), ('out')) AS dir(d)`);
    await db.query(`
      INSERT INTO parley_usage (tenant_id, kind, quantity, unit, plugin, ref, attributes, at)
      SELECT 'demo', 'messages.out', 1, 'message', 'twilio-sms', (${idOf('o')})::text, '{"channel":"twilio-sms","via":"inline"}', now() - interval '30 days' + g * interval '1 second'
        FROM generate_series(${from}, ${to}) g`);
    onProgress(to);
  }
}

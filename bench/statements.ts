/**
 * `npx tsx bench/statements.ts [--external] [--messages=N]`: CPU per message of the statements every
 * inline-answered Twilio SMS runs (record, finish with one reply, two segment ledger rows with their two
 * usage rows in one statement, settle the inline reply with its messages.out usage row), through
 * the real store functions, in batches of 1 and of 16 as the batchers send them; `--apart` writes the
 * ledger rows and their usage rows as two statements, as the gateway did before they were folded (and
 * messages.out on its own);
 * `--bookkeeping` runs the ledger and usage statements alone (with `--apart`: the three, else the two). CPU time rather than wall time, because these two cores are shared: this
 * process's (the pg client, and PGlite itself when embedded) and, on PostgreSQL, the server backend
 * serving this process's only connection (not the other clients of the machine's PostgreSQL).
 * `--stored=N` bulk-loads N past messages first, and every run prints the pages per message read from
 * outside the shared buffers and found in them (pg_stat_database). `--sizes=1,16` picks the batch sizes; PLAN_CACHE_MODE (auto, force_custom_plan, force_generic_plan)
 * sets the session's plan_cache_mode, to compare the plans PostgreSQL caches for the named statements.
 */
import { randomUUID } from 'node:crypto';
import { finishInboundMany, recordInboundMany, settleInlineSentMany } from '../core/storage/message-store.js';
import { recordUsageMany, usageInsertSql } from '../core/usage.js';
import { SegmentLedger, usageOf } from '../channels/twilio-sms/ledger.js';
import { openMessageDatabase } from './message-database.js';
import { preloadMessages } from './stored-data.js';
import { cpuMs } from './proc-cpu.js';

const external = process.argv.includes('--external');
const MESSAGES = Number(process.argv.find((a) => a.startsWith('--messages='))?.slice('--messages='.length) ?? 1500);
/** `--sizes=1,16`: the batch sizes measured. */
const SIZES = (process.argv.find((a) => a.startsWith('--sizes='))?.slice('--sizes='.length) ?? '1,16').split(',').map(Number);
/** `--apart`: the segment ledger rows and their usage rows as two statements, as before they were folded into one. */
const APART = process.argv.includes('--apart');
/** `--stored=N`: N past messages bulk-loaded first (as the bench's "stored data" section does), then analyzed and checkpointed. */
const STORED = Number(process.argv.find((a) => a.startsWith('--stored='))?.slice('--stored='.length) ?? 0);
/** `--bookkeeping`: only the segment ledger and usage statements, for replies that were never stored. */
const BOOKKEEPING_ONLY = process.argv.includes('--bookkeeping');
type UsageRow = Parameters<typeof recordUsageMany>[1][number];
const PRICING = { pricePerSegment: 0.0079, pricePerMms: 0.02, currency: 'USD' };

const { db, close } = await openMessageDatabase({ external, poolSize: 1 });
try {
  if (process.env.PLAN_CACHE_MODE) await db.pool.query(`SET plan_cache_mode = ${process.env.PLAN_CACHE_MODE}`);
  const backendPid = external ? (await db.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid : undefined;
  const ledger = new SegmentLedger(db.pool);
  let n = 0;
  if (STORED) {
    await preloadMessages(db.pool, STORED);
    await db.pool.query('VACUUM (ANALYZE)');
    await db.pool.query('CHECKPOINT');
  }
  /** Blocks read (not found in shared buffers) and hit so far, for the database: pages a message misses. */
  const blocks = async () => {
    // Statistics reach the views when a backend flushes them (about once a second); ask for it now.
    await db.pool.query('SELECT pg_stat_force_next_flush()');
    await db.pool.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await db.pool.query<{ read: string; hit: string }>('SELECT blks_read AS read, blks_hit AS hit FROM pg_stat_database WHERE datname = current_database()');
    return { read: Number(rows[0]?.read ?? 0), hit: Number(rows[0]?.hit ?? 0) };
  };

  /** One batch of `size` messages through every per-message statement, as the gateway runs them. */
  async function batch(size: number): Promise<void> {
    if (BOOKKEEPING_ONLY) {
      // Replies that were never stored: the ledger and usage tables reference no other table.
      await bookkeeping(Array.from({ length: size }, () => ({ id: randomUUID(), inboundId: randomUUID(), to: `+1555${String(++n % 1000).padStart(7, '0')}`, text: 'We are open 9-5, Monday to Friday.' })));
      return;
    }
    const drafts = Array.from({ length: size }, () => {
      n++;
      return { tenantId: 'demo', draft: { channel: 'twilio-sms', from: `+1555${String(n % 1000).padStart(7, '0')}`, to: '+15558880001', text: 'what are your hours?', providerMessageId: `SM${process.pid}x${n}`, raw: { Body: 'what are your hours?', MessageSid: `SM${n}` }, attributes: { encoding: 'GSM-7', segments: 1 } } };
    });
    const recorded = await recordInboundMany(db.pool, drafts);
    const finished = await finishInboundMany(
      db.pool,
      recorded.flatMap((r) =>
        r.duplicate ? [] : [{ tenantId: 'demo', inbound: r.message, claim: r.claim, status: 'processed' as const, stopReason: null, error: null, stages: [{ stage: 'demo.faq', plugin: 'demo', outcome: 'replied' as const, selfMs: 1 }], annotations: {}, replies: [{ text: 'We are open 9-5, Monday to Friday.' }], via: 'inline' as const, provisional: true }],
      ),
    );
    const replies = finished.flatMap((f) => (f.superseded ? [] : f.replies));
    // Settling meters messages.out in the same statement (since 2026-12-01, late).
    await settleInlineSentMany(db.pool, [{ tenantId: 'demo', ids: replies.map((r) => r.id), plugins: replies.map(() => 'twilio-sms') }]);
    await bookkeeping(replies, { metered: true });
  }

  /** The segment ledger and usage rows of the replies' exchanges. */
  async function bookkeeping(replies: readonly { id: string; inboundId: string | null; to: string; text: string }[], { metered = false } = {}): Promise<void> {
    const parts = replies.flatMap((r) => [
      { tenantId: 'demo', ref: `SM${r.inboundId}`, part: 0, direction: 'in' as const, via: 'inbound' as const, address: r.to, messageSid: `SM${r.inboundId}`, ...usageOf('what are your hours?', 0, PRICING) },
      { tenantId: 'demo', ref: r.id, part: 0, direction: 'out' as const, via: 'inline' as const, address: r.to, messageSid: null, ...usageOf(r.text, 0, PRICING) },
    ]);
    const sent = replies.map((r): UsageRow => ({ tenantId: 'demo', kind: 'messages.out', quantity: 1, unit: 'message', plugin: 'twilio-sms', ref: r.id, attributes: { channel: 'twilio-sms', via: 'inline' } }));
    if (APART) {
      // Before the fold: the ledger rows, then their usage rows before the reply; messages.out after it.
      await ledger.recordMany(parts);
      await recordUsageMany(
        db.pool,
        replies.flatMap((r): UsageRow[] => [
          { tenantId: 'demo', kind: 'sms.segments.in', quantity: 1, unit: 'segment', costUsd: 0.0079, plugin: 'twilio-sms', ref: `SM${r.inboundId}`, attributes: { via: 'inbound', currency: 'USD' } },
          { tenantId: 'demo', kind: 'sms.segments.out', quantity: 1, unit: 'segment', costUsd: 0.0079, plugin: 'twilio-sms', ref: r.id, attributes: { via: 'inline', currency: 'USD' } },
        ]),
      );
      if (!metered) await recordUsageMany(db.pool, sent);
    } else {
      // The gateway's path: ledger rows and their usage in one statement before the reply; messages.out
      // after it, in the statement that settles the reply (or, for replies never stored, on its own).
      await ledger.recordManyMetered(parts, (source) => usageInsertSql(source, 'twilio-sms'));
      if (!metered) await recordUsageMany(db.pool, sent);
    }
  }

  for (const size of SIZES) {
    for (let i = 0; i < 200 / size; i++) await batch(size); // warm-up: JIT, catalog caches, prepared statements
    const node0 = cpuMs(process.pid);
    const pg0 = backendPid ? cpuMs(backendPid) : 0;
    const b0 = await blocks();
    const t0 = performance.now();
    for (let done = 0; done < MESSAGES; done += size) await batch(size);
    const b1 = await blocks();
    const per = (ms: number) => (ms / MESSAGES).toFixed(2);
    const node = cpuMs(process.pid) - node0;
    const server = backendPid ? cpuMs(backendPid) - pg0 : 0;
    console.log(
      `${db.kind}${BOOKKEEPING_ONLY ? ', bookkeeping only' : ''}${APART ? ' (apart)' : ''}, batches of ${String(size).padStart(2)}: ${per(node)} ms CPU/message in this process${external ? ` + ${per(server)} ms PostgreSQL = ${per(node + server)} ms` : ' (pg client + PGlite)'}; ${Math.round((MESSAGES / (performance.now() - t0)) * 1000)} messages/s wall; pages read ${((b1.read - b0.read) / MESSAGES).toFixed(1)} / hit ${((b1.hit - b0.hit) / MESSAGES).toFixed(1)} per message${STORED ? ` (${STORED.toLocaleString('en')} stored)` : ''}`,
    );
  }
} finally {
  await close();
}

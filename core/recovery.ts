/**
 * Crash recovery. Outbox items whose job was lost (a crash between the commit and the enqueue, a Redis
 * flush) are enqueued again, and so are inline replies a process left provisional (`sending`) when it
 * died before their response settled them: sent at least once, so one that did reach the person just
 * before the crash goes twice. Inbound messages whose processing was cut off are run again under a
 * new claim token. Live runs keep their claims fresh (the heartbeat), so a sweep never takes them.
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { InboundMessage } from './message.js';
import type { HandoffState } from './plugin.js';
import type { TenantInfo, TenantDirectory } from './tenancy.js';
import type { OutboxSender } from './outbox.js';
import type { BackgroundWork } from './background.js';

/** Claims this instance's runs hold (inbound id -> token). */
export class HeldClaims {
  private readonly held = new Map<string, string>();

  hold(inboundId: string, claim: string): void {
    this.held.set(inboundId, claim);
  }

  /** Forgets a claim, unless a newer run of the same message (recovery) holds the entry now. */
  release(inboundId: string, claim: string): void {
    if (this.held.get(inboundId) === claim) this.held.delete(inboundId);
  }

  /** Refreshes every held claim whose token is still current. */
  async heartbeat(db: Pool): Promise<void> {
    if (!this.held.size) return;
    const held = [...this.held];
    await db.query(
      `UPDATE parley_inbound_claims c SET claimed_at = now() FROM unnest($1::uuid[], $2::uuid[]) AS h(id, token) WHERE c.inbound_id = h.id AND c.token = h.token`,
      [held.map(([id]) => id), held.map(([, token]) => token)],
    );
  }
}

export interface RecoveryDeps {
  db: Pool;
  log: Logger;
  tenants: TenantDirectory;
  outbox: OutboxSender;
  claims: HeldClaims;
  background: BackgroundWork;
  /** Runs a recovered message under its new claim; replies go via the outbox. */
  /** `resumeAfter`: a resumed message (`gateway.resume`) continues after that stage again. */
  rerun(tenant: TenantInfo, message: InboundMessage, claim: string, handoff: HandoffState, resumeAfter: string | null): Promise<unknown>;
  /** Work that rides on the sweep's timer (metrics refreshes). */
  afterSweep?: () => Promise<void>;
  isRunning(): boolean;
  sweepIntervalMs: number;
  recoverAfterMs: number;
}

export class Recovery {
  private sweepTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: RecoveryDeps) {}

  /** Sweeps now and every `sweepIntervalMs`; refreshes held claims four times per recovery window. */
  start(): void {
    const { background, log, recoverAfterMs } = this.deps;
    const core = (what: string) => ({ plugin: 'core', what });
    this.sweepTimer = setInterval(() => background.track(this.sweep(), core('recovery sweep')), this.deps.sweepIntervalMs);
    this.sweepTimer.unref();
    this.heartbeatTimer = setInterval(
      () => background.track(this.deps.claims.heartbeat(this.deps.db).catch((error: unknown) => log.warn({ err: error }, 'claim heartbeat failed; will try again')), core('claim heartbeat')),
      Math.min(30_000, Math.max(1_000, recoverAfterMs / 4)),
    );
    this.heartbeatTimer.unref();
    background.track(this.sweep(), core('recovery sweep'));
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    clearInterval(this.heartbeatTimer);
  }

  /** One sweep: lost outbox jobs, interrupted inbound runs, then `afterSweep`. Never throws. */
  async sweep(): Promise<void> {
    if (!this.deps.isRunning()) return;
    const { db, log, outbox } = this.deps;
    try {
      const { rows } = await db.query<{ id: string; tenant_id: string }>(
        `SELECT id, tenant_id FROM parley_outbox WHERE status IN ('pending', 'retrying', 'sending') AND updated_at < now() - interval '60 seconds' ORDER BY created_at LIMIT 500`,
      );
      if (rows.length) {
        log.warn({ count: rows.length }, 'outbox sweep: re-enqueueing items with no recent progress');
        await outbox.enqueue(rows.map((r) => ({ id: r.id, tenantId: r.tenant_id })));
      }
      await this.recoverInbound(`${this.deps.recoverAfterMs} milliseconds`);
      await this.deps.afterSweep?.();
    } catch (error) {
      log.warn({ err: error }, 'recovery sweep failed; will try again');
    }
  }

  /**
   * Re-runs inbound messages stuck in processing (their process died, or a run outlived `olderThan`).
   * Each re-run takes the claim with a new token, so an overtaken run can no longer finish the message.
   */
  async recoverInbound(olderThan: string): Promise<number> {
    const { db, log, tenants } = this.deps;
    const { rows } = await db.query<{ id: string; token: string }>(
      `UPDATE parley_inbound_claims SET claimed_at = now(), token = gen_random_uuid() WHERE inbound_id IN (
         SELECT inbound_id FROM parley_inbound_claims WHERE claimed_at < now() - $1::interval ORDER BY claimed_at LIMIT 100 FOR UPDATE SKIP LOCKED
       ) RETURNING inbound_id AS id, token`,
      [olderThan],
    );
    for (const { id, token } of rows) {
      const { rows: msgRows } = await db.query(`SELECT i.*, c.handoff FROM parley_inbound i JOIN parley_conversations c ON c.id = i.conversation_id WHERE i.id = $1`, [id]);
      const r = msgRows[0];
      const tenant = r && tenants.get(r.tenant_id);
      if (!r || !tenant) continue;
      log.warn({ inboundId: id, tenant: tenant.id }, 'recovering an inbound message whose processing was interrupted');
      await this.deps.rerun(
        tenant,
        { id: r.id, tenantId: r.tenant_id, conversationId: r.conversation_id, channel: r.channel, from: r.from_address, to: r.to_address, text: r.body, media: r.media, providerMessageId: r.provider_message_id, receivedAt: r.received_at, raw: r.raw, attributes: r.attributes },
        token,
        r.handoff,
        r.resume_after ?? null,
      );
    }
    return rows.length;
  }
}

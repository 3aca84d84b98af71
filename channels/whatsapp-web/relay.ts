/**
 * Sends for a number driven by another instance. The outbox job may run on any instance, but only
 * the owner holds the WhatsApp Web session: a non-owner writes a relay request (the outbox id, no
 * message content), the owner claims it, sends, and writes the result back, which the requesting
 * job returns as its own. Unclaimed requests are withdrawn and retried; claimed ones whose result
 * never comes back have an unknown outcome and are never resent.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { SendError, type MediaAttachment, type SendResult } from 'parley';

/** The part of an outbox item a send needs. */
export interface LocalSend {
  id: string;
  to: string;
  text: string;
  media: MediaAttachment[];
  options: Record<string, unknown>;
}

type RelayResult = { ok: true; result: SendResult } | { ok: false; message: string; retryable: boolean; providerCode?: string; outcomeUnknown: boolean; retryAfterMs?: number };

export class SendRelay {
  constructor(
    private readonly db: Pool,
    private readonly instanceId: string,
    private readonly log: Logger,
    private readonly pollMs: number,
  ) {}

  /** Asks the owner of the tenant's number to send this outbox item; waits up to `waitMs`. */
  async request(tenantId: string, outboxId: string, waitMs: number): Promise<SendResult> {
    const { rows } = await this.db.query<{ id: string }>(
      `INSERT INTO whatsapp_web_relay (tenant_id, outbox_id, requested_by) VALUES ($1, $2, $3) RETURNING id`,
      [tenantId, outboxId, this.instanceId],
    );
    const id = rows[0]!.id;
    const deadline = Date.now() + waitMs;
    for (;;) {
      await delay(Math.min(this.pollMs, 100));
      const { rows: found } = await this.db.query<{ state: string; result: RelayResult | null }>(`SELECT state, result FROM whatsapp_web_relay WHERE id = $1 AND tenant_id = $2`, [id, tenantId]);
      const row = found[0];
      if (row && (row.state === 'done' || row.state === 'failed') && row.result) {
        await this.db.query(`DELETE FROM whatsapp_web_relay WHERE id = $1 AND tenant_id = $2`, [id, tenantId]);
        if (row.result.ok) return row.result.result;
        const r = row.result;
        throw new SendError(r.message, { retryable: r.retryable, outcomeUnknown: r.outcomeUnknown, ...(r.providerCode ? { providerCode: r.providerCode } : {}), ...(r.retryAfterMs ? { retryAfterMs: r.retryAfterMs } : {}) });
      }
      if (Date.now() < deadline) continue;
      const { rowCount } = await this.db.query(`DELETE FROM whatsapp_web_relay WHERE id = $1 AND tenant_id = $2 AND state = 'pending'`, [id, tenantId]);
      if (rowCount) throw new SendError('No instance is driving this WhatsApp number right now', { retryable: true, providerCode: 'no-session-owner', retryAfterMs: 10_000 });
      await this.db.query(`DELETE FROM whatsapp_web_relay WHERE id = $1 AND tenant_id = $2`, [id, tenantId]);
      throw new SendError('The instance driving this number took the send but did not report back', { retryable: false, outcomeUnknown: true, providerCode: 'outcome-unknown' });
    }
  }

  /**
   * Serves pending requests for the tenants this instance owns. Returns how many it handled.
   * @example
   * setInterval(() => relay.serve(ownedTenantIds(), (tenantId, item) => sessions.get(tenantId)!.send(item)), 500);
   */
  async serve(tenantIds: string[], send: (tenantId: string, item: LocalSend) => Promise<SendResult>): Promise<number> {
    if (tenantIds.length === 0) return 0;
    const { rows } = await this.db.query<{ id: string; tenant_id: string; outbox_id: string }>(
      `UPDATE whatsapp_web_relay SET state = 'claimed', claimed_by = $1, updated_at = now()
       WHERE id IN (SELECT id FROM whatsapp_web_relay WHERE tenant_id = ANY($2) AND state = 'pending' ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED)
       RETURNING id, tenant_id, outbox_id`,
      [this.instanceId, tenantIds],
    );
    await Promise.all(
      rows.map(async (r) => {
        let result: RelayResult;
        try {
          const item = await this.loadOutbox(r.tenant_id, r.outbox_id);
          if (!item) throw new SendError('The outbox item to relay no longer exists', { retryable: false, providerCode: 'missing' });
          result = { ok: true, result: await send(r.tenant_id, item) };
        } catch (error) {
          const e = error instanceof SendError ? error : new SendError(error instanceof Error ? error.message : String(error), { retryable: true });
          result = { ok: false, message: e.message, retryable: e.retryable, outcomeUnknown: e.outcomeUnknown, ...(e.providerCode ? { providerCode: e.providerCode } : {}), ...(e.retryAfterMs ? { retryAfterMs: e.retryAfterMs } : {}) };
        }
        await this.db.query(`UPDATE whatsapp_web_relay SET state = $3, result = $4::jsonb, updated_at = now() WHERE id = $1 AND tenant_id = $2`, [r.id, r.tenant_id, result.ok ? 'done' : 'failed', JSON.stringify(result)]);
        this.log.debug({ tenant: r.tenant_id, outboxId: r.outbox_id, ok: result.ok }, 'relayed a WhatsApp Web send for another instance');
      }),
    );
    return rows.length;
  }

  /** Drops requests nobody collected (their requester died). */
  async prune(tenantIds: string[]): Promise<void> {
    if (tenantIds.length) await this.db.query(`DELETE FROM whatsapp_web_relay WHERE tenant_id = ANY($1) AND updated_at < now() - interval '10 minutes'`, [tenantIds]);
  }

  private async loadOutbox(tenantId: string, outboxId: string): Promise<LocalSend | undefined> {
    // Read-only use of the kernel's outbox: the relay row carries no message content.
    const { rows } = await this.db.query<{ id: string; to_address: string; body: string; media: MediaAttachment[]; options: Record<string, unknown> }>(
      `SELECT id, to_address, body, media, options FROM parley_outbox WHERE tenant_id = $1 AND id = $2`,
      [tenantId, outboxId],
    );
    const r = rows[0];
    return r ? { id: r.id, to: r.to_address, text: r.body, media: r.media, options: r.options } : undefined;
  }
}

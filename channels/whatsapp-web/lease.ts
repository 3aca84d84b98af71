/**
 * Ownership of a WhatsApp number across Parley instances: a row per number whose `lease_until` the
 * owner pushes forward every few seconds with a conditional upsert. Another instance takes the row
 * only once the lease has run out, so a number is driven by one instance at a time and moves to
 * another within one TTL (plus one renew interval) after its owner dies. Times come from the
 * database clock, so instances need not agree on theirs.
 */
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import type { Migration } from 'parley';
import type { SessionState } from './types.js';

export const migrations: Migration[] = [
  {
    id: '001_whatsapp_web',
    sql: `
CREATE TABLE whatsapp_web_sessions (
  tenant_id text NOT NULL,
  number text NOT NULL,
  owner_instance text NOT NULL,
  lease_until timestamptz NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  state text NOT NULL DEFAULT 'starting',
  state_detail text,
  state_since timestamptz NOT NULL DEFAULT now(),
  qr text,
  qr_at timestamptz,
  wid text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, number)
);

CREATE TABLE whatsapp_web_relay (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  outbox_id uuid NOT NULL,
  requested_by text NOT NULL,
  state text NOT NULL DEFAULT 'pending',
  claimed_by text,
  result jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX whatsapp_web_relay_pending ON whatsapp_web_relay (tenant_id, id) WHERE state = 'pending';

CREATE TABLE whatsapp_web_media (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL,
  message_id text NOT NULL,
  sender_address text NOT NULL,
  content_type text NOT NULL,
  filename text,
  size int NOT NULL,
  data bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, message_id)
);
CREATE INDEX whatsapp_web_media_sender ON whatsapp_web_media (tenant_id, sender_address);
CREATE INDEX whatsapp_web_media_age ON whatsapp_web_media (tenant_id, created_at);
`,
  },
  {
    // RemoteAuth sessions (option auth: database): the zipped WhatsApp Web profile, one row per session.
    id: '002_whatsapp_web_auth',
    sql: `
CREATE TABLE whatsapp_web_auth (
  tenant_id text NOT NULL,
  session text NOT NULL,
  data bytea NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, session)
);
`,
  },
];

/** The shared view of a number's session: who drives it and how it is doing. */
export interface SessionRow {
  tenantId: string;
  number: string;
  ownerInstance: string;
  leaseUntil: Date;
  leaseValid: boolean;
  state: SessionState;
  stateDetail: string | null;
  stateSince: Date;
  qr: string | null;
  qrAt: Date | null;
  wid: string | null;
}

export class SessionLease {
  /** Until when (local monotonic clock) this instance may act as owner without asking again. */
  private validUntil = 0;

  constructor(
    private readonly db: Pool,
    readonly tenantId: string,
    readonly number: string,
    readonly instanceId: string,
    readonly ttlMs: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * Takes the lease if it is free or expired, or renews it if this instance holds it. Returns
   * whether this instance owns the number now.
   * @example
   * if (await lease.acquire()) startClient(); else stopClient();
   */
  async acquire(): Promise<boolean> {
    // Measured before the query: the lease may have been written at any moment after this.
    const asked = this.clock();
    const { rows } = await this.db.query(
      `INSERT INTO whatsapp_web_sessions (tenant_id, number, owner_instance, lease_until)
       VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
       ON CONFLICT (tenant_id, number) DO UPDATE SET
         owner_instance = EXCLUDED.owner_instance,
         lease_until = EXCLUDED.lease_until,
         acquired_at = CASE WHEN whatsapp_web_sessions.owner_instance = EXCLUDED.owner_instance THEN whatsapp_web_sessions.acquired_at ELSE now() END,
         updated_at = now()
       WHERE whatsapp_web_sessions.owner_instance = EXCLUDED.owner_instance OR whatsapp_web_sessions.lease_until < now()
       RETURNING owner_instance`,
      [this.tenantId, this.number, this.instanceId, this.ttlMs],
    );
    const owned = rows.length === 1;
    this.validUntil = owned ? asked + this.ttlMs : 0;
    return owned;
  }

  /** Whether the last successful renewal still covers now; checked before every send. */
  heldLocally(): boolean {
    return this.clock() < this.validUntil;
  }

  /** Gives the number up at once (a clean shutdown): the next instance need not wait for the TTL. */
  async release(): Promise<void> {
    this.validUntil = 0;
    await this.db.query(
      `UPDATE whatsapp_web_sessions SET lease_until = now() - interval '1 millisecond', state = 'stopped', state_since = now(), qr = NULL, updated_at = now()
       WHERE tenant_id = $1 AND number = $2 AND owner_instance = $3`,
      [this.tenantId, this.number, this.instanceId],
    );
  }

  /** Publishes the session state (and QR code) for every instance's status route; owner only. */
  async report(state: SessionState, fields: { detail?: string | null; qr?: string | null; wid?: string | null } = {}): Promise<void> {
    await this.db.query(
      `UPDATE whatsapp_web_sessions SET
         state_since = CASE WHEN state = $4 THEN state_since ELSE now() END,
         state = $4, state_detail = $5,
         qr = CASE WHEN $6::boolean THEN $7 ELSE qr END,
         qr_at = CASE WHEN $6::boolean THEN now() ELSE qr_at END,
         wid = COALESCE($8, wid), updated_at = now()
       WHERE tenant_id = $1 AND number = $2 AND owner_instance = $3`,
      [this.tenantId, this.number, this.instanceId, state, fields.detail ?? null, fields.qr !== undefined, fields.qr ?? null, fields.wid ?? null],
    );
  }

  static async read(db: Pool, tenantId: string): Promise<SessionRow | undefined> {
    const { rows } = await db.query(
      `SELECT tenant_id, number, owner_instance, lease_until, lease_until > now() AS lease_valid, state, state_detail, state_since, qr, qr_at, wid
       FROM whatsapp_web_sessions WHERE tenant_id = $1 ORDER BY updated_at DESC LIMIT 1`,
      [tenantId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      tenantId: r.tenant_id,
      number: r.number,
      ownerInstance: r.owner_instance,
      leaseUntil: r.lease_until,
      leaseValid: r.lease_valid,
      state: r.state,
      stateDetail: r.state_detail,
      stateSince: r.state_since,
      qr: r.qr,
      qrAt: r.qr_at,
      wid: r.wid,
    };
  }
}

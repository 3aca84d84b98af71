/** Consent per tenant and address, with its history. The outbox checks it before every send. */
import type { Pool } from 'pg';
import type { ConsentStore } from './plugin.js';

/** `whatsapp:+1555...` and `+1555...` are one person: consent is kept on the bare address. */
export function consentAddress(address: string): string {
  return address.trim().replace(/^[a-z][a-z0-9-]*:/i, '').replace(/[\s().-]/g, '');
}

export function createConsentStore(db: Pool): ConsentStore {
  return {
    async set({ tenantId, address, status, source, channel, detail }) {
      const addr = consentAddress(address);
      const { rows } = await db.query<{ changed: boolean }>(
        `WITH prev AS (SELECT status FROM parley_consent WHERE tenant_id = $1 AND address = $2),
         up AS (
           INSERT INTO parley_consent (tenant_id, address, status, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (tenant_id, address) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
             WHERE parley_consent.status <> EXCLUDED.status
           RETURNING 1
         ), ev AS (
           INSERT INTO parley_consent_events (tenant_id, address, status, source, channel, detail)
           VALUES ($1, $2, $3, $4, $5, $6)
         )
         SELECT EXISTS (SELECT 1 FROM up) AS changed`,
        [tenantId, addr, status, source, channel ?? null, detail ?? null],
      );
      return { changed: rows[0]?.changed ?? false };
    },
    async isOptedOut(tenantId, address) {
      const { rows } = await db.query('SELECT 1 FROM parley_consent WHERE tenant_id = $1 AND address = $2 AND status = $3', [tenantId, consentAddress(address), 'opted-out']);
      return rows.length > 0;
    },
    async history(tenantId, address) {
      const { rows } = await db.query<{ status: string; source: string; channel: string | null; at: Date }>(
        'SELECT status, source, channel, at FROM parley_consent_events WHERE tenant_id = $1 AND address = $2 ORDER BY id',
        [tenantId, consentAddress(address)],
      );
      return rows;
    },
  };
}

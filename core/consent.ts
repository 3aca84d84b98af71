/** Consent per tenant and address, with its history. The outbox checks it before every send. */
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { ConsentStore } from './plugin.js';

/** `whatsapp:+1555...` and `+1555...` are one person: consent is kept on the bare address. */
export function consentAddress(address: string): string {
  return address.trim().replace(/^[a-z][a-z0-9-]*:/i, '').replace(/[\s().-]/g, '');
}

/**
 * The form an opt-out is kept in after the person's data was erased: `sha256:<hex>` of the bare
 * address. The suppression record must outlive erasure (carriers, the TCPA), but need not name the
 * person; sends are still checked against it. A phone number's hash can be found again by hashing
 * every number, so this is pseudonymisation, not anonymisation: it is documented as kept data.
 */
export function suppressionHash(address: string): string {
  return `sha256:${createHash('sha256').update(consentAddress(address), 'utf8').digest('hex')}`;
}

/** The same, in SQL, for statements that check consent themselves. */
export const SUPPRESSION_HASH_SQL = (column: string) => `'sha256:' || encode(sha256(convert_to(${column}, 'UTF8')), 'hex')`;

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
         ), unsuppress AS (
           -- Opting in again lifts a hashed suppression record kept after an erasure.
           DELETE FROM parley_consent WHERE tenant_id = $1 AND address = $7 AND $3 = 'opted-in'
         )
         SELECT EXISTS (SELECT 1 FROM up) AS changed`,
        [tenantId, addr, status, source, channel ?? null, detail ?? null, suppressionHash(addr)],
      );
      return { changed: rows[0]?.changed ?? false };
    },
    async isOptedOut(tenantId, address) {
      const addr = consentAddress(address);
      const { rows } = await db.query('SELECT 1 FROM parley_consent WHERE tenant_id = $1 AND address = ANY($2) AND status = $3', [tenantId, [addr, suppressionHash(addr)], 'opted-out']);
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

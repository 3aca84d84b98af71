/**
 * Tenants, the addresses they own and the keys that act for them. The tenant of a piece of work is
 * passed to it (a stage's `ctx.tenant`, a job's data), not kept in an ambient context.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import type { TenantConfig } from './config.js';
import { ParleyError } from './errors.js';

export interface TenantInfo {
  id: string;
  name: string;
  locale: string;
  timezone: string;
  fallbackReply: string | null;
  pipeline: readonly string[];
  /** Reply stages every outgoing message of this tenant runs through, in order. */
  replyPipeline: readonly string[];
}

/** Who a key is. `keyId` names the key in audit trails: a stored key's id, `config:<hash…>`, or the start of an operator key's hash. */
export type Principal = { kind: 'operator'; keyId: string } | { kind: 'tenant'; tenantId: string; keyId: string };

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new random key: `pk_<tenant>_<32 bytes base64url>`, shown once, stored hashed. */
export function generateApiKey(prefix: string): string {
  return `pk_${prefix}_${randomBytes(32).toString('base64url')}`;
}

/** Normalises an address for lookup: E.164 digits keep their `+`, channel prefixes are kept. */
export function normaliseAddress(address: string): string {
  return address.trim().replace(/[\s().-]/g, '').toLowerCase();
}

export class TenantDirectory {
  private readonly tenants = new Map<string, TenantInfo>();
  private readonly configs = new Map<string, TenantConfig>();
  private readonly addresses = new Map<string, string>();
  private readonly configKeyHashes = new Map<string, Buffer>();
  private readonly operatorKeyHashes: Buffer[];
  private db: Pool | undefined;

  constructor(tenants: TenantConfig[], operatorKeys: string[]) {
    for (const t of tenants) {
      this.configs.set(t.id, t);
      this.tenants.set(t.id, {
        id: t.id,
        name: t.name ?? t.id,
        locale: t.locale,
        timezone: t.timezone,
        fallbackReply: t.fallbackReply,
        pipeline: Object.freeze([...t.pipeline]),
        replyPipeline: Object.freeze([...t.replyPipeline]),
      });
      for (const key of t.apiKeys) this.configKeyHashes.set(hashApiKey(key), Buffer.from(t.id));
    }
    this.operatorKeyHashes = operatorKeys.map((k) => Buffer.from(hashApiKey(k), 'hex'));
  }

  attachDatabase(db: Pool): void {
    this.db = db;
  }

  list(): TenantInfo[] {
    return [...this.tenants.values()];
  }

  get(id: string): TenantInfo | undefined {
    return this.tenants.get(id);
  }

  config(id: string): TenantConfig | undefined {
    return this.configs.get(id);
  }

  claimAddress(channel: string, address: string, tenantId: string): void {
    const key = `${channel}\u0000${normaliseAddress(address)}`;
    const owner = this.addresses.get(key);
    if (owner && owner !== tenantId) {
      throw new ParleyError('PARLEY_ADDRESS_TAKEN', `Address ${address} on channel ${channel} is claimed by tenants "${owner}" and "${tenantId}"`);
    }
    this.addresses.set(key, tenantId);
  }

  resolve(channel: string, address: string): TenantInfo | undefined {
    const id = this.addresses.get(`${channel}\u0000${normaliseAddress(address)}`);
    return id ? this.tenants.get(id) : undefined;
  }

  /** Who a bearer key belongs to: the operator, a tenant (config or stored key), or nobody. */
  async authenticate(key: string | undefined): Promise<Principal | null> {
    if (!key) return null;
    return this.authenticateHash(hashApiKey(key));
  }

  /** The same from the key's hash (`hashApiKey`): a console session re-checks its key on every request. */
  async authenticateHash(hash: string): Promise<Principal | null> {
    if (!/^[0-9a-f]{64}$/.test(hash)) return null;
    const hashBuf = Buffer.from(hash, 'hex');
    for (const op of this.operatorKeyHashes) if (op.length === hashBuf.length && timingSafeEqual(op, hashBuf)) return { kind: 'operator', keyId: hash.slice(0, 12) };
    const tenant = this.configKeyHashes.get(hash);
    if (tenant) return { kind: 'tenant', tenantId: tenant.toString(), keyId: `config:${hash.slice(0, 12)}` };
    if (!this.db) return null;
    const { rows } = await this.db.query<{ id: string; tenant_id: string }>(
      'SELECT id, tenant_id FROM parley_api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    const row = rows[0];
    if (!row || !this.tenants.has(row.tenant_id)) return null;
    return { kind: 'tenant', tenantId: row.tenant_id, keyId: row.id };
  }
}

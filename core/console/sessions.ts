/**
 * Console sessions: a key typed into the sign-in form is exchanged for a random token in an httpOnly
 * cookie. The database keeps the token's hash, the key's hash and the session's CSRF token, never
 * the key; every request resolves the principal from the key's hash again, so a revoked key ends its
 * sessions at once, on every instance.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import { hashApiKey, type Principal, type TenantDirectory } from '../tenancy.js';

export const SESSION_COOKIE = 'parley_console';
export const CSRF_HEADER = 'x-parley-csrf';

export interface ConsoleSession {
  principal: Principal;
  csrf: string;
  expiresAt: Date;
}

const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export class ConsoleSessions {
  constructor(private readonly deps: { pool: () => Pool; tenants: TenantDirectory; ttlSeconds: number }) {}

  /** A new session for a valid key, or null; the token goes in the cookie and nowhere else. */
  async create(key: string): Promise<{ token: string; session: ConsoleSession } | null> {
    const principal = await this.deps.tenants.authenticate(key);
    if (!principal) return null;
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const { rows } = await this.deps.pool().query<{ expires_at: Date }>(
      `INSERT INTO parley_console_sessions (token_hash, key_hash, csrf, expires_at) VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
      [tokenHash(token), hashApiKey(key), csrf, this.deps.ttlSeconds],
    );
    // Expired sessions go when someone signs in: no job needed for a table this small.
    await this.deps.pool().query('DELETE FROM parley_console_sessions WHERE expires_at < now()');
    return { token, session: { principal, csrf, expiresAt: rows[0]!.expires_at } };
  }

  /** The live session of a cookie token, its principal re-checked from the key. */
  async resolve(token: string | undefined): Promise<ConsoleSession | null> {
    if (!token || token.length > 100) return null;
    const { rows } = await this.deps.pool().query<{ key_hash: string; csrf: string; expires_at: Date }>(
      'SELECT key_hash, csrf, expires_at FROM parley_console_sessions WHERE token_hash = $1 AND expires_at > now()',
      [tokenHash(token)],
    );
    const row = rows[0];
    if (!row) return null;
    const principal = await this.deps.tenants.authenticateHash(row.key_hash);
    return principal ? { principal, csrf: row.csrf, expiresAt: row.expires_at } : null;
  }

  async destroy(token: string | undefined): Promise<void> {
    if (token) await this.deps.pool().query('DELETE FROM parley_console_sessions WHERE token_hash = $1', [tokenHash(token)]);
  }
}

/** The session cookie's value from a Cookie header (no cookie parser needed for one name). */
export function sessionToken(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** Constant-time comparison of the CSRF header with the session's token. */
export function csrfMatches(session: ConsoleSession, header: string | undefined): boolean {
  if (!header) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(header);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Rate limits on rate-limiter-flexible, on the deployment's backend so a limit holds across instances:
 * Redis when `storage.redisUrl` is set (RateLimiterRedis on ioredis), else the database
 * (RateLimiterPostgres on the gateway's pool; its table `cost_guard_limits` comes from our migration,
 * so the limiter never runs DDL), or memory (one instance only, for tests). Fixed windows: `points`
 * per `seconds`. A store failure lets the request through (fail open) and is logged.
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export type LimiterStore = 'database' | 'redis' | 'memory';

export interface Take {
  ok: boolean;
  /** Until the window resets (ms). */
  msBeforeNext: number;
}

export class Limits {
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private redis: Redis | undefined;

  constructor(
    private readonly deps: { store: LimiterStore; pool: Pool; redisUrl: string | undefined; prefix: string; log: Logger },
  ) {
    if (deps.store === 'redis') this.redis = new Redis(deps.redisUrl!, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false });
  }

  /** One limiter per scope and shape; keys within it are tenants or hashed senders. */
  private limiter(scope: string, points: number, seconds: number): RateLimiterAbstract {
    const id = `${scope}:${points}:${seconds}`;
    let l = this.limiters.get(id);
    if (l) return l;
    const opts = { points, duration: seconds, keyPrefix: `${this.deps.prefix}:${id}` };
    if (this.deps.store === 'redis') l = new RateLimiterRedis({ ...opts, storeClient: this.redis });
    else if (this.deps.store === 'database') l = new RateLimiterPostgres({ ...opts, storeClient: this.deps.pool, storeType: 'pool', tableName: 'cost_guard_limits', tableCreated: true, clearExpiredByTimeout: false });
    else l = new RateLimiterMemory(opts);
    this.limiters.set(id, l);
    return l;
  }

  /** Takes one point of `key`'s window. */
  async take(scope: string, key: string, points: number, seconds: number): Promise<Take> {
    try {
      const r = await this.limiter(scope, points, seconds).consume(key, 1);
      return { ok: true, msBeforeNext: r.msBeforeNext };
    } catch (error) {
      if (error instanceof RateLimiterRes) return { ok: false, msBeforeNext: error.msBeforeNext };
      this.deps.log.error({ err: error, scope }, 'cost-guard: rate limiter store failed; the request is let through');
      return { ok: true, msBeforeNext: 0 };
    }
  }

  /** Points used in `key`'s current window of every limiter of `scope` (for a data-subject export). */
  async usage(scope: string, key: string): Promise<{ limiter: string; used: number; resetsInMs: number }[]> {
    const out: { limiter: string; used: number; resetsInMs: number }[] = [];
    for (const [id, l] of this.limiters) {
      if (!id.startsWith(`${scope}:`)) continue;
      const r = await l.get(key).catch(() => null);
      if (r) out.push({ limiter: id, used: r.consumedPoints, resetsInMs: r.msBeforeNext });
    }
    return out;
  }

  /** Forgets `key` in every limiter of the scopes (erasure). Limiters this instance never built are reached through the store's key prefix. */
  async forget(scopes: string[], key: string): Promise<number> {
    let n = 0;
    for (const [id, l] of this.limiters) if (scopes.some((s) => id.startsWith(`${s}:`))) n += (await l.delete(key).catch(() => false)) ? 1 : 0;
    if (this.deps.store === 'database') {
      const { rowCount } = await this.deps.pool.query(`DELETE FROM cost_guard_limits WHERE key LIKE $1 AND key LIKE $2`, [`${this.deps.prefix}:%`, `%:${key}`]);
      n += rowCount ?? 0;
    } else if (this.redis) {
      const found: string[] = [];
      for (const scope of scopes) {
        let cursor = '0';
        do {
          const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.deps.prefix}:${scope}:*:${key}`, 'COUNT', 500);
          cursor = next;
          found.push(...keys);
        } while (cursor !== '0');
      }
      if (found.length) n += await this.redis.del(...found);
    }
    return n;
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
  }
}

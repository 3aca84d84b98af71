/**
 * `cost-guard`: budgets, rate limits, emergency blocks and a response cache on the kernel's usage
 * ledger. Prices usage rows recorded without a cost, keeps an hourly rollup and per-window budget
 * counters, reserves budget before every model call (`ctx.ai.intercept`) and paid send (reply stage),
 * limits API requests (`ctx.apiGuard`) and inbound messages (pipeline stage), and reports spend.
 */
import { createHash } from 'node:crypto';
import { ConfigError, TOKENS, definePlugin, subjectHashes, token } from 'parley';
import { costInterceptor } from './ai.js';
import { Budgets } from './budgets.js';
import { Limits, type LimiterStore } from './limits.js';
import { costMetrics } from './metrics.js';
import { blockListOf, costRoutes } from './routes.js';
import { inboundStage, replyStage, sendEstimate } from './stage.js';
import { CostStore, migrations } from './store.js';
import { optionsSchema, settingsSchema, type CostGuardSettings } from './types.js';

export { cacheKey, normalise } from './ai.js';
export { smsSegments, senderKey, COST_STAGE } from './stage.js';
export type { CostGuardOptions, CostGuardSettings, PriceRule } from './types.js';

/**
 * The messaging budget as other plugins may ask about it (`ctx.tryInject(SEND_BUDGET)`, an optional
 * integration: a plugin that sends in bulk stops when a send like this one no longer fits, instead of
 * queueing the rest to be refused one by one). `fits` is what the reply stage would decide now (a
 * concurrent send may still take the room first); `remainingUsd` is null when no budget applies, and
 * the whole answer is null for a tenant without cost-guard.
 * @example
 * const budget = ctx.tryInject(SEND_BUDGET);
 * const room = await budget?.room('clinic', { channel: 'twilio-sms', text });
 * if (room && !room.fits) stopTheRun('budget');
 */
export interface SendBudget {
  room(tenantId: string, send: { channel: string; text: string }): Promise<{ fits: boolean; remainingUsd: number | null; estimateUsd: number } | null>;
}
export const SEND_BUDGET = token<SendBudget>('cost-guard.send-budget');

/** How long an instance trusts its copy of a tenant's blocks (blocks made on another instance apply after this). */
const BLOCKS_TTL_MS = 5_000;
/** Per-sender limiter scopes: their keys hold a hashed address (erased with the person). */
const SENDER_SCOPES = ['user-minute', 'user-day', 'notice-user-minute', 'notice-user-day'];

/**
 * @example
 * // parley.yaml
 * // plugins:
 * //   - name: cost-guard
 * //     options: { prices: [{ kind: sms.segments.out, usd: 0.0079 }, { kind: sms.segments.out, country: GB, usd: 0.04 }] }
 * // tenants:
 * //   - id: clinic
 * //     pipeline: [crisis-guard, cost-guard, medical-answers]
 * //     replyPipeline: [cost-guard]
 * //     plugins:
 * //       cost-guard: { budgets: { ai: { daily: 50, monthly: 1000 } }, spike: { dailyUsd: 200 }, rateLimits: { api: { perMinute: 100 } } }
 */
export default definePlugin({
  name: 'cost-guard',
  kind: 'capability',
  description: 'Usage ledger pricing and rollups, per-tenant budgets checked before model calls and paid sends, rate limits, sender and IP blocks, and a response cache.',
  optionsSchema,
  settingsSchema,
  setup(ctx) {
    const gateway = ctx.inject(TOKENS.Gateway);
    const config = gateway.config;

    // Bad config fails at start naming tenant, plugin and key.
    const issues: string[] = [];
    for (const { tenant, settings } of ctx.tenants()) {
      if (settings.action === 'degrade') {
        const to = settings.degradeTo;
        if (!to) issues.push(`${ctx.configPath(tenant.id)}.degradeTo: required when action is "degrade" (a provider from ai.providers, or "local")`);
        else if (to !== 'local' && !config.ai.providers[to]) issues.push(`${ctx.configPath(tenant.id)}.degradeTo: unknown AI provider "${to}" (known: ${['local', ...Object.keys(config.ai.providers)].join(', ')})`);
        else if (to !== 'local' && !config.ai.providers[to]!.chatModel) issues.push(`${ctx.configPath(tenant.id)}.degradeTo: AI provider "${to}" has no chatModel`);
      }
    }
    if (ctx.options.limiterStore === 'redis' && !config.storage.redisUrl) issues.push(`${ctx.configPath()}.limiterStore: "redis" needs storage.redisUrl`);
    if (issues.length) throw new ConfigError(issues);

    const store = new CostStore(ctx.db);
    const settings = (id: string) => ctx.settingsFor(id) as CostGuardSettings | undefined;
    const tenants = () => ctx.tenants().map((t) => t.tenant);
    const budgets = new Budgets({ store, alerts: ctx.alerts, log: ctx.log, ttlSeconds: ctx.options.reservationTtlSeconds, tenant: (id) => ctx.tenants().find((t) => t.tenant.id === id)?.tenant, settings });
    const metrics = costMetrics(ctx.metrics, { store, budgets, tenants: () => tenants().map((t) => t.id) });
    const limiterStore: LimiterStore = ctx.options.limiterStore === 'auto' ? (config.storage.redisUrl ? 'redis' : 'database') : ctx.options.limiterStore;
    // Instances sharing one database share limiter keys; another deployment on the same Redis does not.
    const prefix = `parley-cg-${createHash('sha256').update(gateway.db.connectionString).digest('hex').slice(0, 10)}`;
    let limits: Limits | undefined;
    const limitsOf = () => (limits ??= new Limits({ store: limiterStore, pool: ctx.db, redisUrl: config.storage.redisUrl, prefix, log: ctx.log }));

    // Blocks, cached per instance for a few seconds.
    const blockCache = new Map<string, { at: number; senders: Set<string>; ips: ReturnType<typeof blockListOf>; any: boolean }>();
    const blocksOf = async (tenantId: string) => {
      const cached = blockCache.get(tenantId);
      if (cached && Date.now() - cached.at < BLOCKS_TTL_MS) return cached;
      const list = await store.blocks(tenantId);
      const entry = { at: Date.now(), senders: new Set(list.filter((b) => b.type === 'sender').map((b) => b.value)), ips: blockListOf(list.filter((b) => b.type === 'ip').map((b) => b.value)), any: list.some((b) => b.type === 'ip') };
      blockCache.set(tenantId, entry);
      return entry;
    };

    ctx.migrations(migrations);
    ctx.provide(SEND_BUDGET, {
      async room(tenantId, send) {
        if (!settings(tenantId)) return null;
        const estimate = await sendEstimate(store, tenantId, send.channel, send.text);
        return { ...(await budgets.room(tenantId, 'messaging', estimate)), estimateUsd: estimate };
      },
    });
    ctx.stage(inboundStage({ limits: { take: (scope, key, points, seconds) => limitsOf().take(scope, key, points, seconds) }, blocks: { senders: async (t) => (await blocksOf(t)).senders }, metrics }));
    ctx.replyStage(replyStage({ store, budgets, metrics, ttlSeconds: ctx.options.reservationTtlSeconds, background: (w, what) => ctx.background(w, what) }));
    const chatModelOf = (provider: string) => {
      const model = config.ai.providers[provider]?.chatModel;
      return model ? { model, ...(config.ai.prices[model] ? { price: config.ai.prices[model] } : {}) } : undefined;
    };
    ctx.ai.intercept(costInterceptor({ store, budgets, metrics, log: ctx.log, settings, chatModelOf, background: (w, what) => ctx.background(w, what) }));
    ctx.apiGuard({
      name: 'cost-guard',
      async check(req) {
        const s = settings(req.tenantId);
        if (!s || req.principal === 'operator') return { allow: true };
        const blocks = await blocksOf(req.tenantId);
        if (blocks.any && req.ip) {
          const ip = req.ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
          if (blocks.ips.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4')) {
            metrics.rateLimited.inc({ tenant: req.tenantId, scope: 'ip-blocked' });
            return { allow: false, status: 403, reason: 'Requests from this address are blocked for this tenant' };
          }
        }
        if (!s.rateLimits.api) return { allow: true };
        const t = await limitsOf().take('api', req.tenantId, s.rateLimits.api.perMinute, 60);
        if (t.ok) return { allow: true };
        metrics.rateLimited.inc({ tenant: req.tenantId, scope: 'api' });
        return { allow: false, status: 429, reason: `Too many requests: tenant "${req.tenantId}" may make ${s.rateLimits.api.perMinute} API requests a minute`, retryAfterSeconds: t.msBeforeNext / 1000 };
      },
    });
    ctx.routes(costRoutes({ store, budgets, tenants, enabled: (id) => settings(id) !== undefined, settings, blocksChanged: (id) => blockCache.delete(id) }));
    ctx.schedule({
      name: 'cost-guard-sweep',
      cron: '* * * * *',
      async process() {
        const released = await store.releaseExpired();
        if (released) ctx.log.info({ released }, 'cost-guard: released expired budget reservations');
        await store.purgeCache();
        for (const t of tenants()) await budgets.check(t.id);
      },
    });
    ctx.dataSubjects({
      name: 'cost-guard.senders',
      describe: () => ({
        purpose: 'Protecting the service from floods and abuse: how many messages a sender sent in the current minute and day (to apply rate limits), and sender blocks staff made. Both are keyed by a one-way hash of the number, never the number.',
        recipients: ['The service’s operations staff (blocks list, with the hash and the reason)'],
        retention: 'Rate-limit counts expire with their window (a minute or a day); blocks stay until staff remove them or the person asks for erasure.',
        source: 'The cost-guard stage of the message pipeline and the admin API.',
      }),
      export: async (s) => {
        const hashes = subjectHashes(s);
        const out: Record<string, unknown>[] = (await store.blocksOfHashes(s.tenantId, hashes)).map((b) => ({ kind: 'sender-block', ...b }));
        for (const h of hashes) for (const scope of SENDER_SCOPES) for (const u of await limitsOf().usage(scope, `${s.tenantId}:${h}`)) out.push({ kind: 'rate-limit-window', sender: h, ...u });
        return out;
      },
      erase: async (s) => {
        const hashes = subjectHashes(s);
        let erased = await store.eraseBlocksOfHashes(s.tenantId, hashes);
        for (const h of hashes) erased += await limitsOf().forget(SENDER_SCOPES, `${s.tenantId}:${h}`);
        blockCache.delete(s.tenantId);
        return { erased };
      },
    });

    return {
      async start() {
        await store.syncTenants(tenants().map((t) => ({ id: t.id, timezone: t.timezone })));
        await store.syncConfigPrices([
          ...ctx.options.prices.map((rule) => ({ tenantId: '*', rule })),
          ...ctx.tenants().flatMap(({ tenant, settings: s }) => s.prices.map((rule) => ({ tenantId: tenant.id, rule }))),
        ]);
      },
      async stop() {
        await limits?.close();
      },
    };
  },
});

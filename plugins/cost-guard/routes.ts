/**
 * Admin routes (README "Routes"): spend and budgets per tenant and across tenants, runtime budgets and
 * prices (operator, audited), and emergency blocks of a sender or an IP range (audited).
 */
import { BlockList, isIP } from 'node:net';
import type { Router } from 'express';
import { z } from 'zod';
import { badRequest, NextPage, notFound, PAGE_LIMIT_MAX, pageOf, pageOfList, pageQuery, param, readCursor, TimeIdKey, type RouteHelpers, type TenantInfo } from 'parley';
import type { Budgets } from './budgets.js';
import type { CostStore } from './store.js';
import { senderKey } from './stage.js';
import { CATEGORIES, MODEL_TOKENS, PERIODS, priceRule, type Category, type CostGuardSettings, type Period } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const periodQuery = z.object({ period: z.enum(PERIODS).default('day') });
const budgetBody = z.object({ category: z.enum(CATEGORIES), period: z.enum(PERIODS), limitUsd: z.number().positive().max(1e9).nullable().optional(), reset: z.literal(true).optional() });
const pricesBody = z.object({
  prices: z
    .array(
      priceRule
        .extend({
          tenant: z.string().min(1).optional(),
          model: z.string().min(1).max(200).optional().describe('model.tokens.* only: the model as the provider names it (a rule for gpt-4o-mini also prices gpt-4o-mini-2024-07-18)'),
          usd: z.number().min(0).max(1000).nullable(),
        })
        .superRefine((r, ctx) => {
          if (r.kind.startsWith('model.tokens.')) {
            // Deployment-wide model prices are ai.prices (configuration); at run time only a tenant's own.
            if (!MODEL_TOKENS.test(r.kind)) ctx.addIssue({ code: 'custom', path: ['kind'], message: 'model token kinds are model.tokens.input, model.tokens.output and model.tokens.embedding' });
            if (!r.tenant) ctx.addIssue({ code: 'custom', path: ['tenant'], message: `required for ${r.kind}: model token prices are set per tenant (the deployment's are ai.prices)` });
            if (!r.model) ctx.addIssue({ code: 'custom', path: ['model'], message: `required for ${r.kind}: the model this price is for` });
            if (r.channel || r.country) ctx.addIssue({ code: 'custom', path: ['kind'], message: 'a model token price takes no channel or country' });
          } else if (r.model) ctx.addIssue({ code: 'custom', path: ['model'], message: 'only model.tokens.* prices take a model' });
        }),
    )
    .min(1)
    .max(500),
});
const blockBody = z.union([
  z.object({ sender: z.string().min(3).max(100), reason: z.string().max(500).optional() }),
  z.object({ ipRange: z.string().min(3).max(50), reason: z.string().max(500).optional() }),
]);

const at = z.iso.datetime({ offset: true });
const usd = z.number();
const Costs = z
  .looseObject({
    tenant: z.string(),
    period: z.enum(PERIODS),
    from: at,
    to: at,
    budget: usd.nullable().describe('The total budget of the period, null without one'),
    spent: usd,
    reserved: usd.describe('Held for calls in flight'),
    remaining: usd.nullable(),
    allowed: z.boolean().describe('Whether every budget still has room'),
    byCategory: z.record(z.string(), z.object({ spent: usd, budget: usd.nullable(), reserved: usd, remaining: usd.nullable() })),
    byProvider: z.record(z.string(), usd),
    byModel: z.record(z.string(), usd),
    byChannel: z.record(z.string(), usd),
    cache: z.object({ entries: z.number().int(), hits: z.number().int(), savedUsd: usd }).describe('The response cache'),
  })
  .meta({ id: 'CostReport', description: "A tenant's spend in the current day or month (its time zone), in USD" });
const Budget = z.object({ category: z.enum(CATEGORIES), period: z.enum(PERIODS), window: z.string(), limitUsd: usd.nullable(), spentUsd: usd, reservedUsd: usd }).meta({ id: 'CostBudget' });
const Price = z
  .object({ tenantId: z.string().describe('`*` for every tenant'), kind: z.string(), channel: z.string(), country: z.string(), model: z.string().describe('`*` except for a tenant\'s model token prices'), source: z.string(), usd, updatedAt: at })
  .meta({ id: 'CostPrice' });
const Block = z
  .object({ id: z.string(), type: z.enum(['sender', 'ip']), value: z.string().describe('The sender\'s hash, or the normalised range'), reason: z.string().nullable(), createdBy: z.string(), createdAt: at })
  .meta({ id: 'CostBlock' });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'cost-guard is not enabled for the tenant' } as const;
/** Prices and blocks answered in full before paging: their default page is the largest. */
const wholeListQuery = pageQuery({ defaultLimit: PAGE_LIMIT_MAX });
const priceKey = (p: { tenantId: string; kind: string; channel: string; country: string; model: string; source: string }) => [p.tenantId, p.kind, p.channel, p.country, p.model, p.source].join('\u0000');
const tags = ['cost-guard'];

export function actorOf(req: { principal?: { kind: string; keyId?: string } }): string {
  return req.principal?.kind === 'tenant' && req.principal.keyId ? `key:${req.principal.keyId}` : (req.principal?.kind ?? 'unknown');
}

/** `203.0.113.0/24`, `2001:db8::/32` or one address: checked, normalised. */
export function parseRange(range: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address, bits] = range.trim().split('/');
  const family = isIP(address ?? '');
  if (!family) return null;
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address: address!, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

export function blockListOf(ranges: string[]): BlockList {
  const list = new BlockList();
  for (const r of ranges) {
    const p = parseRange(r);
    if (p) list.addSubnet(p.address, p.prefix, p.family);
  }
  return list;
}

export interface CostsDeps {
  store: CostStore;
  budgets: Budgets;
  tenants(): TenantInfo[];
  enabled(tenantId: string): boolean;
  /** The tenant's settings (its policy: rate limits, action at 100%, cache). */
  settings(tenantId: string): CostGuardSettings | undefined;
  /** A block was added or removed: refresh this instance's block cache now. */
  blocksChanged(tenantId: string): void;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

async function costsOf(deps: CostsDeps, tenant: TenantInfo, period: Period) {
  const { from, to } = await deps.store.window(tenant.timezone, period);
  const rows = await deps.store.breakdown(tenant.id, from, to);
  const counters = await deps.budgets.state(tenant.id);
  const add = (map: Record<string, number>, key: string, v: number) => {
    if (key) map[key] = round((map[key] ?? 0) + v);
  };
  const byProvider: Record<string, number> = {};
  const byModel: Record<string, number> = {};
  const byChannel: Record<string, number> = {};
  const spentBy: Record<string, number> = {};
  let spent = 0;
  for (const r of rows) {
    spent += r.cost;
    add(spentBy, r.category, r.cost);
    add(byProvider, r.provider, r.cost);
    add(byModel, r.model, r.cost);
    add(byChannel, r.channel, r.cost);
  }
  const mine = counters.filter((c) => c.period === period);
  const total = mine.find((c) => c.category === 'total');
  const byCategory = Object.fromEntries(
    [...new Set([...mine.map((c) => c.category as string), ...Object.keys(spentBy)])].map((category) => {
      const c = mine.find((x) => x.category === category);
      const s = category === 'total' ? spent : (spentBy[category] ?? 0);
      return [category, { spent: round(s), budget: c?.limit ?? null, reserved: round(c?.reserved ?? 0), remaining: c?.limit != null ? round(c.limit - s) : null }];
    }),
  );
  const budget = total?.limit ?? null;
  const allowed = mine.every((c) => c.limit === null || c.spent + c.reserved < c.limit);
  return {
    tenant: tenant.id,
    period,
    from,
    to,
    budget,
    spent: round(spent),
    reserved: round(total?.reserved ?? 0),
    remaining: budget === null ? null : round(budget - spent),
    allowed,
    byCategory,
    byProvider,
    byModel,
    byChannel,
    cache: await deps.store.cacheStats(tenant.id),
  };
}

export function costRoutes(deps: CostsDeps) {
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Parameters<typeof param>[0]) => {
      const id = param(req, 'tenant');
      if (!deps.enabled(id)) throw notFound(`cost-guard is not enabled for tenant "${id}"`);
      return deps.tenants().find((t) => t.id === id)!;
    };
    const period = (query: unknown) => {
      const q = periodQuery.safeParse(query);
      if (!q.success) throw badRequest('Query must be ?period=day|month');
      return q.data.period;
    };

    route(
      { method: 'get', path: '/v1/tenants/:tenant/costs', auth: 'tenant', tags, summary: "The tenant's spend and budgets in the current period", query: periodQuery, responses: { 200: { description: 'The report', schema: Costs } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        res.set('cache-control', 'no-store').json(await costsOf(deps, tenantOf(req), period(req.query)));
      },
    );

    route(
      { method: 'get', path: '/v1/costs', auth: 'operator', tags, summary: 'Spend of every tenant that uses cost-guard', query: periodQuery, responses: { 200: { description: 'Every report, and the sum', schema: z.object({ period: z.enum(PERIODS), spent: usd, tenants: z.array(Costs) }) } }, errors: ['PARLEY_BAD_REQUEST'] },
      async (req, res) => {
        const p = period(req.query);
        const tenants = [];
        for (const t of deps.tenants()) tenants.push(await costsOf(deps, t, p));
        res.set('cache-control', 'no-store').json({ period: p, spent: round(tenants.reduce((a, t) => a + t.spent, 0)), tenants });
      },
    );

    route(
      { method: 'get', path: '/v1/tenants/:tenant/budgets', auth: 'tenant', tags, summary: 'Budgets with their current window', responses: { 200: { description: 'The budgets', schema: z.object({ budgets: z.array(Budget) }) } }, errors: [notEnabled] },
      async (req, res) => {
        const t = tenantOf(req);
        res.json({ budgets: (await deps.budgets.state(t.id)).map((c) => ({ category: c.category, period: c.period, window: c.windowKey, limitUsd: c.limit, spentUsd: round(c.spent), reservedUsd: round(c.reserved) })) });
      },
    );

    const Limits = z
      .object({
        rateLimits: z.object({
          api: z.object({ perMinute: z.number().int() }).nullable().describe('Tenant-key requests to its /v1 routes (429 with Retry-After over it)'),
          inbound: z.object({ perMinute: z.number().int() }).nullable().describe('Inbound messages of the whole tenant'),
          user: z.object({ perMinute: z.number().int().nullable(), perDay: z.number().int().nullable() }).nullable().describe('Inbound messages of one sender (one "slow down" reply per window, then silence)'),
        }),
        warnAt: z.number(),
        action: z.enum(['block', 'degrade', 'notify-only']),
        degradeTo: z.string().nullable(),
        paidSends: z.enum(['hold', 'block']),
        spike: z.object({ factor: z.number(), days: z.number().int(), minUsd: z.number(), dailyUsd: z.number().nullable() }),
        cache: z.object({ enabled: z.boolean(), ttlSeconds: z.number().int() }),
      })
      .meta({ id: 'CostLimits', description: "The tenant's limits and policy in force (from its settings; budgets are at /budgets)" });
    route(
      { method: 'get', path: '/v1/tenants/:tenant/limits', auth: 'tenant', tags, summary: 'The rate limits and budget policy in force', responses: { 200: { description: 'The limits', schema: Limits } }, errors: [notEnabled] },
      (req, res) => {
        const s = deps.settings(tenantOf(req).id)!;
        const r = s.rateLimits;
        res.json({
          rateLimits: { api: r.api ?? null, inbound: r.inbound ?? null, user: r.user ? { perMinute: r.user.perMinute ?? null, perDay: r.user.perDay ?? null } : null },
          warnAt: s.warnAt,
          action: s.action,
          degradeTo: s.degradeTo ?? null,
          paidSends: s.paidSends,
          spike: { factor: s.spike.factor, days: s.spike.days, minUsd: s.spike.minUsd, dailyUsd: s.spike.dailyUsd ?? null },
          cache: { enabled: s.cache.enabled, ttlSeconds: s.cache.ttlSeconds },
        });
      },
    );

    // Runtime budgets: the operator only (a tenant must not raise its own), audited.
    route(
      { method: 'put', path: '/v1/tenants/:tenant/budgets', auth: 'operator+tenant', tags, summary: 'Set a budget at runtime (null: no limit), or reset it to the settings', description: 'Audited. A tenant must not raise its own budget: operator key only.', body: budgetBody, bodyExample: { category: 'ai', period: 'day', limitUsd: 5 }, responses: { 200: { description: 'The budgets', schema: z.object({ budgets: z.array(Budget) }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const t = tenantOf(req);
        const body = budgetBody.safeParse(req.body ?? {});
        if (!body.success || (body.data.limitUsd === undefined && !body.data.reset)) {
          throw badRequest('Body must be { "category": "ai"|"messaging"|"total", "period": "day"|"month", "limitUsd": number | null } (null: no limit) or { ..., "reset": true } (back to the settings)');
        }
        const { category, period: p } = body.data as { category: Category; period: Period };
        if (body.data.reset) await deps.store.clearBudget(t.id, category, p, actorOf(req as never));
        else await deps.store.setBudget(t.id, category, p, body.data.limitUsd ?? null, actorOf(req as never));
        res.json({ budgets: (await deps.budgets.state(t.id)).map((c) => ({ category: c.category, period: c.period, window: c.windowKey, limitUsd: c.limit, spentUsd: round(c.spent), reservedUsd: round(c.reserved) })) });
      },
    );

    route(
      { method: 'get', path: '/v1/costs/prices', auth: 'operator', tags, summary: 'Unit prices (configured and runtime)', description: 'By tenant, kind, channel, country, model and source.', query: wholeListQuery, responses: { 200: { description: 'The prices', schema: z.object({ prices: z.array(Price), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST'] },
      async (req, res) => {
        const q = wholeListQuery.safeParse(req.query);
        if (!q.success) throw badRequest('Query must be ?limit=1..500&cursor=<from next>');
        const { items, next } = pageOfList(req, 'prices', await deps.store.prices(), q.data, priceKey);
        res.json({ prices: items, next });
      },
    );

    route(
      { method: 'put', path: '/v1/costs/prices', auth: 'operator', tags, summary: 'Set or remove unit prices at runtime (audited)', description: "Messaging prices for every tenant or one; a tenant's model token prices (`model.tokens.*` with `tenant` and `model`, USD per token) replace ai.prices for that tenant's ledger rows and budget reservations from the next call. `usd: null` removes an operator rule.", body: pricesBody, bodyExample: { prices: [{ kind: 'sms.segments.out', channel: 'twilio-sms', usd: 0.0079 }, { kind: 'model.tokens.input', tenant: 'clinic', model: 'gpt-4o-mini', usd: 0.00000015 }] }, responses: { 200: { description: 'The prices', schema: z.object({ prices: z.array(Price) }) } }, errors: ['PARLEY_BAD_REQUEST'] },
      async (req, res) => {
        const body = pricesBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest(`Body must be { "prices": [{ "kind", "usd" (null removes), "channel"?, "country"?, "tenant"?, "model"? (model.tokens.* with a tenant) }] }: ${body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        for (const p of body.data.prices) if (p.tenant && !deps.tenants().some((t) => t.id === p.tenant)) throw badRequest(`No tenant "${p.tenant}" uses cost-guard`);
        await deps.store.setPrices(body.data.prices.map((p) => ({ tenantId: p.tenant ?? '*', kind: p.kind, channel: p.channel, country: p.country, model: p.model, usd: p.usd })), actorOf(req as never));
        res.json({ prices: await deps.store.prices() });
      },
    );

    route(
      { method: 'get', path: '/v1/tenants/:tenant/blocks', auth: 'tenant', tags, summary: 'Blocked senders (hashed) and IP ranges', description: 'Oldest first.', query: wholeListQuery, responses: { 200: { description: 'The blocks', schema: z.object({ blocks: z.array(Block), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req).id;
        const q = wholeListQuery.safeParse(req.query);
        if (!q.success) throw badRequest('Query must be ?limit=1..500&cursor=<from next>');
        const after = q.data.cursor ? readCursor('blocks', q.data.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, 'blocks', await deps.store.blocksPage(tenantId, q.data.limit + 1, after), q.data.limit, (b) => [b.sortAt, b.id]);
        res.json({ blocks: items.map(({ sortAt: _, ...b }) => b), next });
      },
    );

    route(
      { method: 'post', path: '/v1/tenants/:tenant/blocks', auth: 'tenant', tags, summary: 'Block a sender or an IP range (audited)', body: blockBody, bodyExample: { sender: '+15551234567', reason: 'flooding' }, responses: { 201: { description: 'The block', schema: z.object({ block: Block }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const t = tenantOf(req);
        const body = blockBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest('Body must be { "sender": "+15551234567", "reason"? } or { "ipRange": "203.0.113.0/24", "reason"? }');
        let type: 'sender' | 'ip';
        let value: string;
        if ('sender' in body.data) {
          type = 'sender';
          value = senderKey(body.data.sender); // only the hash is kept
        } else {
          const r = parseRange(body.data.ipRange);
          if (!r) throw badRequest(`"${body.data.ipRange}" is not an IP address or CIDR range`);
          type = 'ip';
          value = `${r.address}/${r.prefix}`;
        }
        const block = await deps.store.addBlock(t.id, type, value, body.data.reason ?? null, actorOf(req as never));
        deps.blocksChanged(t.id);
        res.status(201).json({ block });
      },
    );

    route(
      { method: 'delete', path: '/v1/tenants/:tenant/blocks/:id', auth: 'tenant', tags, summary: 'Remove a block (audited)', responses: { 204: { description: 'Removed' } }, errors: [{ ...notEnabled, description: 'cost-guard is not enabled for the tenant, or no such block' }] },
      async (req, res) => {
        const t = tenantOf(req);
        const id = param(req, 'id');
        if (!UUID.test(id) || !(await deps.store.removeBlock(t.id, id, actorOf(req as never)))) throw notFound(`No block "${id}"`);
        deps.blocksChanged(t.id);
        res.status(204).end();
      },
    );

  };
}

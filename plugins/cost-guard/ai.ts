/**
 * The AI interceptor: serves the response cache, reserves an estimate against the ai and total budgets
 * before every chat call (refusing or degrading at 100% as the tenant's `action` says; a degraded call
 * is reserved at its own model's price, and refused when even that does not fit), and after the
 * call releases the reservation (the tokens are in the ledger by then), stores the answer in the cache
 * and checks the thresholds.
 */
import { createHash } from 'node:crypto';
import type { AiCall, AiCallDecision, AiInterceptor } from 'parley';
import type { BaseMessageLike } from '@langchain/core/messages';
import type { Logger } from 'pino';
import type { Budgets } from './budgets.js';
import type { CostMetrics } from './metrics.js';
import type { CostStore } from './store.js';
import type { CostGuardSettings } from './types.js';

/** Lower case, whitespace collapsed, trailing punctuation dropped: "What time  do you open?" = "what time do you open". */
export function normalise(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim().replace(/[\s?!.]+$/u, '');
}

function messageParts(m: BaseMessageLike): { role: string; text: string } {
  if (typeof m === 'string') return { role: 'user', text: m };
  if (Array.isArray(m)) return { role: String(m[0]), text: typeof m[1] === 'string' ? m[1] : JSON.stringify(m[1]) };
  const o = m as { role?: string; content?: unknown; getType?: () => string };
  const role = o.role ?? (typeof o.getType === 'function' ? o.getType() : 'message');
  return { role, text: typeof o.content === 'string' ? o.content : JSON.stringify(o.content ?? '') };
}

/** The cache key: provider, model, context version and the normalised messages, hashed (no text is kept in the key). */
export function cacheKey(call: AiCall): string {
  const parts = call.messages.map(messageParts).map((p) => `${p.role}:${normalise(p.text)}`);
  return createHash('sha256').update(JSON.stringify([call.provider, call.model, call.contextVersion ?? '', call.maxTokens ?? 0, parts])).digest('hex');
}

/**
 * A model's price for this tenant (USD per million tokens): its own `model.tokens.*` rules (configured
 * or set at run time; a rule for `gpt-4o-mini` also prices `gpt-4o-mini-2024-07-18`), else `ai.prices`.
 */
async function priceFor(store: CostStore, tenantId: string, operation: AiCall['operation'], model: string, fallback: AiCall['price']): Promise<AiCall['price']> {
  const own = await store.modelPrices(tenantId, model);
  const input = operation === 'embeddings' ? own.embedding : own.input;
  const output = own.output;
  if (input === undefined && output === undefined) return fallback;
  return { input: input !== undefined ? input * 1e6 : (fallback?.input ?? 0), output: output !== undefined ? output * 1e6 : (fallback?.output ?? 0) };
}

export function costInterceptor(deps: {
  store: CostStore;
  budgets: Budgets;
  metrics: CostMetrics;
  log: Logger;
  settings(tenantId: string): CostGuardSettings | undefined;
  /** A provider's chat model and its `ai.prices` entry (USD per million tokens), for a degraded call's estimate. */
  chatModelOf(provider: string): { model: string; price?: { input: number; output: number } } | undefined;
  background(work: Promise<unknown>, what: string): void;
}): AiInterceptor {
  const reservations = new WeakMap<AiCall, string>();
  const keys = new WeakMap<AiCall, string>();
  /** An embeddings request: reserved at the model's input price; at 100% refused (never degraded: see AiCallDecision). */
  const embeddings = async (call: AiCall, s: CostGuardSettings): Promise<AiCallDecision> => {
    const price = await priceFor(deps.store, call.tenantId, 'embeddings', call.model, call.price);
    const estimate = price ? (call.estimatedInputTokens * price.input) / 1e6 : 0;
    const r = await deps.budgets.reserve(call.tenantId, 'ai', estimate, s.action === 'notify-only');
    if (r.id) reservations.set(call, r.id);
    if (r.ok) return { action: 'allow' };
    deps.metrics.budgetRefusals.inc({ tenant: call.tenantId, what: 'embeddings', action: s.action === 'degrade' ? 'block' : s.action });
    if (s.action === 'notify-only') return { action: 'allow' };
    const over = r.counters.find((c) => c.limit !== null && c.spent + c.reserved + estimate > c.limit);
    const reason = over ? `the ${over.period === 'day' ? 'daily' : 'monthly'} ${over.category} budget ($${over.limit!.toFixed(2)}) is spent` : 'the budget is spent';
    return { action: 'refuse', reason: s.action === 'degrade' ? `${reason} (embeddings are refused, not degraded: another model's vectors would not match the stored ones, and local has no embeddings)` : reason };
  };
  return {
    name: 'cost-guard',
    async before(call): Promise<AiCallDecision> {
      const s = deps.settings(call.tenantId);
      if (!s) return { action: 'allow' };
      if (call.operation === 'embeddings') return embeddings(call, s);
      if (s.cache.enabled && s.cache.purposes.includes(call.purpose)) {
        const key = cacheKey(call);
        keys.set(call, key);
        const hit = await deps.store.cacheHit(call.tenantId, key);
        deps.metrics.cache.inc({ tenant: call.tenantId, result: hit ? 'hit' : 'miss' });
        if (hit) {
          deps.metrics.cacheSaved.inc({ tenant: call.tenantId }, hit.costUsd);
          return { action: 'answer', text: hit.answer, model: hit.model, reason: 'cost-guard response cache' };
        }
      }
      const price = await priceFor(deps.store, call.tenantId, 'chat', call.model, call.price);
      const estimate = price ? (call.estimatedInputTokens * price.input + (call.maxTokens ?? s.estimatedOutputTokens) * price.output) / 1e6 : 0;
      const r = await deps.budgets.reserve(call.tenantId, 'ai', estimate, s.action === 'notify-only');
      if (r.id) reservations.set(call, r.id);
      if (r.ok) return { action: 'allow' };
      if (s.action === 'notify-only') {
        deps.metrics.budgetRefusals.inc({ tenant: call.tenantId, what: 'model', action: 'notify-only' });
        return { action: 'allow' };
      }
      const over = r.counters.find((c) => c.limit !== null && c.spent + c.reserved + estimate > c.limit)!;
      const reason = over ? `the ${over.period === 'day' ? 'daily' : 'monthly'} ${over.category} budget ($${over.limit!.toFixed(2)}) is spent` : 'the budget is spent';
      deps.metrics.budgetRefusals.inc({ tenant: call.tenantId, what: 'model', action: s.action });
      const to = s.degradeTo ?? 'local';
      if (s.action !== 'degrade') return { action: 'refuse', reason };
      if (to === 'local') return { action: 'degrade', to, reason };
      // The degraded call is reserved like the original (at the other model's price), so a run of
      // degraded calls stops at the budget too; when even it does not fit, the call is refused.
      const target = deps.chatModelOf(to);
      const targetPrice = target ? await priceFor(deps.store, call.tenantId, 'chat', target.model, target.price) : undefined;
      const cheaper = targetPrice ? (call.estimatedInputTokens * targetPrice.input + (call.maxTokens ?? s.estimatedOutputTokens) * targetPrice.output) / 1e6 : 0;
      const d = await deps.budgets.reserve(call.tenantId, 'ai', cheaper, false);
      if (d.id) reservations.set(call, d.id);
      if (d.ok) return { action: 'degrade', to, reason };
      return { action: 'refuse', reason: `${reason}, and the degraded call to "${to}"${target ? ` (${target.model}, about $${cheaper.toFixed(6)})` : ''} does not fit either` };
    },
    async after(call, outcome) {
      const id = reservations.get(call);
      if (id) await deps.store.release([id]);
      const s = deps.settings(call.tenantId);
      if (!s) return;
      const key = keys.get(call);
      if (key && outcome.answeredBy === 'provider' && outcome.result && outcome.decision?.action !== 'degrade') {
        // What a hit saves is what this tenant paid for the answer (its own prices, as the ledger has it), not ai.prices.
        const { usage, model } = outcome.result;
        const own = await deps.store.modelPrices(call.tenantId, model);
        const perToken = (mine: number | undefined, perMillion: number | undefined) => mine ?? (perMillion ?? 0) / 1e6;
        const cost =
          own.input === undefined && own.output === undefined
            ? outcome.costUsd
            : usage.inputTokens * perToken(own.input, call.price?.input) + usage.outputTokens * perToken(own.output, call.price?.output);
        await deps.store.cachePut(call.tenantId, key, outcome.result.text, model, cost, s.cache.ttlSeconds);
      }
      if (outcome.answeredBy === 'provider') deps.background(deps.budgets.check(call.tenantId), 'check budget thresholds');
    },
  };
}

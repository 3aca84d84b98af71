/**
 * The AI model service behind `ctx.ai`: one runtime per configured provider (LangChain models built on
 * first use, a circuit breaker, its alert), each tenant's route (a provider, or `local`), and the call
 * policy every chat and embeddings request goes through (interceptors, timeout, retries, breaker,
 * metrics, usage).
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessageLike } from '@langchain/core/messages';
// The provider SDKs take about a second to import: loaded in `loadProviders()`, only for the provider
// types a configuration names (the demo and every `local` deployment load none).
import type { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import type { ChatAnthropic } from '@langchain/anthropic';
import { ParleyError } from '../errors.js';
import type { AiConfig, AiProviderConfig, ParleyConfig } from '../config.js';
import type { AlertHub } from '../alerts.js';
import type { HealthCheck, UsageLedger, UsageRecord } from '../plugin.js';
import type { TenantDirectory } from '../tenancy.js';
import type { Usage } from '../usage.js';
import { CircuitBreaker, MAX_RETRY_AFTER_MS, backoffMs, classify, type Classified } from './policy.js';
import type { AiCall, AiCallDecision, AiCallOutcome, AiChat, AiChatResult, AiEmbeddings, AiInterceptor, AiInvokeOptions, AiService, AiStatus } from './types.js';

/** Where an unset `baseUrl` points, written out so `OPENAI_BASE_URL` & co. in the environment never redirect a call. */
const DEFAULT_BASE_URL = { openai: 'https://api.openai.com/v1', anthropic: 'https://api.anthropic.com' } as const;
/** Sent to a loopback server configured without a key (the SDKs refuse an empty one). */
const NO_KEY = 'no-key-local-server';
/** The alert key of a provider's open breaker. */
export const aiAlertKey = (provider: string) => `ai.provider.${provider}`;

type Operation = 'chat' | 'embeddings';
type Outcome = 'ok' | 'timeout' | 'rejected' | 'failed' | 'aborted' | 'open' | 'refused' | 'intercepted';

interface ProviderRuntime {
  name: string;
  config: AiProviderConfig;
  /** Why the provider is off (missing credentials): its tenants run `local`. */
  off: string | undefined;
  breaker: CircuitBreaker;
  chatModels: Map<string, BaseChatModel>;
}

interface CallContext {
  tenantId: string;
  plugin: string;
  provider: ProviderRuntime;
  model: string;
  operation: Operation;
  purpose: string;
}

export interface AiDeps {
  config: ParleyConfig;
  usage: Usage;
  tenants: TenantDirectory;
  alerts: AlertHub;
  registry: Registry;
  log: Logger;
}

export class Ai {
  private readonly providers = new Map<string, ProviderRuntime>();
  private readonly routes = new Map<string, { chat: string; embeddings: string }>();
  private readonly unpriced = new Set<string>();
  private readonly interceptors: { plugin: string; interceptor: AiInterceptor }[] = [];
  private readonly ai: AiConfig;
  private readonly requests: Counter<'tenant' | 'provider' | 'outcome'>;
  private readonly duration: Histogram<'tenant' | 'provider' | 'operation'>;
  private readonly retries: Counter<'provider' | 'reason'>;
  private sdk: { ChatOpenAI?: typeof ChatOpenAI; ChatAnthropic?: typeof ChatAnthropic; MeteredEmbeddings?: MeteredEmbeddingsClass } = {};

  constructor(private readonly deps: AiDeps) {
    this.ai = deps.config.ai;
    const { registry } = deps;
    this.requests = new Counter({ name: 'parley_ai_requests_total', help: 'AI provider calls (chat and embeddings) by tenant, provider and outcome (ok, timeout, rejected, failed, aborted, open; refused and intercepted: an interceptor refused the call or answered it)', labelNames: ['tenant', 'provider', 'outcome'] as const, registers: [registry] });
    this.duration = new Histogram({ name: 'parley_ai_request_duration_seconds', help: 'AI provider call duration, retries included, by tenant, provider and operation', labelNames: ['tenant', 'provider', 'operation'] as const, buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60], registers: [registry] });
    this.retries = new Counter({ name: 'parley_ai_retries_total', help: 'AI provider attempts retried, by provider and reason (HTTP status or network)', labelNames: ['provider', 'reason'] as const, registers: [registry] });

    for (const [name, config] of Object.entries(this.ai.providers)) {
      const off = config.apiKey === '' ? 'apiKey is empty (its environment variable is unset or blank)' : undefined;
      const breaker = new CircuitBreaker(this.ai.breaker.failures, this.ai.breaker.openMs, {
        open: (failures) => {
          deps.log.warn({ provider: name, failures, openMs: this.ai.breaker.openMs }, 'AI provider circuit opened: calls fail fast');
          deps.alerts.raise({ key: aiAlertKey(name), severity: 'warning', source: 'ai', summary: `AI provider "${name}" failed ${failures} times in a row: its tenants answer without a model for now`, details: { provider: name, failures, openMs: this.ai.breaker.openMs, tenants: this.tenantsOf(name) } });
        },
        close: () => {
          deps.log.info({ provider: name }, 'AI provider circuit closed');
          deps.alerts.resolve(aiAlertKey(name));
        },
      });
      this.providers.set(name, { name, config, off, breaker, chatModels: new Map() });
    }
    for (const tenant of deps.config.tenants) {
      const route = { chat: tenant.ai?.chat ?? this.ai.default.chat, embeddings: tenant.ai?.embeddings ?? this.ai.default.embeddings };
      this.routes.set(tenant.id, route);
    }
    for (const p of this.providers.values()) {
      if (!p.off) continue;
      const tenants = this.tenantsOf(p.name);
      deps.log[tenants.length ? 'warn' : 'info']({ provider: p.name, reason: p.off, tenants }, `AI provider "${p.name}" is off: ${p.off}; ${tenants.length ? `tenants ${tenants.join(', ')} run local` : 'no tenant uses it'}`);
    }
  }

  /** Imports the SDKs of the configured providers that are on; before any chat or embeddings call. */
  async loadProviders(): Promise<void> {
    const types = new Set([...this.providers.values()].filter((p) => !p.off).map((p) => p.config.type));
    if (types.has('openai') && !this.sdk.ChatOpenAI) {
      const { ChatOpenAI, OpenAIEmbeddings } = await import('@langchain/openai');
      this.sdk.ChatOpenAI = ChatOpenAI;
      this.sdk.MeteredEmbeddings = meteredEmbeddings(OpenAIEmbeddings);
    }
    if (types.has('anthropic') && !this.sdk.ChatAnthropic) this.sdk.ChatAnthropic = (await import('@langchain/anthropic')).ChatAnthropic;
  }

  /** An SDK class `loadProviders()` loaded: a call before it is a kernel bug, not a provider failure. */
  private loaded<K extends keyof Ai['sdk']>(name: K): NonNullable<Ai['sdk'][K]> {
    const sdk = this.sdk[name];
    if (!sdk) throw new ParleyError('PARLEY_INTERNAL', `AI provider SDK ${name} was not loaded (Ai.loadProviders() runs at boot)`);
    return sdk;
  }

  private tenantsOf(provider: string): string[] {
    return [...this.routes].filter(([, r]) => r.chat === provider || r.embeddings === provider).map(([id]) => id);
  }

  /** The provider a tenant's calls go to, or undefined for `local` (configured, or the provider is off). */
  private route(tenantId: string, use: Operation): ProviderRuntime | undefined {
    const route = this.routes.get(tenantId);
    if (!route || !this.deps.tenants.get(tenantId)) throw new ParleyError('PARLEY_TENANT_UNKNOWN', `Unknown tenant "${tenantId}"`, 404);
    const p = this.providers.get(route[use]);
    return p && !p.off ? p : undefined;
  }

  /** The view one plugin gets as `ctx.ai`: usage is recorded under that plugin's name. */
  for(plugin: string): AiService {
    const ledger = this.deps.usage.for(plugin);
    return {
      chat: (tenantId) => {
        const p = this.route(tenantId, 'chat');
        return p ? this.chatFor(p, tenantId, plugin, ledger) : null;
      },
      embeddings: (tenantId, opts = {}) => {
        const p = this.route(tenantId, 'embeddings');
        return p ? this.embeddingsFor(p, tenantId, plugin, ledger, opts) : null;
      },
      status: () => this.status(),
      intercept: (interceptor) => {
        if (!interceptor?.name || (!interceptor.before && !interceptor.after)) throw new ParleyError('PARLEY_PLUGIN_INVALID', `Plugin "${plugin}": an AI interceptor needs a name and before() or after()`, 500, { plugin });
        this.interceptors.push({ plugin, interceptor });
      },
    };
  }

  status(): AiStatus {
    const describe = (name: string) => {
      if (name === 'local') return 'local';
      const p = this.providers.get(name)!;
      return p.off ? `local (${name} is off: ${p.off})` : name;
    };
    return {
      tenants: Object.fromEntries([...this.routes].map(([id, r]) => [id, { chat: describe(r.chat), embeddings: describe(r.embeddings) }])),
      providers: Object.fromEntries(
        [...this.providers.values()].map((p) => [
          p.name,
          {
            type: p.config.type,
            ...(p.config.chatModel ? { chatModel: p.config.chatModel } : {}),
            ...(p.config.type === 'openai' && p.config.embeddingModel ? { embeddingModel: p.config.embeddingModel } : {}),
            breaker: p.breaker.state,
            consecutiveFailures: p.breaker.consecutiveFailures,
            ...(p.off ? { off: p.off } : {}),
          },
        ]),
      ),
    };
  }

  /** `/readyz` component `ai`: never critical (tenants fall back to `local`), facts only. */
  health(): HealthCheck {
    return {
      name: 'ai',
      critical: false,
      check: async () => {
        const status = this.status();
        const open = Object.entries(status.providers).filter(([, p]) => p.breaker !== 'closed').map(([n]) => n);
        const off = Object.entries(status.providers).filter(([, p]) => p.off).map(([n]) => n);
        const notes = [...(open.length ? [`circuit open: ${open.join(', ')}`] : []), ...(off.length ? [`off (missing credentials): ${off.join(', ')}`] : [])];
        return { ok: true, detail: notes.length ? notes.join('; ') : 'all providers available', info: { ...status } };
      },
    };
  }

  // ---- chat -------------------------------------------------------------------------------------

  private chatModel(p: ProviderRuntime, maxTokens: number | undefined): BaseChatModel {
    const key = String(maxTokens ?? 'default');
    const cached = p.chatModels.get(key);
    if (cached) return cached;
    const c = p.config;
    const apiKey = c.apiKey || NO_KEY;
    const model =
      c.type === 'openai'
        ? new (this.loaded('ChatOpenAI'))({ model: c.chatModel!, apiKey, configuration: { baseURL: c.baseUrl ?? DEFAULT_BASE_URL.openai }, timeout: c.timeoutMs, maxRetries: 0, ...(maxTokens ? { maxTokens } : {}) })
        : new (this.loaded('ChatAnthropic'))({ model: c.chatModel!, apiKey, anthropicApiUrl: c.baseUrl ?? DEFAULT_BASE_URL.anthropic, clientOptions: { timeout: c.timeoutMs }, maxRetries: 0, ...(maxTokens ? { maxTokens } : {}) });
    if (p.chatModels.size > 32) p.chatModels.clear();
    p.chatModels.set(key, model);
    return model;
  }

  private chatFor(p: ProviderRuntime, tenantId: string, plugin: string, ledger: UsageLedger): AiChat {
    return {
      provider: p.name,
      model: p.config.chatModel!,
      invoke: (messages, opts) => this.intercepted(p, tenantId, plugin, ledger, messages, opts),
    };
  }

  /**
   * A chat call through the interceptors: each `before` in order until one decides other than `allow`
   * (refuse, degrade, answer), the call itself (on the degraded provider when told), then every asked
   * interceptor's `after` once the usage is recorded. Without interceptors this is the plain call.
   */
  private async intercepted(p: ProviderRuntime, tenantId: string, plugin: string, ledger: UsageLedger, messages: readonly BaseMessageLike[], opts: AiInvokeOptions): Promise<AiChatResult> {
    if (!this.interceptors.length) return (await this.invokeChat(p, tenantId, plugin, ledger, messages, opts)).result;
    const model = p.config.chatModel!;
    const price = this.ai.prices[model];
    const call: AiCall = {
      tenantId, plugin, operation: 'chat', provider: p.name, model, purpose: opts.purpose, messages,
      ...(opts.ref ? { ref: opts.ref } : {}),
      ...(opts.contextVersion ? { contextVersion: opts.contextVersion } : {}),
      ...(opts.maxTokens ? { maxTokens: opts.maxTokens } : {}),
      ...(price ? { price } : {}),
      estimatedInputTokens: estimateTokens(messages),
    };
    const { decision, after, refused } = await this.intercept(call, opts.purpose);
    let target = p;
    if (decision?.action === 'refuse') {
      const error = refused(decision.reason, { reason: decision.reason });
      await after({ answeredBy: 'refused', error, costUsd: 0 });
      throw error;
    }
    if (decision?.action === 'answer') {
      const result: AiChatResult = { text: decision.text, usage: { inputTokens: 0, outputTokens: 0 }, latencyMs: 0, model: decision.model ?? model, provider: p.name, attempts: 0 };
      this.requests.inc({ tenant: tenantId, provider: p.name, outcome: 'intercepted' });
      await after({ answeredBy: 'interceptor', result, costUsd: 0 });
      return result;
    }
    if (decision?.action === 'degrade') {
      const to = decision.to === 'local' ? undefined : this.providers.get(decision.to);
      if (!to || to.off || !to.config.chatModel) {
        const error = refused(`${decision.reason} (degraded to local)`, { reason: decision.reason, degradedTo: 'local' });
        await after({ answeredBy: 'refused', error, costUsd: 0 });
        throw error;
      }
      this.deps.log.info({ tenant: tenantId, plugin, from: p.name, to: to.name, by: decision.by }, `AI call degraded: ${decision.reason}`);
      target = to;
    }
    try {
      const { result, costUsd } = await this.invokeChat(target, tenantId, plugin, ledger, messages, opts);
      await after({ answeredBy: 'provider', result, costUsd });
      return result;
    } catch (error) {
      await after({ answeredBy: 'failed', error: error as Error, costUsd: 0 });
      throw error;
    }
  }

  /**
   * Asks each interceptor's `before` in order until one decides other than `allow`; returns that
   * decision, `after` (every asked interceptor, errors logged) and `refused` (the coded error, counted
   * and logged). A `before` that throws refuses the call (fail closed).
   */
  private async intercept(call: AiCall, purpose: string) {
    const { tenantId, plugin, provider } = call;
    const asked: AiInterceptor[] = [];
    let decision: (AiCallDecision & { by: string }) | undefined;
    for (const { interceptor } of this.interceptors) {
      asked.push(interceptor);
      if (!interceptor.before) continue;
      let d: AiCallDecision;
      try {
        d = await interceptor.before(call);
      } catch (error) {
        this.deps.log.error({ err: error, tenant: tenantId, interceptor: interceptor.name }, 'AI interceptor failed before the call: the call is refused');
        d = { action: 'refuse', reason: `interceptor "${interceptor.name}" failed` };
      }
      if (d.action !== 'allow') {
        decision = { ...d, by: interceptor.name };
        break;
      }
    }
    const after = async (outcome: AiCallOutcome) => {
      for (const i of asked) {
        if (!i.after) continue;
        try {
          await i.after(call, { ...outcome, ...(decision ? { decision } : {}) });
        } catch (error) {
          this.deps.log.error({ err: error, tenant: tenantId, interceptor: i.name }, 'AI interceptor failed after the call');
        }
      }
    };
    const refused = (reason: string, details: Record<string, unknown>) => {
      this.requests.inc({ tenant: tenantId, provider, outcome: 'refused' });
      this.deps.log.info({ tenant: tenantId, plugin, provider, operation: call.operation, purpose, by: decision?.by, ...details }, `AI call refused: ${reason}`);
      return new ParleyError('PARLEY_AI_REFUSED', `AI ${call.operation === 'embeddings' ? 'embeddings ' : ''}call refused by "${decision?.by}": ${reason}`, 503, { details: { provider, operation: call.operation, by: decision?.by, ...details } });
    };
    return { decision, after, refused };
  }

  private async invokeChat(p: ProviderRuntime, tenantId: string, plugin: string, ledger: UsageLedger, messages: readonly BaseMessageLike[], opts: AiInvokeOptions): Promise<{ result: AiChatResult; costUsd: number }> {
    const model = p.config.chatModel!;
    const chat = this.chatModel(p, opts.maxTokens);
    const ctx: CallContext = { tenantId, plugin, provider: p, model, operation: 'chat', purpose: opts.purpose };
    const { value: message, attempts, latencyMs } = await this.run(ctx, opts.signal, (signal) => chat.invoke([...messages], { signal }));
    const usage = { inputTokens: message.usage_metadata?.input_tokens ?? 0, outputTokens: message.usage_metadata?.output_tokens ?? 0 };
    const meta = message.response_metadata as { model_name?: unknown; model?: unknown } | undefined;
    const answered = typeof meta?.model_name === 'string' ? meta.model_name : typeof meta?.model === 'string' ? meta.model : model;
    const price = this.price(answered, model);
    const ref = opts.ref ? `ai:${opts.purpose}:${opts.ref}` : undefined;
    const attributes = { model: answered, provider: p.name, purpose: opts.purpose };
    const inputCost = price ? (usage.inputTokens * price.input) / 1e6 : 0;
    const outputCost = price ? (usage.outputTokens * price.output) / 1e6 : 0;
    await this.record(ledger, ctx, [
      { tenantId, kind: 'model.tokens.input', quantity: usage.inputTokens, unit: 'token', ...(price ? { costUsd: inputCost } : {}), ...(ref ? { ref } : {}), attributes },
      { tenantId, kind: 'model.tokens.output', quantity: usage.outputTokens, unit: 'token', ...(price ? { costUsd: outputCost } : {}), ...(ref ? { ref } : {}), attributes },
    ]);
    return { result: { text: message.text, usage, latencyMs, model: answered, provider: p.name, attempts }, costUsd: inputCost + outputCost };
  }

  // ---- embeddings -------------------------------------------------------------------------------

  private embeddingsFor(p: ProviderRuntime, tenantId: string, plugin: string, ledger: UsageLedger, opts: { purpose?: string; ref?: string }): AiEmbeddings {
    const c = p.config;
    if (c.type !== 'openai' || !c.embeddingModel) throw new ParleyError('PARLEY_INTERNAL', `AI provider "${p.name}" offers no embeddings`);
    const model = c.embeddingModel;
    const purpose = opts.purpose ?? 'embeddings';
    let n = 0;
    const ctx: CallContext = { tenantId, plugin, provider: p, model, operation: 'embeddings', purpose };
    return new (this.loaded('MeteredEmbeddings'))(
      { model, apiKey: c.apiKey || NO_KEY, configuration: { baseURL: c.baseUrl ?? DEFAULT_BASE_URL.openai }, timeout: c.timeoutMs, maxRetries: 0 },
      p.name,
      async (input, request) => {
        const seq = ++n;
        const metered = async () => {
          const { value } = await this.run(ctx, undefined, () => request());
          const tokens = value.usage?.prompt_tokens ?? value.usage?.total_tokens ?? 0;
          const price = this.price(value.model ?? model, model);
          const costUsd = price ? (tokens * price.input) / 1e6 : 0;
          await this.record(ledger, ctx, [
            { tenantId, kind: 'model.tokens.embedding', quantity: tokens, unit: 'token', ...(price ? { costUsd } : {}), ...(opts.ref ? { ref: `ai:${purpose}:${opts.ref}#${seq}` } : {}), attributes: { model, provider: p.name, purpose } },
          ]);
          return { value, costUsd };
        };
        if (!this.interceptors.length) return (await metered()).value;
        // Each request (one batch of texts) goes through the interceptors like a chat call.
        const texts = (Array.isArray(input) ? input : [input]).map((t) => (typeof t === 'string' ? t : JSON.stringify(t)));
        const price = this.ai.prices[model];
        const call: AiCall = {
          tenantId, plugin, operation: 'embeddings', provider: p.name, model, purpose, messages: [], texts,
          ...(opts.ref ? { ref: `${opts.ref}#${seq}` } : {}),
          ...(price ? { price } : {}),
          estimatedInputTokens: estimateTokens(texts),
        };
        const { decision, after, refused } = await this.intercept(call, purpose);
        if (decision && decision.action !== 'allow') {
          // Embeddings are never degraded or answered: vectors of another model do not match the ones
          // already stored, and `local` has no embeddings. Any such decision refuses the request.
          const reason =
            decision.action === 'degrade'
              ? `${decision.reason} (embeddings are not degraded: ${decision.to === 'local' ? 'local has no embeddings' : `vectors of "${decision.to}" would not match the stored ones`})`
              : decision.action === 'answer'
                ? `${decision.reason} (embeddings cannot be answered by an interceptor)`
                : decision.reason;
          const error = refused(reason, { reason: decision.reason, ...(decision.action === 'degrade' ? { degradedTo: decision.to } : {}) });
          await after({ answeredBy: 'refused', error, costUsd: 0 });
          throw error;
        }
        try {
          const { value, costUsd } = await metered();
          await after({ answeredBy: 'provider', costUsd });
          return value;
        } catch (error) {
          await after({ answeredBy: 'failed', error: error as Error, costUsd: 0 });
          throw error;
        }
      },
    );
  }

  // ---- shared -----------------------------------------------------------------------------------

  /** The price of a model (the name the provider answered with, else the configured one); warns once when there is none. */
  private price(answered: string, configured: string): { input: number; output: number } | undefined {
    const price = this.ai.prices[answered] ?? this.ai.prices[configured];
    if (!price && !this.unpriced.has(configured)) {
      this.unpriced.add(configured);
      this.deps.log.warn({ model: configured }, `no price for AI model "${configured}" in ai.prices: its tokens are recorded without a cost (counted as 0)`);
    }
    return price;
  }

  /** Usage is recorded before the answer is returned, but a ledger failure never fails the call. */
  private async record(ledger: UsageLedger, ctx: CallContext, records: UsageRecord[]): Promise<void> {
    await Promise.all(records.map((r) => ledger.record(r))).catch((error: unknown) =>
      this.deps.log.error({ err: error, tenant: ctx.tenantId, provider: ctx.provider.name, purpose: ctx.purpose }, 'recording AI usage failed'),
    );
  }

  /**
   * One call with the provider's policy: fail fast while its breaker is open; each attempt bounded by
   * `timeoutMs`; 429/5xx/network retried up to `maxRetries` with backoff or Retry-After; the outcome
   * counted, timed and fed to the breaker. Nothing of the prompt is logged.
   */
  private async run<T>(ctx: CallContext, signal: AbortSignal | undefined, attempt: (signal: AbortSignal) => Promise<T>): Promise<{ value: T; attempts: number; latencyMs: number }> {
    const { provider: p, tenantId } = ctx;
    const cfg = p.config;
    const started = performance.now();
    const finish = (outcome: Outcome) => {
      const seconds = (performance.now() - started) / 1000;
      this.requests.inc({ tenant: tenantId, provider: p.name, outcome });
      if (outcome !== 'open') this.duration.observe({ tenant: tenantId, provider: p.name, operation: ctx.operation }, seconds);
      return Math.round(seconds * 1000);
    };
    const gate = p.breaker.acquire();
    if (gate === 'refuse') {
      finish('open');
      throw new ParleyError('PARLEY_AI_UNAVAILABLE', `AI provider "${p.name}" is unavailable: its circuit is open after repeated failures (answer without it)`, 503, {
        details: { provider: p.name, retryInMs: Math.max(0, p.breaker.retryAt() - Date.now()) },
      });
    }
    let attempts = 0;
    try {
      for (;;) {
        attempts++;
        const deadline = new AbortController();
        let timedOut = false;
        // The SDK's own `timeout` (same value) normally fires first; this is the backstop for a
        // request that does not honour it, so an attempt can never outlive its limit.
        const timer = setTimeout(() => {
          timedOut = true;
          deadline.abort(new Error(`timed out after ${cfg.timeoutMs} ms`));
        }, cfg.timeoutMs + 250);
        const attemptSignal = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
        try {
          const value = await raceAbort(attempt(attemptSignal), attemptSignal);
          clearTimeout(timer);
          p.breaker.success();
          return { value, attempts, latencyMs: finish('ok') };
        } catch (error) {
          clearTimeout(timer);
          const c = classify(error, { timedOut, aborted: signal?.aborted === true });
          if (c.kind === 'retryable' && attempts <= cfg.maxRetries) {
            const wait = c.retryAfterMs ?? backoffMs(attempts, cfg.backoffMs);
            if (wait <= MAX_RETRY_AFTER_MS) {
              this.retries.inc({ provider: p.name, reason: c.status ? String(c.status) : 'network' });
              this.deps.log.debug({ tenant: tenantId, provider: p.name, operation: ctx.operation, purpose: ctx.purpose, attempt: attempts, status: c.status, waitMs: wait }, 'AI call failed; retrying');
              if (await sleep(wait, signal)) continue;
              throw this.fail(ctx, { kind: 'aborted' }, attempts, finish);
            }
          }
          this.deps.log.debug({ tenant: tenantId, provider: p.name, providerMessage: error instanceof Error ? error.message : String(error) }, 'AI provider error (debug only: may quote the request)');
          throw this.fail(ctx, c, attempts, finish);
        }
      }
    } finally {
      // Only the trial's own end may free the trial slot: a call admitted before the breaker opened
      // that ends now says nothing about whether the trial is still running.
      if (gate === 'trial') p.breaker.release();
    }
  }

  /** Feeds the breaker, counts, logs (codes only) and builds the coded error. */
  private fail(ctx: CallContext, c: Classified, attempts: number, finish: (outcome: Outcome) => number): ParleyError {
    const p = ctx.provider;
    const auth = c.kind === 'rejected' && (c.status === 401 || c.status === 403);
    if (c.kind === 'timeout' || c.kind === 'retryable' || c.kind === 'unknown' || auth) p.breaker.failure();
    else if (c.kind === 'rejected') p.breaker.success(); // it answered: the provider is up, the request was wrong
    const outcome: Outcome = c.kind === 'timeout' ? 'timeout' : c.kind === 'rejected' ? 'rejected' : c.kind === 'aborted' ? 'aborted' : 'failed';
    const latencyMs = finish(outcome);
    const details = { provider: p.name, model: ctx.model, attempts, ...(c.status !== undefined ? { status: c.status } : {}), ...(c.providerCode ? { providerCode: c.providerCode } : {}) };
    const what = c.status !== undefined ? `HTTP ${c.status}${c.providerCode ? ` ${c.providerCode}` : ''}` : c.kind === 'retryable' ? 'network error' : (c.providerCode ?? 'unexpected error');
    let error: ParleyError;
    if (c.kind === 'timeout') error = new ParleyError('PARLEY_AI_TIMEOUT', `AI provider "${p.name}" did not answer within ${p.config.timeoutMs} ms`, 504, { details });
    else if (c.kind === 'rejected') error = new ParleyError('PARLEY_AI_REJECTED', `AI provider "${p.name}" refused the ${ctx.operation} call (${what})`, 502, { details });
    else if (c.kind === 'aborted') error = new ParleyError('PARLEY_AI_FAILED', `AI ${ctx.operation} call to "${p.name}" was aborted by the caller`, 499, { details });
    else error = new ParleyError('PARLEY_AI_FAILED', `AI provider "${p.name}" failed after ${attempts} attempt(s) (${what})`, 502, { details });
    if (c.kind !== 'aborted') {
      this.deps.log.warn({ tenant: ctx.tenantId, plugin: ctx.plugin, operation: ctx.operation, purpose: ctx.purpose, code: error.code, latencyMs, ...details }, `AI call failed: ${error.message}`);
    }
    return error;
  }
}

type Around = <R extends { usage?: { prompt_tokens?: number; total_tokens?: number }; model?: string }>(input: unknown, call: () => Promise<R>) => Promise<R>;
type MeteredEmbeddingsClass = new (fields: ConstructorParameters<typeof OpenAIEmbeddings>[0], provider: string, around: Around) => OpenAIEmbeddings & AiEmbeddings;

/** OpenAIEmbeddings (once its SDK is loaded) whose every request (one per batch) goes through the service's policy and meter. */
function meteredEmbeddings(Base: typeof OpenAIEmbeddings): MeteredEmbeddingsClass {
  return class MeteredOpenAIEmbeddings extends Base implements AiEmbeddings {
    constructor(
      fields: ConstructorParameters<typeof OpenAIEmbeddings>[0],
      readonly provider: string,
      private readonly around: Around,
    ) {
      super(fields);
    }

    protected override embeddingWithRetry(request: { model: string; input: unknown }) {
      return this.around(request.input, () => super.embeddingWithRetry(request as never));
    }
  };
}

/** Characters / 4 of every message's (or input text's) text: a rough token count for estimates, never sent anywhere. */
function estimateTokens(messages: readonly BaseMessageLike[]): number {
  let chars = 0;
  for (const m of messages) {
    const content = typeof m === 'string' ? m : Array.isArray(m) ? m[1] : (m as { content?: unknown }).content;
    chars += typeof content === 'string' ? content.length : JSON.stringify(content ?? '').length;
  }
  return Math.max(1, Math.ceil(chars / 4));
}

/** Rejects as soon as `signal` aborts, even when the work ignores the signal. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Waits `ms`; false when `signal` aborted first. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

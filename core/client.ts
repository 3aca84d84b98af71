/**
 * `parley/client`: a small typed client of the admin API and the http channel. Its types are inferred
 * from the same zod schemas the routes validate with and `/v1/openapi.json` is built from
 * (core/http/api-schemas.ts), so client, server and document cannot disagree on a field. It needs
 * `fetch` (Node 20, browsers) and zod (Parley's peer dependency); of the kernel it imports only those
 * schemas (and the paging schemas they use). Every list answers with `next` (the path of the next
 * page, or null): `request('GET', next)` fetches it.
 *
 * @example
 * import { ParleyClient } from 'parley/client';
 * const parley = new ParleyClient({ baseUrl: 'http://127.0.0.1:3000', key: process.env.PARLEY_API_KEY });
 * const { body } = await parley.sendMessage('acme', { from: 'alice', text: 'hours' });
 * for (const reply of body.replies) console.log(reply.text);
 * const { outbox } = await parley.outbox('acme', { status: 'dead', limit: 10 });
 */
import type { z } from 'zod';
import { HandoffBody, KeyBody, ListQuery, MessageBody, MessageResult, PageQuery, Responses } from './http/api-schemas.js';

export type MessageInput = z.input<typeof MessageBody>;
export type MessageAnswer = z.output<typeof MessageResult>;
export type ListOptions = Partial<z.input<typeof ListQuery>>;
export type PageOptions = Partial<z.input<typeof PageQuery>>;
export type UsageOptions = { from?: string | Date; to?: string | Date; groupBy?: 'kind' | 'day'; kind?: string };
type R = typeof Responses;
export type ApiResponse<K extends keyof R> = z.output<R[K]>;

/** A non-2xx answer: `status`, and the catalogue's `code` (core/errors.ts). */
export class ParleyApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    /** The server's `error.message`. */
    readonly reason: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(`${status} ${code}: ${reason}`);
    this.name = 'ParleyApiError';
  }
}

export interface ParleyClientOptions {
  /** `http://127.0.0.1:3000`: the gateway, without `/v1`. */
  baseUrl: string;
  /** A tenant key or the operator key, sent as `Authorization: Bearer <key>`. */
  key?: string | undefined;
  fetch?: typeof fetch;
  /** Called when a route answers with `Deprecation` (with its `Sunset` and successor `Link`). */
  onDeprecation?: (info: { method: string; path: string; deprecation: string; sunset: string | null; link: string | null }) => void;
  /** Request timeout (default 30 s). */
  timeoutMs?: number;
}

const seg = (value: string) => encodeURIComponent(value);

export class ParleyClient {
  private readonly baseUrl: string;
  private readonly fetcher: typeof fetch;

  constructor(private readonly options: ParleyClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetcher = options.fetch ?? fetch;
  }

  /**
   * Any route (a plugin's, say): JSON in and out. Throws `ParleyApiError` for a non-2xx answer, or the
   * network error. The other methods are this with types.
   */
  async request<T = unknown>(method: string, path: string, init: { query?: Record<string, unknown> | undefined; body?: unknown } = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, v instanceof Date ? v.toISOString() : String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.key) headers.authorization = `Bearer ${this.options.key}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.fetcher(url, {
      method,
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
    });
    const deprecation = res.headers.get('deprecation');
    if (deprecation) this.options.onDeprecation?.({ method, path, deprecation, sunset: res.headers.get('sunset'), link: res.headers.get('link') });
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    if (!res.ok) {
      const error = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
      throw new ParleyApiError(res.status, error?.code ?? 'PARLEY_HTTP_ERROR', error?.message ?? (text.slice(0, 200) || res.statusText), error?.details);
    }
    return { status: res.status, body: body as T, headers: res.headers };
  }

  private async get<K extends keyof R>(_: K, path: string, query?: Record<string, unknown>): Promise<ApiResponse<K>> {
    return (await this.request<ApiResponse<K>>('GET', path, { query })).body;
  }

  // ---- the http channel ------------------------------------------------------------------------

  /** Runs the pipeline on a message: `status` 200 with the replies, or 202 when they will come later. */
  async sendMessage(tenant: string, message: MessageInput): Promise<{ status: 200 | 202; body: MessageAnswer }> {
    const r = await this.request<MessageAnswer>('POST', `/v1/tenants/${seg(tenant)}/messages`, { body: message });
    return { status: r.status === 202 ? 202 : 200, body: r.body };
  }

  // ---- the admin API ---------------------------------------------------------------------------

  tenants() {
    return this.get('tenants', '/v1/tenants');
  }
  tenant(tenant: string) {
    return this.get('tenant', `/v1/tenants/${seg(tenant)}`);
  }
  conversations(tenant: string, query: PageOptions = {}) {
    return this.get('conversations', `/v1/tenants/${seg(tenant)}/conversations`, query);
  }
  conversationMessages(tenant: string, conversationId: string, query: PageOptions = {}) {
    return this.get('conversationMessages', `/v1/tenants/${seg(tenant)}/conversations/${seg(conversationId)}/messages`, query);
  }
  handoff(tenant: string, conversationId: string) {
    return this.get('handoff', `/v1/tenants/${seg(tenant)}/conversations/${seg(conversationId)}/handoff`);
  }
  async setHandoff(tenant: string, conversationId: string, body: z.input<typeof HandoffBody>): Promise<ApiResponse<'handoff'>> {
    return (await this.request<ApiResponse<'handoff'>>('PUT', `/v1/tenants/${seg(tenant)}/conversations/${seg(conversationId)}/handoff`, { body })).body;
  }
  message(tenant: string, messageId: string) {
    return this.get('message', `/v1/tenants/${seg(tenant)}/messages/${seg(messageId)}`);
  }
  outbox(tenant: string, query: ListOptions = {}) {
    return this.get('outbox', `/v1/tenants/${seg(tenant)}/outbox`, query);
  }
  outboxItem(tenant: string, id: string) {
    return this.get('outboxItem', `/v1/tenants/${seg(tenant)}/outbox/${seg(id)}`);
  }
  async retryOutboxItem(tenant: string, id: string): Promise<ApiResponse<'retried'>> {
    return (await this.request<ApiResponse<'retried'>>('POST', `/v1/tenants/${seg(tenant)}/outbox/${seg(id)}/retry`)).body;
  }
  deadLetters(tenant: string, query: PageOptions = {}) {
    return this.get('deadLetters', `/v1/tenants/${seg(tenant)}/dead-letters`, query);
  }
  consent(tenant: string, address: string) {
    return this.get('consent', `/v1/tenants/${seg(tenant)}/consent/${seg(address)}`);
  }
  usage(tenant: string, query: UsageOptions = {}) {
    return this.get('usage', `/v1/tenants/${seg(tenant)}/usage`, query);
  }
  keys(tenant: string) {
    return this.get('keys', `/v1/tenants/${seg(tenant)}/keys`);
  }
  /** Operator key only; the secret is in the answer once. */
  async createKey(tenant: string, body: z.input<typeof KeyBody> = {}): Promise<ApiResponse<'createdKey'>> {
    return (await this.request<ApiResponse<'createdKey'>>('POST', `/v1/tenants/${seg(tenant)}/keys`, { body })).body;
  }
  /** Operator key only. */
  async revokeKey(tenant: string, keyId: string): Promise<void> {
    await this.request('DELETE', `/v1/tenants/${seg(tenant)}/keys/${seg(keyId)}`);
  }
  parked(tenant?: string, query: PageOptions = {}) {
    return this.get('parked', tenant ? `/v1/tenants/${seg(tenant)}/parked` : '/v1/parked', query);
  }
  plugins() {
    return this.get('plugins', '/v1/plugins');
  }
  alerts() {
    return this.get('alerts', '/v1/alerts');
  }
  /** The OpenAPI document of this gateway. */
  async openApi(): Promise<Record<string, unknown>> {
    return (await this.request<Record<string, unknown>>('GET', '/v1/openapi.json')).body;
  }
}

export { MessageBody, MessageResult, Responses } from './http/api-schemas.js';
export { ErrorBody } from './http/contract.js';

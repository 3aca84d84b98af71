/**
 * Route contracts: what a route of the HTTP API promises (method, path, auth, parameters, body,
 * responses, error codes, deprecation), declared next to the route with the zod schemas its handler
 * validates with. The kernel registers the route from its contract (`helpers.route`), keeps every
 * contract in the `ApiCatalogue` and builds `/v1/openapi.json` from it (`openapi.ts`).
 *
 * The catalogue also records every route registered at all (described or not, by any plugin), so
 * test/openapi.test.ts can fail when the document and the routes drift apart.
 */
import type { Request, RequestHandler, Router } from 'express';
import { z } from 'zod';
import type { KernelErrorCode } from '../errors.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';
export const HTTP_METHODS: readonly HttpMethod[] = ['get', 'post', 'put', 'patch', 'delete'];

/**
 * Who may call a route:
 * - `tenant`: the tenant's key for the tenant in the path (`tenantParam`, default `tenant`), or the operator key; API guards run
 * - `operator`: the operator key only
 * - `operator+tenant`: the operator key, on a tenant that exists (tenant keys get 403)
 * - `key`: any valid key (the handler decides what it shows)
 * - `none`: no key (a webhook checks its own signature; an operations route)
 */
export type RouteAuth = 'tenant' | 'operator' | 'operator+tenant' | 'key' | 'none';

/** One documented response of a route. `schema` describes a JSON body unless `contentType` says otherwise. */
export interface RouteResponse {
  description: string;
  schema?: z.ZodType;
  /** Default `application/json` when `schema` is set; a body without schema (a PNG, a dump) names its type here. */
  contentType?: string;
  example?: unknown;
  /** Response headers worth documenting: name -> description. */
  headers?: Record<string, string>;
}

/** The kernel's error codes an HTTP route answers with, and their status. */
export const HTTP_ERROR_STATUS = {
  PARLEY_BAD_REQUEST: 400,
  PARLEY_UNAUTHENTICATED: 401,
  PARLEY_FORBIDDEN: 403,
  PARLEY_CSRF: 403,
  PARLEY_NOT_FOUND: 404,
  PARLEY_PAYLOAD_TOO_LARGE: 413,
  PARLEY_RATE_LIMITED: 429,
  PARLEY_INTERNAL: 500,
  PARLEY_INBOUND_FILTER_FAILED: 500,
  PARLEY_NOT_IMPLEMENTED: 501,
  PARLEY_SEND_FAILED: 502,
  PARLEY_SHUTTING_DOWN: 503,
  PARLEY_STORAGE_UNAVAILABLE: 503,
} as const satisfies Partial<Record<KernelErrorCode, number>>;

export type HttpKernelErrorCode = keyof typeof HTTP_ERROR_STATUS;

/** An error a route answers with: a kernel code (its status is known), or a plugin's code with its status. */
export type RouteErrorSpec = HttpKernelErrorCode | { code: string; status: number; description?: string };

/**
 * A deprecated route keeps working until `sunset`; meanwhile every response carries
 * `Deprecation: @<since, unix seconds>` (RFC 9745), `Sunset: <HTTP date>` (RFC 8594) and, with a
 * successor, `Link: <successor>; rel="successor-version"`.
 */
export interface RouteDeprecation {
  /** When it was deprecated (ISO date). */
  since: string;
  /** When it may stop answering (ISO date): at least six months after `since` for a `/v1` route. */
  sunset: string;
  /** The route to use instead, as a path (`/v1/tenants/{tenant}/moderation/queue/{id}/claim`) or URL. */
  successor?: string;
}

/**
 * A route's contract: registered with `helpers.route(contract, handler)` and published in
 * `/v1/openapi.json`. The schemas are the ones the handler validates with (one source of truth).
 * @example
 * route({
 *   method: 'get', path: '/v1/tenants/:tenant/widgets/:id', auth: 'tenant',
 *   summary: 'One widget', tags: ['widgets'],
 *   responses: { 200: { description: 'The widget', schema: z.object({ widget: Widget }) } },
 *   errors: ['PARLEY_NOT_FOUND'],
 * }, async (req, res) => { ... });
 */
export interface RouteContract {
  method: HttpMethod;
  /** Express path syntax (`/v1/tenants/:tenant/messages`), as registered. */
  path: string;
  auth: RouteAuth;
  /** The path parameter naming the tenant, for `tenant` and `operator+tenant` (default `tenant`). */
  tenantParam?: string;
  summary: string;
  description?: string;
  /** Groups in the reference (default: the owning plugin's name, `admin` for the kernel). */
  tags?: string[];
  /** Unique in the document (default: derived from method and path). */
  operationId?: string;
  /** Path parameters; a parameter of the path not in here is documented as a string. */
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Default `application/json`. */
  bodyContentType?: string;
  bodyExample?: unknown;
  /** By status. */
  responses: Record<number, RouteResponse>;
  /** Error codes beyond those the auth implies (401/403/404/429 come with `tenant`). */
  errors?: readonly RouteErrorSpec[];
  deprecated?: RouteDeprecation;
}

/** A contract and who registered it (`parley` for the kernel, else the plugin's name). */
export interface DescribedRoute {
  owner: string;
  contract: RouteContract;
}

/** A route as registered with express: method and full path (express syntax). */
export interface RegisteredRoute {
  owner: string;
  method: string;
  path: string;
}

/** Every route the HTTP app registered, and the contracts of those that declared one. */
export class ApiCatalogue {
  readonly described: DescribedRoute[] = [];
  readonly registered: RegisteredRoute[] = [];
  /** Answers that did not match their contract (only with `PARLEY_CHECK_RESPONSES=1`). */
  readonly violations: string[] = [];

  /** `GET /v1/tenants/:tenant` keys of registered routes without a contract. */
  undescribed(): string[] {
    const described = new Set(this.described.map((d) => routeKey(d.contract.method, d.contract.path)));
    return this.registered.map((r) => routeKey(r.method, r.path)).filter((k) => !described.has(k));
  }
}

export const routeKey = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

const RECORDED = [...HTTP_METHODS, 'all'] as const;

/**
 * Makes `router` record every route registered on it into the catalogue (as `prefix` + path), so
 * routes a plugin registers with `router.get(...)` are known even without a contract. Express's
 * `router.get(path, ...)` goes through `router.route(path).get(...)`, so wrapping `route` catches
 * both forms; `all` is recorded as method `all`.
 */
export function recordRoutes(router: Router, prefix: string, owner: string, catalogue: ApiCatalogue): Router {
  const r = router as unknown as { route(path: unknown): Record<string, (...args: unknown[]) => unknown> };
  const route = r.route.bind(router);
  r.route = (path: unknown) => {
    const created = route(path);
    for (const method of RECORDED) {
      const original = created[method]!.bind(created);
      created[method] = (...handlers: unknown[]) => {
        for (const p of Array.isArray(path) ? path : [path]) catalogue.registered.push({ owner, method, path: `${prefix}${String(p)}` });
        return original(...handlers);
      };
    }
    return created;
  };
  return router;
}

/** Answers of a deprecated route: `Deprecation`, `Sunset` and `Link` headers. */
export function deprecationHeaders(d: RouteDeprecation, req: Request): Record<string, string> {
  const since = Math.floor(Date.parse(d.since) / 1000);
  const headers: Record<string, string> = {
    deprecation: `@${since}`,
    sunset: new Date(d.sunset).toUTCString(),
  };
  if (d.successor) {
    const target = /^https?:\/\//.test(d.successor) ? d.successor : fillPath(d.successor, req.params as Record<string, string | string[]>);
    headers.link = `<${target}>; rel="successor-version"`;
  }
  return headers;
}

/** `/v1/tenants/{tenant}/x` with the request's own parameters filled in. */
function fillPath(path: string, params: Record<string, string | string[]>): string {
  return path.replace(/\{(\w+)\}|:(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const v = params[(a ?? b)!];
    return v === undefined ? whole : encodeURIComponent(Array.isArray(v) ? v.join('/') : v);
  });
}

/** Checks a contract when it is registered, so a malformed one fails at boot, naming the plugin. */
export function contractProblems(c: RouteContract, fullPath: string): string[] {
  const problems: string[] = [];
  if (!HTTP_METHODS.includes(c.method)) problems.push(`method "${String(c.method)}" is not one of ${HTTP_METHODS.join(', ')}`);
  if (typeof c.path !== 'string' || !c.path.startsWith('/')) problems.push('path must start with /');
  if (!c.summary) problems.push('summary is required');
  if (!c.responses || !Object.keys(c.responses).length) problems.push('responses must name at least one status');
  const names = [...fullPath.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  if ((c.auth === 'tenant' || c.auth === 'operator+tenant') && !names.includes(c.tenantParam ?? 'tenant')) problems.push(`auth "${c.auth}" needs the path parameter :${c.tenantParam ?? 'tenant'}`);
  if (c.params) for (const key of Object.keys(c.params.shape)) if (!names.includes(key)) problems.push(`params.${key} is not a parameter of the path`);
  for (const e of c.errors ?? []) if (typeof e === 'string' && !(e in HTTP_ERROR_STATUS)) problems.push(`error ${e} has no HTTP status: give { code, status }`);
  if (c.deprecated) {
    if (Number.isNaN(Date.parse(c.deprecated.since)) || Number.isNaN(Date.parse(c.deprecated.sunset))) problems.push('deprecated.since and deprecated.sunset must be ISO dates');
  }
  return problems;
}

/** What the helper adds before the handlers: the auth middleware and deprecation headers. */
export function contractMiddleware(c: RouteContract, auth: { tenantAuth(param?: string): RequestHandler; operatorAuth(): RequestHandler; anyKey(): RequestHandler }): RequestHandler[] {
  const chain: RequestHandler[] = [];
  if (c.deprecated) {
    const d = c.deprecated;
    chain.push((req, res, next) => {
      res.set(deprecationHeaders(d, req));
      next();
    });
  }
  if (c.auth === 'tenant') chain.push(auth.tenantAuth(c.tenantParam ?? 'tenant'));
  else if (c.auth === 'operator') chain.push(auth.operatorAuth());
  else if (c.auth === 'operator+tenant') chain.push(auth.operatorAuth(), auth.tenantAuth(c.tenantParam ?? 'tenant'));
  else if (c.auth === 'key') chain.push(auth.anyKey());
  return chain;
}

/** The error body every route answers with (core/errors.ts `ParleyError.toJSON`). */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().regex(/^PARLEY_[A-Z0-9_]+$/).describe('A stable code from the error catalogue (core/errors.ts) or a plugin\'s `PARLEY_<PLUGIN>_<WHAT>`'),
      message: z.string().describe('For people; may change between releases'),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe('Every error: `{ error: { code, message, details? } }`');

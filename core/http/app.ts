/**
 * The HTTP surface: health, readiness, metrics, the versioned admin API and the routes plugins add.
 * Raw request bytes are kept on `req.rawBody` for webhook signature checks. Errors are JSON
 * `{ error: { code, message } }`; a malformed body is a 4xx, never a 500.
 */
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Gateway } from '../gateway.js';
import type { ApiGuard, RouteHelpers } from '../plugin.js';
import type { Principal } from '../tenancy.js';
import type { Logger } from 'pino';
import { HttpError, ParleyError, PluginError, forbidden, notFound, unauthenticated } from '../errors.js';
import { adminRoutes } from './admin-api.js';
import { ApiCatalogue, contractMiddleware, contractProblems, recordRoutes, routeKey, type RouteContract } from './contract.js';
import { documentRoutes } from './docs.js';
import { operationsRoutes } from './operations-api.js';
import { adminInputGuard, databaseDataError } from './input-guard.js';
import { parkedRoutes } from './parked-api.js';
import { metricsAccess } from './metrics-auth.js';
import { CSRF_HEADER, csrfMatches, sessionToken } from '../console/sessions.js';
import { consoleRoutes } from '../console/routes.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The contracts and registrations of an app's routes (`GET /v1/openapi.json` is built from it). */
export const apiCatalogueOf = (app: Express): ApiCatalogue => app.locals.parleyApi as ApiCatalogue;

declare module 'express-serve-static-core' {
  interface Request {
    /** The exact bytes received, for signature verification. */
    rawBody?: Buffer;
    requestId: string;
    principal?: Principal;
    /** The API guards already ran for this request. */
    guarded?: boolean;
  }
}

export interface RouteRegistration {
  plugin: string;
  register: (router: Router, helpers: RouteHelpers) => void;
}

/** A route parameter as one string (express 5 types wildcard params as arrays). */
export function param(req: Request, name: string): string {
  const v = req.params[name];
  return Array.isArray(v) ? v.join('/') : (v ?? '');
}

export function bearerKey(req: Request): string | undefined {
  const header = req.get('authorization');
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  return req.get('x-api-key') ?? undefined;
}

/** Runs the plugins' API guards once per request; the first refusal answers (429 with Retry-After, or 403). */
async function runGuards(gateway: Gateway, guards: readonly { plugin: string; guard: ApiGuard }[], req: Request, res: Response, tenantId: string, principal: Principal): Promise<void> {
  if (req.guarded || !guards.length || !tenantId) return;
  req.guarded = true;
  const info = { tenantId, principal: principal.kind === 'operator' ? ('operator' as const) : ('tenant' as const), method: req.method, path: req.path, ip: req.ip };
  for (const { plugin, guard } of guards) {
    let verdict;
    try {
      verdict = await guard.check(info);
    } catch (error) {
      gateway.log.error({ err: error, plugin, guard: guard.name, tenant: tenantId }, 'API guard failed; the request is let through');
      continue;
    }
    if (!verdict || verdict.allow) continue;
    if (verdict.status === 429) {
      const seconds = Math.max(1, Math.ceil(verdict.retryAfterSeconds ?? 1));
      res.setHeader('retry-after', String(seconds));
      throw new HttpError('PARLEY_RATE_LIMITED', verdict.reason, 429, { plugin, details: { retryAfterSeconds: seconds } });
    }
    throw new HttpError('PARLEY_FORBIDDEN', verdict.reason, 403, { plugin });
  }
}

/** The auth middleware of routes: `tenantAuth`, `operatorAuth`, and `anyKey` (any valid key). */
export interface AuthHelpers {
  tenantAuth(param?: string): RequestHandler;
  operatorAuth(): RequestHandler;
  anyKey(): RequestHandler;
}

export function createAuth(gateway: Gateway, guards: readonly { plugin: string; guard: ApiGuard }[] = []): AuthHelpers {
  const authenticate: (req: Request) => Promise<Principal> = async (req) => {
    if (req.principal) return req.principal;
    const key = bearerKey(req);
    let principal: Principal | null;
    if (key !== undefined) principal = await gateway.tenants.authenticate(key);
    else {
      // The console's cookie session: a change needs the session's CSRF token in a header, which a
      // page of another site can neither read nor set (SameSite=Strict is the first line).
      const session = await gateway.consoleSessions.resolve(sessionToken(req.get('cookie')));
      if (session && !SAFE_METHODS.has(req.method) && !csrfMatches(session, req.get(CSRF_HEADER))) {
        throw new HttpError('PARLEY_CSRF', `A change made with a console session needs its CSRF token in the ${CSRF_HEADER} header`, 403);
      }
      principal = session?.principal ?? null;
    }
    if (!principal) throw unauthenticated();
    req.principal = principal;
    return principal;
  };
  return {
    tenantAuth(paramName = 'tenant'): RequestHandler {
      return async (req, res, next) => {
        const principal = await authenticate(req);
        const tenantId = param(req, paramName);
        if (principal.kind === 'operator') {
          if (tenantId && !gateway.tenants.get(tenantId)) throw notFound(`No tenant "${tenantId}"`);
          await runGuards(gateway, guards, req, res, tenantId, principal);
          return next();
        }
        // A tenant key never learns whether another tenant exists.
        if (tenantId !== principal.tenantId) throw forbidden();
        await runGuards(gateway, guards, req, res, tenantId, principal);
        next();
      };
    },
    operatorAuth(): RequestHandler {
      return async (req, _res, next) => {
        const principal = await authenticate(req);
        if (principal.kind !== 'operator') throw forbidden('This route needs the operator key');
        next();
      };
    },
    anyKey(): RequestHandler {
      return async (req, _res, next) => {
        await authenticate(req);
        next();
      };
    },
  };
}

/**
 * The helpers one `ctx.routes` registration (or a kernel router) receives: the auth middleware, and
 * `route` bound to its router, which registers a route from its contract and catalogues it.
 */
export function routeHelpers(auth: AuthHelpers, router: Router, owner: string, catalogue: ApiCatalogue, log?: Logger): RouteHelpers {
  recordRoutes(router, '', owner, catalogue);
  return {
    tenantAuth: auth.tenantAuth,
    operatorAuth: auth.operatorAuth,
    route(contract: RouteContract, ...handlers: RequestHandler[]) {
      const problems = contractProblems(contract, contract.path);
      const key = contract.path && contract.method ? routeKey(contract.method, contract.path) : '';
      if (catalogue.described.some((d) => routeKey(d.contract.method, d.contract.path) === key)) problems.push(`${key} is described twice`);
      if (!handlers.length) problems.push('a route needs a handler');
      if (problems.length) {
        throw new PluginError('PARLEY_PLUGIN_INVALID', `${owner === 'parley' ? 'The kernel' : `Plugin "${owner}"`}: route ${key || '?'}: ${problems.join('; ')}`, 500, { plugin: owner });
      }
      catalogue.described.push({ owner, contract });
      const check = process.env.PARLEY_CHECK_RESPONSES === '1' ? [responseCheck(contract, owner, catalogue, log)] : [];
      router[contract.method](contract.path, ...check, ...contractMiddleware(contract, auth), ...handlers);
    },
  };
}

/**
 * `PARLEY_CHECK_RESPONSES=1` (tests, never production): every JSON answer of a described route is
 * checked against its contract: a status the contract does not document (errors excepted: they are
 * the catalogue's shape) or a body its schema refuses is recorded in `catalogue.violations`, logged,
 * and answered 500 instead, so any test that exercises the route fails on a contract that lies.
 */
function responseCheck(contract: RouteContract, owner: string, catalogue: ApiCatalogue, log: Logger | undefined): RequestHandler {
  return (req, res, next) => {
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      const status = res.statusCode;
      const documented = contract.responses[status];
      let problem: string | undefined;
      if (status < 400 && !documented) problem = `status ${status} is not documented`;
      else if (documented?.schema) {
        const parsed = documented.schema.safeParse(JSON.parse(JSON.stringify(body ?? null)));
        if (!parsed.success) problem = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
      }
      if (!problem) return json(body);
      const violation = `${routeKey(contract.method, contract.path)} (${owner}) -> ${status}: ${problem}`;
      catalogue.violations.push(violation);
      log?.error({ violation, reqId: req.requestId }, 'response does not match the route contract');
      res.status(500);
      return json({ error: { code: 'PARLEY_INTERNAL', message: `Response does not match the route contract: ${violation}` } });
    };
    next();
  };
}

export function createHttpApp(gateway: Gateway, routes: RouteRegistration[], guards: readonly { plugin: string; guard: ApiGuard }[] = []): Express {
  const app = express();
  const { server } = gateway.config;
  app.disable('x-powered-by');
  app.set('trust proxy', server.trustProxy);
  app.set('etag', false);

  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    req.requestId = incoming && /^[\w.-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('x-request-id', req.requestId);
    const started = performance.now();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : res.statusCode === 404 ? 'unmatched' : req.baseUrl || 'unmatched';
      gateway.metrics.httpDuration.observe({ method: req.method, route, status: String(res.statusCode) }, (performance.now() - started) / 1000);
      if (res.statusCode >= 500) gateway.log.error({ reqId: req.requestId, method: req.method, route, status: res.statusCode }, 'request failed');
      else gateway.log.debug({ reqId: req.requestId, method: req.method, route, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    });
    next();
  });

  const keepRaw = (req: Request, _res: Response, buf: Buffer) => {
    req.rawBody = buf;
  };
  app.use(express.json({ limit: server.bodyLimit, verify: keepRaw, type: ['application/json', 'application/*+json'] }));
  app.use(express.urlencoded({ limit: server.bodyLimit, extended: false, verify: keepRaw, parameterLimit: 1000 }));

  const mayReadOperations = metricsAccess(server.metricsToken);
  const auth = createAuth(gateway, guards);
  const catalogue = new ApiCatalogue();
  app.locals.parleyApi = catalogue;
  app.use('/v1', adminInputGuard);
  const routers: Router[] = [];
  for (const kernel of [operationsRoutes(gateway, mayReadOperations), adminRoutes(gateway), parkedRoutes(gateway), documentRoutes(gateway, catalogue), consoleRoutes(gateway, catalogue)]) {
    const router = express.Router();
    kernel(routeHelpers(auth, router, 'parley', catalogue, gateway.log));
    routers.push(router);
  }
  for (const r of routes) {
    const router = express.Router({ mergeParams: true });
    r.register(router, routeHelpers(auth, router, r.plugin, catalogue, gateway.log));
    routers.push(router);
  }
  app.use(routersBySegment(routers));

  app.use((req, _res, next) => next(notFound(`No route for ${req.method} ${req.path}`)));
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toHttpError(error);
    if (e.status >= 500) gateway.log.error({ err: error, reqId: req.requestId }, 'unhandled error in request');
    if (res.headersSent) return;
    res.status(e.status).json(e.toJSON());
  });
  return app;
}

/** What this file reads of a router's layers (express's `Layer`, which its types do not export). */
interface LayerLike {
  rawPath: unknown;
  /** A `use()` without a path: it sees every request. */
  slash: boolean;
  handle: { stack?: LayerLike[] };
}

/**
 * The first path segments (lower case) under which a router's layers can match a request, or null
 * when one of them can match any path: a parameter or pattern in the first segment, a regular
 * expression, or middleware used without a path that is not itself a router.
 */
export function firstSegments(stack: readonly LayerLike[]): Set<string> | null {
  const out = new Set<string>();
  for (const layer of stack) {
    if (layer.slash) {
      const inner = layer.handle.stack ? firstSegments(layer.handle.stack) : null;
      if (!inner) return null;
      for (const s of inner) out.add(s);
      continue;
    }
    for (const path of ([] as unknown[]).concat(layer.rawPath)) {
      const segment = typeof path === 'string' ? /^\/([^/]*)/.exec(path)?.[1] : undefined;
      if (segment === undefined || /[:*{}()?+\\]/.test(segment)) return null;
      out.add(segment.toLowerCase());
    }
  }
  return out;
}

/**
 * One middleware in place of an `app.use(router)` for each of the kernel's and the plugins' routers:
 * a request enters only the routers (in their order) that have a route under its first path segment.
 * Express walked every route of every router for every request, matching each route's pattern: about
 * fifty patterns before a Twilio webhook reached its own, a tenth of the gateway's main thread under
 * load (bench/README.md). What a request meets is unchanged: the routers it skips hold no route its
 * path can match (router paths are case-insensitive, so segments are compared in lower case), errors
 * go on to the app's error handler as before, and `next('router')` leaves one router for the next.
 * The index is rebuilt when a router gains a layer after start. The routers' layers are the
 * middleware's `stack`, as a router's are, for what walks an app's routes (test/openapi.test.ts).
 */
export function routersBySegment(routers: readonly Router[]): RequestHandler {
  const stacks = routers.map((r) => (r as unknown as { stack: LayerLike[] }).stack);
  let layers = -1;
  let any: Router[] = [];
  let bySegment = new Map<string, Router[]>();
  const count = () => {
    let n = 0;
    for (const stack of stacks) n += stack.length;
    return n;
  };
  const index = () => {
    const segments = stacks.map((stack) => firstSegments(stack));
    const all = new Set<string>();
    for (const s of segments) if (s) for (const x of s) all.add(x);
    bySegment = new Map([...all].map((x) => [x, routers.filter((_, i) => segments[i] === null || segments[i]!.has(x))]));
    any = routers.filter((_, i) => segments[i] === null);
    layers = count();
  };
  const dispatch: RequestHandler = (req, res, next) => {
    if (count() !== layers) index();
    const path = req.path;
    const end = path.indexOf('/', 1);
    const list = bySegment.get((end === -1 ? path.slice(1) : path.slice(1, end)).toLowerCase()) ?? any;
    let i = 0;
    const step = (error?: unknown): void => {
      // A router turns `next('router')` and `next('route')` into a plain exit; only errors reach here.
      if (error) return next(error);
      const router = list[i++];
      if (!router) return next();
      router(req, res, step);
    };
    step();
  };
  // The routers' layers stay where tools that list an app's routes look (a layer's `handle.stack`).
  return Object.defineProperty(dispatch, 'stack', { get: () => stacks.flat(), enumerable: true });
}

function toHttpError(error: unknown): ParleyError {
  if (error instanceof ParleyError) return error;
  const data = databaseDataError(error);
  if (data) return data;
  const e = error as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') return new HttpError('PARLEY_PAYLOAD_TOO_LARGE', 'Request body is too large', 413);
  if (e?.type === 'entity.parse.failed') return new HttpError('PARLEY_BAD_REQUEST', 'Request body is not valid JSON', 400);
  if (e?.type && typeof e.status === 'number' && e.status >= 400 && e.status < 500) return new HttpError('PARLEY_BAD_REQUEST', e.message ?? 'Bad request', e.status);
  if (e instanceof URIError) return new HttpError('PARLEY_BAD_REQUEST', 'Malformed URL', 400);
  return new ParleyError('PARLEY_INTERNAL', 'Internal error', 500);
}

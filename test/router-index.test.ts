/**
 * `routersBySegment` (core/http/app.ts): the gateway enters only the routers that have a route under a
 * request's first path segment. What a request meets must be what `app.use(router)` for each router
 * gave: the same handler, the same order, errors and `next('router')` as before.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstSegments, routersBySegment } from '../core/http/app.js';

/** A router that records every request that enters it (its stack is the router's, as the index reads it). */
function tracked(name: string, entered: string[], build: (r: Router) => void): Router {
  const router = express.Router({ mergeParams: true });
  build(router);
  const enter = (req: Request, res: Response, next: NextFunction) => {
    entered.push(`${name} ${req.path}`);
    router(req, res, next);
  };
  return Object.assign(enter, { stack: (router as unknown as { stack: unknown }).stack }) as unknown as Router;
}

const stackOf = (r: Router) => (r as unknown as { stack: Parameters<typeof firstSegments>[0] }).stack;

describe('firstSegments', () => {
  it('reads the first segment of each route, in lower case, and gives up on patterns', () => {
    const r = express.Router();
    r.get('/V1/things', (_req, res) => void res.end());
    r.post('/twilio/sms', (_req, res) => void res.end());
    r.get('/', (_req, res) => void res.end());
    expect([...firstSegments(stackOf(r))!].sort()).toEqual(['', 'twilio', 'v1']);
    const param = express.Router();
    param.get('/:tenant/hook', (_req, res) => void res.end());
    expect(firstSegments(stackOf(param))).toBeNull();
    const regex = express.Router();
    regex.get(/^\/x/, (_req, res) => void res.end());
    expect(firstSegments(stackOf(regex))).toBeNull();
    const middleware = express.Router();
    middleware.use((_req, _res, next) => next());
    expect(firstSegments(stackOf(middleware))).toBeNull();
  });

  it('looks into a router used without a path (as Bolt is), and takes a mount path as it is', () => {
    const inner = express.Router();
    inner.post('/slack/events', (_req, res) => void res.end());
    const outer = express.Router();
    outer.use(inner);
    outer.use('/hooks/x', (_req, _res, next) => next());
    expect([...firstSegments(stackOf(outer))!].sort()).toEqual(['hooks', 'slack']);
  });
});

describe('routersBySegment', () => {
  const entered: string[] = [];
  let server: Server;
  let base = '';
  const admin = tracked('admin', entered, (r) => {
    r.get('/v1/items', (_req, res) => void res.json({ from: 'admin' }));
    r.get('/v1/boom', () => {
      throw new Error('boom');
    });
  });
  const sms = tracked('sms', entered, (r) => {
    r.post('/twilio/sms', (_req, res) => void res.json({ from: 'sms' }));
    // Leaves this router: the next one that has the path answers.
    r.get('/v1/shared', (_req, _res, next: NextFunction) => next('router'));
  });
  const plugin = tracked('plugin', entered, (r) => {
    r.get('/v1/shared', (_req, res) => void res.json({ from: 'plugin' }));
  });
  const anyPath = tracked('any', entered, (r) => {
    r.get('/:tenant/webhook', (req, res) => void res.json({ from: 'any', tenant: req.params.tenant }));
  });
  const late = express.Router();

  beforeAll(async () => {
    const app = express();
    app.use(routersBySegment([admin, sms, plugin, anyPath, late]));
    app.use((_req, res) => void res.status(404).json({ from: 'not found' }));
    app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => void res.status(500).json({ error: error.message }));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const call = async (method: string, path: string) => {
    entered.length = 0;
    const res = await fetch(base + path, { method });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, entered: [...entered] };
  };

  it('enters only the routers that have routes under the first segment (and those that may match any path)', async () => {
    expect(await call('POST', '/twilio/sms')).toEqual({ status: 200, body: { from: 'sms' }, entered: ['sms /twilio/sms'] });
    expect(await call('GET', '/v1/items')).toEqual({ status: 200, body: { from: 'admin' }, entered: ['admin /v1/items'] });
    // Case-insensitive, as express's routers are.
    expect((await call('POST', '/TWILIO/sms')).body).toEqual({ from: 'sms' });
  });

  it('keeps a router whose first segment is a parameter in every list, in its place', async () => {
    expect(await call('GET', '/acme/webhook')).toEqual({ status: 200, body: { from: 'any', tenant: 'acme' }, entered: ['any /acme/webhook'] });
    expect((await call('GET', '/nothing/here')).entered).toEqual(['any /nothing/here']);
    expect((await call('GET', '/nothing/here')).status).toBe(404);
  });

  it("passes next('router') on to the next router, and an error to the app's error handler", async () => {
    expect(await call('GET', '/v1/shared')).toEqual({ status: 200, body: { from: 'plugin' }, entered: ['admin /v1/shared', 'sms /v1/shared', 'plugin /v1/shared'] });
    expect(await call('GET', '/v1/boom')).toEqual({ status: 500, body: { error: 'boom' }, entered: ['admin /v1/boom'] });
  });

  it('sees a route added to a router after the first request', async () => {
    expect((await call('GET', '/later/on')).status).toBe(404);
    late.get('/later/on', (_req, res) => void res.json({ from: 'late' }));
    expect((await call('GET', '/later/on')).body).toEqual({ from: 'late' });
  });
});

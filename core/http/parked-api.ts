/**
 * `GET /v1/parked` (operator: every tenant's, and deliveries no tenant could be found for) and
 * `GET /v1/tenants/:tenant/parked` (that tenant's): webhooks that could not be stored (core/parking.ts).
 */
import type { Gateway } from '../gateway.js';
import type { RouteHelpers } from '../plugin.js';
import { badRequest } from '../errors.js';
import { param } from './app.js';
import { PageQuery, Responses } from './api-schemas.js';
import { TimeIdKey, pageOf, readCursor } from './paging.js';

const parkedQuery = PageQuery;

function parse(query: unknown) {
  const parsed = parkedQuery.safeParse(query);
  if (!parsed.success) throw badRequest(`Invalid query: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export const parkedRoutes =
  (gateway: Gateway) =>
  ({ route }: RouteHelpers): void => {
    route(
      {
        method: 'get',
        path: '/v1/parked',
        auth: 'operator',
        tags: ['parked'],
        summary: 'Every parked webhook, including those no tenant could be found for',
        query: parkedQuery,
        responses: { 200: { description: 'Newest first', schema: Responses.parked } },
        errors: ['PARLEY_BAD_REQUEST'],
      },
      async (req, res) => {
        const q = parse(req.query);
        const list = 'parked';
        const after = q.cursor ? readCursor(list, q.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, list, await gateway.parking.list(null, q.limit + 1, { before: q.before, after }), q.limit, (r) => [r.sortAt, r.id]);
        res.json({ parked: items.map(({ sortAt: _, ...p }) => p), next });
      },
    );
    route(
      {
        method: 'get',
        path: '/v1/tenants/:tenant/parked',
        auth: 'tenant',
        tags: ['parked'],
        summary: "The tenant's parked webhooks (signed deliveries that could not be stored)",
        query: parkedQuery,
        responses: { 200: { description: 'Newest first', schema: Responses.parked } },
        errors: ['PARLEY_BAD_REQUEST'],
      },
      async (req, res) => {
        const q = parse(req.query);
        const list = 'tenant-parked';
        const after = q.cursor ? readCursor(list, q.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, list, await gateway.parking.list(param(req, 'tenant'), q.limit + 1, { before: q.before, after }), q.limit, (r) => [r.sortAt, r.id]);
        res.json({ parked: items.map(({ sortAt: _, ...p }) => p), next });
      },
    );
  };

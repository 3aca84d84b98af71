/**
 * `GET /v1/parked` (operator: every tenant's, and deliveries no tenant could be found for) and
 * `GET /v1/tenants/:tenant/parked` (that tenant's): webhooks that could not be stored (core/parking.ts).
 */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Gateway } from '../gateway.js';
import type { RouteHelpers } from '../plugin.js';
import { badRequest } from '../errors.js';
import { param } from './app.js';

const parkedQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.string().datetime({ offset: true }).optional(),
});

function parse(query: unknown) {
  const parsed = parkedQuery.safeParse(query);
  if (!parsed.success) throw badRequest(`Invalid query: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function parkedRouter(gateway: Gateway, auth: RouteHelpers): Router {
  const r = express.Router();
  r.get('/parked', auth.operatorAuth(), async (req, res) => {
    const q = parse(req.query);
    res.json({ parked: await gateway.parking.list(null, q.limit, q.before) });
  });
  r.get('/tenants/:tenant/parked', auth.tenantAuth('tenant'), async (req, res) => {
    const q = parse(req.query);
    res.json({ parked: await gateway.parking.list(param(req, 'tenant'), q.limit, q.before) });
  });
  return r;
}

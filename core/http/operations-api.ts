/**
 * Operations routes outside `/v1`: `GET /healthz`, `GET /readyz` and `GET /metrics` (see
 * metrics-auth.ts for what `server.metricsToken` hides).
 */
import type { Request } from 'express';
import { z } from 'zod';
import type { Gateway } from '../gateway.js';
import type { RouteHelpers } from '../plugin.js';
import { unauthenticated } from '../errors.js';

const Health = z.object({ status: z.literal('ok'), uptimeSeconds: z.number().int() });
const Readiness = z.object({
  status: z.enum(['ready', 'not-ready', 'stopping']),
  components: z.record(z.string(), z.unknown()).optional().describe('Each component with its status and latency; only without `server.metricsToken` or with it as bearer'),
});

export const operationsRoutes =
  (gateway: Gateway, mayReadOperations: (req: Request) => boolean) =>
  ({ route }: RouteHelpers): void => {
    route(
      { method: 'get', path: '/healthz', auth: 'none', tags: ['operations'], summary: 'The process is alive', responses: { 200: { description: 'Alive', schema: Health, example: { status: 'ok', uptimeSeconds: 42 } } } },
      (_req, res) => {
        res.json({ status: 'ok', uptimeSeconds: Math.round((Date.now() - gateway.startedAt) / 1000) });
      },
    );
    route(
      {
        method: 'get',
        path: '/readyz',
        auth: 'none',
        tags: ['operations'],
        summary: 'Database, job queue and channels are ready',
        responses: { 200: { description: 'Ready', schema: Readiness }, 503: { description: 'A critical component is down, or the gateway is stopping', schema: Readiness } },
      },
      async (req, res) => {
        const r = await gateway.readiness();
        res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : gateway.isStopping ? 'stopping' : 'not-ready', ...(mayReadOperations(req) ? { components: r.components } : {}) });
      },
    );
    route(
      {
        method: 'get',
        path: '/metrics',
        auth: 'none',
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description: 'With `server.metricsToken` set, needs `Authorization: Bearer <server.metricsToken>` (not an API key).',
        responses: { 200: { description: 'Prometheus text exposition format', contentType: 'text/plain' } },
        errors: ['PARLEY_UNAUTHENTICATED'],
      },
      async (req, res) => {
        if (!mayReadOperations(req)) throw unauthenticated('/metrics needs Authorization: Bearer <server.metricsToken>');
        res.setHeader('content-type', gateway.registry.contentType);
        res.send(await gateway.registry.metrics());
      },
    );
  };

/**
 * Operator routes: list a tenant's detections, and mark one a false positive (audited, counted).
 * `GET /v1/tenants/:tenant/crisis-detections?limit&before&falsePositive`,
 * `POST /v1/tenants/:tenant/crisis-detections/:id/false-positive` `{ note? }`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { badRequest, notFound, param, type RouteHelpers } from 'parley';
import type { CrisisMetrics } from './metrics.js';
import type { DetectionStore } from './store.js';

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.date().optional().meta({ type: 'string', format: 'date-time', description: 'Only detections older than this time' }),
  falsePositive: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
});
const markBody = z.object({ note: z.string().max(500).optional() });

const Detection = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    conversationId: z.string(),
    messageId: z.string(),
    channel: z.string(),
    categories: z.array(z.string()).describe('What was detected (`self-harm`, `violence`...)'),
    language: z.string(),
    ruleIds: z.array(z.string()),
    handedOff: z.boolean(),
    detectedAt: z.iso.datetime({ offset: true }),
    falsePositive: z.object({ at: z.iso.datetime({ offset: true }), by: z.string(), note: z.string().nullable() }).nullable(),
  })
  .meta({ id: 'CrisisDetection', description: 'A message crisis-guard answered with crisis numbers (no message text)' });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'crisis-guard is not enabled for the tenant, or no such detection' } as const;

/** Who marked it, as the kernel's audit names actors: a stored key by id, else the operator or tenant key. */
function actorOf(req: { principal?: { kind: string; keyId?: string } }): string {
  return req.principal?.kind === 'tenant' && req.principal.keyId ? `key:${req.principal.keyId}` : req.principal?.kind ?? 'unknown';
}

export function detectionRoutes(deps: { store: DetectionStore; metrics: CrisisMetrics; enabled(tenantId: string): boolean }) {
  const { store, metrics } = deps;
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Parameters<typeof param>[0]) => {
      const tenantId = param(req, 'tenant');
      if (!deps.enabled(tenantId)) throw notFound(`crisis-guard is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    route(
      {
        method: 'get',
        path: '/v1/tenants/:tenant/crisis-detections',
        auth: 'tenant',
        tags: ['crisis-guard'],
        summary: "The tenant's crisis detections, newest first",
        query: listQuery,
        responses: { 200: { description: 'The detections', schema: z.object({ detections: z.array(Detection) }) } },
        errors: ['PARLEY_BAD_REQUEST', notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const query = listQuery.safeParse(req.query);
        if (!query.success) throw badRequest('Query must be ?limit=1..200&before=<ISO date>&falsePositive=true|false');
        res.set('cache-control', 'no-store').json({ detections: await store.list(tenantId, query.data) });
      },
    );
    route(
      {
        method: 'post',
        path: '/v1/tenants/:tenant/crisis-detections/:id/false-positive',
        auth: 'tenant',
        tags: ['crisis-guard'],
        summary: 'Mark a detection a false positive (audited, counted)',
        body: markBody,
        bodyExample: { note: 'a song lyric' },
        responses: { 200: { description: 'The detection, marked', schema: z.object({ detection: Detection }) } },
        errors: ['PARLEY_BAD_REQUEST', notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const body = markBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest('Body must be { "note"?: string (at most 500 characters) }');
        const result = await store.markFalsePositive(tenantId, param(req, 'id'), actorOf(req as never), body.data.note ?? null);
        if (!result) throw notFound(`No crisis detection "${param(req, 'id')}"`);
        if (result.changed) for (const category of result.detection.categories) metrics.falsePositives.inc({ tenant: tenantId, category });
        res.json({ detection: result.detection });
      },
    );
  };
}

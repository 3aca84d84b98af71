/**
 * Operator routes: list a tenant's detections, and mark one a false positive (audited, counted).
 * `GET /v1/tenants/:tenant/crisis-detections?limit&cursor&falsePositive` (paged with `next`; `before` the old way),
 * `POST /v1/tenants/:tenant/crisis-detections/:id/false-positive` `{ note? }`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { NextPage, TimeIdKey, badRequest, notFound, pageOf, pageQuery, param, readCursor, type RouteHelpers } from 'parley';
import type { CrisisMetrics } from './metrics.js';
import type { DetectionStore } from './store.js';

const listQuery = pageQuery({ maxLimit: 200 }).extend({
  before: z.coerce.date().optional().meta({ type: 'string', format: 'date-time', description: 'Old way of paging (use `cursor`): only detections older than this time' }),
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
        responses: { 200: { description: 'The detections', schema: z.object({ detections: z.array(Detection), next: NextPage }) } },
        errors: ['PARLEY_BAD_REQUEST', notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const query = listQuery.safeParse(req.query);
        if (!query.success) throw badRequest('Query must be ?limit=1..200&cursor=<from next>&falsePositive=true|false (or the old before=<ISO date>)');
        const after = query.data.cursor ? readCursor('crisis-detections', query.data.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, 'crisis-detections', await store.list(tenantId, { ...query.data, limit: query.data.limit + 1, after }), query.data.limit, (d) => [d.sortAt, d.id]);
        res.set('cache-control', 'no-store').json({ detections: items.map(({ sortAt: _, ...d }) => d), next });
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

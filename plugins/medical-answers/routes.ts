/**
 * Admin routes (tenant key or operator key):
 * `GET /v1/tenants/:tenant/medical-answers` the library's state (documents, chunks, retrieval mode,
 * corpus version, ingest progress, last error, outcomes of the last 7 days);
 * `POST /v1/tenants/:tenant/medical-answers/search` `{ query, k? }` what retrieval finds, for checking a
 * library without texting it;
 * `GET /v1/tenants/:tenant/medical-answers/answers?limit&before&outcome` the answer log (no texts).
 */
import type { Router } from 'express';
import { z } from 'zod';
import { badRequest, notFound, param, type RouteHelpers } from 'parley';
import type { AnswerLog } from './answer-log.js';
import type { Library } from './library.js';

const searchBody = z.object({ query: z.string().trim().min(1).max(1000), k: z.number().int().min(1).max(50).default(5) });
const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.date().optional(),
  outcome: z.enum(['answered', 'fallback', 'crisis', 'passed', 'loading']).optional(),
});

export function libraryRoutes(deps: { library: Library; log: AnswerLog; enabled(tenantId: string): boolean }) {
  const { library } = deps;
  return (router: Router, { tenantAuth }: RouteHelpers): void => {
    const tenantOf = (req: Parameters<typeof param>[0]) => {
      const tenantId = param(req, 'tenant');
      if (!deps.enabled(tenantId)) throw notFound(`medical-answers is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    router.get('/v1/tenants/:tenant/medical-answers', tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req);
      const [status, last7Days] = await Promise.all([library.status(tenantId, true), deps.log.summary(tenantId, 7)]);
      res.set('cache-control', 'no-store').json({ ...status, ingest: library.progress(tenantId) ?? null, lastError: library.error(tenantId) ?? null, last7Days });
    });
    router.post('/v1/tenants/:tenant/medical-answers/search', tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req);
      const body = searchBody.safeParse(req.body ?? {});
      if (!body.success) throw badRequest('Body must be { "query": string (1..1000 characters), "k"?: 1..50 }');
      const started = performance.now();
      const hits = await library.store.search(tenantId, body.data.query, { k: body.data.k });
      res.set('cache-control', 'no-store').json({ hits, ms: Math.round((performance.now() - started) * 10) / 10 });
    });
    router.get('/v1/tenants/:tenant/medical-answers/answers', tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req);
      const query = listQuery.safeParse(req.query);
      if (!query.success) throw badRequest('Query must be ?limit=1..200&before=<ISO date>&outcome=answered|fallback|crisis|passed|loading');
      res.set('cache-control', 'no-store').json({ answers: await deps.log.list(tenantId, query.data) });
    });
  };
}

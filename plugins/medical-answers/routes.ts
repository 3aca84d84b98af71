/**
 * `GET /l/:code` (no key): a short source link, 302 to the page (`shortLinks`).
 *
 * Admin routes (tenant key or operator key):
 * `GET /v1/tenants/:tenant/medical-answers` the library's state (documents, chunks, retrieval mode,
 * corpus version, ingest progress, last error, outcomes and errands of the last 7 days);
 * `POST /v1/tenants/:tenant/medical-answers/search` `{ query, k? }` what retrieval finds, for checking a
 * library without texting it;
 * `GET /v1/tenants/:tenant/medical-answers/answers?limit&cursor&outcome&errand` the answer log (no texts), paged with `next`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { NextPage, TimeIdKey, badRequest, notFound, pageOf, pageQuery, param, readCursor, type RouteHelpers } from 'parley';
import type { AnswerLog } from './answer-log.js';
import { ERRAND_INTENTS } from './engine/errands.js';
import type { Library } from './library.js';
import { LINK_CODE_LENGTH, type MedicalStore } from './engine/store.js';
import type { RagMetrics } from './metrics.js';

const searchBody = z.object({ query: z.string().trim().min(1).max(1000), k: z.number().int().min(1).max(50).default(5) });
const listQuery = pageQuery({ maxLimit: 200 }).extend({
  before: z.coerce.date().optional().meta({ type: 'string', format: 'date-time', description: 'Old way of paging (use `cursor`): only entries older than this time' }),
  outcome: z.enum(['answered', 'fallback', 'crisis', 'passed', 'loading']).optional(),
  errand: z.enum([...ERRAND_INTENTS, 'unknown']).optional().meta({ description: 'Only messages passed on as this errand (engine/errands.ts), or `unknown`: no errand likely enough' }),
});

const at = z.iso.datetime({ offset: true });
const Hit = z
  .looseObject({
    docId: z.string(),
    chunkId: z.string(),
    title: z.string(),
    url: z.string().nullable(),
    source: z.string().nullable(),
    section: z.string().nullable(),
    text: z.string(),
    score: z.number().describe('Comparable within one search only'),
    lexicalRank: z.number().int().nullable(),
    vectorRank: z.number().int().nullable(),
  })
  .meta({ id: 'MedicalHit' });
const LibraryState = z
  .looseObject({
    ingest: z.looseObject({ phase: z.string(), done: z.number(), total: z.number().optional(), startedAt: at }).nullable().describe('An ingest in progress'),
    lastError: z.object({ at, message: z.string() }).nullable(),
    last7Days: z.record(z.string(), z.number().int()).describe('Answers by outcome over the last 7 days'),
    errandsLast7Days: z.record(z.string(), z.number().int()).describe('Messages passed on as not a health question over the last 7 days, by the errand they read as (`unknown`: none likely enough)'),
  })
  .describe('Documents, chunks, retrieval mode and corpus version, with ingest progress and recent outcomes');
const Answer = z
  .looseObject({ messageId: z.string(), conversationId: z.string().nullable(), outcome: z.string(), answerer: z.string().nullable(), confidence: z.number().nullable(), docIds: z.array(z.string()).nullable(), errand: z.string().nullable().describe('For a message passed on: the errand it read as, or `unknown`'), at })
  .meta({ id: 'MedicalAnswerLogEntry', description: 'One answered (or not) message: no texts' });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'medical-answers is not enabled for the tenant' } as const;

export function libraryRoutes(deps: { library: Library; log: AnswerLog; enabled(tenantId: string): boolean }) {
  const { library } = deps;
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Parameters<typeof param>[0]) => {
      const tenantId = param(req, 'tenant');
      if (!deps.enabled(tenantId)) throw notFound(`medical-answers is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    route(
      {
        method: 'get',
        path: '/v1/tenants/:tenant/medical-answers',
        auth: 'tenant',
        tags: ['medical-answers'],
        summary: "The tenant's library: documents, retrieval mode, ingest progress, recent outcomes",
        responses: { 200: { description: 'The library state', schema: LibraryState } },
        errors: [notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const [status, recent] = await Promise.all([library.status(tenantId, true), deps.log.summary(tenantId, 7)]);
        res.set('cache-control', 'no-store').json({ ...status, ingest: library.progress(tenantId) ?? null, lastError: library.error(tenantId) ?? null, last7Days: recent.outcomes, errandsLast7Days: recent.errands });
      },
    );
    route(
      {
        method: 'post',
        path: '/v1/tenants/:tenant/medical-answers/search',
        auth: 'tenant',
        tags: ['medical-answers'],
        summary: 'What retrieval finds for a question, to check a library without texting it',
        body: searchBody,
        bodyExample: { query: 'what is a normal A1C level', k: 3 },
        responses: { 200: { description: 'The hits, best first', schema: z.object({ hits: z.array(Hit), ms: z.number(), lexicalOnly: z.string().optional().describe('Why the question was not embedded (e.g. PARLEY_AI_REFUSED: a spent ai budget): these are lexical hits only') }) } },
        errors: ['PARLEY_BAD_REQUEST', notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const body = searchBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest('Body must be { "query": string (1..1000 characters), "k"?: 1..50 }');
        const started = performance.now();
        // A refused or failed question embedding (a spent ai budget) leaves the lexical hits, said plainly.
        let lexicalOnly: string | undefined;
        const hits = await library.store.search(tenantId, body.data.query, {
          k: body.data.k,
          onEmbedError: (error) => {
            const code = (error as { code?: unknown } | null)?.code;
            if (typeof code !== 'string' || !code.startsWith('PARLEY_AI_')) throw error;
            lexicalOnly = `${code}: ${(error as Error).message}`;
          },
        });
        res.set('cache-control', 'no-store').json({ hits, ms: Math.round((performance.now() - started) * 10) / 10, ...(lexicalOnly ? { lexicalOnly } : {}) });
      },
    );
    route(
      {
        method: 'get',
        path: '/v1/tenants/:tenant/medical-answers/answers',
        auth: 'tenant',
        tags: ['medical-answers'],
        summary: 'The answer log, newest first (outcomes, confidence, documents; no texts)',
        query: listQuery,
        responses: { 200: { description: 'The log', schema: z.object({ answers: z.array(Answer), next: NextPage }) } },
        errors: ['PARLEY_BAD_REQUEST', notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const query = listQuery.safeParse(req.query);
        if (!query.success) throw badRequest(`Query must be ?limit=1..200&cursor=<from next>&outcome=answered|fallback|crisis|passed|loading&errand=${[...ERRAND_INTENTS, 'unknown'].join('|')} (or the old before=<ISO date>)`);
        const after = query.data.cursor ? readCursor('medical-answers', query.data.cursor, TimeIdKey) : null;
        const { items, next } = pageOf(req, 'medical-answers', await deps.log.list(tenantId, { ...query.data, limit: query.data.limit + 1, after }), query.data.limit, (a) => [a.sortAt, a.messageId]);
        res.set('cache-control', 'no-store').json({ answers: items.map(({ sortAt: _, ...a }) => a), next });
      },
    );
  };
}

/** Where short source links live: `<server.publicBaseUrl>/l/<code>`. */
export const LINK_PATH = '/l';

/**
 * `GET /l/:code`: the page a short source link names, as a 302 (`shortLinks`). No key: the link is in
 * an SMS. It reveals only the public link of a page some tenant's answer cited, and counts the open
 * for that tenant; nobody's number or question is in it.
 */
export function sourceLinkRoute(deps: { store: MedicalStore; tenants(): string[]; metrics: RagMetrics }) {
  return (_router: Router, { route }: RouteHelpers): void => {
    route(
      {
        method: 'get',
        path: `${LINK_PATH}/:code`,
        auth: 'none',
        tags: ['medical-answers'],
        summary: "A health answer's short source link: 302 to the page",
        description: `The code (${LINK_CODE_LENGTH} characters) is the same for a page of a tenant's library across restarts and re-ingests; a page removed from the library, or the plugin turned off for its tenant, no longer resolves.`,
        params: z.object({ code: z.string().describe(`${LINK_CODE_LENGTH} characters, A-Z a-z 0-9 - _`) }),
        responses: { 302: { description: "To the page's own link", headers: { location: 'The page' } } },
        errors: [{ code: 'PARLEY_NOT_FOUND', status: 404, description: 'No page has this code' }],
      },
      async (req, res) => {
        const found = await deps.store.resolveLink(param(req, 'code'), deps.tenants());
        if (!found) throw notFound('No page has this link: it may have been removed from the library');
        deps.metrics.linkOpens.inc({ tenant: found.tenantId });
        res.set({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).redirect(302, found.url);
      },
    );
  };
}

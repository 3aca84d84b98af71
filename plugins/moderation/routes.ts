/**
 * The moderation API, per tenant (tenant key or operator key):
 * `POST /v1/tenants/:tenant/moderation/screen` `{ text, contentType? }` -> `{ safe, flags, action }`;
 * the review queue under `/v1/tenants/:tenant/moderation/queue` (list, one item with context and audit,
 * claim, review, approve, reject, escalate, dismiss, bulk-dismiss); `GET .../moderation/stats`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { badRequest, HttpError, NextPage, notFound, pageOf, pageQuery, param, pluginErrorCode, readCursor, TimeIdKey, type AiService, type RouteHelpers } from 'parley';
import { screenText } from './screen.js';
import { modelOpinion } from './model.js';
import type { ModerationMetrics } from './metrics.js';
import type { ModerationService } from './service.js';
import type { Decision, QueueStore } from './store.js';
import { CATEGORIES, type ModerationSettings } from './types.js';

const ALREADY_DECIDED = pluginErrorCode('moderation', 'ALREADY_DECIDED');

const screenBody = z.object({ text: z.string().min(1).max(10_000), contentType: z.string().max(100).optional(), contentId: z.string().max(200).optional() });
const STATUSES = ['pending', 'in_review', 'approved', 'rejected', 'escalated', 'dismissed'] as const;
const listQuery = pageQuery({ maxLimit: 200 }).extend({
  status: z
    .string()
    .transform((s) => s.split(','))
    .pipe(z.array(z.enum(STATUSES)))
    .optional(),
  direction: z.enum(['inbound', 'outbound']).optional(),
  category: z.enum(CATEGORIES).optional(),
  assignee: z.string().max(200).optional(),
  minConfidence: z.coerce.number().min(0).max(1).optional(),
  maxConfidence: z.coerce.number().min(0).max(1).optional(),
  offset: z.coerce.number().int().min(0).max(100_000).default(0).describe('Old way of paging (use `cursor`): skip this many matches; not with `cursor`'),
});
const decisionBody = z.object({
  /** Why (kept in the audit). */
  reason: z.string().max(500).optional(),
  notes: z.string().max(2000).optional(),
  /** The person deciding, when the key is shared by a team; else the key names the actor. */
  moderator: z.string().min(1).max(200).optional(),
  assignee: z.string().min(1).max(200).optional(),
  /** seed 002's name for `assignee`. */
  assignedTo: z.string().min(1).max(200).optional(),
});
const bulkBody = z.object({ belowConfidence: z.number().min(0).max(1), reason: z.string().max(500).optional(), moderator: z.string().min(1).max(200).optional() });

const at = z.iso.datetime({ offset: true });
const Item = z
  .looseObject({
    id: z.string(),
    tenantId: z.string(),
    direction: z.enum(['inbound', 'outbound']),
    ref: z.string(),
    messageId: z.string().nullable(),
    outboxId: z.string().nullable(),
    conversationId: z.string().nullable(),
    channel: z.string(),
    participant: z.string(),
    categories: z.array(z.string()),
    flags: z.array(z.looseObject({})),
    confidence: z.number(),
    heldStage: z.string().nullable(),
    status: z.enum(STATUSES),
    assignee: z.string().nullable(),
    notes: z.string().nullable(),
    createdAt: at,
    updatedAt: at,
    claimedAt: at.nullable(),
    decidedAt: at.nullable(),
    decidedBy: z.string().nullable(),
    decisionReason: z.string().nullable(),
    auto: z.boolean(),
    settledAt: at.nullable(),
  })
  .meta({ id: 'ModerationItem', description: 'A message or reply held or flagged for review' });
const Verdict = z.looseObject({
  safe: z.boolean(),
  action: z.string().describe('allow, flag, redact, hold or block'),
  confidence: z.number(),
  requiresReview: z.boolean(),
  flags: z.array(z.looseObject({ category: z.string(), detector: z.string(), score: z.number(), action: z.string() })),
  redacted: z.string().optional(),
});
const Stats = z.looseObject({
  tenant: z.string(),
  pending: z.number().int(),
  inReview: z.number().int(),
  escalated: z.number().int(),
  oldestPendingSeconds: z.number().nullable(),
  decisions: z.record(z.string(), z.number()),
  timeToDecisionSeconds: z.object({ avg: z.number().nullable(), p50: z.number().nullable(), p90: z.number().nullable() }),
  slaMinutes: z.number(),
  slaBreached: z.boolean(),
});
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'moderation is not enabled for the tenant, or no such item' } as const;
const decided = { code: 'PARLEY_MODERATION_ALREADY_DECIDED', status: 409, description: 'Another moderator claimed or decided it first' } as const;
const tags = ['moderation'];

type Req = Parameters<typeof param>[0] & { principal?: { kind: string; keyId?: string }; body?: unknown; query: unknown };

/** Who acts, as the kernel's audit names actors: a stored key by id, else the operator or tenant key; with the moderator's name when given. */
function actorOf(req: Req, moderator?: string): string {
  const key = req.principal?.kind === 'tenant' && req.principal.keyId ? `key:${req.principal.keyId}` : (req.principal?.kind ?? 'unknown');
  return moderator ? `${moderator} (${key})` : key;
}

export function moderationRoutes(deps: { store: QueueStore; service: ModerationService; metrics: ModerationMetrics; ai: AiService; settingsFor(tenantId: string): ModerationSettings | undefined }) {
  const { store, service } = deps;
  return (_router: Router, { route }: RouteHelpers): void => {
    const settingsOf = (req: Req) => {
      const tenantId = param(req, 'tenant');
      const settings = deps.settingsFor(tenantId);
      if (!settings) throw notFound(`moderation is not enabled for tenant "${tenantId}"`);
      return { tenantId, settings };
    };
    const body = <T extends z.ZodType>(schema: T, req: Req, hint: string): z.output<T> => {
      const parsed = schema.safeParse(req.body ?? {});
      if (!parsed.success) throw badRequest(`${hint}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
      return parsed.data;
    };
    const base = '/v1/tenants/:tenant/moderation';

    route(
      { method: 'post', path: `${base}/screen`, auth: 'tenant', tags, summary: 'Screen a text without storing anything', body: screenBody, bodyExample: { text: 'you are an idiot', contentType: 'comment' }, responses: { 200: { description: 'The verdict', schema: Verdict } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const { tenantId, settings } = settingsOf(req as Req);
        const b = body(screenBody, req as Req, 'Body must be { "text": string, "contentType"?: string }');
        let model = null;
        if (settings.model.enabled) {
          const r = await modelOpinion(deps.ai, tenantId, b.text, `screen:${Date.now()}:${Math.random()}`, settings.model.timeoutMs);
          deps.metrics.modelChecks.inc({ result: r.outcome });
          model = r.flag;
        }
        // Nothing is stored: screening alone, for integrators (seed 002's /screen/text).
        const verdict = screenText(b.text, settings, { spam: null, model });
        deps.metrics.actions.inc({ tenant: tenantId, direction: 'api', action: verdict.action });
        res.set('cache-control', 'no-store').json({
          safe: verdict.safe,
          action: verdict.action,
          confidence: verdict.confidence,
          requiresReview: verdict.action === 'hold',
          flags: verdict.flags.map(({ category, detector, score, action, threshold, details }) => ({ type: category, category, detector, confidence: score, score, action, threshold, details })),
          ...(verdict.action === 'redact' ? { redacted: verdict.redacted } : {}),
          ...(b.contentType ? { contentType: b.contentType } : {}),
          ...(b.contentId ? { contentId: b.contentId } : {}),
        });
      },
    );

    route(
      { method: 'get', path: `${base}/queue`, auth: 'tenant', tags, summary: 'The review queue, filtered', description: '`status` takes a comma-separated list. Oldest first, paged with `limit` and `cursor` (`next`; `offset` is the old way); `total` counts every match.', query: listQuery, responses: { 200: { description: 'A page of items', schema: z.object({ items: z.array(Item), count: z.number().int(), total: z.number().int(), limit: z.number().int(), offset: z.number().int(), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const { tenantId } = settingsOf(req as Req);
        const q = listQuery.safeParse(req.query);
        if (!q.success) throw badRequest(`Query: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (status=pending,in_review&direction=inbound|outbound&category&assignee&minConfidence&maxConfidence&limit=1..200&cursor)`);
        if (q.data.cursor && q.data.offset) throw badRequest('Page with cursor or with offset (the old way), not both');
        const after = q.data.cursor ? readCursor('moderation-queue', q.data.cursor, TimeIdKey) : null;
        const { items: found, total, sortAts } = await store.list(tenantId, { ...q.data, ...(q.data.status ? { status: q.data.status } : {}), limit: q.data.limit + 1, after } as never);
        const { items, next } = pageOf(req, 'moderation-queue', found.map((item, i) => ({ item, sortAt: sortAts[i]! })), q.data.limit, (r) => [r.sortAt, r.item.id]);
        res.set('cache-control', 'no-store').json({ items: items.map((r) => r.item), count: items.length, total, limit: q.data.limit, offset: q.data.offset, next });
      },
    );

    route(
      { method: 'get', path: `${base}/stats`, auth: 'tenant', tags, summary: 'The backlog, decisions and time to decision, against the SLA', responses: { 200: { description: 'The stats', schema: Stats } }, errors: [notEnabled] },
      async (req, res) => {
        const { tenantId, settings } = settingsOf(req as Req);
        const stats = await store.stats(tenantId);
        res.set('cache-control', 'no-store').json({ tenant: tenantId, ...stats, slaMinutes: settings.review.slaMinutes, slaBreached: stats.oldestPendingSeconds !== null && stats.oldestPendingSeconds > settings.review.slaMinutes * 60 });
      },
    );

    route(
      { method: 'post', path: `${base}/queue/bulk-dismiss`, auth: 'tenant', tags, summary: 'Dismiss every pending item below a confidence', body: bulkBody, bodyExample: { belowConfidence: 0.3, reason: 'noise' }, responses: { 200: { description: 'What was dismissed', schema: z.object({ dismissed: z.number().int(), items: z.array(z.string()) }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const { tenantId } = settingsOf(req as Req);
        const b = body(bulkBody, req as Req, 'Body must be { "belowConfidence": 0..1, "reason"?: string }');
        const items = await service.bulkDismiss(tenantId, b.belowConfidence, { actor: actorOf(req as Req, b.moderator), reason: b.reason ?? `bulk dismiss below ${b.belowConfidence}` });
        res.json({ dismissed: items.length, items: items.map((i) => i.id) });
      },
    );

    route(
      { method: 'get', path: `${base}/queue/:id`, auth: 'tenant', tags, summary: 'One item with the message, its context and its audit', responses: { 200: { description: 'The item', schema: z.object({ item: Item, message: z.string().nullable(), context: z.array(z.unknown()), audit: z.array(z.unknown()) }) } }, errors: [notEnabled] },
      async (req, res) => {
        const { tenantId, settings } = settingsOf(req as Req);
        const item = await store.get(tenantId, param(req, 'id'));
        if (!item) throw notFound(`No moderation item "${param(req, 'id')}"`);
        const context = await store.context(item, settings.review.contextMessages);
        res.set('cache-control', 'no-store').json({ item, message: context.text, context: context.previous, audit: await store.audit(tenantId, item.id) });
      },
    );

    const claim = async (req: Req, res: { json(b: unknown): void }) => {
      const { tenantId } = settingsOf(req);
      const b = body(decisionBody, req, 'Body must be { "assignee"?: string, "notes"?: string, "moderator"?: string }');
      const actor = actorOf(req, b.moderator);
      const r = await store.claim(tenantId, param(req, 'id'), actor, b.assignee ?? b.assignedTo ?? b.moderator ?? actor, b.notes ?? null);
      if (!r) throw notFound(`No moderation item "${param(req, 'id')}"`);
      if (!r.changed) throw new HttpError(ALREADY_DECIDED, `Moderation item ${r.item.id} is ${r.item.status}`, 409, { plugin: 'moderation', details: { status: r.item.status } });
      res.json({ item: r.item });
    };
    const claimed = { 200: { description: 'The item, now in review', schema: z.object({ item: Item }) } };
    route(
      { method: 'post', path: `${base}/queue/:id/claim`, auth: 'tenant', tags, summary: 'Take an item for review', body: decisionBody, bodyExample: { assignee: 'dr.lee', notes: 'looking' }, responses: claimed, errors: ['PARLEY_BAD_REQUEST', notEnabled, decided] },
      (req, res) => claim(req as Req, res),
    );
    // seed 002's "review": take the item with notes (and an assignee).
    route(
      { method: 'post', path: `${base}/queue/:id/review`, auth: 'tenant', tags, summary: 'Take an item for review (seed 002\'s name for claim)', body: decisionBody, responses: claimed, errors: ['PARLEY_BAD_REQUEST', notEnabled, decided] },
      (req, res) => claim(req as Req, res),
    );

    const decisions: Record<string, Decision> = { approve: 'approved', reject: 'rejected', escalate: 'escalated', dismiss: 'dismissed' };
    for (const [verb, to] of Object.entries(decisions)) {
      route(
        {
          method: 'post',
          path: `${base}/queue/:id/${verb}`,
          auth: 'tenant',
          tags,
          summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} an item (audited; an approval continues the held message once)`,
          body: decisionBody,
          bodyExample: { reason: 'reviewed', moderator: 'dr.lee' },
          responses: { 200: { description: `The item, ${to}, and what the decision did`, schema: z.object({ item: Item, effect: z.string().optional() }) } },
          errors: ['PARLEY_BAD_REQUEST', notEnabled, decided],
        },
        async (req, res) => {
          const { tenantId } = settingsOf(req as Req);
          const b = body(decisionBody, req as Req, 'Body must be { "reason"?: string, "notes"?: string, "moderator"?: string, "assignee"?: string }');
          const r = await service.decide(tenantId, param(req, 'id'), to, { actor: actorOf(req as Req, b.moderator), reason: b.reason ?? null, notes: b.notes ?? null, assignee: b.assignee ?? b.assignedTo ?? null });
          if (!r) throw notFound(`No moderation item "${param(req, 'id')}"`);
          if (!r.changed) throw new HttpError(ALREADY_DECIDED, `Moderation item ${r.item.id} is already ${r.item.status}`, 409, { plugin: 'moderation', details: { status: r.item.status } });
          res.json({ item: r.item, effect: r.effect });
        },
      );
    }
  };
}

/**
 * The moderation API, per tenant (tenant key or operator key):
 * `POST /v1/tenants/:tenant/moderation/screen` `{ text, contentType? }` -> `{ safe, flags, action }`;
 * the review queue under `/v1/tenants/:tenant/moderation/queue` (list, one item with context and audit,
 * claim, review, approve, reject, escalate, dismiss, bulk-dismiss); `GET .../moderation/stats`.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { badRequest, HttpError, notFound, param, pluginErrorCode, type AiService, type RouteHelpers } from 'parley';
import { screenText } from './screen.js';
import { modelOpinion } from './model.js';
import type { ModerationMetrics } from './metrics.js';
import type { ModerationService } from './service.js';
import type { Decision, QueueStore } from './store.js';
import { CATEGORIES, type ModerationSettings } from './types.js';

const ALREADY_DECIDED = pluginErrorCode('moderation', 'ALREADY_DECIDED');

const screenBody = z.object({ text: z.string().min(1).max(10_000), contentType: z.string().max(100).optional(), contentId: z.string().max(200).optional() });
const STATUSES = ['pending', 'in_review', 'approved', 'rejected', 'escalated', 'dismissed'] as const;
const listQuery = z.object({
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
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
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

type Req = Parameters<typeof param>[0] & { principal?: { kind: string; keyId?: string }; body?: unknown; query: unknown };

/** Who acts, as the kernel's audit names actors: a stored key by id, else the operator or tenant key; with the moderator's name when given. */
function actorOf(req: Req, moderator?: string): string {
  const key = req.principal?.kind === 'tenant' && req.principal.keyId ? `key:${req.principal.keyId}` : (req.principal?.kind ?? 'unknown');
  return moderator ? `${moderator} (${key})` : key;
}

export function moderationRoutes(deps: { store: QueueStore; service: ModerationService; metrics: ModerationMetrics; ai: AiService; settingsFor(tenantId: string): ModerationSettings | undefined }) {
  const { store, service } = deps;
  return (router: Router, { tenantAuth }: RouteHelpers): void => {
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

    router.post(`${base}/screen`, tenantAuth('tenant'), async (req, res) => {
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
    });

    router.get(`${base}/queue`, tenantAuth('tenant'), async (req, res) => {
      const { tenantId } = settingsOf(req as Req);
      const q = listQuery.safeParse(req.query);
      if (!q.success) throw badRequest(`Query: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (status=pending,in_review&direction=inbound|outbound&category&assignee&minConfidence&maxConfidence&limit=1..200&offset)`);
      const { items, total } = await store.list(tenantId, { ...q.data, ...(q.data.status ? { status: q.data.status } : {}) } as never);
      res.set('cache-control', 'no-store').json({ items, count: items.length, total, limit: q.data.limit, offset: q.data.offset });
    });

    router.get(`${base}/stats`, tenantAuth('tenant'), async (req, res) => {
      const { tenantId, settings } = settingsOf(req as Req);
      const stats = await store.stats(tenantId);
      res.set('cache-control', 'no-store').json({ tenant: tenantId, ...stats, slaMinutes: settings.review.slaMinutes, slaBreached: stats.oldestPendingSeconds !== null && stats.oldestPendingSeconds > settings.review.slaMinutes * 60 });
    });

    router.post(`${base}/queue/bulk-dismiss`, tenantAuth('tenant'), async (req, res) => {
      const { tenantId } = settingsOf(req as Req);
      const b = body(bulkBody, req as Req, 'Body must be { "belowConfidence": 0..1, "reason"?: string }');
      const items = await service.bulkDismiss(tenantId, b.belowConfidence, { actor: actorOf(req as Req, b.moderator), reason: b.reason ?? `bulk dismiss below ${b.belowConfidence}` });
      res.json({ dismissed: items.length, items: items.map((i) => i.id) });
    });

    router.get(`${base}/queue/:id`, tenantAuth('tenant'), async (req, res) => {
      const { tenantId, settings } = settingsOf(req as Req);
      const item = await store.get(tenantId, param(req, 'id'));
      if (!item) throw notFound(`No moderation item "${param(req, 'id')}"`);
      const context = await store.context(item, settings.review.contextMessages);
      res.set('cache-control', 'no-store').json({ item, message: context.text, context: context.previous, audit: await store.audit(tenantId, item.id) });
    });

    const claim = async (req: Req, res: { json(b: unknown): void }) => {
      const { tenantId } = settingsOf(req);
      const b = body(decisionBody, req, 'Body must be { "assignee"?: string, "notes"?: string, "moderator"?: string }');
      const actor = actorOf(req, b.moderator);
      const r = await store.claim(tenantId, param(req, 'id'), actor, b.assignee ?? b.assignedTo ?? b.moderator ?? actor, b.notes ?? null);
      if (!r) throw notFound(`No moderation item "${param(req, 'id')}"`);
      if (!r.changed) throw new HttpError(ALREADY_DECIDED, `Moderation item ${r.item.id} is ${r.item.status}`, 409, { plugin: 'moderation', details: { status: r.item.status } });
      res.json({ item: r.item });
    };
    router.post(`${base}/queue/:id/claim`, tenantAuth('tenant'), (req, res) => claim(req as Req, res));
    // seed 002's "review": take the item with notes (and an assignee).
    router.post(`${base}/queue/:id/review`, tenantAuth('tenant'), (req, res) => claim(req as Req, res));

    const decisions: Record<string, Decision> = { approve: 'approved', reject: 'rejected', escalate: 'escalated', dismiss: 'dismissed' };
    for (const [verb, to] of Object.entries(decisions)) {
      router.post(`${base}/queue/:id/${verb}`, tenantAuth('tenant'), async (req, res) => {
        const { tenantId } = settingsOf(req as Req);
        const b = body(decisionBody, req as Req, 'Body must be { "reason"?: string, "notes"?: string, "moderator"?: string, "assignee"?: string }');
        const r = await service.decide(tenantId, param(req, 'id'), to, { actor: actorOf(req as Req, b.moderator), reason: b.reason ?? null, notes: b.notes ?? null, assignee: b.assignee ?? b.assignedTo ?? null });
        if (!r) throw notFound(`No moderation item "${param(req, 'id')}"`);
        if (!r.changed) throw new HttpError(ALREADY_DECIDED, `Moderation item ${r.item.id} is already ${r.item.status}`, 409, { plugin: 'moderation', details: { status: r.item.status } });
        res.json({ item: r.item, effect: r.effect });
      });
    }
  };
}

/**
 * Admin routes (tenant key for its own tenant, or the operator key):
 * `POST /v1/tenants/:tenant/data-subjects/requests`, `GET .../requests?status&subject&limit&cursor`,
 * `GET .../requests/:id`, `POST .../requests/:id/approve|reject|retry|link`, `GET .../requests/:id/audit`,
 * `GET /v1/tenants/:tenant/retention/preview`, `POST /v1/tenants/:tenant/retention/run`;
 * and the download link itself, `GET /v1/dsar/downloads/:token` (the signed link is the credential).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import type { Request, Router } from 'express';
import { z } from 'zod';
import { badRequest, HttpError, NextPage, notFound, PAGE_LIMIT_MAX, pageOf, pageQuery, param, pluginErrorCode, readCursor, subjectHashes, TimeIdKey, type RouteHelpers } from 'parley';
import type { RequestStore } from './store.js';
import type { DsarMetrics } from './metrics.js';
import { readLink, signLink } from './run.js';
import { CONTACTS_RESOLVER, dueDate, type ContactResolver, type DsarRequest, type DsarSettings } from './types.js';

const SAME_APPROVER = pluginErrorCode('dsar', 'SAME_APPROVER');
const NOT_PENDING = pluginErrorCode('dsar', 'NOT_PENDING');
const NO_CONTACTS = pluginErrorCode('dsar', 'NO_CONTACTS_PLUGIN');
const LINK_EXPIRED = pluginErrorCode('dsar', 'LINK_EXPIRED');
const LINK_USED = pluginErrorCode('dsar', 'LINK_USED');

const createBody = z.object({
  type: z.enum(['export', 'erase']),
  subject: z
    .object({ addresses: z.array(z.string().trim().min(3).max(100)).min(1).max(20).optional(), contactId: z.string().min(1).max(200).optional() })
    .refine((s) => Boolean(s.addresses?.length) !== Boolean(s.contactId), 'give subject.addresses or subject.contactId (one of them)'),
  reason: z.string().max(1000).default(''),
  requestedBy: z.string().min(1).max(200),
});
const decisionBody = z.object({ note: z.string().max(1000).optional() });
const listQuery = pageQuery({ defaultLimit: 100 }).extend({
  status: z.enum(['unverified', 'pending-approval', 'queued', 'running', 'completed', 'rejected', 'failed', 'expired']).optional(),
  subject: z.string().min(3).max(100).optional(),
});
/** An audit trail answered in full before paging: its default page is the largest. */
const auditQuery = pageQuery({ defaultLimit: PAGE_LIMIT_MAX });

const at = z.iso.datetime({ offset: true });
const STATUS = z.enum(['unverified', 'pending-approval', 'queued', 'running', 'completed', 'rejected', 'failed', 'expired']);
const DsarRequestView = z
  .looseObject({
    id: z.string(),
    tenantId: z.string(),
    type: z.enum(['export', 'erase']),
    status: STATUS,
    subjectHashes: z.array(z.string()).describe('The subject\'s addresses, hashed: never stored in clear'),
    contactId: z.string().nullable(),
    reason: z.string(),
    requestedBy: z.string().describe('`key:<id>`, `operator:<hash>`, or `subject`'),
    requesterName: z.string().nullable(),
    language: z.enum(['en', 'es']),
    requestedVia: z.string(),
    channel: z.string().nullable(),
    approvedBy: z.string().nullable(),
    decidedBy: z.string().nullable(),
    decisionNote: z.string().nullable(),
    progress: z.number(),
    result: z.record(z.string(), z.unknown()).nullable(),
    error: z.string().nullable(),
    dueAt: at,
    createdAt: at,
    updatedAt: at,
    completedAt: at.nullable(),
    download: z.object({ expiresAt: at, downloadedAt: at.nullable() }).nullable(),
    overdue: z.boolean().describe('Still open after its legal deadline'),
  })
  .meta({ id: 'DataSubjectRequest' });
const one = z.object({ request: DsarRequestView });
const Retention = z.object({ dryRun: z.boolean(), rows: z.record(z.string(), z.number()).describe('Rows (to be) removed, by table') });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'dsar is not enabled for the tenant, or no such request' } as const;
const notPending = { code: 'PARLEY_DSAR_NOT_PENDING', status: 409, description: 'The request is not in a state this step applies to' } as const;
const tags = ['dsar'];

/** Who is acting: a stored or configured tenant key by id, or the operator key by the start of its hash. */
export function actorOf(req: Request): string {
  const p = req.principal;
  if (p?.kind === 'tenant') return `key:${p.keyId}`;
  return `operator:${p?.keyId ?? 'unknown'}`;
}

export interface RouteDeps {
  store: RequestStore;
  metrics: DsarMetrics;
  settingsFor(tenantId: string): DsarSettings | undefined;
  tryInject<T>(key: string): T | undefined;
  enqueue(requestId: string): Promise<void>;
  secret(): Promise<string>;
  linkBase(): string;
  downloadTtlMs: number;
  retention(tenantId: string, dryRun: boolean): Promise<Record<string, number>>;
}

export function view(r: DsarRequest) {
  return { ...r, overdue: ['unverified', 'pending-approval', 'queued', 'running'].includes(r.status) && r.dueAt.getTime() < Date.now() };
}

export function dsarRoutes(deps: RouteDeps) {
  const { store } = deps;
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Request) => {
      const tenantId = param(req, 'tenant');
      const settings = deps.settingsFor(tenantId);
      if (!settings) throw notFound(`dsar is not enabled for tenant "${tenantId}"`);
      return { tenantId, settings };
    };
    const requestOf = async (req: Request) => {
      const { tenantId, settings } = tenantOf(req);
      const request = await store.get(tenantId, param(req, 'id'));
      if (!request) throw notFound(`No data-subject request "${param(req, 'id')}"`);
      return { tenantId, settings, request };
    };
    const base = '/v1/tenants/:tenant/data-subjects/requests';

    route(
      { method: 'post', path: base, auth: 'tenant', tags, summary: 'Ask for an export or an erasure of a person\'s data', description: 'Queued at once, or `pending-approval` when the tenant requires approval. `subject` names addresses or a contact (with the contacts plugin).', body: createBody, bodyExample: { type: 'export', subject: { addresses: ['+15551234567'] }, reason: 'GDPR art. 15 request by email', requestedBy: 'Sam (support)' }, responses: { 201: { description: 'The request', schema: z.object({ id: z.string(), status: STATUS, dueAt: at, request: DsarRequestView }) } }, errors: ['PARLEY_BAD_REQUEST', { code: 'PARLEY_DSAR_NO_CONTACTS_PLUGIN', status: 400, description: 'subject.contactId without a contacts plugin' }, notEnabled] },
      async (req, res) => {
        const { tenantId, settings } = tenantOf(req);
        const body = createBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest(`Body must be { type: export|erase, subject: { addresses: [..] } | { contactId }, reason?, requestedBy }: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
        let addresses = body.data.subject.addresses;
        const contactId = body.data.subject.contactId ?? null;
        if (contactId) {
          const resolve = deps.tryInject<ContactResolver>(CONTACTS_RESOLVER);
          if (!resolve) throw new HttpError(NO_CONTACTS, 'subject.contactId needs a contacts plugin (none provides "contacts.resolver"); give subject.addresses instead', 400, { plugin: 'dsar' });
          addresses = (await resolve(tenantId, contactId)) ?? undefined;
          if (!addresses?.length) throw notFound(`No contact "${contactId}" with an address`);
        }
        const needsApproval = body.data.type === 'erase' ? settings.erasure.requireApproval : settings.export.requireApproval;
        const request = await store.create({
          tenantId,
          type: body.data.type,
          status: needsApproval ? 'pending-approval' : 'queued',
          addresses: addresses!,
          contactId,
          reason: body.data.reason,
          requestedBy: actorOf(req),
          requesterName: body.data.requestedBy,
          requestedVia: 'api',
          dueAt: dueDate(new Date(), settings),
        });
        deps.metrics.created.inc({ tenant: tenantId, type: request.type, via: 'api' });
        if (request.status === 'queued') await deps.enqueue(request.id);
        res.status(201).json({ id: request.id, status: request.status, dueAt: request.dueAt, request: view(request) });
      },
    );

    route(
      { method: 'get', path: base, auth: 'tenant', tags, summary: 'Requests, filtered by status or subject address', query: listQuery, responses: { 200: { description: 'The requests', schema: z.object({ requests: z.array(DsarRequestView), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const { tenantId } = tenantOf(req);
        const q = listQuery.safeParse(req.query);
        if (!q.success) throw badRequest('Query must be ?status=<status>&subject=<address>&limit=1..500&cursor=<from next>');
        const hashes = q.data.subject ? subjectHashes({ tenantId, addresses: [q.data.subject] }) : undefined;
        const after = q.data.cursor ? readCursor('dsar-requests', q.data.cursor, TimeIdKey) : null;
        const rows = await store.list(tenantId, { status: q.data.status, subjectHashes: hashes, limit: q.data.limit + 1, after });
        const { items, next } = pageOf(req, 'dsar-requests', rows, q.data.limit, (r) => [r.sortAt, r.request.id]);
        res.set('cache-control', 'no-store').json({ requests: items.map((r) => view(r.request)), next });
      },
    );

    route(
      { method: 'get', path: `${base}/:id`, auth: 'tenant', tags, summary: 'One request', responses: { 200: { description: 'The request', schema: one } }, errors: [notEnabled] },
      async (req, res) => {
        const { request } = await requestOf(req);
        res.set('cache-control', 'no-store').json({ request: view(request) });
      },
    );

    route(
      { method: 'get', path: `${base}/:id/audit`, auth: 'tenant', tags, summary: 'The audit trail of a request', description: 'Oldest first.', query: auditQuery, responses: { 200: { description: 'Its audit rows', schema: z.object({ audit: z.array(z.looseObject({})), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const { tenantId, request } = await requestOf(req);
        const q = auditQuery.safeParse(req.query);
        if (!q.success) throw badRequest('Query must be ?limit=1..500&cursor=<from next>');
        const afterSeq = q.data.cursor ? readCursor('dsar-audit', q.data.cursor, z.tuple([z.string().regex(/^\d{1,18}$/)]))[0] : null;
        const rows = await store.auditTrail(tenantId, request.id, { limit: q.data.limit + 1, afterSeq });
        const { items, next } = pageOf(req, 'dsar-audit', rows, q.data.limit, (r) => [r.seq]);
        res.set('cache-control', 'no-store').json({ audit: items, next });
      },
    );

    route(
      { method: 'post', path: `${base}/:id/approve`, auth: 'tenant', tags, summary: 'Approve a pending request (an erasure: with another key than the requester\'s)', body: decisionBody, responses: { 200: { description: 'The request, queued', schema: one } }, errors: ['PARLEY_BAD_REQUEST', { code: 'PARLEY_DSAR_SAME_APPROVER', status: 403, description: 'The key that asked for the erasure cannot approve it' }, notEnabled, notPending] },
      async (req, res) => {
        const { settings, request } = await requestOf(req);
        const body = decisionBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest('Body must be { "note"?: string }');
        const actor = actorOf(req);
        const distinct = request.type === 'erase' ? settings.erasure.distinctApprover : false;
        if (distinct && actor === request.requestedBy) throw new HttpError(SAME_APPROVER, 'An erasure must be approved with a different key than the one that requested it', 403, { plugin: 'dsar' });
        const next = await store.transition(request.id, ['pending-approval'], 'queued', actor, 'approved', { approvedBy: actor, decidedBy: actor, note: body.data.note ?? null });
        if (!next) throw new HttpError(NOT_PENDING, `Request ${request.id} is ${request.status}, not pending approval`, 409, { plugin: 'dsar', details: { status: request.status } });
        await deps.enqueue(next.id);
        res.json({ request: view(next) });
      },
    );

    route(
      { method: 'post', path: `${base}/:id/reject`, auth: 'tenant', tags, summary: 'Reject a pending or unverified request', body: decisionBody, responses: { 200: { description: 'The request, rejected', schema: one } }, errors: ['PARLEY_BAD_REQUEST', notEnabled, notPending] },
      async (req, res) => {
        const { request } = await requestOf(req);
        const body = decisionBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest('Body must be { "note"?: string }');
        const actor = actorOf(req);
        const next = await store.transition(request.id, ['pending-approval', 'unverified'], 'rejected', actor, 'rejected', { decidedBy: actor, note: body.data.note ?? null });
        if (!next) throw new HttpError(NOT_PENDING, `Request ${request.id} is ${request.status}, not pending`, 409, { plugin: 'dsar', details: { status: request.status } });
        res.json({ request: view(next) });
      },
    );

    route(
      { method: 'post', path: `${base}/:id/retry`, auth: 'tenant', tags, summary: 'Run a failed request again', responses: { 200: { description: 'The request, queued', schema: one } }, errors: [notEnabled, notPending] },
      async (req, res) => {
        const { request } = await requestOf(req);
        const next = await store.transition(request.id, ['failed'], 'queued', actorOf(req), 'retried');
        if (!next) throw new HttpError(NOT_PENDING, `Request ${request.id} is ${request.status}, not failed`, 409, { plugin: 'dsar', details: { status: request.status } });
        await deps.enqueue(next.id);
        res.json({ request: view(next) });
      },
    );

    /** A new one-time link for a finished export (the previous link stops working). */
    route(
      { method: 'post', path: `${base}/:id/link`, auth: 'tenant', tags, summary: 'A new one-time download link for a finished export (the previous one stops working)', responses: { 201: { description: 'The link', schema: z.object({ url: z.string(), expiresAt: at }) } }, errors: [notEnabled, { ...notPending, description: 'No export to download' }] },
      async (req, res) => {
        const { request } = await requestOf(req);
        const nonce = randomBytes(12).toString('base64url');
        const expiresAt = new Date(Date.now() + deps.downloadTtlMs);
        if (!(await store.newLink(request.id, nonce, expiresAt))) throw new HttpError(NOT_PENDING, `Request ${request.id} has no export to download (status ${request.status})`, 409, { plugin: 'dsar' });
        await store.note(request, actorOf(req), 'link', { expiresAt: expiresAt.toISOString() });
        res.status(201).json({ url: `${deps.linkBase()}/v1/dsar/downloads/${signLink(await deps.secret(), request.id, nonce, expiresAt)}`, expiresAt });
      },
    );

    route(
      { method: 'get', path: '/v1/dsar/downloads/:token', auth: 'none', tags, summary: 'Download an export, once (the signed link is the credential)', responses: { 200: { description: 'The export, as a JSON attachment', contentType: 'application/json' } }, errors: [{ code: 'PARLEY_NOT_FOUND', status: 404, description: 'No such download' }, { code: 'PARLEY_DSAR_LINK_EXPIRED', status: 410, description: 'The link expired' }, { code: 'PARLEY_DSAR_LINK_USED', status: 410, description: 'The link was already used' }] },
      async (req, res) => {
        const link = readLink(await deps.secret(), param(req, 'token'));
        if (link === 'invalid') {
          deps.metrics.downloads.inc({ outcome: 'invalid' });
          throw notFound('No such download');
        }
        if (link === 'expired') {
          deps.metrics.downloads.inc({ outcome: 'expired' });
          throw new HttpError(LINK_EXPIRED, 'This download link has expired; ask for a new one', 410, { plugin: 'dsar' });
        }
        const taken = await store.takeDownload(link.id, link.nonce);
        if (taken === null) throw notFound('No such download');
        if (taken === 'expired' || taken === 'used') {
          deps.metrics.downloads.inc({ outcome: taken });
          throw new HttpError(taken === 'used' ? LINK_USED : LINK_EXPIRED, taken === 'used' ? 'This download link was already used' : 'This download link has expired; ask for a new one', 410, { plugin: 'dsar' });
        }
        deps.metrics.downloads.inc({ outcome: 'served' });
        res.set({ 'content-type': 'application/json; charset=utf-8', 'content-disposition': `attachment; filename="data-export-${link.id}.json"`, 'cache-control': 'no-store' });
        const file = createReadStream(taken.exportPath);
        file.on('error', () => res.destroy());
        file.pipe(res);
        // Served once: the file goes when the response finished.
        res.on('finish', () => rmSync(taken.exportPath, { force: true }));
      },
    );

    route(
      { method: 'get', path: '/v1/tenants/:tenant/retention/preview', auth: 'tenant', tags, summary: 'What the retention policy would delete now', responses: { 200: { description: 'Rows by table', schema: Retention } }, errors: [notEnabled] },
      async (req, res) => {
        const { tenantId } = tenantOf(req);
        res.set('cache-control', 'no-store').json({ dryRun: true, rows: await deps.retention(tenantId, true) });
      },
    );
    route(
      { method: 'post', path: '/v1/tenants/:tenant/retention/run', auth: 'tenant', tags, summary: 'Apply the retention policy now', responses: { 200: { description: 'Rows deleted by table', schema: Retention } }, errors: [notEnabled] },
      async (req, res) => {
        const { tenantId } = tenantOf(req);
        res.json({ dryRun: false, rows: await deps.retention(tenantId, false) });
      },
    );
  };
}

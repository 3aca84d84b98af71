/**
 * The billing admin API (tenant key: its own tenant; operator key: every tenant):
 * - `GET /v1/tenants/:tenant/billing/entitlements?limit&cursor` (`after` the old way): people with a billing record and their decision now.
 * - `GET /v1/tenants/:tenant/billing/entitlements/:address`: one person, with the history of changes.
 * - `PUT /v1/tenants/:tenant/billing/entitlements/:address/override` `{ override: grant|revoke|null, until?, reason }`: audited.
 * - `GET /v1/tenants/:tenant/billing/meter-reports?limit&status&cursor`: the tenant's usage reported to Stripe (and expired unbilled).
 * - `POST /v1/billing/usage/report`, `POST /v1/billing/usage/reconcile` (operator): run now.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { badRequest, consentAddress, hashAddress, MicrosKey, NextPage, notFound, pageOf, pageQuery, param, readCursor, type RouteHelpers } from 'parley';
import type { MeterReporter } from './meters.js';
import type { BillingStore, Entitlement } from './store.js';
import { decide, type SubscriptionTenant } from './subscriptions.js';

const listQuery = pageQuery({ defaultLimit: 100 }).extend({
  after: z.string().max(200).optional().describe('Old way of paging (use `cursor`): only people whose address sorts after this one; ignored with `cursor`'),
});
const EntitlementKey = z.tuple([z.string().min(1).max(200)]);
const ReportKey = z.tuple([MicrosKey, z.string().min(1).max(200), z.number().int().min(0).max(2_147_483_647)]);
const overrideBody = z.object({
  override: z.enum(['grant', 'revoke']).nullable(),
  until: z.coerce.date().nullable().optional(),
  reason: z.string().trim().min(1).max(500),
});

const ts = z.iso.datetime({ offset: true });
const Entitlement = z
  .looseObject({
    tenantId: z.string(),
    address: z.string(),
    channel: z.string(),
    replyTo: z.string(),
    firstSeenAt: ts,
    customerId: z.string().nullable(),
    subscriptionId: z.string().nullable(),
    subscriptionStatus: z.string().nullable(),
    priceId: z.string().nullable(),
    currentPeriodEnd: ts.nullable(),
    syncedAt: ts.nullable(),
    override: z.enum(['grant', 'revoke']).nullable(),
    overrideUntil: ts.nullable(),
    overrideReason: z.string().nullable(),
    lastLinkAt: ts.nullable(),
    lastSessionId: z.string().nullable(),
    updatedAt: ts,
    freeMessagesUsed: z.number().int(),
    decision: z.unknown().describe('What the next message gets now (allowed, the free allowance, a payment link), null without subscriptions'),
  })
  .meta({ id: 'BillingEntitlement', description: "A person's billing record and what it decides now" });
const reportsQuery = pageQuery({ defaultLimit: 100 }).extend({
  status: z.enum(['pending', 'sent', 'expired']).optional().describe('Only reports in this status (`expired`: past Stripe\'s 35-day window, never billed)'),
});
const MeterReport = z
  .object({
    meter: z.string(),
    bucketStart: ts,
    kind: z.enum(['bucket', 'adjustment']).describe('`adjustment`: ledger rows recorded after the bucket was reported'),
    value: z.number(),
    identifier: z.string().describe("The meter event's identifier (and idempotency key)"),
    status: z.enum(['pending', 'sent', 'expired']),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    createdAt: ts,
    sentAt: ts.nullable(),
  })
  .meta({ id: 'BillingMeterReport', description: 'One meter event of tenant usage billing' });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'billing is not enabled for the tenant, or no billing record for the address' } as const;
const tags = ['billing'];

/** Who acted, as the kernel's audit names actors: a stored key by id, else the operator or tenant key. */
function actorOf(req: { principal?: { kind: string; keyId?: string } }): string {
  return req.principal?.kind === 'tenant' && req.principal.keyId ? `key:${req.principal.keyId}` : (req.principal?.kind ?? 'unknown');
}

export function billingRoutes(deps: { store: BillingStore; reporter: MeterReporter; subscriptions: (tenantId: string) => SubscriptionTenant | undefined; enabled: (tenantId: string) => boolean }) {
  const { store } = deps;
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Parameters<typeof param>[0]) => {
      const tenantId = param(req, 'tenant');
      if (!deps.enabled(tenantId)) throw notFound(`billing is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    const view = async (e: Entitlement) => {
      const state = deps.subscriptions(e.tenantId);
      const used = await store.freeMessagesUsed(e.tenantId, e.address);
      return { ...e, freeMessagesUsed: used, decision: state ? decide(e, used, state.settings, new Date()) : null };
    };

    const base = '/v1/tenants/:tenant/billing';
    route(
      { method: 'get', path: `${base}/entitlements`, auth: 'tenant', tags, summary: 'People with a billing record, and their decision now', description: 'Ordered by address; `next` links to the next page (`after`, the last address of the previous page, is the old way).', query: listQuery, responses: { 200: { description: 'A page of entitlements', schema: z.object({ entitlements: z.array(Entitlement), count: z.number().int(), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const q = listQuery.safeParse(req.query);
        if (!q.success) throw badRequest('Query must be ?limit=1..500&cursor=<from next> (or the old after=<address>)');
        const after = q.data.cursor ? readCursor('billing-entitlements', q.data.cursor, EntitlementKey)[0] : q.data.after;
        const { items, next } = pageOf(req, 'billing-entitlements', await store.list(tenantId, q.data.limit + 1, after), q.data.limit, (e) => [e.address]);
        res.set('cache-control', 'no-store').json({ entitlements: await Promise.all(items.map(view)), count: items.length, next });
      },
    );

    route(
      { method: 'get', path: `${base}/entitlements/:address`, auth: 'tenant', tags, summary: 'One person, with the history of changes', responses: { 200: { description: 'The entitlement', schema: z.object({ entitlement: Entitlement, history: z.array(z.looseObject({})) }) } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const address = consentAddress(param(req, 'address'));
        const e = await store.get(tenantId, address);
        if (!e) throw notFound('No billing record for this address');
        res.set('cache-control', 'no-store').json({ entitlement: await view(e), history: await store.history(tenantId, address) });
      },
    );

    route(
      { method: 'put', path: `${base}/entitlements/:address/override`, auth: 'tenant', tags, summary: 'Grant or revoke access by hand, until a date or for good (null clears); audited', body: overrideBody, bodyExample: { override: 'grant', until: '2027-01-31', reason: 'hardship waiver' }, responses: { 200: { description: 'The entitlement', schema: z.object({ entitlement: Entitlement }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const body = overrideBody.safeParse(req.body ?? {});
        if (!body.success) throw badRequest(`Body must be { "override": "grant" | "revoke" | null, "until"?: ISO date, "reason": string }: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
        const address = consentAddress(param(req, 'address'));
        const e = await store.override(tenantId, address, { override: body.data.override, until: body.data.until ?? null, reason: body.data.reason }, actorOf(req as never), hashAddress(address));
        if (!e) throw notFound('No billing record for this address (it is made on their first message)');
        res.json({ entitlement: await view(e) });
      },
    );

    route(
      { method: 'get', path: `${base}/meter-reports`, auth: 'tenant', tags, summary: "The tenant's usage reported to Stripe Billing Meters: buckets, adjustments, and reports that expired unbilled", query: reportsQuery, responses: { 200: { description: 'The reports, newest bucket first', schema: z.object({ reports: z.array(MeterReport), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req);
        const q = reportsQuery.safeParse(req.query);
        if (!q.success) throw badRequest('Query must be ?limit=1..500&status=pending|sent|expired&cursor=<from next>');
        const after = q.data.cursor ? readCursor('meter-reports', q.data.cursor, ReportKey) : null;
        const { rows } = await store.meterReports(tenantId, q.data.limit + 1, q.data.status, after);
        const { items, next } = pageOf(req, 'meter-reports', rows, q.data.limit, (r) => [r.sortAt, r.meter, r.seq]);
        res.set('cache-control', 'no-store').json({ reports: items.map(({ sortAt: _, seq: __, ...r }) => r), next });
      },
    );

    route(
      { method: 'post', path: '/v1/billing/usage/report', auth: 'operator', tags, summary: 'Report unreported usage to Stripe now', responses: { 200: { description: 'What was reported', schema: z.looseObject({}) } } },
      async (_req, res) => {
        res.json(await deps.reporter.report());
      },
    );
    route(
      { method: 'post', path: '/v1/billing/usage/reconcile', auth: 'operator', tags, summary: 'Compare reported usage with Stripe now (alerts on a difference)', responses: { 200: { description: 'One result per tenant and meter', schema: z.object({ results: z.array(z.unknown()) }) } } },
      async (_req, res) => {
        res.json({ results: await deps.reporter.reconcile() });
      },
    );
  };
}

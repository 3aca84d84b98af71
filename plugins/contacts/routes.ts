/**
 * The contacts API, per tenant (tenant key or operator key), under `/v1/tenants/:tenant/contacts`:
 * list and search (`?tag=a,b&anyTag=&field.<name>=<value>&inactiveDays=&sinceLastInboundDays=&channel=&q=&limit=&offset=`),
 * create, get (with consent per address), update (PATCH), delete, and `POST .../import` (`{ csv, dryRun }`).
 */
import type { Router } from 'express';
import { z } from 'zod';
import { HttpError, badRequest, notFound, param, pluginErrorCode, type RouteHelpers } from 'parley';
import { validLanguage, validZone } from './csv.js';
import type { ContactsDirectory } from './directory.js';
import { AddressTaken } from './store.js';

const ADDRESS_TAKEN = pluginErrorCode('contacts', 'ADDRESS_TAKEN');

const address = z.object({ channel: z.string().min(1).max(64), address: z.string().min(1).max(200) });
const contactBody = z.object({
  name: z.string().max(200).nullable().optional(),
  timezone: z.string().refine(validZone, 'not an IANA time zone (e.g. America/New_York)').nullable().optional(),
  language: z.string().refine(validLanguage, 'not a BCP 47 tag (e.g. es, en-US)').nullable().optional(),
  tags: z.array(z.string().min(1).max(64)).max(100).optional(),
  fields: z.record(z.string().min(1).max(64), z.union([z.string().max(2000), z.number(), z.boolean(), z.null()])).optional(),
  addresses: z.array(address).max(20).optional(),
});
const patchBody = contactBody.extend({ removeAddresses: z.array(address).max(20).optional() });
const importBody = z.object({ csv: z.string().min(1).max(20_000_000), dryRun: z.boolean().default(false) });
const listQuery = z.object({
  tag: z.string().optional(),
  anyTag: z.string().optional(),
  inactiveDays: z.coerce.number().int().min(0).max(3650).optional(),
  sinceLastInboundDays: z.coerce.number().int().min(0).max(3650).optional(),
  channel: z.string().max(64).optional(),
  q: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

type Req = Parameters<typeof param>[0] & { body?: unknown; query: Record<string, unknown> };

const parse = <T extends z.ZodType>(schema: T, value: unknown, hint: string): z.output<T> => {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw badRequest(`${hint}: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
};

const taken = (error: unknown): never => {
  if (error instanceof AddressTaken) throw new HttpError(ADDRESS_TAKEN, error.message, 409, { plugin: 'contacts', details: { contactId: error.contactId, channel: error.address.channel } });
  throw error;
};

const list = (s: string | undefined) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

export function contactsRoutes(directory: ContactsDirectory) {
  return (router: Router, { tenantAuth }: RouteHelpers): void => {
    const tenantOf = (req: Req) => {
      const tenantId = param(req, 'tenant');
      if (!directory.enabled(tenantId)) throw notFound(`contacts is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    const base = '/v1/tenants/:tenant/contacts';
    const view = async (c: NonNullable<Awaited<ReturnType<ContactsDirectory['get']>>>) => ({ ...c, effectiveTimezone: directory.timezoneOf(c), effectiveLanguage: directory.languageOf(c), consent: await directory.consentOf(c) });

    router.get(base, tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req as Req);
      const q = parse(listQuery, req.query, 'Query (tag=a,b&anyTag&field.<name>=<value>&inactiveDays&sinceLastInboundDays&channel&q&limit=1..500&offset)');
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) if (k.startsWith('field.') && typeof v === 'string') fields[k.slice(6)] = v;
      const tags = list(q.tag);
      const anyTags = list(q.anyTag);
      const { contacts, total } = await directory.search(tenantId, {
        ...(tags ? { tags } : {}),
        ...(anyTags ? { anyTags } : {}),
        fields,
        ...(q.inactiveDays !== undefined ? { inactiveDays: q.inactiveDays } : {}),
        ...(q.sinceLastInboundDays !== undefined ? { sinceLastInboundDays: q.sinceLastInboundDays } : {}),
        ...(q.channel ? { channel: q.channel } : {}),
        ...(q.q ? { q: q.q } : {}),
        limit: q.limit,
        offset: q.offset,
      });
      res.set('cache-control', 'no-store').json({ contacts, count: contacts.length, total, limit: q.limit, offset: q.offset });
    });

    router.post(base, tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req as Req);
      const b = parse(contactBody, (req as Req).body, 'Body must be { name?, addresses?: [{ channel, address }], timezone?, language?, tags?, fields? }');
      const contact = await directory.create(tenantId, cleanFields(b)).catch(taken);
      res.status(201).json({ contact: await view(contact) });
    });

    router.post(`${base}/import`, tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req as Req);
      const b = parse(importBody, (req as Req).body, 'Body must be { "csv": string, "dryRun"?: boolean }');
      const report = await directory.import(tenantId, b.csv, b.dryRun).catch((error: Error) => {
        throw badRequest(`CSV: ${error.message}`);
      });
      res.status(report.dryRun ? 200 : 201).json(report);
    });

    router.get(`${base}/:id`, tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req as Req);
      const contact = await directory.get(tenantId, param(req, 'id'));
      if (!contact) throw notFound(`No contact "${param(req, 'id')}"`);
      res.set('cache-control', 'no-store').json({ contact: await view(contact) });
    });

    router.patch(`${base}/:id`, tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req as Req);
      const b = parse(patchBody, (req as Req).body, 'Body must be { name?, addresses?, removeAddresses?, timezone?, language?, tags?, fields? }');
      const contact = await directory.update(tenantId, param(req, 'id'), cleanFields(b)).catch(taken);
      if (!contact) throw notFound(`No contact "${param(req, 'id')}"`);
      res.json({ contact: await view(contact) });
    });

    router.delete(`${base}/:id`, tenantAuth('tenant'), async (req, res) => {
      const tenantId = tenantOf(req as Req);
      if (!(await directory.remove(tenantId, param(req, 'id')))) throw notFound(`No contact "${param(req, 'id')}"`);
      res.status(204).end();
    });
  };
}

/** zod's optional keys as the store wants them (absent, not undefined). */
function cleanFields<T extends Record<string, unknown>>(b: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) as never;
}

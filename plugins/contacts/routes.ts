/**
 * The contacts API, per tenant (tenant key or operator key), under `/v1/tenants/:tenant/contacts`:
 * list and search (`?tag=a,b&anyTag=&field.<name>=<value>&inactiveDays=&sinceLastInboundDays=&channel=&q=&limit=&cursor=`, `next` links to the next page),
 * create, get (with consent per address), update (PATCH), delete, `POST .../:id/merge` (`{ from }`) and
 * `POST .../import` (`{ csv, dryRun }`).
 */
import type { Router } from 'express';
import { z } from 'zod';
import { HttpError, NextPage, TimeIdKey, badRequest, notFound, pageOf, pageQuery, param, pluginErrorCode, readCursor, type RouteHelpers } from 'parley';
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
const mergeBody = z.object({ from: z.uuid().describe('The contact folded into this one; it is deleted') });
const importBody = z.object({ csv: z.string().min(1).max(20_000_000), dryRun: z.boolean().default(false) });
const listQuery = pageQuery({ defaultLimit: 100 }).extend({
  tag: z.string().optional(),
  anyTag: z.string().optional(),
  inactiveDays: z.coerce.number().int().min(0).max(3650).optional(),
  sinceLastInboundDays: z.coerce.number().int().min(0).max(3650).optional(),
  channel: z.string().max(64).optional(),
  q: z.string().max(200).optional(),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0).describe('Old way of paging (use `cursor`): skip this many matches; not with `cursor`'),
});

const at = z.iso.datetime({ offset: true });
const Contact = z
  .looseObject({
    id: z.string(),
    tenantId: z.string(),
    name: z.string().nullable(),
    timezone: z.string().nullable().describe("IANA zone, or null: the tenant's"),
    language: z.string().nullable().describe("BCP 47 tag, or null: the tenant's locale"),
    tags: z.array(z.string()),
    fields: z.record(z.string(), z.unknown()),
    source: z.enum(['conversation', 'api', 'import']),
    addresses: z.array(address),
    lastInboundAt: at.nullable(),
    lastOutboundAt: at.nullable(),
    createdAt: at,
    updatedAt: at,
  })
  .meta({ id: 'Contact' });
const ContactView = Contact.extend({
  effectiveTimezone: z.string(),
  effectiveLanguage: z.string(),
  consent: z.array(address.extend({ optedOut: z.boolean() })).describe('Consent per address, from the kernel'),
}).meta({ id: 'ContactWithConsent' });
const ImportReport = z.object({
  dryRun: z.boolean(),
  rows: z.number().int(),
  created: z.number().int(),
  updated: z.number().int(),
  failed: z.number().int(),
  errors: z.array(z.object({ line: z.number().int(), errors: z.array(z.string()) })).describe('One entry per refused row'),
});
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'contacts is not enabled for the tenant, or no such contact' } as const;
const addressTaken = { code: 'PARLEY_CONTACTS_ADDRESS_TAKEN', status: 409, description: 'Another contact of the tenant has that address' } as const;
const tags = ['contacts'];

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
  return (_router: Router, { route }: RouteHelpers): void => {
    const tenantOf = (req: Req) => {
      const tenantId = param(req, 'tenant');
      if (!directory.enabled(tenantId)) throw notFound(`contacts is not enabled for tenant "${tenantId}"`);
      return tenantId;
    };
    const base = '/v1/tenants/:tenant/contacts';
    const view = async (c: NonNullable<Awaited<ReturnType<ContactsDirectory['get']>>>) => ({ ...c, effectiveTimezone: directory.timezoneOf(c), effectiveLanguage: directory.languageOf(c), consent: await directory.consentOf(c) });

    route(
      { method: 'get', path: base, auth: 'tenant', tags, summary: 'List and search contacts', description: 'Filters combine with AND: `tag=a,b` (every tag), `anyTag=a,b`, `field.<name>=<value>` (a custom field equals), `inactiveDays`, `sinceLastInboundDays`, `channel`, `q` (name or address). Oldest first, paged with `limit` and `cursor` (`next`; `offset` is the old way); `total` counts every match.', query: listQuery, responses: { 200: { description: 'A page of contacts', schema: z.object({ contacts: z.array(Contact), count: z.number().int(), total: z.number().int(), limit: z.number().int(), offset: z.number().int(), next: NextPage }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const q = parse(listQuery, req.query, 'Query (tag=a,b&anyTag&field.<name>=<value>&inactiveDays&sinceLastInboundDays&channel&q&limit=1..500&cursor)');
        if (q.cursor && q.offset) throw badRequest('Page with cursor or with offset (the old way), not both');
        const after = q.cursor ? readCursor('contacts', q.cursor, TimeIdKey) : null;
        const fields: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) if (k.startsWith('field.') && typeof v === 'string') fields[k.slice(6)] = v;
        const tags = list(q.tag);
        const anyTags = list(q.anyTag);
        const { contacts, total, sortAts } = await directory.search(tenantId, {
          ...(tags ? { tags } : {}),
          ...(anyTags ? { anyTags } : {}),
          fields,
          ...(q.inactiveDays !== undefined ? { inactiveDays: q.inactiveDays } : {}),
          ...(q.sinceLastInboundDays !== undefined ? { sinceLastInboundDays: q.sinceLastInboundDays } : {}),
          ...(q.channel ? { channel: q.channel } : {}),
          ...(q.q ? { q: q.q } : {}),
          limit: q.limit + 1,
          offset: q.offset,
          after,
        });
        const { items, next } = pageOf(req, 'contacts', contacts.map((c, i) => ({ c, sortAt: sortAts[i]! })), q.limit, (r) => [r.sortAt, r.c.id]);
        res.set('cache-control', 'no-store').json({ contacts: items.map((r) => r.c), count: items.length, total, limit: q.limit, offset: q.offset, next });
      },
    );

    route(
      { method: 'post', path: base, auth: 'tenant', tags, summary: 'Create a contact', body: contactBody, bodyExample: { name: 'Ana Ruiz', addresses: [{ channel: 'twilio-sms', address: '+15551230000' }], language: 'es', tags: ['patients'] }, responses: { 201: { description: 'The contact', schema: z.object({ contact: ContactView }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled, addressTaken] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const b = parse(contactBody, (req as Req).body, 'Body must be { name?, addresses?: [{ channel, address }], timezone?, language?, tags?, fields? }');
        const contact = await directory.create(tenantId, cleanFields(b)).catch(taken);
        res.status(201).json({ contact: await view(contact) });
      },
    );

    route(
      { method: 'post', path: `${base}/import`, auth: 'tenant', tags, summary: 'Import contacts from CSV, or check a file with dryRun', body: importBody, bodyExample: { csv: 'name,phone,tags\nAna Ruiz,+15551230000,patients', dryRun: true }, responses: { 200: { description: 'Dry run: what would happen', schema: ImportReport }, 201: { description: 'Imported', schema: ImportReport } }, errors: ['PARLEY_BAD_REQUEST', notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const b = parse(importBody, (req as Req).body, 'Body must be { "csv": string, "dryRun"?: boolean }');
        const report = await directory.import(tenantId, b.csv, b.dryRun).catch((error: Error) => {
          throw badRequest(`CSV: ${error.message}`);
        });
        res.status(report.dryRun ? 200 : 201).json(report);
      },
    );

    route(
      { method: 'get', path: `${base}/:id`, auth: 'tenant', tags, summary: 'One contact, with consent per address', responses: { 200: { description: 'The contact', schema: z.object({ contact: ContactView }) } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const contact = await directory.get(tenantId, param(req, 'id'));
        if (!contact) throw notFound(`No contact "${param(req, 'id')}"`);
        res.set('cache-control', 'no-store').json({ contact: await view(contact) });
      },
    );

    route(
      { method: 'patch', path: `${base}/:id`, auth: 'tenant', tags, summary: 'Update a contact (addresses are added; removeAddresses removes)', body: patchBody, bodyExample: { tags: ['patients', 'diabetes'] }, responses: { 200: { description: 'The contact', schema: z.object({ contact: ContactView }) } }, errors: ['PARLEY_BAD_REQUEST', notEnabled, addressTaken] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const b = parse(patchBody, (req as Req).body, 'Body must be { name?, addresses?, removeAddresses?, timezone?, language?, tags?, fields? }');
        const contact = await directory.update(tenantId, param(req, 'id'), cleanFields(b)).catch(taken);
        if (!contact) throw notFound(`No contact "${param(req, 'id')}"`);
        res.json({ contact: await view(contact) });
      },
    );

    route(
      {
        method: 'post',
        path: `${base}/:id/merge`,
        auth: 'tenant',
        tags,
        summary: 'Merge another contact into this one (one person on SMS and WhatsApp)',
        description: "The other contact's addresses move here; tags and fields are the union (this contact's field value wins); name, time zone and language are this contact's unless it has none; the other contact is deleted and the merge is in the audit trail. Reminders of the other contact follow.",
        body: mergeBody,
        bodyExample: { from: '6f1c2a4e-8b0d-4c1e-9a55-0d3c7e2b9f10' },
        responses: { 200: { description: 'The merged contact', schema: z.object({ contact: ContactView, merged: z.object({ from: z.string(), movedAddresses: z.number().int() }) }) } },
        errors: ['PARLEY_BAD_REQUEST', notEnabled],
      },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        const b = parse(mergeBody, (req as Req).body, 'Body must be { "from": <contact id> }');
        const into = param(req, 'id');
        if (b.from.toLowerCase() === into.toLowerCase()) throw badRequest('"from" is this contact: name another contact to merge into it');
        const principal = (req as { principal?: { kind: string; keyId?: string } }).principal;
        const actor = principal?.kind === 'tenant' ? `key:${principal.keyId ?? 'tenant'}` : 'operator';
        const merged = await directory.merge(tenantId, into, b.from, actor);
        if (!merged) throw notFound(`No contact "${(await directory.get(tenantId, into)) ? b.from : into}"`);
        res.json({ contact: await view(merged.contact), merged: { from: b.from, movedAddresses: merged.movedAddresses } });
      },
    );

    route(
      { method: 'delete', path: `${base}/:id`, auth: 'tenant', tags, summary: 'Delete a contact', responses: { 204: { description: 'Deleted' } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = tenantOf(req as Req);
        if (!(await directory.remove(tenantId, param(req, 'id')))) throw notFound(`No contact "${param(req, 'id')}"`);
        res.status(204).end();
      },
    );
  };
}

/** zod's optional keys as the store wants them (absent, not undefined). */
function cleanFields<T extends Record<string, unknown>>(b: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) as never;
}

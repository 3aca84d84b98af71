/**
 * The admin API as a published contract (issue #18): `/v1/openapi.json` is built from the route
 * contracts, and this file keeps it honest.
 *
 * - No drift: every route express registered (the kernel's and every built-in plugin's, plus a
 *   third-party test plugin) is described in the document, except those in UNDESCRIBED below, an
 *   explicit list that may only shrink; every documented route exists. The recorded registrations are
 *   cross-checked against a walk of express's own router stack, so a route registered some other way
 *   is caught too.
 * - The document is structurally valid OpenAPI 3.1 (a validator of our own: required fields, every
 *   `$ref` resolves, every path parameter declared, operationIds unique), and Redocly's `recommended`
 *   ruleset (`@redocly/openapi-core`, the engine of `redocly lint`) finds nothing in it but the
 *   exemptions listed in LINT_EXEMPT, each with its reason.
 * - Every list route takes `cursor` and `limit` and answers with `next` (core/http/paging.ts); a GET
 *   answering with an array that is not paged is in NOT_LISTS, with its reason.
 * - Contract: every documented kernel and http-channel route is called against this gateway and its
 *   answer is checked against the documented status and zod schema (errors against the catalogue's
 *   codes for that status).
 * - A deprecated route answers with `Deprecation`, `Sunset` and `Link`.
 * - `/docs` is a self-contained page that renders the document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { startTestGateway, type TestGateway } from './harness.js';
import { builtinPlugins } from '../config/builtins.js';
import { ErrorBody, routeKey, type RouteContract } from '../core/http/contract.js';
import { openApiPath } from '../core/http/openapi.js';
import { ParleyApiError, ParleyClient, Responses } from 'parley/client';
import { existsSync } from 'node:fs';
import { DOCS_PAGE } from '../core/http/docs.js';
import { createConfig, lintFromString } from '@redocly/openapi-core';

const OPERATOR = 'op-openapi-key';
const ACME = 'acme-openapi-key';

/**
 * Registered routes not described yet. Describing one (helpers.route) makes this test fail until it is
 * removed here: the list only shrinks.
 */
const UNDESCRIBED: string[] = [
  // Every route is described. A plugin route registered with router.get(...) lands here until it is.
];

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
  tags?: { name: string }[];
};
type Operation = {
  operationId: string;
  summary: string;
  parameters?: { name: string; in: string; required?: boolean; schema: unknown }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }>; 'x-parley-error-codes'?: string[] }>;
  security?: Record<string, string[]>[];
  tags?: string[];
  deprecated?: boolean;
};

let gw: TestGateway;
let doc: Doc;

beforeAll(async () => {
  // Every JSON answer of a described route is checked against its contract (see core/http/app.ts).
  process.env.PARLEY_CHECK_RESPONSES = '1';
  gw = await startTestGateway({
    config: {
      operator: { apiKeys: [OPERATOR] },
      // Every built-in plugin, so every route it registers is checked; none enabled for a tenant but http.
      plugins: [
        ...Object.keys(builtinPlugins).map((name) =>
          name === 'slack-alerts' ? { name, options: { token: 'xoxb-openapi', signingSecret: 'openapi-secret', defaultChannel: 'C0OPS', apiUrl: 'http://127.0.0.1:9/api/' } } : name,
        ),
        { name: 'widgets', module: fileURLToPath(new URL('./fixtures/widgets-plugin.ts', import.meta.url)) }],
      tenants: [
        {
          id: 'acme',
          apiKeys: [ACME],
          pipeline: ['keyword-replies'],
          plugins: { http: {}, 'keyword-replies': { rules: [{ match: 'hours', reply: 'We open at 8.' }], defaultReply: 'Hello.' }, contacts: {}, 'crisis-guard': {} },
        },
        { id: 'globex', apiKeys: ['globex-openapi-key'], pipeline: [], plugins: { http: {} } },
      ],
    },
    logLevel: 'warn',
  });
  const r = await gw.request('GET', '/v1/openapi.json');
  expect(r.status).toBe(200);
  doc = r.body as Doc;
}, 120_000);

afterAll(async () => {
  delete process.env.PARLEY_CHECK_RESPONSES;
  await gw?.stop({ cleanup: true });
}, 60_000);

/** Leaf routes of express's own router stack: `METHOD path` (mounted routers here are unprefixed). */
function walkExpress(stack: unknown[]): string[] {
  const out: string[] = [];
  for (const layer of stack as { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) {
    if (layer.route) for (const m of Object.keys(layer.route.methods)) out.push(routeKey(m === '_all' ? 'all' : m, layer.route.path));
    else if (layer.handle?.stack) out.push(...walkExpress(layer.handle.stack));
  }
  return out;
}

describe('no drift between the routes and the document', () => {
  it('records every route express registered', () => {
    // As sets of `METHOD path`: a plugin may mount a router of its own (slack-alerts mounts Bolt's,
    // which registers `POST /slack/actions` again behind the plugin's guard); one operation either way.
    const recorded = [...new Set(gw.gateway.api.registered.map((r) => routeKey(r.method, r.path)))].sort();
    const walked = [...new Set(walkExpress((gw.gateway.app as unknown as { router: { stack: unknown[] } }).router.stack))].sort();
    expect(recorded).toEqual(walked);
    expect(recorded.length).toBeGreaterThan(100);
  });

  it('documents every registered route but the explicit, shrinking allowlist', () => {
    const undescribed = gw.gateway.api.undescribed();
    expect([...undescribed].sort()).toEqual([...UNDESCRIBED].sort());
  });

  it('documents only routes that exist, each once', () => {
    const registered = new Set(gw.gateway.api.registered.map((r) => routeKey(r.method, openApiPath(r.path))));
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => routeKey(m, path)));
    expect(documented.filter((k) => !registered.has(k))).toEqual([]);
    expect(documented.length).toBe(gw.gateway.api.described.length);
  });

  it('includes the kernel admin API, the http channel and a third-party plugin', () => {
    expect(doc.paths['/v1/tenants/{tenant}/outbox']?.get?.tags).toEqual(['outbox']);
    expect(doc.paths['/v1/tenants/{tenant}/messages']?.post?.requestBody).toBeDefined();
    expect(doc.paths['/v1/tenants/{tenant}/gadgets']?.get?.responses['410']?.['x-parley-error-codes']).toEqual(['PARLEY_WIDGETS_GONE']);
    expect(doc.components.schemas.Widget).toBeDefined();
  });
});

/** Problems of the document: a structural check in place of `redocly lint` (no new dependency here). */
function validate(d: Doc): string[] {
  const problems: string[] = [];
  if (!/^3\.1\.\d+$/.test(d.openapi)) problems.push(`openapi is ${d.openapi}`);
  if (!d.info?.title || !d.info?.version) problems.push('info.title and info.version are required');
  const resolvePointer = (ref: string): unknown => {
    if (!ref.startsWith('#/')) return undefined;
    return ref
      .slice(2)
      .split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), d);
  };
  const walk = (node: unknown, at: string) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && resolvePointer(v) === undefined) problems.push(`${at}: $ref ${v} does not resolve`);
      walk(v, `${at}/${k}`);
    }
  };
  walk(d, '#');
  const ids = new Map<string, string>();
  const tags = new Set((d.tags ?? []).map((t) => t.name));
  for (const [path, ops] of Object.entries(d.paths)) {
    if (!path.startsWith('/')) problems.push(`${path}: a path starts with /`);
    const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    for (const [method, op] of Object.entries(ops)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method)) problems.push(`${where}: not an HTTP method`);
      if (!op.operationId) problems.push(`${where}: no operationId`);
      else if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} also used by ${ids.get(op.operationId)}`);
      else ids.set(op.operationId, where);
      if (!op.summary) problems.push(`${where}: no summary`);
      const params = op.parameters ?? [];
      for (const name of templated) {
        const p = params.find((x) => x.in === 'path' && x.name === name);
        if (!p) problems.push(`${where}: path parameter {${name}} is not declared`);
        else if (p.required !== true) problems.push(`${where}: path parameter {${name}} must be required`);
      }
      for (const p of params) {
        if (!['path', 'query', 'header', 'cookie'].includes(p.in)) problems.push(`${where}: parameter ${p.name} in ${p.in}`);
        if (p.in === 'path' && !templated.includes(p.name)) problems.push(`${where}: parameter ${p.name} is not in the path`);
        if (!p.schema) problems.push(`${where}: parameter ${p.name} has no schema`);
      }
      const seen = new Set<string>();
      for (const p of params) {
        if (seen.has(`${p.in}:${p.name}`)) problems.push(`${where}: parameter ${p.name} declared twice`);
        seen.add(`${p.in}:${p.name}`);
      }
      if (!op.responses || !Object.keys(op.responses).length) problems.push(`${where}: no responses`);
      for (const [status, r] of Object.entries(op.responses ?? {})) {
        if (!/^[1-5]\d\d$|^default$/.test(status)) problems.push(`${where}: response status ${status}`);
        if (!r.description) problems.push(`${where}: response ${status} has no description`);
      }
      // A form post that redirects (303 See Other) succeeds with a 3xx.
      if (!Object.keys(op.responses ?? {}).some((s) => s.startsWith('2') || s.startsWith('3'))) problems.push(`${where}: no success response`);
      for (const requirement of op.security ?? []) for (const scheme of Object.keys(requirement)) if (!d.components.securitySchemes[scheme]) problems.push(`${where}: security scheme ${scheme} is not defined`);
      for (const tag of op.tags ?? []) if (!tags.has(tag)) problems.push(`${where}: tag ${tag} is not listed`);
    }
  }
  return problems;
}

/**
 * Where the document departs from Redocly's `recommended` rules, and why. A rule is turned off only
 * here, with its reason; an operation is exempted from one by its JSON pointer.
 */
const LINT_OFF: Record<string, string> = {
  // package.json declares no license and the repository has no LICENSE file: the document must not claim one.
  'info-license': 'Parley has not declared a license yet',
};
const LINT_EXEMPT: { rule: string; operations: string[]; reason: string }[] = [
  {
    rule: 'operation-4xx-response',
    operations: ['get /healthz', 'get /readyz', 'get /console', 'get /console/console.js', 'get /console/console.css', 'get /console/operations.js', 'get /docs', 'get /v1/openapi.json'],
    reason: 'They take no key, parameter or body: there is no client error to answer with (every route that takes one documents its 4xx, checked below)',
  },
  {
    rule: 'operation-2xx-response',
    operations: ['post /billing/choose/{token}', 'get /l/{code}'],
    reason: "A person's browser follows them: the plan chooser's form post succeeds with a 303 to Stripe Checkout (post/redirect/get), a health answer's short source link with a 302 to the page; never a 2xx",
  },
];
const pointer = (operation: string) => {
  const [method, path] = operation.split(' ') as [string, string];
  return `#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/responses`;
};

async function redoclyProblems(document: unknown): Promise<string[]> {
  const ref = '/v1/openapi.json';
  const ignore = { [ref]: Object.fromEntries(LINT_EXEMPT.map((e) => [e.rule, new Set(e.operations.map(pointer))])) };
  const config = await createConfig({ extends: ['recommended'], rules: Object.fromEntries(Object.keys(LINT_OFF).map((rule) => [rule, 'off'])) }, { ignore });
  const problems = await lintFromString({ source: JSON.stringify(document), absoluteRef: ref, config });
  return problems.filter((p) => !p.ignored).map((p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
}

describe('the document', () => {
  it('is structurally valid OpenAPI 3.1', () => {
    expect(validate(doc)).toEqual([]);
  });

  it("passes Redocly's recommended ruleset, but for the listed exemptions", async () => {
    expect(await redoclyProblems(doc)).toEqual([]);
    // Each exemption still names a route of the document.
    for (const e of LINT_EXEMPT) for (const op of e.operations) expect(doc.paths[op.split(' ')[1]!]?.[op.split(' ')[0]!], op).toBeDefined();
  }, 60_000);

  it('the Redocly run finds what its rules check for', async () => {
    const broken = structuredClone(doc) as Doc & { servers?: unknown; tags?: { name: string; description?: string }[] };
    delete broken.servers;
    delete broken.tags![0]!.description;
    broken.paths['/v1/tenants/{tenant}/outbox']!.get!.responses = { 200: broken.paths['/v1/tenants/{tenant}/outbox']!.get!.responses['200']! };
    const problems = await redoclyProblems(broken);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('no-empty-servers'),
        expect.stringContaining('tag-description'),
        expect.stringMatching(/operation-4xx-response at #\/paths\/~1v1~1tenants~1\{tenant\}~1outbox\/get/),
      ]),
    );
  }, 60_000);

  it('documents a 4xx for every operation that takes a key, a parameter or a body', () => {
    const exempt = new Set(LINT_EXEMPT.find((e) => e.rule === 'operation-4xx-response')!.operations);
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        const takesInput = Boolean(op.parameters?.length || op.requestBody || op.security?.length);
        if (takesInput && !Object.keys(op.responses).some((s) => s.startsWith('4'))) missing.push(`${method} ${path}`);
        if (!takesInput && !Object.keys(op.responses).some((s) => s.startsWith('4')) && !exempt.has(`${method} ${path}`)) missing.push(`${method} ${path} (not exempt)`);
      }
    expect(missing).toEqual([]);
  });

  it('the validator finds what it checks for', () => {
    const broken = structuredClone(doc);
    const op = broken.paths['/v1/tenants/{tenant}/outbox/{id}']!.get!;
    op.parameters = op.parameters!.filter((p) => p.name !== 'id');
    op.responses['200']!.content!['application/json']!.schema = { $ref: '#/components/schemas/Nope' };
    broken.paths['/v1/tenants/{tenant}/keys']!.get!.operationId = op.operationId;
    expect(validate(broken)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('path parameter {id} is not declared'),
        expect.stringContaining('$ref #/components/schemas/Nope does not resolve'),
        expect.stringContaining(`operationId ${op.operationId} also used`),
      ]),
    );
  });

  it('documents auth and error codes from the catalogue', () => {
    const retry = doc.paths['/v1/tenants/{tenant}/outbox/{id}/retry']!.post!;
    expect(retry.security).toEqual([{ tenantKey: [] }, { operatorKey: [] }, { consoleSession: [] }]);
    expect(retry.responses['401']?.['x-parley-error-codes']).toEqual(['PARLEY_UNAUTHENTICATED']);
    expect(retry.responses['404']?.['x-parley-error-codes']).toEqual(['PARLEY_NOT_FOUND']);
    expect(retry.responses['429']?.['x-parley-error-codes']).toEqual(['PARLEY_RATE_LIMITED']);
    expect(doc.paths['/v1/tenants/{tenant}/keys']!.post!.security).toEqual([{ operatorKey: [] }, { consoleSession: [] }]);
    expect(retry.responses['403']?.['x-parley-error-codes']).toEqual(['PARLEY_FORBIDDEN', 'PARLEY_CSRF']);
    expect(doc.paths['/healthz']!.get!.security).toEqual([]);
  });
});

/** GETs that answer with an array but are not lists to page, and why. */
const NOT_LISTS: Record<string, string> = {
  'get /v1/costs': 'A report: every tenant\'s spend and their sum, which a page would break',
  'get /v1/tenants/{tenant}/budgets': 'At most one budget per category and period (six)',
  'get /v1/tenants/{tenant}/usage': 'Sums over a time range, one row per kind or day',
  'get /v1/tenants/{tenant}/activity': 'Counts per channel and direction over the last minutes',
  'get /v1/tenants/{tenant}/twilio-sms/numbers': "The numbers of the tenant's configuration (a handful), each checked at Twilio",
  'get /v1/tenants/{tenant}/outbox/{id}': 'One item, with its status history',
  'get /v1/tenants/{tenant}/messages/{id}': 'One message, with its replies',
  'get /v1/tenants/{tenant}/reminders/{id}': 'One reminder, with its occurrences',
  'get /v1/tenants/{tenant}/moderation/queue/{id}': 'One item, with its context and audit',
  'get /v1/tenants/{tenant}/billing/entitlements/{address}': 'One person, with the history of changes',
  'get /v1/tenants/{tenant}/consent/{address}': 'One address, with the history of its consent',
};

describe('list routes are paged the same way', () => {
  const resolve = (schema: unknown): { type?: string; properties?: Record<string, { type?: string; $ref?: string; anyOf?: unknown[] }> } => {
    const ref = (schema as { $ref?: string }).$ref;
    return ref ? resolve(doc.components.schemas[ref.split('/').pop()!]) : (schema as never);
  };

  it('every GET answering with an array takes cursor and limit and answers with next, or says why it is not a list', () => {
    const lists: string[] = [];
    const problems: string[] = [];
    // The kernel and the built-in plugins; a third-party plugin pages as it chooses (`parley` exports the helper).
    const builtIn = new Set(gw.gateway.api.described.filter((d) => d.owner === 'parley' || d.owner in builtinPlugins).map((d) => openApiPath(d.contract.path)));
    for (const [path, ops] of Object.entries(doc.paths)) {
      const op = ops.get;
      if (!builtIn.has(path)) continue;
      const schema = op?.responses['200']?.content?.['application/json']?.schema;
      if (!op || !schema) continue;
      const properties = resolve(schema).properties ?? {};
      const arrays = Object.entries(properties).filter(([, v]) => v.type === 'array');
      if (!arrays.length) continue;
      const key = `get ${path}`;
      if (!properties.next) {
        if (!NOT_LISTS[key]) problems.push(`${key}: answers with ${arrays.map(([k]) => k).join(', ')} but has no next`);
        continue;
      }
      lists.push(key);
      if (NOT_LISTS[key]) problems.push(`${key}: paged, so not in NOT_LISTS`);
      if (properties.next.$ref !== '#/components/schemas/NextPage') problems.push(`${key}: next is not the shared NextPage`);
      const query = new Map((op.parameters ?? []).filter((p) => p.in === 'query').map((p) => [p.name, p as { schema: { maximum?: number; pattern?: string }; description?: string }]));
      const limit = query.get('limit');
      if (!query.get('cursor')?.description?.includes('Opaque')) problems.push(`${key}: no documented cursor parameter`);
      if (!limit || !(limit.schema.maximum! <= 500) || !limit.description) problems.push(`${key}: no documented, capped limit`);
    }
    expect(problems).toEqual([]);
    expect(lists.length).toBeGreaterThanOrEqual(24);
    expect(doc.components.schemas.NextPage).toMatchObject({ type: ['string', 'null'] });
  });

  it('documents the old paging parameters as the old way', () => {
    const old = Object.entries(doc.paths).flatMap(([path, ops]) =>
      (ops.get?.parameters ?? []).filter((p) => ['before', 'offset', 'after'].includes(p.name)).map((p) => ({ at: `${path} ${p.name}`, description: (p as { description?: string }).description ?? '' })),
    );
    expect(old.length).toBeGreaterThanOrEqual(8);
    for (const p of old) expect(p.description, p.at).toMatch(/^Old way of paging \(use `cursor`\)/);
  });
});

describe('contract: each documented route of the kernel, http, contacts and crisis-guard against a gateway', () => {
  it('answers with a documented status and a body that matches its schema', async () => {
    // Data to call the routes with: a conversation, a message with a reply, a key to revoke.
    const sent = await gw.send('acme', { from: 'alice', text: 'hours' });
    expect(sent.status).toBe(200);
    const created = await gw.request('POST', '/v1/tenants/acme/keys', { key: OPERATOR, body: { label: 'contract' } });
    const contact = await gw.request('POST', '/v1/tenants/acme/contacts', { key: OPERATOR, body: { name: 'Dana', addresses: [{ channel: 'http', address: 'dana' }] } });
    expect(contact.status).toBe(201);
    // A second contact of the same person, for the merge route to fold into the first.
    const second = await gw.request('POST', '/v1/tenants/acme/contacts', { key: OPERATOR, body: { name: 'Dana', addresses: [{ channel: 'whatsapp', address: 'whatsapp:dana' }] } });
    expect(second.status).toBe(201);
    const ids: Record<string, string> = {
      tenant: 'acme',
      address: 'alice',
      conversations: sent.message.conversationId,
      messages: sent.message.id,
      outbox: sent.replies[0]!.id,
      keys: created.body.key.id,
      contacts: contact.body.contact.id,
      'crisis-detections': '00000000-0000-4000-8000-000000000000',
    };
    const signedIn = await gw.request('POST', '/console/session', { body: { key: OPERATOR } });
    const session = { cookie: signedIn.headers.get('set-cookie')!.split(';')[0]!, csrf: signedIn.body.csrf as string };
    const covered = ['parley', 'http', 'widgets', 'contacts', 'crisis-guard'];
    const described = gw.gateway.api.described.filter((d) => covered.includes(d.owner));
    // DELETE last: it revokes the key.
    described.sort((a, b) => Number(a.contract.method === 'delete') - Number(b.contract.method === 'delete'));
    const problems: string[] = [];
    const calls: string[] = [];
    for (const { contract: c } of described) {
      if (c.path === '/v1/backup') continue; // a database dump: covered by test/backup.test.ts
      const path = c.path.replace(/:(\w+)/g, (_m, name: string, offset: number) => {
        if (name !== 'id') return ids[name]!;
        const collection = c.path.slice(0, offset).split('/').filter(Boolean).at(-1)!;
        return ids[collection]!;
      });
      const isConsole = c.path === '/console/session';
      const body = c.body ? (isConsole ? { key: OPERATOR } : c.path.endsWith('/messages') ? { from: 'bob', text: 'hours' } : c.path.endsWith('/merge') ? { from: second.body.contact.id } : (c.bodyExample ?? {})) : undefined;
      const auth = isConsole ? { headers: { cookie: session.cookie, 'x-parley-csrf': session.csrf } } : { key: OPERATOR };
      const r = await gw.request(c.method.toUpperCase(), path, { ...auth, ...(body !== undefined ? { body } : {}) });
      const where = `${routeKey(c.method, c.path)} -> ${r.status}`;
      calls.push(where);
      const op = doc.paths[openApiPath(c.path)]![c.method]!;
      const documented = op.responses[String(r.status)];
      if (!documented) {
        problems.push(`${where}: status not documented (${r.text.slice(0, 200)})`);
        continue;
      }
      const schema = c.responses[r.status]?.schema as z.ZodType | undefined;
      if (schema) {
        const parsed = schema.safeParse(r.body);
        if (!parsed.success) problems.push(`${where}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      } else if (documented['x-parley-error-codes']) {
        const parsed = ErrorBody.safeParse(r.body);
        if (!parsed.success || !documented['x-parley-error-codes'].includes(parsed.data.error.code)) problems.push(`${where}: error ${r.text.slice(0, 200)} not documented`);
      }
    }
    expect(problems).toEqual([]);
    expect(described.length).toBeGreaterThanOrEqual(28);
    // Every route was reached with data that exists: only the retry of a sent item is refused (documented 400).
    expect(calls.filter((c) => !/-> 20[0-4]$/.test(c))).toEqual([
      'POST /v1/tenants/:tenant/outbox/:id/retry -> 400',
      'POST /v1/tenants/:tenant/crisis-detections/:id/false-positive -> 404',
    ]);
  }, 60_000);

  it('documents the errors the auth produces', async () => {
    const noKey = await gw.request('GET', '/v1/tenants/acme/outbox');
    expect(noKey.status).toBe(401);
    const other = await gw.request('GET', '/v1/tenants/acme/outbox', { key: 'globex-openapi-key' });
    expect(other.status).toBe(403);
    const op = doc.paths['/v1/tenants/{tenant}/outbox']!.get!;
    expect(op.responses['401']?.['x-parley-error-codes']).toContain(noKey.body.error.code);
    expect(op.responses['403']?.['x-parley-error-codes']).toContain(other.body.error.code);
  });
});

describe('deprecation', () => {
  it('a deprecated route answers with Deprecation, Sunset and Link to its successor', async () => {
    const r = await gw.request('GET', '/v1/tenants/acme/widgets', { key: ACME });
    expect(r.status).toBe(200);
    expect(r.headers.get('deprecation')).toBe(`@${Date.parse('2026-11-01') / 1000}`);
    expect(r.headers.get('sunset')).toBe('Tue, 01 Jun 2027 00:00:00 GMT');
    expect(r.headers.get('link')).toBe('</v1/tenants/acme/gadgets>; rel="successor-version"');
    const op = doc.paths['/v1/tenants/{tenant}/widgets']!.get!;
    expect(op.deprecated).toBe(true);
    expect(Object.keys((op.responses['200'] as { headers?: object }).headers ?? {})).toEqual(['Deprecation', 'Sunset', 'Link']);
    // Errors of a deprecated route carry the headers too: the client learns it whatever the answer.
    const denied = await gw.request('GET', '/v1/tenants/acme/widgets');
    expect(denied.status).toBe(401);
    expect(denied.headers.get('deprecation')).toBeTruthy();
  });

  it('a route that is not deprecated has none of them', async () => {
    const r = await gw.request('GET', '/v1/tenants/acme/gadgets', { key: ACME });
    expect(r.headers.get('deprecation')).toBeNull();
    expect(r.headers.get('sunset')).toBeNull();
  });
});

describe('parley/client', () => {
  it('calls the routes with types from the same schemas, and answers match them', async () => {
    const acme = new ParleyClient({ baseUrl: gw.url, key: ACME });
    const sent = await acme.sendMessage('acme', { from: 'carol', text: 'hours' });
    expect(sent.status).toBe(200);
    expect(sent.body.replies.map((r) => r.text)).toEqual(['We open at 8.']);
    const conversations = await acme.conversations('acme', { limit: 5 });
    expect(Responses.conversations.parse(conversations).conversations.length).toBeGreaterThan(0);
    const history = await acme.conversationMessages('acme', sent.body.message.conversationId!);
    expect(history.messages.map((m) => m.direction)).toEqual(['in', 'out']);
    const item = await acme.outboxItem('acme', sent.body.replies[0]!.id);
    expect(Responses.outboxItem.parse(item).item.status).toBe('sent');
    expect((await acme.tenants()).tenants.map((t) => t.id)).toEqual(['acme']);
  });

  it('throws ParleyApiError with the catalogue code, and reports deprecations', async () => {
    const deprecations: string[] = [];
    const globex = new ParleyClient({ baseUrl: gw.url, key: 'globex-openapi-key', onDeprecation: (d) => deprecations.push(`${d.path} ${d.sunset} ${d.link}`) });
    const error = await globex.outbox('acme').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParleyApiError);
    expect(error).toMatchObject({ status: 403, code: 'PARLEY_FORBIDDEN' });
    await globex.request('GET', '/v1/tenants/globex/widgets');
    expect(deprecations).toEqual(['/v1/tenants/globex/widgets Tue, 01 Jun 2027 00:00:00 GMT </v1/tenants/globex/gadgets>; rel="successor-version"']);
  });
});

describe('responses checked against their contracts (PARLEY_CHECK_RESPONSES=1)', () => {
  it('found no answer that differs from its contract in this file', () => {
    expect(gw.gateway.api.violations).toEqual([]);
  });
});

describe('/docs', () => {
  it('is a self-contained page: no external script, style or font', async () => {
    const r = await gw.request('GET', '/docs');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(r.text).toContain("fetch('/v1/openapi.json')");
    expect(r.text).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!json-schema)/);
    expect(r.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it("its script renders every operation, as text only (run on a minimal DOM: no browser library in this repository)", async () => {
    type Node = { tag: string; attrs: Record<string, string>; children: (Node | string)[]; textContent: string; setAttribute(k: string, v: string): void; appendChild(c: Node | string): void };
    const make = (tag: string): Node => {
      const node: Node = {
        tag,
        attrs: {},
        children: [],
        set textContent(v: string) {
          node.children = v ? [v] : [];
        },
        get textContent(): string {
          return node.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('');
        },
        setAttribute: (k, v) => void (node.attrs[k] = v),
        appendChild: (c) => void node.children.push(c),
      };
      return node;
    };
    const nodes = { nav: make('nav'), main: make('main'), status: make('p'), body: make('body') } as const;
    const all: Node[] = [];
    const document = {
      createElement: (tag: string) => {
        const n = make(tag);
        all.push(n);
        return n;
      },
      createTextNode: (text: string) => text,
      getElementById: (id: string) => nodes[id as keyof typeof nodes],
      body: nodes.body,
    };
    const hostile = structuredClone(doc);
    hostile.paths['/v1/tenants/{tenant}/gadgets']!.get!.summary = '<img src=x onerror=alert(1)>';
    const script = /<script>([\s\S]*)<\/script>/.exec(DOCS_PAGE)![1]!;
    let done!: () => void;
    const rendered = new Promise<void>((r) => (done = r));
    const fetchStub = async (url: string) => {
      expect(url).toBe('/v1/openapi.json');
      return { json: async () => hostile };
    };
    const originalSet = nodes.body.setAttribute;
    nodes.body.setAttribute = (k, v) => {
      originalSet(k, v);
      done();
    };
    new Function('document', 'fetch', script)(document, fetchStub);
    await rendered;
    const operations = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    expect(nodes.body.attrs['data-rendered']).toBe(String(Object.keys(doc.paths).length));
    expect(all.filter((n) => n.attrs['data-operation']).length).toBe(operations);
    expect(nodes.main.textContent).toContain('<img src=x onerror=alert(1)>'); // text, never markup
    expect(nodes.main.textContent).toContain('PARLEY_WIDGETS_GONE');
  });

  const chromium = [process.env.PARLEY_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => p && existsSync(p));
  it.skipIf(!chromium)('renders in Chromium (PARLEY_CHROMIUM or /usr/bin/chromium; skipped when there is none)', async () => {
    const puppeteer = (await import('puppeteer')).default;
    const browser = await puppeteer.launch({ executablePath: chromium!, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${gw.url}/docs`);
      await page.waitForSelector('body[data-rendered]', { timeout: 20_000 });
      const count = await page.$$eval('[data-operation]', (els) => els.length);
      expect(count).toBe(Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0));
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

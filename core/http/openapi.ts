/**
 * The OpenAPI 3.1 document of the running gateway (`GET /v1/openapi.json`), built from the route
 * contracts in the `ApiCatalogue`: the kernel's and every plugin's that described its routes. Schemas
 * are zod 4's own JSON Schema (draft 2020-12, OpenAPI 3.1's dialect); a schema given an id with
 * `.meta({ id })` becomes a named component under `#/components/schemas`.
 */
import { z } from 'zod';
import { ErrorBody, HTTP_ERROR_STATUS, type ApiCatalogue, type DescribedRoute, type RouteContract, type RouteErrorSpec } from './contract.js';

type Json = Record<string, unknown>;

export interface OpenApiOptions {
  /** The gateway's version (package.json). */
  version: string;
  /** `server.publicBaseUrl`, when known. */
  serverUrl?: string | undefined;
  /** The plugins this gateway runs: a plugin's description describes its routes' tag. */
  plugins?: readonly { name: string; description: string }[];
}

/** The kernel's tags, described (a plugin's tag is described by the plugin's own description). */
const KERNEL_TAGS: Record<string, string> = {
  admin: 'Routes of the kernel without a narrower group',
  tenants: 'The tenants a key may see',
  conversations: 'Conversations: their messages both ways, the bot/person hand-off, a person answering, revealing a masked address',
  messages: 'Inbound messages with what each stage did, and message activity per channel',
  outbox: 'Outgoing messages, their status history, dead letters and retries',
  consent: 'Opt-in and opt-out state of an address, with its history',
  usage: 'The usage ledger: every cost event (model tokens, segments, minutes)',
  keys: "A tenant's stored API keys (secrets are shown once, at creation)",
  parked: 'Signed provider deliveries that could not be stored, kept for an operator',
  operations: 'Health, readiness, metrics, plugins, alerts and backups',
  console: 'The operations console: its page, files and cookie session',
  reference: 'This document and the page that renders it',
  webhooks: "Providers' signed deliveries to channel plugins (each checks its provider's signature)",
};

/** `/v1/tenants/:tenant/x` -> `/v1/tenants/{tenant}/x`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

const DEFAULT_OPERATION_ID = (c: RouteContract) =>
  c.method +
  c.path
    .replace(/^\/v1\//, '/')
    .split(/[/.-]/)
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `By${cap(part.slice(1))}` : cap(part)))
    .join('');
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Errors every route with this auth may answer, before the route's own. */
function authErrors(c: RouteContract): { code: string; status: number; description: string }[] {
  const e = (code: keyof typeof HTTP_ERROR_STATUS, description: string) => ({ code, status: HTTP_ERROR_STATUS[code], description });
  const byAuth = keyErrors(c, e);
  return c.auth !== 'none' && c.method !== 'get' ? [...byAuth, e('PARLEY_CSRF', 'A console session without its CSRF token in `X-Parley-CSRF`')] : byAuth;
}

function keyErrors(c: RouteContract, e: (code: keyof typeof HTTP_ERROR_STATUS, description: string) => { code: string; status: number; description: string }): { code: string; status: number; description: string }[] {
  switch (c.auth) {
    case 'tenant':
      return [
        e('PARLEY_UNAUTHENTICATED', 'No key, or a key that is not valid'),
        e('PARLEY_FORBIDDEN', "Another tenant's key, or an API guard refused the request"),
        e('PARLEY_NOT_FOUND', 'No such tenant (operator key)'),
        e('PARLEY_RATE_LIMITED', 'An API guard limited the request (`Retry-After` says when to try again)'),
      ];
    case 'operator':
      return [e('PARLEY_UNAUTHENTICATED', 'No key, or a key that is not valid'), e('PARLEY_FORBIDDEN', 'Not the operator key')];
    case 'operator+tenant':
      return [e('PARLEY_UNAUTHENTICATED', 'No key, or a key that is not valid'), e('PARLEY_FORBIDDEN', 'Not the operator key'), e('PARLEY_NOT_FOUND', 'No such tenant')];
    case 'key':
      return [e('PARLEY_UNAUTHENTICATED', 'No key, or a key that is not valid')];
    default:
      return [];
  }
}

const asSpec = (s: RouteErrorSpec) => (typeof s === 'string' ? { code: s, status: HTTP_ERROR_STATUS[s], description: '' } : { description: '', ...s });

/** Converts zod schemas, hoisting named ones (`.meta({ id })`) into `components.schemas`. */
class SchemaSet {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    const json = dropFormatPatterns(z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', override: datesAsStrings })) as Json;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    delete json.$schema;
    // The same id may differ between input (defaults optional) and output: the input one gets a suffix.
    const rename: Record<string, string> = {};
    for (const [name, def] of Object.entries(defs)) {
      let target = name;
      const existing = this.components[target];
      if (existing && JSON.stringify(existing) !== JSON.stringify(io === 'output' ? openResponses(rewrite(def, {})) : rewrite(def, {}))) target = `${name}${io === 'input' ? 'Input' : 'Output'}`;
      rename[name] = target;
    }
    const finish = (v: unknown) => (io === 'output' ? openResponses(rewrite(v, rename)) : rewrite(v, rename)) as Json;
    for (const [name, def] of Object.entries(defs)) this.components[rename[name]!] ??= finish(def);
    return finish(json);
  }
}

/**
 * A `z.date()` (`z.coerce.date()` in queries and bodies) has no JSON Schema of its own: zod leaves `{}`
 * (any value), which reads as "anything" and, under `nullable()`, an `anyOf` with an empty member. On
 * the wire it is an ISO 8601 date or date and time (`2027-01-31`, `2027-01-31T09:00:00Z`).
 */
function datesAsStrings(ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }): void {
  if ((ctx.zodSchema as { _zod?: { def?: { type?: string } } })._zod?.def?.type === 'date' && ctx.jsonSchema.type === undefined) {
    ctx.jsonSchema.type = 'string';
    ctx.jsonSchema.anyOf = [{ format: 'date-time' }, { format: 'date' }];
  }
}

/** zod writes a long regular expression beside `format: date-time` (and uuid, email...): the format says it. */
const FORMATS_WITH_PATTERN = new Set(['date-time', 'date', 'time', 'uuid', 'email', 'uri']);
function dropFormatPatterns(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropFormatPatterns);
  if (value && typeof value === 'object') {
    const node = value as Json;
    const out: Json = {};
    const formatted = typeof node.format === 'string' && FORMATS_WITH_PATTERN.has(node.format);
    for (const [k, v] of Object.entries(node)) if (!(formatted && k === 'pattern')) out[k] = dropFormatPatterns(v);
    return out;
  }
  return value;
}

/**
 * Responses may gain fields within `/v1` (the versioning policy): zod's `additionalProperties: false`
 * on output objects would tell generated clients to refuse them, so it is dropped there.
 */
function openResponses(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(openResponses);
  if (value && typeof value === 'object') {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) if (!(k === 'additionalProperties' && v === false)) out[k] = openResponses(v);
    return out;
  }
  return value;
}

/** Points `#/$defs/X` references at `#/components/schemas/X` (renamed when needed). */
function rewrite(value: unknown, rename: Record<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, rename));
  if (value && typeof value === 'object') {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) {
        const name = v.slice('#/$defs/'.length);
        out[k] = `#/components/schemas/${rename[name] ?? name}`;
      } else out[k] = rewrite(v, rename);
    }
    return out;
  }
  return value;
}

function operation(d: DescribedRoute, schemas: SchemaSet): Json {
  const c = d.contract;
  const parameters: Json[] = [];
  const pathNames = [...c.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  const paramSchema = c.params ? (schemas.convert(c.params, 'input') as { properties?: Record<string, Json> }) : {};
  for (const name of pathNames) {
    const schema = paramSchema.properties?.[name] ?? { type: 'string' };
    const description = (schema.description as string | undefined) ?? (name === (c.tenantParam ?? 'tenant') ? 'The tenant id' : undefined);
    parameters.push({ name, in: 'path', required: true, schema, ...(description ? { description } : {}) });
  }
  if (c.query) {
    const q = schemas.convert(c.query, 'input') as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, schema] of Object.entries(q.properties ?? {})) {
      parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema, ...(schema.description ? { description: schema.description } : {}) });
    }
  }

  const responses: Json = {};
  for (const [status, r] of Object.entries(c.responses)) {
    const content = r.schema
      ? { [r.contentType ?? 'application/json']: { schema: schemas.convert(r.schema, 'output'), ...(r.example !== undefined ? { example: r.example } : {}) } }
      : r.contentType
        ? { [r.contentType]: { schema: r.contentType.startsWith('text/') ? { type: 'string' } : { type: 'string', contentEncoding: 'binary' } } }
        : undefined;
    const headers = { ...(r.headers ?? {}), ...(c.deprecated ? DEPRECATION_HEADERS : {}) };
    responses[status] = {
      description: r.description,
      ...(content ? { content } : {}),
      ...(Object.keys(headers).length ? { headers: Object.fromEntries(Object.entries(headers).map(([h, desc]) => [h, { description: desc, schema: { type: 'string' } }])) } : {}),
    };
  }
  // Errors by status: one response per status listing its codes (also as `x-parley-error-codes`).
  const errors = [...authErrors(c), ...(c.errors ?? []).map(asSpec), { code: 'PARLEY_INTERNAL', status: 500, description: 'An unexpected failure (logged with the request id)' }];
  const byStatus = new Map<number, { code: string; description: string }[]>();
  for (const e of errors) {
    const list = byStatus.get(e.status) ?? [];
    if (!list.some((x) => x.code === e.code)) list.push({ code: e.code, description: e.description });
    byStatus.set(e.status, list);
  }
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    if (responses[status]) continue;
    responses[status] = {
      description: codes.map((x) => `\`${x.code}\`${x.description ? `: ${x.description}` : ''}`).join('; '),
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' }, example: { error: { code: codes[0]!.code, message: codes[0]!.description || codes[0]!.code } } } },
      'x-parley-error-codes': codes.map((x) => x.code),
    };
  }

  const security =
    c.auth === 'none'
      ? []
      : c.auth === 'operator' || c.auth === 'operator+tenant'
        ? [{ operatorKey: [] }, { consoleSession: [] }]
        : [{ tenantKey: [] }, { operatorKey: [] }, { consoleSession: [] }];
  const description = [c.description, c.deprecated ? deprecationText(c.deprecated) : undefined, `Auth: ${AUTH_TEXT[c.auth]}.`].filter(Boolean).join('\n\n');
  return {
    operationId: c.operationId ?? DEFAULT_OPERATION_ID(c),
    summary: c.summary,
    description,
    tags: c.tags ?? [d.owner === 'parley' ? 'admin' : d.owner],
    ...(parameters.length ? { parameters } : {}),
    ...(c.body
      ? { requestBody: { required: true, content: { [c.bodyContentType ?? 'application/json']: { schema: schemas.convert(c.body, 'input'), ...(c.bodyExample !== undefined ? { example: c.bodyExample } : {}) } } } }
      : {}),
    responses,
    security,
    ...(c.deprecated ? { deprecated: true } : {}),
    'x-parley-auth': c.auth,
    'x-parley-plugin': d.owner,
  };
}

const AUTH_TEXT: Record<RouteContract['auth'], string> = {
  tenant: "the tenant's key (`Authorization: Bearer <key>`) or the operator key",
  operator: 'the operator key only',
  'operator+tenant': 'the operator key only, on an existing tenant',
  key: 'any valid key (a tenant key sees its own tenant only)',
  none: 'none',
};

const DEPRECATION_HEADERS = {
  Deprecation: 'When this route was deprecated: `@<unix seconds>` (RFC 9745)',
  Sunset: 'When it may stop answering, as an HTTP date (RFC 8594)',
  Link: 'The successor: `<path>; rel="successor-version"`',
};

const deprecationText = (d: NonNullable<RouteContract['deprecated']>) =>
  `**Deprecated** since ${d.since}; answers until ${d.sunset}${d.successor ? `. Use \`${d.successor}\` instead` : ''}.`;

/** The kernel's words for its tags; a plugin's tag, its plugin's description. */
function tagDescription(tag: string, owners: string[], plugins: Map<string, string>): string {
  const kernel = KERNEL_TAGS[tag];
  const fromPlugins = owners.filter((o) => o !== 'parley').map((o) => (plugins.get(o) ? `${o}: ${plugins.get(o)}` : `Routes of the ${o} plugin`));
  return [kernel, ...(kernel ? [] : fromPlugins)].filter(Boolean).join('; ') || `Routes tagged ${tag}`;
}

/** The document for every described route of the catalogue. */
export function buildOpenApiDocument(catalogue: ApiCatalogue, opts: OpenApiOptions): Json {
  const schemas = new SchemaSet();
  schemas.components.Error = { ...schemas.convert(ErrorBody, 'output'), example: { error: { code: 'PARLEY_NOT_FOUND', message: 'No outbox item "…"' } } };
  const paths: Record<string, Json> = {};
  const sorted = [...catalogue.described].sort((a, b) => a.contract.path.localeCompare(b.contract.path));
  for (const d of sorted) {
    const p = (paths[openApiPath(d.contract.path)] ??= {});
    p[d.contract.method] = operation(d, schemas);
  }
  const plugins = new Map((opts.plugins ?? []).map((p) => [p.name, p.description]));
  const owners = new Map<string, Set<string>>();
  for (const d of sorted) for (const tag of d.contract.tags ?? [d.owner === 'parley' ? 'admin' : d.owner]) owners.set(tag, (owners.get(tag) ?? new Set()).add(d.owner));
  const tags = [...owners.keys()].sort().map((name) => ({ name, description: tagDescription(name, [...owners.get(name)!], plugins) }));
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Parley admin API',
      version: opts.version,
      summary: 'Tenants, keys, conversations, the outbox and the routes of the plugins this gateway runs.',
      description:
        'Every `/v1` route is stable: within `/v1` fields and routes are only added. A route that will go away is ' +
        'marked deprecated here and answers with `Deprecation`, `Sunset` and `Link` headers until its sunset date ' +
        '(at least six months later). Errors are `{ "error": { "code", "message" } }` with a stable `code`.',
    },
    // Without a public base URL, `/` is the origin this document was fetched from (OpenAPI 3.1 resolves
    // a relative server URL against the document's own location).
    servers: [opts.serverUrl ? { url: opts.serverUrl } : { url: '/', description: 'This gateway: the origin this document was fetched from' }],
    tags,
    paths,
    components: {
      schemas: schemas.components,
      securitySchemes: {
        tenantKey: { type: 'http', scheme: 'bearer', description: "A tenant's API key: reaches only that tenant's routes (`X-Api-Key` works too)" },
        operatorKey: { type: 'http', scheme: 'bearer', description: 'The operator key (`operator.apiKeys`): every tenant, and the operator routes' },
        consoleSession: { type: 'apiKey', in: 'cookie', name: 'parley_console', description: 'A console sign-in (`POST /console/session`), acting as the key it was made with; a change (any method but GET, HEAD, OPTIONS) also needs the session\'s CSRF token in `X-Parley-CSRF` (403 `PARLEY_CSRF` without it)' },
      },
    },
  };
}

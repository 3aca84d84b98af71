/**
 * Uniform paging of list routes: `?limit=&cursor=` in, `next` out. A cursor is opaque to clients: the
 * base64url JSON of the list's name and the sort key of the last item shown (a time to the microsecond
 * and an id, say), so the next page starts strictly after that item and rows that tie on time are
 * neither skipped nor repeated. It is not secret: it only ever narrows the caller's own query. A cursor
 * that does not decode to this list's key shape is a 400, never a 500.
 *
 * @example
 * route({ method: 'get', path: '/v1/tenants/:tenant/widgets', auth: 'tenant', summary: 'Widgets',
 *   query: pageQuery(), responses: { 200: { description: 'A page', schema: z.object({ widgets: z.array(Widget), next: NextPage }) } },
 *   errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
 *   const q = parseQuery(pageQuery(), req.query);
 *   const after = q.cursor ? readCursor('widgets', q.cursor, TimeIdKey) : null;
 *   const { rows } = await pool.query(`SELECT *, ${microsOf('created_at')} AS "sortAt" FROM widgets
 *     WHERE tenant_id = $1 AND ($2::text IS NULL OR (created_at, id) < (${fromMicros('$2')}, $3::uuid))
 *     ORDER BY created_at DESC, id DESC LIMIT $4`, [tenant, after?.[0] ?? null, after?.[1] ?? null, q.limit + 1]);
 *   const { items, next } = pageOf(req, 'widgets', rows, q.limit, (r) => [r.sortAt, r.id]);
 *   res.json({ widgets: items.map(({ sortAt, ...w }) => w), next });
 * });
 */
import type { Request } from 'express';
import { z } from 'zod';
import { badRequest } from '../errors.js';

/** The most items any list answers with at once. */
export const PAGE_LIMIT_MAX = 500;

const CURSOR_SHAPE = /^[A-Za-z0-9_-]{1,1024}$/;

/** `cursor`: described once, the same on every list route. */
export const Cursor = z
  .string()
  .regex(CURSOR_SHAPE)
  .describe("Where the page starts: the `cursor` of the previous answer's `next` link. Opaque: pass it back unchanged (a cursor altered or taken from another list is a 400)");

/**
 * The query of a list route: `cursor` and `limit` (1 to `max`, at most PAGE_LIMIT_MAX). A route with
 * filters extends it; a list that kept another default or cap before paging was uniform keeps it, so
 * `/v1` answers as it did.
 */
export function pageQuery(opts: { defaultLimit?: number; maxLimit?: number } = {}) {
  const max = Math.min(opts.maxLimit ?? PAGE_LIMIT_MAX, PAGE_LIMIT_MAX);
  const def = Math.min(opts.defaultLimit ?? 50, max);
  return z.object({
    cursor: Cursor.optional(),
    limit: z.coerce.number().int().min(1).max(max).default(def).describe(`At most this many items (1-${max}, default ${def}); \`next\` links to the rest`),
  });
}

/** The response field of every list route. */
export const NextPage = z
  .string()
  .nullable()
  .meta({
    id: 'NextPage',
    description: 'The next page, as the path and query to GET (same filters and limit, with its `cursor`), or null when this page is the last',
    examples: ['/v1/tenants/acme/outbox?limit=50&cursor=WyJvdXRib3giLCIxNzY0NTk1MTY5MDAwMDAwIiwiMWY0In0'],
  });

/** A sort key: the values of the ORDER BY columns of the last item shown. */
export type CursorKey = readonly (string | number)[];

/**
 * A time to the microsecond, as the digits of microseconds since 1970 (see `microsOf`). At most 17
 * digits (until the year 5138), so any key that passes stays within PostgreSQL's bigint and timestamp
 * ranges: a forged one is a 400 or an empty page, never a database error.
 */
export const MicrosKey = z.string().regex(/^\d{1,17}$/);
/** The most common key: a time (microseconds) and a uuid. */
export const TimeIdKey = z.tuple([MicrosKey, z.guid()]);

/** The cursor of a list's item: opaque to clients. */
export function writeCursor(list: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify([list, ...key])).toString('base64url');
}

/** The sort key in a cursor of `list`, or a 400 naming what is wrong. */
export function readCursor<T extends z.ZodTuple>(list: string, cursor: string, key: T): z.output<T> {
  const refuse = () => badRequest('Invalid cursor: pass back the one of the previous answer\'s `next` link unchanged', { parameter: 'cursor' });
  if (!CURSOR_SHAPE.test(cursor)) throw refuse();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  if (!Array.isArray(decoded) || decoded[0] !== list) throw refuse();
  const parsed = key.safeParse(decoded.slice(1));
  if (!parsed.success) throw refuse();
  return parsed.data;
}

/**
 * The page of `rows` (fetched with `limit + 1`, in the list's order) and its `next` link: the request's
 * own path and query with the cursor of the last item shown. Parameters of the old ways of paging
 * (`offset`) are dropped from the link; filters stay.
 */
export function pageOf<T>(req: Request, list: string, rows: readonly T[], limit: number, keyOf: (row: T) => CursorKey): { items: T[]; next: string | null } {
  const items = rows.slice(0, limit);
  if (rows.length <= limit || !items.length) return { items, next: null };
  return { items, next: nextLink(req, writeCursor(list, keyOf(items[items.length - 1]!))) };
}

/** The path and query of this request with `cursor` set. */
export function nextLink(req: Request, cursor: string): string {
  const url = new URL(req.originalUrl, 'http://parley.invalid');
  url.searchParams.delete('offset');
  url.searchParams.set('cursor', cursor);
  return `${url.pathname}${url.search}`;
}

/** SQL: a timestamptz column as the text of its microseconds since 1970 (exact, unlike a JS Date). */
export const microsOf = (column: string) => `(extract(epoch from ${column}) * 1000000)::bigint::text`;
/** SQL: the timestamptz of a parameter holding `microsOf` text. */
export const fromMicros = (param: string) => `(timestamptz 'epoch' + ${param}::bigint * interval '1 microsecond')`;

/**
 * A page of a list kept in memory (configuration, plugins): sorted by `keyOf` ascending, which must
 * be unique per item.
 */
export function pageOfList<T>(req: Request, list: string, all: readonly T[], q: { limit: number; cursor?: string | undefined }, keyOf: (item: T) => string): { items: T[]; next: string | null } {
  const sorted = [...all].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const after = q.cursor ? readCursor(list, q.cursor, z.tuple([z.string()]))[0] : null;
  const rest = after === null ? sorted : sorted.filter((item) => keyOf(item) > after);
  return pageOf(req, list, rest.slice(0, q.limit + 1), q.limit, (item) => [keyOf(item)]);
}

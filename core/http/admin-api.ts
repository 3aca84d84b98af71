/**
 * The versioned admin API (`/v1`). Every tenant route passes `tenantAuth`, and every query names the
 * tenant from the path, so a tenant key can never reach another tenant's rows.
 */
import { dumpEmbedded } from '../backup.js';
import type express from 'express';
import type { Gateway } from '../gateway.js';
import type { RouteHelpers } from '../plugin.js';
import { HttpError, badRequest, notFound, unauthenticated } from '../errors.js';
import { generateApiKey, hashApiKey } from '../tenancy.js';
import { loadOutbound, toOutbound, type OutboxRow } from '../storage/message-store.js';
import { consentAddress } from '../consent.js';
import { readHandoff, setHandoff } from '../handoff.js';
import { param } from './app.js';
import { ActivityQuery, ConversationMessagesQuery, ConversationsQuery, HandoffBody, KeyBody, ListQuery, PageQuery, PersonReplyBody, Responses, RevealBody, UsageQuery } from './api-schemas.js';
import { hashAddress } from '../logger.js';
import { PAGE_LIMIT_MAX, TimeIdKey, fromMicros, microsOf, pageOf, pageOfList, pageQuery, readCursor } from './paging.js';
import type { z } from 'zod';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const listQuery = ListQuery;
/** Lists that answered in full before paging: their default page is the largest, so `/v1` answers as it did. */
const WholeListQuery = pageQuery({ defaultLimit: PAGE_LIMIT_MAX });
const usageQuery = UsageQuery;

/** The input parsed by `schema`, or a 400 naming each field it refused (`Invalid query: limit: …`). */
function parseWith<T extends z.ZodType>(schema: T, input: unknown, what: 'request' | 'query' = 'request'): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw badRequest(`Invalid ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.') || (what === 'query' ? '' : 'body')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

const parseQuery = (query: unknown) => parseWith(listQuery, query, 'query');

/** An address as its last four characters (`••••4567`): enough to tell numbers apart on a screen. */
export function maskAddress(address: string): string {
  return address.length <= 4 ? '••••' : `••••${address.slice(-4)}`;
}

const alertKey = (a: { source: string; key: string }) => `${a.source}\u0000${a.key}`;

/** Who made an admin change, for the audit trail: `key:<id>` or `operator`. */
const actorOf = (req: express.Request) => (req.principal?.kind === 'tenant' ? `key:${req.principal.keyId}` : 'operator');

function uuidParam(value: string | undefined, what: string): string {
  if (!value || !UUID.test(value)) throw notFound(`No ${what} "${value}"`);
  return value;
}

/** The admin API's kernel routes, each registered from its contract (`/v1/openapi.json`). */
export const adminRoutes = (gateway: Gateway) => ({ route }: RouteHelpers): void => {
  const db = () => gateway.db.pool;

  route({ method: 'get', path: '/v1/tenants', auth: 'key', tags: ['tenants'], summary: 'Tenants this key may see', description: 'The operator key sees every tenant; a tenant key its own. By id.', query: WholeListQuery, responses: { 200: { description: 'The tenants', schema: Responses.tenants, example: { tenants: [{ id: 'acme', name: 'Acme Clinic', locale: 'en', pipeline: ['crisis-guard', 'keyword-replies'] }], next: null } } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const principal = req.principal;
    if (!principal) throw unauthenticated();
    const q = parseWith(WholeListQuery, req.query);
    const list = gateway.tenants.list().filter((t) => principal.kind === 'operator' || t.id === principal.tenantId);
    const { items, next } = pageOfList(req, 'tenants', list, q, (t) => t.id);
    res.json({ tenants: items.map((t) => ({ id: t.id, name: t.name, locale: t.locale, pipeline: t.pipeline })), next });
  });

  /**
   * Operator only: a consistent dump of the running embedded database (the CLI's `parley backup` calls
   * it: the data directory is locked to this process). The manifest is in `x-parley-backup-manifest`.
   */
  route({ method: 'get', path: '/v1/backup', auth: 'operator', tags: ['operations'], summary: 'A consistent dump of the running embedded database', description: 'What `parley backup` calls. The manifest is in the `x-parley-backup-manifest` header (base64 JSON).', responses: { 200: { description: 'The dump', contentType: 'application/octet-stream', headers: { 'x-parley-backup-manifest': 'The manifest, base64 JSON' } } }, errors: ['PARLEY_NOT_IMPLEMENTED'] }, async (_req, res) => {
    if (!gateway.db.embedded) throw new HttpError('PARLEY_NOT_IMPLEMENTED', 'This gateway runs on PostgreSQL: run parley backup with DATABASE_URL (pg_dump) instead', 501);
    const { manifest, payload } = await dumpEmbedded(gateway.db.embedded);
    res.set({ 'content-type': 'application/octet-stream', 'x-parley-backup-manifest': Buffer.from(JSON.stringify(manifest)).toString('base64'), 'cache-control': 'no-store' });
    res.end(payload);
  });

  route({ method: 'get', path: '/v1/tenants/:tenant', auth: 'tenant', tags: ['tenants'], summary: 'One tenant', responses: { 200: { description: 'The tenant', schema: Responses.tenant } } }, (req, res) => {
    const t = gateway.tenants.get(param(req, 'tenant'))!;
    res.json({ tenant: { id: t.id, name: t.name, locale: t.locale, timezone: t.timezone, pipeline: t.pipeline } });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/conversations', auth: 'tenant', tags: ['conversations'], summary: 'Conversations, most recently active first', query: ConversationsQuery, responses: { 200: { description: 'A page of conversations', schema: Responses.conversations } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const q = parseWith(ConversationsQuery, req.query);
    const after = q.cursor ? readCursor('conversations', q.cursor, TimeIdKey) : null;
    const { rows } = await db().query<{ id: string; participant: string; sortAt: string }>(
      `SELECT id, channel, participant, handoff, handoff_reason AS "handoffReason", created_at AS "createdAt", last_message_at AS "lastMessageAt", ${microsOf('last_message_at')} AS "sortAt" FROM parley_conversations
       WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR last_message_at < $2) AND ($4::text IS NULL OR participant = $4) AND ($5::text IS NULL OR handoff = $5)
         AND ($6::text IS NULL OR (last_message_at, id) < (${fromMicros('$6')}, $7::uuid))
       ORDER BY last_message_at DESC, id DESC LIMIT $3`,
      [param(req, 'tenant'), q.before ?? null, q.limit + 1, q.participant ?? null, q.handoff ?? null, after?.[0] ?? null, after?.[1] ?? null],
    );
    const { items, next } = pageOf(req, 'conversations', rows, q.limit, (r) => [r.sortAt, r.id]);
    res.json({ conversations: items.map(({ sortAt: _, ...r }) => ({ ...r, participant: q.mask === 'true' ? maskAddress(r.participant) : r.participant, participantHash: hashAddress(r.participant) })), next });
  });

  route({ method: 'post', path: '/v1/tenants/:tenant/conversations/:id/reveal', auth: 'tenant', tags: ['conversations'], summary: "Show a conversation's address in full (audited)", description: 'For a console that lists addresses masked: each reveal is an audit row (`conversation.reveal`, who and why).', body: RevealBody, bodyExample: { reason: 'calling the patient back' }, responses: { 200: { description: 'The address', schema: Responses.revealed } }, errors: ['PARLEY_BAD_REQUEST', 'PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'conversation');
    const body = parseWith(RevealBody, req.body ?? {});
    const tenantId = param(req, 'tenant');
    const { rows } = await db().query<{ participant: string }>('SELECT participant FROM parley_conversations WHERE tenant_id = $1 AND id = $2', [tenantId, id]);
    if (!rows[0]) throw notFound(`No conversation "${id}"`);
    await db().query('INSERT INTO parley_audit (tenant_id, actor, action, subject_hash, detail) VALUES ($1, $2, $3, $4, $5)', [tenantId, actorOf(req), 'conversation.reveal', hashAddress(rows[0].participant), { conversationId: id, reason: body.reason ?? null }]);
    res.json({ participant: rows[0].participant });
  });

  route({ method: 'post', path: '/v1/tenants/:tenant/conversations/:id/messages', auth: 'tenant', tags: ['conversations'], summary: 'Answer in a conversation as a person', description: "Sent on the conversation's channel from the tenant's address, through the outbox: reply stages and consent apply as for any send. Audited (`conversation.person-reply`). Hand the conversation to a person first (`PUT …/handoff`) so the bot does not answer too.", body: PersonReplyBody, bodyExample: { text: 'This is Ana from the clinic. I am here with you.', by: 'Ana' }, responses: { 201: { description: 'The queued message', schema: Responses.outboxItem.pick({ item: true }) } }, errors: ['PARLEY_BAD_REQUEST', 'PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'conversation');
    const body = parseWith(PersonReplyBody, req.body ?? {});
    const tenantId = param(req, 'tenant');
    const { rows } = await db().query<{ channel: string; participant: string; from_address: string | null }>(
      `SELECT c.channel, c.participant,
              COALESCE((SELECT to_address FROM parley_inbound WHERE tenant_id = c.tenant_id AND conversation_id = c.id ORDER BY received_at DESC LIMIT 1),
                       (SELECT from_address FROM parley_outbox WHERE tenant_id = c.tenant_id AND conversation_id = c.id ORDER BY created_at DESC LIMIT 1)) AS from_address
         FROM parley_conversations c WHERE c.tenant_id = $1 AND c.id = $2`,
      [tenantId, id],
    );
    const conv = rows[0];
    if (!conv) throw notFound(`No conversation "${id}"`);
    const actor = actorOf(req);
    const item = await gateway.services().enqueueOutbound({
      tenantId,
      channel: conv.channel,
      to: conv.participant,
      ...(conv.from_address ? { from: conv.from_address } : {}),
      text: body.text,
      conversationId: id,
      options: { sentBy: 'person', by: body.by ?? actor },
    });
    await db().query('INSERT INTO parley_audit (tenant_id, actor, action, subject_hash, detail) VALUES ($1, $2, $3, $4, $5)', [tenantId, actor, 'conversation.person-reply', hashAddress(conv.participant), { conversationId: id, outboxId: item.id, by: body.by ?? null }]);
    res.status(201).json({ item });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/conversations/:id/messages', auth: 'tenant', tags: ['conversations'], summary: 'Messages of a conversation, both directions', description: 'The newest `limit` messages, returned oldest first; `next` pages back to older ones.', query: ConversationMessagesQuery, responses: { 200: { description: 'The messages', schema: Responses.conversationMessages } }, errors: ['PARLEY_BAD_REQUEST', 'PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'conversation');
    const q = parseWith(ConversationMessagesQuery, req.query);
    const { rows: conv } = await db().query('SELECT id FROM parley_conversations WHERE tenant_id = $1 AND id = $2', [param(req, 'tenant'), id]);
    if (!conv.length) throw notFound(`No conversation "${id}"`);
    const after = q.cursor ? readCursor('conversation-messages', q.cursor, TimeIdKey) : null;
    const { rows } = await db().query<{ id: string; direction: string; from: string; to: string; sortAt: string }>(
      `SELECT *, ${microsOf('at')} AS "sortAt" FROM (
         SELECT id, 'in' AS direction, channel, from_address AS "from", to_address AS "to", body AS text, status, received_at AS at FROM parley_inbound WHERE tenant_id = $1 AND conversation_id = $2
         UNION ALL
         SELECT id, 'out', channel, from_address, to_address, body, status, created_at FROM parley_outbox WHERE tenant_id = $1 AND conversation_id = $2
       ) m
       WHERE ($4::timestamptz IS NULL OR at < $4) AND ($5::text IS NULL OR (at, id) < (${fromMicros('$5')}, $6::uuid))
       ORDER BY at DESC, id DESC LIMIT $3`,
      [param(req, 'tenant'), id, q.limit + 1, q.before ?? null, after?.[0] ?? null, after?.[1] ?? null],
    );
    const { items, next } = pageOf(req, 'conversation-messages', rows, q.limit, (m) => [m.sortAt, m.id]);
    const shown = items.map(({ sortAt: _, ...m }) => (q.mask === 'true' ? { ...m, from: m.direction === 'in' ? maskAddress(m.from) : m.from, to: m.direction === 'out' ? maskAddress(m.to) : m.to } : m));
    res.json({ messages: shown.reverse(), next });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/conversations/:id/handoff', auth: 'tenant', tags: ['conversations'], summary: 'Who answers the conversation: the bot or a person', responses: { 200: { description: 'The handoff state', schema: Responses.handoff } }, errors: ['PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'conversation');
    const handoff = await readHandoff(db(), param(req, 'tenant'), id);
    if (!handoff) throw notFound(`No conversation "${id}"`);
    res.json({ handoff });
  });

  route({ method: 'put', path: '/v1/tenants/:tenant/conversations/:id/handoff', auth: 'tenant', tags: ['conversations'], summary: 'Hand the conversation to a person, or back to the bot', description: 'Audited. While `human`, only screening stages run.', body: HandoffBody, bodyExample: { state: 'bot', reason: 'resolved by phone' }, responses: { 200: { description: 'The new state', schema: Responses.handoff } }, errors: ['PARLEY_BAD_REQUEST', 'PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'conversation');
    const body = HandoffBody.safeParse(req.body ?? {});
    if (!body.success) throw badRequest('Body must be { "state": "bot" | "human", "reason"?: string }');
    const tenantId = param(req, 'tenant');
    const by = req.principal?.kind === 'tenant' ? `key:${req.principal.keyId}` : 'operator';
    const result = await setHandoff(db(), { tenantId, conversationId: id, state: body.data.state, reason: body.data.reason ?? null, by });
    if (!result) throw notFound(`No conversation "${id}"`);
    if (result.changed) gateway.metrics.handoffs.inc({ tenant: tenantId, to: body.data.state, by: 'operator' });
    res.json({ handoff: result.handoff });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/messages/:id', auth: 'tenant', tags: ['messages'], summary: 'An inbound message with its stage records, annotations and replies', responses: { 200: { description: 'The message and its replies', schema: Responses.message } }, errors: ['PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'message');
    const { rows } = await db().query(
      `SELECT id, channel, provider_message_id AS "providerMessageId", conversation_id AS "conversationId", from_address AS "from", to_address AS "to",
              body AS text, media, attributes, status, stop_reason AS "stopReason", error, stages, annotations, received_at AS "receivedAt", processed_at AS "processedAt"
       FROM parley_inbound WHERE tenant_id = $1 AND id = $2`,
      [param(req, 'tenant'), id],
    );
    if (!rows[0]) throw notFound(`No message "${id}"`);
    const { rows: replies } = await db().query('SELECT * FROM parley_outbox WHERE tenant_id = $1 AND inbound_id = $2 ORDER BY seq', [param(req, 'tenant'), id]);
    res.json({ message: rows[0], replies: replies.map(toOutbound) });
  });

  const outboxList = (fixedStatus?: string) => async (req: express.Request, res: express.Response) => {
    const q = parseQuery(req.query);
    const list = fixedStatus === 'dead' ? 'dead-letters' : 'outbox';
    const after = q.cursor ? readCursor(list, q.cursor, TimeIdKey) : null;
    const { rows } = await db().query<OutboxRow & { sort_at: string }>(
      `SELECT *, ${microsOf('created_at')} AS sort_at FROM parley_outbox WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::timestamptz IS NULL OR created_at < $3)
         AND ($5::text IS NULL OR (created_at, id) < (${fromMicros('$5')}, $6::uuid))
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [param(req, 'tenant'), fixedStatus ?? q.status ?? null, q.before ?? null, q.limit + 1, after?.[0] ?? null, after?.[1] ?? null],
    );
    const { items, next } = pageOf(req, list, rows, q.limit, (r) => [r.sort_at, r.id]);
    res.json({ [fixedStatus === 'dead' ? 'deadLetters' : 'outbox']: items.map(toOutbound), next });
  };
  route({ method: 'get', path: '/v1/tenants/:tenant/outbox', auth: 'tenant', tags: ['outbox'], summary: 'Outgoing messages, newest first', query: ListQuery, responses: { 200: { description: 'A page of the outbox', schema: Responses.outbox } }, errors: ['PARLEY_BAD_REQUEST'] }, outboxList());
  route({ method: 'get', path: '/v1/tenants/:tenant/dead-letters', auth: 'tenant', tags: ['outbox'], summary: 'Items that will not be retried, with the provider\'s error code', query: PageQuery, responses: { 200: { description: 'A page of dead letters', schema: Responses.deadLetters } }, errors: ['PARLEY_BAD_REQUEST'] }, outboxList('dead'));

  route({ method: 'get', path: '/v1/tenants/:tenant/outbox/:id', auth: 'tenant', tags: ['outbox'], summary: 'An outbox item with its status history', responses: { 200: { description: 'The item', schema: Responses.outboxItem } }, errors: ['PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'outbox item');
    const item = await loadOutbound(db(), param(req, 'tenant'), id);
    if (!item) throw notFound(`No outbox item "${id}"`);
    const { rows: later } = await db().query('SELECT status, error_code AS "errorCode", detail, at FROM parley_outbox_events WHERE tenant_id = $1 AND outbox_id = $2 ORDER BY id', [param(req, 'tenant'), id]);
    // The first status is the row's own (not stored twice): sent inline, provisionally sending inline
    // until the response settled it (then an event says how), or pending for the send job.
    const settled = later.some((e: { detail: { via?: string } | null }) => e.detail?.via !== undefined);
    const wasInline = item.via === 'inline' || item.details?.inline !== undefined;
    const first = wasInline
      ? { status: settled || item.details?.inline !== undefined || item.status === 'sending' ? 'sending' : 'sent', errorCode: null, detail: { via: 'inline' }, at: item.createdAt }
      : { status: 'pending', errorCode: null, detail: { via: item.via }, at: item.createdAt };
    res.json({ item, events: [first, ...later] });
  });

  route({ method: 'post', path: '/v1/tenants/:tenant/outbox/:id/retry', auth: 'tenant', tags: ['outbox'], summary: 'Send a dead, failed or undelivered item again, or release a held one', responses: { 202: { description: 'Queued for sending', schema: Responses.retried } }, errors: [{ code: 'PARLEY_BAD_REQUEST', status: 400, description: 'The item is not dead, failed, undelivered or held' }, 'PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'outbox item');
    const { rows } = await db().query<{ id: string; tenant_id: string; attempts: number }>(
      `WITH upd AS (UPDATE parley_outbox SET status = 'pending', error = NULL, error_code = NULL, updated_at = now()
         WHERE tenant_id = $1 AND id = $2 AND status IN ('dead', 'failed', 'undelivered', 'held') RETURNING id, tenant_id, attempts),
       ev AS (INSERT INTO parley_outbox_events (outbox_id, tenant_id, status, detail) SELECT id, tenant_id, 'pending', '{"retry": "admin"}'::jsonb FROM upd)
       SELECT * FROM upd`,
      [param(req, 'tenant'), id],
    );
    if (!rows[0]) {
      const item = await loadOutbound(db(), param(req, 'tenant'), id);
      if (!item) throw notFound(`No outbox item "${id}"`);
      throw badRequest(`Only dead, failed, undelivered or held items can be retried (this one is ${item.status})`);
    }
    await gateway.outbox.enqueue([{ id: rows[0].id, tenantId: rows[0].tenant_id }], Date.now());
    res.status(202).json({ item: await loadOutbound(db(), param(req, 'tenant'), id) });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/consent/:address', auth: 'tenant', tags: ['consent'], summary: 'Opt-in/out status of an address and its history', responses: { 200: { description: 'The status', schema: Responses.consent } } }, async (req, res) => {
    const address = consentAddress(param(req, 'address'));
    const optedOut = await gateway.consent.isOptedOut(param(req, 'tenant'), address);
    res.json({ address, status: optedOut ? 'opted-out' : 'opted-in', history: await gateway.consent.history(param(req, 'tenant'), address) });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/usage', auth: 'tenant', tags: ['usage'], summary: 'Usage totals by kind or by day', query: UsageQuery, responses: { 200: { description: 'The totals', schema: Responses.usage } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const q = usageQuery.safeParse(req.query);
    if (!q.success) throw badRequest(`Invalid query: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const to = q.data.to ?? new Date();
    const from = q.data.from ?? new Date(to.getTime() - 30 * 24 * 3600_000);
    const usage = await gateway.usage.summary({ tenantId: param(req, 'tenant'), from, to, groupBy: q.data.groupBy, ...(q.data.kind ? { kind: q.data.kind } : {}) });
    res.json({ from, to, groupBy: q.data.groupBy, usage });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/keys', auth: 'tenant', tags: ['keys'], summary: 'Stored API keys of the tenant (never their secrets)', description: 'Oldest first.', query: WholeListQuery, responses: { 200: { description: 'The keys', schema: Responses.keys } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const q = parseWith(WholeListQuery, req.query);
    const after = q.cursor ? readCursor('keys', q.cursor, TimeIdKey) : null;
    const { rows } = await db().query<{ id: string; sortAt: string }>(
      `SELECT id, label, created_at AS "createdAt", revoked_at AS "revokedAt", ${microsOf('created_at')} AS "sortAt" FROM parley_api_keys
        WHERE tenant_id = $1 AND ($3::text IS NULL OR (created_at, id) > (${fromMicros('$3')}, $4::uuid))
        ORDER BY created_at, id LIMIT $2`,
      [param(req, 'tenant'), q.limit + 1, after?.[0] ?? null, after?.[1] ?? null],
    );
    const { items, next } = pageOf(req, 'keys', rows, q.limit, (r) => [r.sortAt, r.id]);
    res.json({ keys: items.map(({ sortAt: _, ...k }) => k), next });
  });

  route({ method: 'post', path: '/v1/tenants/:tenant/keys', auth: 'operator+tenant', tags: ['keys'], summary: 'Create an API key (the secret is shown once)', description: 'Audited.', body: KeyBody, bodyExample: { label: 'crm integration' }, responses: { 201: { description: 'The key with its secret', schema: Responses.createdKey } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const body = KeyBody.safeParse(req.body ?? {});
    if (!body.success) throw badRequest('Body must be { "label": string }');
    const key = generateApiKey(param(req, 'tenant'));
    const { rows } = await db().query('INSERT INTO parley_api_keys (tenant_id, key_hash, label) VALUES ($1, $2, $3) RETURNING id, label, created_at AS "createdAt"', [param(req, 'tenant'), hashApiKey(key), body.data.label]);
    await db().query('INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ($1, $2, $3, $4)', [param(req, 'tenant'), 'operator', 'api-key.create', { keyId: rows[0].id }]);
    res.status(201).json({ key: { ...rows[0], secret: key } });
  });

  route({ method: 'delete', path: '/v1/tenants/:tenant/keys/:id', auth: 'operator+tenant', tags: ['keys'], summary: 'Revoke an API key', description: 'Audited.', responses: { 204: { description: 'Revoked' } }, errors: [{ code: 'PARLEY_NOT_FOUND', status: 404, description: 'No active key with that id' }] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'key');
    const { rowCount } = await db().query('UPDATE parley_api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL', [param(req, 'tenant'), id]);
    if (!rowCount) throw notFound(`No active key "${id}"`);
    await db().query('INSERT INTO parley_audit (tenant_id, actor, action, detail) VALUES ($1, $2, $3, $4)', [param(req, 'tenant'), 'operator', 'api-key.revoke', { keyId: id }]);
    res.status(204).end();
  });

  route({ method: 'get', path: '/v1/plugins', auth: 'operator', tags: ['operations'], summary: 'The plugins this gateway runs', description: 'By name.', query: WholeListQuery, responses: { 200: { description: 'The plugins', schema: Responses.plugins } }, errors: ['PARLEY_BAD_REQUEST'] }, (req, res) => {
    const { items, next } = pageOfList(req, 'plugins', gateway.pluginNames(), parseWith(WholeListQuery, req.query), (p) => p.name);
    res.json({ plugins: items, next });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/activity', auth: 'tenant', tags: ['messages'], summary: 'Messages in and out per channel over the last minutes, in buckets', query: ActivityQuery, responses: { 200: { description: 'Counts per bucket', schema: Responses.activity } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const q = parseWith(ActivityQuery, req.query);
    const bucket = q.bucketMinutes * 60;
    const buckets = Math.ceil(q.minutes / q.bucketMinutes);
    // Aligned to whole buckets, so a chart polled every few seconds does not shift its bars.
    const since = new Date(Math.floor(Date.now() / 1000 / bucket) * bucket * 1000 - (buckets - 1) * bucket * 1000);
    const { rows } = await db().query<{ channel: string; direction: 'in' | 'out'; b: number; n: number }>(
      `SELECT channel, 'in' AS direction, floor(extract(epoch FROM received_at - $2::timestamptz) / $3)::int AS b, count(*)::int AS n
         FROM parley_inbound WHERE tenant_id = $1 AND received_at >= $2 GROUP BY 1, 2, 3
       UNION ALL
       SELECT channel, 'out', floor(extract(epoch FROM created_at - $2::timestamptz) / $3)::int, count(*)::int
         FROM parley_outbox WHERE tenant_id = $1 AND created_at >= $2 GROUP BY 1, 2, 3`,
      [param(req, 'tenant'), since, bucket],
    );
    const series = new Map<string, { channel: string; direction: 'in' | 'out'; counts: number[] }>();
    for (const r of rows) {
      const key = `${r.channel}\u0000${r.direction}`;
      let s = series.get(key);
      if (!s) series.set(key, (s = { channel: r.channel, direction: r.direction, counts: new Array<number>(buckets).fill(0) }));
      if (r.b >= 0 && r.b < buckets) s.counts[r.b]! += r.n;
    }
    res.json({ since: since.toISOString(), bucketSeconds: bucket, series: [...series.values()].sort((a, b) => a.channel.localeCompare(b.channel) || a.direction.localeCompare(b.direction)) });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/alerts', auth: 'tenant', tags: ['operations'], summary: "The tenant's open alerts", description: 'Those raised on this instance for the tenant (alerts are held in memory by each instance). By source and key.', query: WholeListQuery, responses: { 200: { description: 'Firing alerts', schema: Responses.alerts } }, errors: ['PARLEY_BAD_REQUEST'] }, (req, res) => {
    const open = gateway.alerts.openAlerts().filter((a) => a.tenantId === param(req, 'tenant'));
    const { items, next } = pageOfList(req, 'tenant-alerts', open, parseWith(WholeListQuery, req.query), alertKey);
    res.json({ alerts: items, next });
  });

  route({ method: 'get', path: '/v1/alerts', auth: 'operator', tags: ['operations'], summary: 'Open alerts', description: 'By source and key.', query: WholeListQuery, responses: { 200: { description: 'Firing alerts', schema: Responses.alerts } }, errors: ['PARLEY_BAD_REQUEST'] }, (req, res) => {
    const { items, next } = pageOfList(req, 'alerts', gateway.alerts.openAlerts(), parseWith(WholeListQuery, req.query), alertKey);
    res.json({ alerts: items, next });
  });

};

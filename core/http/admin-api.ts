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
import { loadOutbound, toOutbound } from '../storage/message-store.js';
import { consentAddress } from '../consent.js';
import { readHandoff, setHandoff } from '../handoff.js';
import { param } from './app.js';
import { HandoffBody, KeyBody, ListQuery, PageQuery, Responses, UsageQuery } from './api-schemas.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const listQuery = ListQuery;
const usageQuery = UsageQuery;

function parseQuery(query: unknown) {
  const parsed = listQuery.safeParse(query);
  if (!parsed.success) throw badRequest(`Invalid query: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

function uuidParam(value: string | undefined, what: string): string {
  if (!value || !UUID.test(value)) throw notFound(`No ${what} "${value}"`);
  return value;
}

/** The admin API's kernel routes, each registered from its contract (`/v1/openapi.json`). */
export const adminRoutes = (gateway: Gateway) => ({ route }: RouteHelpers): void => {
  const db = () => gateway.db.pool;

  route({ method: 'get', path: '/v1/tenants', auth: 'key', tags: ['tenants'], summary: 'Tenants this key may see', description: 'The operator key sees every tenant; a tenant key its own.', responses: { 200: { description: 'The tenants', schema: Responses.tenants, example: { tenants: [{ id: 'acme', name: 'Acme Clinic', locale: 'en', pipeline: ['crisis-guard', 'keyword-replies'] }] } } } }, async (req, res) => {
    const principal = req.principal;
    if (!principal) throw unauthenticated();
    const list = gateway.tenants.list().filter((t) => principal.kind === 'operator' || t.id === principal.tenantId);
    res.json({ tenants: list.map((t) => ({ id: t.id, name: t.name, locale: t.locale, pipeline: t.pipeline })) });
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

  route({ method: 'get', path: '/v1/tenants/:tenant/conversations', auth: 'tenant', tags: ['conversations'], summary: 'Conversations, most recently active first', query: PageQuery, responses: { 200: { description: 'A page of conversations', schema: Responses.conversations } }, errors: ['PARLEY_BAD_REQUEST'] }, async (req, res) => {
    const q = parseQuery(req.query);
    const { rows } = await db().query(
      `SELECT id, channel, participant, handoff, created_at AS "createdAt", last_message_at AS "lastMessageAt" FROM parley_conversations
       WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR last_message_at < $2) ORDER BY last_message_at DESC LIMIT $3`,
      [param(req, 'tenant'), q.before ?? null, q.limit],
    );
    res.json({ conversations: rows });
  });

  route({ method: 'get', path: '/v1/tenants/:tenant/conversations/:id/messages', auth: 'tenant', tags: ['conversations'], summary: 'Messages of a conversation, both directions', description: 'The newest `limit` messages, returned oldest first.', query: PageQuery, responses: { 200: { description: 'The messages', schema: Responses.conversationMessages } }, errors: ['PARLEY_BAD_REQUEST', 'PARLEY_NOT_FOUND'] }, async (req, res) => {
    const id = uuidParam(param(req, 'id'), 'conversation');
    const q = parseQuery(req.query);
    const { rows: conv } = await db().query('SELECT id FROM parley_conversations WHERE tenant_id = $1 AND id = $2', [param(req, 'tenant'), id]);
    if (!conv.length) throw notFound(`No conversation "${id}"`);
    const { rows } = await db().query(
      `SELECT * FROM (
         SELECT id, 'in' AS direction, channel, from_address AS "from", to_address AS "to", body AS text, status, received_at AS at FROM parley_inbound WHERE tenant_id = $1 AND conversation_id = $2
         UNION ALL
         SELECT id, 'out', channel, from_address, to_address, body, status, created_at FROM parley_outbox WHERE tenant_id = $1 AND conversation_id = $2
       ) m ORDER BY at DESC LIMIT $3`,
      [param(req, 'tenant'), id, q.limit],
    );
    res.json({ messages: rows.reverse() });
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
    const { rows } = await db().query(
      `SELECT * FROM parley_outbox WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::timestamptz IS NULL OR created_at < $3)
       ORDER BY created_at DESC LIMIT $4`,
      [param(req, 'tenant'), fixedStatus ?? q.status ?? null, q.before ?? null, q.limit],
    );
    res.json({ [fixedStatus === 'dead' ? 'deadLetters' : 'outbox']: rows.map(toOutbound) });
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

  route({ method: 'get', path: '/v1/tenants/:tenant/keys', auth: 'tenant', tags: ['keys'], summary: 'Stored API keys of the tenant (never their secrets)', responses: { 200: { description: 'The keys', schema: Responses.keys } } }, async (req, res) => {
    const { rows } = await db().query(
      'SELECT id, label, created_at AS "createdAt", revoked_at AS "revokedAt" FROM parley_api_keys WHERE tenant_id = $1 ORDER BY created_at',
      [param(req, 'tenant')],
    );
    res.json({ keys: rows });
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

  route({ method: 'get', path: '/v1/plugins', auth: 'operator', tags: ['operations'], summary: 'The plugins this gateway runs', responses: { 200: { description: 'The plugins', schema: Responses.plugins } } }, (_req, res) => {
    res.json({ plugins: gateway.pluginNames() });
  });

  route({ method: 'get', path: '/v1/alerts', auth: 'operator', tags: ['operations'], summary: 'Open alerts', responses: { 200: { description: 'Firing alerts', schema: Responses.alerts } } }, (_req, res) => {
    res.json({ alerts: gateway.alerts.openAlerts() });
  });

};

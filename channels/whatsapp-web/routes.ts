/**
 * The tenant's routes: session status, the QR code to scan (PNG or text) and inbound media. Any
 * instance answers; the one driving the number from memory, the others from the shared session row.
 */
import type { Router } from 'express';
import QRCode from 'qrcode';
import { z } from 'zod';
import { notFound, param, type PluginContext, type RouteHelpers } from 'parley';
import { qrPath } from './alerts.js';
import type { MediaStore } from './inbound.js';
import { SessionLease } from './lease.js';
import type { SessionMemory } from './memory.js';
import type { Sessions } from './sessions.js';

const Status = z
  .looseObject({
    tenant: z.string(),
    number: z.string(),
    state: z.string().describe('`ready`, `qr`, `connecting`, `disconnected`, `logged-out`...'),
    needsQr: z.boolean(),
    since: z.iso.datetime({ offset: true }),
    detail: z.string().nullable(),
    loggedInAs: z.string().nullable(),
    owner: z.object({ instance: z.string().nullable(), thisInstance: z.boolean(), leaseUntil: z.string().nullable() }).describe('The instance driving the number'),
    reconnects: z.number().int(),
    memoryBytes: z.number().nullable(),
    qr: z.looseObject({ available: z.boolean(), png: z.string().optional(), txt: z.string().optional() }),
  })
  .meta({ id: 'WhatsAppWebStatus' });
const notEnabled = { code: 'PARLEY_NOT_FOUND', status: 404, description: 'whatsapp-web is not enabled for the tenant, or nothing to show' } as const;
const tags = ['whatsapp-web'];

export function adminRoutes(deps: { ctx: Pick<PluginContext, 'db'>; sessions: Sessions; memory: SessionMemory; media: MediaStore }) {
  const { ctx, sessions, media } = deps;
  return (_router: Router, { route }: RouteHelpers): void => {
    const enabled = (tenantId: string) => {
      const session = sessions.get(tenantId);
      if (!session) throw notFound(`whatsapp-web is not enabled for tenant "${tenantId}"`);
      return session;
    };
    route(
      { method: 'get', path: '/v1/tenants/:tenant/whatsapp-web/status', auth: 'tenant', tags, summary: 'The WhatsApp session: state, who drives it, whether a QR code waits', responses: { 200: { description: 'The status', schema: Status } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = param(req, 'tenant');
        const session = enabled(tenantId);
        const row = await SessionLease.read(ctx.db, tenantId);
        // The owner answers from memory; another instance from the row the owner publishes.
        const local = session.state !== 'standby' && session.state !== 'stopped';
        const state = local ? session.state : (row?.leaseValid ? row.state : 'disconnected');
        const qr = local ? session.qr : row?.leaseValid ? (row.qr ?? undefined) : undefined;
        const wid = local ? session.wid : row?.wid;
        const memoryBytes = await deps.memory(session);
        res.set('cache-control', 'no-store').json({
          tenant: tenantId,
          number: sessions.numberOf(tenantId)!,
          state,
          needsQr: local ? session.waitingForQr : state === 'qr' || state === 'logged-out',
          since: (local ? session.stateSince : (row?.stateSince ?? session.stateSince)).toISOString(),
          detail: (local ? session.detail : row?.stateDetail) ?? null,
          loggedInAs: wid ? `+${wid.split('@')[0]}` : null,
          owner: { instance: row?.leaseValid ? row.ownerInstance : null, thisInstance: local, leaseUntil: row?.leaseUntil?.toISOString() ?? null },
          reconnects: session.reconnects,
          memoryBytes: memoryBytes ?? null,
          qr: qr ? { available: true, png: qrPath(tenantId), txt: qrPath(tenantId).replace(/\.png$/, '.txt') } : { available: false },
        });
      },
    );
    const currentQr = async (tenantId: string) => {
      const session = enabled(tenantId);
      if (session.state !== 'standby' && session.state !== 'stopped') {
        if (!session.qr) throw notFound(`No QR code to scan: the session is ${session.state}`);
        return session.qr;
      }
      const row = await SessionLease.read(ctx.db, tenantId);
      if (!row?.qr || !row.leaseValid) throw notFound(`No QR code to scan: the session is ${row?.leaseValid ? row.state : 'not running'}`);
      return row.qr;
    };
    route(
      { method: 'get', path: '/v1/tenants/:tenant/whatsapp-web/qr.png', auth: 'tenant', tags, summary: 'The QR code to scan with the phone, as a PNG', responses: { 200: { description: 'A PNG', contentType: 'image/png' } }, errors: [notEnabled] },
      async (req, res) => {
        const png = await QRCode.toBuffer(await currentQr(param(req, 'tenant')), { type: 'png', width: 320, margin: 2 });
        res.set('cache-control', 'no-store').type('image/png').send(png);
      },
    );
    route(
      { method: 'get', path: '/v1/tenants/:tenant/whatsapp-web/qr.txt', auth: 'tenant', tags, summary: 'The QR code as text, for a terminal', responses: { 200: { description: 'UTF-8 block characters', contentType: 'text/plain' } }, errors: [notEnabled] },
      async (req, res) => {
        const text = await QRCode.toString(await currentQr(param(req, 'tenant')), { type: 'utf8' });
        res.set('cache-control', 'no-store').type('text/plain; charset=utf-8').send(text);
      },
    );
    route(
      { method: 'get', path: '/v1/tenants/:tenant/whatsapp-web/media/:id', auth: 'tenant', tags, summary: 'Media of an inbound message, as an attachment', responses: { 200: { description: 'The file, in its own content type', contentType: 'application/octet-stream' } }, errors: [notEnabled] },
      async (req, res) => {
        const tenantId = param(req, 'tenant');
        enabled(tenantId);
        const item = await media.load(tenantId, param(req, 'id'));
        if (!item) throw notFound('No such media');
        res.set('cache-control', 'private, max-age=3600').set('x-content-type-options', 'nosniff').type(item.contentType);
        res.set('content-disposition', `attachment${item.filename ? `; filename="${item.filename.replace(/["\\\r\n]/g, '_')}"` : ''}`);
        res.send(item.data);
      },
    );
  };
}

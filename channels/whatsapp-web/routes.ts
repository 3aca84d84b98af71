/**
 * The tenant's routes: session status, the QR code to scan (PNG or text) and inbound media. Any
 * instance answers; the one driving the number from memory, the others from the shared session row.
 */
import type { Router } from 'express';
import QRCode from 'qrcode';
import { notFound, param, type PluginContext, type RouteHelpers } from 'parley';
import { qrPath } from './alerts.js';
import type { MediaStore } from './inbound.js';
import { SessionLease } from './lease.js';
import type { SessionMemory } from './memory.js';
import type { Sessions } from './sessions.js';

export function adminRoutes(deps: { ctx: Pick<PluginContext, 'db'>; sessions: Sessions; memory: SessionMemory; media: MediaStore }) {
  const { ctx, sessions, media } = deps;
  return (router: Router, { tenantAuth }: RouteHelpers): void => {
    const enabled = (tenantId: string) => {
      const session = sessions.get(tenantId);
      if (!session) throw notFound(`whatsapp-web is not enabled for tenant "${tenantId}"`);
      return session;
    };
    router.get('/v1/tenants/:tenant/whatsapp-web/status', tenantAuth('tenant'), async (req, res) => {
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
    });
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
    router.get('/v1/tenants/:tenant/whatsapp-web/qr.png', tenantAuth('tenant'), async (req, res) => {
      const png = await QRCode.toBuffer(await currentQr(param(req, 'tenant')), { type: 'png', width: 320, margin: 2 });
      res.set('cache-control', 'no-store').type('image/png').send(png);
    });
    router.get('/v1/tenants/:tenant/whatsapp-web/qr.txt', tenantAuth('tenant'), async (req, res) => {
      const text = await QRCode.toString(await currentQr(param(req, 'tenant')), { type: 'utf8' });
      res.set('cache-control', 'no-store').type('text/plain; charset=utf-8').send(text);
    });
    router.get('/v1/tenants/:tenant/whatsapp-web/media/:id', tenantAuth('tenant'), async (req, res) => {
      const tenantId = param(req, 'tenant');
      enabled(tenantId);
      const item = await media.load(tenantId, param(req, 'id'));
      if (!item) throw notFound('No such media');
      res.set('cache-control', 'private, max-age=3600').set('x-content-type-options', 'nosniff').type(item.contentType);
      res.set('content-disposition', `attachment${item.filename ? `; filename="${item.filename.replace(/["\\\r\n]/g, '_')}"` : ''}`);
      res.send(item.data);
    });
  };
}

/**
 * The `whatsapp-web` channel: one whatsapp-web.js session per tenant number, logged in by QR code,
 * owned by exactly one Parley instance at a time through a database lease.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import QRCode from 'qrcode';
import { ConfigError, definePlugin, notFound, param, ParleyError, SendError } from 'parley';
import { createRealClient } from './client-like.js';
import { MediaStore, toInbound } from './inbound.js';
import { SessionLease, migrations } from './lease.js';
import { browserPid, processTreeRssBytes } from './memory.js';
import { SendRelay } from './relay.js';
import { WhatsAppWebSession } from './session.js';
import { PostgresSessionStore } from './session-store.js';
import { CHANNEL, SESSION_STATES, optionsSchema, settingsSchema, type ClientFactory, type SessionState, type WhatsAppWebSettings } from './types.js';

export { CHANNEL as WHATSAPP_WEB_CHANNEL, SESSION_STATES } from './types.js';
export type { ClientFactory, SessionState, WhatsAppWebOptions, WhatsAppWebSettings } from './types.js';
export { SessionLease } from './lease.js';
export { SendRelay } from './relay.js';
export { PostgresSessionStore, type RemoteAuthStore } from './session-store.js';
export type { WhatsAppWebAuth } from './client-like.js';

/** What tests (or an embedding application) may replace. */
export interface WhatsAppWebDeps {
  /** Builds each number's client; default: a real whatsapp-web.js client with LocalAuth. */
  clientFactory?: ClientFactory;
  /** Where QR codes are drawn; default stderr (stdout carries the JSON logs). */
  terminal?: { write(text: string): unknown };
  /** This process's id in the ownership table; default host, pid and a random suffix. */
  instanceId?: string;
  /** HTTP client for outbound media. */
  fetch?: typeof fetch;
}

/** The production factory: a real whatsapp-web.js client with LocalAuth (or RemoteAuth, `auth: database`), not yet initialised. */
export const realClientFactory: ClientFactory = (o) => createRealClient({ clientId: o.clientId, dataPath: o.dataPath, executablePath: o.executablePath, ...(o.auth ? { auth: o.auth } : {}) });

/** whatsapp-web.js delivery acks, as outbox statuses. */
const ACK_STATUS: Record<number, 'sent' | 'delivered' | 'read' | 'failed'> = { [-1]: 'failed', 1: 'sent', 2: 'delivered', 3: 'read', 4: 'read' };

/**
 * Builds the channel plugin; the module's default export is `createWhatsAppWebChannel()`.
 * @example
 * // test/fixtures/whatsapp-web-fake.ts
 * export default createWhatsAppWebChannel({ clientFactory: () => new FakeWhatsAppWebClient() });
 */
export function createWhatsAppWebChannel(deps: WhatsAppWebDeps = {}) {
  const clientFactory = deps.clientFactory ?? realClientFactory;
  const terminal = deps.terminal ?? process.stderr;
  return definePlugin({
    name: 'whatsapp-web',
    kind: 'channel',
    description: 'WhatsApp through whatsapp-web.js: QR login, one session per number owned by one instance, media, reconnects.',
    optionsSchema,
    settingsSchema,
    setup(ctx) {
      const { options, log } = ctx;
      const instanceId = deps.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
      const sessionDir = options.sessionDir ? resolve(options.sessionDir) : join(ctx.dataDir, 'whatsapp-web');
      const baseUrl = (ctx.publicBaseUrl ?? '').replace(/\/+$/, '');
      if (!deps.clientFactory && ctx.tenants().length > 0 && !existsSync(options.executablePath)) {
        // Fail at start, not in an endless reconnect loop: without a browser no session can run.
        throw new ConfigError([`plugins (whatsapp-web).options.executablePath: Chromium not found at ${options.executablePath} (Debian: apt install chromium; or set PUPPETEER_EXECUTABLE_PATH)`], { plugin: 'whatsapp-web' });
      }
      ctx.migrations(migrations);

      const stateGauge = ctx.metrics.gauge({ name: 'parley_whatsapp_web_session_state', help: 'WhatsApp Web session state per tenant on this instance (1 for the current state)', labelNames: ['tenant', 'state'] as const });
      const reconnects = ctx.metrics.counter({ name: 'parley_whatsapp_web_reconnects_total', help: 'WhatsApp Web client restarts by tenant and reason', labelNames: ['tenant', 'reason'] as const });
      const ignored = ctx.metrics.counter({ name: 'parley_whatsapp_web_ignored_total', help: 'Inbound WhatsApp Web messages not passed to the pipeline, by reason', labelNames: ['tenant', 'reason'] as const });
      const inboundFailures = ctx.metrics.counter({ name: 'parley_whatsapp_web_inbound_failures_total', help: 'Inbound WhatsApp Web messages that could not be recorded', labelNames: ['tenant'] as const });
      const sendTimeouts = ctx.metrics.counter({ name: 'parley_whatsapp_web_send_timeouts_total', help: 'sendMessage calls that never returned (outcome unknown)', labelNames: ['tenant'] as const });
      const owner = ctx.metrics.gauge({ name: 'parley_whatsapp_web_session_owner', help: '1 when this instance drives the tenant number', labelNames: ['tenant'] as const });
      const memoryCache = new Map<string, { at: number; bytes: number | undefined }>();
      ctx.metrics.gauge({
        name: 'parley_whatsapp_web_session_memory_bytes',
        help: 'Resident memory of each session browser (Chromium and its child processes) on this instance',
        labelNames: ['tenant'] as const,
        async collect() {
          this.reset();
          for (const s of sessions.values()) {
            const bytes = await sessionMemory(s);
            if (bytes !== undefined) this.set({ tenant: s.tenantId }, bytes);
          }
        },
      });

      const media = new MediaStore(ctx.db, options.maxMediaBytes);
      const relay = new SendRelay(ctx.db, instanceId, log.child({ component: 'whatsapp-web-relay' }), options.relayPollMs);
      const sessions = new Map<string, WhatsAppWebSession>();
      const reportChains = new Map<string, Promise<void>>();
      const chats = new Map<string, Promise<void>>();
      const settingsByTenant = new Map<string, WhatsAppWebSettings>();
      const background = new Set<Promise<unknown>>();
      let stopping = false;
      const track = (p: Promise<unknown>) => {
        background.add(p);
        void p.finally(() => background.delete(p)).catch(() => undefined);
      };

      async function sessionMemory(s: WhatsAppWebSession): Promise<number | undefined> {
        const pid = s.ownsLocally() ? browserPid(s.currentClient) : undefined;
        if (pid === undefined) return undefined;
        const cached = memoryCache.get(s.tenantId);
        if (cached && Date.now() - cached.at < 10_000) return cached.bytes;
        const bytes = await processTreeRssBytes(pid);
        memoryCache.set(s.tenantId, { at: Date.now(), bytes });
        return bytes;
      }

      const qrPath = (tenantId: string) => `/v1/tenants/${encodeURIComponent(tenantId)}/whatsapp-web/qr.png`;

      for (const { tenant, settings } of ctx.tenants()) {
        ctx.claimAddress(CHANNEL, settings.number, tenant.id);
        settingsByTenant.set(tenant.id, settings);
        const tlog = log.child({ tenant: tenant.id });
        const lease = new SessionLease(ctx.db, tenant.id, settings.number, instanceId, options.leaseTtlMs);
        let loggedOutAlert = false;
        const session: WhatsAppWebSession = new WhatsAppWebSession({
          tenantId: tenant.id,
          number: settings.number,
          clientId: `${tenant.id}-${settings.number.slice(1)}`.replace(/[^A-Za-z0-9_-]/g, '_'),
          dataPath: sessionDir,
          // auth: database keeps the login in whatsapp_web_auth so the instance taking over needs no QR.
          auth: options.auth === 'database' ? { kind: 'database', store: new PostgresSessionStore(ctx.db, tenant.id, sessionDir), backupSyncIntervalMs: options.backupSyncIntervalMs } : { kind: 'local' },
          options,
          clientFactory,
          lease,
          log: tlog,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
          events: {
            state(state, info) {
              for (const s of SESSION_STATES) stateGauge.set({ tenant: tenant.id, state: s }, s === state ? 1 : 0);
              owner.set({ tenant: tenant.id }, state === 'standby' || state === 'stopped' ? 0 : 1);
              if (state !== 'standby' && state !== 'stopped') {
                // The shared row lets every instance's status route show the state and the QR code.
                const fields = { detail: info.detail ?? null, qr: state === 'qr' ? (info.qr ?? null) : null, ...(info.wid ? { wid: info.wid } : {}) };
                const next = (reportChains.get(tenant.id) ?? Promise.resolve()).then(() => lease.report(state, fields)).catch((error: unknown) => tlog.warn({ err: error }, 'could not publish the WhatsApp Web session state'));
                reportChains.set(tenant.id, next);
              }
              if (state !== info.previous || state === 'qr') tlog.info({ state, previous: info.previous, detail: info.detail }, `WhatsApp Web session ${state}`);
              onStateAlerts(state, info);
            },
            message(message) {
              // One chat's messages enter the pipeline in the order they arrived.
              const chat = `${tenant.id}\u0000${message.from}`;
              const next = (chats.get(chat) ?? Promise.resolve()).then(() => handleInbound(tenant.id, settings, message));
              chats.set(chat, next);
              track(next.finally(() => chats.get(chat) === next && chats.delete(chat)));
            },
            ack(message, ack) {
              const status = ACK_STATUS[ack];
              if (!status || !(message.fromMe || message.id.fromMe)) return;
              track(
                ctx.gateway
                  .recordDeliveryStatus({ tenantId: tenant.id, channel: CHANNEL, providerMessageId: message.id._serialized, status, ...(status === 'failed' ? { errorCode: 'ack-error' } : {}) })
                  .catch((error: unknown) => tlog.warn({ err: error }, 'could not record a WhatsApp Web delivery ack')),
              );
            },
            restart(reason) {
              reconnects.inc({ tenant: tenant.id, reason });
            },
            sendTimeout() {
              sendTimeouts.inc({ tenant: tenant.id });
            },
          },
        });
        sessions.set(tenant.id, session);

        function onStateAlerts(state: SessionState, info: { detail?: string; qr?: string; wid?: string; previous: SessionState }): void {
          const base = { tenantId: tenant.id };
          const details = { number: settings.number, ...(info.detail ? { reason: info.detail } : {}), ...(baseUrl ? { url: `${baseUrl}${qrPath(tenant.id)}` } : {}) };
          switch (state) {
            case 'logged-out':
              loggedOutAlert = true;
              ctx.alerts.resolve('whatsapp-web.disconnected', tenant.id);
              ctx.alerts.raise({ ...base, key: 'whatsapp-web.logged-out', severity: 'critical', summary: `WhatsApp number ${settings.number} is logged out (or banned): scan a new QR code`, details });
              break;
            case 'qr':
              if (!loggedOutAlert) ctx.alerts.raise({ ...base, key: 'whatsapp-web.needs-qr', severity: 'warning', summary: `WhatsApp number ${settings.number} waits for a QR code scan`, details });
              if (options.printQr && info.qr) printQr(tenant.id, settings.number, info.qr);
              break;
            case 'disconnected':
              ctx.alerts.raise({ ...base, key: 'whatsapp-web.disconnected', severity: 'warning', summary: `WhatsApp number ${settings.number} disconnected; reconnecting`, details });
              break;
            case 'ready': {
              loggedOutAlert = false;
              for (const key of ['whatsapp-web.logged-out', 'whatsapp-web.disconnected', 'whatsapp-web.needs-qr']) ctx.alerts.resolve(key, tenant.id);
              const loggedInAs = info.wid?.split('@')[0];
              if (loggedInAs && `+${loggedInAs}` !== settings.number) {
                ctx.alerts.raise({ ...base, key: 'whatsapp-web.wrong-number', severity: 'warning', summary: `The QR code was scanned with +${loggedInAs}, not the configured ${settings.number}`, details: { configured: settings.number, loggedInAs: `+${loggedInAs}` } });
              } else ctx.alerts.resolve('whatsapp-web.wrong-number', tenant.id);
              break;
            }
            case 'standby':
              loggedOutAlert = false;
              for (const key of ['whatsapp-web.logged-out', 'whatsapp-web.disconnected', 'whatsapp-web.needs-qr', 'whatsapp-web.wrong-number']) ctx.alerts.resolve(key, tenant.id);
              break;
            default:
              break;
          }
        }

        ctx.health({
          name: `whatsapp-web:${tenant.id}`,
          // One tenant's phone being logged out must not take the gateway out of its load balancer.
          critical: false,
          async check() {
            if (session.state === 'standby') {
              const row = await SessionLease.read(ctx.db, tenant.id);
              return { ok: Boolean(row?.leaseValid && row.state === 'ready'), info: { state: row?.state ?? 'unknown', number: settings.number, thisInstance: false, owner: row?.leaseValid ? row.ownerInstance : null } };
            }
            const memoryBytes = await sessionMemory(session);
            return {
              ok: session.state === 'ready',
              ...(session.detail ? { detail: session.detail } : {}),
              info: { state: session.state, number: settings.number, needsQr: session.waitingForQr, thisInstance: true, since: session.stateSince.toISOString(), reconnects: session.reconnects, ...(memoryBytes !== undefined ? { memoryBytes } : {}) },
            };
          },
        });
      }

      function printQr(tenantId: string, number: string, qr: string): void {
        QRCode.toString(qr, { type: 'terminal', small: true })
          .then((art) => {
            terminal.write(`\nWhatsApp Web login for tenant "${tenantId}" (${number}): on the phone, open WhatsApp > Linked devices > Link a device and scan:\n${art}\n`);
            log.info({ tenant: tenantId, png: qrPath(tenantId) }, 'WhatsApp Web needs a QR scan: printed on the terminal and served at the admin route');
          })
          .catch((error: unknown) => log.warn({ err: error }, 'could not draw the QR code'));
      }

      async function handleInbound(tenantId: string, settings: WhatsAppWebSettings, message: Parameters<typeof toInbound>[0]): Promise<void> {
        try {
          const decision = await toInbound(message, { tenantId, number: settings.number, allowGroups: settings.allowGroups, media, baseUrl, downloadTimeoutMs: 30_000 });
          if ('ignore' in decision) {
            ignored.inc({ tenant: tenantId, reason: decision.ignore });
            return;
          }
          // A message can arrive while the gateway is still starting: wait for it briefly.
          for (let attempt = 0; ; attempt++) {
            try {
              await ctx.gateway.receive(decision.draft);
              return;
            } catch (error) {
              if (!(error instanceof ParleyError && error.code === 'PARLEY_SHUTTING_DOWN') || stopping || attempt >= 40) throw error;
              await new Promise((r) => setTimeout(r, 250));
            }
          }
        } catch (error) {
          inboundFailures.inc({ tenant: tenantId });
          log.error({ err: error, tenant: tenantId }, 'could not take in a WhatsApp Web message');
        }
      }

      ctx.sender({
        channel: CHANNEL,
        async send(message) {
          const session = sessions.get(message.tenantId);
          if (!session) throw new SendError(`whatsapp-web is not configured for tenant "${message.tenantId}"`, { retryable: false, providerCode: 'not-configured' });
          const item = { id: message.id, to: message.to, text: message.text, media: message.media, options: message.options };
          if (session.ownsLocally()) return session.send(item);
          // Another instance drives this number: hand the send to it.
          return relay.request(message.tenantId, message.id, options.sendTimeoutMs + 5_000);
        },
      });

      ctx.routes((router, { tenantAuth }) => {
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
          const memoryBytes = await sessionMemory(session);
          res.set('cache-control', 'no-store').json({
            tenant: tenantId,
            number: settingsByTenant.get(tenantId)!.number,
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
      });

      ctx.dataSubjects({
        name: 'whatsapp-web-media',
        describe: () => ({
          purpose: 'Photos, voice notes and documents a person sent over WhatsApp, kept so pipeline stages and staff can open them',
          recipients: ['WhatsApp (Meta), which carried them'],
          retention: `${options.mediaRetentionDays} days`,
          source: 'The person, through WhatsApp',
        }),
        export: (s) => media.exportFor(s.tenantId, subjectAddresses(s.addresses)),
        erase: async (s) => ({ erased: await media.erase(s.tenantId, subjectAddresses(s.addresses)) }),
      });

      let relayTimer: NodeJS.Timeout | undefined;
      let houseTimer: NodeJS.Timeout | undefined;
      let relaying: Promise<unknown> | undefined;
      const ownedTenants = () => [...sessions.values()].filter((s) => s.ownsLocally()).map((s) => s.tenantId);

      return {
        async start() {
          for (const s of sessions.values()) {
            for (const st of SESSION_STATES) stateGauge.set({ tenant: s.tenantId, state: st }, 0);
            await s.start();
          }
          relayTimer = setInterval(() => {
            relaying ??= relay
              .serve(ownedTenants(), (tenantId, item) => sessions.get(tenantId)!.send(item))
              .catch((error: unknown) => log.warn({ err: error }, 'WhatsApp Web relay round failed'))
              .finally(() => (relaying = undefined));
          }, options.relayPollMs);
          relayTimer.unref();
          houseTimer = setInterval(() => {
            const owned = ownedTenants();
            track(Promise.all([relay.prune(owned), ...owned.map((t) => media.prune(t, options.mediaRetentionDays))]).catch((error: unknown) => log.warn({ err: error }, 'WhatsApp Web housekeeping failed')));
          }, 10 * 60_000);
          houseTimer.unref();
        },
        async stop() {
          stopping = true;
          clearInterval(relayTimer);
          clearInterval(houseTimer);
          await relaying;
          await Promise.allSettled([...reportChains.values()]);
          await Promise.all([...sessions.values()].map((s) => s.stop()));
          await Promise.allSettled([...background]);
        },
      };
    },
  });
}

/** Addresses as this channel stores them (`+E164`), whatever form the request used. */
function subjectAddresses(addresses: string[]): string[] {
  return [...new Set(addresses.flatMap((a) => [a, a.replace(/^whatsapp:/i, '')]))];
}

export default createWhatsAppWebChannel();

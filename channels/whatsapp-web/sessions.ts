/**
 * One WhatsApp Web session per tenant number, wired to the rest of Parley: state changes go to the
 * metrics, the shared session row, the log and the alerts; messages to the inbound handler; acks to
 * the outbox; each number gets its `/readyz` entry. `start` and `stop` also run the relay for
 * numbers this instance drives and the media and relay housekeeping every 10 minutes.
 */
import type { PluginContext } from 'parley';
import { stateAlerts } from './alerts.js';
import { createInboundHandler, type MediaStore } from './inbound.js';
import { SessionLease } from './lease.js';
import type { SessionMemory } from './memory.js';
import type { WebMetrics } from './metrics.js';
import type { SendRelay } from './relay.js';
import { WhatsAppWebSession } from './session.js';
import { PostgresSessionStore } from './session-store.js';
import { CHANNEL, SESSION_STATES, type ClientFactory, type WhatsAppWebOptions, type WhatsAppWebSettings } from './types.js';

/** whatsapp-web.js delivery acks, as outbox statuses. */
const ACK_STATUS: Record<number, 'sent' | 'delivered' | 'read' | 'failed'> = { [-1]: 'failed', 1: 'sent', 2: 'delivered', 3: 'read', 4: 'read' };

export interface SessionsDeps {
  ctx: PluginContext<WhatsAppWebOptions, WhatsAppWebSettings>;
  clientFactory: ClientFactory;
  instanceId: string;
  sessionDir: string;
  /** The public base URL without a trailing slash, or empty. */
  baseUrl: string;
  terminal: { write(text: string): unknown };
  fetch: typeof fetch | undefined;
  metrics: WebMetrics;
  memory: SessionMemory;
  media: MediaStore;
  relay: SendRelay;
}

export function createSessions(deps: SessionsDeps) {
  const { ctx, metrics, memory, media, relay } = deps;
  const { options, log } = ctx;
  const sessions = new Map<string, WhatsAppWebSession>();
  const numbers = new Map<string, string>();
  const reportChains = new Map<string, Promise<void>>();
  let stopping = false;
  const receive = createInboundHandler({ ctx, metrics, media, baseUrl: deps.baseUrl, isStopping: () => stopping });

  for (const { tenant, settings } of ctx.tenants()) {
    const { number } = settings;
    if (!number) {
      log.warn({ tenant: tenant.id }, 'whatsapp-web is off for this tenant: no number configured');
      ctx.health({ name: `whatsapp-web:${tenant.id}`, critical: false, check: async () => ({ ok: true, detail: 'off: no number configured' }) });
      continue;
    }
    ctx.claimAddress(CHANNEL, number, tenant.id);
    numbers.set(tenant.id, number);
    const tlog = log.child({ tenant: tenant.id });
    const lease = new SessionLease(ctx.db, tenant.id, number, deps.instanceId, options.leaseTtlMs);
    const alertOn = stateAlerts({ alerts: ctx.alerts, log, tenantId: tenant.id, number, baseUrl: deps.baseUrl, terminal: options.printQr ? deps.terminal : undefined });
    const session: WhatsAppWebSession = new WhatsAppWebSession({
      tenantId: tenant.id,
      number,
      clientId: `${tenant.id}-${number.slice(1)}`.replace(/[^A-Za-z0-9_-]/g, '_'),
      dataPath: deps.sessionDir,
      // auth: database keeps the login in whatsapp_web_auth so the instance taking over needs no QR.
      auth: options.auth === 'database' ? { kind: 'database', store: new PostgresSessionStore(ctx.db, tenant.id, deps.sessionDir), backupSyncIntervalMs: options.backupSyncIntervalMs } : { kind: 'local' },
      options,
      clientFactory: deps.clientFactory,
      lease,
      log: tlog,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      events: {
        state(state, info) {
          for (const s of SESSION_STATES) metrics.stateGauge.set({ tenant: tenant.id, state: s }, s === state ? 1 : 0);
          metrics.owner.set({ tenant: tenant.id }, state === 'standby' || state === 'stopped' ? 0 : 1);
          if (state !== 'standby' && state !== 'stopped') {
            // The shared row lets every instance's status route show the state and the QR code.
            const fields = { detail: info.detail ?? null, qr: state === 'qr' ? (info.qr ?? null) : null, ...(info.wid ? { wid: info.wid } : {}) };
            const next = (reportChains.get(tenant.id) ?? Promise.resolve()).then(() => lease.report(state, fields)).catch((error: unknown) => tlog.warn({ err: error }, 'could not publish the WhatsApp Web session state'));
            reportChains.set(tenant.id, next);
          }
          if (state !== info.previous || state === 'qr') tlog.info({ state, previous: info.previous, detail: info.detail }, `WhatsApp Web session ${state}`);
          alertOn(state, info);
        },
        message(message) {
          receive(tenant.id, { number, allowGroups: settings.allowGroups }, message);
        },
        ack(message, ack) {
          const status = ACK_STATUS[ack];
          if (!status || !(message.fromMe || message.id.fromMe)) return;
          ctx.background(
            ctx.gateway
              .recordDeliveryStatus({ tenantId: tenant.id, channel: CHANNEL, providerMessageId: message.id._serialized, status, ...(status === 'failed' ? { errorCode: 'ack-error' } : {}) })
              .catch((error: unknown) => tlog.warn({ err: error }, 'could not record a WhatsApp Web delivery ack')),
            'record a WhatsApp Web delivery ack',
          );
        },
        restart(reason) {
          metrics.reconnects.inc({ tenant: tenant.id, reason });
        },
        sendTimeout() {
          metrics.sendTimeouts.inc({ tenant: tenant.id });
        },
      },
    });
    sessions.set(tenant.id, session);

    ctx.health({
      name: `whatsapp-web:${tenant.id}`,
      // One tenant's phone being logged out must not take the gateway out of its load balancer.
      critical: false,
      async check() {
        if (session.state === 'standby') {
          const row = await SessionLease.read(ctx.db, tenant.id);
          return { ok: Boolean(row?.leaseValid && row.state === 'ready'), info: { state: row?.state ?? 'unknown', number, thisInstance: false, owner: row?.leaseValid ? row.ownerInstance : null } };
        }
        const memoryBytes = await memory(session);
        return {
          ok: session.state === 'ready',
          ...(session.detail ? { detail: session.detail } : {}),
          info: { state: session.state, number, needsQr: session.waitingForQr, thisInstance: true, since: session.stateSince.toISOString(), reconnects: session.reconnects, ...(memoryBytes !== undefined ? { memoryBytes } : {}) },
        };
      },
    });
  }

  let relayTimer: NodeJS.Timeout | undefined;
  let houseTimer: NodeJS.Timeout | undefined;
  let relaying: Promise<unknown> | undefined;
  const ownedTenants = () => [...sessions.values()].filter((s) => s.ownsLocally()).map((s) => s.tenantId);

  return {
    get: (tenantId: string): WhatsAppWebSession | undefined => sessions.get(tenantId),
    all: () => sessions.values(),
    /** The tenant's configured number (E.164). */
    numberOf: (tenantId: string): string | undefined => numbers.get(tenantId),
    async start(): Promise<void> {
      for (const s of sessions.values()) {
        for (const st of SESSION_STATES) metrics.stateGauge.set({ tenant: s.tenantId, state: st }, 0);
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
        ctx.background(
          Promise.all([relay.prune(owned), ...owned.map((t) => media.prune(t, options.mediaRetentionDays))]).catch((error: unknown) => log.warn({ err: error }, 'WhatsApp Web housekeeping failed')),
          'prune WhatsApp Web relay requests and media',
        );
      }, 10 * 60_000);
      houseTimer.unref();
    },
    async stop(): Promise<void> {
      stopping = true;
      clearInterval(relayTimer);
      clearInterval(houseTimer);
      await relaying;
      await Promise.allSettled([...reportChains.values()]);
      await Promise.all([...sessions.values()].map((s) => s.stop()));
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;

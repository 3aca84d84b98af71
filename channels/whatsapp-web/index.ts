/**
 * The `whatsapp-web` channel: one whatsapp-web.js session per tenant number, logged in by QR code,
 * owned by exactly one Parley instance at a time through a database lease.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, definePlugin } from 'parley';
import { createRealClient } from './client-like.js';
import { MediaStore } from './inbound.js';
import { migrations } from './lease.js';
import { createSessionMemory } from './memory.js';
import { webMetrics } from './metrics.js';
import { SendRelay } from './relay.js';
import { adminRoutes } from './routes.js';
import { createWebSender } from './sender.js';
import { createSessions } from './sessions.js';
import { optionsSchema, settingsSchema, type ClientFactory } from './types.js';

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
        throw new ConfigError([`${ctx.configPath()}.executablePath: Chromium not found at ${options.executablePath} (Debian: apt install chromium; or set PUPPETEER_EXECUTABLE_PATH)`], { plugin: 'whatsapp-web' });
      }
      ctx.migrations(migrations);

      const memory = createSessionMemory();
      const metrics = webMetrics(ctx.metrics, { sessions: () => sessions.all(), of: memory });
      const media = new MediaStore(ctx.db, options.maxMediaBytes);
      const relay = new SendRelay(ctx.db, instanceId, log.child({ component: 'whatsapp-web-relay' }), options.relayPollMs);
      const sessions = createSessions({ ctx, clientFactory, instanceId, sessionDir, baseUrl, terminal, fetch: deps.fetch, metrics, memory, media, relay });

      ctx.sender(createWebSender({ sessions, relay, sendTimeoutMs: options.sendTimeoutMs }));
      ctx.routes(adminRoutes({ ctx, sessions, memory, media }));
      ctx.dataSubjects(media.dataSubjectProvider(options.mediaRetentionDays));
      return { start: sessions.start, stop: sessions.stop };
    },
  });
}

export default createWhatsAppWebChannel();

/**
 * One tenant number's WhatsApp Web session: holds the lease, drives the whatsapp-web.js client
 * through its states, restarts it with exponential backoff, and sends. The client comes from the
 * injected factory (the real one or a test fake); everything else here is the same code either way.
 */
import type { Logger } from 'pino';
import { SendError, type SendResult } from 'parley';
import type { WhatsAppWebAuth, WhatsAppWebClientLike, WhatsAppWebContent, WhatsAppWebMessageLike } from './client-like.js';
import { createMessageMedia } from './client-like.js';
import type { SessionLease } from './lease.js';
import type { LocalSend } from './relay.js';
import { addressToChat, TimeoutError, withTimeout } from './inbound.js';
import type { ClientFactory, SessionState, WhatsAppWebOptions } from './types.js';

export interface SessionEvents {
  /** Every state change, after the session updated itself. */
  state(state: SessionState, info: { detail?: string; qr?: string; wid?: string; previous: SessionState }): void;
  message(message: WhatsAppWebMessageLike): void;
  ack(message: WhatsAppWebMessageLike, ack: number): void;
  restart(reason: string): void;
  sendTimeout(): void;
}

export interface SessionConfig {
  tenantId: string;
  number: string;
  clientId: string;
  dataPath: string;
  /** LocalAuth or RemoteAuth with its store; passed to the client factory. */
  auth: WhatsAppWebAuth;
  options: WhatsAppWebOptions;
  clientFactory: ClientFactory;
  lease: SessionLease;
  log: Logger;
  events: SessionEvents;
  fetch?: typeof fetch;
}

/**
 * Delay before restart number `attempt` (0-based): doubling from `initialMs` up to `maxMs`, with
 * "equal jitter" (between half and all of it) so many sessions do not reconnect in step.
 */
export function restartDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + random() * (base / 2));
}

/** States in which a new QR scan is what the session waits for. */
const NEEDS_QR: ReadonlySet<SessionState> = new Set(['qr', 'logged-out']);

export class WhatsAppWebSession {
  state: SessionState = 'stopped';
  stateSince = new Date();
  detail: string | undefined;
  wid: string | undefined;
  reconnects = 0;
  /** True from a logout or first QR until the session is ready again. */
  needsQr = false;
  /** The QR code waiting to be scanned, while the state is `qr`. */
  qr: string | undefined;

  private client: WhatsAppWebClientLike | undefined;
  /** Events from a client this session has since replaced are ignored. */
  private generation = 0;
  private attempt = 0;
  private owned = false;
  private stopped = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(private readonly c: SessionConfig) {}

  get tenantId(): string {
    return this.c.tenantId;
  }

  get currentClient(): WhatsAppWebClientLike | undefined {
    return this.client;
  }

  /** This instance owns the number and its last lease renewal still holds. */
  ownsLocally(): boolean {
    return this.owned && this.c.lease.heldLocally();
  }

  /** Takes part in the lease: the first round is awaited, later ones run every renew interval. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    const every = this.c.options.leaseRenewMs ?? Math.max(50, Math.floor(this.c.options.leaseTtlMs / 3));
    this.renewTimer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => (this.ticking = undefined));
    }, every);
    this.renewTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewTimer);
    this.cancelRestart();
    this.clearWatchdog();
    await this.ticking;
    await this.destroyClient();
    const wasOwner = this.owned;
    this.owned = false;
    this.setState('stopped');
    if (wasOwner) await this.c.lease.release().catch((error: unknown) => this.c.log.warn({ err: error }, 'could not release the WhatsApp Web lease; it will expire'));
  }

  /** One lease round: renew or take the number, and start or stop the client to match. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    let owned: boolean;
    try {
      owned = await this.c.lease.acquire();
    } catch (error) {
      // Without the database we cannot prove ownership: keep going only while the last lease holds.
      owned = this.c.lease.heldLocally();
      this.c.log.warn({ err: error, stillOwner: owned }, 'could not renew the WhatsApp Web lease');
    }
    if (this.stopped) return;
    if (owned && !this.owned) {
      this.owned = true;
      this.attempt = 0;
      this.c.log.info({ number: this.c.number }, 'this instance now drives the WhatsApp number');
      this.startClient();
    } else if (!owned && this.owned) {
      this.owned = false;
      this.c.log.warn({ number: this.c.number }, 'another instance took over the WhatsApp number; stopping the local session');
      this.cancelRestart();
      this.clearWatchdog();
      await this.destroyClient();
      this.setState('standby');
    } else if (!owned && this.state !== 'standby') {
      this.setState('standby');
    }
  }

  private startClient(): void {
    if (this.stopped || !this.owned) return;
    const generation = ++this.generation;
    // A logged-out session stays "logged-out" until the new client shows its QR code.
    if (this.state !== 'logged-out') this.setState('starting');
    let client: WhatsAppWebClientLike;
    try {
      client = this.c.clientFactory({ clientId: this.c.clientId, dataPath: this.c.dataPath, executablePath: this.c.options.executablePath, auth: this.c.auth, tenantId: this.c.tenantId, number: this.c.number });
    } catch (error) {
      this.c.log.error({ err: error }, 'could not create the WhatsApp Web client');
      this.scheduleRestart('create-failed');
      return;
    }
    this.client = client;
    const live = () => generation === this.generation && !this.stopped && this.owned;

    client.on('qr', (qr) => {
      if (!live()) return;
      this.clearWatchdog();
      this.needsQr = true;
      this.setState('qr', { qr });
    });
    client.on('authenticated', () => {
      if (!live()) return;
      this.setState('authenticated');
      // WhatsApp Web sometimes never gets from authenticated to ready: restart rather than wait forever.
      this.arm(this.c.options.readyTimeoutMs, 'ready-timeout');
    });
    client.on('ready', () => {
      if (!live()) return;
      this.clearWatchdog();
      this.attempt = 0;
      this.needsQr = false;
      const wid = client.info?.wid._serialized;
      this.wid = wid;
      this.setState('ready', wid ? { wid } : {});
    });
    client.on('auth_failure', (message) => {
      if (!live()) return;
      this.needsQr = true;
      this.setState('logged-out', { detail: `auth_failure: ${message}` });
      this.scheduleRestart('auth-failure');
    });
    client.on('disconnected', (reason) => {
      if (!live()) return;
      if (reason === 'LOGOUT' || reason === 'UNPAIRED' || reason === 'UNPAIRED_IDLE') {
        this.needsQr = true;
        this.setState('logged-out', { detail: String(reason) });
      } else {
        this.setState('disconnected', { detail: String(reason) });
      }
      this.scheduleRestart(`disconnected-${String(reason).toLowerCase()}`);
    });
    client.on('change_state', (state) => {
      if (live()) this.c.log.debug({ waState: state }, 'WhatsApp Web connection state');
    });
    client.on('message', (message) => {
      if (live()) this.c.events.message(message);
    });
    client.on('message_ack', (message, ack) => {
      if (live()) this.c.events.ack(message, ack);
    });

    this.arm(this.c.options.initTimeoutMs, 'init-timeout');
    client.initialize().catch((error: unknown) => {
      if (!live()) return;
      this.c.log.error({ err: error }, 'WhatsApp Web client failed to start');
      this.detail = error instanceof Error ? error.message : String(error);
      this.scheduleRestart('initialize-failed');
    });
  }

  /** Restarts the client after a watchdog delay unless a later event cleared it. */
  private arm(ms: number, reason: string): void {
    this.clearWatchdog();
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      this.c.log.warn({ reason, state: this.state }, 'WhatsApp Web client is stuck; restarting it');
      this.scheduleRestart(reason);
    }, ms);
    this.watchdog.unref();
  }

  private cancelRestart(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  private clearWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  /** Destroys the current client and creates a new one after an exponential, jittered delay. */
  private scheduleRestart(reason: string): void {
    if (this.stopped || !this.owned || this.restartTimer) return;
    this.clearWatchdog();
    const delay = restartDelay(this.attempt, this.c.options.reconnectInitialMs, this.c.options.reconnectMaxMs);
    this.attempt++;
    this.reconnects++;
    this.c.events.restart(reason);
    this.c.log.info({ reason, delayMs: delay, attempt: this.attempt }, 'restarting the WhatsApp Web client');
    this.generation++;
    const old = this.client;
    this.client = undefined;
    void this.destroy(old);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.startClient();
    }, delay);
    this.restartTimer.unref();
  }

  private async destroyClient(): Promise<void> {
    this.generation++;
    const old = this.client;
    this.client = undefined;
    await this.destroy(old);
  }

  private async destroy(client: WhatsAppWebClientLike | undefined): Promise<void> {
    if (!client) return;
    try {
      await withTimeout(client.destroy(), 15_000);
    } catch (error) {
      this.c.log.warn({ err: error }, 'WhatsApp Web client did not close cleanly');
    }
  }

  private setState(state: SessionState, info: { detail?: string; qr?: string; wid?: string } = {}): void {
    const previous = this.state;
    if (previous !== state) this.stateSince = new Date();
    this.state = state;
    this.detail = info.detail;
    this.qr = state === 'qr' ? info.qr : undefined;
    this.c.events.state(state, { ...info, previous });
  }

  get waitingForQr(): boolean {
    return this.needsQr || NEEDS_QR.has(this.state);
  }

  /** Sends through this instance's client. The caller checked that this instance owns the number. */
  async send(item: LocalSend): Promise<SendResult> {
    const client = this.client;
    if (!client || this.state !== 'ready' || !this.ownsLocally()) {
      throw new SendError(`WhatsApp Web session of ${this.c.tenantId} is ${this.state}, not ready`, { retryable: true, providerCode: 'session-not-ready', retryAfterMs: this.c.options.notReadyRetryMs });
    }
    if (item.media.length > 1) {
      // Several sends cannot be retried as one: some would go out twice.
      throw new SendError('whatsapp-web sends at most one media attachment per message', { retryable: false, providerCode: 'too-many-media' });
    }
    const content: WhatsAppWebContent = item.media[0] ? await this.mediaContent(item.media[0].url, item.media[0].contentType, item.media[0].filename) : item.text;
    const options = item.media[0] ? { caption: item.text || item.media[0].caption || '', linkPreview: false } : { linkPreview: false };
    let sent: WhatsAppWebMessageLike | null;
    try {
      sent = await withTimeout(client.sendMessage(addressToChat(item.to), content, options), this.c.options.sendTimeoutMs);
    } catch (error) {
      if (error instanceof TimeoutError) {
        // The page may have sent it or not; a frozen page will not recover by itself.
        this.c.events.sendTimeout();
        this.scheduleRestart('send-timeout');
        throw new SendError(`sendMessage did not return within ${this.c.options.sendTimeoutMs} ms; it may or may not have been delivered`, { retryable: false, outcomeUnknown: true, providerCode: 'outcome-unknown' });
      }
      throw new SendError(`WhatsApp Web send failed: ${error instanceof Error ? error.message : String(error)}`, { retryable: true, providerCode: 'send-failed', cause: error });
    }
    if (!sent) throw new SendError(`WhatsApp Web cannot send to ${item.to.startsWith('+') ? 'this number' : item.to}`, { retryable: false, providerCode: 'invalid-recipient' });
    return { providerMessageId: sent.id._serialized, status: 'sent' };
  }

  private async mediaContent(url: string, contentType: string | undefined, filename: string | undefined): Promise<WhatsAppWebContent> {
    if (!/^https?:\/\//i.test(url)) throw new SendError('whatsapp-web media must be an http(s) URL', { retryable: false, providerCode: 'media-url' });
    let response: Response;
    try {
      response = await (this.c.fetch ?? fetch)(url, { signal: AbortSignal.timeout(15_000) });
    } catch (error) {
      throw new SendError(`could not fetch the media to send: ${error instanceof Error ? error.message : String(error)}`, { retryable: true, providerCode: 'media-fetch' });
    }
    if (!response.ok) throw new SendError(`could not fetch the media to send: HTTP ${response.status}`, { retryable: response.status >= 500, providerCode: 'media-fetch' });
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > this.c.options.maxMediaBytes) throw new SendError('media is larger than maxMediaBytes', { retryable: false, providerCode: 'media-too-large' });
    const mimetype = contentType ?? response.headers.get('content-type')?.split(';')[0] ?? 'application/octet-stream';
    return createMessageMedia({ mimetype, data: bytes.toString('base64'), filename: filename ?? null, filesize: bytes.length });
  }
}

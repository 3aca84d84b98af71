// A stand-in for whatsapp-web.js `Client` with no browser: same event names and methods, plus
// controls that make it do what the real one does on a bad day (LOGOUT, sends that never return).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type {
  WhatsAppWebClientLike,
  WhatsAppWebContent,
  WhatsAppWebInfoLike,
  WhatsAppWebMediaLike,
  WhatsAppWebMessageLike,
  WhatsAppWebSendOptions,
} from '../../channels/whatsapp-web/client-like.js';

/** What {@link FakeWhatsAppWebClient.receive} turns into an incoming message. */
export interface FakeIncomingMessage {
  /** Sender or group; bare digits get `@c.us` (or `@g.us` with `isGroup`). */
  from: string;
  body: string;
  /** Defaults to 'image' when `hasMedia`, else 'chat'. */
  type?: string;
  hasMedia?: boolean;
  /** What `downloadMedia()` returns; a small JPEG-typed payload by default. */
  media?: WhatsAppWebMediaLike;
  isGroup?: boolean;
  /** Group participant; defaults to `15550009999@c.us` in groups. */
  author?: string;
  /** The message's own id (the part after the chat id); random by default. */
  id?: string;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
}

/** A `sendMessage` call as the fake saw it. */
export interface FakeSendCall {
  chatId: string;
  content: WhatsAppWebContent;
  options: WhatsAppWebSendOptions | undefined;
  outcome: 'sent' | 'failed' | 'hanging';
  message?: WhatsAppWebMessageLike;
}

/** The number the fake is logged in as after {@link FakeWhatsAppWebClient.becomeReady}. */
export const FAKE_WID = '15550001111@c.us';

/**
 * Fake whatsapp-web.js client. Nothing happens on its own: tests drive it with `emitQr`,
 * `authenticate`, `becomeReady`, `receive`, `disconnect`, `hangSends` and `failSends`.
 *
 * @example
 * const client = new FakeWhatsAppWebClient();
 * channel.start(client);
 * client.emitQr('2@abc'); client.authenticate(); client.becomeReady();
 * client.receive({ from: '15551234567', body: 'hi' });
 */
export class FakeWhatsAppWebClient extends EventEmitter implements WhatsAppWebClientLike {
  info: WhatsAppWebInfoLike | undefined;
  /** Every sendMessage call, including failed and hanging ones. */
  readonly sendCalls: FakeSendCall[] = [];
  initializeCount = 0;
  destroyCount = 0;
  logoutCount = 0;
  /**
   * Stands in for puppeteer's browser, as the real client exposes it. Its process is the test process
   * itself (set `browserPid` to another pid, or undefined for "no browser process").
   */
  browserPid: number | undefined = process.pid;
  readonly pupBrowser = { process: () => (this.browserPid === undefined ? null : { pid: this.browserPid }) };

  private state: string | null = null;
  private ready = false;
  private hanging = false;
  private readonly failures: Error[] = [];

  /** Messages that were sent successfully. */
  get sent(): FakeSendCall[] {
    return this.sendCalls.filter((call) => call.outcome === 'sent');
  }

  get isReady(): boolean {
    return this.ready;
  }

  async initialize(): Promise<void> {
    this.initializeCount++;
    this.state = 'OPENING';
  }

  async destroy(): Promise<void> {
    this.destroyCount++;
    this.goOffline();
  }

  async logout(): Promise<void> {
    this.logoutCount++;
    this.goOffline();
  }

  async getState(): Promise<string | null> {
    return this.state;
  }

  sendMessage(
    chatId: string,
    content: WhatsAppWebContent,
    options?: WhatsAppWebSendOptions,
  ): Promise<WhatsAppWebMessageLike | null> {
    if (this.hanging) {
      this.sendCalls.push({ chatId, content, options, outcome: 'hanging' });
      return new Promise<never>(() => {});
    }
    const failure = this.failures.shift() ?? (this.ready ? undefined : new Error('Client is not ready'));
    if (failure) {
      this.sendCalls.push({ chatId, content, options, outcome: 'failed' });
      return Promise.reject(failure);
    }
    const id = newMessageId();
    const message = this.buildMessage({
      id: { fromMe: true, remote: chatId, id, _serialized: `true_${chatId}_${id}` },
      from: this.info?.wid._serialized ?? FAKE_WID,
      to: chatId,
      body: typeof content === 'string' ? content : (options?.caption ?? ''),
      type: typeof content === 'string' ? 'chat' : mediaType(content.mimetype),
      fromMe: true,
      media: typeof content === 'string' ? undefined : content,
    });
    this.sendCalls.push({ chatId, content, options, outcome: 'sent', message });
    return Promise.resolve(message);
  }

  /** Emits 'qr' as the real client does while waiting for a scan. */
  emitQr(code = `2@${randomBytes(24).toString('base64')}`): void {
    this.state = 'UNPAIRED';
    this.emit('qr', code);
  }

  /** Emits 'authenticated' (session restored or QR scanned). */
  authenticate(): void {
    this.emit('authenticated');
  }

  /** Emits 'auth_failure' as when a stored session can no longer be restored. */
  failAuth(message = 'Unable to log in. Are the session details valid?'): void {
    this.emit('auth_failure', message);
  }

  /** Sets `info`, the CONNECTED state, and emits 'ready'. */
  becomeReady(wid = FAKE_WID, pushname = 'Parley Test'): void {
    const [user = '', server = 'c.us'] = wid.split('@');
    this.info = { wid: { user, server, _serialized: wid }, pushname };
    this.state = 'CONNECTED';
    this.ready = true;
    this.emit('ready');
  }

  /** Emits 'message' with a whatsapp-web.js-shaped message and returns it. */
  receive(input: FakeIncomingMessage): WhatsAppWebMessageLike {
    const from = chatAddress(input.from, input.isGroup === true);
    const author = from.endsWith('@g.us') ? (input.author ?? '15550009999@c.us') : input.author;
    const hasMedia = input.hasMedia ?? input.media !== undefined;
    const id = input.id ?? newMessageId();
    const message = this.buildMessage({
      id: {
        fromMe: false,
        remote: from,
        id,
        _serialized: author && from.endsWith('@g.us') ? `false_${from}_${id}_${author}` : `false_${from}_${id}`,
      },
      from,
      to: this.info?.wid._serialized ?? FAKE_WID,
      author,
      body: input.body,
      type: input.type ?? (hasMedia ? 'image' : 'chat'),
      fromMe: false,
      timestamp: input.timestamp,
      media: hasMedia
        ? (input.media ?? { mimetype: 'image/jpeg', data: Buffer.from('fake-jpeg').toString('base64'), filename: null })
        : undefined,
    });
    this.emit('message', message);
    return message;
  }

  /**
   * Drops the session as the real client does: LOGOUT emits only 'disconnected'; any other state is
   * first reported through 'change_state'. Afterwards the client is offline and not ready.
   */
  disconnect(reason: 'LOGOUT' | 'NAVIGATION' | 'CONFLICT' | (string & {})): void {
    if (reason !== 'LOGOUT') this.emit('change_state', reason);
    this.goOffline();
    this.emit('disconnected', reason);
  }

  /**
   * Emits 'message_ack' for a message this client sent, as the real client does when WhatsApp reports
   * progress: 1 server, 2 device (delivered), 3 read, -1 error.
   */
  ackMessage(message: WhatsAppWebMessageLike, ack: -1 | 0 | 1 | 2 | 3 | 4): void {
    this.emit('message_ack', message, ack);
  }

  /** While on, `sendMessage` returns a promise that never settles (a frozen WhatsApp Web page). */
  hangSends(on: boolean): void {
    this.hanging = on;
  }

  /** The next `n` sends reject with `error`. */
  failSends(n: number, error: Error | string = 'Evaluation failed: Error: Execution context was destroyed'): void {
    for (let i = 0; i < n; i++) this.failures.push(typeof error === 'string' ? new Error(error) : error);
  }

  private goOffline(): void {
    this.ready = false;
    this.state = null;
    this.info = undefined;
  }

  private buildMessage(fields: {
    id: WhatsAppWebMessageLike['id'];
    from: string;
    to: string;
    author?: string;
    body: string;
    type: string;
    fromMe: boolean;
    timestamp?: number;
    media?: WhatsAppWebMediaLike;
  }): WhatsAppWebMessageLike {
    const { media, ...rest } = fields;
    return {
      ...rest,
      timestamp: fields.timestamp ?? Math.floor(Date.now() / 1000),
      hasMedia: media !== undefined,
      hasQuotedMsg: false,
      downloadMedia: async () => (media ? { ...media } : undefined),
    };
  }
}

function chatAddress(address: string, isGroup: boolean): string {
  if (address.includes('@')) return address;
  return `${address.replace(/^\+/, '')}@${isGroup ? 'g.us' : 'c.us'}`;
}

function mediaType(mimetype: string): string {
  const family = mimetype.split('/')[0];
  return family === 'image' || family === 'video' || family === 'audio' ? family : 'document';
}

function newMessageId(): string {
  return `3EB0${randomBytes(8).toString('hex').toUpperCase()}`;
}

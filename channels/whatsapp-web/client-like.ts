// The part of whatsapp-web.js's `Client` the WhatsApp Web channel uses, so the channel can run on
// the real client or on test/fakes/whatsapp-web-client.ts. Types are looser than the library's
// declarations where the runtime is: `info` is undefined before 'ready', `getState()` resolves null
// without a page, `sendMessage` resolves null for unsupported targets, `downloadMedia` resolves
// undefined without media.
import wwebjs from 'whatsapp-web.js';
import type { RemoteAuthStore } from './session-store.js';

const { Client, LocalAuth, MessageMedia, RemoteAuth } = wwebjs;

/** Media as whatsapp-web.js carries it: base64 data plus MIME type. */
export interface WhatsAppWebMediaLike {
  mimetype: string;
  /** Base64-encoded bytes. */
  data: string;
  filename?: string | null;
  filesize?: number | null;
}

/** A message id; `_serialized` (e.g. `false_15551234567@c.us_3EB0...`) is the stable key. */
export interface WhatsAppWebMessageIdLike {
  fromMe: boolean;
  remote: string;
  id: string;
  _serialized: string;
}

/** The fields of whatsapp-web.js `Message` the channel reads. */
export interface WhatsAppWebMessageLike {
  id: WhatsAppWebMessageIdLike;
  /** Chat id: `<digits>@c.us` for a person, `<id>@g.us` for a group. */
  from: string;
  to: string;
  /** In groups, the participant who wrote the message. */
  author?: string;
  body: string;
  /** whatsapp-web.js `MessageTypes` value: 'chat', 'image', 'ptt', 'document', ... */
  type: string;
  /** Unix seconds. */
  timestamp: number;
  fromMe: boolean;
  hasMedia: boolean;
  hasQuotedMsg: boolean;
  downloadMedia(): Promise<WhatsAppWebMediaLike | undefined>;
}

/** Who the client is logged in as, once 'ready' fired. */
export interface WhatsAppWebInfoLike {
  wid: { server: string; user: string; _serialized: string };
  pushname: string;
}

/** Send options the channel uses (a subset of whatsapp-web.js `MessageSendOptions`). */
export interface WhatsAppWebSendOptions {
  caption?: string;
  quotedMessageId?: string;
  linkPreview?: boolean;
  sendSeen?: boolean;
  sendMediaAsDocument?: boolean;
}

/**
 * Message content: text, or media built with {@link createMessageMedia}. The real client checks
 * `instanceof MessageMedia`, so a plain object would not be sent as media.
 */
export type WhatsAppWebContent = string | InstanceType<typeof MessageMedia>;

/** Client events the channel listens to, with their listener signatures. */
export interface WhatsAppWebClientEvents {
  qr: (qr: string) => void;
  authenticated: () => void;
  auth_failure: (message: string) => void;
  ready: () => void;
  message: (message: WhatsAppWebMessageLike) => void;
  /** `'LOGOUT'` or a `WAState` such as `'CONFLICT'`, `'UNPAIRED'`, `'NAVIGATION'`. */
  disconnected: (reason: string) => void;
  change_state: (state: string) => void;
  /** Delivery progress of a message this client sent: 1 server, 2 device, 3 read, 4 played, -1 error. */
  message_ack: (message: WhatsAppWebMessageLike, ack: number) => void;
}

/** The subset of whatsapp-web.js `Client` the channel uses; the real client and the fake satisfy it. */
export interface WhatsAppWebClientLike {
  readonly info: WhatsAppWebInfoLike | undefined;
  initialize(): Promise<void>;
  destroy(): Promise<void>;
  logout(): Promise<void>;
  getState(): Promise<string | null>;
  sendMessage(
    chatId: string,
    content: WhatsAppWebContent,
    options?: WhatsAppWebSendOptions,
  ): Promise<WhatsAppWebMessageLike | null>;
  on<E extends keyof WhatsAppWebClientEvents>(event: E, listener: WhatsAppWebClientEvents[E]): this;
  once<E extends keyof WhatsAppWebClientEvents>(event: E, listener: WhatsAppWebClientEvents[E]): this;
  off<E extends keyof WhatsAppWebClientEvents>(event: E, listener: WhatsAppWebClientEvents[E]): this;
  removeAllListeners(event?: keyof WhatsAppWebClientEvents): this;
}

/** Chromium flags for a headless server without a GPU, sandbox or need for background traffic. */
export const HEADLESS_CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-setuid-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-extensions',
  '--no-first-run',
  '--no-default-browser-check',
];

/** RemoteAuth refuses backup intervals below one minute. */
export const MIN_BACKUP_SYNC_INTERVAL_MS = 60_000;

/**
 * Where the WhatsApp Web login lives. `local`: LocalAuth, the browser profile in `dataPath` only.
 * `database`: RemoteAuth, the profile in `dataPath` while running and zipped into `store` (after the
 * first ready, then every `backupSyncIntervalMs`), restored from it when a client starts.
 */
export type WhatsAppWebAuth = { kind: 'local' } | { kind: 'database'; store: RemoteAuthStore; backupSyncIntervalMs: number };

export interface RealClientOptions {
  /** Session name; letters, digits, `_` and `-` only (LocalAuth's rule). One per tenant number. */
  clientId: string;
  /** Folder where LocalAuth keeps the browser profile (`<dataPath>/session-<clientId>`; RemoteAuth: `<dataPath>/RemoteAuth-<clientId>`). */
  dataPath: string;
  /** Chromium binary; puppeteer's own download is disabled here. */
  executablePath: string;
  /** Auth strategy; default `{ kind: 'local' }`. */
  auth?: WhatsAppWebAuth;
}

/**
 * Builds a whatsapp-web.js client with a LocalAuth (or, with `auth.kind: 'database'`, RemoteAuth)
 * session and headless Chromium. It does not call `initialize()`: the channel does, under its own timeouts.
 *
 * @example
 * const client = createRealClient({ clientId: 'tenant-42', dataPath: './data/wwebjs', executablePath: '/usr/bin/chromium' });
 * client.on('qr', showQr);
 * await client.initialize();
 */
export function createRealClient(options: RealClientOptions): WhatsAppWebClientLike {
  const auth = options.auth ?? { kind: 'local' };
  const authStrategy =
    auth.kind === 'database'
      ? new RemoteAuth({ clientId: options.clientId, dataPath: options.dataPath, store: auth.store, backupSyncIntervalMs: auth.backupSyncIntervalMs })
      : new LocalAuth({ clientId: options.clientId, dataPath: options.dataPath });
  return new Client({
    authStrategy,
    puppeteer: {
      executablePath: options.executablePath,
      headless: true,
      args: [...HEADLESS_CHROMIUM_ARGS],
    },
  });
}

/** Wraps media in the library's `MessageMedia` so `sendMessage` sends it as an attachment. */
export function createMessageMedia(media: WhatsAppWebMediaLike): WhatsAppWebContent {
  return new MessageMedia(media.mimetype, media.data, media.filename, media.filesize);
}

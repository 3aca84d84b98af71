/**
 * From a whatsapp-web.js message to an `InboundDraft`. Media is downloaded at once (whatsapp-web.js
 * can only fetch it while the message is in the browser's memory) and kept in the database, served
 * to the tenant at `/v1/tenants/:tenant/whatsapp-web/media/:id` and reachable by data-subject
 * erasure; the attachment's URL points there.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Pool } from 'pg';
import { type DataSubjectProvider, type InboundDraft, type MediaAttachment, ParleyError, type PluginContext, PluginError, pluginErrorCode } from 'parley';
import type { WhatsAppWebMessageLike } from './client-like.js';
import { CHANNEL } from './types.js';
import type { WebMetrics } from './metrics.js';

/** Message types that carry nothing a person wrote (system notices, calls, deletions, receipts). */
const IGNORED_TYPES = new Set(['e2e_notification', 'notification', 'notification_template', 'gp2', 'call_log', 'protocol', 'revoked', 'ciphertext', 'broadcast_notification', 'debug', 'unknown']);

/** `15551234567@c.us` -> `+15551234567`; groups and other ids (`...@g.us`, `...@lid`) stay as they are. */
export function chatToAddress(chatId: string): string {
  const m = /^(\d+)@c\.us$/.exec(chatId);
  return m ? `+${m[1]}` : chatId;
}

/** The chat id to send to: `+15551234567` (or `whatsapp:+1...`) -> `15551234567@c.us`; ids pass through. */
export function addressToChat(address: string): string {
  if (address.includes('@')) return address;
  return `${address.replace(/^whatsapp:/i, '').replace(/\D/g, '')}@c.us`;
}

export type InboundDecision = { ignore: 'from-me' | 'status-broadcast' | 'group' | 'system' } | { draft: InboundDraft };

export interface InboundContext {
  tenantId: string;
  /** The tenant's number, E.164. */
  number: string;
  allowGroups: boolean;
  media: MediaStore;
  /** Prefix of media URLs (the public base URL, or empty for a path). */
  baseUrl: string;
  downloadTimeoutMs: number;
}

export async function toInbound(msg: WhatsAppWebMessageLike, c: InboundContext): Promise<InboundDecision> {
  if (msg.fromMe || msg.id.fromMe) return { ignore: 'from-me' };
  if (msg.from === 'status@broadcast') return { ignore: 'status-broadcast' };
  const isGroup = msg.from.endsWith('@g.us');
  if (isGroup && !c.allowGroups) return { ignore: 'group' };
  if (IGNORED_TYPES.has(msg.type)) return { ignore: 'system' };

  const from = chatToAddress(msg.from);
  const sender = isGroup && msg.author ? chatToAddress(msg.author) : from;
  const attributes: Record<string, unknown> = { type: msg.type, ...(isGroup ? { group: msg.from, author: sender } : {}) };
  const media: MediaAttachment[] = [];
  if (msg.hasMedia) {
    const stored = await c.media.saveFrom(msg, { tenantId: c.tenantId, sender, timeoutMs: c.downloadTimeoutMs });
    if ('id' in stored) {
      media.push({
        url: `${c.baseUrl}/v1/tenants/${encodeURIComponent(c.tenantId)}/whatsapp-web/media/${stored.id}`,
        contentType: stored.contentType,
        ...(stored.filename ? { filename: stored.filename } : {}),
        ...(msg.body && msg.type !== 'chat' ? { caption: msg.body } : {}),
      });
      attributes['mediaType'] = msg.type;
    } else {
      attributes['mediaUnavailable'] = stored.unavailable;
    }
  }
  return {
    draft: {
      channel: CHANNEL,
      tenantId: c.tenantId,
      from,
      to: c.number,
      text: msg.body ?? '',
      media,
      providerMessageId: msg.id._serialized,
      receivedAt: new Date(msg.timestamp * 1000),
      // A group is one conversation however many people write in it.
      ...(isGroup ? { threadKey: msg.from } : {}),
      raw: { id: msg.id._serialized, from: msg.from, to: msg.to, author: msg.author ?? null, type: msg.type, timestamp: msg.timestamp, hasMedia: msg.hasMedia },
      attributes,
    },
  };
}

export type SavedMedia = { id: string; contentType: string; filename: string | null; size: number } | { unavailable: 'too-large' | 'download-failed' | 'empty' };

/** Inbound media bytes, per tenant, keyed by WhatsApp message id (a redelivery stores nothing new). */
export class MediaStore {
  constructor(
    private readonly db: Pool,
    private readonly maxBytes: number,
  ) {}

  async saveFrom(msg: WhatsAppWebMessageLike, o: { tenantId: string; sender: string; timeoutMs: number }): Promise<SavedMedia> {
    let media;
    try {
      media = await withTimeout(msg.downloadMedia(), o.timeoutMs);
    } catch {
      return { unavailable: 'download-failed' };
    }
    if (!media?.data) return { unavailable: 'empty' };
    const bytes = Buffer.from(media.data, 'base64');
    if (bytes.length > this.maxBytes) return { unavailable: 'too-large' };
    const { rows } = await this.db.query<{ id: string; content_type: string; filename: string | null; size: number }>(
      `WITH ins AS (
         INSERT INTO whatsapp_web_media (tenant_id, message_id, sender_address, content_type, filename, size, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, message_id) DO NOTHING
         RETURNING id, content_type, filename, size
       )
       SELECT * FROM ins UNION ALL
       SELECT id, content_type, filename, size FROM whatsapp_web_media WHERE tenant_id = $1 AND message_id = $2 AND NOT EXISTS (SELECT 1 FROM ins)`,
      [o.tenantId, msg.id._serialized, o.sender, media.mimetype || 'application/octet-stream', media.filename ?? null, bytes.length, bytes],
    );
    const r = rows[0]!;
    return { id: r.id, contentType: r.content_type, filename: r.filename, size: r.size };
  }

  async load(tenantId: string, id: string): Promise<{ contentType: string; filename: string | null; data: Buffer } | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const { rows } = await this.db.query<{ content_type: string; filename: string | null; data: Buffer }>(`SELECT content_type, filename, data FROM whatsapp_web_media WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    const r = rows[0];
    return r ? { contentType: r.content_type, filename: r.filename, data: r.data } : undefined;
  }

  async exportFor(tenantId: string, addresses: string[]): Promise<Record<string, unknown>[]> {
    const { rows } = await this.db.query(
      `SELECT id, message_id AS "messageId", content_type AS "contentType", filename, size, created_at AS "receivedAt"
       FROM whatsapp_web_media WHERE tenant_id = $1 AND sender_address = ANY($2) ORDER BY created_at`,
      [tenantId, addresses],
    );
    return rows.map((r) => ({ ...r, url: `/v1/tenants/${encodeURIComponent(tenantId)}/whatsapp-web/media/${r.id}` }));
  }

  async erase(tenantId: string, addresses: string[]): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM whatsapp_web_media WHERE tenant_id = $1 AND sender_address = ANY($2)`, [tenantId, addresses]);
    return rowCount ?? 0;
  }

  async prune(tenantId: string, retentionDays: number): Promise<number> {
    const { rowCount } = await this.db.query(`DELETE FROM whatsapp_web_media WHERE tenant_id = $1 AND created_at < now() - $2 * interval '1 day'`, [tenantId, retentionDays]);
    return rowCount ?? 0;
  }

  dataSubjectProvider(retentionDays: number): DataSubjectProvider {
    return {
      name: 'whatsapp-web-media',
      describe: () => ({
        purpose: 'Photos, voice notes and documents a person sent over WhatsApp, kept so pipeline stages and staff can open them',
        recipients: ['WhatsApp (Meta), which carried them'],
        retention: `${retentionDays} days`,
        source: 'The person, through WhatsApp',
      }),
      export: (s) => this.exportFor(s.tenantId, subjectAddresses(s.addresses)),
      erase: async (s) => ({ erased: await this.erase(s.tenantId, subjectAddresses(s.addresses)) }),
    };
  }
}

/** Addresses as this channel stores them (`+E164`), whatever form the request used. */
function subjectAddresses(addresses: string[]): string[] {
  return [...new Set(addresses.flatMap((a) => [a, a.replace(/^whatsapp:/i, '')]))];
}

export interface InboundHandlerDeps {
  ctx: Pick<PluginContext, 'log' | 'gateway' | 'background'>;
  metrics: WebMetrics;
  media: MediaStore;
  /** Prefix of media URLs (the public base URL, or empty for a path). */
  baseUrl: string;
  isStopping(): boolean;
}

/**
 * Takes in the messages of every session: one chat's messages enter the pipeline in the order they
 * arrived, and a message that cannot be taken in is logged and counted, never thrown.
 */
export function createInboundHandler(deps: InboundHandlerDeps) {
  const { ctx, metrics } = deps;
  const chats = new Map<string, Promise<void>>();

  async function handle(tenantId: string, number: string, allowGroups: boolean, message: WhatsAppWebMessageLike): Promise<void> {
    try {
      const decision = await toInbound(message, { tenantId, number, allowGroups, media: deps.media, baseUrl: deps.baseUrl, downloadTimeoutMs: 30_000 });
      if ('ignore' in decision) {
        metrics.ignored.inc({ tenant: tenantId, reason: decision.ignore });
        return;
      }
      // A message can arrive while the gateway is still starting: wait for it briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          await ctx.gateway.receive(decision.draft);
          return;
        } catch (error) {
          if (!(error instanceof ParleyError && error.code === 'PARLEY_SHUTTING_DOWN') || deps.isStopping() || attempt >= 40) throw error;
          await delay(250);
        }
      }
    } catch (error) {
      metrics.inboundFailures.inc({ tenant: tenantId });
      ctx.log.error({ err: error, tenant: tenantId }, 'could not take in a WhatsApp Web message');
    }
  }

  return function receive(tenantId: string, settings: { number: string; allowGroups: boolean }, message: WhatsAppWebMessageLike): void {
    const chat = `${tenantId}\u0000${message.from}`;
    const next = (chats.get(chat) ?? Promise.resolve()).then(() => handle(tenantId, settings.number, settings.allowGroups, message));
    chats.set(chat, next);
    ctx.background(
      next.finally(() => chats.get(chat) === next && chats.delete(chat)),
      'take in a WhatsApp Web message',
    );
  };
}

export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class TimeoutError extends PluginError {
  constructor(readonly ms: number) {
    super(pluginErrorCode('whatsapp-web', 'TIMEOUT'), `did not settle within ${ms} ms`, 504, { plugin: 'whatsapp-web' });
  }
}

/** Sends an outbox item on the number's session here, or hands it to the instance that drives the number. */
import { type ChannelSender, SendError } from 'parley';
import type { SendRelay } from './relay.js';
import type { Sessions } from './sessions.js';
import { CHANNEL, type WhatsAppWebSettings } from './types.js';

export function createWebSender(deps: { sessions: Sessions; relay: SendRelay; sendTimeoutMs: number }): ChannelSender<WhatsAppWebSettings> {
  return {
    channel: CHANNEL,
    async send(message) {
      const session = deps.sessions.get(message.tenantId);
      if (!session) throw new SendError(`whatsapp-web is not configured for tenant "${message.tenantId}"`, { retryable: false, providerCode: 'not-configured' });
      const item = { id: message.id, to: message.to, text: message.text, media: message.media, options: message.options };
      if (session.ownsLocally()) return session.send(item);
      // Another instance drives this number: hand the send to it.
      return deps.relay.request(message.tenantId, message.id, deps.sendTimeoutMs + 5_000);
    },
  };
}

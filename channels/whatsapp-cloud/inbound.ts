/** Turns a parsed Cloud API message into the kernel's `InboundDraft`. */
import type { InboundDraft, MediaAttachment } from 'parley';
import type { CloudMessageEvent } from './payload.js';
import { CHANNEL } from './types.js';

/**
 * Scheme of media references. The Cloud API hands out a media id; the bytes are fetched with the
 * tenant's token from `GET {graph}/{media-id}` (a URL valid for 5 minutes, kept by Meta for 30 days).
 */
export const MEDIA_SCHEME = 'whatsapp-cloud-media:';

/** WhatsApp ids are E.164 digits without `+`; Parley keeps `+E164` so consent spans channels. */
export function toE164(waId: string): string {
  return `+${waId.replace(/\D/g, '')}`;
}

/** The recipient as the Graph API wants it: digits only. */
export function toWaId(address: string): string {
  return address.replace(/^whatsapp:/i, '').replace(/\D/g, '');
}

export function toInboundDraft(event: CloudMessageEvent, tenantId: string): InboundDraft {
  const media: MediaAttachment[] = event.media
    ? [
        {
          url: `${MEDIA_SCHEME}${event.media.id}`,
          ...(event.media.mimeType ? { contentType: event.media.mimeType } : {}),
          ...(event.media.filename ? { filename: event.media.filename } : {}),
          ...(event.media.caption ? { caption: event.media.caption } : {}),
        },
      ]
    : [];
  return {
    channel: CHANNEL,
    tenantId,
    // No threadKey: the conversation is keyed by `from`, whose last message the sender's 24-hour window reads.
    from: toE164(event.from),
    to: toE164(event.displayPhoneNumber),
    text: textOf(event),
    media,
    providerMessageId: event.wamid,
    receivedAt: event.timestamp,
    raw: event.raw,
    attributes: {
      whatsapp: {
        type: event.type,
        phoneNumberId: event.phoneNumberId,
        ...(event.profileName ? { profileName: event.profileName } : {}),
        ...(event.context ? { replyTo: event.context.replyToWamid } : {}),
        ...(event.media ? { mediaType: event.media.type, mediaId: event.media.id } : {}),
        ...(event.interactive ? { interactive: event.interactive } : {}),
        ...(event.button ? { button: event.button } : {}),
        ...(event.location ? { location: event.location } : {}),
      },
    },
  };
}

/** What a stage reads as the message text: the text, a caption, or the title of the choice made. */
function textOf(event: CloudMessageEvent): string {
  if (event.text !== undefined) return event.text;
  if (event.interactive) return event.interactive.title;
  if (event.button) return event.button.text;
  if (event.media) return event.media.caption ?? '';
  if (event.location) {
    const place = [event.location.name, event.location.address].filter(Boolean).join(', ');
    return place || `${event.location.latitude},${event.location.longitude}`;
  }
  return '';
}

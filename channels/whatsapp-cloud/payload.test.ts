import { describe, expect, it } from 'vitest';
import { isPoisonInput, UnstorableInboundError } from 'parley';
import {
  MalformedPayloadError,
  parseCloudWebhook,
  shouldApplyStatus,
  statusRank,
  type CloudMessageEvent,
  type CloudStatusEvent,
} from './payload.js';

const phoneNumberId = '106540352242922';
const metadata = { display_phone_number: '15550783881', phone_number_id: phoneNumberId };
const contacts = [{ profile: { name: 'Sheena Nelson' }, wa_id: '16505551234' }];

function webhook(value: Record<string, unknown>, field = 'messages') {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ value: { messaging_product: 'whatsapp', ...value }, field }] }],
  };
}

function inbound(message: Record<string, unknown>) {
  return webhook({
    metadata,
    contacts,
    messages: [{ from: '16505551234', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=', timestamp: '1749416383', ...message }],
  });
}

function onlyMessage(json: unknown): CloudMessageEvent {
  const events = parseCloudWebhook(json);
  expect(events).toHaveLength(1);
  expect(events[0]?.kind).toBe('message');
  return events[0] as CloudMessageEvent;
}

function status(raw: Record<string, unknown>) {
  return webhook({ metadata, statuses: [raw] });
}

describe('parseCloudWebhook: messages', () => {
  it('reads a text message with its sender, profile name and time', () => {
    const event = onlyMessage(inbound({ type: 'text', text: { body: 'Does it come in another color?' } }));
    expect(event).toMatchObject({
      kind: 'message',
      type: 'text',
      phoneNumberId,
      displayPhoneNumber: '15550783881',
      from: '16505551234',
      wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=',
      profileName: 'Sheena Nelson',
      text: 'Does it come in another color?',
    });
    expect(event.timestamp.toISOString()).toBe('2025-06-08T20:59:43.000Z');
    expect(event.context).toBeUndefined();
  });

  it('keeps the original message as raw', () => {
    const json = inbound({ type: 'text', text: { body: 'hi' }, extra_field_meta_added: true });
    expect(onlyMessage(json).raw).toMatchObject({ extra_field_meta_added: true });
  });

  it('reads an image with caption, mime type and hash, and the message it replies to', () => {
    const event = onlyMessage(
      inbound({
        type: 'image',
        context: { from: '15550783881', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTFFRkMzRUQ1MkI4OTM2OQA=' },
        image: {
          caption: 'This one?',
          mime_type: 'image/jpeg',
          sha256: 'SOPH2HcBzbhyQ7ntIuGt1ODBBw7Q6Hu9p9GdcRf7ZUU=',
          id: '1003383421387256',
        },
      }),
    );
    expect(event.media).toEqual({
      type: 'image',
      id: '1003383421387256',
      mimeType: 'image/jpeg',
      sha256: 'SOPH2HcBzbhyQ7ntIuGt1ODBBw7Q6Hu9p9GdcRf7ZUU=',
      caption: 'This one?',
      filename: undefined,
    });
    expect(event.context).toEqual({ replyToWamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTFFRkMzRUQ1MkI4OTM2OQA=' });
    expect(event.text).toBeUndefined();
  });

  it('reads a document with its file name', () => {
    const event = onlyMessage(
      inbound({
        type: 'document',
        document: { filename: 'invoice.pdf', mime_type: 'application/pdf', sha256: 'abc=', id: '2001' },
      }),
    );
    expect(event.media).toMatchObject({ type: 'document', id: '2001', filename: 'invoice.pdf' });
  });

  it('reads a reply button press', () => {
    const event = onlyMessage(
      inbound({
        type: 'interactive',
        context: { from: '15550783881', id: 'wamid.question' },
        interactive: { type: 'button_reply', button_reply: { id: 'confirm-yes', title: 'Yes' } },
      }),
    );
    expect(event.interactive).toEqual({ type: 'button_reply', id: 'confirm-yes', title: 'Yes' });
    expect(event.context).toEqual({ replyToWamid: 'wamid.question' });
  });

  it('reads a list choice', () => {
    const event = onlyMessage(
      inbound({
        type: 'interactive',
        interactive: {
          type: 'list_reply',
          list_reply: { id: 'slot-0900', title: '9:00', description: 'Tuesday morning' },
        },
      }),
    );
    expect(event.interactive).toEqual({ type: 'list_reply', id: 'slot-0900', title: '9:00' });
  });

  it('reads a template quick-reply button', () => {
    const event = onlyMessage(inbound({ type: 'button', button: { payload: 'STOP_PROMOS', text: 'Stop promotions' } }));
    expect(event.button).toEqual({ payload: 'STOP_PROMOS', text: 'Stop promotions' });
  });

  it('reads a shared location', () => {
    const event = onlyMessage(
      inbound({ type: 'location', location: { latitude: 37.48, longitude: -122.15, name: 'Main St Store' } }),
    );
    expect(event.location).toMatchObject({ latitude: 37.48, longitude: -122.15, name: 'Main St Store' });
  });

  it('turns an unknown message type into an unsupported event instead of failing', () => {
    const json = inbound({
      type: 'unsupported',
      errors: [
        {
          code: 131051,
          title: 'Message type unknown',
          message: 'Message type unknown',
          error_data: { details: 'Message type is currently not supported.' },
        },
      ],
    });
    const events = parseCloudWebhook(json);
    expect(events).toEqual([
      {
        kind: 'unsupported',
        phoneNumberId,
        reason: 'message type "unsupported" is not supported (error 131051: Message type unknown)',
        raw: expect.objectContaining({ type: 'unsupported' }),
      },
    ]);
  });

  it('turns a reaction into an unsupported event and still parses its neighbours', () => {
    const json = webhook({
      metadata,
      contacts,
      messages: [
        { from: '16505551234', id: 'wamid.1', timestamp: '1749416383', type: 'reaction', reaction: { message_id: 'wamid.0', emoji: '👍' } },
        { from: '16505551234', id: 'wamid.2', timestamp: '1749416384', type: 'text', text: { body: 'thanks' } },
      ],
    });
    expect(parseCloudWebhook(json).map((e) => e.kind)).toEqual(['unsupported', 'message']);
  });

  it('turns a known type with a broken body into an unsupported event', () => {
    const [event] = parseCloudWebhook(inbound({ type: 'text', text: { nobody: true } }));
    expect(event).toMatchObject({ kind: 'unsupported', phoneNumberId });
    expect(event?.kind === 'unsupported' && event.reason).toMatch(/^invalid text message/);
  });

  it('reports change fields other than messages as unsupported', () => {
    const json = webhook({ event: 'APPROVED', message_template_id: 1, message_template_name: 'x' }, 'message_template_status_update');
    expect(parseCloudWebhook(json)).toEqual([
      expect.objectContaining({ kind: 'unsupported', phoneNumberId: undefined, reason: 'change field "message_template_status_update" is not handled' }),
    ]);
  });
});

describe('parseCloudWebhook: statuses', () => {
  it('reads a read receipt with pricing and conversation', () => {
    const [event] = parseCloudWebhook(
      status({
        id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTFFRkMzRUQ1MkI4OTM2OQA=',
        status: 'read',
        timestamp: '1750263773',
        recipient_id: '16505551234',
        conversation: { id: 'CONVERSATION_ID', origin: { type: 'service' }, expiration_timestamp: '1750350173' },
        pricing: { billable: true, pricing_model: 'PMP', category: 'service', type: 'regular' },
      }),
    );
    expect(event).toMatchObject({
      kind: 'status',
      phoneNumberId,
      wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QTFFRkMzRUQ1MkI4OTM2OQA=',
      status: 'read',
      recipientId: '16505551234',
      pricing: { billable: true, pricingModel: 'PMP', category: 'service', type: 'regular' },
      conversation: { id: 'CONVERSATION_ID', originType: 'service' },
    });
    expect((event as CloudStatusEvent).timestamp.getTime()).toBe(1750263773_000);
  });

  it('reads a failed status with the 24-hour-window error 131047', () => {
    const [event] = parseCloudWebhook(
      status({
        id: 'wamid.failed',
        status: 'failed',
        timestamp: '1750263773',
        recipient_id: '16505551234',
        errors: [
          {
            code: 131047,
            title: 'Re-engagement message',
            message: 'Re-engagement message',
            error_data: {
              details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
            },
            href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
          },
        ],
      }),
    );
    expect(event).toMatchObject({ kind: 'status', status: 'failed', wamid: 'wamid.failed' });
    expect((event as CloudStatusEvent).errors).toEqual([
      {
        code: 131047,
        title: 'Re-engagement message',
        message: 'Re-engagement message',
        details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
      },
    ]);
  });

  it('turns an unknown status value into an unsupported event', () => {
    const [event] = parseCloudWebhook(
      status({ id: 'wamid.x', status: 'deleted', timestamp: '1750263773', recipient_id: '16505551234' }),
    );
    expect(event).toMatchObject({ kind: 'unsupported', reason: 'status "deleted" is not supported' });
  });
});

describe('parseCloudWebhook: malformed envelopes', () => {
  it.each([
    ['not an object', 'hello'],
    ['another product', { object: 'page', entry: [] }],
    ['entry missing', { object: 'whatsapp_business_account' }],
    ['changes not an array', { object: 'whatsapp_business_account', entry: [{ id: '1', changes: {} }] }],
    ['messages value without metadata', webhook({ messages: [] })],
  ])('throws MalformedPayloadError with a reason (%s)', (_label, json) => {
    let thrown: unknown;
    try {
      parseCloudWebhook(json);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MalformedPayloadError);
    expect((thrown as MalformedPayloadError).code).toBe('PARLEY_WHATSAPP_CLOUD_MALFORMED_PAYLOAD');
    expect((thrown as MalformedPayloadError).reason).not.toBe('');
  });
});

describe('statusRank and shouldApplyStatus', () => {
  it('orders sent < delivered < read', () => {
    expect(statusRank('sent')).toBeLessThan(statusRank('delivered'));
    expect(statusRank('delivered')).toBeLessThan(statusRank('read'));
  });

  it('never moves a delivered message back to sent, nor a read one back to delivered', () => {
    expect(shouldApplyStatus('delivered', 'sent')).toBe(false);
    expect(shouldApplyStatus('read', 'delivered')).toBe(false);
    expect(shouldApplyStatus('sent', 'delivered')).toBe(true);
  });

  it('lets failed replace sent and delivered but not read', () => {
    expect(shouldApplyStatus('sent', 'failed')).toBe(true);
    expect(shouldApplyStatus('delivered', 'failed')).toBe(true);
    expect(shouldApplyStatus('read', 'failed')).toBe(false);
  });

  it('keeps failed terminal', () => {
    for (const later of ['sent', 'delivered', 'read', 'failed'] as const) {
      expect(shouldApplyStatus('failed', later)).toBe(false);
    }
  });

  it('ignores a repeated status and applies any first status', () => {
    expect(shouldApplyStatus('read', 'read')).toBe(false);
    expect(shouldApplyStatus(undefined, 'delivered')).toBe(true);
  });
});

describe('parseCloudWebhook: timestamps out of range', () => {
  it('marks a message or status whose time no real delivery has as unstorable, a poison input', () => {
    for (const timestamp of ['99999999999999', '1', 99_999_999_999]) {
      const [message] = parseCloudWebhook(inbound({ type: 'text', text: { body: 'hi' }, timestamp }));
      const [delivered] = parseCloudWebhook(status({ id: 'wamid.OUT1', status: 'delivered', timestamp, recipient_id: '16505551234' }));
      for (const event of [message, delivered]) {
        expect(event?.kind === 'message' || event?.kind === 'status' ? event.unstorable : undefined, String(timestamp)).toBeInstanceOf(UnstorableInboundError);
        expect(isPoisonInput(event && 'unstorable' in event ? event.unstorable : undefined)).toBe(true);
      }
    }
  });

  it('leaves a plausible time alone', () => {
    expect(onlyMessage(inbound({ type: 'text', text: { body: 'hi' } })).unstorable).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { offReason } from './index.js';
import { chooseSender } from './sender.js';
import { optionsSchema, settingsSchema } from './types.js';

const options = optionsSchema.parse({});
const ready = settingsSchema.parse({ accountSid: 'AC' + '0'.repeat(32), authToken: 't', numbers: ['+15557654321', 'whatsapp:+15557654321'] });

describe('twilio-sms settings', () => {
  it('default to a 5 s reply budget, 10 segments split on words, and signature checking on', () => {
    expect(settingsSchema.parse({})).toMatchObject({ enabled: true, replyBudgetMs: 5000, maxSegments: 10, overflow: 'split', validateSignatures: true, numbers: [] });
  });

  it("refuse a reply budget Twilio's 15 s timeout cannot hold", () => {
    expect(settingsSchema.safeParse({ replyBudgetMs: 15_000 }).success).toBe(false);
  });

  it('say why the channel is off for a tenant', () => {
    expect(offReason(settingsSchema.parse({}), options, undefined)).toMatch(/^accountSid and authToken are not set/);
    expect(offReason(settingsSchema.parse({ authToken: 't' }), options, undefined)).toMatch(/^accountSid is not set/);
    expect(offReason({ ...ready, numbers: [] }, options, undefined)).toMatch(/no numbers/);
    expect(offReason({ ...ready, enabled: false }, options, undefined)).toBe('enabled is false');
    expect(offReason(ready, optionsSchema.parse({ requirePublicBaseUrl: true }), undefined)).toMatch(/PUBLIC_BASE_URL/);
    expect(offReason(ready, options, undefined)).toBeUndefined();
  });
});

describe('chooseSender', () => {
  it('answers from the number the conversation came in on', () => {
    expect(chooseSender({ from: '+15557654321', to: '+15550001111' }, ready)).toEqual({ from: '+15557654321' });
  });

  it('sends a message that is not a reply from the first number of the same kind as the recipient', () => {
    expect(chooseSender({ from: '', to: '+15550001111' }, ready)).toEqual({ from: '+15557654321' });
    expect(chooseSender({ from: '', to: 'whatsapp:+15550001111' }, ready)).toEqual({ from: 'whatsapp:+15557654321' });
    expect(chooseSender({ from: '+15557654321', to: 'whatsapp:+15550001111' }, ready)).toEqual({ from: 'whatsapp:+15557654321' });
  });

  it('prefers the Messaging Service when there is no conversation number', () => {
    const mg = 'MG' + '1'.repeat(32);
    expect(chooseSender({ from: '', to: '+15550001111' }, { ...ready, messagingServiceSid: mg })).toEqual({ messagingServiceSid: mg });
  });

  it('finds nothing when the tenant has no number of that kind', () => {
    expect(chooseSender({ from: '', to: 'whatsapp:+15550001111' }, { ...ready, numbers: ['+15557654321'] })).toBeUndefined();
  });
});

/**
 * No phone number and no message body in any log line, at any level down to debug, even when a
 * provider's error text quotes the number or PostgreSQL's error context quotes the row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAddress } from '../core/logger.js';
import { scrubPhoneNumbers, scrubbedErr } from '../core/log-scrub.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { startFakeTwilio, type FakeTwilio } from './fakes/twilio-api.js';
import { twilioConfig } from './fixtures/twilio-config.js';
import { UNSTORABLE_REPLY } from './fixtures/unstorable-reply.js';

const MARKER_NUMBER = '+15557770123';
// One JSON token, so PostgreSQL's detail (Token "..." is invalid) and context quote it whole.
const MARKER_BODY = 'zebraquartzmarkerbody';

let fake: FakeTwilio;
let gw: TestGateway;
beforeAll(async () => {
  fake = await startFakeTwilio();
  const config = twilioConfig(fake, { voice: false, pipeline: ['unstorable-reply.cut'], outbox: { attempts: 1 } });
  config.plugins.push({ name: 'unstorable-reply', module: UNSTORABLE_REPLY } as never);
  gw = await startTestGateway({ config, logLevel: 'debug' });
});
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  await fake?.close();
});

const logged = () => JSON.stringify(gw.logs);

describe('logs keep personal data out', () => {
  it("hash the number a Twilio error quotes (21211: Invalid 'To' Phone Number)", async () => {
    fake.failNext(1, '21211');
    const item = await gw.gateway.enqueueOutbound({ tenantId: 'clinic', channel: 'twilio-sms', to: MARKER_NUMBER, text: 'Your appointment is tomorrow' });
    await gw.waitForOutbox('clinic', (items) => items.some((i) => i.id === item.id && i.status === 'dead'));
    await expect.poll(() => gw.logs.some((l) => l.msg === 'send failed for good: dead letter')).toBe(true);
    expect(logged()).not.toContain(MARKER_NUMBER.slice(2));
    expect(logged()).toContain(hashAddress(MARKER_NUMBER));
  });

  it('drop the error context of a failed write, which quotes the message body', async () => {
    const r = await gw.send('clinic', { from: 'app-user', text: MARKER_BODY });
    expect(r.replies.map((x) => x.text)).toEqual(['noted']);
    // PostgreSQL refused the hand-made JSON (its detail and context quote the text): wait for the line
    // that logs the error, then read every line.
    await expect.poll(() => gw.logs.some((l) => l.msg === 'could not store the note' && JSON.stringify(l).includes('22P02'))).toBe(true);
    expect(logged()).not.toContain(MARKER_BODY);
  });
});

describe('the err serializer', () => {
  it('hashes phone-number-like runs and leaves codes, dates and addresses alone', () => {
    expect(scrubPhoneNumbers("The 'To' number +1 555-777-0123 is not a valid phone number.")).toBe(`The 'To' number ${hashAddress('+15557770123')} is not a valid phone number.`);
    expect(scrubPhoneNumbers('Twilio 400 error 21211 at 2026-12-01 from 127.0.0.1:5432 (SMa1b2c3d4e5f60718293a4b5c6d7e8f90)')).toBe('Twilio 400 error 21211 at 2026-12-01 from 127.0.0.1:5432 (SMa1b2c3d4e5f60718293a4b5c6d7e8f90)');
  });

  it('redacts PostgreSQL error context on the error and its causes', () => {
    const db = Object.assign(new Error('invalid input syntax for type json'), { code: '22P02', where: `JSON data, line 1: ${MARKER_BODY}`, detail: MARKER_BODY, internalQuery: MARKER_BODY });
    const wrapped = new Error('stage failed', { cause: db });
    expect(JSON.stringify(scrubbedErr(db))).not.toContain(MARKER_BODY);
    expect(JSON.stringify(scrubbedErr(wrapped))).not.toContain(MARKER_BODY);
    expect(scrubbedErr(db)).toMatchObject({ code: '22P02', where: '[redacted]' });
  });
});

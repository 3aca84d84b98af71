/**
 * Inbound messages and outbox items have time-ordered ids (RFC 9562 UUIDv7 layout), made by the
 * database (`parley_uuid_v7()`, migration 010_time_ordered_ids) or, for an outbound send, by the
 * kernel (`uuidV7`): new keys append to the indexes instead of landing on random pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './harness.js';
import { catalogue, twoTenants, KEYS } from './fixtures/configs.js';
import { TEST_BACKEND, externalServices } from './backend.js';
import { uuidV7 } from '../core/outbound.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** 2026-01-01T00:00:00Z in Unix milliseconds is 0x019b76daa800. */
const NEW_YEAR = Date.UTC(2026, 0, 1);

const skip = TEST_BACKEND === 'external' ? await externalServices() : null;
let gw: TestGateway;
beforeAll(async () => {
  if (skip) return;
  gw = await startTestGateway({ config: twoTenants({ pipeline: ['probe.echo'] }), catalogue, logLevel: 'warn' });
});
afterAll(() => gw?.stop({ cleanup: true }));

describe('uuidV7 (the kernel)', () => {
  it('puts the milliseconds first, then version 7, the variant and random bits', () => {
    const id = uuidV7(NEW_YEAR);
    expect(id).toMatch(V7);
    expect(id.replaceAll('-', '').slice(0, 12)).toBe('019b76daa800');
    expect(uuidV7(NEW_YEAR)).not.toBe(id);
    expect(uuidV7(NEW_YEAR + 1) > uuidV7(NEW_YEAR)).toBe(true);
  });
});

describe.skipIf(skip)(`time-ordered ids on the ${TEST_BACKEND} backend`, () => {
  it('parley_uuid_v7(at, bits) lays out an id as the kernel does, keeping the random bits', async () => {
    const { rows } = await gw.gateway.db.pool.query<{ id: string }>(`SELECT parley_uuid_v7($1::timestamptz, 'ffffffff-ffff-ffff-ffff-ffffffffffff')::text AS id`, [new Date(NEW_YEAR).toISOString()]);
    expect(rows[0]!.id).toBe('019b76da-a800-7fff-bfff-ffffffffffff');
    const { rows: zero } = await gw.gateway.db.pool.query<{ id: string }>(`SELECT parley_uuid_v7($1::timestamptz, '00000000-0000-0000-0000-000000000000')::text AS id`, [new Date(NEW_YEAR).toISOString()]);
    expect(zero[0]!.id).toBe('019b76da-a800-7000-8000-000000000000');
  });

  it('numbers inbound messages, their replies and outbound sends in the order they were made', async () => {
    const inbound: string[] = [];
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = await gw.send('acme', { from: `+1555900${i}000`, text: `ordered ${i}`, id: `v7-${i}` }, KEYS.acme);
      expect(sent.status).toBe(200);
      inbound.push(sent.message.id);
      replies.push(sent.replies[0]!.id);
      await new Promise((r) => setTimeout(r, 3)); // another millisecond
    }
    const queued = await gw.gateway.enqueueOutbound({ tenantId: 'acme', channel: 'probe-channel', to: '+15559004000', text: 'later' });
    for (const id of [...inbound, ...replies, queued.id]) expect(id).toMatch(V7);
    expect([...inbound].sort()).toEqual(inbound);
    expect([...replies].sort()).toEqual(replies);
    expect(queued.id > replies[2]!).toBe(true);
  });
});

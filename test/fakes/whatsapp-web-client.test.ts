import { describe, expect, it, vi } from 'vitest';
import { createMessageMedia, type WhatsAppWebMessageLike } from '../../channels/whatsapp-web/client-like.js';
import { FAKE_WID, FakeWhatsAppWebClient } from './whatsapp-web-client.js';

async function readyClient(): Promise<FakeWhatsAppWebClient> {
  const client = new FakeWhatsAppWebClient();
  await client.initialize();
  client.authenticate();
  client.becomeReady();
  return client;
}

describe('FakeWhatsAppWebClient', () => {
  it('goes through qr, authenticated and ready like the real client, and reports who it is', async () => {
    const client = new FakeWhatsAppWebClient();
    const seen: string[] = [];
    client.on('qr', (qr) => seen.push(`qr:${qr}`));
    client.on('authenticated', () => seen.push('authenticated'));
    client.on('ready', () => seen.push('ready'));

    await client.initialize();
    expect(client.info).toBeUndefined();
    client.emitQr('2@abc');
    client.authenticate();
    client.becomeReady();

    expect(seen).toEqual(['qr:2@abc', 'authenticated', 'ready']);
    expect(client.initializeCount).toBe(1);
    expect(client.info?.wid).toEqual({ user: '15550001111', server: 'c.us', _serialized: FAKE_WID });
    await expect(client.getState()).resolves.toBe('CONNECTED');
  });

  it('reports an auth failure', () => {
    const client = new FakeWhatsAppWebClient();
    const failures: string[] = [];
    client.on('auth_failure', (m) => failures.push(m));
    client.failAuth('session expired');
    expect(failures).toEqual(['session expired']);
  });

  it('delivers a text message shaped like whatsapp-web.js Message', async () => {
    const client = await readyClient();
    const received: WhatsAppWebMessageLike[] = [];
    client.on('message', (m) => received.push(m));

    client.receive({ from: '+15551234567', body: 'hello', id: 'ABC123', timestamp: 1_700_000_000 });

    expect(received).toHaveLength(1);
    const [message] = received;
    expect(message).toMatchObject({
      id: { fromMe: false, remote: '15551234567@c.us', id: 'ABC123', _serialized: 'false_15551234567@c.us_ABC123' },
      from: '15551234567@c.us',
      to: FAKE_WID,
      body: 'hello',
      type: 'chat',
      timestamp: 1_700_000_000,
      fromMe: false,
      hasMedia: false,
      author: undefined,
    });
    await expect(message?.downloadMedia()).resolves.toBeUndefined();
  });

  it('delivers media that downloadMedia returns as base64', async () => {
    const client = await readyClient();
    const message = client.receive({
      from: '15551234567@c.us',
      body: 'receipt',
      type: 'document',
      media: { mimetype: 'application/pdf', data: Buffer.from('%PDF').toString('base64'), filename: 'r.pdf' },
    });
    expect(message.hasMedia).toBe(true);
    expect(message.type).toBe('document');
    const media = await message.downloadMedia();
    expect(media).toEqual({ mimetype: 'application/pdf', data: 'JVBERg==', filename: 'r.pdf' });
  });

  it('gives a default image when only hasMedia is set', async () => {
    const client = await readyClient();
    const message = client.receive({ from: '15551234567', body: '', hasMedia: true });
    expect(message.type).toBe('image');
    await expect(message.downloadMedia()).resolves.toMatchObject({ mimetype: 'image/jpeg' });
  });

  it('marks group messages with the group as from and the participant as author', async () => {
    const client = await readyClient();
    const message = client.receive({ from: '120363025246125888', isGroup: true, author: '15551234567@c.us', body: 'hi all', id: 'G1' });
    expect(message.from).toBe('120363025246125888@g.us');
    expect(message.author).toBe('15551234567@c.us');
    expect(message.id._serialized).toBe('false_120363025246125888@g.us_G1_15551234567@c.us');
  });

  it('sends text and media, recording each with a serialized id', async () => {
    const client = await readyClient();
    const sent = await client.sendMessage('15551234567@c.us', 'hi there', { quotedMessageId: 'false_x_1' });
    expect(sent?.id).toMatchObject({ fromMe: true, remote: '15551234567@c.us' });
    expect(sent?.id._serialized).toMatch(/^true_15551234567@c\.us_3EB0[0-9A-F]{16}$/);
    expect(sent).toMatchObject({ from: FAKE_WID, to: '15551234567@c.us', body: 'hi there', type: 'chat' });

    const media = createMessageMedia({ mimetype: 'image/png', data: 'aGVsbG8=' });
    const photo = await client.sendMessage('15551234567@c.us', media, { caption: 'look' });
    expect(photo).toMatchObject({ type: 'image', body: 'look', hasMedia: true });

    expect(client.sent.map((c) => c.content)).toEqual(['hi there', media]);
    expect(client.sendCalls[0]?.options).toEqual({ quotedMessageId: 'false_x_1' });
  });

  it('refuses to send before ready', async () => {
    const client = new FakeWhatsAppWebClient();
    await expect(client.sendMessage('15551234567@c.us', 'too early')).rejects.toThrow(/not ready/);
    expect(client.sendCalls[0]?.outcome).toBe('failed');
  });

  it('fails the next n sends with the given error, then sends again', async () => {
    const client = await readyClient();
    client.failSends(2, 'Evaluation failed: Error: Execution context was destroyed');
    await expect(client.sendMessage('1@c.us', 'a')).rejects.toThrow(/Execution context was destroyed/);
    await expect(client.sendMessage('1@c.us', 'b')).rejects.toThrow(/Execution context was destroyed/);
    await expect(client.sendMessage('1@c.us', 'c')).resolves.toMatchObject({ body: 'c' });
    expect(client.sendCalls.map((c) => c.outcome)).toEqual(['failed', 'failed', 'sent']);
  });

  it('can make sendMessage never settle, as a frozen WhatsApp Web page does', async () => {
    vi.useFakeTimers();
    try {
      const client = await readyClient();
      client.hangSends(true);
      const settled = vi.fn();
      void client.sendMessage('1@c.us', 'stuck').then(settled, settled);
      await vi.advanceTimersByTimeAsync(24 * 60 * 60 * 1000);
      expect(settled).not.toHaveBeenCalled();
      expect(client.sendCalls.map((c) => c.outcome)).toEqual(['hanging']);

      client.hangSends(false);
      await expect(client.sendMessage('1@c.us', 'unstuck')).resolves.toMatchObject({ body: 'unstuck' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('on LOGOUT emits disconnected only and drops the session', async () => {
    const client = await readyClient();
    const events: string[] = [];
    client.on('change_state', (s) => events.push(`state:${s}`));
    client.on('disconnected', (r) => events.push(`disconnected:${r}`));

    client.disconnect('LOGOUT');

    expect(events).toEqual(['disconnected:LOGOUT']);
    expect(client.isReady).toBe(false);
    expect(client.info).toBeUndefined();
    await expect(client.getState()).resolves.toBeNull();
    await expect(client.sendMessage('1@c.us', 'after logout')).rejects.toThrow();
  });

  it('on CONFLICT reports the state change before disconnecting', async () => {
    const client = await readyClient();
    const events: string[] = [];
    client.on('change_state', (s) => events.push(`state:${s}`));
    client.on('disconnected', (r) => events.push(`disconnected:${r}`));
    client.disconnect('CONFLICT');
    expect(events).toEqual(['state:CONFLICT', 'disconnected:CONFLICT']);
  });

  it('counts destroy and logout calls', async () => {
    const client = await readyClient();
    await client.logout();
    await client.destroy();
    expect([client.logoutCount, client.destroyCount, client.isReady]).toEqual([1, 1, false]);
  });
});

import wwebjs from 'whatsapp-web.js';
import { describe, expect, it } from 'vitest';
import { FakeWhatsAppWebClient } from './fakes/whatsapp-web-client.js';
import {
  createMessageMedia,
  createRealClient,
  HEADLESS_CHROMIUM_ARGS,
  type WhatsAppWebClientLike,
  type WhatsAppWebMessageLike,
} from '../channels/whatsapp-web/client-like.js';

const { Client, LocalAuth, MessageMedia } = wwebjs;

// Never called: tsc proves the real client, its messages and the fake fit the channel's interface.
export function typeLevelProofs(message: wwebjs.Message): void {
  const real: WhatsAppWebClientLike = new Client({ authStrategy: new LocalAuth({ clientId: 'proof' }) });
  const fake: WhatsAppWebClientLike = new FakeWhatsAppWebClient();
  const inbound: WhatsAppWebMessageLike = message;
  real.on('message', (m) => void m.downloadMedia());
  fake.on('disconnected', (reason) => void reason.toUpperCase());
  void inbound;
  // @ts-expect-error the check is real: the library's Client has no such method
  const notAny: { definitelyNotAMethod(): void } = new Client({});
  void notAny;
}

type RealClient = InstanceType<typeof Client> & {
  options: { puppeteer: { executablePath: string; headless: boolean; args: string[] } };
  authStrategy: InstanceType<typeof LocalAuth>;
  pupBrowser: unknown;
};

describe('createRealClient', () => {
  it('builds a LocalAuth, headless client without starting a browser', () => {
    const client = createRealClient({
      clientId: 'tenant-42',
      dataPath: '/nonexistent/wwebjs',
      executablePath: '/usr/bin/chromium',
    }) as RealClient;

    expect(client).toBeInstanceOf(Client);
    expect(client.authStrategy).toBeInstanceOf(LocalAuth);
    expect(client.authStrategy.clientId).toBe('tenant-42');
    expect(client.authStrategy.dataPath).toBe('/nonexistent/wwebjs');
    expect(client.options.puppeteer).toMatchObject({ executablePath: '/usr/bin/chromium', headless: true });
    expect(client.options.puppeteer.args).toEqual(expect.arrayContaining(['--no-sandbox', '--disable-gpu']));
    expect(client.options.puppeteer.args).toEqual([...HEADLESS_CHROMIUM_ARGS]);
    expect(client.pupBrowser).toBeFalsy();
    expect(client.info).toBeUndefined();
  });

  it('refuses a client id LocalAuth cannot use as a folder name', () => {
    expect(() => createRealClient({ clientId: 'tenant/42', dataPath: '/nonexistent', executablePath: '/x' })).toThrow();
  });
});

describe('createMessageMedia', () => {
  it('wraps media in the library class the real sendMessage recognises', () => {
    const media = createMessageMedia({ mimetype: 'image/png', data: 'aGVsbG8=', filename: 'a.png' });
    expect(media).toBeInstanceOf(MessageMedia);
    expect(media).toMatchObject({ mimetype: 'image/png', data: 'aGVsbG8=', filename: 'a.png' });
  });
});

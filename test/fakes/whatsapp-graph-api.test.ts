import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphClient, GraphApiError, type GraphClient } from '../../channels/whatsapp-cloud/graph-client.js';
import { startFakeGraph, type FakeGraph } from './whatsapp-graph-api.js';

const accessToken = 'EAAtest-token';
const phoneNumberId = '106540352242922';
const to = '+16505551234';

let graph: FakeGraph;
let client: GraphClient;

beforeEach(async () => {
  graph = await startFakeGraph({ accessToken });
  client = createGraphClient({ accessToken, baseUrl: graph.baseUrl, timeoutMs: 2_000 });
});

afterEach(async () => {
  await graph.close();
});

async function failure(promise: Promise<unknown>): Promise<GraphApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GraphApiError);
  return error as GraphApiError;
}

describe('graph client against the fake Graph API', () => {
  it('sends a text reply and returns the wamid Meta assigned', async () => {
    const result = await client.sendText(phoneNumberId, to, 'Your order shipped', { replyToWamid: 'wamid.question' });

    expect(result.wamid).toMatch(/^wamid\./);
    expect(result.waId).toBe('16505551234');
    expect(graph.sent).toHaveLength(1);
    expect(graph.sent[0]).toMatchObject({
      phoneNumberId,
      wamid: result.wamid,
      body: {
        messaging_product: 'whatsapp',
        recipient_type: 'individual',
        to,
        type: 'text',
        text: { preview_url: false, body: 'Your order shipped' },
        context: { message_id: 'wamid.question' },
      },
    });
  });

  it('sends an approved template with its components', async () => {
    await client.sendTemplate(phoneNumberId, to, {
      name: 'order_update',
      language: 'en_US',
      components: [{ type: 'body', parameters: [{ type: 'text', text: 'A-1042' }] }],
    });
    expect(graph.sent[0]?.body).toMatchObject({
      type: 'template',
      template: {
        name: 'order_update',
        language: { code: 'en_US' },
        components: [{ type: 'body', parameters: [{ type: 'text', text: 'A-1042' }] }],
      },
    });
  });

  it('sends an image and a document by link', async () => {
    await client.sendMedia(phoneNumberId, to, { type: 'image', link: 'https://cdn.example/p.jpg', caption: 'Blue' });
    await client.sendMedia(phoneNumberId, to, { type: 'document', link: 'https://cdn.example/i.pdf', filename: 'invoice.pdf' });
    expect(graph.sent.map((s) => s.body)).toMatchObject([
      { type: 'image', image: { link: 'https://cdn.example/p.jpg', caption: 'Blue' } },
      { type: 'document', document: { link: 'https://cdn.example/i.pdf', filename: 'invoice.pdf' } },
    ]);
  });

  it('refuses a wrong token with Meta code 190, not retryable', async () => {
    const stranger = createGraphClient({ accessToken: 'wrong', baseUrl: graph.baseUrl });
    const error = await failure(stranger.sendText(phoneNumberId, to, 'hi'));
    expect(error).toMatchObject({ status: 401, code: 190, retryable: false, outcomeUnknown: false });
    expect(graph.sent).toHaveLength(0);
  });

  it('reports a rate limit as retryable with the Retry-After delay', async () => {
    graph.failNext(1, '429');
    const error = await failure(client.sendText(phoneNumberId, to, 'hi'));
    expect(error).toMatchObject({ status: 429, code: 130429, retryable: true, retryAfterMs: 1_000, outcomeUnknown: false });
    expect(graph.sent).toHaveLength(0);

    await expect(client.sendText(phoneNumberId, to, 'hi')).resolves.toMatchObject({ wamid: expect.any(String) });
  });

  it('reports a 500 as retryable', async () => {
    graph.failNext(1, '500');
    const error = await failure(client.sendText(phoneNumberId, to, 'hi'));
    expect(error).toMatchObject({ status: 500, code: 131000, retryable: true, outcomeUnknown: false });
  });

  it('reports 131047 (outside the 24-hour window) as final, with Meta’s explanation', async () => {
    graph.failNext(1, '131047');
    const error = await failure(client.sendText(phoneNumberId, to, 'hi'));
    expect(error).toMatchObject({ status: 400, code: 131047, retryable: false, outcomeUnknown: false });
    expect(error.details).toMatch(/24 hours/);
    expect(error.fbtraceId).toEqual(expect.any(String));
  });

  it('reports a dropped connection as retryable with an unknown outcome', async () => {
    graph.failNext(1, 'drop');
    const error = await failure(client.sendText(phoneNumberId, to, 'hi'));
    expect(error).toMatchObject({ status: undefined, retryable: true, outcomeUnknown: true });
    // The fake did accept it: exactly the case where a blind retry would send twice.
    expect(graph.sent).toHaveLength(1);
  });

  it('gives up on a hanging request at the client timeout with an unknown outcome', async () => {
    const quick = createGraphClient({ accessToken, baseUrl: graph.baseUrl, timeoutMs: 200 });
    graph.failNext(1, 'hang');
    const started = Date.now();
    const error = await failure(quick.sendText(phoneNumberId, to, 'hi'));
    const elapsed = Date.now() - started;

    expect(error).toMatchObject({ retryable: true, outcomeUnknown: true });
    expect(error.message).toMatch(/did not answer within 200 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2_000);
  });

  it('queues failures in order and then recovers', async () => {
    graph.failNext(2, '500');
    await failure(client.sendText(phoneNumberId, to, 'a'));
    await failure(client.sendText(phoneNumberId, to, 'b'));
    await client.sendText(phoneNumberId, to, 'c');
    expect(graph.requests.map((r) => r.failure)).toEqual(['500', '500', undefined]);
    expect(graph.sent).toHaveLength(1);
  });

  it('reports a refused connection as retryable and certainly not sent', async () => {
    const gone = await startFakeGraph({ accessToken });
    await gone.close();
    const orphan = createGraphClient({ accessToken, baseUrl: gone.baseUrl });
    const error = await failure(orphan.sendText(phoneNumberId, to, 'hi'));
    expect(error).toMatchObject({ retryable: true, outcomeUnknown: false });
  });
});

/**
 * `ctx.tryInject`: an optional service. Undefined when no plugin provides the token (dsar then answers
 * a clear 400 for `subject.contactId`), the provided value when one does, without a dependency.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from './harness.js';

const KEY = 'key-tryinject-0123456789';
const dir = mkdtempSync(join(process.cwd(), 'test', '.tmp-try-inject-'));
const contacts = join(dir, 'contacts.ts');
writeFileSync(
  contacts,
  `import { definePlugin, token } from 'parley';
export default definePlugin({
  name: 'contacts', kind: 'capability', description: 'a contacts stub',
  setup(ctx) {
    ctx.provide(token<(t: string, id: string) => Promise<string[] | null>>('contacts.resolver'), async (_t, id) => (id === 'c_1' ? ['+15550300001'] : null));
  },
});
`,
);
const probe = join(dir, 'probe.ts');
writeFileSync(
  probe,
  `import { definePlugin, token } from 'parley';
export const seen: unknown[] = [];
export default definePlugin({
  name: 'optional-probe', kind: 'capability', description: 'asks for an optional service',
  setup(ctx) {
    seen.push(ctx.tryInject(token('nobody.provides-this')));
  },
});
`,
);

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({
    config: { plugins: ['http', { name: 'dsar' }, { name: 'contacts', module: contacts }, { name: 'optional-probe', module: probe }], tenants: [{ id: 'acme', apiKeys: [KEY], pipeline: ['dsar'], plugins: { http: {}, dsar: {} } }] },
  });
}, 120_000);
afterAll(async () => {
  await gw?.stop({ cleanup: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('ctx.tryInject', () => {
  it('is undefined for a token nobody provides', async () => {
    const { seen } = await import(probe);
    expect(seen).toEqual([undefined]);
  });

  it('gives dsar the contacts resolver a plugin provides (set up after it, resolved at use time)', async () => {
    const r = await gw.request('POST', '/v1/tenants/acme/data-subjects/requests', { key: KEY, body: { type: 'export', subject: { contactId: 'c_1' }, requestedBy: 'x' } });
    expect(r.status).toBe(201);
    const listed = await gw.request('GET', `/v1/tenants/acme/data-subjects/requests?subject=${encodeURIComponent('+15550300001')}`, { key: KEY });
    expect(listed.body.requests).toHaveLength(1);
    expect(listed.body.requests[0].contactId).toBe('c_1');
    expect((await gw.request('POST', '/v1/tenants/acme/data-subjects/requests', { key: KEY, body: { type: 'export', subject: { contactId: 'c_404' }, requestedBy: 'x' } })).status).toBe(404);
  });
});

/**
 * What a start imports: the modules of the demo's plugins must not pull in the SDK parts only a later
 * event needs (twilio's REST client and voice TwiML builder, LangChain's text splitters). Those cost
 * about half a second of boot on the bench machine (bench/README.md, step 8). Imported in a fresh
 * process, which records every ES module resolved and every CommonJS module loaded.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'parley-boot-imports-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Module URLs (ES, resolved) and file names (CommonJS, loaded) after importing `modules`. */
function importsOf(modules: string[]): { esm: string[]; cjs: string[] } {
  writeFileSync(join(work, 'hooks.mjs'), `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  port.postMessage(resolved.url);
  return resolved;
}
`);
  writeFileSync(join(work, 'main.mjs'), `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const esm = new Set();
const { port1, port2 } = new MessageChannel();
port1.on('message', (url) => esm.add(url));
port1.unref();
register(${JSON.stringify(pathToFileURL(join(work, 'hooks.mjs')).href)}, { data: { port: port2 }, transferList: [port2] });
for (const m of ${JSON.stringify(modules.map((m) => pathToFileURL(join(ROOT, m)).href))}) await import(m);
await new Promise((r) => setTimeout(r, 200)); // the hook thread's last messages
const cjs = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(JSON.stringify({ esm: [...esm], cjs }));
`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(work, 'main.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`importing ${modules.join(', ')} failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as { esm: string[]; cjs: string[] };
}

describe('what a start imports', () => {
  it('the twilio channels load the webhook validators, not the REST client or the voice TwiML builder', () => {
    const { esm, cjs } = importsOf(['channels/twilio-sms/index.ts', 'channels/twilio-voice/index.ts']);
    const all = [...esm, ...cjs];
    // The hooks saw the channel's own SDK imports (so an empty list cannot pass for a clean one).
    expect(all.some((f) => f.includes('twilio/lib/webhooks/webhooks.js'))).toBe(true);
    expect(all.filter((f) => /node_modules\/twilio\/lib\/(index\.js|rest\/|twiml\/)/.test(f))).toEqual([]);
    expect(all.filter((f) => /node_modules\/(axios|xmlbuilder)\//.test(f))).toEqual([]);
  });

  it('medical-answers loads LangChain\'s text splitters only to ingest', () => {
    const { esm, cjs } = importsOf(['plugins/medical-answers/index.ts']);
    const all = [...esm, ...cjs];
    expect(all.some((f) => f.includes('plugins/medical-answers/engine/store.ts'))).toBe(true);
    expect(all.filter((f) => f.includes('@langchain/textsplitters'))).toEqual([]);
  });
});

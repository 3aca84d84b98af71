/**
 * medical-answers settings that name files are checked at start: a missing corpus or a bad lay phrases
 * file fails validation naming the tenant, the plugin and the key, not minutes later in a log.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Gateway } from '../core/gateway.js';
import { parseConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { builtinPlugins } from '../config/builtins.js';

function validate(settings: Record<string, unknown>, baseDir: string, server: Record<string, unknown> = {}) {
  const config = { server, plugins: ['http', 'medical-answers'], tenants: [{ id: 'clinic', pipeline: ['medical-answers'], plugins: { http: {}, 'medical-answers': settings } }] };
  const loaded = { config: parseConfig(stringify(config), 'test', {}), baseDir, source: join(baseDir, 'parley.yaml') };
  return Gateway.validate({ loaded, catalogue: builtinPlugins, logger: createLogger('silent') });
}

describe('medical-answers settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-medical-config-'));

  it('refuse a lay phrases file that is missing or has a bad line, naming tenant, plugin, key, file and line', async () => {
    await expect(validate({ layPhrases: './missing.jsonl' }, dir)).rejects.toThrow(/tenants\[0\] \(clinic\)\.plugins\.medical-answers\.layPhrases: cannot read the lay phrases file .*missing\.jsonl: ENOENT/);
    writeFileSync(join(dir, 'lay.jsonl'), '{"title": "Acne", "lay": ["bumps on my forehead"]}\nnot json\n');
    await expect(validate({ layPhrases: './lay.jsonl' }, dir)).rejects.toThrow(/\.layPhrases: .*lay\.jsonl:2: not valid JSON/);
    writeFileSync(join(dir, 'lay.jsonl'), '{"title": "Acne", "lay": ["bumps on my forehead"]}\n');
    await expect(validate({ layPhrases: './lay.jsonl' }, dir)).resolves.not.toThrow();
    await expect(validate({ layPhrases: false }, dir)).resolves.not.toThrow();
  });

  it('refuse short source links without the public address that serves them', async () => {
    await expect(validate({ shortLinks: 'sms' }, dir)).rejects.toThrow(/tenants\[0\] \(clinic\)\.plugins\.medical-answers\.shortLinks: "sms" needs server\.publicBaseUrl/);
    await expect(validate({ shortLinks: 'all' }, dir, { publicBaseUrl: 'https://clinic.example.org' })).resolves.not.toThrow();
    // The default uses them only when the address is there.
    await expect(validate({}, dir)).resolves.not.toThrow();
  });

  it('refuse a corpus that is not there', async () => {
    await expect(validate({ corpus: './nowhere.jsonl' }, dir)).rejects.toThrow(/tenants\[0\] \(clinic\)\.plugins\.medical-answers\.corpus: /);
  });
});

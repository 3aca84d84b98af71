import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Gateway } from '../core/gateway.js';
import { parseConfig } from '../core/config.js';
import { ConfigError, ParleyError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { builtinPlugins } from '../config/builtins.js';
import { catalogue, twoTenants } from './fixtures/configs.js';

const bad = (name: string) => fileURLToPath(new URL(`./fixtures/bad-plugins/${name}.ts`, import.meta.url));

async function validate(config: Record<string, unknown>, extra: Record<string, string> = {}) {
  const loaded = { config: parseConfig(stringify(config), 'parley.yaml', {}), baseDir: process.cwd(), source: 'parley.yaml' };
  return Gateway.validate({ loaded, catalogue: { ...builtinPlugins, ...catalogue, ...extra }, logger: createLogger('silent'), setupTimeoutMs: 300 });
}

async function failure(fn: () => Promise<unknown>): Promise<ParleyError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof ParleyError) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

describe('configuration', () => {
  it('accepts the bundled demo and starter configurations', async () => {
    const { readFileSync } = await import('node:fs');
    for (const file of ['config/demo.yaml', 'config/starter.yaml']) {
      const config = parseConfig(readFileSync(file, 'utf8'), file, { PARLEY_DEMO_KEY: 'k', ACME_API_KEY: 'k' });
      const { dirname, resolve } = await import('node:path');
      const r = await Gateway.validate({ loaded: { config, baseDir: dirname(resolve(file)), source: file }, catalogue: builtinPlugins, logger: createLogger('silent') });
      expect(r.tenants.length).toBeGreaterThan(0);
    }
  });

  it('interpolates ${VAR} and ${VAR:-default}, and names the key when a variable is missing', () => {
    const text = 'server:\n  port: ${PORT:-4000}\ntenants:\n  - id: t1\n    apiKeys: ["${T1_KEY}"]\n';
    expect(parseConfig(text, 'p.yaml', { T1_KEY: 'secret' }).tenants[0]!.apiKeys).toEqual(['secret']);
    expect(parseConfig(text, 'p.yaml', { T1_KEY: 'secret' }).server.port).toBe(4000);
    const error = (() => {
      try {
        parseConfig(text, 'p.yaml', {});
      } catch (e) {
        return e as ConfigError;
      }
    })()!;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.issues[0]).toBe('p.yaml: tenants[0].apiKeys[0]: environment variable T1_KEY is not set');
  });

  it('takes ${VAR-default} only when VAR is unset, so an empty VAR turns a default off', () => {
    const text = 'server:\n  publicBaseUrl: ${URL-https://a.example.com}\n  host: "${HOST:-h}-${SUFFIX-x}"\ntenants:\n  - id: t1\n';
    expect(parseConfig(text, 'p.yaml', {}).server.publicBaseUrl).toBe('https://a.example.com');
    expect(parseConfig(text, 'p.yaml', { URL: '' }).server.publicBaseUrl).toBeUndefined();
    expect(parseConfig(text, 'p.yaml', { URL: 'https://b.example.com' }).server.publicBaseUrl).toBe('https://b.example.com');
    expect(parseConfig(text, 'p.yaml', { HOST: '', SUFFIX: '' }).server.host).toBe('h-');
    expect(parseConfig(text, 'p.yaml', {}).server.host).toBe('h-x');
  });

  it('names the tenant, plugin and key path of a bad plugin setting, and what was expected', async () => {
    const config = twoTenants();
    (config.tenants[1]!.plugins as Record<string, unknown>).probe = { prefix: 42 };
    (config.tenants[0]!.plugins as Record<string, unknown>)['keyword-replies'] = { rules: [{ match: '/([a-/', reply: 'x' }] };
    const error = (await failure(() => validate(config))) as ConfigError;
    expect(error.code).toBe('PARLEY_CONFIG_INVALID');
    expect(error.issues).toContain('tenants[1] (globex).plugins.probe.prefix: Invalid input: expected string, received number');
    expect(error.issues.some((i) => i.startsWith('tenants[0] (acme).plugins.keyword-replies.rules[0].match: not a valid regular expression'))).toBe(true);
  });

  it('names the tenant and position of an unknown pipeline stage', async () => {
    const error = (await failure(() => validate(twoTenants({ pipeline: ['probe.echo', 'no.such.stage'] })))) as ConfigError;
    expect(error.issues[0]).toMatch(/^tenants\[0\] \(acme\)\.pipeline\[1\]: unknown stage "no.such.stage" \(known stages: .*probe\.echo/);
    const typo = (await failure(() => validate(twoTenants({ pipeline: ['probe.ehco'] })))) as ConfigError;
    expect(typo.issues[0]).toMatch(/^tenants\[0\] \(acme\)\.pipeline\[0\]: unknown stage "probe.ehco", did you mean "probe.echo"\? \(known stages: /);
  });

  it('rejects an unknown plugin, duplicate tenants, and a bad tenant id', async () => {
    const config = twoTenants();
    (config.tenants[0]!.plugins as Record<string, unknown>)['no-such-plugin'] = {};
    expect((await failure(() => validate(config))).message).toMatch(/tenants\[0\] \(acme\)\.plugins\.no-such-plugin: unknown plugin "no-such-plugin" \(built-in:/);
    const dup = twoTenants();
    dup.tenants[1]!.id = 'acme';
    expect(() => parseConfig(stringify(dup), 'p.yaml', {})).toThrow(/tenant id "acme" appears twice/);
    const badId = twoTenants();
    badId.tenants[0]!.id = 'Not OK';
    expect(() => parseConfig(stringify(badId), 'p.yaml', {})).toThrow(/tenants\[0\] \(Not OK\)\.id: lower-case letters/);
  });

  it('takes a Redis key prefix for the job queues, and names the key when it is not one', () => {
    const ok = { ...twoTenants(), storage: { redisUrl: 'redis://127.0.0.1:6379', jobsPrefix: 'clinic-a' } };
    expect(parseConfig(stringify(ok), 'p.yaml', {}).storage.jobsPrefix).toBe('clinic-a');
    const bad = { ...twoTenants(), storage: { jobsPrefix: 'a:b c' } };
    expect(() => parseConfig(stringify(bad), 'p.yaml', {})).toThrow(/storage\.jobsPrefix: letters, digits/);
  });
});

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const parseIssues = (config: Record<string, unknown>) => issuesOf(() => parseConfig(stringify(config), 'p.yaml', {}));

describe('configuration catches typos', () => {
  it('refuses an unknown top-level key and suggests the known one', () => {
    expect(parseIssues({ ...twoTenants(), logs: { level: 'debug' } })).toEqual(['p.yaml: logs: unknown key, did you mean "log"?']);
  });

  it('refuses an unknown key inside server, storage and outbox instead of using the default', () => {
    const issues = parseIssues({ ...twoTenants({ outbox: { atempts: 3 } }), server: { bodyLimt: '256kb' }, storage: { databaseURL: 'postgres://x' } });
    expect(issues).toContain('p.yaml: server.bodyLimt: unknown key, did you mean "bodyLimit"?');
    expect(issues).toContain('p.yaml: storage.databaseURL: unknown key, did you mean "databaseUrl"?');
    expect(issues).toContain('p.yaml: outbox.atempts: unknown key, did you mean "attempts"?');
  });

  it('lists the known keys when nothing is close', () => {
    expect(parseIssues({ ...twoTenants(), operator: { apiKeys: [], colour: 'blue' } })).toEqual(['p.yaml: operator.colour: unknown key (known keys: apiKeys)']);
  });

  it('refuses an unknown tenant key, naming the tenant', () => {
    const config = twoTenants();
    Object.assign(config.tenants[1]!, { timzone: 'Europe/Paris' });
    expect(parseIssues(config)).toEqual(['p.yaml: tenants[1] (globex).timzone: unknown key, did you mean "timezone"?']);
  });

  it('refuses an unknown key in a plugin entry', () => {
    const config = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'office-hours', modul: './examples/office-hours/index.ts' }] };
    expect(parseIssues(config)).toEqual(['p.yaml: plugins[3] (office-hours).modul: unknown key, did you mean "module"?']);
  });

  it("refuses unknown keys in a plugin's settings and options at any depth, though the plugin's schema is a plain z.object", async () => {
    const config = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'twilio-sms', options: { requestTimeoutMS: 5000 } }] };
    Object.assign(config.tenants[0]!.plugins as Record<string, unknown>, {
      probe: { prefx: 'acme: ' },
      'twilio-sms': { consent: { languages: { es: { optOt: ['ALTO'] } } } },
      'keyword-replies': { rules: [{ match: 'hours', repyl: '9 to 5' }] },
    });
    const error = (await failure(() => validate(config))) as ConfigError;
    expect(error.issues).toContain('plugins[3] (twilio-sms).options.requestTimeoutMS: unknown key, did you mean "requestTimeoutMs"?');
    expect(error.issues).toContain('tenants[0] (acme).plugins.probe.prefx: unknown key, did you mean "prefix"?');
    expect(error.issues).toContain('tenants[0] (acme).plugins.twilio-sms.consent.languages.es.optOt: unknown key, did you mean "optOut"?');
    expect(error.issues).toContain('tenants[0] (acme).plugins.keyword-replies.rules[0].repyl: unknown key, did you mean "reply"?');
  });

  it('suggests a built-in plugin for a misspelt plugin name under a tenant', async () => {
    const config = twoTenants();
    Object.assign(config.tenants[1]!.plugins as Record<string, unknown>, { 'twilio-sm': {} });
    expect((await failure(() => validate(config))).message).toContain('tenants[1] (globex).plugins.twilio-sm: unknown plugin "twilio-sm", did you mean "twilio-sms"?');
  });

  it('refuses an unknown time zone, suggesting a close one, and a malformed locale', () => {
    const config = twoTenants();
    Object.assign(config.tenants[0]!, { timezone: 'Mars/Olympus', locale: 'en_US!' });
    Object.assign(config.tenants[1]!, { timezone: 'America/New_Yrok' });
    const issues = parseIssues(config);
    expect(issues).toContain('p.yaml: tenants[0] (acme).timezone: unknown time zone "Mars/Olympus" (use an IANA name such as "America/New_York", or "UTC")');
    expect(issues).toContain('p.yaml: tenants[1] (globex).timezone: unknown time zone "America/New_Yrok", did you mean "America/New_York"?');
    expect(issues).toContain('p.yaml: tenants[0] (acme).locale: not a BCP 47 language tag such as "en-US"');
  });

  it('accepts the time zones and locales Intl accepts, aliases included', () => {
    const config = twoTenants();
    Object.assign(config.tenants[0]!, { timezone: 'Asia/Kolkata', locale: 'es-419' });
    Object.assign(config.tenants[1]!, { timezone: 'Etc/UTC', locale: 'pt-BR' });
    const parsed = parseConfig(stringify(config), 'p.yaml', {});
    expect(parsed.tenants.map((t) => [t.timezone, t.locale])).toEqual([['Asia/Kolkata', 'es-419'], ['Etc/UTC', 'pt-BR']]);
  });

  it('reads an unquoted +E.164 number as the string it is written as', async () => {
    const text = [
      'plugins: [http, probe, probe-channel]',
      'tenants:',
      '  - id: acme',
      '    pipeline: [probe.echo]',
      '    plugins:',
      '      probe-channel: { number: +15550001111 }',
      '      twilio-sms: { numbers: [+15557654321, "whatsapp:+15557654321"] }',
      '      twilio-voice:',
      '        numbers:',
      '          - +15557654322',
      '        handoffNumber: +15557654323',
      '',
    ].join('\n');
    const config = parseConfig(text, 'p.yaml', {});
    expect(config.tenants[0]!.plugins).toMatchObject({ 'probe-channel': { number: '+15550001111' }, 'twilio-sms': { numbers: ['+15557654321', 'whatsapp:+15557654321'] } });
    const r = await Gateway.validate({ loaded: { config, baseDir: process.cwd(), source: 'p.yaml' }, catalogue: { ...builtinPlugins, ...catalogue }, logger: createLogger('silent') });
    expect(r.tenants).toEqual(['acme']);
  });

  it('says to quote a phone number written as a bare number', async () => {
    const config = twoTenants();
    Object.assign(config.tenants[0]!.plugins as Record<string, unknown>, { 'twilio-sms': { numbers: [15557654321] } });
    const error = (await failure(() => validate(config))) as ConfigError;
    expect(error.issues).toContain('tenants[0] (acme).plugins.twilio-sms.numbers[0]: Invalid input: expected string, received number; write phone numbers as quoted E.164 strings, e.g. "+15557654321" (and quote other long ids too)');
  });

  it('names every plugin problem as plugins[i] (name).options.key or tenants[i] (id).plugins.name.key', async () => {
    const config = { ...twoTenants({ pipeline: ['probe.echo', 'probe-channel.gate'] }), plugins: ['http', 'probe', 'probe-channel', { name: 'twilio-sms', options: { requestTimeoutMs: 10 } }] };
    delete (config.tenants[0]!.plugins as Record<string, unknown>)['probe-channel'];
    const error = (await failure(() => validate(config))) as ConfigError;
    expect(error.issues).toEqual(['plugins[3] (twilio-sms).options.requestTimeoutMs: Too small: expected number to be >=1000']);
    delete (config.plugins[3] as { options?: unknown }).options;
    const pipelineError = (await failure(() => validate(config))) as ConfigError;
    expect(pipelineError.issues).toEqual([
      'tenants[0] (acme).plugins.probe-channel.number: Invalid input: expected string, received undefined (stage "probe-channel.gate" at tenants[0] (acme).pipeline[1] needs these settings)',
    ]);
  });

  it('leaves free-form maps free: records, loose objects and catch-alls accept any key', async () => {
    const { findUnknownKeys } = await import('../core/unknown-keys.js');
    const { z } = await import('zod');
    const schema = z.object({
      labels: z.record(z.string(), z.string()),
      extra: z.looseObject({ kind: z.string() }),
      headers: z.object({ accept: z.string() }).catchall(z.object({ value: z.string() })),
      anything: z.unknown(),
    });
    const value = { labels: { a: 'x' }, extra: { kind: 'k', more: 1 }, headers: { accept: 'x', 'x-id': { value: 'v', vlaue: 'w' } }, anything: { deep: { keys: 1 } } };
    expect(findUnknownKeys(schema, value)).toEqual([{ path: ['headers', 'x-id', 'vlaue'], key: 'vlaue', known: ['value'] }]);
  });
});

describe('the plugin contract', () => {
  it('refuses a module that does not export a plugin', async () => {
    const config = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'not-a-plugin', module: bad('not-a-plugin') }] };
    const error = await failure(() => validate(config));
    expect(error.code).toBe('PARLEY_PLUGIN_INVALID');
    expect(error.message).toMatch(/"kind" must be "channel" or "capability".*"setup" must be a function/);
  });

  it('refuses missing dependencies and dependency cycles', async () => {
    const missing = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'needs-missing', module: bad('needs-missing') }] };
    expect((await failure(() => validate(missing))).code).toBe('PARLEY_PLUGIN_DEPENDENCY_MISSING');
    const cycle = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'cycle-a', module: bad('cycle-a') }, { name: 'cycle-b', module: bad('cycle-b') }] };
    const error = await failure(() => validate(cycle));
    expect(error.code).toBe('PARLEY_PLUGIN_DEPENDENCY_CYCLE');
    expect(error.message).toContain('cycle-a -> cycle-b -> cycle-a');
  });

  it('refuses duplicate plugins and reports a setup that never settles', async () => {
    const dup = { ...twoTenants(), plugins: ['http', 'probe', 'probe', 'probe-channel'] };
    expect((await failure(() => validate(dup))).code).toBe('PARLEY_PLUGIN_DUPLICATE');
    const hangs = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'hangs', module: bad('hangs') }] };
    const error = await failure(() => validate(hangs));
    expect(error.code).toBe('PARLEY_PLUGIN_SETUP_TIMEOUT');
    expect(error.plugin).toBe('hangs');
  });

  it('shares services between dependent plugins through explicit tokens, and names a missing provider', async () => {
    expect((await validate(twoTenants())).plugins.indexOf('probe')).toBeLessThan((await validate(twoTenants())).plugins.indexOf('probe-channel'));
    const config = { ...twoTenants(), plugins: ['http', 'probe', 'probe-channel', { name: 'injects-missing', module: bad('injects-missing') }] };
    const error = await failure(() => validate(config));
    expect(error.message).toMatch(/Plugin "injects-missing".*nothing provides Symbol\(nobody.provides.this\)/);
  });

  it('loads a third-party plugin by module path relative to the configuration file', async () => {
    const config = { ...twoTenants({ pipeline: ['office-hours'] }), plugins: ['http', 'probe', 'probe-channel', { name: 'office-hours', module: './examples/office-hours/index.ts' }] };
    const r = await validate(config);
    expect(r.plugins).toContain('office-hours');
  });
});

describe('outbox retry timing', () => {
  it("backs off exponentially, never sooner than the provider's Retry-After", async () => {
    const { backoffStrategy } = await import('../core/jobs/job-runner.js');
    const job = { opts: { backoff: { delay: 100 } } };
    expect([1, 2, 3, 4].map((n) => backoffStrategy(n, 'parley', new Error('x'), job))).toEqual([100, 200, 400, 800]);
    const retryAfter = Object.assign(new Error('429'), { retryAfterMs: 5000 });
    expect(backoffStrategy(2, 'parley', retryAfter, job)).toBe(5000);
  });
});

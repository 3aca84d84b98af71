/**
 * Loading and validating `parley.yaml`: YAML, `${VAR}` interpolation from the environment, then zod.
 * Per-plugin options and per-tenant settings are validated later against each plugin's own schemas
 * (the gateway calls `checkAgainst` once the plugins are loaded), so errors can name the tenant, the
 * plugin and the key path. Unknown keys are errors at every level, with a suggestion.
 */
import { readFileSync, existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError, type ScalarTag } from 'yaml';
import { z } from 'zod';
import { ConfigError, ParleyError } from './errors.js';
import { closestKey, findUnknownKeys, unknownKeyMessage } from './unknown-keys.js';

const tenantId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "-" or "_", starting with a letter or digit');

/** True when Intl accepts the zone: IANA names (`America/New_York`), `UTC` and the aliases Intl knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch (error) {
    if (error instanceof RangeError) return false;
    throw error;
  }
}

const timeZone = z.string().superRefine((value, ctx) => {
  if (isTimeZone(value)) return;
  const close = closestKey(value, [...Intl.supportedValuesOf('timeZone'), 'UTC']);
  ctx.addIssue({ code: 'custom', message: `unknown time zone "${value}"${close ? `, did you mean "${close}"?` : ' (use an IANA name such as "America/New_York", or "UTC")'}` });
});

const localeTag = z.string().refine(
  (value) => {
    try {
      return Intl.getCanonicalLocales(value).length === 1;
    } catch {
      return false;
    }
  },
  { message: 'not a BCP 47 language tag such as "en-US"' },
);

/** A provider name in `ai.providers`, or `local` (built in: no generative model, the caller's own embedder). */
const aiProviderName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "-" or "_"');

/** Which AI provider a tenant uses for chat and for embeddings; an absent key takes `ai.default`. */
export const tenantAiSchema = z.object({
  chat: aiProviderName.optional(),
  embeddings: aiProviderName.optional(),
});

const aiProviderCommon = {
  /** Root of the API (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`). */
  baseUrl: z.string().url().optional(),
  /**
   * Usually `${OPENAI_API_KEY:-}`. Empty (the variable unset or blank): the provider is off and its
   * tenants run `local` (logged, and shown in /readyz). Absent: allowed only for a loopback `baseUrl`.
   */
  apiKey: z.string().optional(),
  chatModel: z.string().min(1).optional(),
  /** Time limit of one attempt, in milliseconds. */
  timeoutMs: z.number().int().min(1).max(600_000).default(20_000),
  /** Retries after a 429, a 5xx or a network error (never after a 4xx or a timeout). */
  maxRetries: z.number().int().min(0).max(10).default(2),
  /** Base of the exponential backoff between retries (with jitter); a Retry-After header wins. */
  backoffMs: z.number().int().min(1).max(60_000).default(500),
};

export const aiProviderSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('openai'), ...aiProviderCommon, embeddingModel: z.string().min(1).optional() }),
  z.object({ type: z.literal('anthropic'), ...aiProviderCommon }),
]);

export const aiSchema = z.object({
  providers: z.record(aiProviderName, aiProviderSchema).default({}),
  /** USD per million tokens, by model name. A model without a price is metered without cost. */
  prices: z.record(z.string(), z.object({ input: z.number().min(0), output: z.number().min(0).default(0) })).default({}),
  /** Per provider: after `failures` consecutive failed calls, calls fail fast for `openMs`, then one trial call. */
  breaker: z
    .object({ failures: z.number().int().min(1).default(5), openMs: z.number().int().min(1).default(30_000) })
    .default({ failures: 5, openMs: 30_000 }),
  /** What a tenant without its own `ai` section uses. */
  default: z.object({ chat: aiProviderName.default('local'), embeddings: aiProviderName.default('local') }).default({ chat: 'local', embeddings: 'local' }),
});

export type AiConfig = z.output<typeof aiSchema>;
export type AiProviderConfig = z.output<typeof aiProviderSchema>;

export const tenantSchema = z.object({
  id: tenantId,
  name: z.string().optional(),
  /** BCP 47 language tag; channels use it for voice and keyword texts. */
  locale: localeTag.default('en-US'),
  /** IANA time zone; stages such as office hours read the tenant's local time in it. */
  timezone: timeZone.default('UTC'),
  /** Admin API keys (plain, usually from `${ENV}`); only their hashes are kept in memory. */
  apiKeys: z.array(z.string()).default([]),
  /** Sent when a stage fails; set to null to send nothing. */
  fallbackReply: z.string().nullable().default("Sorry, something went wrong on our side. Please try again in a moment."),
  /** Ordered stage names. */
  pipeline: z.array(z.string()).default([]),
  /** Ordered reply stage names: run on every outgoing message, before the outbox. */
  replyPipeline: z.array(z.string()).default([]),
  /** Settings per plugin (channels included). A plugin is enabled for a tenant by appearing here. */
  plugins: z.record(z.string(), z.unknown()).default({}),
  /** The tenant's AI providers (names in `ai.providers`, or `local`); absent: `ai.default`. */
  ai: tenantAiSchema.optional(),
});

export const pluginEntrySchema = z.union([
  z.string(),
  z.object({
    name: z.string(),
    /** Module path (relative to the config file) or package name of a third-party plugin. */
    module: z.string().optional(),
    options: z.unknown().optional(),
  }),
]);

export const configSchema = z.object({
  server: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.coerce.number().int().min(0).max(65535).default(3000),
      /** The URL providers call, e.g. https://parley.example.com (used for webhook signatures). */
      publicBaseUrl: z.string().url().optional(),
      /** Trust X-Forwarded-* from a proxy in front of Parley. */
      trustProxy: z.boolean().default(false),
      bodyLimit: z.string().default('256kb'),
      /** How long SIGTERM waits for in-flight messages and jobs before exiting. */
      shutdownTimeoutMs: z.number().int().positive().default(10_000),
      /** When set, `/metrics` and the detailed `/readyz` need `Authorization: Bearer <token>`. */
      metricsToken: z.string().min(16).optional(),
    })
    .default({ host: '127.0.0.1', port: 3000, trustProxy: false, bodyLimit: '256kb', shutdownTimeoutMs: 10_000 }),
  storage: z
    .object({
      /** PostgreSQL 14+ (with pgvector for vector plugins). Empty: embedded PGlite in `dataDir`. */
      databaseUrl: z.string().optional(),
      /** Redis for BullMQ. Empty: jobs run on the database (BullMQ's PostgreSQL backend). */
      redisUrl: z.string().optional(),
      /** Key prefix of BullMQ's queues in Redis (default `parley`), so several deployments can share one Redis. */
      jobsPrefix: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "." and "-", at most 64, starting with a letter or digit')
        .optional(),
      dataDir: z.string().default('./data'),
      poolSize: z.number().int().positive().default(10),
      /** The embedded database's vacuum and analyze of the hot tables (a server runs autovacuum). */
      maintenance: z
        .object({
          /** When the job checks the tables (cron; six fields put seconds first). */
          cron: z.string().default('*/10 * * * * *'),
          /** Dead rows (or rows changed since the last analyze) that make a table due, at least. */
          deadRows: z.number().int().positive().default(1000),
        })
        .default({ cron: '*/10 * * * * *', deadRows: 1000 }),
    })
    .default({ dataDir: './data', poolSize: 10, maintenance: { cron: '*/10 * * * * *', deadRows: 1000 } }),
  outbox: z
    .object({
      attempts: z.number().int().min(1).max(50).default(8),
      backoffMs: z.number().int().min(10).default(2_000),
      concurrency: z.number().int().min(1).default(8),
    })
    .default({ attempts: 8, backoffMs: 2_000, concurrency: 8 }),
  operator: z.object({ apiKeys: z.array(z.string()).default([]) }).default({ apiKeys: [] }),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /**
       * Also append the log to this file (relative paths: under `storage.dataDir`). The gateway keeps it,
       * so data-subject erasure removes a person's lines from it and verification scans it.
       */
      file: z.string().min(1).optional(),
    })
    .default({ level: 'info' }),
  /** AI model providers (LangChain chat models and embeddings) tenants choose from; see core/ai/. */
  ai: aiSchema.default({ providers: {}, prices: {}, breaker: { failures: 5, openMs: 30_000 }, default: { chat: 'local', embeddings: 'local' } }),
  plugins: z.array(pluginEntrySchema).default([]),
  tenants: z.array(tenantSchema).min(1, 'at least one tenant is required'),
});

export type ParleyConfig = z.output<typeof configSchema>;
export type TenantConfig = z.output<typeof tenantSchema>;
export interface PluginEntry {
  name: string;
  module?: string;
  options?: unknown;
}

export interface LoadedConfig {
  config: ParleyConfig;
  /** Directory third-party module paths are resolved against. */
  baseDir: string;
  source: string;
}

/**
 * The demo configuration bundled with Parley, used when no `parley.yaml` is present: the package's own
 * `config/demo.yaml`, whether this module runs from the sources or compiled in `dist/`, so that the
 * paths it holds (the MedQuAD corpus in `corpora/`) resolve against the package, not against `dist/`.
 */
export const BUNDLED_DEMO_CONFIG = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, basename(dirname(here)) === 'dist' ? '../../config/demo.yaml' : '../config/demo.yaml');
})();

/**
 * `${VAR}` must be set; `${VAR:-default}` falls back when VAR is unset or empty; `${VAR-default}` only
 * when it is unset (so `VAR=` turns a default off); `$${...}` is a literal. Applied per string value.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path: string, issues: string[]): unknown {
  const lookup = (name: string, colon: string | undefined, fallback: string | undefined): string | undefined => {
    const v = env[name];
    if (v !== undefined && (v !== '' || (fallback !== undefined && !colon))) return v;
    return fallback;
  };
  if (typeof value === 'string') {
    const whole = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}$/.exec(value);
    if (whole) {
      const [, name, colon, fallback] = whole;
      const v = lookup(name!, colon, fallback);
      if (v !== undefined) return v === '' ? undefined : v;
      issues.push(`${path}: environment variable ${name} is not set`);
      return undefined;
    }
    return value.replace(/\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}/g, (match, name?: string, colon?: string, fallback?: string) => {
      if (match === '$${') return '${';
      const v = lookup(name!, colon, fallback);
      if (v !== undefined) return v;
      issues.push(`${path}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, `${path}[${i}]`, issues)).filter((v) => v !== undefined);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = interpolateEnv(v, env, path ? `${path}.${k}` : k, issues);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
  return value;
}

/** Formats a zod issue path the way a person reads the YAML: `tenants[0] (demo).plugins.http.x`. */
export function formatPath(path: readonly PropertyKey[], raw?: unknown): string {
  let out = '';
  let node: unknown = raw;
  for (const key of path) {
    if (typeof key === 'number') {
      out += `[${key}]`;
      node = Array.isArray(node) ? node[key] : undefined;
      const id = node && typeof node === 'object' ? ((node as Record<string, unknown>).id ?? (node as Record<string, unknown>).name) : undefined;
      if (typeof id === 'string') out += ` (${id})`;
    } else {
      out += out ? `.${String(key)}` : String(key);
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[key as string] : undefined;
    }
  }
  return out || '(root)';
}

/** Joins a prefix such as `tenants[0] (acme).plugins.http` and a formatted path below it. */
function issueLine(prefix: string, path: readonly PropertyKey[], raw: unknown, message: string): string {
  const where = formatPath(path, raw);
  if (!prefix) return `${where}: ${message}`;
  if (where === '(root)') return `${prefix}: ${message}`;
  return `${prefix}${where.startsWith('[') ? '' : '.'}${where}: ${message}`;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let node = raw;
  for (const key of path) node = node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined;
  return node;
}

/** A phone number written without quotes and without its `+` reaches zod as a number. */
const PHONE_HINT = 'write phone numbers as quoted E.164 strings, e.g. "+15557654321" (and quote other long ids too)';

function issueMessage(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === 'invalid_type' && issue.expected === 'string') {
    const value = valueAt(raw, issue.path);
    if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) >= 1e9) return `${issue.message}; ${PHONE_HINT}`;
  }
  return issue.message;
}

export type Checked<T> = { success: true; data: T } | { success: false; issues: string[] };

/**
 * Parses `raw` with `schema` and also refuses keys the schema does not know (zod would strip them),
 * suggesting the closest known key. Each issue starts with `where`, e.g. `tenants[0] (acme).plugins.http`.
 * @example checkAgainst(z.object({ greeting: z.string() }), { greting: 'Hi' }, 'tenants[0] (acme).plugins.greeter')
 * // { success: false, issues: ['tenants[0] (acme).plugins.greeter.greting: unknown key, did you mean "greeting"?', ...] }
 */
export function checkAgainst<T>(schema: z.ZodType<T>, raw: unknown, where: string): Checked<T> {
  const unknown = findUnknownKeys(schema, raw);
  const reported = new Set(unknown.map((u) => JSON.stringify(u.path)));
  const parsed = schema.safeParse(raw);
  const zodIssues = parsed.success
    ? []
    : parsed.error.issues.filter((issue) => issue.code !== 'unrecognized_keys' || issue.keys.some((k) => !reported.has(JSON.stringify([...issue.path, k]))));
  const issues = [
    ...unknown.map((u) => issueLine(where, u.path, raw, unknownKeyMessage(u.key, u.known))),
    ...zodIssues.map((issue) => issueLine(where, issue.path, raw, issueMessage(issue, raw))),
  ];
  return parsed.success && issues.length === 0 ? { success: true, data: parsed.data } : { success: false, issues };
}

/** Where a plugin's options are written: `plugins[2] (slack-alerts).options`. */
export function pluginOptionsPath(config: ParleyConfig, name: string): string {
  const i = config.plugins.findIndex((p) => normalisePluginEntry(p).name === name);
  return i < 0 ? `plugins (${name}, not listed).options` : `plugins[${i}] (${name}).options`;
}

/** Where a tenant is in the configuration: `tenants[3] (acme)`. */
export function tenantPath(config: ParleyConfig, tenantId: string): string {
  const i = config.tenants.findIndex((t) => t.id === tenantId);
  return i < 0 ? `tenants (${tenantId}, not listed)` : `tenants[${i}] (${tenantId})`;
}

/**
 * Names a plugin or stage the configuration refers to but nothing provides, with the closest known name.
 * @example unknownName('plugin', 'twilio-sm', ['http', 'twilio-sms']) // 'unknown plugin "twilio-sm", did you mean "twilio-sms"?'
 */
export function unknownName(what: string, name: string, known: readonly string[]): string {
  const close = closestKey(name, known);
  return `unknown ${what} "${name}"${close ? `, did you mean "${close}"?` : ''}`;
}

export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): ParleyConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, customTags: (tags) => [phoneNumberTag, ...tags] });
  } catch (error) {
    const msg = error instanceof YAMLParseError ? error.message : String(error);
    throw new ConfigError([`${source}: not valid YAML: ${msg}`], { cause: error });
  }
  const issues: string[] = [];
  blankUnsetAiKeys(doc, env);
  const interpolated = interpolateEnv(doc ?? {}, env, '', issues);
  if (issues.length) throw new ConfigError(issues.map((i) => `${source}: ${i}`));
  const parsed = checkAgainst(configSchema, interpolated, '');
  if (!parsed.success) throw new ConfigError(parsed.issues.map((i) => `${source}: ${i}`));
  const config = parsed.data;
  const seen = new Set<string>();
  for (const t of config.tenants) {
    if (seen.has(t.id)) throw new ConfigError([`${source}: tenants: tenant id "${t.id}" appears twice`]);
    seen.add(t.id);
  }
  const aiIssues = checkAiReferences(config);
  if (aiIssues.length) throw new ConfigError(aiIssues.map((i) => `${source}: ${i}`));
  return config;
}

/**
 * An AI provider's `apiKey: ${VAR}` whose variable is unset or blank is a missing credential, not a
 * broken configuration (DESIGN.md, "Missing credentials"): it becomes `''`, the provider is off and
 * its tenants run `local`. Any other `${VAR}` that is unset still fails.
 */
function blankUnsetAiKeys(doc: unknown, env: NodeJS.ProcessEnv): void {
  const providers = (doc as { ai?: { providers?: unknown } } | null)?.ai?.providers;
  if (!providers || typeof providers !== 'object') return;
  for (const provider of Object.values(providers as Record<string, unknown>)) {
    if (!provider || typeof provider !== 'object') continue;
    const p = provider as Record<string, unknown>;
    if (typeof p.apiKey !== 'string') continue;
    const scratch: string[] = [];
    const value = interpolateEnv(p.apiKey, env, '', scratch);
    if (scratch.length || value === undefined || value === '') p.apiKey = '';
  }
}

/** True for a URL on this machine (`localhost`, 127.0.0.0/8, `::1`): a local model server needs no key. */
export function isLoopbackUrl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
  } catch {
    return false;
  }
}

/** Provider names the configuration uses must exist and offer what they are used for. */
function checkAiReferences(config: ParleyConfig): string[] {
  const issues: string[] = [];
  const providers = config.ai.providers;
  const names = ['local', ...Object.keys(providers)];
  if ('local' in providers) issues.push('ai.providers.local: "local" is built in (no generative model, the caller\'s own embedder); name the provider otherwise');
  for (const [name, p] of Object.entries(providers)) {
    if (p.apiKey === undefined && !isLoopbackUrl(p.baseUrl)) {
      issues.push(`ai.providers.${name}.apiKey: required for a provider not on this machine (${p.baseUrl ?? `the ${p.type} API`}); write apiKey: \${${p.type === 'openai' ? 'OPENAI' : 'ANTHROPIC'}_API_KEY:-} so an unset key turns the provider off instead`);
    }
  }
  const check = (where: string, use: 'chat' | 'embeddings', name: string | undefined) => {
    if (name === undefined || name === 'local') return;
    const p = providers[name];
    if (!p) return issues.push(`${where}: ${unknownName('AI provider', name, names)}`);
    if (use === 'chat' && !p.chatModel) issues.push(`${where}: AI provider "${name}" has no chatModel`);
    if (use === 'embeddings') {
      if (p.type !== 'openai') issues.push(`${where}: AI provider "${name}" (${p.type}) offers no embeddings; use an openai-type provider or local`);
      else if (!p.embeddingModel) issues.push(`${where}: AI provider "${name}" has no embeddingModel`);
    }
  };
  check('ai.default.chat', 'chat', config.ai.default.chat);
  check('ai.default.embeddings', 'embeddings', config.ai.default.embeddings);
  for (const t of config.tenants) {
    check(`${tenantPath(config, t.id)}.ai.chat`, 'chat', t.ai?.chat);
    check(`${tenantPath(config, t.id)}.ai.embeddings`, 'embeddings', t.ai?.embeddings);
  }
  return issues;
}

/**
 * YAML reads `+15557654321` as the integer 15557654321; a plus sign followed by 7 to 15 digits is an
 * E.164 phone number, so it stays the string it was written as. `port: +3000` is still a number.
 */
const phoneNumberTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:str',
  default: true,
  test: /^\+[1-9][0-9]{6,14}$/,
  resolve: (source) => source,
};

/** Reads `path` (or `./parley.yaml`, else the bundled demo config). */
export function loadConfigFile(path?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let file = path ? resolve(path) : resolve('parley.yaml');
  if (!existsSync(file)) {
    if (path) throw new ParleyError('PARLEY_CONFIG_NOT_FOUND', `Configuration file not found: ${file}`);
    file = BUNDLED_DEMO_CONFIG;
  }
  const config = parseConfig(readFileSync(file, 'utf8'), file, env);
  return { config, baseDir: dirname(file), source: file };
}

export function normalisePluginEntry(entry: z.output<typeof pluginEntrySchema>): PluginEntry {
  return typeof entry === 'string' ? { name: entry } : entry;
}

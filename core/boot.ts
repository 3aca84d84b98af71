/**
 * Application-level boot: reads configuration (file, then the process environment for PORT,
 * PARLEY_DATA_DIR, DATABASE_URL and REDIS_URL) and starts a Gateway with a plugin catalogue.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { loadConfigFile, type LoadedConfig } from './config.js';
import { Gateway } from './gateway.js';
import type { PluginCatalogue } from './plugin-loader.js';

/** When the config uses PARLEY_DEMO_KEY and it is unset, make one so the demo works out of the box. */
export function ensureDemoKey(configPath: string | undefined, env: NodeJS.ProcessEnv, say: (line: string) => void): void {
  if (env.PARLEY_DEMO_KEY) return;
  const file = configPath ?? (loadPathOrDemo());
  if (!readFileSync(file, 'utf8').includes('${PARLEY_DEMO_KEY')) return;
  env.PARLEY_DEMO_KEY = `pk_demo_${randomBytes(18).toString('base64url')}`;
  say(`PARLEY_DEMO_KEY was not set; generated one for this run:\n  export PARLEY_DEMO_KEY=${env.PARLEY_DEMO_KEY}`);
}

function loadPathOrDemo(): string {
  try {
    readFileSync('parley.yaml');
    return 'parley.yaml';
  } catch {
    return new URL('../config/demo.yaml', import.meta.url).pathname;
  }
}

/** Environment variables that override the file, so a deployment can move without editing YAML. */
export function applyEnvOverrides(loaded: LoadedConfig, env: NodeJS.ProcessEnv): LoadedConfig {
  const c = loaded.config;
  if (env.PORT) c.server.port = Number(env.PORT);
  if (env.PARLEY_DATA_DIR) c.storage.dataDir = env.PARLEY_DATA_DIR;
  if (env.DATABASE_URL) c.storage.databaseUrl = env.DATABASE_URL;
  if (env.REDIS_URL) c.storage.redisUrl = env.REDIS_URL;
  if (env.LOG_LEVEL) c.log.level = env.LOG_LEVEL as typeof c.log.level;
  return loaded;
}

export async function bootFromFile(opts: { configPath?: string; catalogue: PluginCatalogue; env?: NodeJS.ProcessEnv; logger?: Logger }): Promise<Gateway> {
  const env = opts.env ?? process.env;
  const loaded = applyEnvOverrides(loadConfigFile(opts.configPath, env), env);
  return Gateway.boot({ loaded, catalogue: opts.catalogue, ...(opts.logger ? { logger: opts.logger } : {}) });
}

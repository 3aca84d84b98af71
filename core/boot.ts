/**
 * What `parley start` does before the kernel boots: a demo key when the demo needs one, and the
 * environment variables (PORT, PARLEY_DATA_DIR, DATABASE_URL, REDIS_URL, LOG_LEVEL) over the file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { BUNDLED_DEMO_CONFIG, type LoadedConfig } from './config.js';

/** When the config uses PARLEY_DEMO_KEY and it is unset, make one so the demo works out of the box. */
export function ensureDemoKey(configPath: string | undefined, env: NodeJS.ProcessEnv, say: (line: string) => void): void {
  if (env.PARLEY_DEMO_KEY) return;
  const file = configPath ?? (existsSync('parley.yaml') ? 'parley.yaml' : BUNDLED_DEMO_CONFIG);
  if (!readFileSync(file, 'utf8').includes('${PARLEY_DEMO_KEY')) return;
  env.PARLEY_DEMO_KEY = `pk_demo_${randomBytes(18).toString('base64url')}`;
  say(`PARLEY_DEMO_KEY was not set; generated one for this run:\n  export PARLEY_DEMO_KEY=${env.PARLEY_DEMO_KEY}`);
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

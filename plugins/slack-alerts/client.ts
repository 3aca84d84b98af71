/** The Slack Web API client, and pino adapted to the logger Bolt and the Web API client expect. */
import { LogLevel, webApi, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from 'pino';
import type { ConnectedOptions } from './types.js';

/** Adapts pino to the logger interface Bolt and the Web API client expect. */
export function boltLogger(log: Logger): BoltLogger {
  const line = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.debug(line(msg)),
    info: (...msg: unknown[]) => log.info(line(msg)),
    warn: (...msg: unknown[]) => log.warn(line(msg)),
    error: (...msg: unknown[]) => log.error(line(msg)),
    setLevel: () => undefined,
    getLevel: () => LogLevel.INFO,
    setName: () => undefined,
  };
}

/** The Web API client: rate-limited calls wait and retry (with backoff) instead of failing. */
export function createSlackClient(options: Pick<ConnectedOptions, 'token' | 'apiUrl' | 'retries'>, logger: BoltLogger): webApi.WebClient {
  return new webApi.WebClient(options.token, {
    slackApiUrl: options.apiUrl,
    logger,
    rejectRateLimitedCalls: false,
    retryConfig: { retries: options.retries, factor: 2, minTimeout: 500, maxTimeout: 30_000, randomize: true },
    timeout: 15_000,
  });
}

/**
 * pino JSON logs. Phone numbers are hashed and message bodies are only logged at debug level; errors go
 * through `scrubbedErr` (provider texts quoting numbers, PostgreSQL error contexts quoting rows).
 */
import { createHash } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { scrubbedErr } from './log-scrub.js';
import type { LogFile } from './log-file.js';

/**
 * A pino logger writing to `destination` (default stdout) and, with `file`, to that file too (every
 * line at the same level).
 */
export function createLogger(level: string, destination?: pino.DestinationStream, file?: LogFile): Logger {
  if (file) {
    const streamLevel = (level === 'silent' ? 'fatal' : level) as pino.Level;
    destination = pino.multistream([
      { level: streamLevel, stream: destination ?? pino.destination(1) },
      { level: streamLevel, stream: file.stream },
    ]);
  }
  return pino(
    {
      level,
      base: { service: 'parley' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: scrubbedErr },
      redact: { paths: ['*.authToken', '*.apiKey', '*.password', 'req.headers.authorization', '*.body', '*.text', 'err.where', 'err.detail', 'err.internalQuery'], censor: '[redacted]' },
    },
    destination,
  );
}

/** A short stable hash of an address (`ph_3f9a...`), so logs can be correlated without the number. */
export function hashAddress(address: string): string {
  return `ph_${createHash('sha256').update(address.replace(/^[a-z]+:/i, '')).digest('hex').slice(0, 12)}`;
}

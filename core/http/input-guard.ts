/**
 * Input PostgreSQL would refuse, turned away at the HTTP edge with a 4xx instead of a 500: a NUL in a
 * path or query (`%00`), and NUL or lone surrogates in a JSON body of our own API. As the last safety
 * net, a data error from PostgreSQL (SQLSTATE class 22, or 54000) is the client's input: 400.
 */
import type { NextFunction, Request, Response } from 'express';
import { HttpError, ParleyError, badRequest } from '../errors.js';
import { isPoisonInput } from '../inbound-guard.js';

const UNSTORABLE = /[\u0000\uD800-\uDFFF]/u;
const MAX_DEPTH = 64;

/** The first string (key or value) in a JSON body that PostgreSQL cannot store, as a path. */
function unstorablePath(value: unknown, path: string, depth: number): string | undefined {
  if (typeof value === 'string') return hasUnstorable(value) ? path || 'body' : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_DEPTH) return path || 'body';
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}${path ? '.' : ''}${key}`;
    if (hasUnstorable(key)) return at;
    const found = unstorablePath(v, at, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** NUL, or a surrogate that is not half of a pair (with the u flag, a pair is one code point and does not match). */
function hasUnstorable(text: string): boolean {
  return UNSTORABLE.test(text);
}

/** Middleware for the admin API (`/v1`): 400 for a NUL in the URL, or unstorable text in the JSON body. */
export function adminInputGuard(req: Request, _res: Response, next: NextFunction): void {
  if (/%00/u.test(req.originalUrl)) throw badRequest('The URL contains a NUL character (%00)');
  if (req.body !== undefined && req.is('application/json')) {
    const at = unstorablePath(req.body, '', 0);
    if (at) throw badRequest(`${at.slice(0, 100)}: text must not contain NUL characters or unpaired surrogates, nor nest deeper than ${MAX_DEPTH} levels`);
  }
  next();
}

/** A PostgreSQL data error as the 400 it is, or undefined for anything else. */
export function databaseDataError(error: unknown): ParleyError | undefined {
  if (error instanceof ParleyError || !isPoisonInput(error)) return undefined;
  return new HttpError('PARLEY_BAD_REQUEST', 'The request holds a value that cannot be stored', 400, { cause: error });
}

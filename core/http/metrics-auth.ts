/**
 * `server.metricsToken`: `/metrics` and `/readyz` name every tenant and count its traffic. With a
 * token set, `/metrics` needs `Authorization: Bearer <token>` (401 without), and `/readyz` without it
 * answers only the overall status, which is all a load balancer needs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether the request may read tenant-level operations data: always, when no token is configured. */
export function metricsAccess(token: string | undefined): (req: Request) => boolean {
  if (!token) return () => true;
  const expected = digest(token);
  return (req) => {
    const header = req.get('authorization');
    return header?.startsWith('Bearer ') === true && timingSafeEqual(digest(header.slice(7).trim()), expected);
  };
}

/**
 * What `/slack/actions` checks before Bolt sees a request. Bolt's verifier refuses a timestamp more
 * than five minutes old but accepts one from the future, so a request signed ahead of time (or with a
 * clock set ahead) would stay valid until then: here both directions are refused, then the signature
 * is checked. A signed payload Bolt would crash on (`user: null`) is answered 200 and ignored with a
 * reason: it came from Slack, and retrying it cannot help.
 */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { isValidSlackRequest } from '@slack/bolt';
import { unauthenticated } from '../../core/errors.js';

/** Slack's documented window: 5 minutes. */
export const MAX_REQUEST_SKEW_S = 300;

/** Why Bolt could not handle this signed payload, or undefined when it can. */
function unusablePayload(body: unknown): string | undefined {
  const raw = (body as { payload?: unknown } | undefined)?.payload;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') return 'payload is not a single form field';
  let payload: unknown;
  try {
    payload = JSON.parse(raw);
  } catch {
    return 'payload is not JSON';
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return 'payload is not a JSON object';
  const { type, user } = payload as { type?: unknown; user?: unknown };
  if (typeof type !== 'string') return 'payload has no type';
  if (typeof user !== 'object' || user === null || typeof (user as { id?: unknown }).id !== 'string') return 'payload has no user id';
  return undefined;
}

/**
 * @example
 * router.post('/slack/actions', slackRequestGuard({ signingSecret, log }), boltRouter);
 */
export function slackRequestGuard(deps: { signingSecret: string; log: Logger; now?: () => number }): RequestHandler {
  const now = deps.now ?? Date.now;
  return (req, res, next) => {
    const timestamp = req.get('x-slack-request-timestamp') ?? '';
    const seconds = /^\d{1,12}$/u.test(timestamp) ? Number(timestamp) : Number.NaN;
    if (!Number.isFinite(seconds) || Math.abs(now() / 1000 - seconds) > MAX_REQUEST_SKEW_S) {
      throw unauthenticated('x-slack-request-timestamp is missing or more than 5 minutes from our clock');
    }
    const signed = isValidSlackRequest({
      signingSecret: deps.signingSecret,
      body: req.rawBody?.toString('utf8') ?? '',
      headers: { 'x-slack-signature': req.get('x-slack-signature') ?? '', 'x-slack-request-timestamp': seconds },
      nowMilliseconds: now(),
    });
    if (!signed) throw unauthenticated('Invalid x-slack-signature');
    const unusable = unusablePayload(req.body);
    if (unusable) {
      deps.log.info({ reason: unusable, reqId: req.requestId }, 'signed Slack request ignored');
      res.status(200).end();
      return;
    }
    next();
  };
}

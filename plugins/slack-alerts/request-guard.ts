/**
 * What `/slack/actions` checks before Bolt sees a request. Bolt's verifier refuses a timestamp more
 * than five minutes old but accepts one from the future, so a request signed ahead of time (or with a
 * clock set ahead) would stay valid until then: here both directions are refused, then the signature
 * is checked. A signed payload that is not a click on our buttons, or one Bolt would crash on
 * (`user: null`), is answered 200 and ignored with a reason: it came from Slack, and a retry cannot help.
 */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { isValidSlackRequest } from '@slack/bolt';
import { unauthenticated } from 'parley';

/** Slack's documented window: 5 minutes. */
export const MAX_REQUEST_SKEW_S = 300;

/**
 * Why this signed request is not a click on one of our buttons, or undefined when it is. Anything
 * else would reach Bolt with no listener, which answers only after a 3-second timeout.
 */
function unusablePayload(body: unknown, actionIds: readonly string[]): string | undefined {
  const raw = (body as { payload?: unknown } | undefined)?.payload;
  if (raw === undefined) return 'no payload field';
  if (typeof raw !== 'string') return 'payload is not a single form field';
  let payload: unknown;
  try {
    payload = JSON.parse(raw);
  } catch {
    return 'payload is not JSON';
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return 'payload is not a JSON object';
  const { type, user, actions } = payload as { type?: unknown; user?: unknown; actions?: unknown };
  if (type !== 'block_actions') return 'payload is not block_actions';
  if (typeof user !== 'object' || user === null || typeof (user as { id?: unknown }).id !== 'string') return 'payload has no user id';
  if (!Array.isArray(actions) || !actions.some((a: { action_id?: unknown } | null) => typeof a === 'object' && a !== null && actionIds.includes(a.action_id as string))) return 'no action of ours';
  return undefined;
}

/**
 * @example
 * router.post('/slack/actions', slackRequestGuard({ signingSecret, actionIds: [ACK_ACTION_ID], log }), boltRouter);
 */
export function slackRequestGuard(deps: { signingSecret: string; actionIds: readonly string[]; log: Logger; now?: () => number }): RequestHandler {
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
    const unusable = unusablePayload(req.body, deps.actionIds);
    if (unusable) {
      deps.log.info({ reason: unusable, reqId: req.requestId }, 'signed Slack request ignored');
      res.status(200).end();
      return;
    }
    next();
  };
}

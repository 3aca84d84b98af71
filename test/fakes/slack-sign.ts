import { createHmac } from 'node:crypto';

/** Headers Slack sends with a signed request (a type alias, so it spreads into any headers record). */
export type SlackSignatureHeaders = {
  'x-slack-signature': string;
  'x-slack-request-timestamp': string;
};

/**
 * Signs a request body the way Slack does (v0): `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
 *
 * @example
 * const headers = signSlackRequest(signingSecret, JSON.stringify(event));
 * await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
 */
export function signSlackRequest(
  signingSecret: string,
  body: string,
  timestamp: number = Math.floor(Date.now() / 1000),
): SlackSignatureHeaders {
  const digest = createHmac('sha256', signingSecret).update(`v0:${timestamp}:${body}`).digest('hex');
  return { 'x-slack-signature': `v0=${digest}`, 'x-slack-request-timestamp': String(timestamp) };
}

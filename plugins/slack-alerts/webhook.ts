/**
 * `POST /slack/actions`: the Acknowledge button. request-guard.ts refuses timestamps more than 5
 * minutes away (both directions) and bad signatures with 401 before Bolt verifies the request again
 * from the raw body the kernel keeps in `req.rawBody`. The acknowledgement is recorded before Slack
 * gets its answer; the message is edited after, within Slack's 3 s.
 */
import express from 'express';
import { App, ExpressReceiver, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from 'pino';
import type { PluginContext, RouteHelpers } from 'parley';
import { z } from 'zod';
import { ACK_ACTION_ID, LINK_ACTION_ID } from './blocks.js';
import type { SlackMetrics } from './metrics.js';
import { slackRequestGuard } from './request-guard.js';
import type { SlackAlertSink } from './sink.js';
import type { ConnectedOptions } from './types.js';

/** Where Slack sends interactivity requests (set it as the app's Request URL). */
export const ACTIONS_PATH = '/slack/actions';

export interface ActionsDeps {
  options: Pick<ConnectedOptions, 'token' | 'signingSecret' | 'apiUrl'>;
  slackLog: BoltLogger;
  log: Logger;
  sink: SlackAlertSink;
  metrics: SlackMetrics;
  /** The kernel's tracked fire-and-forget work: the message edits run after Slack has its answer. */
  background: PluginContext['background'];
}

/** The Bolt app behind the actions route. */
export function createActionsWebhook(deps: ActionsDeps) {
  const { options, slackLog, log, sink } = deps;
  const router = express.Router();
  const receiver = new ExpressReceiver({
    signingSecret: options.signingSecret,
    router,
    endpoints: ACTIONS_PATH,
    processBeforeResponse: true,
    logger: slackLog,
  });
  const bolt = new App({
    token: options.token,
    receiver,
    logger: slackLog,
    convoStore: false,
    tokenVerificationEnabled: false,
    clientOptions: { slackApiUrl: options.apiUrl, logger: slackLog },
  });
  bolt.action({ action_id: ACK_ACTION_ID, type: 'block_actions' }, async ({ ack, action, body }) => {
    const alertId = action.type === 'button' ? action.value : undefined;
    if (!alertId) {
      await ack();
      return;
    }
    const container = body.container as { channel_id?: string; message_ts?: string } | undefined;
    const known = await sink.acknowledge({
      alertId,
      userId: body.user.id,
      ...(body.user.name ?? body.user.username ? { userName: body.user.name ?? body.user.username } : {}),
      ...(container?.channel_id ? { channel: container.channel_id } : {}),
      ...(container?.message_ts ? { ts: container.message_ts } : {}),
    });
    await ack();
    if (!known) return;
    deps.metrics.acks.inc();
    deps.background(
      sink.sync(alertId).catch((error: unknown) => log.warn({ err: error, alert: alertId }, 'could not show the acknowledgement in Slack; will retry')),
      'show the acknowledgement in Slack',
    );
  });
  bolt.action({ action_id: LINK_ACTION_ID, type: 'block_actions' }, async ({ ack }) => {
    await ack();
  });
  bolt.error(async (error) => {
    log.error({ err: error }, 'Slack interaction failed');
  });
  return {
    routes: (appRouter: express.Router, { route }: RouteHelpers): void => {
      route(
        {
          method: 'post',
          path: ACTIONS_PATH,
          auth: 'none',
          tags: ['webhooks'],
          summary: "Slack's interactivity callback (the Acknowledge button of an alert)",
          description: 'Called by Slack, never by integrators. Verified by `X-Slack-Signature` over the raw body with the signing secret, then handed to Bolt.',
          body: z.object({ payload: z.string().describe('The interaction, as JSON text') }),
          bodyContentType: 'application/x-www-form-urlencoded',
          responses: { 200: { description: 'Acknowledged (Slack shows the change in the message)' } },
          errors: [{ code: 'PARLEY_UNAUTHENTICATED', status: 401, description: 'Missing, stale or invalid X-Slack-Signature' }, 'PARLEY_BAD_REQUEST'],
        },
        slackRequestGuard({ signingSecret: options.signingSecret, actionIds: [ACK_ACTION_ID, LINK_ACTION_ID], log }),
      );
      appRouter.use(router);
    },
  };
}

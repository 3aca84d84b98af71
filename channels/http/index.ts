/**
 * The `http` channel: a JSON API for apps, tests and the terminal chat. Works with no credentials.
 * `POST /v1/tenants/:tenant/messages` with the tenant's key runs the pipeline and returns the replies.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { MessageBody, MessageResult, badRequest, definePlugin, param } from 'parley';

const settingsSchema = z
  .object({
    /** How long the request waits for the pipeline before answering 202 and queueing the replies. */
    replyBudgetMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .default({ replyBudgetMs: 10_000 });

const messageBody = MessageBody;
const messageResult = MessageResult;

export const HTTP_CHANNEL = 'http';

export default definePlugin({
  name: 'http',
  kind: 'channel',
  description: 'JSON API channel: POST a message, get the replies back. No provider credentials needed.',
  settingsSchema,
  setup(ctx) {
    ctx.routes((_router, { route }) => {
      route(
        {
          method: 'post',
          path: '/v1/tenants/:tenant/messages',
          auth: 'tenant',
          tags: ['messages'],
          summary: 'Send a message through the pipeline and get the replies',
          description:
            'Runs the tenant\'s pipeline on the message and answers with the replies (200). When the pipeline takes longer than the ' +
            'tenant\'s `replyBudgetMs`, answers 202 and the replies are kept in the outbox (`GET /v1/tenants/{tenant}/outbox`). ' +
            'Sending the same `id` twice runs the pipeline once.',
          body: messageBody,
          bodyExample: { from: 'alice', text: 'What are your opening hours?' },
          responses: {
            200: { description: 'Processed: the replies', schema: messageResult, example: { message: { id: '0f8c…', conversationId: '5b1e…', status: 'processed' }, replies: [{ id: '9a2d…', text: 'We are open 8am to 6pm.', media: [], status: 'sent' }] } },
            202: { description: 'Still running: the replies will be in the outbox', schema: messageResult },
          },
          errors: [{ code: 'PARLEY_BAD_REQUEST', status: 400, description: 'An invalid message, or the http channel is not enabled for the tenant' }, 'PARLEY_INBOUND_FILTER_FAILED'],
        },
        async (req, res) => {
          const tenantId = param(req, 'tenant');
          const settings = ctx.settingsFor(tenantId);
          if (!settings) throw badRequest(`The http channel is not enabled for tenant "${tenantId}"`);
          const body = messageBody.safeParse(req.body);
          if (!body.success) throw badRequest(`Invalid message: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
          const result = await ctx.gateway.receive(
            {
              channel: HTTP_CHANNEL,
              tenantId,
              from: body.data.from,
              to: tenantId,
              text: body.data.text,
              providerMessageId: body.data.id ?? randomUUID(),
              ...(body.data.media ? { media: body.data.media } : {}),
            },
            { inline: { budgetMs: settings.replyBudgetMs, confirm: true } },
          );
          // The inline replies count as delivered only once this response is written; a client that
          // hung up finds them in its mailbox (the sender below) instead.
          await ctx.gateway.deliverInline(res, result, (inline) => {
            const replies = [...inline, ...result.queued].map((r) => ({ id: r.id, text: r.text, media: r.media, status: r.status }));
            res.status(result.status === 'deferred' ? 202 : 200).json({
              message: { id: result.inboundId, conversationId: result.conversationId, status: result.status, ...(result.stopReason ? { stopReason: result.stopReason } : {}) },
              replies,
            });
          });
        },
      );
    });
    // Replies that missed the request's budget are kept in the outbox; an http client fetches them
    // from the admin API, so "sending" one means recording it as delivered to that mailbox.
    ctx.sender({
      channel: HTTP_CHANNEL,
      async send(message) {
        return { providerMessageId: `http-${message.id}`, status: 'delivered' };
      },
    });
  },
});

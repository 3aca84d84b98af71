/**
 * The SaaS's own feature as a small third-party plugin, loaded by path: turn what a user sends into a
 * numbered social-media thread with the tenant's chat model. It goes through the kernel's AI service,
 * so cost-guard's budgets, the usage ledger (and so Stripe metering) and the breaker apply to it.
 *
 *   plugins:
 *     - name: thread-writer
 *       module: ./thread-writer/index.ts
 *
 * A call refused by a budget is answered with `limitReply` (a policy, not an error); any other model
 * failure fails the message, so it counts in the error rate and the tenant's `fallbackReply` is sent.
 */
import { z } from 'zod';
import { ParleyError, definePlugin } from 'parley';

const settingsSchema = z.object({
  /** Most posts in one thread. */
  maxPosts: z.number().int().min(2).max(25).default(6),
  /** Answer when the tenant's AI budget refuses the call. */
  limitReply: z.string().min(1).default("You've reached your plan's AI limit for now. Threads will be back when it resets."),
});

const prompt = (maxPosts: number) =>
  `Rewrite the user's text as a thread of at most ${maxPosts} short posts (each under 280 characters), numbered "1/", "2/"... Keep the facts; add nothing. Answer with the thread only.`;

export default definePlugin({
  name: 'thread-writer',
  kind: 'capability',
  description: 'Turns a text into a numbered thread with the tenant chat model (budgets and metering apply).',
  settingsSchema,
  setup(ctx) {
    ctx.stage({
      name: 'thread-writer',
      async handle(stage, next) {
        const chat = ctx.ai.chat(stage.tenant.id);
        if (!chat || !stage.message.text?.trim()) return next();
        try {
          const { text } = await chat.invoke(
            [
              { role: 'system', content: prompt(stage.settings.maxPosts) },
              { role: 'user', content: stage.message.text },
            ],
            { purpose: 'thread', ref: stage.message.id, maxTokens: 800 },
          );
          stage.reply(text);
        } catch (error) {
          if (error instanceof ParleyError && error.code === 'PARLEY_AI_REFUSED') {
            stage.annotate('thread-writer.refused', true);
            stage.reply(stage.settings.limitReply);
            return;
          }
          throw error;
        }
      },
    });
  },
});

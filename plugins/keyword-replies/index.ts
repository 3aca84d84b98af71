/**
 * `keyword-replies`: answers messages that match configured patterns, with an optional default.
 * Patterns are case-insensitive words or phrases, or `/regex/flags`.
 */
import { z } from 'zod';
import { definePlugin } from 'parley';

const ruleSchema = z
  .object({
    /** Words or phrases (matched as whole words, any case) or `/regex/` strings. */
    match: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    reply: z.string().min(1).max(1600),
    /** Stop the pipeline after replying (default true), so later stages do not answer too. */
    final: z.boolean().default(true),
  })
  .superRefine((rule, ctx) => {
    for (const [i, m] of [rule.match].flat().entries()) {
      if (!m.startsWith('/')) continue;
      const path = ['match', ...(Array.isArray(rule.match) ? [i] : [])];
      let re: RegExp;
      try {
        re = toRegExp(m);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path, message: `not a valid regular expression: ${(error as Error).message}` });
        continue;
      }
      // test() on a g or y regex starts from lastIndex, so the same text would match only every other time.
      if (re.global || re.sticky) {
        ctx.addIssue({ code: 'custom', path, message: `${m}: the g and y flags make a regex remember its last match, so it would miss every other message; remove them` });
      }
    }
  });

const settingsSchema = z.object({
  rules: z.array(ruleSchema).default([]),
  /** Sent when no rule matches and no later stage replied. Omit to stay silent. */
  defaultReply: z.string().min(1).max(1600).optional(),
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function toRegExp(pattern: string): RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  if (re) return new RegExp(re[1]!, re[2]!.includes('i') ? re[2] : `${re[2]}i`);
  return new RegExp(`(^|[^\\p{L}\\p{N}])${escape(pattern.trim())}($|[^\\p{L}\\p{N}])`, 'iu');
}

export default definePlugin({
  name: 'keyword-replies',
  kind: 'capability',
  description: 'Replies to messages matching configured words, phrases or regular expressions, with a default reply.',
  settingsSchema,
  setup(ctx) {
    const compiled = new Map<string, { patterns: RegExp[]; reply: string; final: boolean }[]>();
    for (const { tenant, settings } of ctx.tenants()) {
      compiled.set(tenant.id, settings.rules.map((r) => ({ patterns: [r.match].flat().map(toRegExp), reply: r.reply, final: r.final })));
    }
    ctx.stage({
      name: 'keyword-replies',
      async handle(stage, next) {
        const rules = compiled.get(stage.tenant.id) ?? [];
        const text = stage.message.text.normalize('NFKC');
        const rule = rules.find((r) => r.patterns.some((p) => p.test(text)));
        if (rule) {
          stage.annotate('keyword-replies.matched', true);
          stage.reply(rule.reply);
          if (rule.final) return stage.stop('keyword matched');
        }
        await next();
        if (!rule && stage.settings.defaultReply && stage.replies.length === 0) stage.reply(stage.settings.defaultReply);
      },
    });
  },
});

import { describe, expect, it } from 'vitest';
import type { PluginContext, StageContext, StageDefinition } from 'parley';
import keywordReplies from './index.js';

type Settings = { rules: { match: string | string[]; reply: string; final: boolean }[]; defaultReply?: string };

/** The stage as the kernel would run it for one tenant with these settings. */
function stageFor(settings: Settings): (text: string) => Promise<string[]> {
  let stage: StageDefinition<Settings> | undefined;
  const ctx = { tenants: () => [{ tenant: { id: 'acme' }, settings }], stage: (s: StageDefinition<Settings>) => (stage = s) };
  void keywordReplies.setup(ctx as unknown as PluginContext<unknown, Settings>);
  return async (text) => {
    const replies: string[] = [];
    const c = { tenant: { id: 'acme' }, settings, message: { text }, replies, reply: (t: string) => replies.push(t), annotate: () => undefined, stop: () => undefined };
    await stage!.handle(c as unknown as StageContext<Settings>, async () => undefined);
    return replies;
  };
}

describe('keyword-replies', () => {
  it('refuses a /regex/ with the g or y flag, naming the rule and the fix', () => {
    for (const match of ['/hours/g', ['opening', '/hours/iy']]) {
      const parsed = keywordReplies.settingsSchema!.safeParse({ rules: [{ match, reply: 'We open at 9.' }] });
      expect(parsed.success).toBe(false);
      const issue = parsed.error!.issues[0]!;
      expect(issue.path).toEqual(Array.isArray(match) ? ['rules', 0, 'match', 1] : ['rules', 0, 'match']);
      expect(issue.message).toMatch(/\/hours\/i?[gy]: the g and y flags make a regex remember its last match.*remove them/);
    }
  });

  it('a /regex/ rule answers the same message twice in a row', async () => {
    const settings = keywordReplies.settingsSchema!.parse({ rules: [{ match: '/hours?/', reply: 'We open at 9.' }] }) as Settings;
    const run = stageFor(settings);
    expect(await run('your hours?')).toEqual(['We open at 9.']);
    expect(await run('your hours?')).toEqual(['We open at 9.']);
  });
});

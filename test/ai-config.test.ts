/** The `ai` configuration: provider references checked at load with their path, keys through `${VAR}`. */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';

const LOCAL_V1 = 'http://127.0.0.1:11434/v1';

function issuesOf(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(stringify(config), 'parley.yaml', env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  return [];
}

const providers = {
  openai: { type: 'openai', apiKey: '${OPENAI_API_KEY}', chatModel: 'gpt-4o-mini', embeddingModel: 'text-embedding-3-small' },
  claude: { type: 'anthropic', apiKey: '${ANTHROPIC_API_KEY:-}', chatModel: 'claude-3-5-haiku-latest' },
  ollama: { type: 'openai', baseUrl: LOCAL_V1, chatModel: 'llama3.1' },
};

describe('the ai configuration', () => {
  it('is optional: every tenant then runs local', () => {
    const config = parseConfig(stringify({ tenants: [{ id: 'acme' }] }), 'parley.yaml', {});
    expect(config.ai).toMatchObject({ providers: {}, default: { chat: 'local', embeddings: 'local' }, breaker: { failures: 5, openMs: 30_000 } });
  });

  it('reads providers, prices and tenant choices, with defaults', () => {
    const config = parseConfig(
      stringify({ ai: { providers, prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } }, default: { chat: 'ollama' } }, tenants: [{ id: 'clinic', ai: { chat: 'openai', embeddings: 'local' } }, { id: 'acme' }] }),
      'parley.yaml',
      { OPENAI_API_KEY: 'sk-test', ANTHROPIC_API_KEY: 'ak-test' },
    );
    expect(config.ai.providers.openai).toMatchObject({ apiKey: 'sk-test', timeoutMs: 20_000, maxRetries: 2, backoffMs: 500 });
    expect(config.ai.providers.claude).toMatchObject({ type: 'anthropic', apiKey: 'ak-test' });
    expect(config.ai.providers.ollama!.apiKey).toBeUndefined();
    expect(config.ai.default).toEqual({ chat: 'ollama', embeddings: 'local' });
    expect(config.tenants[0]!.ai).toEqual({ chat: 'openai', embeddings: 'local' });
  });

  it('names the path of a tenant that uses an unknown provider, with a suggestion', () => {
    const issues = issuesOf({ ai: { providers }, tenants: [{ id: 'acme' }, { id: 'clinic', ai: { chat: 'opneai' } }] }, { OPENAI_API_KEY: 'sk' });
    expect(issues).toEqual(['parley.yaml: tenants[1] (clinic).ai.chat: unknown AI provider "opneai", did you mean "openai"?']);
    expect(issuesOf({ ai: { default: { embeddings: 'nope' } }, tenants: [{ id: 'acme' }] })).toEqual(['parley.yaml: ai.default.embeddings: unknown AI provider "nope"']);
  });

  it('refuses a remote openai provider without a key, a provider used for what it lacks, and unknown keys', () => {
    expect(issuesOf({ ai: { providers: { openai: { type: 'openai', chatModel: 'gpt-4o-mini' } } }, tenants: [{ id: 'acme' }] })).toEqual([
      expect.stringMatching(/^parley\.yaml: ai\.providers\.openai\.apiKey: required for a provider not on this machine/),
    ]);
    expect(issuesOf({ ai: { providers }, tenants: [{ id: 'acme', ai: { embeddings: 'claude', chat: 'ollama' } }, { id: 'b', ai: { embeddings: 'ollama' } }] }, { OPENAI_API_KEY: 'sk' })).toEqual([
      'parley.yaml: tenants[0] (acme).ai.embeddings: AI provider "claude" (anthropic) offers no embeddings; use an openai-type provider or local',
      'parley.yaml: tenants[1] (b).ai.embeddings: AI provider "ollama" has no embeddingModel',
    ]);
    expect(issuesOf({ ai: { providers: { ollama: { ...providers.ollama, chatModle: 'x' } } }, tenants: [{ id: 'acme', ai: { chatt: 'ollama' } }] })).toEqual([
      'parley.yaml: ai.providers.ollama.chatModle: unknown key, did you mean "chatModel"?',
      'parley.yaml: tenants[0] (acme).ai.chatt: unknown key, did you mean "chat"?',
    ]);
    expect(issuesOf({ ai: { providers: { local: providers.ollama } }, tenants: [{ id: 'acme' }] })).toEqual([expect.stringContaining('ai.providers.local: "local" is built in')]);
  });

  it('turns a provider whose key variable is unset or blank off instead of failing (DESIGN.md, missing credentials)', () => {
    const config = parseConfig(stringify({ ai: { providers }, tenants: [{ id: 'clinic', ai: { chat: 'openai' } }] }), 'parley.yaml', { OPENAI_API_KEY: '' });
    expect(config.ai.providers.openai!.apiKey).toBe('');
    expect(config.ai.providers.claude!.apiKey).toBe('');
    // Any other unset variable still fails.
    expect(issuesOf({ ai: { providers: { ollama: { ...providers.ollama, chatModel: '${MODEL}' } } }, tenants: [{ id: 'acme' }] })).toEqual(['parley.yaml: ai.providers.ollama.chatModel: environment variable MODEL is not set']);
  });
});

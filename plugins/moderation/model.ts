/**
 * The optional model-based detector: the tenant's chat model (through the AI service, so budgets,
 * breakers and usage apply) asked for a toxicity score. Off by default; a failure, a timeout or an
 * answer that is not the expected JSON yields no opinion, and the rules decide alone.
 */
import type { AiService } from 'parley';
import type { Flag } from './types.js';

const PROMPT = `You are a content moderation classifier. Rate the user's message for toxicity (insults, hate, harassment, threats, sexual content aimed at someone).
Answer with JSON only: {"toxicity": <number 0..1>, "labels": [<short labels>]}.`;

export type ModelResult = { flag: Flag | null; outcome: 'flagged' | 'clean' | 'failed' | 'unavailable' };

export async function modelOpinion(ai: AiService, tenantId: string, text: string, ref: string, timeoutMs: number): Promise<ModelResult> {
  const chat = ai.chat(tenantId);
  if (!chat) return { flag: null, outcome: 'unavailable' };
  try {
    const answer = await chat.invoke(
      [
        { role: 'system', content: PROMPT },
        { role: 'user', content: text },
      ],
      { purpose: 'moderation', ref, maxTokens: 60, signal: AbortSignal.timeout(timeoutMs) },
    );
    const json = /\{[\s\S]*\}/.exec(answer.text)?.[0];
    const parsed = json ? (JSON.parse(json) as { toxicity?: unknown; labels?: unknown }) : null;
    const score = typeof parsed?.toxicity === 'number' && parsed.toxicity >= 0 && parsed.toxicity <= 1 ? parsed.toxicity : null;
    if (score === null) return { flag: null, outcome: 'failed' };
    const labels = Array.isArray(parsed?.labels) ? parsed.labels.filter((l): l is string => typeof l === 'string').slice(0, 5).map((l) => l.slice(0, 40)) : [];
    return { flag: { category: 'toxicity', detector: `model:${answer.model}`, score, details: { labels } }, outcome: score > 0 ? 'flagged' : 'clean' };
  } catch {
    return { flag: null, outcome: 'failed' };
  }
}

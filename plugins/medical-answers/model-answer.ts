/**
 * A chat model's answer grounded in retrieved passages. The model sees numbered passages and must cite
 * them as [n]; an answer that cites a passage that does not exist, cites none, or says it cannot answer
 * is refused, and the caller sends the extractive answer instead. Citation markers are replaced by the
 * sources, so a person reads plain text with the document's title and link.
 */
import { sourceLine, sourceOf, type LinkOf } from './engine/answer.js';
import type { Citation, Hit } from './engine/types.js';

/** The part of the kernel's AI chat model this plugin uses (`ctx.ai.chat(tenantId)`). */
export interface ChatModel {
  readonly provider: string;
  readonly model: string;
  invoke(
    messages: { role: 'system' | 'user' | 'assistant'; content: string }[],
    opts: { purpose: string; ref?: string; signal?: AbortSignal; maxTokens?: number },
  ): Promise<{ text: string }>;
}

export type ModelAnswer = { ok: true; text: string; citations: Citation[] } | { ok: false; reason: 'invalid_citations' | 'no_answer' };

const NO_ANSWER = 'NO_ANSWER';

export function groundedPrompt(question: string, hits: Hit[], maxChars: number): { role: 'system' | 'user'; content: string }[] {
  const passages = hits.map((h, i) => `[${i + 1}] ${h.title}${h.section ? ` — ${h.section}` : ''}\n${h.text.slice(0, 1500)}`).join('\n\n');
  return [
    {
      role: 'system',
      content: [
        'You answer health questions for a clinic, using only the numbered passages you are given.',
        'Cite the passage of every fact as [n] right after it. Never use a fact that is not in the passages.',
        `If the passages do not answer the question, reply with exactly ${NO_ANSWER}.`,
        `Write plain text (no markdown), at most ${maxChars} characters, in the language of the question.`,
        'Do not diagnose; suggest asking a clinician when the answer depends on the person.',
      ].join(' '),
    },
    { role: 'user', content: `Passages:\n${passages}\n\nQuestion: ${question}` },
  ];
}

/** Checks the model's citations against the passages and turns them into sources within `maxChars`. */
export function parseGrounded(raw: string, hits: Hit[], maxChars: number, links: boolean | LinkOf = true): ModelAnswer {
  const text = raw.trim();
  if (!text || text.includes(NO_ANSWER)) return { ok: false, reason: 'no_answer' };
  const cited = [...text.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)].flatMap((m) => m[1]!.split(',').map((n) => Number(n.trim())));
  if (cited.length === 0 || cited.some((n) => !Number.isInteger(n) || n < 1 || n > hits.length)) return { ok: false, reason: 'invalid_citations' };
  const order = [...new Set(cited)];
  const citations: Citation[] = [];
  for (const n of order) {
    const hit = hits[n - 1]!;
    if (!citations.some((c) => c.docId === hit.docId)) citations.push({ docId: hit.docId, title: hit.title, url: hit.url });
  }
  const body = text.replace(/\s*\[(\d+(?:\s*,\s*\d+)*)\]/g, '').replace(/\s+/g, ' ').trim();
  const source = sourceLine(sourceOf(citations[0]!, links), maxChars, []);
  return { ok: true, text: fit(body, maxChars - source.length - 1) + '\n' + source, citations };
}

/** Cuts at the last sentence end that fits, else at a word, with "..." (GSM-7, unlike the ellipsis character). */
export function fit(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, Math.max(0, max - 3));
  const sentence = Math.max(cut.lastIndexOf('. '), cut.lastIndexOf('? '), cut.lastIndexOf('! '));
  if (sentence > max * 0.5) return cut.slice(0, sentence + 1);
  const space = cut.lastIndexOf(' ');
  return `${cut.slice(0, space > 0 ? space : cut.length).replace(/[,;:]$/, '')}...`;
}

/**
 * Extractive answers: the sentences of the best section that best match the question, in document
 * order, within a character budget that includes the citation line. No model; redactions always applied.
 */
import type { Answer, Citation, Hit } from './types.js';
import { docTerms, parseQuery } from './text.js';

export interface Redaction {
  /** Regular expression source, applied case-insensitively and globally. */
  pattern: string;
  replacement: string;
}

export interface ComposeOptions {
  maxChars: number;
  minConfidence: number;
  redactions?: Redaction[];
}

/**
 * Always applied: the corpus is from about 2017 and names the retired U.S. suicide line; the current
 * number is 988 (call or text). A deployment may add its own.
 */
export const DEFAULT_REDACTIONS: Redaction[] = [
  { pattern: String.raw`1[\s.-]*800[\s.-]*273[\s.-]*(?:TALK|8255)(?:\s*\(\s*8255\s*\))?`, replacement: '988 (call or text)' },
  { pattern: String.raw`(?:National\s+)?Suicide\s+Prevention\s+Lifeline`, replacement: '988 Suicide & Crisis Lifeline' },
];

export function applyRedactions(text: string, redactions: Redaction[]): string {
  let out = text;
  for (const r of redactions) out = out.replace(new RegExp(r.pattern, 'gi'), r.replacement);
  return out;
}

/** Sentences of a section, with list items ("- a - b") kept as their own pieces. */
export function sentencesOf(text: string): string[] {
  return text
    .replace(/\s+/g, ' ')
    .split(/(?<=[.!?])\s+(?=[A-Z0-9"(])|\s+-\s+(?=[A-Za-z0-9])/)
    .map((s) => s.trim().replace(/^-\s*/, ''))
    .filter((s) => s.length > 2);
}

/**
 * Confidence from retrieval alone, in [0, 1]: how much of the question the top document covers, and
 * how clearly it beats the runner-up. Calibrated on the design half of the dev set (eval/README.md).
 */
export function confidenceOf(hits: Hit[]): number {
  const top = hits[0];
  if (!top) return 0;
  const coverage = top.coverage ?? 0.5;
  const second = hits[1]?.score ?? 0;
  const margin = top.score > 0 ? Math.max(0, (top.score - second) / top.score) : 0;
  const z = -3 + 3.2 * coverage + 5 * margin + 0.15 * Math.min(top.score, 20);
  return Math.round((1 / (1 + Math.exp(-z))) * 1000) / 1000;
}

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, Math.max(0, max - 1));
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).replace(/[,;:\s]+$/, '')}…`;
}

export function composeAnswer(question: string, hits: Hit[], opts: ComposeOptions): Answer | null {
  const top = hits[0];
  if (!top) return null;
  const confidence = confidenceOf(hits);
  if (confidence < opts.minConfidence) return null;
  const redactions = [...DEFAULT_REDACTIONS, ...(opts.redactions ?? [])];
  const citation: Citation = { docId: top.docId, title: top.title, url: top.url };
  const cite = applyRedactions(`Source: ${top.title}${top.url ? ` ${top.url}` : ''}`, redactions);
  const budget = opts.maxChars - cite.length - 1;

  const sectionText = top.sections?.[0]?.text ?? top.text;
  const sentences = sentencesOf(applyRedactions(sectionText, redactions));
  const q = parseQuery(question);
  const weights = new Map(q.terms.map((t) => [t.term, t.weight]));
  const scored = sentences.map((s, i) => {
    const terms = new Set(docTerms(s));
    let overlap = 0;
    for (const [t, w] of weights) if (terms.has(t)) overlap += w;
    // Earlier sentences define and summarise; a slight preference for them breaks ties.
    return { i, s, score: overlap - i * 0.02 + (i === 0 ? 0.3 : 0) };
  });
  const chosen: { i: number; s: string }[] = [];
  let used = 0;
  for (const c of [...scored].sort((a, b) => b.score - a.score || a.i - b.i)) {
    const len = c.s.length + (chosen.length ? 1 : 0);
    if (used + len > budget) continue;
    chosen.push(c);
    used += len;
    if (used > budget * 0.85) break;
  }
  let body: string;
  if (chosen.length === 0) body = clip(sentences[0] ?? sectionText, budget);
  else body = chosen.sort((a, b) => a.i - b.i).map((c) => c.s).join(' ');
  const text = applyRedactions(`${body}\n${cite}`, redactions);
  return { text: text.length <= opts.maxChars ? text : `${clip(body, opts.maxChars - cite.length - 1)}\n${cite}`, citations: [citation], confidence, hits };
}

/**
 * One screening: every detector over a text, then the tenant's policy (per category an action and a
 * threshold). Used by the inbound filter (redaction only), the inbound stage, the reply stage and the
 * screening API.
 */
import { ACTIONS, type Action, type Flag, type ModerationSettings, type Span, type Verdict } from './types.js';
import { applySpans, detectHarassment, detectPii, detectProfanity, detectSpam, type SpamContext } from './detectors.js';

/** What the spam detector needs beyond the text; absent (the screening API, replies) means no history. */
export type SpamCounts = Pick<SpamContext, 'sameAsRecent' | 'recentCount'>;

/** A model's opinion (the optional detector); null when it is off, failed or timed out. */
export type ModelOpinion = Flag | null;

export function rank(action: Action): number {
  return ACTIONS.indexOf(action);
}

/** Findings of the rule detectors, with the spans each would mask. */
export function detect(text: string, settings: ModerationSettings, spam: SpamCounts | null): { flags: Flag[]; spans: Map<Flag['category'], Span[]> } {
  const flags: Flag[] = [];
  const spans = new Map<Flag['category'], Span[]>();
  const profanity = detectProfanity(text, settings.allowWords);
  if (profanity.flag) flags.push(profanity.flag), spans.set('profanity', profanity.spans);
  const harassment = detectHarassment(text);
  if (harassment) flags.push(harassment);
  const s = settings.spam;
  const spamFlag = detectSpam(text, { blockedDomains: s.blockedDomains, repeats: s.repeats, burstCount: s.burst.count, capsRatio: s.capsRatio, sameAsRecent: spam?.sameAsRecent ?? 0, recentCount: spam?.recentCount ?? 1 });
  if (spamFlag) flags.push(spamFlag);
  const pii = detectPii(text, settings.piiKinds);
  if (pii.flag) flags.push(pii.flag), spans.set('pii', pii.spans);
  return { flags, spans };
}

/** The policy over the findings: each flag's action, the strongest action, whether it is safe. */
export function decide(flags: readonly Flag[], settings: ModerationSettings, options: { cap?: Action } = {}): Verdict {
  let action: Action = 'allow';
  let confidence = 0;
  const judged = flags.map((f) => {
    const policy = settings.categories[f.category];
    let a: Action = f.score >= policy.threshold ? policy.action : 'allow';
    if (options.cap && rank(a) > rank(options.cap)) a = options.cap;
    if (a !== 'allow') {
      if (rank(a) > rank(action)) action = a;
      confidence = Math.max(confidence, f.score);
    }
    return { ...f, action: a, threshold: policy.threshold };
  });
  return { safe: action === 'allow', flags: judged, action, confidence };
}

/** The text with the spans of every category whose action is `redact` (and whose flag reached its threshold) masked. */
export function redact(text: string, settings: ModerationSettings): { text: string; categories: Flag['category'][] } {
  const categories: Flag['category'][] = [];
  const spans: Span[] = [];
  if (settings.categories.pii.action === 'redact') {
    const pii = detectPii(text, settings.piiKinds);
    if (pii.flag && pii.flag.score >= settings.categories.pii.threshold && pii.spans.length) spans.push(...pii.spans), categories.push('pii');
  }
  if (settings.categories.profanity.action === 'redact') {
    const p = detectProfanity(text, settings.allowWords);
    if (p.flag && p.flag.score >= settings.categories.profanity.threshold && p.spans.length) spans.push(...p.spans), categories.push('profanity');
  }
  return spans.length ? { text: applySpans(text, spans), categories } : { text, categories };
}

/** Rule findings plus the model's opinion, judged by the policy; `spans` are the masks for `redact`. */
export function screenText(text: string, settings: ModerationSettings, input: { spam: SpamCounts | null; model: ModelOpinion; cap?: Action }): Verdict & { redacted: string } {
  const { flags, spans } = detect(text, settings, input.spam);
  if (input.model) flags.push(input.model);
  const verdict = decide(flags, settings, input.cap ? { cap: input.cap } : {});
  const toMask = verdict.flags.filter((f) => f.action === 'redact' || (verdict.action === 'redact' && settings.categories[f.category].action === 'redact' && f.score >= f.threshold));
  const masks = toMask.flatMap((f) => spans.get(f.category) ?? []);
  return { ...verdict, redacted: masks.length ? applySpans(text, masks) : text };
}

/** The crisis-guard plugin's public types and per-tenant settings. */
import { z } from 'zod';

export const CRISIS_CATEGORIES = [
  'suicidal_ideation',
  'self_harm',
  'overdose_poisoning',
  'unresponsive',
  'chest_pain_cardiac',
  'stroke_signs',
  'breathing_anaphylaxis',
  'bleeding_trauma',
  'seizure_unresponsive',
  'pregnancy_emergency',
  'other_emergency',
  'violence_danger',
] as const;

export type CrisisCategory = (typeof CRISIS_CATEGORIES)[number];
export type CrisisLanguage = 'en' | 'es';

/** What the detector found in one message: never the text itself, only what matched. */
export interface CrisisVerdict {
  crisis: boolean;
  categories: CrisisCategory[];
  language: CrisisLanguage;
  /** Ids of the rules that counted (`suicide.not-live`, ...; a lone weak cue when not a crisis), or `model` for a second opinion. */
  ruleIds: string[];
  /** Rules that matched but were set aside, with why (`negated`, `idiom`, `educational`, `past`). */
  suppressed: { ruleId: string; why: 'negated' | 'educational' | 'past' | 'joke' }[];
  /** The classifier's probability that this is a crisis, when the rules alone did not decide. */
  modelScore?: number;
}

/**
 * An optional chat-model second opinion, asked only about messages the rules found borderline (one
 * weak cue). It can add a detection, never remove one; a failure or a timeout is ignored.
 */
export type SecondOpinion = (input: { text: string; language: CrisisLanguage; signal: AbortSignal }) => Promise<{ crisis: boolean; category?: CrisisCategory }>;

const numbersSchema = z.object({
  /** Emergency services (`911`). */
  emergency: z.string().min(1),
  /** Suicide and crisis line (`988`). */
  crisisLine: z.string().min(1),
  /** A text line (`Text HOME to 741741`). */
  textLine: z.string().min(1).optional(),
});

const templateSchema = z.string().min(1).max(1000);

export const settingsSchema = z.object({
  /** ISO country code used for `numbers` when the tenant does not say otherwise. */
  country: z.string().length(2).default('US'),
  /** Crisis numbers per country; the tenant's `country` picks one. */
  numbers: z.record(z.string(), numbersSchema).default({
    US: { emergency: '911', crisisLine: '988', textLine: 'text HOME to 741741' },
  }),
  /**
   * The crisis reply per language. `{emergency}`, `{crisisLine}` and `{textLine}` are replaced with the
   * country's current numbers, so a number change is a settings change, not a text change.
   */
  templates: z
    .object({ en: templateSchema, es: templateSchema })
    .default({
      en: 'If you or someone with you is in danger right now, call {emergency}. You can call or text {crisisLine} (Suicide & Crisis Lifeline) any time, or {textLine} (Crisis Text Line). A member of our team has been alerted and will follow up.',
      es: 'Si usted o alguien a su lado está en peligro ahora, llame al {emergency}. Puede llamar o enviar un texto al {crisisLine} (línea de crisis, en español) a cualquier hora, o {textLine} (Crisis Text Line). Un miembro de nuestro equipo ya fue avisado y le dará seguimiento.',
    }),
  /** Hand the conversation to a person on detection (the bot is paused until an operator gives it back). */
  handoff: z.boolean().default(true),
  /** Categories this tenant acts on (default: all). */
  categories: z.array(z.enum(CRISIS_CATEGORIES)).min(1).default([...CRISIS_CATEGORIES]),
  /** Ask the second opinion (when the deployment configured one) about borderline messages. */
  secondOpinion: z.boolean().default(true),
}).superRefine((settings, ctx) => {
  if (!settings.numbers[settings.country]) ctx.addIssue({ code: 'custom', path: ['numbers'], message: `no numbers for country ${settings.country}` });
});

export type CrisisGuardSettings = z.output<typeof settingsSchema>;

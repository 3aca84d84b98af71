/**
 * Consent keywords per tenant and language, and the `twilio-sms.consent` stage that acts on them:
 * opt-out and HELP messages are answered here and never reach later stages. The plugin registers it
 * as the channel's first stage (`ctx.channelStages`), so it runs before every tenant's pipeline.
 */
import type { ConsentStore, StageDefinition } from 'parley';
import { classifyKeyword, DEFAULT_KEYWORDS, exactKeyword, isPlainOptOut, normaliseKeyword, type ConsentKeywords, type KeywordClass } from './keywords.js';
import { CONSENT_STAGE, TWILIO_SMS_CHANNEL, type ConsentSettings, type TwilioSmsSettings } from './types.js';

export interface ConsentTexts {
  optOutConfirmation: string;
  optInConfirmation: string;
  helpText: string;
}

export interface ConsentLanguage {
  code: string;
  keywords: ConsentKeywords;
  texts: ConsentTexts;
}

/** A tenant's consent rules with defaults applied; languages in the order they are tried. */
export interface ConsentPolicy {
  languages: readonly ConsentLanguage[];
  plainLanguage: boolean;
  confirmations: ConsentSettings['confirmations'];
}

/** What the webhook found, carried to the stage in `message.attributes.consentKeyword`. */
export interface KeywordMatch {
  kind: KeywordClass;
  language: string;
  /** `OptOutType`: Twilio's Advanced Opt-Out classified it (and has already replied). */
  source: 'keyword' | 'plain-language' | 'OptOutType';
}

const ENGLISH_TEXTS = {
  optOutConfirmation: '{program}: You are unsubscribed and will receive no more messages. Reply START to resubscribe.',
  optInConfirmation: '{program}: You are subscribed again. {frequency} Msg & data rates may apply. Reply HELP for help, STOP to opt out.',
  helpWithContact: '{program}: For help, {contact}. {frequency} Msg & data rates may apply. Reply STOP to opt out.',
  helpWithoutContact: '{program}: For help, reply to this message. {frequency} Msg & data rates may apply. Reply STOP to opt out.',
};

/** The carrier opt-out keywords are honoured whatever a tenant configures. */
const CARRIER_OPT_OUT = DEFAULT_KEYWORDS.optOut;

function fill(template: string, values: { program: string; contact: string | undefined; frequency: string }): string {
  return template
    .replaceAll('{program}', values.program)
    .replaceAll('{contact}', values.contact ?? '')
    .replaceAll('{frequency}', values.frequency)
    .replace(/\s{2,}/gu, ' ')
    .trim();
}

/**
 * Applies defaults: English always exists (CTIA texts, Twilio keywords); the default language (from
 * the settings or the tenant locale) is tried first, English last. Lists given for a language
 * replace that language's defaults, except that the carrier opt-out keywords stay in English.
 */
export function resolveConsentPolicy(settings: ConsentSettings, tenant: { name: string; locale: string }): ConsentPolicy {
  const values = { program: settings.programName ?? tenant.name, contact: settings.contact, frequency: settings.frequency };
  const localeLanguage = tenant.locale.split('-')[0]?.toLowerCase() ?? 'en';
  const defaultCode = settings.defaultLanguage ?? (settings.languages[localeLanguage] || localeLanguage === 'en' ? localeLanguage : 'en');
  const codes = [...new Set([defaultCode, ...Object.keys(settings.languages), 'en'])];
  const english = settings.languages.en ?? {};
  const englishTexts: ConsentTexts = {
    optOutConfirmation: english.optOutConfirmation ?? ENGLISH_TEXTS.optOutConfirmation,
    optInConfirmation: english.optInConfirmation ?? ENGLISH_TEXTS.optInConfirmation,
    helpText: english.helpText ?? (settings.contact ? ENGLISH_TEXTS.helpWithContact : ENGLISH_TEXTS.helpWithoutContact),
  };
  const fallbackTexts = settings.languages[defaultCode] ?? {};
  const languages = codes.map((code): ConsentLanguage => {
    const lang = settings.languages[code] ?? {};
    const isEnglish = code === 'en';
    const texts: ConsentTexts = isEnglish
      ? englishTexts
      : {
          optOutConfirmation: lang.optOutConfirmation ?? fallbackTexts.optOutConfirmation ?? englishTexts.optOutConfirmation,
          optInConfirmation: lang.optInConfirmation ?? fallbackTexts.optInConfirmation ?? englishTexts.optInConfirmation,
          helpText: lang.helpText ?? fallbackTexts.helpText ?? englishTexts.helpText,
        };
    return {
      code,
      keywords: {
        optOut: isEnglish ? [...new Set([...CARRIER_OPT_OUT, ...(lang.optOut ?? [])])] : (lang.optOut ?? []),
        optIn: lang.optIn ?? (isEnglish ? DEFAULT_KEYWORDS.optIn : []),
        help: lang.help ?? (isEnglish ? DEFAULT_KEYWORDS.help : []),
      },
      texts: {
        optOutConfirmation: fill(texts.optOutConfirmation, values),
        optInConfirmation: fill(texts.optInConfirmation, values),
        helpText: fill(texts.helpText, values),
      },
    };
  });
  return { languages, plainLanguage: settings.plainLanguage, confirmations: settings.confirmations };
}

/**
 * Which consent keyword a message is, and in which language. Exact keywords are tried in every
 * language first (default language first), so "STOP" never reads as plain language; plain-language
 * opt-outs are English phrases. Twilio's `OptOutType` decides the kind when present.
 */
export function matchKeyword(policy: ConsentPolicy, body: string, optOutType?: string | null): KeywordMatch | null {
  // Normalised once for every language; each language's lists are sets (keywords.ts).
  const normalised = normaliseKeyword(body);
  const exact = (only?: KeywordClass): KeywordMatch | null => {
    for (const lang of policy.languages) {
      const kind = exactKeyword(normalised, lang.keywords);
      if (kind && (!only || kind === only)) return { kind, language: lang.code, source: 'keyword' };
    }
    return null;
  };
  const fromTwilio = optOutType ? classifyKeyword('', DEFAULT_KEYWORDS, { optOutType }) : null;
  if (fromTwilio) return { kind: fromTwilio, language: exact(fromTwilio)?.language ?? policy.languages[0]!.code, source: 'OptOutType' };
  const found = exact();
  if (found || !policy.plainLanguage || normalised === '') return found;
  const english = policy.languages.find((l) => l.code === 'en')!;
  return isPlainOptOut(body, english.keywords.optOut) ? { kind: 'opt-out', language: 'en', source: 'plain-language' } : null;
}

export function shouldConfirm(policy: ConsentPolicy, match: KeywordMatch): boolean {
  if (policy.confirmations === 'never') return false;
  if (policy.confirmations === 'always') return true;
  return match.source !== 'OptOutType';
}

export function isKeywordMatch(value: unknown): value is KeywordMatch {
  const v = value as Partial<KeywordMatch> | null | undefined;
  return !!v && typeof v === 'object' && (v.kind === 'opt-out' || v.kind === 'opt-in' || v.kind === 'help') && typeof v.language === 'string';
}

/**
 * Options of a consent reply. `consentNotice: true` tells the kernel this is the one confirmation the
 * carriers require, so it reaches the person although they are (now) opted out, inline or through the
 * outbox; `consentKeyword` says which keyword it answers (for the outbox record).
 */
export function consentNoticeOptions(kind: KeywordClass): { consentNotice: true; consentKeyword: KeywordClass } {
  return { consentNotice: true, consentKeyword: kind };
}

/**
 * Runs before every tenant pipeline for Twilio SMS messages (registered with `ctx.channelStages`).
 * Opt-out: record it and confirm once (a repeated STOP gets no second confirmation). HELP: the
 * tenant's help text, also for someone who opted out. Opt-in keywords only act for someone who is
 * opted out; otherwise "YES" is an ordinary answer and goes on down the pipeline.
 */
export function consentStage(deps: { consent: () => ConsentStore; policyFor: (tenantId: string) => ConsentPolicy | undefined }): StageDefinition<TwilioSmsSettings> {
  return {
    name: CONSENT_STAGE,
    async handle(stage, next) {
      const match = stage.message.attributes.consentKeyword;
      const policy = stage.message.channel === TWILIO_SMS_CHANNEL ? deps.policyFor(stage.tenant.id) : undefined;
      if (!policy || !isKeywordMatch(match)) return next();
      const lang = policy.languages.find((l) => l.code === match.language) ?? policy.languages[0]!;
      const consent = deps.consent();
      const record = (status: 'opted-in' | 'opted-out') =>
        consent.set({
          tenantId: stage.tenant.id,
          address: stage.message.from,
          status,
          source: match.source === 'OptOutType' ? 'OptOutType' : 'keyword',
          channel: TWILIO_SMS_CHANNEL,
          detail: `${match.source} ${match.kind} (${match.language}) in ${stage.message.providerMessageId}`,
        });
      stage.annotate('twilio-sms.keyword', match);

      if (match.kind === 'help') {
        if (shouldConfirm(policy, match)) stage.reply({ text: lang.texts.helpText, options: consentNoticeOptions('help') });
        return stage.stop('help keyword');
      }
      if (match.kind === 'opt-out') {
        const { changed } = await record('opted-out');
        if (changed && shouldConfirm(policy, match)) stage.reply({ text: lang.texts.optOutConfirmation, options: consentNoticeOptions('opt-out') });
        return stage.stop(changed ? 'opt-out keyword' : 'opt-out keyword (already opted out)');
      }
      if (!(await consent.isOptedOut(stage.tenant.id, stage.message.from))) return next();
      await record('opted-in');
      if (shouldConfirm(policy, match)) stage.reply({ text: lang.texts.optInConfirmation, options: consentNoticeOptions('opt-in') });
      return stage.stop('opt-in keyword');
    },
  };
}

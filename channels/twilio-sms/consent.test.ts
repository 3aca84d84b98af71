import { describe, expect, it } from 'vitest';
import { matchKeyword, resolveConsentPolicy, shouldConfirm } from './consent.js';
import { consentSchema } from './types.js';

const tenant = { name: 'Harbour Clinic', locale: 'en-US' };
const policyOf = (settings: unknown, t = tenant) => resolveConsentPolicy(consentSchema.parse(settings), t);

describe('resolveConsentPolicy', () => {
  it('gives English CTIA texts naming the program, a contact, frequency, rates and STOP', () => {
    const [en] = policyOf({ contact: 'call 555-0100' }).languages;
    expect(en!.code).toBe('en');
    expect(en!.texts.helpText).toBe('Harbour Clinic: For help, call 555-0100. Msg frequency varies. Msg & data rates may apply. Reply STOP to opt out.');
    expect(en!.texts.optOutConfirmation).toBe('Harbour Clinic: You are unsubscribed and will receive no more messages. Reply START to resubscribe.');
    expect(en!.texts.optOutConfirmation).not.toMatch(/rates|offer|deal/i);
  });

  it('keeps every default text within one GSM-7 segment', () => {
    const { texts } = policyOf({ programName: 'A Long Clinic Name Here', contact: 'call 555-0100' }).languages[0]!;
    for (const text of Object.values(texts)) expect(text.length).toBeLessThanOrEqual(160);
  });

  it('says how to get help without a contact when none is configured', () => {
    expect(policyOf({}).languages[0]!.texts.helpText).toMatch(/^Harbour Clinic: For help, reply to this message\./);
  });

  it('tries the tenant locale language first and English last, with the carrier keywords kept in English', () => {
    const policy = policyOf({ languages: { es: { optOut: ['PARAR'], optOutConfirmation: 'Baja confirmada.' } } }, { name: 'Clínica', locale: 'es-MX' });
    expect(policy.languages.map((l) => l.code)).toEqual(['es', 'en']);
    expect(policy.languages[0]!.keywords.optOut).toEqual(['PARAR']);
    expect(policy.languages[1]!.keywords.optOut).toEqual(expect.arrayContaining(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE']));
  });

  it('lets a tenant replace the English opt-in and help words but never drop the carrier opt-out words', () => {
    const [en] = policyOf({ languages: { en: { optOut: ['ARRET'], optIn: ['START'], help: ['HELP'] } } }).languages;
    expect(en!.keywords.optIn).toEqual(['START']);
    expect(en!.keywords.optOut).toEqual(expect.arrayContaining(['STOP', 'ARRET']));
  });

  it('falls back to the default language texts, then to English', () => {
    const policy = policyOf({ defaultLanguage: 'fr', languages: { fr: { helpText: 'Aide: {program}.' }, de: { optOut: ['HALT'] } } });
    const de = policy.languages.find((l) => l.code === 'de')!;
    expect(de.texts.helpText).toBe('Aide: Harbour Clinic.');
    expect(de.texts.optOutConfirmation).toMatch(/You are unsubscribed/);
  });
});

describe('matchKeyword', () => {
  const policy = policyOf({ languages: { es: { optOut: ['PARAR'], help: ['AYUDA'] } } });

  it('finds exact keywords in any configured language', () => {
    expect(matchKeyword(policy, 'Stop!')).toEqual({ kind: 'opt-out', language: 'en', source: 'keyword' });
    expect(matchKeyword(policy, 'parar')).toEqual({ kind: 'opt-out', language: 'es', source: 'keyword' });
    expect(matchKeyword(policy, 'ayuda')).toEqual({ kind: 'help', language: 'es', source: 'keyword' });
  });

  it('recognises English plain-language opt-outs unless switched off', () => {
    expect(matchKeyword(policy, 'please stop texting me')).toEqual({ kind: 'opt-out', language: 'en', source: 'plain-language' });
    expect(matchKeyword(policyOf({ plainLanguage: false }), 'please stop texting me')).toBeNull();
  });

  it("lets Twilio's OptOutType decide the kind", () => {
    expect(matchKeyword(policy, 'whatever', 'STOP')).toEqual({ kind: 'opt-out', language: 'en', source: 'OptOutType' });
    expect(matchKeyword(policy, 'parar', 'STOP')).toEqual({ kind: 'opt-out', language: 'es', source: 'OptOutType' });
  });

  it('leaves ordinary messages alone', () => {
    expect(matchKeyword(policy, 'Can I stop by tomorrow?')).toBeNull();
    expect(matchKeyword(policy, 'cancel my 3pm appointment')).toBeNull();
  });
});

describe('shouldConfirm', () => {
  it('confirms unless Twilio Advanced Opt-Out already did, as configured', () => {
    const keyword = { kind: 'opt-out', language: 'en', source: 'keyword' } as const;
    const viaTwilio = { ...keyword, source: 'OptOutType' } as const;
    expect(shouldConfirm(policyOf({}), keyword)).toBe(true);
    expect(shouldConfirm(policyOf({}), viaTwilio)).toBe(false);
    expect(shouldConfirm(policyOf({ confirmations: 'always' }), viaTwilio)).toBe(true);
    expect(shouldConfirm(policyOf({ confirmations: 'never' }), keyword)).toBe(false);
  });
});

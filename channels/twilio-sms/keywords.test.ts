import { describe, expect, it } from 'vitest';
import { classifyKeyword, DEFAULT_KEYWORDS, type ConsentKeywords } from './keywords.js';

describe('classifyKeyword', () => {
  it.each(DEFAULT_KEYWORDS.optOut)('%s opts out', (keyword) => {
    expect(classifyKeyword(keyword)).toBe('opt-out');
  });

  it.each(DEFAULT_KEYWORDS.optIn)('%s opts in', (keyword) => {
    expect(classifyKeyword(keyword)).toBe('opt-in');
  });

  it.each(DEFAULT_KEYWORDS.help)('%s asks for help', (keyword) => {
    expect(classifyKeyword(keyword)).toBe('help');
  });

  it.each(['stop', 'Stop', '  Stop!! ', 'stop.', 'STOP 🙏', '🛑 STOP 🛑', '"stop"', '\tSTOP\n', 'stop 👍🏽', '¡Stop!'])(
    'ignores case, whitespace, punctuation and emoji around a keyword: %j',
    (body) => {
      expect(classifyKeyword(body)).toBe('opt-out');
    },
  );

  it('normalises compatibility characters (full-width letters) with NFKC', () => {
    expect(classifyKeyword('ＳＴＯＰ')).toBe('opt-out');
    expect(classifyKeyword('ＨＥＬＰ？')).toBe('help');
  });

  it('matches the whole message only: a keyword inside ordinary text is not a keyword', () => {
    expect(classifyKeyword('START time is 9am')).toBeNull();
    expect(classifyKeyword('help me choose a size')).toBeNull();
    expect(classifyKeyword('yes I will be there')).toBeNull();
    expect(classifyKeyword('stopwatch')).toBeNull();
  });

  it.each([
    'please stop texting me',
    'Please STOP texting me!',
    'stop messaging me',
    'Stop texting me, this is annoying',
    'quit sending me texts',
    'stop sending these messages please',
    'stop sending me messages',
    'I want to stop receiving these texts',
    'unsubscribe me',
    'Unsubscribe me please',
    'please unsubscribe me from this',
    'opt me out',
    'opt-out',
    'Opt out please',
    'take me off your list',
    'Please take me off your mailing list.',
    'remove me from your list',
    'remove my number from your texting list',
    "don't text me anymore",
    'Don’t text me again',
    'do not contact me',
    'never message me again',
    'No more texts please',
    'I want to unsubscribe',
    "I'd like to opt out",
    'please stop',
    'STOP please',
    'Stop now thanks',
    'end please',
    'leave me alone',
  ])('recognises plain-language opt-out: %j', (body) => {
    expect(classifyKeyword(body)).toBe('opt-out');
  });

  it.each([
    "don't stop",
    'Don’t stop!',
    'stop by tomorrow?',
    "I can't stop coughing",
    'I cannot stop texting you haha',
    "don't stop texting me",
    'the bus stop is closed',
    'where do I stop?',
    'stop at the pharmacy on the way',
    "I don't want to unsubscribe",
    'can you send me the list?',
    'thanks',
    'Yes please',
    'see you at the end of the week',
    'cancel my 3pm appointment',
  ])('does not mistake ordinary text for an opt-out: %j', (body) => {
    expect(classifyKeyword(body)).toBeNull();
  });

  it('can switch plain-language matching off, keeping exact keywords', () => {
    expect(classifyKeyword('please stop texting me', DEFAULT_KEYWORDS, { plainLanguage: false })).toBeNull();
    expect(classifyKeyword('STOP!', DEFAULT_KEYWORDS, { plainLanguage: false })).toBe('opt-out');
  });

  it("lets Twilio's OptOutType win over the body", () => {
    expect(classifyKeyword('hello', DEFAULT_KEYWORDS, { optOutType: 'STOP' })).toBe('opt-out');
    expect(classifyKeyword('STOP', DEFAULT_KEYWORDS, { optOutType: 'START' })).toBe('opt-in');
    expect(classifyKeyword('arret', DEFAULT_KEYWORDS, { optOutType: 'help' })).toBe('help');
  });

  it('ignores an empty or unknown OptOutType', () => {
    expect(classifyKeyword('STOP', DEFAULT_KEYWORDS, { optOutType: '' })).toBe('opt-out');
    expect(classifyKeyword('STOP', DEFAULT_KEYWORDS, { optOutType: null })).toBe('opt-out');
    expect(classifyKeyword('hello', DEFAULT_KEYWORDS, { optOutType: 'SOMETHING' })).toBeNull();
    expect(classifyKeyword('hello', DEFAULT_KEYWORDS, { optOutType: 'constructor' })).toBeNull();
  });

  it('uses custom keyword lists, including multi-word and accented ones', () => {
    const keywords: ConsentKeywords = {
      optOut: ['ARRÊT', 'STOP ALL'],
      optIn: ['COMMENCER'],
      help: ['AIDE'],
    };
    expect(classifyKeyword('arrêt', keywords)).toBe('opt-out');
    expect(classifyKeyword('Arre\u0302t !', keywords)).toBe('opt-out');
    expect(classifyKeyword('stop   all', keywords)).toBe('opt-out');
    expect(classifyKeyword('commencer', keywords)).toBe('opt-in');
    expect(classifyKeyword('Aide?', keywords)).toBe('help');
    expect(classifyKeyword('START', keywords)).toBeNull();
  });

  it('wraps politeness only around the configured opt-out keywords', () => {
    const withoutCancel: ConsentKeywords = { ...DEFAULT_KEYWORDS, optOut: DEFAULT_KEYWORDS.optOut.filter((k) => k !== 'CANCEL') };
    expect(classifyKeyword('cancel please', DEFAULT_KEYWORDS)).toBe('opt-out');
    expect(classifyKeyword('cancel please', withoutCancel)).toBeNull();
  });

  it('returns null for empty or punctuation-only messages', () => {
    expect(classifyKeyword('')).toBeNull();
    expect(classifyKeyword('   ')).toBeNull();
    expect(classifyKeyword('?!')).toBeNull();
    expect(classifyKeyword('👍')).toBeNull();
  });
});

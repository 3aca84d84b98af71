/** The rule detectors and the policy, on their own: true and false positives for each. */
import { describe, expect, it } from 'vitest';
import { applySpans, detectHarassment, detectPii, detectProfanity, detectSpam, ibanValid, luhn } from './detectors.js';
import { decide, redact, screenText } from './screen.js';
import { settingsSchema } from './types.js';

const ALL = ['phone', 'email', 'ssn', 'card', 'iban'] as const;
const spam = (text: string, over: Partial<Parameters<typeof detectSpam>[1]> = {}) =>
  detectSpam(text, { blockedDomains: ['bad.example'], sameAsRecent: 0, repeats: 3, recentCount: 1, burstCount: 8, capsRatio: 0.7, ...over });
const settings = (s: Record<string, unknown> = {}) => settingsSchema.parse(s);

describe('profanity and slurs (obscenity)', () => {
  it.each(['you are a fucking idiot', 'this is bullsh1t', 'ｆｕｃｋ this', 'f u c k you', 'f.u.c.k off', 's h i t', 'what a b-i-t-c-h', 'you b1tch', 'fvck that'])('finds %s', (text) => {
    expect(detectProfanity(text).flag?.score).toBeGreaterThanOrEqual(0.8);
  });
  it('scores slurs highest', () => {
    expect(detectProfanity('you n1gger').flag).toMatchObject({ score: 0.95, details: { slur: true } });
  });
  it.each(['Scunthorpe United won', 'I live in Penistone', 'shiitake mushrooms', 'a class assignment', 'the assassin', 'cocktail party', 'Charles Dickens', 'a b c d', 'analysis of results', 'grapes are nice'])('leaves %s alone', (text) => {
    expect(detectProfanity(text).flag).toBeNull();
  });
  it('scores clinical words under the default threshold', () => {
    expect(detectProfanity('pain during sex since last week').flag?.score).toBeLessThan(0.5);
  });
  it('ignores zero-width characters hiding a word', () => {
    expect(detectProfanity('fu\u200Bck').flag).not.toBeNull();
  });
  it("honours a tenant's allowed words", () => {
    expect(detectProfanity('Dick Smith called', ['dick']).flag).toBeNull();
  });
  it('masks each match keeping the first letter, and never reports the word itself', () => {
    const r = detectProfanity('oh shit, fuck');
    expect(applySpans('oh shit, fuck', r.spans)).toBe('oh s***, f***');
    expect(JSON.stringify(r.flag)).not.toMatch(/shit|fuck/);
  });
});

describe('harassment and threats', () => {
  it.each(["I'm going to kill you", 'i will find you', 'I know where you live', 'kill yourself', 'kys', "you're a worthless idiot", 'your staff are useless idiots', 'shut up', 'stupid bitch', 'go die in a fire'])('finds %s', (text) => {
    expect(detectHarassment(text)).not.toBeNull();
  });
  it.each(['I want to kill myself', 'this headache is killing me', 'can you find my file', 'you are so kind', 'I will beat the traffic', 'my knee hurts'])('leaves %s alone', (text) => {
    expect(detectHarassment(text)).toBeNull();
  });
});

describe('spam', () => {
  it('finds links to blocked domains and their subdomains', () => {
    expect(spam('see http://win.bad.example/x')).toMatchObject({ score: 0.95, details: { blockedDomains: ['win.bad.example'] } });
    expect(spam('see https://good.example.org')).toBeNull();
  });
  it('finds a repeated identical message at the configured count', () => {
    expect(spam('hello?', { sameAsRecent: 1 })).toBeNull();
    expect(spam('hello?', { sameAsRecent: 2 })).toMatchObject({ details: { repeats: 3 } });
  });
  it('finds a burst', () => {
    expect(spam('hi', { recentCount: 9 })?.details).toMatchObject({ burst: 9 });
  });
  it('counts shouting alone under the default threshold', () => {
    const caps = spam('WHY HAS NOBODY CALLED ME BACK');
    expect(caps?.score).toBeLessThan(0.6);
    expect(spam('OK')).toBeNull();
  });
  it('finds promotional phrasing', () => {
    expect(spam('Congratulations! You have won, claim your prize: click here bit.ly/x')!.score).toBeGreaterThan(0.8);
    expect(spam('Can I book a visit for Tuesday?')).toBeNull();
  });
});

describe('personal data', () => {
  it('finds a card number that passes Luhn, not one that fails', () => {
    expect(luhn('4242424242424242')).toBe(true);
    expect(detectPii('card 4242-4242-4242-4242 ok', ALL).flag?.details).toMatchObject({ kinds: ['card'] });
    expect(detectPii('ref 4242 4242 4242 4241', ALL).flag).toBeNull();
  });
  it('finds SSNs, formatted or named', () => {
    expect(detectPii('ssn 123-45-6789', ALL).flag?.details).toMatchObject({ kinds: ['ssn'] });
    expect(detectPii('my social security number is 123456789', ALL).flag?.details).toMatchObject({ kinds: ['ssn'] });
    expect(detectPii('order 123456789 shipped', ALL).flag).toBeNull();
    expect(detectPii('000-12-3456', ALL).flag).toBeNull();
  });
  it('finds IBANs with a valid check, emails and phone numbers', () => {
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('GB82 WEST 1234 5698 7654 33')).toBe(false);
    expect(detectPii('IBAN DE89 3704 0044 0532 0130 00 please', ALL).flag?.details).toMatchObject({ kinds: ['iban'] });
    expect(detectPii('mail jo.doe+x@mail.example.com', ALL).flag?.details).toMatchObject({ kinds: ['email'] });
    expect(detectPii('call (555) 123-4567 or +447911123456', ALL).flag?.details).toMatchObject({ kinds: ['phone'], counts: { phone: 2 } });
    expect(detectPii('see you at 10:30 on 12/05, room 1204', ALL).flag).toBeNull();
  });
  it('masks every kind, and only the kinds asked for', () => {
    const text = 'card 4111 1111 1111 1111, ssn 123-45-6789, a@b.co, 555-123-4567';
    expect(applySpans(text, detectPii(text, ALL).spans)).toBe('card [redacted card], ssn [redacted ssn], [redacted email], [redacted phone]');
    expect(applySpans(text, detectPii(text, ['card']).spans)).toBe('card [redacted card], ssn 123-45-6789, a@b.co, 555-123-4567');
  });
});

describe('the policy', () => {
  it('gives each category its action from its threshold, and the strongest wins', () => {
    const s = settings({ categories: { profanity: { action: 'block', threshold: 0.9 }, harassment: { action: 'hold', threshold: 0.6 } } });
    const v = screenText("you're a worthless idiot, fuck off", s, { spam: null, model: null });
    expect(v.action).toBe('hold');
    expect(v.flags.find((f) => f.category === 'profanity')).toMatchObject({ action: 'allow', threshold: 0.9 });
    expect(screenText('hello there', s, { spam: null, model: null })).toMatchObject({ safe: true, action: 'allow', flags: [] });
  });
  it('caps the action (a crisis message is never held or blocked)', () => {
    const v = decide([{ category: 'harassment', detector: 'x', score: 0.9, details: {} }], settings(), { cap: 'flag' });
    expect(v.action).toBe('flag');
  });
  it('redacts only the categories whose action is redact', () => {
    expect(redact('card 4242424242424242 shit', settings()).text).toBe('card [redacted card] shit');
    expect(redact('card 4242424242424242 shit', settings({ categories: { profanity: { action: 'redact' } } })).text).toBe('card [redacted card] s***');
    expect(redact('card 4242424242424242', settings({ categories: { pii: { action: 'hold' } } })).categories).toEqual([]);
  });
  it('refuses redact for categories that have no span to mask, naming the key', () => {
    const r = settingsSchema.safeParse({ categories: { spam: { action: 'redact' } } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['categories', 'spam', 'action']);
  });
});

import { describe, expect, it } from 'vitest';
import { newLinkId, readChoiceToken, signChoiceToken } from './chooser-link.js';

const SECRET = 'a-test-secret-of-at-least-thirty-two-chars';
const at = new Date('2026-12-01T12:00:00Z');
const later = new Date('2026-12-04T12:00:00Z');

describe('plan chooser link tokens', () => {
  it('reads back the link id and expiry it was signed with', () => {
    const id = newLinkId();
    expect(readChoiceToken(SECRET, signChoiceToken(SECRET, id, later), at)).toEqual({ linkId: id, expiresAt: later });
  });

  it('refuses a token signed with another secret, or with any character changed', () => {
    const token = signChoiceToken(SECRET, newLinkId(), later);
    expect(readChoiceToken('another-secret-of-at-least-thirty-two-chars', token, at)).toBe('invalid');
    for (let i = 0; i < token.length; i++) {
      if (token[i] === '.') continue;
      const altered = token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
      expect(readChoiceToken(SECRET, altered, at), altered).toBe('invalid');
    }
  });

  it('says expired once its time has passed, and invalid for garbage', () => {
    const token = signChoiceToken(SECRET, newLinkId(), later);
    expect(readChoiceToken(SECRET, token, new Date(later.getTime() + 1000))).toBe('expired');
    for (const garbage of ['', '.', '..', 'a.b.c', 'x'.repeat(200), `${token}.x`]) expect(readChoiceToken(SECRET, garbage, at)).toBe('invalid');
  });
});

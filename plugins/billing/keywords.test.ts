/** Billing keywords: matched whole, in English and Spanish, accents ignored; carrier keywords are refused at start. */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { ConfigError } from 'parley';
import { loadSubscriptionTenants, matchKeyword, normaliseKeyword } from './subscriptions.js';

const base = { plans: [{ price: 'price_a', name: 'A' }], freeAllowance: { messages: 1 }, successUrl: 'https://a.example/s', cancelUrl: 'https://a.example/c', whenNotEntitled: 'block', linkEveryHours: 24, entitledStatuses: ['active'], notifyPaymentFailure: true, eraseStripeCustomer: true, keywords: {}, texts: {} };
const policy = { attempts: 1, backoffMs: 1, timeoutMs: 1000 };
const ctxWith = (subscriptions: Record<string, unknown>, locale = 'en-US') => ({
  tenants: () => [{ tenant: { id: 'acme', name: 'Acme', locale } as never, settings: { subscriptions: { ...base, ...subscriptions } as never } }],
  configPath: (id?: string) => `tenants[0] (${id}).plugins.billing`,
  log: pino({ level: 'silent' }),
});

describe('billing keywords', () => {
  it('normalises case, accents, punctuation and spacing', () => {
    expect(normaliseKeyword('  Cancelar   suscripción! ')).toBe('CANCELAR SUSCRIPCION');
    expect(normaliseKeyword('billing?')).toBe('BILLING');
  });

  it('matches whole messages only, in either language, and never the bare carrier CANCEL', () => {
    const state = loadSubscriptionTenants(ctxWith({}), policy).get('acme')!;
    expect(matchKeyword(state, 'cancel plan')).toEqual({ kind: 'cancelPlan', language: 'en' });
    expect(matchKeyword(state, 'Facturación')).toEqual({ kind: 'portal', language: 'es' });
    expect(matchKeyword(state, 'CANCEL')).toBeNull();
    expect(matchKeyword(state, 'how do I cancel plan B?')).toBeNull();
  });

  it('refuses a configured billing keyword that is a carrier keyword, naming tenant, plugin and key', () => {
    const error = (() => {
      try {
        loadSubscriptionTenants(ctxWith({ keywords: { en: { cancelPlan: ['CANCEL PLAN', 'Cancel'] } } }), policy);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toContain('tenants[0] (acme).plugins.billing.subscriptions.keywords.en.cancelPlan[1]: "Cancel" is a carrier keyword');
  });

  it('keeps subscriptions off, saying why, when the Stripe keys are missing', () => {
    const state = loadSubscriptionTenants(ctxWith({}), policy).get('acme')!;
    expect(state.off).toMatch(/^subscriptions\.secretKey and subscriptions\.webhookSecret are not set/);
    expect(state.stripe).toBeNull();
  });
});

/**
 * The plan chooser: the page a checkout link opens. `GET /billing/choose/:token` lists the tenant's
 * plans (name and price text, plain HTML, no external assets, every text escaped); choosing one posts
 * back to the same URL, which makes the person's Stripe customer (once) and a Checkout session for
 * that plan, and answers 303 to it. GET never calls Stripe, so a messaging app's link preview opens no
 * session. The session's idempotency key is the link and the plan, so a double click opens one
 * session; a later click goes back to that session while it is open, and gets a new one once Stripe
 * expired it. A person who already has an entitled subscription, or paid that session, is told so instead.
 *
 * Bad links are pages too, never a 5xx: forged or unknown 404, expired 410, an unknown plan 400,
 * already subscribed 409; Stripe unreachable 503 (try again).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { hashAddress, param, type RouteHelpers } from 'parley';
import type { Router, Response } from 'express';
import type { Logger } from 'pino';
import { newLinkId, readChoiceToken, signChoiceToken } from './chooser-link.js';
import type { BillingMetrics } from './metrics.js';
import type { BillingStore } from './store.js';
import { decide, type SubscriptionApi, type SubscriptionTenant } from './subscriptions.js';
import { describeError } from './stripe-api.js';
import type { SubscriptionSettings } from './types.js';

export const CHOOSER_PATH = '/billing/choose';

interface PageTexts {
  title: string;
  intro: string;
  choose: string;
  invalid: string;
  expired: string;
  unknownPlan: string;
  subscribed: string;
  unavailable: string;
}

/** The page's words; the tenant's language when built in, else English. */
const PAGE_TEXTS: Record<'en' | 'es', PageTexts> = {
  en: {
    title: 'Choose your plan',
    intro: 'Pick a plan to keep chatting with {tenant}. Payment is taken by Stripe on the next page.',
    choose: 'Choose',
    invalid: 'This link is not valid. Text us again for a new one.',
    expired: 'This link has expired. Text us again for a new one.',
    unknownPlan: 'That plan is not offered. Go back and pick one of the plans listed.',
    subscribed: 'You already have a plan, so there is nothing to pay here. Text BILLING to manage it.',
    unavailable: 'We could not open the payment page just now. Please try again in a few minutes.',
  },
  es: {
    title: 'Elija su plan',
    intro: 'Elija un plan para seguir conversando con {tenant}. Stripe cobra el pago en la página siguiente.',
    choose: 'Elegir',
    invalid: 'Este enlace no es válido. Escríbanos de nuevo para recibir otro.',
    expired: 'Este enlace ha caducado. Escríbanos de nuevo para recibir otro.',
    unknownPlan: 'Ese plan no se ofrece. Vuelva atrás y elija uno de los planes de la lista.',
    subscribed: 'Ya tiene un plan, así que no hay nada que pagar aquí. Envíe FACTURACION para administrarlo.',
    unavailable: 'No pudimos abrir la página de pago ahora. Inténtelo de nuevo en unos minutos.',
  },
};

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/gu, (c) => ESCAPES[c]!);
}

function page(language: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="${escapeHtml(language)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1.5rem;color:#1a1a1a;background:#f6f6f4}main{max-width:28rem;margin:0 auto}ul{list-style:none;padding:0}li{background:#fff;border:1px solid #ddd;border-radius:.5rem;padding:1rem;margin:.75rem 0;display:flex;justify-content:space-between;align-items:center;gap:1rem}.price{color:#555}button{font:inherit;padding:.5rem 1rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;cursor:pointer}</style>
</head><body><main>${body}</main></body></html>`;
}

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // The token in the URL must not travel to Stripe (or anywhere) in a Referer.
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
};

function toCheckout(res: Response, url: string): void {
  res.status(303).set({ location: url, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end();
}

type Outcome = 'shown' | 'chosen' | 'invalid' | 'expired' | 'unknown-plan' | 'subscribed' | 'error';
const choiceBody = z.object({ plan: z.string().max(200) });
const tokenParam = z.object({ token: z.string().describe('The signed link token from the checkout text') });
const html = (description: string) => ({ description, contentType: 'text/html' });
const tags = ['billing'];

export class PlanChooser {
  private secret: Promise<string> | undefined;

  constructor(
    private readonly deps: {
      store: BillingStore;
      api: SubscriptionApi;
      metrics: BillingMetrics;
      subscriptions: (tenantId: string) => SubscriptionTenant | undefined;
      /** `options.chooserSigningSecret`, else undefined (a secret kept in the database). */
      signingSecret: string | undefined;
      /** Where people reach Parley (`server.publicBaseUrl`, else the address it listens on). */
      baseUrl: () => string;
      log: Logger;
      now?: () => Date;
    },
  ) {}

  private signingSecret(): Promise<string> {
    const { store, signingSecret } = this.deps;
    if (!this.secret) {
      this.secret = signingSecret ? Promise.resolve(signingSecret) : store.secret('chooser-links', () => randomBytes(32).toString('base64url'));
      // A failed read is not kept: the next request asks the database again.
      this.secret.catch(() => (this.secret = undefined));
    }
    return this.secret;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** The chooser URL for this person, made once per message (a re-run of the message gets the same link). */
  async linkFor(state: SubscriptionTenant, address: string, messageId: string): Promise<string> {
    const expiresAt = new Date(this.now().getTime() + state.settings.linkValidHours * 3_600_000);
    const link = await this.deps.store.chooserLink(state.tenant.id, address, messageId, { id: newLinkId(), expiresAt });
    const token = signChoiceToken(await this.signingSecret(), link.id, link.expiresAt);
    return `${this.deps.baseUrl().replace(/\/+$/u, '')}${CHOOSER_PATH}/${token}`;
  }

  private texts(state: SubscriptionTenant | undefined): { language: string; t: PageTexts } {
    const language = state && state.language in PAGE_TEXTS ? state.language : 'en';
    return { language, t: PAGE_TEXTS[language as 'en' | 'es'] };
  }

  private answer(res: Response, status: number, outcome: Outcome, state: SubscriptionTenant | undefined, message: keyof PageTexts): void {
    const { language, t } = this.texts(state);
    this.deps.metrics.chooser.inc({ result: outcome });
    res.status(status).set(HTML_HEADERS).send(page(language, t.title, `<h1>${escapeHtml(t.title)}</h1><p>${escapeHtml(t[message])}</p>`));
  }

  /** The link's person and tenant, or the page that says why not (and undefined). */
  private async open(res: Response, token: string): Promise<{ state: SubscriptionTenant; address: string; linkId: string; sessions: { price: string; sessionId: string }[] } | undefined> {
    const read = readChoiceToken(await this.signingSecret(), token, this.now());
    if (read === 'invalid') return void this.answer(res, 404, 'invalid', undefined, 'invalid');
    if (read === 'expired') return void this.answer(res, 410, 'expired', undefined, 'expired');
    const link = await this.deps.store.choiceLink(read.linkId);
    const state = link && this.deps.subscriptions(link.tenantId);
    // Erased since, or the tenant's subscriptions were turned off: the link leads nowhere now.
    if (!link || !state || state.off) return void this.answer(res, 410, 'expired', state ?? undefined, 'expired');
    return { state, address: link.address, linkId: read.linkId, sessions: link.sessions };
  }

  private async subscribed(state: SubscriptionTenant, address: string): Promise<boolean> {
    const e = await this.deps.store.get(state.tenant.id, address);
    return !!e && decide(e, 0, { ...state.settings, freeAllowance: {} }, this.now()).reason === 'subscription';
  }

  private plansPage(state: SubscriptionTenant): string {
    const { language, t } = this.texts(state);
    const items = state.settings.plans
      .map((p: SubscriptionSettings['plans'][number]) => `<li><div><strong>${escapeHtml(p.name)}</strong>${p.priceText ? `<div class="price">${escapeHtml(p.priceText)}</div>` : ''}</div><button type="submit" name="plan" value="${escapeHtml(p.price)}">${escapeHtml(t.choose)}</button></li>`)
      .join('');
    return page(language, t.title, `<h1>${escapeHtml(t.title)}</h1><p>${escapeHtml(t.intro.replace('{tenant}', state.tenant.name ?? state.tenant.id))}</p><form method="post"><ul>${items}</ul></form>`);
  }

  routes() {
    return (_router: Router, { route }: RouteHelpers): void => {
      const errors = { 400: html('The plan is not one of the tenant\'s'), 404: html('A forged, altered or unknown link'), 409: html('The person already has a plan'), 410: html('The link expired, was erased, or the tenant no longer takes payments'), 503: html('Stripe could not be reached; try again') };
      route(
        { method: 'get', path: `${CHOOSER_PATH}/:token`, auth: 'none', tags, summary: 'The plan chooser page a checkout link opens (the signed link is the credential)', description: 'Lists the plans; calls nobody, so link previews are harmless.', params: tokenParam, responses: { 200: html('The plans, as a form'), 404: errors[404], 409: errors[409], 410: errors[410] } },
        async (req, res) => {
          const opened = await this.open(res, param(req, 'token'));
          if (!opened) return;
          if (await this.subscribed(opened.state, opened.address)) return this.answer(res, 409, 'subscribed', opened.state, 'subscribed');
          this.deps.metrics.chooser.inc({ result: 'shown' });
          res.status(200).set(HTML_HEADERS).send(this.plansPage(opened.state));
        },
      );
      route(
        {
          method: 'post',
          path: `${CHOOSER_PATH}/:token`,
          auth: 'none',
          tags,
          summary: 'Choose a plan: opens its Stripe Checkout session (303 to it)',
          description: 'The session is keyed by the link and the plan, so a double click opens one session; a later click reopens it while Stripe has it open, and makes a new one once it expired.',
          params: tokenParam,
          body: choiceBody,
          bodyContentType: 'application/x-www-form-urlencoded',
          responses: { 303: { description: 'To the Stripe Checkout page', headers: { location: 'The Checkout session URL' } }, ...errors },
        },
        async (req, res) => {
          const opened = await this.open(res, param(req, 'token'));
          if (!opened) return;
          const { state, address, linkId, sessions } = opened;
          const body = choiceBody.safeParse(req.body ?? {});
          const plan = body.success ? state.settings.plans.find((p) => p.price === body.data.plan) : undefined;
          if (!plan) return this.answer(res, 400, 'unknown-plan', state, 'unknownPlan');
          if (await this.subscribed(state, address)) return this.answer(res, 409, 'subscribed', state, 'subscribed');
          const tenantId = state.tenant.id;
          try {
            // This plan's session from an earlier click, while Stripe still has it open. Stripe expires an
            // unpaid session after 24 hours and may replay it for the same key as long: past that, the
            // next session gets a new key.
            const earlier = sessions.filter((s) => s.price === plan.price);
            const last = earlier.at(-1) && (await this.deps.api.checkoutSessionOf(state, earlier.at(-1)!.sessionId));
            if (last && last.status === 'open' && last.url) {
              this.deps.metrics.chooser.inc({ result: 'chosen' });
              return toCheckout(res, last.url);
            }
            if (last && last.status === 'complete') return this.answer(res, 409, 'subscribed', state, 'subscribed');
            const e = (await this.deps.store.get(tenantId, address))!;
            const customerId = await this.deps.api.ensureCustomer(state, e);
            if (!e.customerId) await this.deps.store.setCustomer(tenantId, address, customerId);
            const session = await this.deps.api.checkoutSession(state, customerId, plan.price, earlier.length ? `${linkId}:${earlier.length}` : linkId);
            this.deps.metrics.chooser.inc({ result: 'chosen' });
            if (await this.deps.store.sessionOpened(tenantId, address, session.id, plan.price, linkId)) {
              this.deps.metrics.checkoutSessions.inc({ tenant: tenantId, price: plan.price });
              this.deps.log.info({ tenant: tenantId, subject: hashAddress(address), session: session.id, price: plan.price }, 'billing: checkout session opened from the plan chooser');
            }
            toCheckout(res, session.url);
          } catch (error) {
            this.deps.metrics.stripeErrors.inc({ tenant: tenantId, call: 'checkout' });
            this.deps.log.error({ tenant: tenantId, subject: hashAddress(address), error: describeError(error) }, 'billing: could not open a checkout session from the plan chooser');
            this.answer(res, 503, 'error', state, 'unavailable');
          }
        },
      );
    };
  }
}

/**
 * The `billing` stage: the entitlement gate. Billing keywords (portal, cancel plan) are answered here;
 * a person within the free allowance, with an entitled subscription or an override passes; anyone else
 * gets a link to the plan chooser page (at most once per `linkEveryHours`) and, with
 * `whenNotEntitled: block`, no answer.
 *
 * It also records each inbound message in the usage ledger (`messages.in`), which tenant usage billing reports.
 *
 * The gate never calls Stripe for the link: it only stores a chooser link (one per message id, so a
 * re-run sends the same link); the Checkout session is made when the person picks a plan. Only the
 * portal keywords call Stripe here, keyed by the message id.
 */
import { consentAddress, hashAddress, type StageContext, type StageDefinition, type UsageLedger } from 'parley';
import type { BillingMetrics } from './metrics.js';
import type { BillingStore, Entitlement } from './store.js';
import type { PlanChooser } from './chooser.js';
import { decide, fill, matchKeyword, planName, planNames, textsFor, type SubscriptionApi, type SubscriptionTenant } from './subscriptions.js';
import { describeError } from './stripe-api.js';
import { BILLING_STAGE, type BillingSettings } from './types.js';

/** crisis-guard's annotation on a message that describes present danger (plugins share it by name). */
const CRISIS_ANNOTATION = 'crisis';

export function billingStage(deps: {
  store: BillingStore;
  api: SubscriptionApi;
  chooser: Pick<PlanChooser, 'linkFor'>;
  metrics: BillingMetrics;
  usage: UsageLedger;
  tenant: (id: string) => SubscriptionTenant | undefined;
  now?: () => Date;
}): StageDefinition<BillingSettings> {
  const { store, api, metrics } = deps;
  const now = deps.now ?? (() => new Date());

  async function keyword(stage: StageContext<BillingSettings>, state: SubscriptionTenant, e: Entitlement, kind: 'portal' | 'cancelPlan', language: string): Promise<void> {
    const texts = textsFor(state, language);
    metrics.keywords.inc({ tenant: state.tenant.id, keyword: kind });
    if (!e.customerId) {
      stage.reply(kind === 'portal' ? texts.noAccount : texts.cancelPlanNoAccount);
      return stage.stop(`billing: ${kind} keyword without a Stripe customer`);
    }
    try {
      const url = await api.portalUrl(state, e.customerId, stage.message.id);
      stage.reply(fill(kind === 'portal' ? texts.portal : texts.cancelPlan, { url, plan: planName(state, e.priceId) }));
    } catch (error) {
      metrics.stripeErrors.inc({ tenant: state.tenant.id, call: 'billing_portal.sessions.create' });
      stage.log.error({ tenant: state.tenant.id, error: describeError(error) }, 'billing: could not create a customer portal session');
      stage.reply(texts.linkUnavailable);
    }
    stage.stop(`billing: ${kind} keyword`);
  }

  /** Sends the plan chooser link unless one went out within `linkEveryHours`. */
  async function offerCheckout(stage: StageContext<BillingSettings>, state: SubscriptionTenant, e: Entitlement): Promise<void> {
    const tenantId = state.tenant.id;
    const claim = await store.claimLink(tenantId, e.address, state.settings.linkEveryHours);
    if (!claim.claimed) return;
    const texts = textsFor(state);
    try {
      const url = await deps.chooser.linkFor(state, e.address, stage.message.id);
      metrics.checkoutLinks.inc({ tenant: tenantId });
      stage.log.info({ tenant: tenantId, subject: hashAddress(e.address) }, 'billing: plan chooser link sent');
      stage.reply(fill(texts.checkout, { url, plan: planNames(state) }));
    } catch (error) {
      // Give the claim back, so the next message tries again.
      await store.releaseLink(tenantId, e.address, claim.previous);
      stage.log.error({ tenant: tenantId, subject: hashAddress(e.address), error: describeError(error) }, 'billing: could not make a plan chooser link');
      stage.reply(texts.linkUnavailable);
    }
  }

  return {
    name: BILLING_STAGE,
    async handle(stage, next) {
      // The kernel's ledger meters outbound messages, segments and tokens; inbound messages are metered
      // here (once per message id), so tenant usage billing can report them.
      await deps.usage.record({ tenantId: stage.tenant.id, kind: 'messages.in', quantity: 1, unit: 'message', ref: stage.message.id, attributes: { channel: stage.message.channel } });
      const state = deps.tenant(stage.tenant.id);
      if (!state || state.off) return next();
      // A person in danger is never asked to pay: crisis-guard's message neither uses the free
      // allowance nor gets a plan link, whatever the person's plan.
      if (stage.annotations[CRISIS_ANNOTATION]) return next();
      const tenantId = stage.tenant.id;
      const address = consentAddress(stage.message.from);
      const e = await store.touch(tenantId, address, stage.message.channel, stage.message.from);
      const kw = matchKeyword(state, stage.message.text);
      if (kw) return keyword(stage, state, e, kw.kind, kw.language);

      const at = now();
      const paid = decide(e, 0, { ...state.settings, freeAllowance: {} }, at);
      // Only messages sent without a plan count against the free allowance (once per message id).
      const used = paid.entitled ? 0 : await store.countFreeMessage(tenantId, address, stage.message.id);
      const decision = paid.entitled ? paid : decide(e, used, state.settings, at);
      stage.annotate('billing.entitlement', decision);
      metrics.gate.inc({ tenant: tenantId, decision: decision.entitled ? `pass-${decision.reason}` : `refuse-${decision.reason}` });
      if (decision.entitled) return next();

      if (state.settings.whenNotEntitled === 'answer-and-remind') {
        await next();
        return offerCheckout(stage, state, e);
      }
      await offerCheckout(stage, state, e);
      stage.stop(`billing: not entitled (${decision.reason === 'override' ? 'revoked by an override' : 'free allowance used'})`);
    },
  };
}

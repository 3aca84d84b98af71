/**
 * `POST /twilio/sms` and `POST /twilio/status`: find the tenant, check the signature, parse, then hand
 * the message to the kernel (answering inline in TwiML when the pipeline is quick) or record the
 * delivery status. Parsing and the signature check live in webhook.ts, shared with twilio-voice.
 */
import type { Request, Response, Router } from 'express';
import { hashAddress, type InboundDraft, isPoisonInput, notFound, type OutboundMessage, type PluginContext, poisonReason, type RouteContract, type RouteHelpers } from 'parley';
import { z } from 'zod';
import { matchKeyword } from './consent.js';
import { usageOf, type LedgerAccount, type LedgerEntry, type PartUsage, type SegmentLedger } from './ledger.js';
import { UNKNOWN_TENANT, type TwilioMetrics } from './metrics.js';
import { fitToSegments } from './segments.js';
import type { SmsTenants, TenantState } from './tenants.js';
import { emptyTwiml, messagingTwiml, TwimlError, type TwimlReply } from './twiml.js';
import { TWILIO_SMS_CHANNEL, type TwilioSmsOptions, type TwilioSmsSettings } from './types.js';
import { countMalformed, formParams, outboxStatusOf, parseInboundSms, parseStatusCallback, required, sendTwiml, single, type SignatureGuard } from './webhook.js';

export interface SmsWebhookDeps {
  ctx: Pick<PluginContext<TwilioSmsOptions, TwilioSmsSettings>, 'log' | 'gateway' | 'resolveTenant'>;
  metrics: TwilioMetrics;
  tenants: SmsTenants;
  ledger: SegmentLedger;
  account: LedgerAccount;
  guard: SignatureGuard;
}

/** Twilio's form posts, as documented in `/v1/openapi.json` (signed: the signature is the credential). */
const twilioForm = z.record(z.string(), z.string()).describe("Twilio's form parameters (MessageSid, AccountSid, From, To, Body, NumMedia, MediaUrl0...; MessageStatus on status callbacks)");
export function twilioWebhookContract(path: string, summary: string, responses: RouteContract['responses'], extra: Partial<RouteContract> = {}): RouteContract {
  return {
    method: 'post',
    path,
    auth: 'none',
    tags: ['webhooks'],
    summary,
    description: 'Called by Twilio, never by integrators. Verified by `X-Twilio-Signature` over the public URL and the form (`publicBaseUrl`); a webhook that cannot be stored is parked and answered 200 so Twilio does not retry it forever.',
    body: twilioForm,
    bodyContentType: 'application/x-www-form-urlencoded',
    responses,
    errors: ['PARLEY_BAD_REQUEST', { code: 'PARLEY_FORBIDDEN', status: 403, description: 'Missing or invalid X-Twilio-Signature' }, { code: 'PARLEY_NOT_FOUND', status: 404, description: 'No tenant owns this Twilio number' }],
    ...extra,
  };
}

/** Reply texts whose parts and usage are kept per tenant (routes.ts `partsOf`). */
const FITTED_REPLIES_KEPT = 500;

/** Registers the channel's two webhooks. */
export function smsWebhooks(deps: SmsWebhookDeps): (router: Router, helpers: RouteHelpers) => void {
  const { ctx, metrics, tenants } = deps;

  /**
   * A reply text's parts within the tenant's segment budget and their usage (without media), per
   * tenant settings: fixed replies (FAQ answers, consent texts) come back again and again, so they
   * are fitted and counted once, not per message. Bounded: a full cache starts over.
   */
  const fitted = new WeakMap<TenantState, Map<string, { text: string; usage: PartUsage }[]>>();
  function partsOf(state: TenantState, text: string): { text: string; usage: PartUsage }[] {
    let cache = fitted.get(state);
    if (!cache) fitted.set(state, (cache = new Map()));
    let parts = cache.get(text);
    if (!parts) {
      const texts = text === '' ? [''] : fitToSegments(text, state.settings.maxSegments, state.settings.overflow);
      parts = texts.map((t) => ({ text: t, usage: usageOf(t, 0, state.settings) }));
      if (cache.size >= FITTED_REPLIES_KEPT) cache.clear();
      cache.set(text, parts);
    }
    return parts;
  }

  /** Replies as TwiML, each fitted to the segment budget, and the ledger entries of their parts. */
  function inlineTwiml(state: TenantState, replies: readonly OutboundMessage[]): { xml: string; entries: LedgerEntry[] } {
    const messages: TwimlReply[] = [];
    const entries: LedgerEntry[] = [];
    for (const reply of replies) {
      for (const [part, { text, usage }] of partsOf(state, reply.text).entries()) {
        const mediaUrls = part === 0 ? reply.media.map((m) => m.url) : [];
        if (text.trim() === '' && !mediaUrls.length) continue;
        messages.push({ text, mediaUrls });
        entries.push({ tenantId: state.tenant.id, ref: reply.id, part, direction: 'out', via: 'inline', address: reply.to, messageSid: null, ...(mediaUrls.length ? usageOf(text, mediaUrls.length, state.settings) : usage) });
      }
    }
    try {
      return { xml: messagingTwiml(messages), entries };
    } catch (error) {
      if (!(error instanceof TwimlError)) throw error;
      metrics.errors.inc({ tenant: state.tenant.id, code: error.code });
      ctx.log.error({ tenant: state.tenant.id, code: error.code, err: error }, 'twilio-sms: could not build the TwiML reply; answering without it');
      return { xml: emptyTwiml(), entries: [] };
    }
  }

  async function inbound(req: Request, res: Response): Promise<void> {
    const params = formParams(req);
    const to = required(params, 'To');
    const tenantId = ctx.resolveTenant(TWILIO_SMS_CHANNEL, to)?.id;
    const state = tenantId ? tenants.get(tenantId) : undefined;
    if (!state || state.off) {
      metrics.requests.inc({ tenant: UNKNOWN_TENANT, endpoint: 'sms' });
      ctx.log.warn({ to: hashAddress(to) }, 'twilio-sms: a message arrived for a number no tenant owns');
      throw notFound('No tenant owns this Twilio number');
    }
    const { tenant, settings } = state;
    metrics.requests.inc({ tenant: tenant.id, endpoint: 'sms' });
    deps.guard(req, params, { tenantId: tenant.id, authToken: settings.authToken!, validate: settings.validateSignatures, endpoint: 'sms' });
    const sms = countMalformed(metrics, tenant.id, () => parseInboundSms(params));
    const keyword = matchKeyword(state.policy, sms.body, sms.optOutType);
    const usage = usageOf(sms.body, sms.media.length, settings);
    const draft: InboundDraft = {
      channel: TWILIO_SMS_CHANNEL,
      tenantId: tenant.id,
      from: sms.from,
      to: sms.to,
      text: sms.body,
      media: sms.media,
      providerMessageId: sms.messageSid,
      raw: { ...params },
      attributes: {
        ...(keyword ? { consentKeyword: keyword } : {}),
        ...(sms.optOutType ? { optOutType: sms.optOutType } : {}),
        ...(sms.messagingServiceSid ? { messagingServiceSid: sms.messagingServiceSid } : {}),
        encoding: usage.encoding,
        segments: sms.numSegments ?? usage.segments,
      },
    };
    const inboundEntry: LedgerEntry = { tenantId: tenant.id, ref: sms.messageSid, part: 0, direction: 'in', via: 'inbound', address: sms.from, messageSid: sms.messageSid, ...usage };

    // A sender who opted out still reaches the pipeline (the business may need the message); the
    // kernel records its replies as blocked and returns only consent notices inline.
    const result = await ctx.gateway.receive(draft, { inline: { budgetMs: settings.replyBudgetMs, confirm: true } }).catch(async (error: unknown) => {
      if (!isPoisonInput(error)) throw error;
      await ctx.gateway.park({ channel: TWILIO_SMS_CHANNEL, tenantId: tenant.id, reason: poisonReason(error), payload: { ...params }, addresses: [sms.from, sms.to] });
      return undefined;
    });
    if (!result) return sendTwiml(res, emptyTwiml());
    if (result.status === 'deferred') ctx.log.info({ tenant: tenant.id, inboundId: result.inboundId, budgetMs: settings.replyBudgetMs }, 'twilio-sms: pipeline slower than the reply budget; replying through the REST API');
    // A retried webhook (duplicate) gets its stored inline replies back, blocked ones included: never send those.
    const { xml, entries } = inlineTwiml(state, result.inline.filter((r) => r.status !== 'blocked'));
    await deps.account(tenant.id, [inboundEntry, ...entries]);
    // The replies count as sent only once the TwiML is written; a dropped connection sends them through the REST API.
    await ctx.gateway.deliverInline(res, result, () => sendTwiml(res, xml));
  }

  async function status(req: Request, res: Response): Promise<void> {
    const params = formParams(req);
    const from = single(params, 'From');
    const accountSid = single(params, 'AccountSid');
    const byNumber = from ? ctx.resolveTenant(TWILIO_SMS_CHANNEL, from)?.id : undefined;
    const candidates = tenants.all().filter((s) => !s.off && (s.tenant.id === byNumber || (accountSid !== undefined && s.settings.accountSid === accountSid)));
    candidates.sort((a, b) => Number(b.tenant.id === byNumber) - Number(a.tenant.id === byNumber));
    const state = candidates[0];
    if (!state) {
      metrics.requests.inc({ tenant: UNKNOWN_TENANT, endpoint: 'status' });
      ctx.log.warn({ from: from ? hashAddress(from) : undefined }, 'twilio-sms: a status callback for a number or account no tenant owns');
      throw notFound('No tenant owns this Twilio number or account');
    }
    const tenantId = state.tenant.id;
    metrics.requests.inc({ tenant: tenantId, endpoint: 'status' });
    deps.guard(req, params, { tenantId, authToken: state.settings.authToken!, validate: state.settings.validateSignatures, endpoint: 'status' });
    const cb = countMalformed(metrics, tenantId, () => parseStatusCallback(params));
    metrics.deliveries.inc({ tenant: tenantId, status: cb.status });
    if (cb.errorCode) metrics.errors.inc({ tenant: tenantId, code: cb.errorCode });
    if (cb.errorCode === '21610' && cb.to) {
      await ctx.gateway.consent.set({ tenantId, address: cb.to, status: 'opted-out', source: 'twilio-21610', channel: TWILIO_SMS_CHANNEL, detail: `status callback for ${cb.messageSid}` });
    }
    const outboxStatus = outboxStatusOf(cb.status);
    if (!outboxStatus) {
      ctx.log.debug({ tenant: tenantId, status: cb.status }, 'twilio-sms: status callback with a status the outbox does not track');
      res.status(204).end();
      return;
    }
    // Only tenants on the account whose token just verified the signature may be updated.
    for (const candidate of candidates.filter((c) => c.settings.authToken === state.settings.authToken)) {
      const providerMessageId = await deps.ledger.primarySid(candidate.tenant.id, cb.messageSid);
      const applied = await ctx.gateway.recordDeliveryStatus({
        tenantId: candidate.tenant.id,
        channel: TWILIO_SMS_CHANNEL,
        providerMessageId,
        status: outboxStatus,
        errorCode: cb.errorCode ?? null,
        raw: { twilioStatus: cb.status, messageSid: cb.messageSid, ...(cb.errorCode ? { errorCode: cb.errorCode } : {}) },
      });
      if (applied.outboxId) {
        res.status(204).end();
        return;
      }
    }
    ctx.log.info({ tenant: tenantId, messageSid: cb.messageSid, status: cb.status }, 'twilio-sms: status callback for a message Parley did not send (ignored)');
    res.status(204).end();
  }

  return (_router, { route }) => {
    route(
      twilioWebhookContract('/twilio/sms', 'An incoming SMS, MMS or WhatsApp message (Twilio Messaging webhook)', { 200: { description: 'TwiML with the replies that fit the budget (the rest go through the API)', contentType: 'text/xml' } }, {
        errors: ['PARLEY_BAD_REQUEST', { code: 'PARLEY_FORBIDDEN', status: 403, description: 'Missing or invalid X-Twilio-Signature' }, { code: 'PARLEY_NOT_FOUND', status: 404, description: 'No tenant owns this Twilio number' }, { code: 'PARLEY_TWILIO_SMS_TWIML_TOO_LARGE', status: 500, description: 'The reply does not fit in TwiML' }],
      }),
      inbound,
    );
    route(twilioWebhookContract('/twilio/status', 'A delivery status callback of a message Parley sent', { 204: { description: 'Recorded (or ignored: a message Parley did not send)' } }), status);
  };
}

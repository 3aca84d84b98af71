/**
 * The call webhooks: `/twilio/voice` answers with a greeting, `/twilio/voice/gather?turn=N` runs one
 * answer through the pipeline and speaks the reply (asking again after silence, ending on goodbye,
 * transferring on hand-off), `/twilio/voice/dial` follows a transfer, `/twilio/voice/status` records
 * call statuses. Form parsing and the signature check are twilio-sms's webhook.ts.
 */
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { hashAddress, notFound, type PluginContext, type RouteContract, type RouteHelpers } from 'parley';
import type { CallStore } from './calls.js';
import { callDirection, type RecordCallMinutes } from './usage.js';
import type { VoiceMetrics } from './metrics.js';
import type { VoiceTenant } from './sender.js';
import type { FormParams, SignatureGuard, TwilioSmsShared, UrlPolicy, VoiceEndpoint } from './shared.js';
import type { TenantState, VoiceTenants } from './tenants.js';
import { hangupTwiml, holdTwiml, isGoodbye, listenTwiml, replyTwiml, type VoiceScript } from './twiml.js';
import { TWILIO_VOICE_CHANNEL, type TwilioVoiceOptions, type TwilioVoiceSettings } from './types.js';

const callSid = z.string().regex(/^CA[0-9a-fA-F]{32}$/u, 'a Twilio call SID (CA followed by 32 hex digits)');
const callAddress = z.string().min(1).max(128);
const callSchema = z.object({ CallSid: callSid, From: callAddress, To: callAddress, CallStatus: z.string().regex(/^[a-z-]{2,20}$/u).optional(), Direction: z.string().max(40).optional() });
const gatherSchema = callSchema.extend({
  SpeechResult: z.string().max(5000).optional(),
  Confidence: z.string().regex(/^(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$/u, 'a number between 0 and 1').transform(Number).optional(),
  Digits: z.string().regex(/^[0-9*#w]{0,64}$/u, 'DTMF digits').optional(),
});
const dialSchema = callSchema.extend({
  DialCallStatus: z.string().regex(/^[a-z-]{2,20}$/u).optional(),
  // The transferred leg: Twilio bills it as its own outbound call.
  DialCallSid: callSid.optional(),
  DialCallDuration: z.string().regex(/^\d{1,7}$/u).transform(Number).optional(),
});
const statusSchema = callSchema.extend({
  CallStatus: z.string().regex(/^[a-z-]{2,20}$/u),
  CallDuration: z.string().regex(/^\d{1,7}$/u).transform(Number).optional(),
  // Twilio's geographic lookup of the called number; absent or blank when it has none.
  ToCountry: z.string().max(10).optional(),
});
const turnQuery = z.object({
  turn: z.coerce.number().int().min(1).max(10_000),
  retry: z.coerce.number().int().min(0).max(10).default(0),
});

export interface VoiceWebhookDeps {
  ctx: Pick<PluginContext<TwilioVoiceOptions, TwilioVoiceSettings>, 'log' | 'gateway' | 'resolveTenant'>;
  metrics: VoiceMetrics;
  tenants: VoiceTenants;
  calls: CallStore;
  /** Records a completed call's billable minutes in the usage ledger (once per CallSid). */
  recordMinutes: RecordCallMinutes;
  guard: SignatureGuard;
  policy: UrlPolicy;
  /** twilio-sms's form, parsing and TwiML helpers. */
  helpers: TwilioSmsShared['webhook'];
  unknownTenant: string;
}

/** Registers the four call webhooks. */
export function voiceWebhooks(deps: VoiceWebhookDeps): (router: Router, helpers: RouteHelpers) => void {
  const { ctx, metrics, calls } = deps;
  const { formParams, required, plainParams, parseOrBadRequest, countMalformed, sendTwiml, externalBase } = deps.helpers;
  const { turns } = metrics;

  /** Resolves the tenant from the number called, counts the request and checks the signature. */
  function authenticate(req: Request, endpoint: VoiceEndpoint): { params: FormParams; state: TenantState & { settings: VoiceTenant['settings'] }; script: VoiceScript } {
    const params = formParams(req);
    const to = required(params, 'To');
    const tenantId = ctx.resolveTenant(TWILIO_VOICE_CHANNEL, to)?.id;
    const state = tenantId ? deps.tenants.get(tenantId) : undefined;
    if (!state || state.off) {
      metrics.requests.inc({ tenant: deps.unknownTenant, endpoint });
      ctx.log.warn({ to: hashAddress(to), endpoint }, 'twilio-voice: a call webhook for a number no tenant owns');
      throw notFound('No tenant owns this Twilio number');
    }
    metrics.requests.inc({ tenant: state.tenant.id, endpoint });
    deps.guard(req, params, { tenantId: state.tenant.id, authToken: state.settings.authToken!, validate: state.settings.validateSignatures, endpoint });
    return { params, state: state as TenantState & { settings: VoiceTenant['settings'] }, script: { base: externalBase(req, deps.policy), settings: state.settings, language: state.language } };
  }

  const parse = <T>(tenantId: string, schema: z.ZodType<T>, input: unknown, what: string): T => countMalformed(tenantId, () => parseOrBadRequest(schema, input, what));

  async function start(req: Request, res: Response) {
    const { params, state, script } = authenticate(req, 'voice');
    const call = parse(state.tenant.id, callSchema, plainParams(params), 'Twilio voice webhook');
    await calls.recordStatus({ tenantId: state.tenant.id, callSid: call.CallSid, from: call.From, to: call.To, status: call.CallStatus ?? 'in-progress', direction: call.Direction, callbackBase: script.base });
    const greeting = state.settings.greeting ?? `Hello, you've reached ${state.tenant.name}. How can I help you today?`;
    sendTwiml(res, listenTwiml(script, 1, greeting));
  }

  async function answer(req: Request, res: Response) {
    const { params, state, script } = authenticate(req, 'voice-gather');
    const tenantId = state.tenant.id;
    const { turn, retry } = parse(tenantId, turnQuery, req.query, 'gather URL');
    const input = parse(tenantId, gatherSchema, plainParams(params), 'Twilio gather webhook');
    const s = state.settings;
    const speech = input.SpeechResult?.trim() ?? '';
    const digits = input.Digits?.trim() ?? '';
    const unclear = speech !== '' && digits === '' && input.Confidence !== undefined && input.Confidence < s.minConfidence;
    if ((speech === '' && digits === '') || unclear) {
      if (retry < s.maxReprompts) {
        turns.inc({ tenant: tenantId, outcome: unclear ? 'low-confidence' : 'reprompt' });
        return sendTwiml(res, listenTwiml(script, turn, unclear ? s.lowConfidencePrompt : s.reprompt, retry + 1));
      }
      turns.inc({ tenant: tenantId, outcome: 'no-input-end' });
      return sendTwiml(res, hangupTwiml(script, s.noInputFarewell));
    }
    const text = speech || digits;
    if (isGoodbye(text, s.goodbyePhrases)) {
      turns.inc({ tenant: tenantId, outcome: 'goodbye' });
      return sendTwiml(res, hangupTwiml(script, s.farewell));
    }
    const result = await ctx.gateway.receive(
      {
        channel: TWILIO_VOICE_CHANNEL,
        tenantId,
        from: input.From,
        to: input.To,
        text,
        // Twilio gives no id per utterance; the turn in the action URL makes a retried request the same message.
        providerMessageId: `${input.CallSid}:${turn}`,
        threadKey: input.CallSid,
        raw: plainParams(params),
        attributes: {
          callSid: input.CallSid,
          turn,
          inputType: speech ? 'speech' : 'dtmf',
          ...(input.Confidence !== undefined ? { speechConfidence: input.Confidence } : {}),
        },
      },
      // Answers inside a call the person placed are not messages: an SMS opt-out does not silence them.
      { inline: { budgetMs: s.replyBudgetMs, confirm: true }, replyInSession: true },
    );
    const previous = result.status === 'duplicate' ? await calls.get(tenantId, input.CallSid) : undefined;
    const inline = result.inline;
    // A conversation handed to a person (`stage.handoff('human')`) transfers the call when there is a number to dial.
    const toHuman = result.handoff?.state === 'human' && s.handoffNumber !== undefined;
    const handoff = Boolean(result.annotations.handoff) || inline.some((r) => r.options.handoff === true) || toHuman || previous?.handoffTurn === turn;
    await calls.noteTurn(tenantId, input.CallSid, turn, result.conversationId, handoff);
    if (result.status === 'deferred' || (result.status === 'duplicate' && !inline.length && result.queued.length)) {
      turns.inc({ tenant: tenantId, outcome: 'deferred' });
      return sendTwiml(res, holdTwiml(script, turn + 1));
    }
    turns.inc({ tenant: tenantId, outcome: handoff ? 'handoff' : 'reply' });
    // Spoken only once the TwiML is written; a dropped request has the answer pushed into the call instead.
    await ctx.gateway.deliverInline(res, result, (replies) => sendTwiml(res, replyTwiml(script, turn + 1, replies.map((r) => r.text).join(' '), handoff)));
  }

  async function dialed(req: Request, res: Response) {
    const { params, state, script } = authenticate(req, 'voice-dial');
    const { turn } = parse(state.tenant.id, turnQuery, req.query, 'dial URL');
    const dial = parse(state.tenant.id, dialSchema, plainParams(params), 'Twilio dial webhook');
    if (dial.DialCallSid && dial.DialCallDuration !== undefined) {
      // The person's leg, once per DialCallSid (a retried action records nothing), in the caller's conversation.
      const call = await calls.get(state.tenant.id, dial.CallSid);
      await deps.recordMinutes({ tenantId: state.tenant.id, callSid: dial.DialCallSid, durationSeconds: dial.DialCallDuration, direction: 'outbound', conversationId: call?.conversationId ?? null, leg: 'transfer' });
    }
    if (dial.DialCallStatus === 'completed' || dial.DialCallStatus === 'answered') return sendTwiml(res, hangupTwiml(script, state.settings.farewell));
    turns.inc({ tenant: state.tenant.id, outcome: 'handoff-unanswered' });
    sendTwiml(res, listenTwiml(script, turn, state.settings.handoffUnavailable));
  }

  async function callStatus(req: Request, res: Response) {
    const { params, state, script } = authenticate(req, 'voice-status');
    const cb = parse(state.tenant.id, statusSchema, plainParams(params), 'Twilio call status callback');
    const recorded = await calls.recordStatus({ tenantId: state.tenant.id, callSid: cb.CallSid, from: cb.From, to: cb.To, status: cb.CallStatus, direction: cb.Direction, durationSeconds: cb.CallDuration, callbackBase: script.base });
    metrics.callStatuses.inc({ tenant: state.tenant.id, status: cb.CallStatus });
    // Billed once the call completed; a retried callback is the same ledger ref and records nothing.
    if (cb.CallStatus === 'completed' && cb.CallDuration !== undefined) {
      await deps.recordMinutes({
        tenantId: state.tenant.id,
        callSid: cb.CallSid,
        durationSeconds: cb.CallDuration,
        direction: callDirection(cb.Direction ?? recorded.direction) ?? 'inbound',
        country: cb.ToCountry && /^[A-Z]{2}$/u.test(cb.ToCountry) ? cb.ToCountry : undefined,
        conversationId: recorded.conversationId,
      });
    }
    if (recorded.status !== cb.CallStatus) ctx.log.debug({ tenant: state.tenant.id, late: cb.CallStatus, kept: recorded.status }, 'twilio-voice: a late call status did not replace a later one');
    res.status(204).end();
  }

  const twiml = { 200: { description: 'TwiML: what the call says and gathers next', contentType: 'text/xml' } };
  const contract = (path: string, summary: string, responses: RouteContract['responses']): RouteContract => ({
    method: 'post',
    path,
    auth: 'none',
    tags: ['webhooks'],
    summary,
    description: 'Called by Twilio during a call, never by integrators. Verified by `X-Twilio-Signature` over the public URL and the form.',
    body: z.record(z.string(), z.string()).describe("Twilio's form parameters (CallSid, From, To, SpeechResult, CallStatus...)"),
    bodyContentType: 'application/x-www-form-urlencoded',
    responses,
    errors: ['PARLEY_BAD_REQUEST', { code: 'PARLEY_FORBIDDEN', status: 403, description: 'Missing or invalid X-Twilio-Signature' }, { code: 'PARLEY_NOT_FOUND', status: 404, description: 'No tenant owns this Twilio number' }],
  });
  return (_router, { route }) => {
    route(contract('/twilio/voice', 'An incoming call (Twilio Voice webhook)', twiml), start);
    route(contract('/twilio/voice/gather', 'What the caller said (speech or keypad)', twiml), answer);
    route(contract('/twilio/voice/dial', 'How a transfer to a person ended', twiml), dialed);
    route(contract('/twilio/voice/status', 'A call status callback', { 204: { description: 'Recorded' } }), callStatus);
  };
}

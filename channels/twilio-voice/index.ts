/**
 * The `twilio-voice` channel: a phone call is one conversation with the tenant's pipeline. Twilio
 * posts the call to `/twilio/voice` (greeting, then `<Gather input="speech dtmf">`); each answer
 * posts to `/twilio/voice/gather?turn=N`, runs the pipeline and is spoken with `<Say>`; silence and
 * unclear speech are asked again, then the call ends politely; "goodbye" ends it; a stage asking for
 * a human (`handoff`) transfers the caller with `<Dial>`. Call status callbacks are recorded.
 *
 * Its own settings (not twilio-sms's) so a tenant can take calls without SMS; the credentials are
 * usually the same environment variables.
 */
import type { Request, Response } from 'express';
import type twilio from 'twilio';
import { z } from 'zod';
import { badRequest, ConfigError, definePlugin, hashAddress, notFound, type TenantInfo } from 'parley';
import { CallStore, callMigrations } from './calls.js';
import { createVoiceSender, type VoiceTenant } from './sender.js';
import { TWILIO_SMS_SHARED, type FormParams, type TwilioSmsShared } from './shared.js';
import { hangupTwiml, holdTwiml, isGoodbye, listenTwiml, replyTwiml, type VoiceScript } from './twiml.js';
import { TWILIO_VOICE_CHANNEL, optionsSchema, settingsSchema, type TwilioVoiceOptions, type TwilioVoiceSettings } from './types.js';

export { TWILIO_VOICE_CHANNEL } from './types.js';
export type { TwilioVoiceSettings, TwilioVoiceOptions } from './types.js';

interface TenantState {
  tenant: TenantInfo;
  settings: TwilioVoiceSettings;
  language: string;
  off: string | undefined;
}

const callSid = z.string().regex(/^CA[0-9a-fA-F]{32}$/u, 'a Twilio call SID (CA followed by 32 hex digits)');
const callAddress = z.string().min(1).max(128);
const callSchema = z.object({ CallSid: callSid, From: callAddress, To: callAddress, CallStatus: z.string().regex(/^[a-z-]{2,20}$/u).optional(), Direction: z.string().max(40).optional() });
const gatherSchema = callSchema.extend({
  SpeechResult: z.string().max(5000).optional(),
  Confidence: z.string().regex(/^(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$/u, 'a number between 0 and 1').transform(Number).optional(),
  Digits: z.string().regex(/^[0-9*#w]{0,64}$/u, 'DTMF digits').optional(),
});
const dialSchema = callSchema.extend({ DialCallStatus: z.string().regex(/^[a-z-]{2,20}$/u).optional() });
const statusSchema = callSchema.extend({ CallStatus: z.string().regex(/^[a-z-]{2,20}$/u), CallDuration: z.string().regex(/^\d{1,7}$/u).transform(Number).optional() });
const turnQuery = z.object({
  turn: z.coerce.number().int().min(1).max(10_000),
  retry: z.coerce.number().int().min(0).max(10).default(0),
});

function parse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw badRequest(`Invalid ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

const plain = (params: FormParams): Record<string, unknown> => Object.fromEntries(Object.keys(params).map((k) => [k, params[k]]));

export interface TwilioVoiceChannelDeps {
  createClient?: TwilioSmsShared['createTwilioClient'];
}

export function createTwilioVoiceChannel(deps: TwilioVoiceChannelDeps = {}) {
  return definePlugin({
    name: TWILIO_VOICE_CHANNEL,
    kind: 'channel',
    description: 'Phone calls through Twilio: speech and keypad turns run the tenant pipeline, replies are spoken, hand-off to a person with <Dial>.',
    optionsSchema,
    settingsSchema,
    dependencies: ['twilio-sms'],
    setup(ctx) {
      const options = ctx.options;
      const { createTwilioClient, describeTwilioError, metrics, UNKNOWN_TENANT, signatureGuard, externalBase, formParams, offReason, required } = ctx.inject(TWILIO_SMS_SHARED);
      const makeClient = deps.createClient ?? createTwilioClient;
      const turns = ctx.metrics.counter({
        name: 'parley_twilio_voice_turns_total',
        help: 'Voice turns by tenant and outcome (reply, deferred, reprompt, low-confidence, goodbye, handoff, no-input-end)',
        labelNames: ['tenant', 'outcome'] as const,
      });
      const callStatuses = ctx.metrics.counter({ name: 'parley_twilio_call_status_total', help: 'Call status callbacks by tenant and status', labelNames: ['tenant', 'status'] as const });
      const calls = new CallStore(ctx.db);
      const states = new Map<string, TenantState>();

      for (const { tenant, settings } of ctx.tenants()) {
        const off = offReason(settings, options, ctx.publicBaseUrl);
        states.set(tenant.id, { tenant, settings, language: settings.language ?? tenant.locale, off });
        if (off) {
          ctx.log.warn({ tenant: tenant.id, reason: off }, `twilio-voice is off for tenant "${tenant.id}": ${off}`);
          continue;
        }
        if (!settings.validateSignatures) {
          if (process.env.NODE_ENV === 'production') throw new ConfigError([`tenants (${tenant.id}).plugins.twilio-voice.validateSignatures: false is refused when NODE_ENV=production`]);
          ctx.log.warn({ tenant: tenant.id }, `twilio-voice: X-Twilio-Signature checking is OFF for tenant "${tenant.id}". Local development only.`);
        }
        for (const number of settings.numbers) ctx.claimAddress(TWILIO_VOICE_CHANNEL, number, tenant.id);
      }

      const active = (tenantId: string): VoiceTenant | undefined => {
        const s = states.get(tenantId);
        return s && !s.off ? { tenantId, settings: s.settings as VoiceTenant['settings'], language: s.language } : undefined;
      };
      const clients = new Map<string, { key: string; client: twilio.Twilio }>();
      const clientFor = (t: VoiceTenant) => {
        const key = `${t.settings.accountSid}\u0000${t.settings.authToken}`;
        const cached = clients.get(t.tenantId);
        if (cached?.key === key) return cached.client;
        const client = makeClient({ accountSid: t.settings.accountSid, authToken: t.settings.authToken, apiBaseUrl: options.apiBaseUrl, timeoutMs: options.requestTimeoutMs });
        clients.set(t.tenantId, { key, client });
        return client;
      };

      ctx.migrations(callMigrations);
      ctx.sender(createVoiceSender({ calls, metrics, describeTwilioError, client: clientFor, tenantState: (id) => active(id) ?? { off: states.get(id)?.off ?? 'the tenant has no twilio-voice settings' } }));
      ctx.dataSubjects(calls.dataSubjectProvider());
      ctx.health({
        name: TWILIO_VOICE_CHANNEL,
        critical: false,
        async check() {
          const on = [...states.values()].filter((s) => !s.off).length;
          return {
            ok: true,
            detail: on ? `on for ${on} tenant(s)` : 'off: no tenant has Twilio credentials and numbers',
            info: { tenants: Object.fromEntries([...states].map(([id, s]) => [id, s.off ? `off: ${s.off}` : 'on'])) },
          };
        },
      });

      const policy = { publicBaseUrl: ctx.publicBaseUrl, trustProxy: options.trustProxy };
      const guard = signatureGuard({ log: ctx.log, policy });

      /** Resolves the tenant from the number called, counts the request and checks the signature. */
      function authenticate(req: Request, endpoint: 'voice' | 'voice-gather' | 'voice-dial' | 'voice-status'): { params: FormParams; state: TenantState & { settings: VoiceTenant['settings'] }; script: VoiceScript } {
        const params = formParams(req);
        const to = required(params, 'To');
        const tenantId = ctx.resolveTenant(TWILIO_VOICE_CHANNEL, to)?.id;
        const state = tenantId ? states.get(tenantId) : undefined;
        if (!state || state.off) {
          metrics.requests.inc({ tenant: UNKNOWN_TENANT, endpoint });
          ctx.log.warn({ to: hashAddress(to), endpoint }, 'twilio-voice: a call webhook for a number no tenant owns');
          throw notFound('No tenant owns this Twilio number');
        }
        metrics.requests.inc({ tenant: state.tenant.id, endpoint });
        guard(req, params, { tenantId: state.tenant.id, authToken: state.settings.authToken!, validate: state.settings.validateSignatures, endpoint });
        return { params, state: state as TenantState & { settings: VoiceTenant['settings'] }, script: { base: externalBase(req, policy), settings: state.settings, language: state.language } };
      }

      const malformed = <T>(tenantId: string, fn: () => T): T => {
        try {
          return fn();
        } catch (error) {
          metrics.errors.inc({ tenant: tenantId, code: 'malformed' });
          throw error;
        }
      };

      const sendTwiml = (res: Response, xml: string) => res.status(200).type('text/xml').send(xml);

      async function start(req: Request, res: Response) {
        const { params, state, script } = authenticate(req, 'voice');
        const call = malformed(state.tenant.id, () => parse(callSchema, plain(params), 'Twilio voice webhook'));
        await calls.recordStatus({ tenantId: state.tenant.id, callSid: call.CallSid, from: call.From, to: call.To, status: call.CallStatus ?? 'in-progress', direction: call.Direction, callbackBase: script.base });
        const greeting = state.settings.greeting ?? `Hello, you've reached ${state.tenant.name}. How can I help you today?`;
        sendTwiml(res, listenTwiml(script, 1, greeting));
      }

      async function answer(req: Request, res: Response) {
        const { params, state, script } = authenticate(req, 'voice-gather');
        const tenantId = state.tenant.id;
        const { turn, retry } = malformed(tenantId, () => parse(turnQuery, req.query, 'gather URL'));
        const input = malformed(tenantId, () => parse(gatherSchema, plain(params), 'Twilio gather webhook'));
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
            raw: plain(params),
            attributes: {
              callSid: input.CallSid,
              turn,
              inputType: speech ? 'speech' : 'dtmf',
              ...(input.Confidence !== undefined ? { speechConfidence: input.Confidence } : {}),
            },
          },
          // Answers inside a call the person placed are not messages: an SMS opt-out does not silence them.
          { inline: { budgetMs: s.replyBudgetMs }, replyInSession: true },
        );
        const previous = result.status === 'duplicate' ? await calls.get(tenantId, input.CallSid) : undefined;
        const inline = result.inline;
        const handoff = Boolean(result.annotations.handoff) || inline.some((r) => r.options.handoff === true) || previous?.handoffTurn === turn;
        await calls.noteTurn(tenantId, input.CallSid, turn, result.conversationId, handoff);
        if (result.status === 'deferred' || (result.status === 'duplicate' && !inline.length && result.queued.length)) {
          turns.inc({ tenant: tenantId, outcome: 'deferred' });
          return sendTwiml(res, holdTwiml(script, turn + 1));
        }
        turns.inc({ tenant: tenantId, outcome: handoff ? 'handoff' : 'reply' });
        sendTwiml(res, replyTwiml(script, turn + 1, inline.map((r) => r.text).join(' '), handoff));
      }

      async function dialed(req: Request, res: Response) {
        const { params, state, script } = authenticate(req, 'voice-dial');
        const { turn } = malformed(state.tenant.id, () => parse(turnQuery, req.query, 'dial URL'));
        const dial = malformed(state.tenant.id, () => parse(dialSchema, plain(params), 'Twilio dial webhook'));
        if (dial.DialCallStatus === 'completed' || dial.DialCallStatus === 'answered') return sendTwiml(res, hangupTwiml(script, state.settings.farewell));
        turns.inc({ tenant: state.tenant.id, outcome: 'handoff-unanswered' });
        sendTwiml(res, listenTwiml(script, turn, state.settings.handoffUnavailable));
      }

      async function callStatus(req: Request, res: Response) {
        const { params, state, script } = authenticate(req, 'voice-status');
        const cb = malformed(state.tenant.id, () => parse(statusSchema, plain(params), 'Twilio call status callback'));
        const recorded = await calls.recordStatus({ tenantId: state.tenant.id, callSid: cb.CallSid, from: cb.From, to: cb.To, status: cb.CallStatus, direction: cb.Direction, durationSeconds: cb.CallDuration, callbackBase: script.base });
        callStatuses.inc({ tenant: state.tenant.id, status: cb.CallStatus });
        if (recorded.status !== cb.CallStatus) ctx.log.debug({ tenant: state.tenant.id, late: cb.CallStatus, kept: recorded.status }, 'twilio-voice: a late call status did not replace a later one');
        res.status(204).end();
      }

      ctx.routes((router) => {
        router.post('/twilio/voice', start);
        router.post('/twilio/voice/gather', answer);
        router.post('/twilio/voice/dial', dialed);
        router.post('/twilio/voice/status', callStatus);
      });
    },
  });
}

export default createTwilioVoiceChannel();

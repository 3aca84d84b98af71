/**
 * The `twilio-sms` channel: SMS, MMS and WhatsApp-through-Twilio. `POST /twilio/sms` takes inbound
 * messages (signature checked, deduplicated on MessageSid by the kernel), answers consent keywords
 * through the `twilio-sms.consent` stage (the channel's first stage: it runs before every tenant's
 * pipeline), and replies inline in TwiML when the pipeline is quick or through the REST API via the
 * outbox when it is not. `POST /twilio/status` records delivery.
 */
import type { Request, Response } from 'express';
import type twilio from 'twilio';
import { Batcher, ConfigError, definePlugin, hashAddress, notFound, TOKENS, type InboundDraft, type OutboundMessage, type TenantInfo } from 'parley';
import { createTwilioClient, type TwilioCallFailure } from './client.js';
import { consentStage, matchKeyword, resolveConsentPolicy, type ConsentPolicy } from './consent.js';
import { SegmentLedger, ledgerMigrations, usageOf, type LedgerEntry } from './ledger.js';
import { UNKNOWN_TENANT, twilioMetrics } from './metrics.js';
import { fitToSegments } from './segments.js';
import { TWILIO_SMS_SHARED, twilioSmsShared } from './shared.js';
import { createSmsSender, type ActiveTenant } from './sender.js';
import { webhookUrl } from './signature.js';
import { emptyTwiml, messagingTwiml, TwimlError, type TwimlReply } from './twiml.js';
import { CONSENT_STAGE, TWILIO_SMS_CHANNEL, optionsSchema, settingsSchema, type TwilioSmsOptions, type TwilioSmsSettings } from './types.js';
import { createSignatureGuard, offReason, formParams, outboxStatusOf, parseInboundSms, parseStatusCallback, required, single } from './webhook.js';

export { TWILIO_SMS_CHANNEL, CONSENT_STAGE } from './types.js';
export type { TwilioSmsSettings, TwilioSmsOptions } from './types.js';

interface TenantState {
  tenant: TenantInfo;
  settings: TwilioSmsSettings;
  policy: ConsentPolicy;
  /** Why the channel is off for this tenant; undefined when it is on. */
  off: string | undefined;
}

export { offReason } from './webhook.js';

export interface TwilioSmsChannelDeps {
  /** Builds the SDK client of a tenant; by default the real SDK, redirected by `options.apiBaseUrl`. */
  createClient?: typeof createTwilioClient;
}

/**
 * Tenants that list the consent stage in their own pipeline: it runs by itself before every
 * pipeline now, and listing it would run it twice.
 */
export function consentStageListed(tenants: readonly Pick<TenantInfo, 'id' | 'pipeline'>[]): string[] {
  return tenants
    .filter((t) => t.pipeline.includes(CONSENT_STAGE))
    .map(
      (t) =>
        `tenants (${t.id}).pipeline: remove "${CONSENT_STAGE}": it now runs by itself before every tenant's pipeline for twilio-sms messages, so STOP/HELP never reach other stages (now: [${t.pipeline.join(', ')}])`,
    );
}

/**
 * @example
 * // parley.yaml
 * // tenants: [{ id: acme, pipeline: [keyword-replies],
 * //   plugins: { twilio-sms: { accountSid: ${TWILIO_ACCOUNT_SID}, authToken: ${TWILIO_AUTH_TOKEN}, numbers: [+15551234567] } } }]
 */
export function createTwilioSmsChannel(deps: TwilioSmsChannelDeps = {}) {
  const makeClient = deps.createClient ?? createTwilioClient;
  return definePlugin({
    name: TWILIO_SMS_CHANNEL,
    kind: 'channel',
    description: 'SMS, MMS and WhatsApp through Twilio: signed webhooks, consent keywords, inline TwiML or REST replies, delivery status.',
    optionsSchema,
    settingsSchema,
    setup(ctx) {
      const options = ctx.options;
      const metrics = twilioMetrics(ctx.metrics);
      ctx.provide(TWILIO_SMS_SHARED, twilioSmsShared(metrics));
      const ledger = new SegmentLedger(ctx.db);
      const consent = () => ctx.gateway.consent;
      const states = new Map<string, TenantState>();
      const authFailures = new Map<string, string>();

      // Every tenant, not only those with twilio-sms settings: any of them could list the stage.
      const listed = consentStageListed(ctx.inject(TOKENS.Tenants).list());
      if (listed.length) throw new ConfigError(listed);

      for (const { tenant, settings } of ctx.tenants()) {
        const policy = resolveConsentPolicy(settings.consent, tenant);
        const off = offReason(settings, options, ctx.publicBaseUrl);
        states.set(tenant.id, { tenant, settings, policy, off });
        if (off) {
          ctx.log.warn({ tenant: tenant.id, reason: off }, `twilio-sms is off for tenant "${tenant.id}": ${off}`);
          continue;
        }
        if (!settings.validateSignatures) {
          if (process.env.NODE_ENV === 'production') {
            throw new ConfigError([`tenants (${tenant.id}).plugins.twilio-sms.validateSignatures: false is refused when NODE_ENV=production`]);
          }
          ctx.log.warn({ tenant: tenant.id }, `twilio-sms: X-Twilio-Signature checking is OFF for tenant "${tenant.id}". Anyone can post messages as any number. Local development only.`);
        }
        if (!settings.consent.contact) {
          ctx.log.warn({ tenant: tenant.id }, 'twilio-sms: consent.contact is not set; CTIA expects HELP replies to name a phone number or email');
        }
        for (const number of settings.numbers) ctx.claimAddress(TWILIO_SMS_CHANNEL, number, tenant.id);
      }
      const anyOn = [...states.values()].some((s) => !s.off);
      if (anyOn && !ctx.publicBaseUrl) {
        ctx.log.warn('twilio-sms: server.publicBaseUrl is not set, so signatures are checked against the URL requests arrive on and REST sends ask for no status callbacks. Behind a proxy or tunnel, set it.');
      }

      const activeOf = (tenantId: string): ActiveTenant | undefined => {
        const s = states.get(tenantId);
        return s && !s.off ? { tenantId, settings: s.settings as ActiveTenant['settings'] } : undefined;
      };
      const clients = new Map<string, { key: string; client: twilio.Twilio }>();
      const clientFor = (t: ActiveTenant): twilio.Twilio => {
        const key = `${t.settings.accountSid}\u0000${t.settings.authToken}`;
        const cached = clients.get(t.tenantId);
        if (cached?.key === key) return cached.client;
        const client = makeClient({ accountSid: t.settings.accountSid, authToken: t.settings.authToken, apiBaseUrl: options.apiBaseUrl, timeoutMs: options.requestTimeoutMs });
        clients.set(t.tenantId, { key, client });
        return client;
      };
      const onAuthFailure = (tenantId: string, failure: TwilioCallFailure) => {
        authFailures.set(tenantId, failure.message);
        ctx.alerts.raise({ key: 'twilio-sms.credentials', tenantId, severity: 'critical', summary: `Twilio refused the credentials of tenant "${tenantId}": replies cannot be sent`, details: { error: failure.message } });
      };

      ctx.migrations(ledgerMigrations);
      ctx.stage(consentStage({ consent, policyFor: (tenantId) => states.get(tenantId)?.policy }));
      // Before every tenant's pipeline, for this channel only (recovered messages too).
      ctx.channelStages(TWILIO_SMS_CHANNEL, [CONSENT_STAGE]);
      ctx.sender(
        createSmsSender({
          log: ctx.log,
          metrics,
          ledger,
          consent,
          tenantState: (tenantId) => activeOf(tenantId) ?? { off: states.get(tenantId)?.off ?? 'the tenant has no twilio-sms settings' },
          client: clientFor,
          statusCallbackUrl: ctx.publicBaseUrl ? webhookUrl(ctx.publicBaseUrl, options.statusCallbackPath) : undefined,
          onAuthFailure,
        }),
      );
      ctx.dataSubjects(ledger.dataSubjectProvider());
      ctx.health({
        name: TWILIO_SMS_CHANNEL,
        critical: false,
        async check() {
          const tenants = Object.fromEntries([...states].map(([id, s]) => [id, s.off ? `off: ${s.off}` : authFailures.has(id) ? `credentials refused: ${authFailures.get(id)}` : 'on']));
          const on = [...states.values()].filter((s) => !s.off).length;
          return {
            ok: authFailures.size === 0,
            detail: authFailures.size ? `Twilio refused the credentials of ${[...authFailures.keys()].join(', ')}` : on ? `on for ${on} tenant(s)` : 'off: no tenant has Twilio credentials and numbers',
            info: { tenants },
          };
        },
      });

      // Webhooks arriving together share one ledger statement (the ledger was a second write per message).
      const ledgerWriter = new Batcher<readonly LedgerEntry[], LedgerEntry[]>(async (groups) => {
        const fresh = new Set((await ledger.recordMany(groups.flat())).map((e) => `${e.ref}\u0000${e.part}`));
        return groups.map((g) => g.filter((e) => fresh.has(`${e.ref}\u0000${e.part}`)));
      });

      const guard = createSignatureGuard({ log: ctx.log, metrics, policy: { publicBaseUrl: ctx.publicBaseUrl, trustProxy: options.trustProxy } });

      /**
       * Records message parts in the ledger and counts the new ones (a retried webhook counts nothing).
       * Bookkeeping must never cost a customer their reply: a failed write is logged and counted.
       */
      async function account(tenantId: string, entries: readonly LedgerEntry[]): Promise<void> {
        let fresh: LedgerEntry[];
        try {
          fresh = await ledgerWriter.submit(entries);
        } catch (error) {
          metrics.errors.inc({ tenant: tenantId, code: 'ledger' });
          ctx.log.error({ err: error, tenant: tenantId }, 'twilio-sms: could not record segments; the message itself is unaffected');
          return;
        }
        for (const entry of fresh) {
          if (entry.direction === 'out') metrics.sends.inc({ tenant: tenantId, status: 'inline' });
          metrics.segments.inc({ tenant: tenantId, direction: entry.direction, encoding: entry.encoding }, entry.segments);
          metrics.cost.inc({ tenant: tenantId, direction: entry.direction, currency: entry.currency }, entry.cost);
        }
      }

      /** Replies as TwiML, each fitted to the segment budget, and the ledger entries of their parts. */
      function inlineTwiml(state: TenantState, replies: readonly OutboundMessage[]): { xml: string; entries: LedgerEntry[] } {
        const messages: TwimlReply[] = [];
        const entries: LedgerEntry[] = [];
        for (const reply of replies) {
          const texts = reply.text === '' ? [''] : fitToSegments(reply.text, state.settings.maxSegments, state.settings.overflow);
          for (const [part, text] of texts.entries()) {
            const mediaUrls = part === 0 ? reply.media.map((m) => m.url) : [];
            if (text.trim() === '' && !mediaUrls.length) continue;
            messages.push({ text, mediaUrls });
            entries.push({ tenantId: state.tenant.id, ref: reply.id, part, direction: 'out', via: 'inline', address: reply.to, messageSid: null, ...usageOf(text, mediaUrls.length, state.settings) });
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

      function sendTwiml(res: Response, xml: string): void {
        res.status(200).type('text/xml').send(xml);
      }

      async function inbound(req: Request, res: Response): Promise<void> {
        const params = formParams(req);
        const to = required(params, 'To');
        const tenantId = ctx.resolveTenant(TWILIO_SMS_CHANNEL, to)?.id;
        const state = tenantId ? states.get(tenantId) : undefined;
        if (!state || state.off) {
          metrics.requests.inc({ tenant: UNKNOWN_TENANT, endpoint: 'sms' });
          ctx.log.warn({ to: hashAddress(to) }, 'twilio-sms: a message arrived for a number no tenant owns');
          throw notFound('No tenant owns this Twilio number');
        }
        const { tenant, settings } = state;
        metrics.requests.inc({ tenant: tenant.id, endpoint: 'sms' });
        guard(req, params, { tenantId: tenant.id, authToken: settings.authToken!, validate: settings.validateSignatures, endpoint: 'sms' });
        let sms;
        try {
          sms = parseInboundSms(params);
        } catch (error) {
          metrics.errors.inc({ tenant: tenant.id, code: 'malformed' });
          throw error;
        }
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
        const result = await ctx.gateway.receive(draft, { inline: { budgetMs: settings.replyBudgetMs } });
        if (result.status === 'deferred') ctx.log.info({ tenant: tenant.id, inboundId: result.inboundId, budgetMs: settings.replyBudgetMs }, 'twilio-sms: pipeline slower than the reply budget; replying through the REST API');
        // A retried webhook (duplicate) gets its stored inline replies back, blocked ones included: never send those.
        const { xml, entries } = inlineTwiml(state, result.inline.filter((r) => r.status !== 'blocked'));
        await account(tenant.id, [inboundEntry, ...entries]);
        sendTwiml(res, xml);
      }

      async function status(req: Request, res: Response): Promise<void> {
        const params = formParams(req);
        const from = single(params, 'From');
        const accountSid = single(params, 'AccountSid');
        const byNumber = from ? ctx.resolveTenant(TWILIO_SMS_CHANNEL, from)?.id : undefined;
        const candidates = [...states.values()].filter((s) => !s.off && (s.tenant.id === byNumber || (accountSid !== undefined && s.settings.accountSid === accountSid)));
        candidates.sort((a, b) => Number(b.tenant.id === byNumber) - Number(a.tenant.id === byNumber));
        const state = candidates[0];
        if (!state) {
          metrics.requests.inc({ tenant: UNKNOWN_TENANT, endpoint: 'status' });
          ctx.log.warn({ from: from ? hashAddress(from) : undefined }, 'twilio-sms: a status callback for a number or account no tenant owns');
          throw notFound('No tenant owns this Twilio number or account');
        }
        const tenantId = state.tenant.id;
        metrics.requests.inc({ tenant: tenantId, endpoint: 'status' });
        guard(req, params, { tenantId, authToken: state.settings.authToken!, validate: state.settings.validateSignatures, endpoint: 'status' });
        let cb;
        try {
          cb = parseStatusCallback(params);
        } catch (error) {
          metrics.errors.inc({ tenant: tenantId, code: 'malformed' });
          throw error;
        }
        metrics.deliveries.inc({ tenant: tenantId, status: cb.status });
        if (cb.errorCode) metrics.errors.inc({ tenant: tenantId, code: cb.errorCode });
        if (cb.errorCode === '21610' && cb.to) {
          await consent().set({ tenantId, address: cb.to, status: 'opted-out', source: 'twilio-21610', channel: TWILIO_SMS_CHANNEL, detail: `status callback for ${cb.messageSid}` });
        }
        const outboxStatus = outboxStatusOf(cb.status);
        if (!outboxStatus) {
          ctx.log.debug({ tenant: tenantId, status: cb.status }, 'twilio-sms: status callback with a status the outbox does not track');
          res.status(204).end();
          return;
        }
        // Only tenants on the account whose token just verified the signature may be updated.
        for (const candidate of candidates.filter((c) => c.settings.authToken === state.settings.authToken)) {
          const providerMessageId = await ledger.primarySid(candidate.tenant.id, cb.messageSid);
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

      ctx.routes((router) => {
        router.post('/twilio/sms', inbound);
        router.post('/twilio/status', status);
      });
    },
  });
}

export default createTwilioSmsChannel();

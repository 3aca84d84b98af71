/**
 * `GET/POST /whatsapp/cloud/webhook`: Meta's verification handshake, then signed webhooks whose events
 * are routed by phone number id. Messages are recorded (their pipelines go on in the background);
 * statuses move outbox items, tried again shortly when Meta reports a message before our send stored
 * its wamid.
 */
import type { Request, Router } from 'express';
import { badRequest, forbidden, isPoisonInput, ParleyError, poisonReason, type PluginContext, type RouteHelpers } from 'parley';
import { z } from 'zod';
import { toE164, toInboundDraft } from './inbound.js';
import type { CloudMetrics } from './metrics.js';
import { MalformedPayloadError, parseCloudWebhook, type CloudEvent, type CloudStatusEvent } from './payload.js';
import { sameText, verifyWithAnySecret } from './signature.js';
import type { CloudTenants } from './tenants.js';
import { CHANNEL } from './types.js';
import type { RecordBilled } from './usage.js';

export const WEBHOOK_PATH = '/whatsapp/cloud/webhook';

/** Delays before a status whose message is not in the outbox yet is tried again. */
const STATUS_RETRY_DELAYS_MS = [500, 2_000, 10_000];

export interface CloudWebhookDeps {
  ctx: Pick<PluginContext, 'log' | 'gateway' | 'background'>;
  metrics: CloudMetrics;
  tenants: CloudTenants;
  /** Records what a status bills (its `pricing`) in the usage ledger, once per conversation or message. */
  recordBilled: RecordBilled;
}

/** The webhook routes, and `stop` to cancel status retries (the kernel waits for events still being recorded). */
export function createCloudWebhook(deps: CloudWebhookDeps) {
  const { ctx, tenants } = deps;
  const { webhooks, signatureFailures, events } = deps.metrics;

  const timers = new Set<NodeJS.Timeout>();
  let stopping = false;

  async function handleStatus(event: CloudStatusEvent, tenantId: string, attempt = 0): Promise<void> {
    // Billed whether or not Parley knows the message yet; a failure answers 503 and Meta retries.
    if (attempt === 0) await deps.recordBilled(event, tenantId);
    const first = event.errors?.[0];
    const result = await ctx.gateway.recordDeliveryStatus({
      tenantId,
      channel: CHANNEL,
      providerMessageId: event.wamid,
      status: event.status,
      errorCode: first ? String(first.code) : null,
      error: first ? [first.title, first.details].filter(Boolean).join(': ') : null,
      at: event.timestamp,
      raw: event.raw,
    });
    if (result.outboxId) {
      events.inc({ tenant: tenantId, kind: 'status', result: result.updated ? 'applied' : 'stale' });
      return;
    }
    // Meta can report `sent` before our send call has stored the wamid: try again shortly.
    const delay = STATUS_RETRY_DELAYS_MS[attempt];
    if (delay === undefined || stopping) {
      events.inc({ tenant: tenantId, kind: 'status', result: 'unknown-message' });
      ctx.log.debug({ tenant: tenantId, status: event.status }, 'status for a message Parley did not send; ignored');
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      ctx.background(
        handleStatus(event, tenantId, attempt + 1).catch((error: unknown) => ctx.log.error({ err: error, tenant: tenantId }, 'could not record a WhatsApp status')),
        'record a WhatsApp status again',
      );
    }, delay);
    timer.unref();
    timers.add(timer);
  }

  async function handleEvent(event: CloudEvent, signedBy: string): Promise<void> {
    const owner = tenants.byPhoneNumberId(event.phoneNumberId);
    if (event.kind === 'unsupported') {
      events.inc({ tenant: owner?.tenantId ?? 'unknown', kind: 'unsupported', result: 'ignored' });
      ctx.log.info({ tenant: owner?.tenantId, reason: event.reason }, 'unsupported WhatsApp Cloud event ignored');
      return;
    }
    if (!owner) {
      events.inc({ tenant: 'unknown', kind: event.kind, result: 'unknown-number' });
      ctx.log.warn({ phoneNumberId: event.phoneNumberId }, 'WhatsApp Cloud event for a phone number id no tenant configured');
      return;
    }
    if (owner.settings.appSecret !== signedBy) {
      // Signed by another configured app: it may not speak for this tenant's number.
      events.inc({ tenant: owner.tenantId, kind: event.kind, result: 'wrong-app' });
      ctx.log.warn({ tenant: owner.tenantId }, "WhatsApp Cloud event signed by another app than the tenant's; ignored");
      return;
    }
    if (event.unstorable) throw event.unstorable;
    if (event.kind === 'status') return handleStatus(event, owner.tenantId);
    // Answers once the message is stored; its pipeline goes on, and the replies go through the outbox.
    const result = await ctx.gateway.receive(toInboundDraft(event, owner.tenantId), { until: 'recorded' });
    events.inc({ tenant: owner.tenantId, kind: 'message', result: result.status === 'deferred' ? 'recorded' : result.status });
  }

  /** Keeps the webhook (addresses hashed) for the operator, so Meta can get its 200 and stop retrying. */
  async function parkPoison(payload: unknown, poison: { event: CloudEvent; error: unknown }[]): Promise<void> {
    const tenantIds = new Set(poison.map(({ event }) => (event.phoneNumberId ? tenants.byPhoneNumberId(event.phoneNumberId)?.tenantId : undefined)));
    const [tenantId] = tenantIds.size === 1 ? [...tenantIds] : [undefined];
    const reason = poison.map(({ event, error }) => `${event.kind}: ${poisonReason(error)}`).join('; ');
    const addresses = poison.flatMap(({ event }) => (event.kind === 'message' ? [toE164(event.from), toE164(event.displayPhoneNumber)] : event.kind === 'status' ? [toE164(event.recipientId)] : []));
    await ctx.gateway.park({ channel: CHANNEL, tenantId, reason, payload, addresses });
    for (const { event } of poison) events.inc({ tenant: tenantId ?? 'unknown', kind: event.kind, result: 'parked' });
  }

  const description = 'Called by Meta, never by integrators. The GET is the subscription handshake (`hub.verify_token`); each POST is verified by `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret).';
  function routes(_router: Router, { route }: RouteHelpers): void {
    route(
      {
        method: 'get',
        path: WEBHOOK_PATH,
        auth: 'none',
        tags: ['webhooks'],
        summary: "Meta's webhook verification handshake",
        description,
        query: z.object({ 'hub.mode': z.literal('subscribe'), 'hub.verify_token': z.string(), 'hub.challenge': z.string() }),
        responses: { 200: { description: 'The challenge, echoed', contentType: 'text/plain' } },
        errors: [{ code: 'PARLEY_FORBIDDEN', status: 403, description: 'Wrong hub.mode or hub.verify_token' }],
      },
      (req, res) => {
        const mode = query(req, 'hub.mode');
        const token = query(req, 'hub.verify_token');
        const challenge = query(req, 'hub.challenge');
        if (mode !== 'subscribe' || token === undefined || challenge === undefined || !tenants.verifyTokens.some((t) => sameText(t, token))) {
          throw forbidden('Webhook verification failed: wrong hub.mode or hub.verify_token');
        }
        res.status(200).type('text/plain').set('x-content-type-options', 'nosniff').send(challenge);
      },
    );

    route(
      {
        method: 'post',
        path: WEBHOOK_PATH,
        auth: 'none',
        tags: ['webhooks'],
        summary: 'Messages and delivery statuses from the WhatsApp Cloud API',
        description,
        body: z.looseObject({ object: z.string(), entry: z.array(z.unknown()) }).describe("Meta's webhook payload"),
        responses: { 200: { description: 'Recorded (or parked when it cannot be stored)', schema: z.object({ ok: z.literal(true) }) } },
        errors: [
          'PARLEY_BAD_REQUEST',
          { code: 'PARLEY_FORBIDDEN', status: 403, description: 'Invalid X-Hub-Signature-256' },
          { code: 'PARLEY_STORAGE_UNAVAILABLE', status: 503, description: 'Not recorded: Meta delivers it again' },
        ],
      },
      async (req, res) => {
        const match = verifyWithAnySecret(req.rawBody, req.get('x-hub-signature-256'), tenants.appSecrets);
        if (!match.ok) {
          webhooks.inc({ result: 'forged' });
          signatureFailures.inc({ reason: match.reason });
          ctx.log.warn({ reason: match.reason, reqId: req.requestId }, 'WhatsApp Cloud webhook refused: bad signature');
          throw forbidden('Invalid X-Hub-Signature-256');
        }
        let parsed: CloudEvent[];
        try {
          parsed = parseCloudWebhook(req.body);
        } catch (error) {
          if (!(error instanceof MalformedPayloadError)) throw error;
          webhooks.inc({ result: 'malformed' });
          ctx.log.warn({ reason: error.reason, reqId: req.requestId }, 'malformed WhatsApp Cloud webhook');
          throw badRequest('Not a WhatsApp Cloud webhook payload');
        }
        webhooks.inc({ result: 'ok' });
        // In payload order: a person's messages are recorded, and their pipelines started, in the
        // order they were written. Each event waits only for its write, never for a pipeline, so
        // Meta gets its 200 fast; replies go out through the outbox.
        const failures: unknown[] = [];
        const poison: { event: CloudEvent; error: unknown }[] = [];
        const recording = (async () => {
          for (const event of parsed) {
            await handleEvent(event, match.appSecret).catch((error: unknown) => {
              // Input no retry can store (NUL-free text is already repaired by the kernel): parked below.
              if (isPoisonInput(error)) return void poison.push({ event, error });
              failures.push(error);
              ctx.log.error({ err: error, kind: event.kind }, 'WhatsApp Cloud event failed');
              events.inc({ tenant: event.phoneNumberId ? (tenants.byPhoneNumberId(event.phoneNumberId)?.tenantId ?? 'unknown') : 'unknown', kind: event.kind, result: 'error' });
            });
          }
        })();
        ctx.background(recording, 'record the events of a WhatsApp Cloud webhook');
        await recording;
        if (poison.length) await parkPoison(req.rawBody ?? req.body, poison);
        if (failures.length) {
          // Not a 200, so Meta delivers the webhook again; events already recorded are deduplicated.
          const first = failures[0];
          throw first instanceof ParleyError && first.status >= 500
            ? first
            : new ParleyError('PARLEY_STORAGE_UNAVAILABLE', `${failures.length} event(s) of this webhook could not be recorded; Meta will deliver it again`, 503, { cause: first });
        }
        res.status(200).json({ ok: true });
      },
    );
  }

  return {
    routes,
    stop(): void {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

function query(req: Request, name: string): string | undefined {
  const value = req.query[name];
  return typeof value === 'string' ? value : undefined;
}

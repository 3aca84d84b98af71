/**
 * The end-user side: a person writes a configured phrase ("DELETE MY DATA", "BORRAR MIS DATOS") on
 * their channel; the stage records an `unverified` request for that address, confirms receipt and
 * sends a one-time code to the same address (the reply goes where the message came from). Nothing is
 * exported or erased until the person sends the code back: then the request goes on to approval (or
 * straight to the queue when the tenant needs none). Codes are stored as hashes, expire, and lock the
 * request after too many wrong tries. The phrase and the code never reach later stages.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { StageDefinition } from 'parley';
import type { RequestStore } from './store.js';
import type { DsarMetrics } from './metrics.js';
import { dueDate, type DsarSettings, type RequestType } from './types.js';

export const DSAR_STAGE = 'dsar';

export function normalisePhrase(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toUpperCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

function hashCode(requestId: string, code: string): string {
  return createHash('sha256').update(`${requestId}:${code}`).digest('hex');
}

const TEXT = {
  en: {
    receipt: (type: RequestType, ref: string, ttl: number, code: string) =>
      `We received your request to ${type === 'erase' ? 'delete' : 'send you'} your data (ref ${ref}). To confirm it is you, reply with this code within ${ttl} minutes: ${code}`,
    verified: (type: RequestType) => (type === 'erase' ? 'Thank you, your request is confirmed. Your data will be deleted; this is the last message about it.' : 'Thank you, your request is confirmed. We will send you a download link when your data is ready.'),
    wrong: 'That code is not right. Please reply with the code we sent you.',
    locked: 'Too many wrong codes: the request was cancelled. Send your request again to get a new code.',
    expired: 'That code has expired. Send your request again to get a new code.',
    link: (url: string) => `Your data is ready. Download it once, within the time shown on the page: ${url}`,
  },
  es: {
    receipt: (type: RequestType, ref: string, ttl: number, code: string) =>
      `Recibimos su solicitud para ${type === 'erase' ? 'borrar' : 'enviarle'} sus datos (ref ${ref}). Para confirmar que es usted, responda con este código en ${ttl} minutos: ${code}`,
    verified: (type: RequestType) => (type === 'erase' ? 'Gracias, su solicitud está confirmada. Sus datos serán borrados; este es el último mensaje al respecto.' : 'Gracias, su solicitud está confirmada. Le enviaremos un enlace de descarga cuando sus datos estén listos.'),
    wrong: 'El código no es correcto. Responda con el código que le enviamos.',
    locked: 'Demasiados códigos incorrectos: la solicitud fue cancelada. Envíe su solicitud de nuevo para recibir un código nuevo.',
    expired: 'El código ha vencido. Envíe su solicitud de nuevo para recibir un código nuevo.',
    link: (url: string) => `Sus datos están listos. Descárguelos una sola vez, dentro del plazo indicado: ${url}`,
  },
};

export function languageOf(text: string, locale: string): 'en' | 'es' {
  if (/\b(MIS|DATOS|BORRAR|ELIMINAR|ENVIAR|ENVIA)\b/.test(normalisePhrase(text))) return 'es';
  return locale.toLowerCase().startsWith('es') ? 'es' : 'en';
}

export function linkText(lang: 'en' | 'es', url: string): string {
  return TEXT[lang].link(url);
}

export function dsarStage(deps: { store: RequestStore; metrics: DsarMetrics; enqueue(requestId: string): Promise<void> }): StageDefinition<DsarSettings> {
  return {
    name: DSAR_STAGE,
    // A person may ask while a human has the conversation.
    runsDuringHandoff: true,
    async handle(stage, next) {
      const settings = stage.settings.endUser;
      if (!settings.enabled) return next();
      const { message, tenant } = stage;
      const said = normalisePhrase(message.text);
      const lang = languageOf(message.text, tenant.locale);

      if (/^\d{6}$/.test(said)) {
        const pending = await deps.store.unverifiedFor(tenant.id, message.from);
        if (pending) {
          const t = TEXT[pending.language];
          if (pending.expired) {
            await deps.store.transition(pending.id, ['unverified'], 'expired', 'subject', 'code-expired');
            deps.metrics.verifications.inc({ outcome: 'expired' });
            stage.reply(t.expired);
            return stage.stop('dsar: code expired');
          }
          const a = Buffer.from(hashCode(pending.id, said), 'hex');
          const b = Buffer.from(pending.codeHash, 'hex');
          if (a.length !== b.length || !timingSafeEqual(a, b)) {
            const attempts = await deps.store.countAttempt(pending.id);
            if (attempts >= settings.maxAttempts) {
              await deps.store.transition(pending.id, ['unverified'], 'expired', 'subject', 'code-locked', { detail: { attempts } });
              deps.metrics.verifications.inc({ outcome: 'locked' });
              stage.reply(t.locked);
            } else {
              deps.metrics.verifications.inc({ outcome: 'wrong' });
              stage.reply(t.wrong);
            }
            return stage.stop('dsar: wrong code');
          }
          await deps.store.clearCode(pending.id);
          const needsApproval = pending.type === 'erase' ? stage.settings.erasure.requireApproval : stage.settings.export.requireApproval;
          const verified = await deps.store.transition(pending.id, ['unverified'], needsApproval ? 'pending-approval' : 'queued', 'subject', 'verified', { detail: { channel: message.channel } });
          deps.metrics.verifications.inc({ outcome: 'verified' });
          stage.reply(t.verified(pending.type));
          if (verified?.status === 'queued') await deps.enqueue(verified.id);
          return stage.stop('dsar: identity verified');
        }
      }

      const matches = (phrases: string[]) => phrases.some((p) => ` ${said} `.includes(` ${normalisePhrase(p)} `));
      const type: RequestType | null = matches(settings.erasePhrases) ? 'erase' : matches(settings.exportPhrases) ? 'export' : null;
      if (!type) return next();
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const request = await deps.store.create({
        tenantId: tenant.id,
        type,
        status: 'unverified',
        addresses: [message.from],
        reason: `asked on ${message.channel}`,
        requestedBy: 'subject',
        requestedVia: 'channel',
        language: lang,
        channel: message.channel,
        replyFrom: message.to,
        dueAt: dueDate(new Date(), stage.settings),
        codeExpiresAt: new Date(Date.now() + settings.codeTtlMinutes * 60_000),
      });
      await deps.store.setCode(request.id, hashCode(request.id, code));
      deps.metrics.created.inc({ tenant: tenant.id, type, via: 'channel' });
      stage.annotate('dsar.request', { id: request.id, type });
      stage.reply(TEXT[lang].receipt(type, request.id.slice(0, 8), settings.codeTtlMinutes, code));
      return stage.stop(`dsar: ${type} request received`);
    },
  };
}

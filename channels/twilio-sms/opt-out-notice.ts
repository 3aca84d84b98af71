/**
 * `twilio-sms.opt-out-notice`: a reply stage that adds the opt-out notice ("Reply STOP to opt out.")
 * to the first message a number gets from a tenant over Twilio SMS, as the CTIA Messaging Principles
 * ask of the first message of a program. Later messages go out unchanged. A tenant turns it on by
 * listing it in `replyPipeline`; the text is `consent.firstMessageNotice`.
 */
import type { Pool } from 'pg';
import type { ReplyStageDefinition } from 'parley';
import { TWILIO_SMS_CHANNEL, type TwilioSmsSettings } from './types.js';

export const OPT_OUT_NOTICE_STAGE = 'twilio-sms.opt-out-notice';

/** Statuses of items that never reached the person: they do not count as a first message. */
const NOT_DELIVERED = ['blocked', 'dead', 'held'];

export function optOutNoticeStage(db: Pool): ReplyStageDefinition<TwilioSmsSettings | undefined> {
  return {
    name: OPT_OUT_NOTICE_STAGE,
    async handle(out, next) {
      const notice = out.settings?.consent.firstMessageNotice;
      // Consent replies carry their own wording; other channels have their own rules.
      if (out.channel !== TWILIO_SMS_CHANNEL || !notice || out.options.consentNotice === true || out.text.includes(notice)) return next();
      if (!(await hasHadMessage(db, out.tenant.id, out.to, out.inbound?.conversationId ?? null))) {
        out.rewrite(`${out.text}\n${notice}`);
        out.annotate(OPT_OUT_NOTICE_STAGE, true);
      }
      return next();
    },
  };
}

/** Whether the tenant already sent this number something over SMS (in its conversation, or outside one). */
async function hasHadMessage(db: Pool, tenantId: string, to: string, conversationId: string | null): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM parley_outbox o
      WHERE o.tenant_id = $1 AND o.status <> ALL($4::text[]) AND (
        o.conversation_id = COALESCE($3::uuid, (SELECT id FROM parley_conversations c WHERE c.tenant_id = $1 AND c.channel = $5 AND c.thread_key = $2))
        OR (o.conversation_id IS NULL AND o.to_address = $2 AND o.channel = $5))
      LIMIT 1`,
    [tenantId, to, conversationId, NOT_DELIVERED, TWILIO_SMS_CHANNEL],
  );
  return rows.length > 0;
}

/**
 * What slack-alerts keeps about a person: alerts whose details name them, always by the hash of their
 * number (`ph_…`, e.g. crisis-guard's `from`), never the number itself. Export lists those alerts;
 * erasure removes the person's hash from them and keeps the alert (operations history). The Slack
 * users who acknowledged alerts are staff, not data subjects of a tenant, and stay.
 */
import type { Pool } from 'pg';
import { subjectHashes, type DataSubjectProvider } from 'parley';

export function alertDataSubjects(db: Pool): DataSubjectProvider {
  const mentioning = `tenant_id = $1 AND EXISTS (SELECT 1 FROM jsonb_each(details) e(k, v) WHERE v #>> '{}' = ANY($2::text[]))`;
  return {
    name: 'slack-alerts.alerts',
    describe: () => ({
      purpose: 'operations alerts about a conversation (a crisis, a failure), posted to the operators\' Slack',
      recipients: ['the deployment\'s operators, in Slack'],
      retention: 'until the operator deletes the alert; erasure removes the person\'s hash from it',
      source: 'raised by plugins through the kernel alert API',
    }),
    async export(subject) {
      const { rows } = await db.query(
        `SELECT id, key, source, severity, state, summary, details, first_at AS "firstAt", resolved_at AS "resolvedAt" FROM slack_alerts WHERE ${mentioning} ORDER BY first_at`,
        [subject.tenantId, subjectHashes(subject)],
      );
      return rows;
    },
    async erase(subject) {
      const { rowCount } = await db.query(
        `UPDATE slack_alerts SET details = (SELECT COALESCE(jsonb_object_agg(k, v), '{}') FROM jsonb_each(details) e(k, v) WHERE NOT (v #>> '{}' = ANY($2::text[])))
          WHERE ${mentioning}`,
        [subject.tenantId, subjectHashes(subject)],
      );
      return { erased: rowCount ?? 0 };
    },
  };
}

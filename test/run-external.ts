/**
 * Runs the storage and job specifications again on the machine's PostgreSQL and Redis
 * (PARLEY_TEST_BACKEND=external). Under CI=true unreachable services fail the run; elsewhere the run
 * is skipped with the reason printed.
 */
import { spawnSync } from 'node:child_process';
import { externalServices } from './backend.js';

const EXTERNAL_SPECS = ['test/outbox.test.ts', 'test/pipeline.test.ts', 'test/tenancy.test.ts', 'test/data-subjects.test.ts', 'test/whatsapp-web.test.ts', 'test/whatsapp-cloud.test.ts', 'test/slack-alerts.test.ts', 'test/twilio-sms-outbound.test.ts', 'test/recovery.test.ts', 'test/reply-stages.test.ts', 'test/usage.test.ts', 'test/schedules.test.ts', 'test/background.test.ts', 'test/handoff.test.ts', 'test/slack-alerts-reminders.test.ts', 'test/inline-delivery.test.ts', 'test/medical-answers-engine.test.ts', 'plugins/medical-answers/index.test.ts', 'test/kernel-hooks.test.ts', 'test/cost-guard.test.ts', 'test/cost-guard-burst.test.ts', 'test/held-messages.test.ts', 'test/moderation.test.ts', 'test/reminders.test.ts', 'test/outbound-idempotency.test.ts', 'test/dsar.test.ts', 'test/dsar-contacts.test.ts', 'test/backup.test.ts', 'test/billing.test.ts', 'test/console.test.ts', 'test/medical-answers-budget.test.ts', 'test/cost-guard-channels.test.ts', 'test/paging.test.ts', 'test/contract.test.ts', 'test/example-caregiver-sms.test.ts', 'test/example-caregiver-sms-local.test.ts', 'test/example-medical-whatsapp.test.ts', 'test/example-platform-ops.test.ts', 'test/example-telephony-crm.test.ts', 'examples/telephony-crm/crm-plugin/index.test.ts', 'test/example-saas-ops.test.ts', 'test/db-maintenance.test.ts', ...process.argv.slice(2)];

let problem: string | null;
try {
  problem = await externalServices();
} catch (error) {
  console.error(`[parley tests] ${(error as Error).message}`);
  process.exit(1);
}
if (problem) {
  console.log(`[parley tests] external-backend run skipped: ${problem}`);
  process.exit(0);
}
const vitest = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...EXTERNAL_SPECS], {
  stdio: 'inherit',
  env: { ...process.env, PARLEY_TEST_BACKEND: 'external' },
});
process.exit(vitest.status ?? 1);

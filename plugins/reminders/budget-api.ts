/**
 * What reminders asks of `cost-guard`'s messaging budget, declared here: a plugin imports only its own
 * folder and `parley`, and cost-guard is an optional integration (`ctx.tryInject`, not a dependency).
 * Structurally the same as `SendBudget` in plugins/cost-guard.
 */
import { token } from 'parley';

export interface SendBudget {
  /** Whether a send like this fits the tenant's messaging budget now; null for a tenant without cost-guard. */
  room(tenantId: string, send: { channel: string; text: string }): Promise<{ fits: boolean; remainingUsd: number | null; estimateUsd: number } | null>;
}

export const SEND_BUDGET = token<SendBudget>('cost-guard.send-budget');

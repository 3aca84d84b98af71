/** Where each alert goes and how it looks: the Slack channel per tenant, the quiet period per rule, the mention and dashboard link. */
import type { RenderOptions } from './blocks.js';
import { ruleName } from './rules.js';
import type { ConnectedOptions, SlackAlertsSettings } from './types.js';

export function alertRouting(options: ConnectedOptions, settingsFor: (tenantId: string) => SlackAlertsSettings | undefined) {
  const quietByRule = new Map(options.rules.map((r) => [`rule.${ruleName(r)}`, r.quietPeriodMs ?? options.quietPeriodMs]));
  return {
    channelFor: (tenantId: string | null): string => (tenantId ? (settingsFor(tenantId)?.channel ?? options.tenantChannels[tenantId]) : undefined) ?? options.defaultChannel,
    /** A rule's own quiet period for its alerts (`rule.<name>` and `rule.<name>.*`), else the default. */
    quietPeriodFor: (key: string): number => {
      for (const [prefix, ms] of quietByRule) if (key === prefix || key.startsWith(`${prefix}.`)) return ms;
      return options.quietPeriodMs;
    },
    renderOptionsFor: (tenantId: string | null): RenderOptions => {
      const mention = (tenantId ? settingsFor(tenantId)?.criticalMention : undefined) ?? options.criticalMention;
      return { ...(options.dashboardUrl ? { dashboardUrl: options.dashboardUrl } : {}), ...(mention ? { mention } : {}) };
    },
  };
}

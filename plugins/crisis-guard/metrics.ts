/** The plugin's Prometheus metrics (listed in the README). */
import type { PluginMetrics } from 'parley';

export function crisisMetrics(metrics: PluginMetrics) {
  return {
    detections: metrics.counter({ name: 'parley_crisis_detections_total', help: 'Messages found to describe present danger, by tenant, category and language', labelNames: ['tenant', 'category', 'language'] as const }),
    falsePositives: metrics.counter({ name: 'parley_crisis_false_positives_total', help: 'Detections an operator marked as false positives, by tenant and category', labelNames: ['tenant', 'category'] as const }),
    secondOpinions: metrics.counter({ name: 'parley_crisis_second_opinions_total', help: 'Second opinions asked of the chat model, by result (crisis, not-crisis, failed)', labelNames: ['result'] as const }),
  };
}

export type CrisisMetrics = ReturnType<typeof crisisMetrics>;

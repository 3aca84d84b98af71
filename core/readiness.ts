/**
 * `/readyz`: the database, the job backend and every plugin's health check, each with its latency.
 * A critical component that is down (or takes longer than 3 s to say) makes the gateway not ready.
 */
import { performance } from 'node:perf_hooks';
import type { Pool } from 'pg';
import type { HealthCheck, HealthResult } from './plugin.js';
import type { JobRunner } from './jobs/job-runner.js';
import { withDeadline } from './plugin-loader.js';
import { describe } from './errors.js';

export interface ComponentReadiness extends HealthResult {
  latencyMs: number;
}

export interface Readiness {
  ready: boolean;
  components: Record<string, ComponentReadiness>;
}

export async function checkReadiness(input: { db: Pool; dbKind: string; jobs: JobRunner; checks: HealthCheck[]; running: boolean }): Promise<Readiness> {
  const components: Record<string, ComponentReadiness> = {};
  const timed = async (name: string, critical: boolean, fn: () => Promise<HealthResult>) => {
    const t = performance.now();
    try {
      const r = await withDeadline(fn(), 3_000, name, 'health check');
      components[name] = { ...r, latencyMs: Math.round((performance.now() - t) * 10) / 10 };
    } catch (error) {
      components[name] = { ok: false, latencyMs: Math.round(performance.now() - t), detail: describe(error) };
    }
    return critical ? components[name]!.ok : true;
  };
  const results = await Promise.all([
    timed('database', true, async () => {
      await input.db.query('SELECT 1');
      return { ok: true, info: { kind: input.dbKind } };
    }),
    timed('jobs', true, async () => ({ ok: true, info: { backend: input.jobs.kind, queues: await input.jobs.counts() } })),
    ...input.checks.map((check) => timed(check.name, check.critical !== false, () => check.check())),
  ]);
  return { ready: input.running && results.every(Boolean), components };
}

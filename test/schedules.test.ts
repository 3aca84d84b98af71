/**
 * Recurring jobs (`ctx.schedule`): cron patterns in a time zone, checked at setup, kept in the job
 * backend across restarts, and run once per tick when several gateways share the backend.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startTestGateway, type TestGateway } from './harness.js';
import { scheduleControl } from './fixtures/probe-schedule.js';
import { TEST_BACKEND } from './backend.js';
import { Gateway } from '../core/gateway.js';
import { parseConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';

const catalogue = { 'probe-schedule': fileURLToPath(new URL('./fixtures/probe-schedule.ts', import.meta.url)) };
const config = (options: Record<string, unknown>) => ({
  plugins: [{ name: 'probe-schedule', options }],
  tenants: [{ id: 'acme' }],
});
const EVERY_SECOND = '*/1 * * * * *';

async function ticksUntil(count: (ticks: typeof scheduleControl.ticks) => boolean): Promise<void> {
  for (let i = 0; i < 400 && !count(scheduleControl.ticks); i++) await new Promise((r) => setTimeout(r, 50));
  expect(count(scheduleControl.ticks), JSON.stringify(scheduleControl.ticks)).toBe(true);
}

describe('a recurring job', () => {
  const started: TestGateway[] = [];
  afterAll(async () => {
    for (const gw of started.reverse()) await gw.stop({ cleanup: true });
  });

  it('refuses a pattern or a time zone it cannot read, at setup, with a coded error', async () => {
    for (const [options, message] of [
      [{ cron: 'every morning' }, /Schedule "probe-tick" of plugin "probe-schedule": "every morning" is not a cron pattern/],
      [{ cron: '0 9 * * *', timezone: 'Europe/Parsi' }, /unknown time zone "Europe\/Parsi"/],
    ] as const) {
      const loaded = { config: parseConfig(stringify(config(options)), 'test', {}), baseDir: process.cwd(), source: 'test' };
      const validating = Gateway.validate({ loaded, catalogue, logger: createLogger('silent') });
      await expect(validating).rejects.toMatchObject({ code: 'PARLEY_SCHEDULE_INVALID', plugin: 'probe-schedule' });
      await expect(validating).rejects.toThrow(message);
    }
  });

  it('runs every tick, keeps one schedule in the backend, and goes on after a restart on the same data', async () => {
    scheduleControl.ticks = [];
    const first = await startTestGateway({ config: config({ cron: EVERY_SECOND, timezone: 'Europe/Paris' }), catalogue });
    started.push(first);
    await ticksUntil((t) => t.length >= 2);
    expect(await first.gateway.jobs.scheduler('probe-tick')).toMatchObject([{ key: 'probe-tick', pattern: EVERY_SECOND, tz: 'Europe/Paris' }]);
    await first.gateway.stop();
    const before = scheduleControl.ticks.length;
    const second = await startTestGateway({ config: config({ cron: EVERY_SECOND, timezone: 'Europe/Paris' }), catalogue, dataDir: first.dataDir, ...(first.databaseUrl ? { databaseUrl: first.databaseUrl } : {}) });
    started.push(second);
    await ticksUntil((t) => t.length >= before + 2);
    expect(await second.gateway.jobs.scheduler('probe-tick')).toHaveLength(1);
    const at = scheduleControl.ticks.map((t) => t.scheduledAt);
    expect(new Set(at).size).toBe(at.length);
    for (const t of at) expect(t % 1000).toBe(0);
  });
});

describe.skipIf(TEST_BACKEND !== 'external')('a recurring job on two gateways sharing PostgreSQL and Redis', () => {
  let a: TestGateway;
  let b: TestGateway;
  afterAll(async () => {
    await b?.stop();
    await a?.stop({ cleanup: true });
  });

  it('runs each tick once, on one of them', async () => {
    scheduleControl.ticks = [];
    a = await startTestGateway({ config: config({ cron: EVERY_SECOND, instance: 'a' }), catalogue });
    b = await startTestGateway({ config: config({ cron: EVERY_SECOND, instance: 'b' }), catalogue, databaseUrl: a.databaseUrl! });
    const bootedAt = Date.now();
    // Ticks after both are up; wait for a later tick so every earlier one has finished on both.
    await ticksUntil((t) => t.filter((x) => x.scheduledAt > bootedAt).length >= 5);
    const settled = scheduleControl.ticks.filter((x) => x.scheduledAt > bootedAt).sort((x, y) => x.scheduledAt - y.scheduledAt).slice(0, 4);
    for (const tick of settled) expect(scheduleControl.ticks.filter((x) => x.scheduledAt === tick.scheduledAt), String(tick.scheduledAt)).toHaveLength(1);
  });
});

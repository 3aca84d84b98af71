/**
 * BullMQ wiring. One queue and one worker per registered job. The embedded default runs BullMQ on the
 * database (its PostgreSQL backend); with a Redis URL it runs on Redis. Job code is the same.
 */
import { Queue, Worker, UnrecoverableError, withBackend, createPostgresBackend, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CronExpressionParser } from 'cron-parser';
import type { JobDefinition, JobScheduler, ScheduleDefinition } from '../plugin.js';
import type { CoreMetrics } from '../metrics.js';
import { ParleyError } from '../errors.js';

export { UnrecoverableError };

export interface JobBackendOptions {
  redisUrl?: string | undefined;
  databaseUrl: string;
  log: Logger;
  metrics: CoreMetrics;
  /** Namespace for queue names (Redis prefix / PostgreSQL schema), so deployments can share a server. */
  namespace?: string;
}

type AnyQueue = {
  add: Queue['add'];
  getJobCounts: Queue['getJobCounts'];
  close: Queue['close'];
  getJob: Queue['getJob'];
  upsertJobScheduler: Queue['upsertJobScheduler'];
  getJobSchedulers: Queue['getJobSchedulers'];
  getJobs: Queue['getJobs'];
};
type AnyWorker = { close: Worker['close']; on: Worker['on']; isRunning: Worker['isRunning']; run: Worker['run'] };

/**
 * Exponential backoff from the job's base delay, but never sooner than a provider asked
 * (`retryAfterMs` on a SendError: Twilio/Meta/Slack 429 Retry-After).
 */
export function backoffStrategy(attemptsMade: number, _type?: string, error?: Error, job?: { opts: { backoff?: number | { delay?: number } } }): number {
  const backoff = job?.opts.backoff;
  const base = typeof backoff === 'number' ? backoff : (backoff?.delay ?? 1_000);
  const exponential = base * 2 ** Math.max(0, attemptsMade - 1);
  const asked = (error as { retryAfterMs?: number } | undefined)?.retryAfterMs ?? 0;
  return Math.max(exponential, asked);
}

export class JobRunner implements JobScheduler {
  private readonly definitions = new Map<string, JobDefinition<any>>();
  private readonly schedules = new Map<string, ScheduleDefinition>();
  private readonly queues = new Map<string, AnyQueue>();
  private readonly workers: AnyWorker[] = [];
  private redis: Redis | undefined;
  readonly kind: 'redis' | 'postgres';
  private started = false;

  constructor(private readonly opts: JobBackendOptions) {
    this.kind = opts.redisUrl ? 'redis' : 'postgres';
  }

  define<D>(def: JobDefinition<D>, owner: string): void {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(def.name)) throw new ParleyError('PARLEY_PLUGIN_INVALID', `Job name "${def.name}" of plugin "${owner}" must be lower-case letters, digits and "-"`, 500, { plugin: owner });
    if (this.definitions.has(def.name)) throw new ParleyError('PARLEY_PLUGIN_INVALID', `Job "${def.name}" is registered twice (plugin "${owner}")`, 500, { plugin: owner });
    if (this.started) throw new ParleyError('PARLEY_PLUGIN_INVALID', `Job "${def.name}" registered after start`, 500, { plugin: owner });
    this.definitions.set(def.name, def);
  }

  /** A recurring job: a queue of its own, and a job scheduler in the backend (upserted at start). */
  schedule(def: ScheduleDefinition, owner: string): void {
    const invalid = (why: string) => new ParleyError('PARLEY_SCHEDULE_INVALID', `Schedule "${def.name}" of plugin "${owner}": ${why}`, 500, { plugin: owner });
    const timezone = def.timezone ?? 'UTC';
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      throw invalid(`unknown time zone "${timezone}" (use an IANA name such as Europe/Paris)`);
    }
    try {
      CronExpressionParser.parse(def.cron, { tz: timezone, strict: false });
    } catch (error) {
      throw invalid(`"${def.cron}" is not a cron pattern: ${(error as Error).message}`);
    }
    this.define({ name: def.name, attempts: def.attempts ?? 3, backoffMs: def.backoffMs ?? 5_000, concurrency: 1, process: (_data, job) => def.process({ scheduledAt: job.scheduledAt ?? new Date(), jobId: job.id, attemptsMade: job.attemptsMade }) }, owner);
    this.schedules.set(def.name, { ...def, timezone });
  }

  /** What the backend holds for a schedule: BullMQ's scheduler record (pattern, time zone, next run). */
  async scheduler(name: string): Promise<{ key: string; pattern?: string; tz?: string; next?: number }[]> {
    const q = this.queues.get(name);
    if (!q) throw new ParleyError('PARLEY_INTERNAL', `No job queue named "${name}"`);
    return q.getJobSchedulers();
  }

  private classes() {
    if (this.kind === 'redis') {
      this.redis ??= new Redis(this.opts.redisUrl!, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
      this.redis.on('error', (error: Error) => this.opts.log.warn({ err: error }, 'redis connection error'));
      const connection = this.redis;
      const prefix = this.opts.namespace ?? 'parley';
      return {
        queue: (name: string) => new Queue(name, { connection, prefix }) as unknown as AnyQueue,
        worker: (name: string, fn: (job: Job) => Promise<unknown>, concurrency: number) =>
          new Worker(name, fn, { connection, prefix, concurrency, autorun: true, settings: { backoffStrategy } }) as unknown as AnyWorker,
      };
    }
    const pg = withBackend(createPostgresBackend);
    const connection = { connectionString: this.opts.databaseUrl, max: 4, schema: this.opts.namespace ?? 'bullmq', migrate: true };
    return {
      queue: (name: string) => new pg.Queue(name, { connection }) as unknown as AnyQueue,
      worker: (name: string, fn: (job: Job) => Promise<unknown>, concurrency: number) =>
        new pg.Worker(name, fn as never, { connection, concurrency, autorun: true, settings: { backoffStrategy } }) as unknown as AnyWorker,
    };
  }

  /** Creates queues (so producers can add) but starts no workers. */
  async prepare(): Promise<void> {
    const c = this.classes();
    for (const name of this.definitions.keys()) this.queues.set(name, c.queue(name));
    // Upserting is idempotent: every instance does it at start, the backend keeps one scheduler per
    // name, and a changed pattern replaces the old one.
    for (const [name, def] of this.schedules) {
      const attempts = def.attempts ?? 3;
      await this.queues.get(name)!.upsertJobScheduler(name, { pattern: def.cron, tz: def.timezone ?? 'UTC' }, {
        name,
        data: {},
        opts: { attempts, backoff: { type: 'parley', delay: def.backoffMs ?? 5_000 }, removeOnComplete: { age: 3600, count: 100 }, removeOnFail: { age: 7 * 24 * 3600 } },
      });
    }
  }

  async startWorkers(): Promise<void> {
    const c = this.classes();
    for (const [name, def] of this.definitions) {
      const worker = c.worker(
        name,
        async (job: Job) => def.process(job.data, { id: job.id, attemptsMade: job.attemptsMade, name: job.name, ...(job.opts.prevMillis ? { scheduledAt: new Date(job.opts.prevMillis) } : {}) }),
        def.concurrency ?? 4,
      );
      worker.on('completed', () => this.opts.metrics.jobsCompleted.inc({ queue: name }));
      worker.on('failed', (job: Job | undefined, error: Error) => {
        const final = !job || error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
        this.opts.metrics.jobsFailed.inc({ queue: name, final: String(final) });
        this.opts.log[final ? 'error' : 'warn']({ queue: name, jobId: job?.id, attempts: job?.attemptsMade, err: error }, final ? 'job failed for good' : 'job attempt failed; will retry');
      });
      worker.on('error', (error: Error) => this.opts.log.warn({ queue: name, err: error }, 'job worker error'));
      this.workers.push(worker);
    }
    this.started = true;
  }

  async add<D>(queue: string, data: D, opts: { jobId?: string; delayMs?: number; attempts?: number; backoffMs?: number } = {}): Promise<void> {
    const q = this.queues.get(queue);
    if (!q) throw new ParleyError('PARLEY_INTERNAL', `No job queue named "${queue}"`);
    const def = this.definitions.get(queue)!;
    await q.add(queue, data, {
      ...(opts.jobId ? { jobId: opts.jobId } : {}),
      ...(opts.delayMs ? { delay: opts.delayMs } : {}),
      attempts: opts.attempts ?? def.attempts ?? 5,
      backoff: { type: 'parley', delay: opts.backoffMs ?? def.backoffMs ?? 1_000 },
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /**
   * Jobs (in every state the backend keeps) whose payload contains one of `needles`, read a page at a
   * time; with `remove`, they are removed (an active job cannot be and is reported as `kept`). Job
   * payloads should hold ids only: this is how erasure proves it, and cleans up when a plugin did not.
   */
  async findPayloads(needles: readonly string[], opts: { remove?: boolean } = {}): Promise<{ queue: string; jobId: string; state: string; removed: boolean }[]> {
    const found: { queue: string; jobId: string; state: string; removed: boolean }[] = [];
    if (!needles.length) return found;
    const states = ['waiting', 'delayed', 'prioritized', 'waiting-children', 'active', 'completed', 'failed'] as const;
    for (const [name, q] of this.queues) {
      for (const state of states) {
        const matched: { job: { remove(): Promise<void> }; entry: { queue: string; jobId: string; state: string; removed: boolean } }[] = [];
        for (let start = 0; ; start += 200) {
          const jobs = (await q.getJobs([state], start, start + 199, true)).filter(Boolean);
          for (const job of jobs) {
            const text = JSON.stringify(job.data ?? null) + JSON.stringify(job.returnvalue ?? null) + (job.failedReason ?? '');
            if (needles.some((n) => text.includes(n))) matched.push({ job, entry: { queue: name, jobId: String(job.id), state, removed: false } });
          }
          if (jobs.length < 200) break;
        }
        // Removed after the pages were read, so removing shifts no page.
        for (const { job, entry } of matched) {
          if (opts.remove && state !== 'active') entry.removed = await job.remove().then(() => true, () => false);
          found.push(entry);
        }
      }
    }
    return found;
  }

  async counts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [name, q] of this.queues) {
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
      out[name] = counts;
      for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) this.opts.metrics.jobCounts.set({ queue: name, state }, counts[state] ?? 0);
    }
    return out;
  }

  /** Stops workers (letting active jobs finish up to the deadline), then queues and connections. */
  async close(deadlineMs: number): Promise<void> {
    const closing = Promise.allSettled(this.workers.map((w) => w.close()));
    const timedOut = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), deadlineMs).unref())]);
    if (timedOut) {
      this.opts.log.warn({ deadlineMs }, 'job workers did not stop in time; forcing close (their jobs will be retried as stalled)');
      await Promise.allSettled(this.workers.map((w) => w.close(true)));
    }
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    if (this.redis) this.redis.disconnect();
  }
}

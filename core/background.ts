/**
 * Work that runs after the caller moved on (a pipeline finishing after the webhook was answered, a
 * sweep, a plugin's follow-up call). Every task is tracked so shutdown can wait for it, and a task
 * that fails is logged with its owner and counted instead of disappearing.
 */
import type { Logger } from 'pino';

export interface BackgroundOwner {
  /** The plugin (or `core`) the work belongs to. */
  plugin: string;
  /** What the work is, for the log: `sync the Slack message`. */
  what: string;
}

export class BackgroundWork {
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly log: Logger,
    private readonly onFailure: (owner: BackgroundOwner) => void = () => undefined,
  ) {}

  get size(): number {
    return this.running.size;
  }

  /** Tracks `promise` until it settles; a rejection is logged and counted, never unhandled. Returns the same promise. */
  track<T>(promise: Promise<T>, owner: BackgroundOwner): Promise<T> {
    this.running.add(promise);
    promise.then(
      () => this.running.delete(promise),
      (error: unknown) => {
        this.running.delete(promise);
        this.onFailure(owner);
        this.log.error({ err: error, plugin: owner.plugin, task: owner.what }, 'background task failed');
      },
    );
    return promise;
  }

  /** Waits for every tracked task (those started while waiting too) or the deadline, whichever comes first. */
  async drain(deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    while (this.running.size) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.running]).then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), left);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) return false;
    }
    return true;
  }
}

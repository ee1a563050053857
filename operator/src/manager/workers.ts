/**
 * Workers: N loops that take a key from the work queue, run the reconcile and
 * decide what happens to the key next: forgotten on success, retried with the
 * queue's exponential back-off on an error or when the reconcile asks for it,
 * or queued after the delay the reconcile returned (a failed model check keeps
 * its own back-off). The queue guarantees one worker per key. Each worker
 * yields to the event loop after every reconcile, so watch events are read
 * between reconciles even when none of them waits for I/O.
 */
import type { Logger } from 'pino';
import type { WorkQueue } from '../queue';

export interface ReconcileOutcome {
  /** Try again with back-off although nothing failed. */
  retry?: boolean;
  /** Reconcile again after this delay (not a failure: the back-off count is reset). */
  requeueAfterMs?: number;
}

export interface WorkerHooks {
  /** Called after every reconcile with its result and duration. */
  onResult?: (result: 'success' | 'requeue' | 'error', seconds: number) => void;
}

export class Workers {
  private running: Array<Promise<void>> = [];

  constructor(
    private readonly queue: WorkQueue,
    private readonly reconcile: (key: string) => Promise<ReconcileOutcome>,
    private readonly log: Logger,
    private readonly hooks: WorkerHooks = {},
  ) {}

  start(count: number): void {
    for (let i = 0; i < count; i++) this.running.push(this.loop());
  }

  /** Resolves when every worker has returned (the queue was shut down) or after timeoutMs. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.running),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
        timer.unref();
      }),
    ]);
    if (timer) clearTimeout(timer);
    this.running = [];
  }

  private async loop(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = process.hrtime.bigint();
      let result: 'success' | 'requeue' | 'error' = 'success';
      try {
        const outcome = await this.reconcile(key);
        if (outcome.requeueAfterMs !== undefined) {
          this.queue.forget(key);
          this.queue.addAfter(key, outcome.requeueAfterMs);
          result = 'requeue';
        } else if (outcome.retry) {
          const delay = this.queue.addRateLimited(key);
          result = 'requeue';
          this.log.debug({ fnolmodel: key, delayMs: delay }, 'not done yet; will try again');
        } else {
          this.queue.forget(key);
        }
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        result = 'error';
        this.log.error({ fnolmodel: key, err: (err as Error).message, retryInMs: delay }, 'reconcile failed');
      } finally {
        this.queue.done(key);
        this.hooks.onResult?.(result, Number(process.hrtime.bigint() - started) / 1e9);
      }
      // A reconcile that needs no request (a resync at rest reads only the
      // caches) runs entirely in microtasks: without this turn of the event
      // loop, a burst of them would hold back the watch events (I/O) that
      // queue the changes, until the whole burst was done.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/**
 * Work queue between the watches and the reconciler, keyed by namespace/name:
 * a key waiting is queued once however many events arrive; a key being
 * reconciled is never handed to a second worker, and is queued again afterwards
 * if events arrived meanwhile; failures are retried with exponential back-off.
 */

export type QueuePriority = 'event' | 'resync';

export interface WorkQueueOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  onDepthChange?: (depth: number) => void;
  /** Called when a worker takes a key: how long it waited in the queue, by priority. */
  onWait?: (priority: QueuePriority, seconds: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Resync keys: served only when no event-driven key waits. */
  private readonly low: string[] = [];
  private readonly lowPending = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  /** When each waiting key entered the queue (or was promoted by an event), for onWait. */
  private readonly queuedAt = new Map<string, number>();
  private shuttingDown = false;

  constructor(private readonly opts: WorkQueueOptions) {}

  get depth(): number {
    return this.queue.length + this.low.length;
  }

  private changed(): void {
    this.opts.onDepthChange?.(this.depth);
  }

  private handOut(key: string, priority: QueuePriority): boolean {
    const waiter = this.waiters.shift();
    if (!waiter) return false;
    this.processing.add(key);
    this.opts.onWait?.(priority, 0);
    waiter(key);
    return true;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.lowPending.has(key)) {
      // Waiting as a resync: an event makes it urgent.
      this.lowPending.delete(key);
      const i = this.low.indexOf(key);
      if (i >= 0) {
        this.low.splice(i, 1);
        this.queue.push(key);
        this.queuedAt.set(key, performance.now());
        this.changed();
      }
      return;
    }
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    if (this.handOut(key, 'event')) {
      this.dirty.delete(key);
      return;
    }
    this.queue.push(key);
    this.queuedAt.set(key, performance.now());
    this.changed();
  }

  /**
   * Adds a key for a periodic resync, behind every event-driven key, so a
   * resync of many objects never delays the reaction to a change.
   */
  addLow(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.lowPending.add(key);
    if (this.processing.has(key)) return;
    if (this.handOut(key, 'resync')) {
      this.dirty.delete(key);
      this.lowPending.delete(key);
      return;
    }
    this.low.push(key);
    this.queuedAt.set(key, performance.now());
    this.changed();
  }

  /** Adds the key after a delay; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    if (this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    t.unref();
    this.timers.set(key, t);
  }

  /** Back-off for a key that failed: base * 2^(failures-1), capped. */
  addRateLimited(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** Math.min(n - 1, 30));
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to reconcile; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const event = this.queue.shift();
    const key = event ?? this.low.shift();
    if (key !== undefined) {
      const at = this.queuedAt.get(key);
      this.queuedAt.delete(key);
      if (at !== undefined)
        this.opts.onWait?.(event !== undefined ? 'event' : 'resync', (performance.now() - at) / 1000);
      this.dirty.delete(key);
      this.lowPending.delete(key);
      this.processing.add(key);
      this.changed();
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks a key finished; it is queued again if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    if (!this.dirty.has(key)) return;
    this.dirty.delete(key);
    if (this.lowPending.delete(key)) this.addLow(key);
    else this.add(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}

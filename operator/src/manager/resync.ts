/**
 * Periodic resync: every period, every FnolModel in the cache is queued again
 * at low priority (behind event-driven keys), a safety net for a change the
 * operator missed. It re-reads the cache, not the API server; an unchanged
 * world writes nothing.
 */
export interface ResyncOptions {
  periodMs: number;
  /** The keys to queue (the FnolModels in the cache). */
  keys: () => Iterable<string>;
  addLow: (key: string) => void;
}

export class Resync {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ResyncOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.now(), this.opts.periodMs);
    this.timer.unref();
  }

  /** Queues every key once (what the timer does each period). */
  now(): number {
    let n = 0;
    for (const key of this.opts.keys()) {
      this.opts.addLow(key);
      n++;
    }
    return n;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

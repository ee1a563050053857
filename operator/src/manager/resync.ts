/**
 * Periodic resync: every FnolModel in the cache is queued again once per
 * period at low priority (behind event-driven keys), a safety net for a change
 * the operator missed. It re-reads the cache, not the API server; an unchanged
 * world writes nothing.
 *
 * The keys are spread over the period instead of queued in one burst: each
 * period starts with a snapshot of the cached keys, and every step (1 s, or a
 * tenth of a short period) queues the next even share of it. With 2,000 models
 * and a 300 s period that is about 7 keys a second, so the workers are never
 * all busy with resyncs when a change arrives. The first period starts one
 * period after start(), as the caches' first lists queued every key already.
 */
export interface ResyncOptions {
  periodMs: number;
  /** The keys to queue (the FnolModels in the cache). */
  keys: () => Iterable<string>;
  addLow: (key: string) => void;
  /** Time between two shares of a period's keys; default min(1 s, period / 10). */
  stepMs?: number;
}

export class Resync {
  private timer: NodeJS.Timeout | undefined;
  private readonly stepMs: number;
  private readonly steps: number;
  private tick = 0;
  private round: string[] = [];

  constructor(private readonly opts: ResyncOptions) {
    this.stepMs = Math.max(1, Math.min(opts.stepMs ?? Math.min(1000, opts.periodMs / 10), opts.periodMs));
    this.steps = Math.max(1, Math.round(opts.periodMs / this.stepMs));
  }

  start(): void {
    if (this.timer) return;
    this.tick = 0;
    this.round = [];
    this.timer = setInterval(() => this.step(), this.stepMs);
    this.timer.unref();
  }

  /** One step: a new snapshot at the start of each period, then this step's share of it. */
  private step(): void {
    this.tick++;
    const phase = this.tick % this.steps;
    if (phase === 0) this.round = [...this.opts.keys()];
    if (this.tick < this.steps) return; // the first period has not started yet
    const n = this.round.length;
    // Ceiling bounds: a share starts at its step, so the first keys go at the
    // start of the period (one key alone is queued once every period, on time).
    const from = Math.ceil((n * phase) / this.steps);
    const to = Math.ceil((n * (phase + 1)) / this.steps);
    for (let i = from; i < to; i++) this.opts.addLow(this.round[i]!);
    if (phase === this.steps - 1) this.round = [];
  }

  /** Queues every key at once; returns how many. */
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

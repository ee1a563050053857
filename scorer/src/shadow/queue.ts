// The bounded queue between answered requests and the candidate: a copy is
// either queued at once or dropped, never waited for, and at most `concurrency`
// copies are being sent at a time.

export interface QueueLimits {
  /** Copies waiting for a worker (not counting those being sent). */
  readonly size: number;
  /** Bytes of the copies waiting, as counted by `sizeOf`. */
  readonly maxBytes: number;
  /** Workers: copies being sent at once. */
  readonly concurrency: number;
}

export class CopyQueue<T> {
  private waiting: T[] = [];
  /** Index of the next copy in `waiting` (shifting an array is linear). */
  private head = 0;
  private bytes = 0;
  private active = 0;
  private closed = false;

  /**
   * @param work sends one copy; its rejection is the worker's problem only
   *   (it is reported to `failed`, and the worker moves on)
   */
  constructor(
    private readonly limits: QueueLimits,
    private readonly sizeOf: (item: T) => number,
    private readonly work: (item: T) => Promise<void>,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** Queues a copy; false when it is dropped (queue full, over its bytes, or closed). */
  offer(item: T): boolean {
    const size = this.sizeOf(item);
    if (
      this.closed ||
      this.waiting.length - this.head >= this.limits.size ||
      this.bytes + size > this.limits.maxBytes
    ) {
      return false;
    }
    this.waiting.push(item);
    this.bytes += size;
    if (this.active < this.limits.concurrency) {
      this.active++;
      // The worker starts in a later turn: the caller's turn only queues.
      setImmediate(this.startWorker);
    }
    return true;
  }

  /** Copies waiting plus copies being sent. */
  get pending(): number {
    return this.waiting.length - this.head + this.active;
  }

  /** Copies waiting for a worker. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Drops the waiting copies and accepts no more (copies being sent finish). */
  close(): void {
    this.closed = true;
    this.waiting = [];
    this.head = 0;
    this.bytes = 0;
  }

  private readonly startWorker = (): void => {
    void this.runWorker();
  };

  private async runWorker(): Promise<void> {
    try {
      for (let item = this.next(); item !== undefined; item = this.next()) {
        try {
          await this.work(item);
        } catch (error) {
          this.failed(error);
        }
      }
    } finally {
      this.active--;
    }
  }

  /**
   * Takes the copy at the head of the queue when `accept` accepts it: a worker
   * gathers the copies it sends together while it holds the first.
   */
  takeIf(accept: (item: T) => boolean): T | undefined {
    if (this.head >= this.waiting.length || !accept(this.waiting[this.head] as T)) return undefined;
    return this.next();
  }

  private next(): T | undefined {
    if (this.head >= this.waiting.length) return undefined;
    const item = this.waiting[this.head] as T;
    this.waiting[this.head] = undefined as T; // released for the collector
    this.head++;
    this.bytes -= this.sizeOf(item);
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

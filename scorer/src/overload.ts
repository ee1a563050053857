// Overload protection for the scoring endpoints, after Azure ML's
// maxConcurrentRequestsPerInstance / request timeout and Knative's
// containerConcurrency: bounded requests in flight, bounded bytes of bodies held,
// bounded rows waiting for the model, and a deadline per request. Beyond a bound
// the scorer answers 429 with Retry-After at once instead of queueing work it
// cannot finish in time or memory it does not have.

import type { Counter } from 'prom-client';
import type { OverloadLimits } from './config';
import { HttpError } from './http-errors';

export type RefusalReason = 'concurrency' | 'body_bytes' | 'queued_rows' | 'deadline' | 'json_limits';

/** Told when an admitted request runs out of time. */
export interface ExpiryListener {
  expire(admission: Admission): void;
}

/**
 * One admitted scoring request: the bytes of body it holds and its deadline,
 * until it is released (its response closed). `expired` lets the model queue
 * drop it unrun.
 */
export class Admission {
  expired = false;
  released = false;
  private bytes = 0;

  constructor(
    private readonly guard: OverloadGuard,
    /** When it expires, on the performance.now() clock. */
    readonly deadline: number,
    /** Dropped on release: a released admission may wait in the sweep's list a while. */
    public listener: ExpiryListener | undefined,
  ) {}

  /** Counts `bytes` more of the request's body; an error when the memory budget is spent. */
  take(bytes: number): HttpError | undefined {
    const refused = this.guard.holdBytes(bytes);
    if (refused === undefined) this.bytes += bytes;
    return refused;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.listener = undefined;
    this.guard.done(this.bytes);
  }
}

export class OverloadGuard {
  private inFlight = 0;
  private bodyBytes = 0;
  /**
   * Admissions in arrival order, which is also deadline order (one timeout for
   * all): a sweep looks only at the front. Cheaper than a timer per request.
   */
  private open: Admission[] = [];
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly limits: OverloadLimits,
    private readonly refusals: Counter<'reason'>,
  ) {}

  get requestsInFlight(): number {
    return this.inFlight;
  }

  get bodyBytesInFlight(): number {
    return this.bodyBytes;
  }

  /**
   * Admits a scoring request or throws 429. The caller releases the admission
   * when the response closes; `listener` is told if it is still open after
   * REQUEST_TIMEOUT_MS.
   */
  admit(listener: ExpiryListener): Admission {
    const max = this.limits.maxConcurrentRequests;
    if (this.inFlight >= max) {
      throw this.refuse(
        'concurrency',
        `the scorer is handling its limit of ${max} requests (MAX_CONCURRENT_REQUESTS); retry shortly or add replicas`,
      );
    }
    this.inFlight++;
    const admission = new Admission(this, performance.now() + this.limits.requestTimeoutMs, listener);
    this.open.push(admission);
    if (this.sweeper === undefined) {
      // A quarter of the timeout (at most 100 ms) late at worst.
      const every = Math.max(1, Math.min(100, Math.floor(this.limits.requestTimeoutMs / 4)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
    return admission;
  }

  private sweep(): void {
    const now = performance.now();
    let i = 0;
    for (; i < this.open.length; i++) {
      const admission = this.open[i] as Admission;
      if (admission.released) continue;
      if (admission.deadline > now) break;
      admission.expired = true;
      admission.listener?.expire(admission);
    }
    if (i > 0) this.open = this.open.slice(i);
    if (this.open.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Throws 429 when `rows` more would exceed the rows waiting for the model. */
  admitRows(pending: number, rows: number): void {
    const max = this.limits.maxQueuedRows;
    if (pending + rows > max) {
      throw this.refuse(
        'queued_rows',
        `the scorer has ${pending} rows waiting for the model and takes at most ${max} (MAX_QUEUED_ROWS); retry shortly or send smaller batches`,
      );
    }
  }

  /** The answer to a request that ran out of time; counted as a refusal. */
  expired(bodyArrived: boolean): HttpError {
    const ms = this.limits.requestTimeoutMs;
    this.refusals.labels('deadline').inc();
    return bodyArrived
      ? new HttpError(
          503,
          `the request was not answered within ${ms} ms (REQUEST_TIMEOUT_MS): the scorer is overloaded; retry shortly`,
          undefined,
          { 'retry-after': '1' },
        )
      : new HttpError(
          408,
          `the request body did not arrive within ${ms} ms (REQUEST_TIMEOUT_MS); send it faster or in smaller batches`,
        );
  }

  /** Counts a body refused for its nesting or size of structure. */
  countJsonRefusal(): void {
    this.refusals.labels('json_limits').inc();
  }

  holdBytes(bytes: number): HttpError | undefined {
    const max = this.limits.maxInflightBodyBytes;
    if (this.bodyBytes + bytes > max) {
      return this.refuse(
        'body_bytes',
        `the scorer holds its limit of ${max} bytes of request bodies (MAX_INFLIGHT_BODY_BYTES); retry shortly`,
      );
    }
    this.bodyBytes += bytes;
    return undefined;
  }

  done(bytes: number): void {
    this.inFlight--;
    this.bodyBytes -= bytes;
  }

  private refuse(reason: RefusalReason, message: string): HttpError {
    this.refusals.labels(reason).inc();
    return new HttpError(429, message, undefined, { 'retry-after': '1' });
  }
}

// Overload protection for the scoring endpoints, after Azure ML's
// maxConcurrentRequestsPerInstance / request timeout and Knative's
// containerConcurrency: bounded requests in flight, bounded bytes of bodies held,
// bounded rows waiting for the model, and a deadline per request. Beyond a bound
// the scorer answers 429 with Retry-After at once instead of queueing work it
// cannot finish in time or memory it does not have.

import type { ServerResponse } from 'node:http';
import type { Counter } from 'prom-client';
import type { OverloadLimits } from './config';
import { HttpError } from './http-errors';

export type RefusalReason = 'concurrency' | 'body_bytes' | 'queued_rows' | 'deadline' | 'json_limits';

/**
 * One admitted scoring request: the bytes of body it holds and its deadline,
 * until its response closes. `expired` lets the model queue drop it unrun.
 */
export class Admission {
  expired = false;
  private bytes = 0;
  private released = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly guard: OverloadGuard,
    timeoutMs: number,
    onExpire: () => void,
  ) {
    this.timer = setTimeout(() => {
      this.expired = true;
      onExpire();
    }, timeoutMs);
  }

  /** Counts `bytes` more of the request's body; an error when the memory budget is spent. */
  readonly take = (bytes: number): HttpError | undefined => {
    const refused = this.guard.holdBytes(bytes);
    if (refused === undefined) this.bytes += bytes;
    return refused;
  };

  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    this.guard.done(this.bytes);
  }
}

export class OverloadGuard {
  private inFlight = 0;
  private bodyBytes = 0;

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
   * Admits a scoring request or throws 429; the admission ends when `res`
   * closes. `onExpire` is called if it is still open after REQUEST_TIMEOUT_MS.
   */
  admit(res: ServerResponse, onExpire: () => void): Admission {
    const max = this.limits.maxConcurrentRequests;
    if (this.inFlight >= max) {
      throw this.refuse(
        'concurrency',
        `the scorer is handling its limit of ${max} requests (MAX_CONCURRENT_REQUESTS); retry shortly or add replicas`,
      );
    }
    this.inFlight++;
    const admission = new Admission(this, this.limits.requestTimeoutMs, onExpire);
    res.once('close', () => admission.release());
    return admission;
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

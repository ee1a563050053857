// Shadow mirroring (docs/scorer.md): copies of answered scoring requests sent
// to a candidate version and compared with the stable answers. The caller's
// path only draws the sample and, once its answer is written, queues the copy:
// nothing is awaited there and nothing from the candidate reaches it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { RequestLimits, ShadowConfig } from '../config';
import type { ShadowMetrics } from '../metrics';
import { combinedBody, recordsSpan, type ListKey, type RecordsSpan } from './coalesce';
import {
  checkRecordsModel,
  compareAnswers,
  compareList,
  type Comparison,
  type StableAnswer,
} from './comparer';
import { CopyQueue } from './queue';
import { Sampler } from './sampler';
import { CandidateError, CandidateSender } from './sender';
import { ShadowSummary, type ShadowStatus } from './summary';

export type { StableAnswer } from './comparer';

/** A request drawn for mirroring: when it arrived, and its raw body once read. */
export interface ShadowTicket {
  readonly start: number;
  body: Buffer | undefined;
}

interface Copy {
  readonly path: string;
  readonly body: Buffer;
  /** The caller's key headers, request id and trace context (headers are built when sent). */
  readonly authorization: string | undefined;
  readonly apiKey: string | undefined;
  readonly requestId: string | undefined;
  readonly traceparent: string | undefined;
  readonly stable: StableAnswer;
  readonly stableSeconds: number;
  /** Where its records array lies in `body`: located once, null when it cannot be (sent alone). */
  span?: RecordsSpan | null;
}

/** Copies to be sent as one request. */
interface Batch {
  readonly copies: Copy[];
  records: number;
  /** Of the combined body. */
  bytes: number;
}

export interface ShadowDeps {
  readonly metrics: ShadowMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Bytes of bodies the queue may hold. */
  readonly maxQueuedBytes: number;
  /** A longer answer from the candidate is a candidate error. */
  readonly maxAnswerBytes: number;
  /** Bound on the body of copies sent together (the candidate's MAX_BODY_BYTES, as the stable's). */
  readonly maxCoalescedBytes: number;
  /** Bound on the records of copies sent together (at most COALESCE_RECORDS). */
  readonly maxCoalescedRecords: number;
  /** Wall-clock time (the `since` of GET /shadow). */
  readonly now?: () => Date;
  /** Uniform draw in [0, 1) for the sampler. */
  readonly random?: () => number;
}

/**
 * Marks a copy. A scorer never mirrors a request that carries it, so two
 * scorers mirroring to each other (or one to itself) cannot copy copies.
 */
export const COPY_HEADER = 'x-shadow-copy';

/** Copies of the records form sent together at most. */
export const COALESCE_COPIES = 64;
/** Records of copies sent together at most (lower when MAX_BATCH_RECORDS is). */
export const COALESCE_RECORDS = 1000;

/** The bounds of a pod's mirroring, from its request limits. */
export function shadowBounds(
  limits: RequestLimits,
): Pick<ShadowDeps, 'maxQueuedBytes' | 'maxAnswerBytes' | 'maxCoalescedBytes' | 'maxCoalescedRecords'> {
  return {
    // Copies wait as raw bytes; they get a quarter of the request bodies' budget.
    maxQueuedBytes: Math.max(limits.maxBodyBytes, Math.floor(limits.overload.maxInflightBodyBytes / 4)),
    maxAnswerBytes: 4 * limits.maxBodyBytes,
    maxCoalescedBytes: limits.maxBodyBytes,
    maxCoalescedRecords: Math.min(COALESCE_RECORDS, limits.maxBatchRecords),
  };
}
/**
 * One copy in this many that could be sent with others is sent alone: the
 * candidate's latency is measured on copies sent alone only.
 */
export const LATENCY_PROBE_EVERY = 100;

/** `{"records":[` and `]}` around the joined arrays. */
const COMBINED_OVERHEAD = 14;

export class Shadow {
  private readonly sampler: Sampler;
  private readonly sender: CandidateSender;
  private readonly queue: CopyQueue<Copy>;
  private readonly summary: ShadowSummary;
  /** Copies that could have been coalesced since the last one sent alone. */
  private sinceAlone = 0;
  /** Requests of records-form copies on their way to the candidate. */
  private recordsInFlight = 0;
  /** Workers waiting for one of those to end, to gather more copies meanwhile. */
  private waiters: (() => void)[] = [];
  /** The batch gathering copies while a request is on its way. */
  private gathering: Batch | undefined;

  constructor(
    private readonly config: ShadowConfig,
    private readonly deps: ShadowDeps,
  ) {
    this.sampler = new Sampler(config.percent, deps.random);
    this.sender = new CandidateSender(config.url, {
      timeoutMs: config.timeoutMs,
      concurrency: config.concurrency,
      maxAnswerBytes: deps.maxAnswerBytes,
    });
    this.summary = new ShadowSummary(config, deps.metrics, (deps.now ?? (() => new Date()))());
    this.queue = new CopyQueue<Copy>(
      { size: config.queueSize, maxBytes: deps.maxQueuedBytes, concurrency: config.concurrency },
      (copy) => copy.body.length,
      (copy) => this.send(copy),
      (error) => deps.logger.error({ err: String(error) }, 'shadow copy failed unexpectedly'),
    );
  }

  /** Draws whether a scoring request that just arrived is mirrored (if it is answered). */
  admit(req: IncomingMessage): ShadowTicket | undefined {
    if (req.headers[COPY_HEADER] !== undefined || !this.sampler.take()) return undefined;
    return { start: this.deps.clock.now(), body: undefined };
  }

  /**
   * Queues the copy of a request whose successful answer was just written:
   * `path` is the candidate's path, `stable` what was answered. Never throws,
   * never waits: a full queue drops the copy.
   */
  offer(
    ticket: ShadowTicket,
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    stable: StableAnswer,
  ): void {
    const body = ticket.body;
    ticket.body = undefined;
    // The deadline may have answered 503 first (sendJson then writes nothing).
    if (body === undefined || res.statusCode < 200 || res.statusCode > 299) return;
    const stableSeconds = (this.deps.clock.now() - ticket.start) / 1000;
    const { authorization, 'x-api-key': apiKey } = req.headers;
    const id = res.getHeader('x-request-id');
    // The copy continues the request's trace, as a child of the request's own span.
    const trace = res.getHeader('traceparent');
    this.summary.countSampled();
    const copy: Copy = {
      path,
      body,
      authorization: typeof authorization === 'string' ? authorization : undefined,
      apiKey: typeof apiKey === 'string' ? apiKey : undefined,
      requestId: typeof id === 'string' ? id : undefined,
      traceparent: typeof trace === 'string' ? trace : undefined,
      stable,
      stableSeconds,
    };
    if (!this.queue.offer(copy)) this.summary.countDropped();
  }

  /** GET /shadow. */
  status(): ShadowStatus {
    return this.summary.status();
  }

  /** Copies waiting or being sent. */
  get pending(): number {
    return this.queue.pending;
  }

  /** Stops mirroring: waiting copies are dropped, connections to the candidate closed. */
  close(): void {
    this.queue.close();
    this.sender.close();
  }

  /**
   * A worker's turn: the copy it took, with the copies of the same form and
   * key waiting right behind it, up to the bounds, or alone.
   */
  private async send(first: Copy): Promise<void> {
    if (!this.coalescible(first)) return this.sendAlone(first);
    // A batch waiting for more copies takes this one, and the worker is free.
    const open = this.gathering;
    if (open !== undefined && this.joins(open, first)) {
      this.add(open, first);
      return;
    }
    if (++this.sinceAlone >= LATENCY_PROBE_EVERY) return this.sendAlone(first);
    return this.gatherAndSend(first);
  }

  /** Starts a batch with `first`, gathers copies as described below, and sends them. */
  private async gatherAndSend(first: Copy): Promise<void> {
    const batch: Batch = {
      copies: [first],
      records: first.stable.records,
      bytes: COMBINED_OVERHEAD + spanLength(first),
    };
    const gather = (): void => {
      for (let copy = this.take(batch); copy !== undefined; copy = this.take(batch)) this.add(batch, copy);
    };
    gather();
    // As Nagle's algorithm with a linger (as a Kafka producer's linger.ms): one
    // batch gathers the copies answered meanwhile while another such request
    // is on its way or for SHADOW_LINGER_MS, whichever ends later, until the
    // bounds are reached or a copy that cannot join waits behind. Copies are
    // never awaited by a caller, so a few milliseconds here cost nothing, and
    // each request to the candidate saved is one fewer HTTP exchange and
    // answer to parse on the stable pod.
    if (this.gathering === undefined) {
      this.gathering = batch;
      const lingerUntil = this.deps.clock.now() + this.config.lingerMs;
      try {
        while (!this.full(batch) && this.queue.queued === 0) {
          const left = lingerUntil - this.deps.clock.now();
          if (this.recordsInFlight === 0 && left <= 0) break;
          await new Promise<void>((wake) => {
            this.waiters.push(wake);
            if (this.recordsInFlight === 0) setTimeout(wake, left);
          });
          gather();
        }
      } finally {
        this.gathering = undefined;
      }
    }
    this.recordsInFlight++;
    try {
      if (batch.copies.length === 1) await this.sendAlone(first);
      else await this.sendTogether(batch.copies, batch.records);
    } finally {
      this.recordsInFlight--;
      for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** Whether a copy may be sent with a batch: same form and key, within the bounds. */
  private joins(batch: Batch, copy: Copy): boolean {
    const first = batch.copies[0] as Copy;
    return (
      batch.copies.length < COALESCE_COPIES &&
      copy.stable.form === first.stable.form &&
      this.coalescible(copy) &&
      copy.authorization === first.authorization &&
      copy.apiKey === first.apiKey &&
      batch.records + copy.stable.records <= this.deps.maxCoalescedRecords &&
      batch.bytes + 1 + spanLength(copy) <= this.deps.maxCoalescedBytes
    );
  }

  /** No copy can join: the most copies or the most records a request may carry. */
  private full(batch: Batch): boolean {
    return batch.copies.length >= COALESCE_COPIES || batch.records >= this.deps.maxCoalescedRecords;
  }

  /** The copy at the head of the queue, when it joins the batch. */
  private take(batch: Batch): Copy | undefined {
    return this.queue.takeIf((copy) => this.joins(batch, copy));
  }

  private add(batch: Batch, copy: Copy): void {
    batch.copies.push(copy);
    batch.records += copy.stable.records;
    batch.bytes += 1 + spanLength(copy);
    this.sinceAlone++;
    // A full batch goes at once, lingering or not.
    if (batch === this.gathering && this.full(batch)) {
      for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** A copy of /score ("records" or "data") whose list was located (once, cached on the copy). */
  private coalescible(copy: Copy): boolean {
    const form = copy.stable.form;
    if (form === 'v2' || copy.path !== '/score' || copy.stable.records < 1) return false;
    if (copy.span === undefined) copy.span = recordsSpan(copy.body, form) ?? null;
    return copy.span !== null && copy.stable.records <= this.deps.maxCoalescedRecords;
  }

  private async sendAlone(copy: Copy): Promise<void> {
    this.sinceAlone = 0;
    const start = this.deps.clock.now();
    try {
      const { parsed, serverSeconds } = await this.request(copy.path, copy.body, copyHeaders(copy, true));
      // The candidate's own time when it says it (Server-Timing), as the stable
      // time is the stable pod's own; else the round trip from here.
      const candidateSeconds = serverSeconds ?? (this.deps.clock.now() - start) / 1000;
      const comparison = compareAnswers(copy.stable, parsed, this.config.version);
      this.summary.countCompared(comparison, copy.stableSeconds, candidateSeconds);
    } catch (error) {
      this.failed(error, [copy]);
    }
  }

  /**
   * Copies sent as one request: the candidate's predictions are split back in
   * the copies' order and each compared with its own stable answer. An answer
   * with another number of predictions fails them all.
   */
  private async sendTogether(batch: readonly Copy[], records: number): Promise<void> {
    // "records" answers {"model", "predictions": [...]}, "data" {"result": [...]}.
    const form = (batch[0] as Copy).stable.form as ListKey;
    const listName = form === 'data' ? 'result' : 'predictions';
    const body = combinedBody(
      batch.map((copy) => ({ body: copy.body, span: copy.span as RecordsSpan })),
      form,
    );
    let predictions: unknown[];
    try {
      const { parsed } = await this.request('/score', body, copyHeaders(batch[0] as Copy, false));
      const all = isObject(parsed) ? parsed[listName] : undefined;
      if (!Array.isArray(all) || all.length !== records) {
        throw new CandidateError('shape', `"${listName}" is not an array of ${records}`);
      }
      // One answer, one model: its version fails or passes every copy in it.
      if (form === 'records')
        checkRecordsModel((parsed as Record<string, unknown>).model, this.config.version);
      predictions = all;
    } catch (error) {
      this.failed(error, batch);
      return;
    }
    const comparisons: Comparison[] = [];
    let offset = 0;
    for (const copy of batch) {
      try {
        comparisons.push(compareList(copy.stable, predictions, offset));
      } catch (error) {
        this.failed(error, [copy]);
      }
      offset += copy.stable.records;
    }
    // A batch's time is not one request's: only copies sent alone are timed.
    this.summary.countComparedTogether(comparisons);
  }

  /** Sends a body and parses the answer; a CandidateError when it cannot be compared. */
  private async request(
    path: string,
    body: Buffer,
    headers: Record<string, string>,
  ): Promise<{ parsed: unknown; serverSeconds: number | undefined }> {
    const version = this.config.version;
    const answer = await this.sender.send(path, body, headers);
    if (answer.version !== version) {
      throw new CandidateError(
        'version',
        `answered with x-model-version ${JSON.stringify(answer.version ?? null)}, expected ${JSON.stringify(version)}`,
      );
    }
    try {
      return {
        parsed: JSON.parse(answer.body.toString('utf8')) as unknown,
        serverSeconds: answer.serverSeconds,
      };
    } catch {
      throw new CandidateError('not_json', 'the answer is not JSON');
    }
  }

  /** Counts each copy as a candidate error; anything else is the queue's to report. */
  private failed(error: unknown, copies: readonly Copy[]): void {
    if (!(error instanceof CandidateError)) throw error;
    for (let i = 0; i < copies.length; i++) this.summary.countCandidateError();
    const { logger } = this.deps;
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          reqId: copies.length === 1 ? copies[0]?.requestId : copies.map((c) => c.requestId),
          kind: error.kind,
          error: error.message,
        },
        copies.length === 1
          ? 'shadow copy: candidate error'
          : `shadow copies (${copies.length} sent together): candidate error`,
      );
    }
  }
}

/**
 * The headers of a request carrying `copy` (`alone`) or copies led by it: the
 * caller's key, so the candidate authorizes it alike; the request id only for a
 * copy alone (it names one request); the trace context of the (first) copy.
 */
function copyHeaders(copy: Copy, alone: boolean): Record<string, string> {
  const headers: Record<string, string> = { [COPY_HEADER]: '1' };
  if (copy.authorization !== undefined) headers.authorization = copy.authorization;
  if (copy.apiKey !== undefined) headers['x-api-key'] = copy.apiKey;
  if (alone && copy.requestId !== undefined) headers['x-request-id'] = copy.requestId;
  if (copy.traceparent !== undefined) headers.traceparent = copy.traceparent;
  return headers;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function spanLength(copy: Copy): number {
  const span = copy.span as RecordsSpan;
  return span.end - span.start;
}

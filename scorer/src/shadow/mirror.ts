// Shadow mirroring (docs/scorer.md): copies of answered scoring requests sent
// to a candidate version and compared with the stable answers. The caller's
// path only draws the sample and, once its answer is written, queues the copy:
// nothing is awaited there and nothing from the candidate reaches it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { ShadowConfig } from '../config';
import type { ShadowMetrics } from '../metrics';
import { compareAnswers, type StableAnswer } from './comparer';
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
  readonly headers: Record<string, string>;
  readonly stable: StableAnswer;
  readonly stableSeconds: number;
}

export interface ShadowDeps {
  readonly metrics: ShadowMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Bytes of bodies the queue may hold. */
  readonly maxQueuedBytes: number;
  /** A longer answer from the candidate is a candidate error. */
  readonly maxAnswerBytes: number;
  /** Wall-clock time (the `since` of GET /shadow). */
  readonly now?: () => Date;
  /** Uniform draw in [0, 1) for the sampler. */
  readonly random?: () => number;
}

/** Headers a copy carries: the caller's key, so the candidate authorizes it alike. */
const FORWARDED = ['authorization', 'x-api-key'] as const;

/**
 * Marks a copy. A scorer never mirrors a request that carries it, so two
 * scorers mirroring to each other (or one to itself) cannot copy copies.
 */
export const COPY_HEADER = 'x-shadow-copy';

export class Shadow {
  private readonly sampler: Sampler;
  private readonly sender: CandidateSender;
  private readonly queue: CopyQueue<Copy>;
  private readonly summary: ShadowSummary;

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
    const headers: Record<string, string> = { [COPY_HEADER]: '1' };
    for (const name of FORWARDED) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const id = res.getHeader('x-request-id');
    if (typeof id === 'string') headers['x-request-id'] = id;
    this.summary.countSampled();
    if (!this.queue.offer({ path, body, headers, stable, stableSeconds })) this.summary.countDropped();
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

  private async send(copy: Copy): Promise<void> {
    const { clock, logger } = this.deps;
    const version = this.config.version;
    const start = clock.now();
    try {
      const answer = await this.sender.send(copy.path, copy.body, copy.headers);
      const candidateSeconds = (clock.now() - start) / 1000;
      if (answer.version !== version) {
        throw new CandidateError(
          'version',
          `answered with x-model-version ${JSON.stringify(answer.version ?? null)}, expected ${JSON.stringify(version)}`,
        );
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(answer.body.toString('utf8'));
      } catch {
        throw new CandidateError('not_json', 'the answer is not JSON');
      }
      const comparison = compareAnswers(copy.stable, parsed, version);
      this.summary.countCompared(comparison, copy.stableSeconds, candidateSeconds);
    } catch (error) {
      if (!(error instanceof CandidateError)) throw error;
      this.summary.countCandidateError();
      if (logger.isLevelEnabled('debug')) {
        logger.debug(
          { reqId: copy.headers['x-request-id'], kind: error.kind, error: error.message },
          'shadow copy: candidate error',
        );
      }
    }
  }
}

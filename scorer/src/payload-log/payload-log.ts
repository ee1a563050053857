// Payload logging: a sample of answered scoring requests, with their inputs and
// predictions, written to a sink for audit and retraining. The route calls
// offer() after its answer is sent: a draw and a bounded push of references.
// The records are turned into JSON Lines in the next turn of the event loop
// (so the request's objects die young instead of being promoted by the garbage
// collector), in slices, and the text is handed to the sink every flush
// interval. When a buffer is full or the sink fails, records are dropped and
// counted; a scoring request is never delayed or failed by it.

import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../clock';
import { elapsedMs } from '../send-json';
import type { ServedModel } from '../serving-state';
import type { PayloadLogConfig } from './config';
import { planRedaction, serialize, type ModelIdentity, type ScoredRequest } from './record';
import { BlobSink, StdoutSink, type Sink } from './sinks';

export const DROP_REASONS = ['buffer_full', 'sink_error', 'redaction_config', 'shutdown'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface PayloadLogMetrics {
  readonly dropped: Counter<'reason'>;
  readonly written: Counter;
  readonly bytes: Counter;
  readonly bufferedRows: Gauge;
  readonly bufferedBytes: Gauge;
}

export function createPayloadLogMetrics(registry: Registry): PayloadLogMetrics {
  const dropped = new Counter({
    name: 'scorer_payload_log_dropped_total',
    help: 'Sampled requests not written to the payload log, by reason (buffer_full, sink_error, redaction_config, shutdown)',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of DROP_REASONS) dropped.labels(reason).inc(0);
  return {
    dropped,
    written: new Counter({
      name: 'scorer_payload_log_written_total',
      help: 'Sampled requests written to the payload log',
      registers: [registry],
    }),
    bytes: new Counter({
      name: 'scorer_payload_log_bytes_total',
      help: 'Bytes written to the payload log',
      registers: [registry],
    }),
    bufferedRows: new Gauge({
      name: 'scorer_payload_log_buffered_rows',
      help: 'Records of sampled requests waiting to be serialised for the payload log',
      registers: [registry],
    }),
    bufferedBytes: new Gauge({
      name: 'scorer_payload_log_buffered_bytes',
      help: 'Payload-log text waiting to be written to the sink',
      registers: [registry],
    }),
  };
}

/** A reproducible sampler (mulberry32) for a seed; Math.random without one. */
export function createSampler(seed: number | undefined): () => number {
  if (seed === undefined) return Math.random;
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PayloadLogDeps {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The sink (tests); built from the configuration otherwise. */
  readonly sink?: Sink;
}

interface Entry {
  readonly request: ScoredRequest;
  readonly model: ModelIdentity;
}

/** Rows serialised between two yields to the event loop. */
const ROWS_PER_SLICE = 512;
/** At most one sink warning per this many milliseconds. */
const WARN_EVERY_MS = 30_000;

export class PayloadLog {
  readonly metrics: PayloadLogMetrics;
  private readonly sink: Sink;
  private readonly random: () => number;
  /** Offered, not serialised yet. */
  private pending: Entry[] = [];
  private pendingRows = 0;
  private immediate: NodeJS.Immediate | undefined;
  /** Serialised, not written yet: text per time window. */
  private windows = new Map<number, { text: string; count: number }>();
  private bufferedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;
  private lastWarning = -Infinity;
  private identity: { model: ServedModel; value: ModelIdentity | undefined } | undefined;
  private current: ServedModel | undefined;

  constructor(
    readonly config: PayloadLogConfig,
    private readonly deps: PayloadLogDeps,
  ) {
    this.metrics = createPayloadLogMetrics(deps.registry);
    this.random = createSampler(config.seed);
    this.sink =
      deps.sink ??
      (config.sink.kind === 'stdout'
        ? new StdoutSink()
        : new BlobSink(config.sink, {
            modelName: () => this.current?.runtime.contract.name ?? 'unknown',
            modelVersion: () => this.current?.runtime.contract.version ?? 'unknown',
            pod: config.pod,
            timeoutMs: config.writeTimeoutMs,
          }));
  }

  get sinkDescription(): string {
    return this.sink.description;
  }

  /**
   * Called by a route right after its answer is sent: draws whether to log the
   * request and keeps references to its inputs and outputs (they are not
   * changed after the answer). Never throws, never waits.
   */
  offer(
    res: ServerResponse,
    model: ServedModel,
    route: string,
    form: ScoredRequest['form'],
    n: number,
    value: ScoredRequest['value'],
    outputs: ScoredRequest['outputs'],
    rows?: ScoredRequest['rows'],
  ): void {
    if (this.closed || res.statusCode !== 200) return;
    if (this.config.sampleRate < 1 && this.random() >= this.config.sampleRate) return;
    const identity = this.identityOf(model);
    if (identity === undefined) {
      this.metrics.dropped.labels('redaction_config').inc();
      return;
    }
    if (this.pendingRows + n > this.config.bufferRows) {
      this.metrics.dropped.labels('buffer_full').inc();
      return;
    }
    const elapsed = elapsedMs(res);
    const id = res.getHeader('x-request-id');
    this.pending.push({
      request: {
        time: Date.now(),
        requestId: typeof id === 'string' ? id : '',
        route,
        form,
        latencyMs: elapsed ?? 0,
        n,
        value,
        outputs,
        rows,
      },
      model: identity,
    });
    this.pendingRows += n;
    this.immediate ??= setImmediate(() => this.serializePending());
  }

  /** Writes what is buffered (within the write timeout) and stops; what cannot be written is counted. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    while (this.pending.length > 0) this.serializePending();
    if (this.windows.size > 0) await this.flush('shutdown');
  }

  /** The redaction plan of a served model, made once per model; undefined when the configuration does not fit it. */
  private identityOf(model: ServedModel): ModelIdentity | undefined {
    if (this.identity?.model === model) return this.identity.value;
    this.current = model;
    let value: ModelIdentity | undefined;
    try {
      value = {
        contract: model.runtime.contract,
        sha256: model.sha256,
        plan: planRedaction(model.runtime.contract, this.config.redact),
        hashKey: this.config.redact.hashKey,
      };
      const { summary } = value.plan;
      this.deps.logger.info(
        { sampleRate: this.config.sampleRate, sink: this.sink.description, redacted: summary },
        'payload logging on',
      );
    } catch (error) {
      this.deps.logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        'payload logging is off for this model: every sampled request is dropped (reason redaction_config)',
      );
    }
    this.identity = { model, value };
    return value;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.writing = this.flush('sink_error').finally(() => {
        this.writing = undefined;
        if (this.windows.size > 0 && !this.closed) this.schedule();
      });
    }, this.config.flushMs);
    this.timer.unref();
  }

  /**
   * Serialises offered records, at most ROWS_PER_SLICE rows per turn of the
   * event loop (the rest in the next), into the text buffer, bounded by
   * PAYLOAD_LOG_BUFFER_BYTES.
   */
  private serializePending(): void {
    this.immediate = undefined;
    const windowMs = this.config.windowSeconds * 1000;
    let rows = 0;
    let i = 0;
    for (; i < this.pending.length && rows < ROWS_PER_SLICE; i++) {
      const { request, model } = this.pending[i] as Entry;
      rows += request.n;
      const text = serialize(request, model);
      if (this.bufferedBytes + text.length > this.config.bufferBytes) {
        this.metrics.dropped.labels('buffer_full').inc();
        continue;
      }
      const start = Math.floor(request.time / windowMs) * windowMs;
      const window = this.windows.get(start);
      if (window === undefined) this.windows.set(start, { text, count: 1 });
      else {
        window.text += text;
        window.count++;
      }
      this.bufferedBytes += text.length;
    }
    this.pending = i === this.pending.length ? [] : this.pending.slice(i);
    this.pendingRows = Math.max(0, this.pendingRows - rows);
    if (this.pending.length > 0) this.immediate = setImmediate(() => this.serializePending());
    else this.pendingRows = 0;
    this.metrics.bufferedRows.set(this.pendingRows);
    this.metrics.bufferedBytes.set(this.bufferedBytes);
    if (this.timer === undefined && this.writing === undefined && this.windows.size > 0 && !this.closed) {
      this.schedule();
    }
  }

  /** Writes the text buffer, window by window; a failed write drops (and counts) its records. */
  private async flush(failure: DropReason): Promise<void> {
    const windows = this.windows;
    this.windows = new Map();
    this.bufferedBytes = 0;
    this.metrics.bufferedBytes.set(0);
    for (const [start, { text, count }] of windows) {
      try {
        await this.withTimeout(this.sink.write(text, start));
        this.metrics.written.inc(count);
        this.metrics.bytes.inc(Buffer.byteLength(text));
      } catch (error) {
        this.metrics.dropped.labels(failure).inc(count);
        const now = this.deps.clock.now();
        if (now - this.lastWarning >= WARN_EVERY_MS) {
          this.lastWarning = now;
          this.deps.logger.warn(
            { sink: this.sink.description, dropped: count, reason: failure, err: (error as Error).message },
            'payload log not written: records dropped (scorer_payload_log_dropped_total)',
          );
        }
      }
    }
  }

  private withTimeout(write: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the sink did not answer within ${this.config.writeTimeoutMs} ms`)),
        this.config.writeTimeoutMs,
      );
    });
    return Promise.race([write, timeout]).finally(() => clearTimeout(timer));
  }
}

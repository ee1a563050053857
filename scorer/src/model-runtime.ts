// A loaded model: the onnxruntime session, its contract, the compiled request
// validators and the batch builder. Requests are turned into one session.run per
// request: numbers go into pooled Float32Arrays, categories into string arrays.

import * as ort from 'onnxruntime-node';
import { buildContract, type ExpectedIdentity, type ModelContract } from './model-contract';
import { readMetadataProps } from './onnx-metadata';
import { compileValidators, type RequestValidators } from './request-schema';

/** The subset of ort.InferenceSession the scorer uses, so tests may pass any session. */
export interface ScoringSession {
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.OnnxValue>>;
  release?(): Promise<void>;
}

export type Outputs = Record<string, Float32Array>;

export interface SelfTestResult {
  readonly passed: boolean;
  readonly mismatches: readonly string[];
}

/** Number columns in one buffer per batch, reused across requests. */
class NumberBufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  constructor(private readonly columns: number) {}

  acquire(rows: number): { buffer: Float32Array; capacity: number } {
    let capacity = 1;
    while (capacity < rows) capacity *= 2;
    const buffer = this.free.get(capacity)?.pop() ?? new Float32Array(Math.max(1, this.columns * capacity));
    return { buffer, capacity };
  }

  release(buffer: Float32Array, capacity: number): void {
    const list = this.free.get(capacity) ?? [];
    // A few per size cover the requests that overlap while a run is queued.
    if (list.length < 8) list.push(buffer);
    this.free.set(capacity, list);
  }
}

export interface ColumnBatch {
  /** Row count. */
  readonly n: number;
  /** Value of feature `f` (index in contract order) in row `r`. */
  value(f: number, r: number): unknown;
}

/** Lets a queued request be dropped before it is run (its deadline passed). */
export interface Cancellation {
  readonly expired: boolean;
}

interface Pending {
  readonly batch: ColumnBatch;
  readonly cancel: Cancellation | undefined;
  resolve(outputs: Outputs): void;
  reject(error: unknown): void;
}

/**
 * One input column as the graph was fed: numbers as float32 (NaN for a missing
 * value), categories as text ("" for a missing value, an integer as its text).
 */
export type FeedColumn = Float32Array | readonly string[];

/**
 * Sees the feeds and outputs of every successful run (drift monitoring):
 * `columns[f]` is the column of feature f (contract order), n values long. It
 * runs on the scoring path, so it must be cheap and must not throw; an error
 * it throws anyway is dropped and the answer is unaffected.
 */
export interface RunObserver {
  observe(columns: readonly FeedColumn[], n: number, outputs: Outputs): void;
}

/** A queued request dropped before its run because its deadline passed. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}

/** Requests queued together are merged into one run up to this many rows. */
const COALESCE_ROWS = 1024;

export class ModelRuntime {
  readonly validators: RequestValidators;
  private readonly pool: NumberBufferPool;
  private readonly numberSlot: Int32Array;
  private readonly queue: Pending[] = [];
  private flushScheduled = false;
  private pending = 0;
  private observer: RunObserver | undefined;

  constructor(
    readonly session: ScoringSession,
    readonly contract: ModelContract,
  ) {
    this.validators = compileValidators(contract);
    this.numberSlot = new Int32Array(contract.features.length).fill(-1);
    let slots = 0;
    contract.features.forEach((f, i) => {
      if (f.type === 'number') this.numberSlot[i] = slots++;
    });
    this.pool = new NumberBufferPool(slots);
  }

  /** Shows every later run to `observer` (attached after the self-test, which it must not see). */
  observe(observer: RunObserver): void {
    this.observer = observer;
  }

  /** Rows accepted for scoring and not scored yet (queued or running). */
  get pendingRows(): number {
    return this.pending;
  }

  /** Scores validated named records. */
  scoreRecords(records: readonly Record<string, unknown>[], cancel?: Cancellation): Promise<Outputs> {
    const names = this.contract.features.map((f) => f.name);
    return this.run(
      {
        n: records.length,
        value: (f, r) => (records[r] as Record<string, unknown>)[names[f] as string],
      },
      cancel,
    );
  }

  /** Scores validated positional rows. */
  scoreRows(rows: readonly unknown[][], cancel?: Cancellation): Promise<Outputs> {
    return this.run({ n: rows.length, value: (f, r) => (rows[r] as unknown[])[f] }, cancel);
  }

  /**
   * Scores a validated column batch. Batches of requests that arrive together
   * (within one turn of the event loop) share one session.run: the per-run cost
   * of the graph dominates small requests, so this is what keeps single-record
   * throughput up under concurrency. A request whose `cancel` has expired by
   * the time its turn comes is dropped without running.
   */
  run(batch: ColumnBatch, cancel?: Cancellation): Promise<Outputs> {
    if (batch.n <= COALESCE_ROWS) return this.enqueue(batch, cancel);
    // A large batch runs in slices, each in a turn of the event loop of its
    // own (session.run blocks the loop): probes and small requests are answered
    // between two slices instead of after the whole batch.
    const slices: Promise<Outputs>[] = [];
    for (let start = 0; start < batch.n; start += COALESCE_ROWS) {
      const offset = start;
      const n = Math.min(COALESCE_ROWS, batch.n - start);
      slices.push(this.enqueue({ n, value: (f, r) => batch.value(f, offset + r) }, cancel));
    }
    return Promise.all(slices).then((parts) => {
      const outputs: Outputs = {};
      for (const { name, width } of this.contract.outputs) {
        const column = new Float32Array(batch.n * width);
        let offset = 0;
        for (const part of parts) {
          const values = part[name] as Float32Array;
          column.set(values, offset);
          offset += values.length;
        }
        outputs[name] = column;
      }
      return outputs;
    });
  }

  private enqueue(batch: ColumnBatch, cancel: Cancellation | undefined): Promise<Outputs> {
    return new Promise<Outputs>((resolve, reject) => {
      this.pending += batch.n;
      this.queue.push({ batch, cancel, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const parts: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Pending;
      if (next.cancel?.expired) {
        this.queue.shift();
        this.pending -= next.batch.n;
        next.reject(new CancelledError('deadline passed before the request was run'));
        continue;
      }
      if (parts.length > 0 && rows + next.batch.n > COALESCE_ROWS) break;
      parts.push(next);
      rows += next.batch.n;
      this.queue.shift();
    }
    if (this.queue.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (parts.length === 0) return;
    const done = () => {
      this.pending -= rows;
    };
    this.runParts(
      parts.map((p) => p.batch),
      rows,
    ).then(
      (outputs) => {
        done();
        if (parts.length === 1) {
          (parts[0] as Pending).resolve(outputs);
          return;
        }
        let offset = 0;
        for (const part of parts) {
          const own: Outputs = {};
          for (const { name, width } of this.contract.outputs) {
            own[name] = (outputs[name] as Float32Array).subarray(
              offset * width,
              (offset + part.batch.n) * width,
            );
          }
          offset += part.batch.n;
          part.resolve(own);
        }
      },
      (error: unknown) => {
        done();
        for (const part of parts) part.reject(error);
      },
    );
  }

  private async runParts(parts: readonly ColumnBatch[], n: number): Promise<Outputs> {
    const features = this.contract.features;
    const { buffer, capacity } = this.pool.acquire(n);
    try {
      const feeds: Record<string, ort.Tensor> = {};
      const columns: FeedColumn[] | undefined = this.observer === undefined ? undefined : [];
      for (let f = 0; f < features.length; f++) {
        const feature = features[f] as (typeof features)[number];
        const dims = feature.rank === 2 ? [n, 1] : [n];
        const slot = this.numberSlot[f] as number;
        if (slot >= 0) {
          const column = buffer.subarray(slot * capacity, slot * capacity + n);
          let row = 0;
          for (const part of parts) {
            for (let r = 0; r < part.n; r++) {
              const v = part.value(f, r);
              column[row++] = typeof v === 'number' ? v : NaN;
            }
          }
          feeds[feature.name] = new ort.Tensor('float32', column, dims);
          columns?.push(column);
        } else {
          const column = new Array<string>(n);
          let row = 0;
          for (const part of parts) {
            for (let r = 0; r < part.n; r++) {
              const v = part.value(f, r);
              column[row++] = typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
            }
          }
          feeds[feature.name] = new ort.Tensor('string', column, dims);
          columns?.push(column);
        }
      }
      const results = await this.session.run(feeds);
      const outputs: Outputs = {};
      for (const { name, width } of this.contract.outputs) {
        const tensor = results[name] as ort.Tensor | undefined;
        if (
          tensor === undefined ||
          !(tensor.data instanceof Float32Array) ||
          tensor.data.length !== n * width
        ) {
          throw new Error(`model output "${name}" is missing or does not have ${n * width} float values`);
        }
        outputs[name] = tensor.data;
      }
      if (this.observer !== undefined && columns !== undefined) {
        try {
          // Before the number buffer goes back to the pool (finally, below).
          this.observer.observe(columns, n, outputs);
        } catch {
          // The observer reports its own failures; scoring goes on regardless.
        }
      }
      return outputs;
    } finally {
      this.pool.release(buffer, capacity);
    }
  }

  /** Scores the metadata self_test records and compares every expected output. */
  async selfTest(): Promise<SelfTestResult> {
    const { records, expected, tolerance } = this.contract.selfTest;
    const body = { records };
    if (!this.validators.records(body)) {
      const problems = this.validators.describeRecords(body);
      return {
        passed: false,
        mismatches: problems.map((p) => `self_test record ${p.index ?? ''} ${p.field ?? ''}: ${p.reason}`),
      };
    }
    const outputs = await this.scoreRecords(records);
    const mismatches: string[] = [];
    for (const [name, want] of Object.entries(expected)) {
      const got = outputs[name];
      want.forEach((b, i) => {
        const a = got?.[i] ?? NaN;
        if (!(Math.abs(a - b) <= tolerance.absolute + tolerance.relative * Math.abs(b))) {
          mismatches.push(`${name}[${i}]: got ${a}, expected ${b}`);
        }
      });
    }
    return { passed: mismatches.length === 0, mismatches };
  }
}

export interface SessionOptions {
  readonly intraOpThreads: number;
}

/** The onnxruntime session options the scorer runs every model with. */
export function ortSessionOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
}

/** Creates the session from the model bytes (nothing is written to disk) and checks the contract. */
export async function loadModelRuntime(
  bytes: Uint8Array,
  expected: ExpectedIdentity,
  options: SessionOptions,
): Promise<ModelRuntime> {
  const props = readMetadataProps(bytes);
  const session = await ort.InferenceSession.create(bytes, ortSessionOptions(options));
  const signature = (values: readonly ort.InferenceSession.ValueMetadata[]) =>
    values.map((v) => ({
      name: v.name,
      type: v.isTensor ? v.type : undefined,
      shape: v.isTensor ? v.shape : [],
    }));
  const contract = buildContract(
    props,
    { inputs: signature(session.inputMetadata), outputs: signature(session.outputMetadata) },
    expected,
  );
  return new ModelRuntime(session, contract);
}

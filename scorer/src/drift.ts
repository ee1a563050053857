// Drift monitoring: the last DRIFT_WINDOW records the model scored, binned like
// its reference distributions, and the PSI of every input and output against
// them (docs/scorer.md, Drift). Counting happens on the scoring path, so it only
// increments preallocated counts: the window is two tumbling halves, the counts
// of the half being filled and those of the last full half, so a new value is
// one increment (nothing to uncount); the PSI is computed when /metrics is
// read, at most every DRIFT_UPDATE_SECONDS.

import type { Logger } from 'pino';
import type { Clock } from './clock';
import type { DriftConfig } from './config';
import {
  numberBin,
  psi,
  readReference,
  ReferenceError,
  type Bins,
  type DriftReference,
  type InputReference,
  type NumberBins,
  type OutputReference,
} from './drift-reference';
import type { DriftMetrics } from './metrics';
import type { FeedColumn, ModelRuntime, Outputs, RunObserver } from './model-runtime';

export type DriftState = 'on' | 'off' | 'absent' | 'invalid' | 'failed';

/** One input or output column: its counts per bin in the two halves of the window. */
interface Series {
  readonly bins: Bins;
  /** The half being filled. */
  readonly counts: Int32Array;
  /** The last full half (zeros until the first half is full). */
  readonly previous: Int32Array;
  /** Both halves added up when the PSI is computed. */
  readonly window: Int32Array;
  /** Slot of `other` (categories) or -1; slot of missing. */
  readonly other: number;
  readonly missing: number;
}

function series(bins: Bins): Series {
  const slots = bins.expected.length;
  return {
    bins,
    counts: new Int32Array(slots),
    previous: new Int32Array(slots),
    window: new Int32Array(slots),
    other: bins.kind === 'string' ? slots - 2 : -1,
    missing: slots - 1,
  };
}

/**
 * The slot of one value as a client sent it, converted as the graph is fed
 * (FeedColumn): a number to float32, NaN, null or absent as missing; a text as
 * itself, "" (null, absent) as missing, another value as its text.
 */
export function slotOf(s: Pick<Series, 'bins' | 'other' | 'missing'>, v: unknown): number {
  const bins = s.bins;
  if (bins.kind === 'number') {
    return typeof v === 'number' && !Number.isNaN(v) ? numberBin(bins.edges32, Math.fround(v)) : s.missing;
  }
  const text = typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
  return text === '' ? s.missing : (bins.index.get(text) ?? s.other);
}

export class DriftMonitor implements RunObserver {
  private readonly inputs: Series[];
  private readonly outputs: Series[];
  /** Records per half: DRIFT_WINDOW / 2 (rounded down). */
  private readonly half: number;
  /** Per input: missing values and (categories) values in `other`, since start. */
  private readonly missingTotal: Float64Array;
  private readonly unseenTotal: Float64Array;
  private readonly missingExported: Float64Array;
  private readonly unseenExported: Float64Array;
  /** Records in the half being filled, in the last full half, and since start. */
  private current = 0;
  private previous = 0;
  private seen = 0;
  /** What the last text column counted (returned in fields: no array per run). */
  private absent = 0;
  private unseen = 0;
  private lastUpdate = -Infinity;
  private failed = false;

  constructor(
    private readonly reference: DriftReference,
    private readonly config: DriftConfig,
    private readonly deps: { metrics: DriftMetrics; clock: Clock; logger: Logger },
  ) {
    this.half = Math.max(1, Math.floor(config.window / 2));
    this.inputs = reference.inputs.map((r) => series(r.bins));
    this.outputs = reference.outputs.map((r) => series(r.bins));
    const n = reference.inputs.length;
    this.missingTotal = new Float64Array(n);
    this.unseenTotal = new Float64Array(n);
    this.missingExported = new Float64Array(n);
    this.unseenExported = new Float64Array(n);
    const { unseen, missing } = deps.metrics;
    // The counters exist from the start (at 0), so rate() sees their first increase.
    reference.inputs.forEach((r) => {
      missing.labels(r.name).inc(0);
      if (r.bins.kind === 'string') unseen.labels(r.name).inc(0);
    });
  }

  /** Records in the window: all of them up to DRIFT_WINDOW, then between half of it (plus one) and all of it. */
  get records(): number {
    return this.previous + this.current;
  }

  observe(columns: readonly FeedColumn[], n: number, outputs: Outputs): void {
    if (this.failed) return;
    try {
      this.record(columns, n, outputs);
    } catch (error) {
      this.failed = true;
      this.deps.metrics.state.reset();
      this.deps.metrics.state.labels('failed').set(1);
      this.deps.logger.error(
        { err: error instanceof Error ? { message: error.message } : String(error) },
        'drift monitoring stopped after an unexpected error; scoring is unaffected; restart the pod to resume it',
      );
    }
  }

  /** Counts the run's records half by half: a run may fill the current half and start the next. */
  private record(columns: readonly FeedColumn[], n: number, outputs: Outputs): void {
    let from = 0;
    while (from < n) {
      // Lazily: a full half is moved to `previous` when the next record comes, so the
      // window holds exactly DRIFT_WINDOW records at every multiple of a half.
      if (this.current === this.half) this.rotate();
      const to = Math.min(n, from + this.half - this.current);
      this.count(columns, outputs, from, to);
      this.current += to - from;
      from = to;
    }
    this.seen += n;
  }

  /** The full current half becomes the previous one; the oldest half is forgotten. */
  private rotate(): void {
    for (const group of [this.inputs, this.outputs]) {
      for (const s of group) {
        s.previous.set(s.counts);
        s.counts.fill(0);
      }
    }
    this.previous = this.current;
    this.current = 0;
  }

  /** Counts records [from, to) of the run into the current half. */
  private count(columns: readonly FeedColumn[], outputs: Outputs, from: number, to: number): void {
    const refs = this.reference.inputs;
    for (let i = 0; i < this.inputs.length; i++) {
      const s = this.inputs[i] as Series;
      const column = columns[(refs[i] as InputReference).feature] as FeedColumn;
      const bins = s.bins;
      if (bins.kind === 'number') {
        (this.missingTotal[i] as number) += this.numbers(
          s,
          bins.edges32,
          column as Float32Array,
          1,
          0,
          from,
          to,
        );
      } else {
        this.texts(s, bins.index, column as readonly string[], from, to);
        (this.missingTotal[i] as number) += this.absent;
        (this.unseenTotal[i] as number) += this.unseen;
      }
    }
    for (let o = 0; o < this.outputs.length; o++) {
      const s = this.outputs[o] as Series;
      const ref = this.reference.outputs[o] as OutputReference;
      // Predictions are float32 already: exact in float64, binned as the compiler did.
      const edges = (s.bins as NumberBins).edges;
      this.numbers(s, edges, outputs[ref.output] as Float32Array, ref.width, ref.column, from, to);
    }
  }

  /** Counts values[r * stride + offset] for from <= r < to; returns how many were missing. */
  private numbers(
    s: Series,
    edges: Float64Array,
    values: Float32Array,
    stride: number,
    offset: number,
    from: number,
    to: number,
  ): number {
    const { counts, missing } = s;
    const last = edges.length;
    let absent = 0;
    for (let r = from; r < to; r++) {
      const x = values[r * stride + offset] as number;
      if (x !== x) {
        (counts[missing] as number)++;
        absent++;
        continue;
      }
      // numberBin, inline (a call through the module's export costs more than the search):
      // the number of edges below x, counted over all of them (at most 10) without a
      // branch, which real traffic makes cheaper than a binary search's mispredicted ones.
      let bin = 0;
      for (let e = 0; e < last; e++) bin += +((edges[e] as number) < x);
      (counts[bin] as number)++;
    }
    return absent;
  }

  /** Counts texts[from, to) ("" missing, unknown `other`) into `absent` and `unseen`. */
  private texts(
    s: Series,
    index: ReadonlyMap<string, number>,
    values: readonly string[],
    from: number,
    to: number,
  ): void {
    const { counts, missing, other } = s;
    let unseen = 0;
    let absent = 0;
    for (let r = from; r < to; r++) {
      const v = values[r] as string;
      let slot = missing;
      if (v === '') absent++;
      else {
        const known = index.get(v);
        if (known === undefined) {
          slot = other;
          unseen++;
        } else slot = known;
      }
      (counts[slot] as number)++;
    }
    this.absent = absent;
    this.unseen = unseen;
  }

  /** The PSI of one series over both halves. */
  private psiOf(s: Series, total: number): number {
    for (let b = 0; b < s.window.length; b++) {
      s.window[b] = (s.previous[b] as number) + (s.counts[b] as number);
    }
    return psi(s.bins.expected, s.window, total, this.reference.epsilon);
  }

  /** Brings the exported series up to date (when /metrics is read); the PSI at most every DRIFT_UPDATE_SECONDS. */
  refresh(): void {
    const { inputPsi, predictionPsi, unseen, missing } = this.deps.metrics;
    this.reference.inputs.forEach((r, i) => {
      const m = (this.missingTotal[i] as number) - (this.missingExported[i] as number);
      if (m > 0) missing.labels(r.name).inc(m);
      this.missingExported[i] = this.missingTotal[i] as number;
      const u = (this.unseenTotal[i] as number) - (this.unseenExported[i] as number);
      if (u > 0) unseen.labels(r.name).inc(u);
      this.unseenExported[i] = this.unseenTotal[i] as number;
    });
    const now = this.deps.clock.now();
    if (now - this.lastUpdate < this.config.updateSeconds * 1000) return;
    this.lastUpdate = now;
    // DRIFT_MIN_RECORDS counts from the start: the window held them all (it holds up to
    // DRIFT_WINDOW >= DRIFT_MIN_RECORDS), and later never fewer than half of DRIFT_WINDOW.
    if (this.failed || this.seen < this.config.minRecords) {
      // Too few records for a PSI that means anything: no value rather than noise.
      inputPsi.reset();
      predictionPsi.reset();
      return;
    }
    const total = this.records;
    this.reference.inputs.forEach((r, i) => {
      inputPsi.labels(r.name).set(this.psiOf(this.inputs[i] as Series, total));
    });
    this.reference.outputs.forEach((r, o) => {
      predictionPsi.labels(r.label).set(this.psiOf(this.outputs[o] as Series, total));
    });
  }
}

/**
 * Turns drift monitoring on for a loaded model (after its self-test): reads and
 * checks its reference distributions and attaches the monitor to the runtime.
 * A model without usable references is served all the same, without drift
 * series; `scorer_drift_state` and one log line say why.
 */
export function startDrift(
  runtime: ModelRuntime,
  config: DriftConfig,
  deps: { metrics: DriftMetrics; clock: Clock; logger: Logger },
): { state: DriftState; monitor: DriftMonitor | undefined } {
  const { metrics, logger } = deps;
  const result = (state: DriftState, monitor?: DriftMonitor) => {
    metrics.state.reset();
    metrics.state.labels(state).set(1);
    return { state, monitor };
  };
  if (!config.enabled) return result('off');
  let reference: DriftReference | undefined;
  try {
    reference = readReference(runtime.contract);
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    logger.warn(
      { problems: error.problems.slice(0, 20) },
      `drift monitoring is off for this model: its reference distributions cannot be used (${error.message}); the model is served as usual; recompile it with the model compiler to write valid ones (docs/model-format.md)`,
    );
    return result('invalid');
  }
  if (reference === undefined) {
    logger.info('drift monitoring is off for this model: it carries no reference distributions');
    return result('absent');
  }
  const monitor = new DriftMonitor(reference, config, deps);
  metrics.refresh = () => monitor.refresh();
  runtime.observe(monitor);
  logger.info(
    {
      inputs: reference.inputs.length,
      outputs: reference.outputs.length,
      window: config.window,
      minRecords: config.minRecords,
      updateSeconds: config.updateSeconds,
    },
    'drift monitoring on',
  );
  return result('on', monitor);
}

// Drift monitoring: the last DRIFT_WINDOW records the model scored, binned like
// its reference distributions, and the PSI of every input and output against
// them (docs/scorer.md, Drift). Counting happens on the scoring path, so it uses
// preallocated typed arrays only: one ring of bin numbers per input and output
// and the counts per bin; the PSI is computed when /metrics is read, at most
// every DRIFT_UPDATE_SECONDS.

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

/** A ring slot not written yet. Bins are at most 52 (50 categories, other, missing). */
const EMPTY = 255;

export type DriftState = 'on' | 'off' | 'absent' | 'invalid' | 'failed';

/** One input or output column: its ring of bins and the counts per bin over the ring. */
interface Series {
  readonly bins: Bins;
  readonly ring: Uint8Array;
  readonly counts: Int32Array;
  /** Slot of `other` (categories) or -1; slot of missing. */
  readonly other: number;
  readonly missing: number;
}

function series(bins: Bins, window: number): Series {
  const slots = bins.expected.length;
  return {
    bins,
    ring: new Uint8Array(window).fill(EMPTY),
    counts: new Int32Array(slots),
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
  /** Per input: missing values and (categories) values in `other`, since start. */
  private readonly missingTotal: Float64Array;
  private readonly unseenTotal: Float64Array;
  private readonly missingExported: Float64Array;
  private readonly unseenExported: Float64Array;
  private pos = 0;
  private filled = 0;
  private lastUpdate = -Infinity;
  private failed = false;

  constructor(
    private readonly reference: DriftReference,
    private readonly config: DriftConfig,
    private readonly deps: { metrics: DriftMetrics; clock: Clock; logger: Logger },
  ) {
    this.inputs = reference.inputs.map((r) => series(r.bins, config.window));
    this.outputs = reference.outputs.map((r) => series(r.bins, config.window));
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

  /** Records in the window (at most DRIFT_WINDOW). */
  get records(): number {
    return this.filled;
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

  private record(columns: readonly FeedColumn[], n: number, outputs: Outputs): void {
    const start = this.pos;
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
          n,
          start,
        );
      } else {
        const [absent, unseen] = this.texts(s, bins.index, column as readonly string[], n, start);
        (this.missingTotal[i] as number) += absent;
        (this.unseenTotal[i] as number) += unseen;
      }
    }
    for (let o = 0; o < this.outputs.length; o++) {
      const s = this.outputs[o] as Series;
      const ref = this.reference.outputs[o] as OutputReference;
      // Predictions are float32 already: exact in float64, binned as the compiler did.
      const edges = (s.bins as NumberBins).edges;
      this.numbers(s, edges, outputs[ref.output] as Float32Array, ref.width, ref.column, n, start);
    }
    this.pos = (start + n) % this.config.window;
    this.filled = Math.min(this.config.window, this.filled + n);
  }

  /** Bins values[r * stride + offset] for r < n into the ring from `start`; returns how many were missing. */
  private numbers(
    s: Series,
    edges: Float64Array,
    values: Float32Array,
    stride: number,
    offset: number,
    n: number,
    start: number,
  ): number {
    const { ring, counts, missing } = s;
    const window = this.config.window;
    let p = start;
    let absent = 0;
    for (let r = 0; r < n; r++) {
      const x = values[r * stride + offset] as number;
      let slot = missing;
      if (x === x) slot = numberBin(edges, x);
      else absent++;
      const old = ring[p] as number;
      if (old !== EMPTY) (counts[old] as number)--;
      ring[p] = slot;
      (counts[slot] as number)++;
      if (++p === window) p = 0;
    }
    return absent;
  }

  /** Bins texts into the ring from `start` ("" missing, unknown `other`); returns how many were missing and unknown. */
  private texts(
    s: Series,
    index: ReadonlyMap<string, number>,
    values: readonly string[],
    n: number,
    start: number,
  ): [number, number] {
    const { ring, counts, missing, other } = s;
    const window = this.config.window;
    let p = start;
    let unseen = 0;
    let absent = 0;
    for (let r = 0; r < n; r++) {
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
      const old = ring[p] as number;
      if (old !== EMPTY) (counts[old] as number)--;
      ring[p] = slot;
      (counts[slot] as number)++;
      if (++p === window) p = 0;
    }
    return [absent, unseen];
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
    if (this.failed || this.filled < this.config.minRecords) {
      // Too few records for a PSI that means anything: no value rather than noise.
      inputPsi.reset();
      predictionPsi.reset();
      return;
    }
    const { epsilon } = this.reference;
    this.reference.inputs.forEach((r, i) => {
      const s = this.inputs[i] as Series;
      inputPsi.labels(r.name).set(psi(s.bins.expected, s.counts, this.filled, epsilon));
    });
    this.reference.outputs.forEach((r, o) => {
      const s = this.outputs[o] as Series;
      predictionPsi.labels(r.label).set(psi(s.bins.expected, s.counts, this.filled, epsilon));
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

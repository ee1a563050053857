// The running account of mirroring: counts, the relative-difference histogram
// of each output and the latency of both versions. Every figure is written to
// the Prometheus metrics and to the JSON of GET /shadow at the same moment, with
// the same buckets, so the two always agree.

import type { ShadowConfig } from '../config';
import {
  SHADOW_DIFFERENCE_BUCKETS,
  SHADOW_LATENCY_BUCKETS,
  type HistogramSeries,
  type ShadowMetrics,
} from '../metrics';
import type { Comparison } from './comparer';

interface OutputAccount {
  records: number;
  exceeding: number;
  /** Per bucket, not cumulative; the last one is over the largest bound (+Inf). */
  readonly counts: number[];
}

interface OutputFigures {
  exceeding: number;
  /** Exceeding records not yet added to the Prometheus counter, and whether any record was tallied since. */
  unpublished: number;
  touched: boolean;
  /** The Prometheus series itself: GET /shadow reads the same counts. */
  readonly series: HistogramSeries;
}

/** GET /shadow (docs/scorer.md): what the operator sums over the stable pods. */
export interface ShadowStatus {
  readonly enabled: true;
  readonly target: string;
  readonly candidateVersion: string;
  readonly percent: number;
  readonly threshold: number;
  /** Timed copies left out of the latency figures while the candidate warms up. */
  readonly warmupCopies: number;
  readonly since: string;
  readonly sampled: number;
  readonly dropped: number;
  readonly compared: number;
  readonly candidateErrors: number;
  readonly differenceBuckets: readonly number[];
  readonly outputs: Record<string, OutputAccount>;
  readonly latencyBuckets: readonly number[];
  readonly latency: { readonly stable: number[]; readonly candidate: number[] };
}

/** The index of the bucket `value` falls in (Prometheus' `le`: value <= bound). */
export function bucketOf(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && !(value <= (bounds[i] as number))) i++;
  return i;
}

export class ShadowSummary {
  private sampled = 0;
  private dropped = 0;
  private compared = 0;
  private candidateErrors = 0;
  /** Timed copies seen so far, the warm-up ones included. */
  private timed = 0;
  private readonly outputs = new Map<string, OutputFigures>();
  private readonly latency = {
    stable: new Array<number>(SHADOW_LATENCY_BUCKETS.length + 1).fill(0),
    candidate: new Array<number>(SHADOW_LATENCY_BUCKETS.length + 1).fill(0),
  };
  private readonly since: string;

  constructor(
    private readonly config: ShadowConfig,
    private readonly metrics: ShadowMetrics,
    now: Date,
  ) {
    this.since = now.toISOString();
    // Every result is exported from the start, at 0.
    for (const result of ['compared', 'candidate_error', 'dropped']) metrics.copies.labels(result).inc(0);
  }

  /** A copy was taken of an answered request. */
  countSampled(): void {
    this.sampled++;
  }

  /** A copy was dropped: the queue was full. */
  countDropped(): void {
    this.dropped++;
    this.metrics.copies.labels('dropped').inc();
  }

  /** The candidate failed a copy (status, timeout, connection, shape, version). */
  countCandidateError(): void {
    this.candidateErrors++;
    this.metrics.copies.labels('candidate_error').inc();
  }

  /**
   * A copy was compared: its differences and the time both versions took
   * (`candidateSeconds` undefined for a copy sent with others: neither time is
   * counted, so both latency histograms hold the same copies). The first
   * SHADOW_WARMUP_COPIES timed copies are compared but not timed: a candidate
   * started moments ago answers its first requests slowly (JIT, first session
   * runs), and a short analysis step would judge that start, not the version.
   */
  countCompared(comparison: Comparison, stableSeconds: number, candidateSeconds: number | undefined): void {
    this.tally(comparison);
    this.publish(1);
    if (candidateSeconds === undefined) return;
    const { metrics, config } = this;
    if (this.timed++ < config.warmupCopies) return;
    metrics.latency.labels('stable').observe(stableSeconds);
    metrics.latency.labels('candidate').observe(candidateSeconds);
    (this.latency.stable[bucketOf(SHADOW_LATENCY_BUCKETS, stableSeconds)] as number)++;
    (this.latency.candidate[bucketOf(SHADOW_LATENCY_BUCKETS, candidateSeconds)] as number)++;
  }

  /**
   * Copies sent together were compared: as many calls of countCompared without
   * times, with the counters of the metrics moved once for all of them (in the
   * same turn of the event loop, so GET /shadow and /metrics still agree).
   */
  countComparedTogether(comparisons: readonly Comparison[]): void {
    if (comparisons.length === 0) return;
    for (const comparison of comparisons) this.tally(comparison);
    this.publish(comparisons.length);
  }

  /** Counts one comparison in the summary's own figures (the difference histogram is the metric's series). */
  private tally(comparison: Comparison): void {
    const { metrics, config } = this;
    this.compared++;
    for (const { name, differences } of comparison.outputs) {
      let figures = this.outputs.get(name);
      if (figures === undefined) {
        figures = { exceeding: 0, unpublished: 0, touched: false, series: metrics.difference.of(name) };
        this.outputs.set(name, figures);
      }
      const { counts } = figures.series;
      let exceeding = 0;
      let sum = 0;
      for (let r = 0; r < differences.length; r++) {
        const d = differences[r] as number;
        (counts[bucketOf(SHADOW_DIFFERENCE_BUCKETS, d)] as number)++;
        sum += d;
        if (d > config.diffThreshold) exceeding++;
      }
      figures.series.sum += sum;
      figures.exceeding += exceeding;
      figures.unpublished += exceeding;
      figures.touched = true;
    }
  }

  /** Moves the Prometheus counters by what tally counted since the last time. */
  private publish(compared: number): void {
    const { metrics } = this;
    metrics.copies.labels('compared').inc(compared);
    for (const [name, figures] of this.outputs) {
      if (!figures.touched) continue;
      // inc(0) too: the output's series exists once it was compared.
      metrics.exceeding.labels(name).inc(figures.unpublished);
      figures.unpublished = 0;
      figures.touched = false;
    }
  }

  status(): ShadowStatus {
    const { config } = this;
    // No prototype: an output named __proto__ is a plain key.
    const outputs = Object.create(null) as Record<string, OutputAccount>;
    for (const [name, { exceeding, series }] of this.outputs) {
      const records = series.counts.reduce((a, b) => a + b, 0);
      outputs[name] = { records, exceeding, counts: [...series.counts] };
    }
    return {
      enabled: true,
      target: config.url.href.replace(/\/$/, ''),
      candidateVersion: config.version,
      percent: config.percent,
      threshold: config.diffThreshold,
      warmupCopies: config.warmupCopies,
      since: this.since,
      sampled: this.sampled,
      dropped: this.dropped,
      compared: this.compared,
      candidateErrors: this.candidateErrors,
      differenceBuckets: SHADOW_DIFFERENCE_BUCKETS,
      outputs,
      latencyBuckets: SHADOW_LATENCY_BUCKETS,
      latency: { stable: [...this.latency.stable], candidate: [...this.latency.candidate] },
    };
  }
}

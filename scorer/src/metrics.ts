// Prometheus metrics of one scorer, on a registry of its own (no global state).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

export interface ScorerMetrics {
  readonly registry: Registry;
  /** HTTP requests by route, method and status: counted on every request, so kept as plain numbers. */
  readonly requests: CountedCounter;
  /** Request latency by route, likewise. */
  readonly latency: CountedHistogram;
  readonly records: Counter<'form'>;
  /** The primary output of every scored record, likewise. */
  readonly predictions: CountedHistogram;
  readonly modelInfo: Gauge<'name' | 'version' | 'sha256'>;
  readonly ready: Gauge;
  readonly refused: Counter<'reason'>;
  readonly inFlight: Gauge;
  readonly inFlightBodyBytes: Gauge;
  readonly queuedRows: Gauge;
  readonly shadow: ShadowMetrics;
  readonly drift: DriftMetrics;
  readonly traceSpans: Counter<'result'>;
}

/** Drift of the served traffic from the model's reference distributions (docs/scorer.md, Drift). */
export interface DriftMetrics {
  readonly inputPsi: Gauge<'feature'>;
  readonly predictionPsi: Gauge<'output'>;
  readonly unseen: Counter<'feature'>;
  readonly missing: Counter<'feature'>;
  readonly state: Gauge<'state'>;
  /** Brings the drift series up to date; called when the registry is read (set by the drift monitor). */
  refresh: (() => void) | undefined;
}

/**
 * Bounds of the relative-difference histogram of mirrored records (also in GET
 * /shadow). The first bucket holds exact agreement, so an identical model
 * reports a median of 0, not half the next bound.
 */
export const SHADOW_DIFFERENCE_BUCKETS: readonly number[] = [
  0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
];
/** Bounds of the latency histogram of mirrored requests (also in GET /shadow). */
export const SHADOW_LATENCY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** The counts of one series of a CountedHistogram: per bucket (not cumulative, +Inf last) and the sum. */
export interface HistogramSeries {
  readonly counts: number[];
  sum: number;
}

/**
 * A Prometheus histogram whose counts its owner keeps and bumps directly, read
 * only when scraped. prom-client's Histogram hashes the labels of every
 * observation; a mirrored batch observes one value per record, thousands per
 * copy.
 */
export class CountedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /**
   * Counts `value` in `series` (one of this histogram's): the first bucket
   * whose bound is at least `value`. A value that is not finite is refused with
   * a TypeError, as prom-client's Histogram refuses it.
   */
  observe(series: HistogramSeries, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const buckets = this.buckets;
    let i = 0;
    while (i < buckets.length && value > (buckets[i] as number)) i++;
    (series.counts[i] as number)++;
    series.sum += value;
  }

  /** The series of one label value (created empty). */
  of(value: string): HistogramSeries {
    let series = this.series.get(value);
    if (series === undefined) {
      series = { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0 };
      this.series.set(value, series);
    }
    return series;
  }

  /** What the registry prints (prom-client's metric interface). */
  get(): object {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const [value, { counts, sum }] of this.series) {
      let running = 0;
      counts.forEach((count, i) => {
        running += count;
        const le = i < this.buckets.length ? (this.buckets[i] as number) : '+Inf';
        values.push({
          labels: { le, [this.labelName]: value },
          value: running,
          metricName: `${this.name}_bucket`,
        });
      });
      values.push({ labels: { [this.labelName]: value }, value: sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [this.labelName]: value }, value: running, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** One series of a CountedCounter: its labels, made once, and its count. */
export interface CounterSeries {
  readonly labels: Readonly<Record<string, string>>;
  value: number;
}

/**
 * A Prometheus counter whose series its owner keeps and bumps directly
 * (`series.value += n`), read only when scraped: prom-client's Counter hashes
 * and checks the labels of every increment, and the request counter counts
 * every request.
 */
export class CountedCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, CounterSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values, in the order of the label names (created at 0). */
  of(...values: string[]): CounterSeries {
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (series === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      series = { labels: Object.freeze(labels), value: 0 };
      this.series.set(key, series);
    }
    return series;
  }

  /** What the registry prints (prom-client's metric interface). */
  get(): object {
    const values = [...this.series.values()].map(({ labels, value }) => ({ labels: { ...labels }, value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** Mirroring to a candidate version (docs/scorer.md, Shadow mirroring). */
export interface ShadowMetrics {
  readonly copies: Counter<'result'>;
  readonly difference: CountedHistogram;
  readonly exceeding: Counter<'output'>;
  readonly latency: Histogram<'version'>;
}

export function createMetrics(predictionBuckets: readonly number[], processMetrics = true): ScorerMetrics {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry });
  const drift: DriftMetrics = {
    refresh: undefined,
    inputPsi: new Gauge({
      name: 'scorer_input_drift_psi',
      help: "Population stability index of an input over the drift window against the model's reference distribution",
      labelNames: ['feature'],
      registers: [registry],
      // Registered first of the drift series: one refresh serves them all.
      collect: () => drift.refresh?.(),
    }),
    predictionPsi: new Gauge({
      name: 'scorer_prediction_drift_psi',
      help: "Population stability index of an output (or one column of it) over the drift window against the model's reference distribution",
      labelNames: ['output'],
      registers: [registry],
    }),
    unseen: new Counter({
      name: 'scorer_unseen_category_total',
      help: "Values of a categorical input that are not among the reference distribution's listed categories",
      labelNames: ['feature'],
      registers: [registry],
    }),
    missing: new Counter({
      name: 'scorer_missing_value_total',
      help: 'Missing values (null, absent, NaN or the empty text) of an input',
      labelNames: ['feature'],
      registers: [registry],
    }),
    state: new Gauge({
      name: 'scorer_drift_state',
      help: 'Drift monitoring of the served model (value 1): on, off (DRIFT=off), absent (no reference distributions), invalid (unusable ones) or failed (stopped by an error); the log says why',
      labelNames: ['state'],
      registers: [registry],
    }),
  };
  return {
    drift,
    traceSpans: new Counter({
      name: 'scorer_trace_spans_total',
      help: 'Server spans given to the OTLP exporter, by result (exported, dropped: queue full, failed: the collector did not take them)',
      labelNames: ['result'],
      registers: [registry],
    }),
    registry,
    requests: new CountedCounter(
      'scorer_http_requests_total',
      'HTTP requests by route, method and status code',
      ['route', 'method', 'status'],
      registry,
    ),
    latency: new CountedHistogram(
      'scorer_http_request_duration_seconds',
      'Time from request arrival to the last byte of the response',
      'route',
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registry,
    ),
    records: new Counter({
      name: 'scorer_records_scored_total',
      help: 'Records scored, by request form (data, records, v2)',
      labelNames: ['form'],
      registers: [registry],
    }),
    predictions: new CountedHistogram(
      'scorer_prediction_value',
      "Distribution of the model's primary output",
      'output',
      [...predictionBuckets],
      registry,
    ),
    modelInfo: new Gauge({
      name: 'scorer_model_info',
      help: 'The model being served (value 1)',
      labelNames: ['name', 'version', 'sha256'],
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'scorer_ready',
      help: '1 when the model is loaded, self-tested and the scorer is not shutting down',
      registers: [registry],
    }),
    refused: new Counter({
      name: 'scorer_requests_refused_total',
      help: 'Scoring requests refused by the overload guard, by reason (concurrency, body_bytes, queued_rows, deadline, json_limits)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'scorer_requests_in_flight',
      help: 'Scoring requests being handled (limit MAX_CONCURRENT_REQUESTS)',
      registers: [registry],
    }),
    inFlightBodyBytes: new Gauge({
      name: 'scorer_request_body_bytes_in_flight',
      help: 'Bytes of request bodies held by scoring requests (limit MAX_INFLIGHT_BODY_BYTES)',
      registers: [registry],
    }),
    queuedRows: new Gauge({
      name: 'scorer_queued_rows',
      help: 'Rows accepted for scoring and not scored yet (limit MAX_QUEUED_ROWS)',
      registers: [registry],
    }),
    shadow: {
      copies: new Counter({
        name: 'scorer_shadow_copies_total',
        help: 'Copies of scoring requests for the candidate version, by result (compared, candidate_error, dropped)',
        labelNames: ['result'],
        registers: [registry],
      }),
      difference: new CountedHistogram(
        'scorer_shadow_relative_difference',
        'Per record and output, |candidate - stable| / max(|stable|, 1) of the compared copies',
        'output',
        SHADOW_DIFFERENCE_BUCKETS,
        registry,
      ),
      exceeding: new Counter({
        name: 'scorer_shadow_exceeding_total',
        help: 'Compared records whose relative difference is over SHADOW_DIFF_THRESHOLD, by output',
        labelNames: ['output'],
        registers: [registry],
      }),
      latency: new Histogram({
        name: 'scorer_shadow_latency_seconds',
        help: 'Answer time of the compared requests: stable (arrival to answer) and candidate (copy sent to its answer)',
        labelNames: ['version'],
        buckets: [...SHADOW_LATENCY_BUCKETS],
        registers: [registry],
      }),
    },
  };
}

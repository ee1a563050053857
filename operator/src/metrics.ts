/** Prometheus metrics of one operator process (its own registry: no global state). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'fnol_operator_reconcile_total',
    help: 'Reconciles by result (success, error, requeue)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'fnol_operator_reconcile_errors_total',
    help: 'Reconciles that failed and were retried with back-off',
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'fnol_operator_reconcile_duration_seconds',
    help: 'Time of one reconcile',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'fnol_operator_workqueue_depth',
    help: 'Keys waiting in the work queue',
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: 'fnol_operator_api_requests_total',
    help: 'Requests to the Kubernetes API by verb, resource and HTTP code; a WATCH counts once when its stream opens',
    labelNames: ['verb', 'resource', 'code'],
    registers: [this.registry],
  });
  readonly writesSkipped = new Counter({
    name: 'fnol_operator_apply_skipped_total',
    help: 'Owned objects found up to date, so not applied',
    registers: [this.registry],
  });
  readonly digestChecks = new Counter({
    name: 'fnol_operator_model_digest_checks_total',
    help: 'Model digest checks by result (ok, cached, mismatch, unreachable, refused, skipped)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly modelChecksRunning = new Gauge({
    name: 'fnol_operator_model_checks_running',
    help: 'Model downloads for a digest check in flight',
    registers: [this.registry],
  });
  readonly modelChecksWaiting = new Gauge({
    name: 'fnol_operator_model_checks_waiting',
    help: 'Model digest checks waiting for a free download slot',
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'fnol_operator_leader',
    help: '1 while this process holds the leader lease',
    registers: [this.registry],
  });
  readonly watchEvents = new Counter({
    name: 'fnol_operator_watch_events_total',
    help: 'Watch events received by kind',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'fnol_operator_' });
  }
}

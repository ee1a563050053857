/** Prometheus metrics of one operator process (its own registry: no global state). */
import type { Condition } from '@fnol/api';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The condition statuses a FnolModel's gauge series cover (one series per status, the current one 1). */
const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

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
  readonly queueWait = new Histogram({
    name: 'fnol_operator_workqueue_queue_duration_seconds',
    help: 'Time a key waited in the work queue before a worker took it, by priority (event: a watched change; resync: the periodic resync)',
    labelNames: ['priority'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
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

  readonly modelConditions = new Gauge({
    name: 'fnol_model_condition',
    help: 'Conditions of the FnolModels this process reconciles as leader: 1 for the current status of each type, 0 for the others',
    labelNames: ['namespace', 'name', 'type', 'status'],
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'fnol_operator_' });
  }

  /** The condition types recorded per FnolModel ("namespace/name"), so their series can be dropped. */
  private readonly conditionTypes = new Map<string, readonly string[]>();

  /** Records the conditions just computed for a FnolModel, replacing what was recorded for it before. */
  setModelConditions(namespace: string, name: string, conditions: readonly Condition[]): void {
    this.forgetModel(namespace, name);
    for (const c of conditions) {
      for (const status of CONDITION_STATUSES) {
        this.modelConditions.set({ namespace, name, type: c.type, status }, c.status === status ? 1 : 0);
      }
    }
    this.conditionTypes.set(
      `${namespace}/${name}`,
      conditions.map((c) => c.type),
    );
  }

  /** Drops a FnolModel's condition series (it was deleted). */
  forgetModel(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    for (const type of this.conditionTypes.get(key) ?? []) {
      for (const status of CONDITION_STATUSES) this.modelConditions.remove({ namespace, name, type, status });
    }
    this.conditionTypes.delete(key);
  }
}

/**
 * FnolOperator: what @dot-i/k8s-operator's Operator base class is for. The base
 * supplies the operator's shape: a KubeConfig (we assign the one we are given,
 * so tests inject theirs), the logger interface, and the start() → init()
 * lifecycle; init() starts the manager, stop() stops it. Everything that runs
 * (caches, workers, resync, leader election) belongs to the manager
 * (manager/manager.ts); the reconcile to controller.ts.
 */
import Operator, { OperatorLogger } from '@dot-i/k8s-operator';
import { readFileSync } from 'node:fs';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { WorkloadIdentityToken } from '@fnol/model-fetch';
import type { Logger } from 'pino';
import { COMPARISON_PERIOD_MS, readComparison } from './comparison';
import { ComparisonCollector } from './comparison-collector';
import type { OperatorConfig } from './config';
import { fnolModelKeyOfCheck, Reconciler } from './controller';
import { ModelChecks } from './digest';
import { EventRecorder } from './events';
import { KubeClient } from './kube/client';
import { Manager } from './manager/manager';
import { OperatorMetrics } from './metrics';
import type { WorkQueue } from './queue';

function loggerAdapter(log: Logger): OperatorLogger {
  return {
    debug: (m) => log.debug(m),
    info: (m) => log.info(m),
    warn: (m) => log.warn(m),
    error: (m) => log.error(m),
  };
}

export interface FnolOperatorDeps {
  config: OperatorConfig;
  kubeConfig: KubeConfig;
  logger: Logger;
  metrics?: OperatorMetrics;
  /** Called when leadership is lost; the process should exit (a fresh start re-campaigns). */
  onLostLeadership?: () => void;
  /** Server-side timeout of the informers' watches (tests use a short one). */
  watchTimeoutSeconds?: number;
}

export class FnolOperator extends Operator {
  readonly metrics: OperatorMetrics;
  readonly client: KubeClient;
  readonly manager: Manager;
  readonly checks: ModelChecks;
  /** Reads the canary comparisons of mirroring FnolModels, off the workers. */
  readonly comparisons: ComparisonCollector;

  constructor(deps: FnolOperatorDeps) {
    super(loggerAdapter(deps.logger.child({ component: 'k8s-operator' })));
    // The base class loads the default kubeconfig; use the one we were given.
    this.kubeConfig = deps.kubeConfig;
    this.k8sApi = deps.kubeConfig.makeApiClient(CoreV1Api);
    const cfg = deps.config;
    const log = deps.logger;
    this.metrics = deps.metrics ?? new OperatorMetrics();
    this.client = new KubeClient(deps.kubeConfig, (verb, code, _s, resource) =>
      this.metrics.apiRequests.inc({ verb, resource, code: String(code) }),
    );
    this.manager = new Manager({
      config: cfg,
      client: this.client,
      metrics: this.metrics,
      log,
      ...(deps.onLostLeadership ? { onLostLeadership: deps.onLostLeadership } : {}),
      ...(deps.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: deps.watchTimeoutSeconds } : {}),
    });
    const queue = this.manager.queue;
    // Model checks run off the workers; a finished check queues its FnolModel again.
    this.checks = new ModelChecks({
      policy: cfg.modelPolicy,
      deadlineMs: cfg.modelFetchTimeoutMs,
      maxBytes: cfg.modelMaxBytes,
      ...(cfg.modelCaFile ? { ca: readFileSync(cfg.modelCaFile) } : {}),
      ...(cfg.modelIdentity ? { bearer: new WorkloadIdentityToken(cfg.modelIdentity) } : {}),
      maxConcurrent: cfg.modelChecksMaxConcurrent,
      perNamespace: cfg.modelChecksPerNamespace,
      onDone: (key) => queue.add(fnolModelKeyOfCheck(key)),
      onOutcome: (result) => {
        this.metrics.digestChecks.inc({ result });
        this.metrics.modelChecksRunning.set(this.checks.running);
        this.metrics.modelChecksWaiting.set(this.checks.waiting);
      },
      log: log.child({ component: 'model-check' }),
    });
    // Downloads in flight are stopped with the controllers: none holds a worker, none must hold the exit.
    this.manager.onStop(() => this.checks.close());
    // The canary comparisons are read off the workers too; changed figures queue their FnolModel.
    this.comparisons = new ComparisonCollector({
      periodMs: COMPARISON_PERIOD_MS,
      read: readComparison(this.client, log.child({ component: 'comparison' })),
      onChange: (key) => queue.add(key),
      log: log.child({ component: 'comparison' }),
    });
    this.manager.onStop(() => this.comparisons.close());
    const reconciler = new Reconciler(
      this.client,
      this.manager.caches,
      cfg,
      this.checks,
      this.comparisons,
      new EventRecorder(this.client, cfg.identity),
      this.metrics,
      log,
    );
    this.manager.setReconciler(async (key) => {
      const result = await reconciler.reconcile(key);
      this.metrics.modelChecksRunning.set(this.checks.running);
      this.metrics.modelChecksWaiting.set(this.checks.waiting);
      return result;
    });
  }

  get queue(): WorkQueue {
    return this.manager.queue;
  }

  /** True once this process reconciles (it is the leader, or election is off). */
  get active(): boolean {
    return this.manager.active;
  }

  /** Every cache has its first list. */
  get synced(): boolean {
    return this.manager.synced;
  }

  /** Called by the base class' start(). */
  protected override async init(): Promise<void> {
    await this.manager.start();
  }

  /** The base class' stop(): ends the watches (the caches); shutdown() is the graceful stop. */
  override stop(): void {
    this.manager.caches.stop();
  }

  /** Graceful stop: no new work, in-flight reconciles finish, the lease is handed back. */
  async shutdown(): Promise<void> {
    await this.manager.shutdown();
    this.client.close();
  }
}

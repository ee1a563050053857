/**
 * The manager, as controller-runtime has one: it owns the lifecycle of the
 * parts that make the operator run, and starts and stops them in order.
 *
 *   start:  leader election (if on) → on leading: caches (list, then watch;
 *           readiness waits for the first lists) → workers → resync timer
 *   stop:   resync timer → caches (watches end) → queue (no new work) →
 *           model checks → workers finish in-flight reconciles (≤ 10 s) →
 *           the lease is handed back
 *
 * Each part has one responsibility: informers.ts (list+watch caches),
 * workers.ts (queue → reconcile, back-off), resync.ts (periodic resync),
 * leader.ts (the Lease). The manager also maps cache events to work-queue keys:
 * a FnolModel to itself, an owned object to its controller FnolModel, a
 * ReplicaSet to the FnolModel named by its model label.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, KIND, Kinds, Labels } from '@fnol/api';
import type { OperatorConfig } from '../config';
import type { OperatorMetrics } from '../metrics';
import { WorkQueue } from '../queue';
import { INSTANCE_LABEL, MANAGED_BY } from '../reconcilers/common';
import { OWNED_KINDS } from '../reconcilers/index';
import type { KubeClient } from '../kube/client';
import { Caches, type InformerEventType } from './informers';
import { LeaderElector } from './leader';
import { Resync } from './resync';
import { Workers, type ReconcileOutcome } from './workers';

/** The label selector of every object the operator owns (set by reconcilers/common.ts). */
export const OWNED_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY},${Labels.model}`;

export interface ManagerOptions {
  config: OperatorConfig;
  client: KubeClient;
  metrics: OperatorMetrics;
  log: Logger;
  /** Called when leadership is lost; the process should exit (a fresh start re-campaigns). */
  onLostLeadership?: () => void;
  /** Server-side watch timeout of the informers (tests use a short one to exercise re-watching). */
  watchTimeoutSeconds?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileOutcome>;

export class Manager {
  readonly queue: WorkQueue;
  readonly caches: Caches;
  readonly resync: Resync;
  private readonly workers: Workers;
  private readonly elector: LeaderElector | undefined;
  private reconcileFn: Reconcile | undefined;
  private readonly stopHooks: Array<() => void> = [];
  private running = false;
  private stopping = false;
  private halted = false;

  constructor(private readonly opts: ManagerOptions) {
    const { config, metrics } = opts;
    this.queue = new WorkQueue({
      baseDelayMs: 500,
      maxDelayMs: 5 * 60_000,
      onDepthChange: (d) => metrics.queueDepth.set(d),
      onWait: (priority, seconds) => metrics.queueWait.observe({ priority }, seconds),
    });
    this.caches = new Caches(
      opts.client,
      {
        model: { ...Kinds.FnolModel, kind: KIND },
        owned: Object.values(OWNED_KINDS),
        replicaSet: { ...Kinds.ReplicaSet, kind: 'ReplicaSet' },
        // The reconcile reads a FnolModel's ReplicaSets by its selectorLabels().
        replicaSetIndexLabel: INSTANCE_LABEL,
      },
      config.watchNamespace ? [config.watchNamespace] : [],
      OWNED_SELECTOR,
      opts.log.child({ component: 'informer' }),
      opts.watchTimeoutSeconds,
    );
    this.wireEvents();
    this.workers = new Workers(
      this.queue,
      (key) => {
        if (!this.reconcileFn) throw new Error('no reconcile function set');
        return this.reconcileFn(key);
      },
      opts.log,
      {
        onResult: (result, seconds) => {
          metrics.reconciles.inc({ result });
          if (result === 'error') metrics.reconcileErrors.inc();
          metrics.reconcileDuration.observe(seconds);
        },
      },
    );
    this.resync = new Resync({
      periodMs: config.resyncPeriodMs,
      keys: () => this.caches.modelKeys(),
      addLow: (key) => this.queue.addLow(key),
    });
    if (config.leaderElection) {
      this.elector = new LeaderElector(
        opts.client,
        {
          name: config.leaseName,
          namespace: config.leaseNamespace,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
          onStartedLeading: () => {
            metrics.isLeader.set(1);
            void this.startControllers();
          },
          onStoppedLeading: () => {
            metrics.isLeader.set(0);
            void this.stopControllers().then(() => opts.onLostLeadership?.());
          },
        },
        opts.log.child({ component: 'leader-election' }),
      );
    }
  }

  /** The reconcile the workers run. */
  setReconciler(fn: Reconcile): void {
    this.reconcileFn = fn;
  }

  /** Called when the controllers stop (e.g. the model checks are closed). */
  onStop(hook: () => void): void {
    this.stopHooks.push(hook);
  }

  /** True once this process reconciles (it is the leader, or election is off). */
  get active(): boolean {
    return this.running;
  }

  /** Every cache has its first list. */
  get synced(): boolean {
    return this.running && this.caches.synced;
  }

  async start(): Promise<void> {
    if (this.elector) {
      this.elector.start();
    } else {
      this.opts.metrics.isLeader.set(1);
      await this.startControllers();
    }
  }

  private wireEvents(): void {
    const { metrics } = this.opts;
    for (const informer of this.caches.models) {
      informer.onEvent((_type: InformerEventType, obj: KubernetesObject) => {
        metrics.watchEvents.inc({ kind: KIND });
        // A deleted FnolModel is queued too: its reconcile finds it gone and
        // stops a model check still running for it.
        this.queue.add(`${obj.metadata?.namespace}/${obj.metadata?.name}`);
      });
    }
    for (const informers of this.caches.owned.values()) {
      for (const informer of informers) {
        informer.onEvent((type, obj) => {
          const owner = obj.metadata?.ownerReferences?.find(
            (o) => o.controller && o.kind === KIND && o.apiVersion.startsWith(`${GROUP}/`),
          );
          if (!owner) return;
          metrics.watchEvents.inc({ kind: informer.kind });
          this.enqueueOwner(type, obj.metadata?.namespace, owner.name);
        });
      }
    }
    for (const informer of this.caches.replicaSetInformers) {
      informer.onEvent((type, obj) => {
        const model = obj.metadata?.labels?.[Labels.model];
        if (!model) return;
        metrics.watchEvents.inc({ kind: 'ReplicaSet' });
        this.enqueueOwner(type, obj.metadata?.namespace, model);
      });
    }
  }

  private enqueueOwner(type: InformerEventType, namespace: string | undefined, name: string): void {
    if (!namespace) return;
    // A child removed together with its FnolModel needs no reconcile.
    if (type === 'DELETED' && !this.caches.model(namespace, name)) return;
    this.queue.add(`${namespace}/${name}`);
  }

  private async startControllers(): Promise<void> {
    if (this.running || this.stopping) return;
    this.running = true;
    await this.caches.start();
    // Stopped (shutdown or lost leadership) while the caches listed.
    if (this.stopping || this.halted) return;
    this.workers.start(this.opts.config.workers);
    this.resync.start();
    this.opts.log.info(
      {
        namespace: this.opts.config.watchNamespace || '(all)',
        workers: this.opts.config.workers,
        cached: this.caches.sizes(),
      },
      'reconciling FnolModels',
    );
  }

  private async stopControllers(): Promise<void> {
    this.halted = true;
    this.resync.stop();
    this.caches.stop();
    this.queue.shutDown();
    for (const hook of this.stopHooks) hook();
    // Let reconciles in flight finish (bounded) so no half-written state is left.
    await this.workers.drain(10_000);
    this.running = false;
  }

  /** Graceful stop: no new work, in-flight reconciles finish, the lease is handed back. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.stopControllers();
    await this.elector?.stop();
    this.opts.metrics.isLeader.set(0);
  }
}

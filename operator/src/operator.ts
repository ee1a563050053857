/**
 * The process wiring: @dot-i/k8s-operator's Operator base class supplies the
 * kubeconfig handling and the self-restarting watches; every watch event only
 * puts a key into our work queue, and workers run the Reconciler. Leader
 * election decides when the watches and workers start.
 */
import Operator, {
  ResourceEvent,
  ResourceEventType,
  OperatorLogger,
  ResourceMetaImpl,
} from '@dot-i/k8s-operator';
import { readFileSync } from 'node:fs';
import { CoreV1Api, KubeConfig, KubernetesObject, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, KIND, PLURAL, VERSION } from '@fnol/api';
import type { OperatorConfig } from './config';
import { Reconciler } from './controller';
import { ModelChecks } from './digest';
import { EventRecorder } from './events';
import { KubeClient } from './kube/client';
import { LeaderElector } from './leader';
import { OperatorMetrics } from './metrics';
import { WorkQueue } from './queue';
import { OWNED_KINDS } from './reconcilers/index';

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
}

export class FnolOperator extends Operator {
  readonly metrics: OperatorMetrics;
  readonly client: KubeClient;
  readonly queue: WorkQueue;
  readonly checks: ModelChecks;
  private readonly cfg: OperatorConfig;
  private readonly log: Logger;
  private readonly reconciler: Reconciler;
  private readonly elector: LeaderElector | undefined;
  private readonly known = new Set<string>();
  private readonly workers: Array<Promise<void>> = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private running = false;
  private stopping = false;
  private watching = false;
  private watchesStopped = false;
  private readonly activeWatches = new Map<string, { abort: () => void }>();

  constructor(deps: FnolOperatorDeps) {
    super(loggerAdapter(deps.logger.child({ component: 'k8s-operator' })));
    // The base class loads the default kubeconfig; use the one we were given.
    this.kubeConfig = deps.kubeConfig;
    this.k8sApi = deps.kubeConfig.makeApiClient(CoreV1Api);
    this.cfg = deps.config;
    this.log = deps.logger;
    this.metrics = deps.metrics ?? new OperatorMetrics();
    this.client = new KubeClient(deps.kubeConfig, (verb, code, _s, resource) =>
      this.metrics.apiRequests.inc({ verb, resource, code: String(code) }),
    );
    this.queue = new WorkQueue({
      baseDelayMs: 500,
      maxDelayMs: 5 * 60_000,
      onDepthChange: (d) => this.metrics.queueDepth.set(d),
    });
    // Model checks run off the workers; a finished check queues its FnolModel again.
    this.checks = new ModelChecks({
      policy: this.cfg.modelPolicy,
      deadlineMs: this.cfg.modelFetchTimeoutMs,
      maxBytes: this.cfg.modelMaxBytes,
      ...(this.cfg.modelCaFile ? { ca: readFileSync(this.cfg.modelCaFile) } : {}),
      maxConcurrent: this.cfg.modelChecksMaxConcurrent,
      perNamespace: this.cfg.modelChecksPerNamespace,
      onDone: (key) => this.queue.add(key),
      onOutcome: (result) => {
        this.metrics.digestChecks.inc({ result });
        this.metrics.modelChecksRunning.set(this.checks.running);
        this.metrics.modelChecksWaiting.set(this.checks.waiting);
      },
      log: this.log.child({ component: 'model-check' }),
    });
    this.reconciler = new Reconciler(
      this.client,
      this.cfg,
      this.checks,
      new EventRecorder(this.client, this.cfg.identity),
      this.metrics,
      this.log,
    );
    if (this.cfg.leaderElection) {
      this.elector = new LeaderElector(
        this.client,
        {
          name: this.cfg.leaseName,
          namespace: this.cfg.leaseNamespace,
          identity: this.cfg.identity,
          leaseDurationMs: this.cfg.leaseDurationMs,
          renewDeadlineMs: this.cfg.renewDeadlineMs,
          retryPeriodMs: this.cfg.retryPeriodMs,
          onStartedLeading: () => {
            this.metrics.isLeader.set(1);
            void this.startControllers();
          },
          onStoppedLeading: () => {
            this.metrics.isLeader.set(0);
            void this.stopControllers().then(() => deps.onLostLeadership?.());
          },
        },
        this.log.child({ component: 'leader-election' }),
      );
    }
  }

  /** True once this process reconciles (it is the leader, or election is off). */
  get active(): boolean {
    return this.running;
  }

  /** Watches started and the first list of every kind received. */
  get synced(): boolean {
    return this.watching;
  }

  /** Called by the base class' start(). */
  protected override async init(): Promise<void> {
    if (this.elector) {
      this.elector.start();
    } else {
      this.metrics.isLeader.set(1);
      await this.startControllers();
    }
  }

  /**
   * Same contract as the base class' watchResource (an endless watch that
   * re-lists when the server closes it, events as ResourceEvent), but a failed
   * watch is retried with back-off instead of ending the process, and stop()
   * ends it for good: the base class exits the process on any watch error,
   * its own abort at shutdown included.
   */
  protected override async watchResource(
    group: string,
    version: string,
    plural: string,
    onEvent: (event: ResourceEvent) => Promise<void>,
    namespace?: string,
  ): Promise<void> {
    const apiVersion = group ? `${group}/${version}` : version;
    const id = `${plural}.${apiVersion}`;
    const path = `${group ? `/apis/${group}/${version}` : `/api/${version}`}${namespace ? `/namespaces/${namespace}` : ''}/${plural}`;
    let failures = 0;
    const start = async (): Promise<void> => {
      if (this.watchesStopped) return;
      const retry = (err: unknown) => {
        this.activeWatches.delete(id);
        if (this.watchesStopped) return;
        failures = err ? failures + 1 : 0;
        const delay = err ? Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6)) : 200;
        if (err)
          this.log.warn(
            { watch: id, err: (err as Error).message, retryInMs: delay },
            'watch failed; restarting',
          );
        setTimeout(() => void start(), delay).unref();
      };
      try {
        const req = await new Watch(this.kubeConfig).watch(
          path,
          {},
          (phase: string, obj: KubernetesObject) => {
            if (phase !== 'ADDED' && phase !== 'MODIFIED' && phase !== 'DELETED') return;
            failures = 0;
            void onEvent({
              meta: ResourceMetaImpl.createWithPlural(plural, obj),
              object: obj,
              type: phase as ResourceEventType,
            }).catch((err: Error) => this.log.error({ watch: id, err: err.message }, 'event handler failed'));
          },
          retry,
        );
        if (this.watchesStopped) req.abort();
        else this.activeWatches.set(id, req);
      } catch (err) {
        retry(err);
      }
    };
    await start();
    this.log.debug({ watch: id }, 'watching');
  }

  override stop(): void {
    this.watchesStopped = true;
    for (const req of this.activeWatches.values()) req.abort();
    this.activeWatches.clear();
  }

  private async startControllers(): Promise<void> {
    if (this.running || this.stopping) return;
    this.running = true;
    this.watchesStopped = false;
    const ns = this.cfg.watchNamespace || undefined;
    await this.watchResource(GROUP, VERSION, PLURAL, async (e) => this.onModelEvent(e), ns);
    for (const kind of Object.values(OWNED_KINDS)) {
      await this.watchResource(kind.group, kind.version, kind.plural, async (e) => this.onOwnedEvent(e), ns);
    }
    this.watching = true;
    for (let i = 0; i < this.cfg.workers; i++) this.workers.push(this.work());
    this.resyncTimer = setInterval(() => {
      for (const key of this.known) this.queue.addLow(key);
    }, this.cfg.resyncPeriodMs);
    this.resyncTimer.unref();
    this.log.info({ namespace: ns ?? '(all)', workers: this.cfg.workers }, 'reconciling FnolModels');
  }

  private async onModelEvent(e: ResourceEvent): Promise<void> {
    this.metrics.watchEvents.inc({ kind: KIND });
    const key = `${e.meta.namespace}/${e.meta.name}`;
    if (e.type === 'DELETED') {
      this.known.delete(key);
      return;
    }
    this.known.add(key);
    this.queue.add(key);
  }

  private async onOwnedEvent(e: ResourceEvent): Promise<void> {
    const owner = e.object.metadata?.ownerReferences?.find(
      (o) => o.controller && o.kind === KIND && o.apiVersion.startsWith(`${GROUP}/`),
    );
    if (!owner) return;
    this.metrics.watchEvents.inc({ kind: e.meta.kind });
    const key = `${e.meta.namespace}/${owner.name}`;
    // A child deleted together with its FnolModel needs no reconcile.
    if (e.type === 'DELETED' && !this.known.has(key)) return;
    this.queue.add(key);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = this.metrics.reconcileDuration.startTimer();
      try {
        const result = await this.reconciler.reconcile(key);
        this.metrics.modelChecksRunning.set(this.checks.running);
        this.metrics.modelChecksWaiting.set(this.checks.waiting);
        if (result.requeueAfterMs !== undefined) {
          // The model check keeps its own back-off; this is no reconcile failure.
          this.queue.forget(key);
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconciles.inc({ result: 'requeue' });
        } else if (result.retry) {
          const delay = this.queue.addRateLimited(key);
          this.metrics.reconciles.inc({ result: 'requeue' });
          this.log.debug({ fnolmodel: key, delayMs: delay }, 'model check did not pass; will check again');
        } else {
          this.queue.forget(key);
          this.metrics.reconciles.inc({ result: 'success' });
        }
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.reconciles.inc({ result: 'error' });
        this.metrics.reconcileErrors.inc();
        this.log.error({ fnolmodel: key, err: (err as Error).message, retryInMs: delay }, 'reconcile failed');
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  private async stopControllers(): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.stop();
    this.queue.shutDown();
    // Downloads in flight are stopped: none holds a worker, none must hold the exit.
    this.checks.close();
    // Let reconciles in flight finish (bounded) so no half-written state is left.
    await Promise.race([Promise.all(this.workers), new Promise((r) => setTimeout(r, 10_000).unref())]);
    this.running = false;
    this.watching = false;
  }

  /** Graceful stop: no new work, in-flight reconciles finish, the lease is handed back. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.stopControllers();
    await this.elector?.stop();
    this.metrics.isLeader.set(0);
    this.client.close();
  }
}

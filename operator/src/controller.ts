/**
 * The FnolModel reconciler: level-triggered and idempotent. It reads the
 * FnolModel and what it owns, checks a new model before rolling it out, applies
 * the desired children (server-side apply, skipped when already up to date),
 * removes children the spec no longer asks for, and writes status only when it
 * changed. It never asks which event woke it up.
 */
import { readFileSync } from 'node:fs';
import type { KubernetesObject, V1Deployment, V1ReplicaSet, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION, GROUP, PLURAL, VERSION } from './api/crd';
import type { FnolModel, FnolModelStatus } from './api/types';
import type { OperatorConfig } from './config';
import type { DigestVerifier } from './digest';
import type { EventRecorder } from './events';
import type { KubeClient } from './kube/client';
import { upToDate, withAppliedHash } from './kube/compare';
import type { OperatorMetrics } from './metrics';
import { selectorString } from './reconcilers/common';
import { sameModel, ServedModel, servedModelOf } from './reconcilers/deployment';
import { desiredChildren, OWNED_KINDS, resourcePath } from './reconcilers/index';
import { Blocked, computeStatus, statusEqual, transitionEvents } from './status';

export function modelPath(namespace: string, name?: string): string {
  return `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}${name ? `/${name}` : ''}`;
}

export interface ReconcileResult {
  /** Try again with back-off although nothing failed (the model check did not pass). */
  retry?: boolean;
}

interface Owned {
  metadata?: { uid?: string; ownerReferences?: Array<{ uid?: string; controller?: boolean }> };
}

function controlledBy(obj: Owned, fm: FnolModel): boolean {
  return !!obj.metadata?.ownerReferences?.some((o) => o.uid === fm.metadata.uid && o.controller);
}

export class Reconciler {
  private readonly modelCa: Buffer | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly cfg: OperatorConfig,
    private readonly verifier: DigestVerifier,
    private readonly events: EventRecorder,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.modelCa = cfg.modelCaFile ? readFileSync(cfg.modelCaFile) : undefined;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const fm = await this.client.get<FnolModel>(modelPath(namespace, name));
    // Gone or going: the garbage collector removes the children through their owner references.
    if (!fm || fm.metadata.deletionTimestamp) return {};
    const log = this.log.child({ fnolmodel: key, generation: fm.metadata.generation });

    // Read every child at once: the reconcile's latency is mostly round trips.
    const kinds = Object.values(OWNED_KINDS);
    const lives = await Promise.all(
      kinds.map((k) => this.client.get<KubernetesObject & Owned>(resourcePath(k, namespace, name))),
    );
    const live = new Map<string, (KubernetesObject & Owned) | undefined>(
      kinds.map((k, i) => [k.kind, lives[i]]),
    );
    let deployment = live.get('Deployment') as V1Deployment | undefined;
    const served = deployment && controlledBy(deployment, fm) ? servedModelOf(deployment) : undefined;

    // Decide which model the Deployment serves: the spec's once it passed the
    // check; otherwise leave the serving Deployment untouched.
    let blocked: Blocked | undefined;
    let model: ServedModel | undefined = fm.spec.model;
    if (!sameModel(served, fm.spec.model) && this.cfg.verifyModelDigest) {
      blocked = await this.checkModel(fm, log);
      if (blocked) model = undefined;
    }

    // The children are independent of each other: apply (or delete) them all
    // at once, one round trip instead of one per kind.
    let applyError: Blocked | undefined;
    await Promise.all(
      desiredChildren(fm, this.cfg, model).map(async (child) => {
        const path = resourcePath(child.kind, namespace, name);
        const current = live.get(child.kind.kind);
        if (current && !controlledBy(current, fm)) {
          applyError = {
            reason: 'ResourceConflict',
            message: `${child.kind.kind} ${namespace}/${name} exists and is not owned by this FnolModel; delete or rename it`,
          };
          return;
        }
        if (!child.object) {
          if (current) {
            await this.client.delete(path, current.metadata?.uid);
            log.info({ kind: child.kind.kind }, 'deleted object the spec no longer asks for');
          }
          return;
        }
        const desired = withAppliedHash(child.object);
        if (current && upToDate(desired, current)) {
          this.metrics.writesSkipped.inc();
          return;
        }
        const applied = await this.client.apply<KubernetesObject>(path, desired, this.cfg.fieldManager);
        log.info({ kind: child.kind.kind, drift: !!current }, current ? 'applied changes' : 'created');
        if (child.kind === OWNED_KINDS.Deployment) deployment = applied as V1Deployment;
      }),
    );

    // A Deployment the Deployment controller has not processed has no ReplicaSet yet.
    const replicaSets =
      deployment && deployment.status?.observedGeneration !== undefined
        ? (
            await this.client.list<V1ReplicaSet>(
              `/apis/apps/v1/namespaces/${namespace}/replicasets`,
              selectorString(fm),
            )
          ).items
        : [];
    const status = computeStatus({
      fm,
      deployment,
      replicaSets,
      blocked: blocked ?? applyError,
      now: this.clock(),
    });
    await this.writeStatus(fm, status, log);
    return { retry: !!blocked || !!applyError };
  }

  /** Downloads and checks a model not yet served; undefined when it may be rolled out. */
  private async checkModel(fm: FnolModel, log: Logger): Promise<Blocked | undefined> {
    let sasToken: string | undefined;
    const creds = fm.spec.model.credentialsSecretRef;
    if (creds) {
      const secret = await this.client.get<V1Secret>(
        `/api/v1/namespaces/${fm.metadata.namespace}/secrets/${creds.name}`,
      );
      const key = creds.key ?? 'sasToken';
      const data = secret?.data?.[key];
      if (!data) {
        return {
          reason: 'ModelUnreachable',
          message: `Secret ${creds.name} ${secret ? `has no key ${key}` : 'does not exist'} (spec.model.credentialsSecretRef); create it with the SAS token under key ${key}`,
        };
      }
      sasToken = Buffer.from(data, 'base64').toString('utf8').trim();
    }
    const started = Date.now();
    const result = await this.verifier.verify(fm.spec.model, {
      timeoutMs: this.cfg.modelFetchTimeoutMs,
      maxBytes: this.cfg.modelMaxBytes,
      sasToken,
      ca: this.modelCa,
    });
    const outcome = result.ok
      ? result.skipped
        ? 'skipped'
        : result.cached
          ? 'cached'
          : 'ok'
      : result.reason === 'ModelDigestMismatch'
        ? 'mismatch'
        : 'unreachable';
    this.metrics.digestChecks.inc({ result: outcome });
    if (result.ok) {
      if (outcome === 'ok')
        log.info({ uri: fm.spec.model.uri, ms: Date.now() - started }, 'model digest verified');
      return undefined;
    }
    log.warn({ reason: result.reason, uri: fm.spec.model.uri }, result.message);
    return { reason: result.reason, message: result.message };
  }

  private async writeStatus(fm: FnolModel, status: FnolModelStatus, log: Logger): Promise<void> {
    const prev = fm.status;
    if (prev && statusEqual(prev, status)) return;
    // Merge patch: fields that disappeared must be sent as null.
    const patch: Record<string, unknown> = { ...status };
    for (const k of Object.keys(prev ?? {})) if (!(k in status)) patch[k] = null;
    await this.client.mergePatch(
      `${modelPath(fm.metadata.namespace, fm.metadata.name)}/status`,
      { apiVersion: API_VERSION, kind: 'FnolModel', status: patch },
      this.cfg.fieldManager,
    );
    log.info(
      { phase: status.phase, activeVersion: status.activeVersion, ready: status.readyReplicas },
      'status updated',
    );
    const now = this.clock();
    for (const ev of transitionEvents(prev, status)) {
      try {
        await this.events.record(fm, ev, now);
      } catch (err) {
        // An event is informative; failing to record one must not fail the reconcile.
        log.warn({ err: (err as Error).message, reason: ev.reason }, 'could not record event');
      }
    }
  }
}

/**
 * The FnolModel reconciler: level-triggered and idempotent. It reads the
 * FnolModel and what it owns from the manager's caches, checks a new model
 * before rolling it out, applies the desired children (server-side apply,
 * skipped when already up to date), removes children the spec no longer asks
 * for, and writes status only when it changed. It never asks which event woke
 * it up.
 *
 * Reading a cache instead of the API server is safe here because:
 * - every write's answer goes back into the cache (observe), so the next
 *   reconcile never works from an older version of what this process wrote;
 * - a cache that lags behind someone else's write only delays the reaction:
 *   that write's watch event queues the key again, and the reconcile is
 *   idempotent (a redundant apply changes nothing);
 * - a child missing from the cache is read from the API server (GET) before
 *   it is created: an object of the same name that the operator does not own
 *   carries none of its labels, so it is never in the cache, and must not be
 *   taken over by a forced apply (status ResourceConflict instead);
 * - deletes carry a UID precondition, so a stale cache cannot delete a newer
 *   object of the same name.
 * At steady state (all children exist) a reconcile makes no read request.
 */
import type { KubernetesObject, V1Deployment, V1ReplicaSet, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { checkTarget, ModelFetchError } from '@fnol/model-fetch';
import {
  API_VERSION,
  apiPath,
  fnolModelPath,
  Kinds,
  KIND,
  Labels,
  Reasons,
  sameModel,
  type FnolModel,
  type FnolModelStatus,
} from '@fnol/api';
import type { OperatorConfig } from './config';
import type { CheckState, ModelChecks } from './digest';
import type { EventRecorder } from './events';
import type { KubeClient } from './kube/client';
import type { ReadCache } from './manager/informers';
import { upToDate, withAppliedHash } from './kube/compare';
import type { OperatorMetrics } from './metrics';
import { selectorLabels } from './reconcilers/common';
import { ServedModel, servedModelOf } from './reconcilers/deployment';
import { desiredChildren, OWNED_KINDS, resourcePath } from './reconcilers/index';
import { Blocked, computeStatus, statusEqual, transitionEvents } from './status';

export function modelPath(namespace: string, name?: string): string {
  return fnolModelPath(namespace, name);
}

/**
 * The label that marks a Secret as usable by spec.model.credentialsSecretRef.
 * Without it the operator neither reads the token nor lets a scorer mount the
 * Secret: whoever may write a FnolModel cannot send just any Secret of the
 * namespace to a model host.
 */
export const LABEL_MODEL_CREDENTIALS = Labels.modelCredentials;

export interface ReconcileResult {
  /** Try again with back-off although nothing failed (the spec's model may not be used yet). */
  retry?: boolean;
  /** Reconcile again after this delay: a failed model check's own back-off. */
  requeueAfterMs?: number;
}

type ModelAccess = { ok: true; secretPath?: string; sasToken?: string } | { ok: false; blocked: Blocked };

interface Owned {
  metadata?: { uid?: string; ownerReferences?: Array<{ uid?: string; controller?: boolean }> };
}

function controlledBy(obj: Owned, fm: FnolModel): boolean {
  return !!obj.metadata?.ownerReferences?.some((o) => o.uid === fm.metadata.uid && o.controller);
}

export class Reconciler {
  constructor(
    private readonly client: KubeClient,
    private readonly cache: ReadCache,
    private readonly cfg: OperatorConfig,
    private readonly checks: ModelChecks,
    private readonly events: EventRecorder,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const fm = this.cache.model<FnolModel>(namespace, name);
    // Gone or going: the garbage collector removes the children through their owner references.
    if (!fm || fm.metadata.deletionTimestamp) {
      this.checks.cancel(key);
      this.metrics.forgetModel(namespace, name);
      return {};
    }
    const log = this.log.child({ fnolmodel: key, generation: fm.metadata.generation });

    // What this FnolModel owns, from the caches (label-selected: the operator's objects only).
    const live = new Map<string, (KubernetesObject & Owned) | undefined>(
      Object.values(OWNED_KINDS).map((k) => [k.kind, this.cache.child(k.kind, namespace, name)]),
    );
    let deployment = live.get('Deployment') as V1Deployment | undefined;
    const served = deployment && controlledBy(deployment, fm) ? servedModelOf(deployment) : undefined;

    // Decide which model the Deployment serves: the spec's once its host and
    // credentials are allowed and it passed the check; otherwise leave the
    // serving Deployment untouched (it never mounts a refused Secret).
    let blocked: Blocked | undefined;
    let verifying = false;
    let refused = false;
    let requeueAfterMs: number | undefined;
    let model: ServedModel | undefined = fm.spec.model;
    let access = await this.modelAccess(fm);
    const checkNeeded = !sameModel(served, fm.spec.model) && this.cfg.verifyModelDigest;
    if (access.ok && access.secretPath && checkNeeded) access = await this.sasToken(fm, access.secretPath);
    if (!access.ok) {
      blocked = access.blocked;
      refused = true;
      model = undefined;
      this.checks.cancel(key);
      log.warn({ reason: blocked.reason }, blocked.message);
    } else if (!checkNeeded) {
      // Served already (or checks are off): a check still running for an older spec is moot.
      this.checks.cancel(key);
    } else {
      const check = this.checkModel(fm, key, access.sasToken);
      if (check.state !== 'verified') model = undefined;
      if (check.state === 'pending') {
        blocked = check.previous;
        verifying = !check.previous;
      } else if (check.state === 'failed') {
        blocked = check.blocked;
        requeueAfterMs = check.retryInMs;
      }
    }

    // The children are independent of each other: apply (or delete) them all
    // at once, one round trip instead of one per kind.
    let applyError: Blocked | undefined;
    await Promise.all(
      desiredChildren(fm, this.cfg, model).map(async (child) => {
        const path = resourcePath(child.kind, namespace, name);
        let current = live.get(child.kind.kind);
        // Not in the cache and wanted: make sure no object of that name exists
        // that the operator does not own (it would not be in the cache).
        if (!current && child.object) current = await this.client.get<KubernetesObject & Owned>(path);
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
        this.cache.observe(child.kind.kind, applied);
        log.info({ kind: child.kind.kind, drift: !!current }, current ? 'applied changes' : 'created');
        if (child.kind === OWNED_KINDS.Deployment) deployment = applied as V1Deployment;
      }),
    );

    // A Deployment the Deployment controller has not processed has no ReplicaSet yet.
    const replicaSets =
      deployment && deployment.status?.observedGeneration !== undefined
        ? (this.cache.replicaSets(namespace, selectorLabels(fm)) as V1ReplicaSet[])
        : [];
    const status = computeStatus({
      fm,
      deployment,
      replicaSets,
      blocked: blocked ?? applyError,
      verifying,
      now: this.clock(),
    });
    this.metrics.setModelConditions(namespace, name, status.conditions ?? []);
    await this.writeStatus(fm, status, log);
    // A running check queues the FnolModel again when it finishes.
    return {
      retry: refused || !!applyError,
      ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
    };
  }

  /**
   * Whether the spec's model may be fetched at all, before any request: the
   * host is on MODEL_ALLOWED_HOSTS (https, or http in local mode) and the
   * credentials Secret, if any, is marked for model downloads. Checked on every
   * reconcile, digest check or not, because the scorer Deployment would mount
   * the Secret and the scorer download from the host.
   */
  private async modelAccess(fm: FnolModel): Promise<ModelAccess> {
    const { uri, credentialsSecretRef: creds } = fm.spec.model;
    if (!uri.startsWith('file:')) {
      try {
        checkTarget(uri, this.cfg.modelPolicy);
      } catch (err) {
        if (!(err instanceof ModelFetchError)) throw err;
        const reason =
          err.kind === 'host-not-allowed' || err.kind === 'scheme-not-allowed'
            ? Reasons.ModelHostNotAllowed
            : Reasons.ModelUnreachable;
        return { ok: false, blocked: { reason, message: `spec.model.uri refused: ${err.message}` } };
      }
    }
    if (!creds) return { ok: true };
    // Labels first, from the Secret's metadata only: the data of a Secret that is
    // not marked for model downloads never reaches the operator.
    const path = apiPath(Kinds.Secret, { namespace: fm.metadata.namespace, name: creds.name });
    const key = creds.key;
    const meta = await this.client.getMetadata(path);
    if (!meta) {
      return {
        ok: false,
        blocked: {
          reason: Reasons.ModelUnreachable,
          message: `Secret ${creds.name} does not exist (spec.model.credentialsSecretRef); create it with the SAS token under key ${key} and the label ${LABEL_MODEL_CREDENTIALS}=true`,
        },
      };
    }
    if (meta.labels?.[LABEL_MODEL_CREDENTIALS] !== 'true') {
      return {
        ok: false,
        blocked: {
          reason: Reasons.CredentialsSecretNotAllowed,
          message: `Secret ${creds.name} is not marked for model downloads: spec.model.credentialsSecretRef may only name a Secret labelled ${LABEL_MODEL_CREDENTIALS}: "true"; if it holds the model's SAS token, ask the namespace admin to run kubectl label secret ${creds.name} ${LABEL_MODEL_CREDENTIALS}=true`,
        },
      };
    }
    return { ok: true, secretPath: path };
  }

  /** The SAS token of a marked Secret, read only when a check needs it. */
  private async sasToken(fm: FnolModel, secretPath: string): Promise<ModelAccess> {
    const creds = fm.spec.model.credentialsSecretRef!;
    const key = creds.key;
    const secret = await this.client.get<V1Secret>(secretPath);
    const data = secret?.data?.[key];
    if (!secret || secret.metadata?.labels?.[LABEL_MODEL_CREDENTIALS] !== 'true' || !data) {
      return {
        ok: false,
        blocked: {
          reason: Reasons.ModelUnreachable,
          message: `Secret ${creds.name} has no key ${key} (spec.model.credentialsSecretRef); put the SAS token under key ${key}`,
        },
      };
    }
    return { ok: true, sasToken: Buffer.from(data, 'base64').toString('utf8').trim() };
  }

  /** The state of the check of a model not yet served; starts it in the background when needed. */
  private checkModel(fm: FnolModel, key: string, sasToken: string | undefined): CheckState {
    const { uri, sha256, credentialsSecretRef: creds } = fm.spec.model;
    if (uri.startsWith('file:')) {
      // file:// models live in the scorer image or a volume; the scorer checks them at load.
      this.metrics.digestChecks.inc({ result: 'skipped' });
      return { state: 'verified', cached: false };
    }
    return this.checks.check({
      key,
      namespace: fm.metadata.namespace,
      uri,
      sha256,
      credentials: creds ? `${creds.name}/${creds.key}` : '',
      ...(sasToken !== undefined ? { sasToken } : {}),
    });
  }

  private async writeStatus(fm: FnolModel, status: FnolModelStatus, log: Logger): Promise<void> {
    const prev = fm.status;
    if (prev && statusEqual(prev, status)) return;
    // Merge patch: fields that disappeared must be sent as null.
    const patch: Record<string, unknown> = { ...status };
    for (const k of Object.keys(prev ?? {})) if (!(k in status)) patch[k] = null;
    const written = await this.client.mergePatch<FnolModel>(
      fnolModelPath(fm.metadata.namespace, fm.metadata.name, 'status'),
      { apiVersion: API_VERSION, kind: KIND, status: patch },
      this.cfg.fieldManager,
    );
    // The next reconcile compares with what was written, not with a cache that lags behind it.
    if (written?.metadata) this.cache.observe(KIND, written);
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

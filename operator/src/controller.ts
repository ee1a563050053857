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
import type {
  KubernetesObject,
  V1Deployment,
  V1Service,
  V1ReplicaSet,
  V1Secret,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { checkTarget, ModelFetchError } from '@fnol/model-fetch';
import {
  API_VERSION,
  apiPath,
  canaryName,
  fnolModelPath,
  Kinds,
  KIND,
  Labels,
  Reasons,
  sameModel,
  type FnolModel,
  type FnolModelSpecModel,
  type FnolModelStatus,
} from '@fnol/api';
import type { ComparisonCollector } from './comparison-collector';
import type { OperatorConfig } from './config';
import type { CheckState, ModelChecks } from './digest';
import type { EventRecorder } from './events';
import type { KubeClient } from './kube/client';
import type { ReadCache } from './manager/informers';
import { upToDate, withAppliedHash } from './kube/compare';
import type { OperatorMetrics } from './metrics';
import { selectorLabels } from './reconcilers/common';
import { appliedMirrorOf, mirrorOf, ServedModel, servedModelOf } from './reconcilers/deployment';
import { appliedCanaryWeight, canaryWeight, routeMayReachCandidate } from './reconcilers/httproute';
import { desiredChildren, OWNED_KINDS, resourcePath } from './reconcilers/index';
import { payloadLogSecrets } from './reconcilers/payload-log';
import { Blocked, CanaryInput, computeStatus, statusEqual, transitionEvents } from './status';

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

interface ModelDecision {
  /** What the Deployment should serve; undefined: leave it as it is. */
  model: ServedModel | undefined;
  blocked?: Blocked;
  /** The model is being downloaded for its first check. */
  verifying: boolean;
  /** Refused before any download (host, credentials): retried with back-off. */
  refused: boolean;
  requeueAfterMs?: number;
}

/** A candidate kept until the gateway stops routing to it is looked at again this often. */
export const CANDIDATE_RECHECK_MS = 2_000;
/** A FnolModel with spec.gateway on a cluster without the Gateway API is looked at again this often. */
export const GATEWAY_RECHECK_MS = 60_000;

/** The model check key of a FnolModel's candidate (spec.canary.model), apart from spec.model's. */
export function canaryCheckKey(key: string): string {
  return `${key}${CANARY_CHECK_SUFFIX}`;
}
const CANARY_CHECK_SUFFIX = '#canary';

/** The FnolModel (namespace/name) a model check key belongs to. */
export function fnolModelKeyOfCheck(checkKey: string): string {
  return checkKey.endsWith(CANARY_CHECK_SUFFIX) ? checkKey.slice(0, -CANARY_CHECK_SUFFIX.length) : checkKey;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON merge patch (RFC 7386) from `prev` to `next`: removed keys as null at any depth, arrays replaced. */
export function mergePatchOf(prev: object, next: object): Record<string, unknown> {
  const p = prev as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) {
    if (v === undefined) continue;
    const before = p[k];
    patch[k] = isPlainObject(v) && isPlainObject(before) ? mergePatchOf(before, v) : v;
  }
  for (const k of Object.keys(p)) if (!(k in patch)) patch[k] = null;
  return patch;
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

interface Owned {
  metadata?: { uid?: string; ownerReferences?: Array<{ uid?: string; controller?: boolean }> };
}

function controlledBy(obj: Owned, fm: FnolModel): boolean {
  return !!obj.metadata?.ownerReferences?.some((o) => o.uid === fm.metadata.uid && o.controller);
}

export class Reconciler {
  /** When this process last wrote each FnolModel's HTTPRoute (ms), for routeMayReachCandidate. */
  private readonly routeWrittenAt = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly cache: ReadCache,
    private readonly cfg: OperatorConfig,
    private readonly checks: ModelChecks,
    private readonly comparisons: ComparisonCollector,
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
      this.checks.cancel(canaryCheckKey(key));
      this.comparisons.follow(key, undefined);
      this.routeWrittenAt.delete(key);
      this.metrics.forgetModel(namespace, name);
      return {};
    }
    const log = this.log.child({ fnolmodel: key, generation: fm.metadata.generation });
    const candidate = canaryName(name);

    // What this FnolModel owns, from the caches (label-selected: the operator's objects only).
    const live = new Map<string, (KubernetesObject & Owned) | undefined>();
    const liveKey = (kind: string, objName: string) => `${kind}/${objName}`;
    for (const k of Object.values(OWNED_KINDS)) {
      for (const n of [name, candidate]) live.set(liveKey(k.kind, n), this.cache.child(k.kind, namespace, n));
    }
    let deployment = live.get(liveKey('Deployment', name)) as V1Deployment | undefined;
    let canaryDeployment = live.get(liveKey('Deployment', candidate)) as V1Deployment | undefined;
    if (canaryDeployment && !controlledBy(canaryDeployment, fm)) canaryDeployment = undefined;
    const served = deployment && controlledBy(deployment, fm) ? servedModelOf(deployment) : undefined;

    // Decide which model the Deployment serves: the spec's once its host and
    // credentials are allowed and it passed the check; otherwise leave the
    // serving Deployment untouched (it never mounts a refused Secret).
    const stable = await this.decideModel(fm, key, fm.spec.model, 'spec.model', served, log);
    // The candidate goes through the same checks under its own key, so the two
    // checks never cancel each other; until it passed, no candidate pod starts.
    const canarySpec = fm.spec.canary;
    let canary: ModelDecision | undefined;
    if (canarySpec) {
      const servedCanary = canaryDeployment ? servedModelOf(canaryDeployment) : undefined;
      canary = await this.decideModel(
        fm,
        canaryCheckKey(key),
        canarySpec.model,
        'spec.canary.model',
        servedCanary,
        log,
      );
    } else {
      this.checks.cancel(canaryCheckKey(key));
    }

    // Ready pods of the candidate serving the spec's candidate model.
    const candidateReady = (dep: V1Deployment | undefined) =>
      canarySpec && dep && sameModel(servedModelOf(dep), canarySpec.model)
        ? (dep.status?.readyReplicas ?? 0)
        : 0;
    // Mirroring starts once the candidate has ready pods (copies sent earlier
    // would only count as candidate errors), and stays while it is applied.
    const canaryService = live.get(liveKey('Service', candidate)) as V1Service | undefined;
    const wantedMirror = mirrorOf(fm, canaryService?.spec?.clusterIP);
    const appliedMirror = appliedMirrorOf(deployment);
    const mirror =
      wantedMirror &&
      (candidateReady(canaryDeployment) > 0 || appliedMirror?.version === wantedMirror.version)
        ? wantedMirror
        : undefined;
    const httpRoutes = this.cache.served(OWNED_KINDS.HTTPRoute.kind, namespace);
    const gatewayMissing = !!fm.spec.gateway && !httpRoutes;

    // The children are independent of each other: apply (or delete) them all
    // at once, one round trip instead of one per kind.
    let applyError: Blocked | undefined;
    const children = desiredChildren(fm, this.cfg, {
      model: stable.model,
      canaryModelReady: !!canary?.model,
      mirror,
      canaryWeight: canaryWeight(fm, candidateReady(canaryDeployment)),
      httpRoutes,
    });
    let route: KubernetesObject | undefined = live.get(liveKey('HTTPRoute', name));
    const liveRoute = route;
    let candidateKept = false;
    await Promise.all(
      children.map(async (child) => {
        const path = resourcePath(child.kind, namespace, child.name);
        const kind = child.kind.kind;
        let current = live.get(liveKey(kind, child.name));
        if (!child.object) {
          // The candidate's Service and pods go only once the gateway no
          // longer routes to them: deleting them first fails its requests.
          if (
            child.name === candidate &&
            (kind === 'Service' || kind === 'Deployment') &&
            current &&
            routeMayReachCandidate(liveRoute, fm, this.routeWrittenAt.get(key), this.clock())
          ) {
            candidateKept = true;
            return;
          }
          // Not wanted: delete it if this FnolModel owns it. An object of that
          // name it does not own (e.g. the Deployment of a FnolModel named
          // <name>-canary) is someone else's and is left alone.
          if (current && controlledBy(current, fm)) {
            await this.client.delete(path, current.metadata?.uid);
            log.info({ kind, name: child.name }, 'deleted object the spec no longer asks for');
          }
          return;
        }
        // Not in the cache and wanted: make sure no object of that name exists
        // that the operator does not own (it would not be in the cache).
        if (!current) current = await this.client.get<KubernetesObject & Owned>(path);
        if (current && !controlledBy(current, fm)) {
          applyError = {
            reason: 'ResourceConflict',
            message: `${kind} ${namespace}/${child.name} exists and is not owned by this FnolModel; delete or rename it`,
          };
          return;
        }
        const desired = withAppliedHash(child.object);
        if (current && upToDate(desired, current)) {
          this.metrics.writesSkipped.inc();
          return;
        }
        const applied = await this.client.apply<KubernetesObject>(path, desired, this.cfg.fieldManager);
        this.cache.observe(kind, applied);
        log.info({ kind, name: child.name, drift: !!current }, current ? 'applied changes' : 'created');
        if (child.kind === OWNED_KINDS.Deployment) {
          if (child.name === name) deployment = applied as V1Deployment;
          else canaryDeployment = applied as V1Deployment;
        }
        if (child.kind === OWNED_KINDS.HTTPRoute) {
          route = applied;
          this.routeWrittenAt.set(key, this.clock().getTime());
        }
      }),
    );

    // A Deployment the Deployment controller has not processed has no ReplicaSet yet.
    const replicaSets =
      deployment && deployment.status?.observedGeneration !== undefined
        ? (this.cache.replicaSets(namespace, selectorLabels(fm)) as V1ReplicaSet[])
        : [];
    let requeueAfterMs = minDefined(stable.requeueAfterMs, canary?.requeueAfterMs);
    // A cluster without the Gateway API: look again now and then (the cache lists it again too).
    if (gatewayMissing) requeueAfterMs = minDefined(requeueAfterMs, GATEWAY_RECHECK_MS);
    // The route's status (a watch event) usually comes first; this is the fallback.
    if (candidateKept) requeueAfterMs = minDefined(requeueAfterMs, CANDIDATE_RECHECK_MS);

    let canaryInput: CanaryInput | undefined;
    if (canarySpec && canary) {
      const mirrored = appliedMirrorOf(deployment);
      const mirrorPercent = mirrored?.version === canarySpec.model.version ? mirrored.percent : 0;
      // Read off the workers by the collector, which queues this FnolModel when they change.
      const collected = this.comparisons.follow(
        key,
        mirrorPercent > 0 ? canarySpec.model.version : undefined,
      );
      const previous =
        fm.status?.canary?.version === canarySpec.model.version ? fm.status.canary.comparison : undefined;
      const comparison = mirrorPercent > 0 ? (collected ?? previous) : undefined;
      canaryInput = {
        deployment: canaryDeployment,
        ...(canary.blocked ? { blocked: canary.blocked } : {}),
        ...(canary.verifying ? { verifying: true } : {}),
        trafficPercent: fm.spec.gateway && httpRoutes ? appliedCanaryWeight(route, fm) : 0,
        mirrorPercent,
        ...(comparison ? { comparison } : {}),
      };
    } else {
      this.comparisons.follow(key, undefined);
    }
    const status = computeStatus({
      fm,
      deployment,
      replicaSets,
      blocked: stable.blocked ?? applyError,
      verifying: stable.verifying,
      gatewayMissing,
      ...(canaryInput ? { canary: canaryInput } : {}),
      now: this.clock(),
    });
    this.metrics.setModelConditions(namespace, name, status.conditions ?? []);
    await this.writeStatus(fm, status, log);
    // A running check queues the FnolModel again when it finishes.
    return {
      retry: stable.refused || !!canary?.refused || !!applyError,
      ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
    };
  }

  /**
   * What a Deployment should serve for a model field of the spec (spec.model
   * or spec.canary.model): the spec's model once its host and credentials are
   * allowed and it passed the check; undefined (leave the Deployment as it is)
   * while it is checked or after it was refused.
   */
  private async decideModel(
    fm: FnolModel,
    checkKey: string,
    spec: FnolModelSpecModel,
    field: string,
    served: ServedModel | undefined,
    log: Logger,
  ): Promise<ModelDecision> {
    const decision: ModelDecision = { model: spec, verifying: false, refused: false };
    let access = await this.modelAccess(fm, spec, field);
    if (access.ok) {
      const logging = await this.payloadLogAccess(fm);
      if (logging) access = { ok: false, blocked: logging };
    }
    const checkNeeded = !sameModel(served, spec) && this.cfg.verifyModelDigest;
    if (access.ok && access.secretPath && checkNeeded)
      access = await this.sasToken(spec, field, access.secretPath);
    if (!access.ok) {
      decision.blocked = access.blocked;
      decision.refused = true;
      decision.model = undefined;
      this.checks.cancel(checkKey);
      log.warn({ reason: access.blocked.reason, field }, access.blocked.message);
    } else if (!checkNeeded) {
      // Served already (or checks are off): a check still running for an older spec is moot.
      this.checks.cancel(checkKey);
    } else {
      const check = this.checkModel(fm, checkKey, spec, field, access.sasToken);
      if (check.state !== 'verified') decision.model = undefined;
      if (check.state === 'pending') {
        if (check.previous) decision.blocked = check.previous;
        decision.verifying = !check.previous;
      } else if (check.state === 'failed') {
        decision.blocked = check.blocked;
        decision.requeueAfterMs = check.retryInMs;
      }
    }
    return decision;
  }

  /**
   * Whether the spec's model may be fetched at all, before any request: the
   * host is on MODEL_ALLOWED_HOSTS (https, or http in local mode) and the
   * credentials Secret, if any, is marked for model downloads. Checked on every
   * reconcile, digest check or not, because the scorer Deployment would mount
   * the Secret and the scorer download from the host.
   */
  private async modelAccess(fm: FnolModel, spec: FnolModelSpecModel, field: string): Promise<ModelAccess> {
    const { uri, credentialsSecretRef: creds } = spec;
    const oidc = fm.spec.auth?.oidc;
    if (
      oidc &&
      !this.cfg.modelPolicy.localMode &&
      [oidc.issuer, oidc.jwksUri].some((u) => u?.startsWith('http:'))
    ) {
      return {
        ok: false,
        blocked: {
          reason: Reasons.OidcIssuerNotAllowed,
          message:
            'spec.auth.oidc uses plain http://, accepted only when the operator runs in local mode; use the https:// issuer and jwksUri',
        },
      };
    }
    if (!uri.startsWith('file:')) {
      try {
        checkTarget(uri, this.cfg.modelPolicy);
      } catch (err) {
        if (!(err instanceof ModelFetchError)) throw err;
        const reason =
          err.kind === 'host-not-allowed' || err.kind === 'scheme-not-allowed'
            ? Reasons.ModelHostNotAllowed
            : Reasons.ModelUnreachable;
        return { ok: false, blocked: { reason, message: `${field}.uri refused: ${err.message}` } };
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
          message: `Secret ${creds.name} does not exist (${field}.credentialsSecretRef); create it with the SAS token under key ${key} and the label ${LABEL_MODEL_CREDENTIALS}=true`,
        },
      };
    }
    if (meta.labels?.[LABEL_MODEL_CREDENTIALS] !== 'true') {
      return {
        ok: false,
        blocked: {
          reason: Reasons.CredentialsSecretNotAllowed,
          message: `Secret ${creds.name} is not marked for model downloads: ${field}.credentialsSecretRef may only name a Secret labelled ${LABEL_MODEL_CREDENTIALS}: "true"; if it holds the model's SAS token, ask the namespace admin to run kubectl label secret ${creds.name} ${LABEL_MODEL_CREDENTIALS}=true`,
        },
      };
    }
    return { ok: true, secretPath: path };
  }

  /**
   * Whether spec.logging may be applied: its blob container's host is on
   * MODEL_ALLOWED_HOSTS (a FnolModel's author must not make the scorer send
   * requests to any host) and the Secrets it names are marked, like model
   * credentials. Undefined when allowed.
   */
  private async payloadLogAccess(fm: FnolModel): Promise<Blocked | undefined> {
    const blob = fm.spec.logging?.sink?.type === 'blob' ? fm.spec.logging.sink.blob : undefined;
    if (blob && (fm.spec.logging?.sampleRate ?? 0) > 0) {
      try {
        checkTarget(blob.containerUrl, this.cfg.modelPolicy);
      } catch (err) {
        if (!(err instanceof ModelFetchError)) throw err;
        return {
          reason: Reasons.PayloadLogSinkNotAllowed,
          message: `spec.logging.sink.blob.containerUrl refused: ${err.message.replace('publish the model to an allowed host', 'use a container on an allowed host')}`,
        };
      }
    }
    for (const { name, field } of payloadLogSecrets(fm)) {
      const meta = await this.client.getMetadata(
        apiPath(Kinds.Secret, { namespace: fm.metadata.namespace, name }),
      );
      if (!meta) {
        return {
          reason: Reasons.PayloadLogSinkNotAllowed,
          message: `Secret ${name} does not exist (${field}); create it and label it ${LABEL_MODEL_CREDENTIALS}=true`,
        };
      }
      if (meta.labels?.[LABEL_MODEL_CREDENTIALS] !== 'true') {
        return {
          reason: Reasons.CredentialsSecretNotAllowed,
          message: `Secret ${name} is not marked for the scorer: ${field} may only name a Secret labelled ${LABEL_MODEL_CREDENTIALS}: "true"; if it is meant for payload logging, ask the namespace admin to run kubectl label secret ${name} ${LABEL_MODEL_CREDENTIALS}=true`,
        };
      }
    }
    return undefined;
  }

  /** The SAS token of a marked Secret, read only when a check needs it. */
  private async sasToken(spec: FnolModelSpecModel, field: string, secretPath: string): Promise<ModelAccess> {
    const creds = spec.credentialsSecretRef!;
    const key = creds.key;
    const secret = await this.client.get<V1Secret>(secretPath);
    const data = secret?.data?.[key];
    if (!secret || secret.metadata?.labels?.[LABEL_MODEL_CREDENTIALS] !== 'true' || !data) {
      return {
        ok: false,
        blocked: {
          reason: Reasons.ModelUnreachable,
          message: `Secret ${creds.name} has no key ${key} (${field}.credentialsSecretRef); put the SAS token under key ${key}`,
        },
      };
    }
    return { ok: true, sasToken: Buffer.from(data, 'base64').toString('utf8').trim() };
  }

  /** The state of the check of a model not yet served; starts it in the background when needed. */
  private checkModel(
    fm: FnolModel,
    key: string,
    spec: FnolModelSpecModel,
    field: string,
    sasToken: string | undefined,
  ): CheckState {
    const { uri, sha256, credentialsSecretRef: creds } = spec;
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
      credentials: creds ? `${creds.name}/${creds.key}` : fm.spec.model.identity ? 'workload-identity' : '',
      field,
      ...(sasToken !== undefined ? { sasToken } : {}),
      ...(fm.spec.model.identity ? { identity: true } : {}),
    });
  }

  private async writeStatus(fm: FnolModel, status: FnolModelStatus, log: Logger): Promise<void> {
    const prev = fm.status;
    if (prev && statusEqual(prev, status)) return;
    // Merge patch: fields that disappeared must be sent as null, nested ones too
    // (status.canary.comparison once mirroring stops).
    const patch = mergePatchOf(prev ?? {}, status);
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

/**
 * FnolModel status from what the cluster reports: the Deployment's rollout
 * state, which ReplicaSet (so which model version) has ready pods, and the
 * outcome of the model check. Pure: the reconciler passes everything in.
 */
import type { V1Deployment, V1ReplicaSet } from '@kubernetes/client-node';
import type {
  Condition,
  ConditionType,
  FnolModel,
  FnolModelStatus,
  FnolModelStatusCanary,
  FnolModelStatusCanaryComparison,
  Phase,
} from '@fnol/api';
import { canaryName, Reasons } from '@fnol/api';
import { canarySelectorLabels, LABEL_MODEL_VERSION, modelUrl, selectorString } from './reconcilers/common';
import { servedModelOf } from './reconcilers/deployment';
import { sameModel } from '@fnol/api';

/** Why the spec's model is not rolled out, when it is not. */
export interface Blocked {
  reason: string;
  message: string;
}

export interface StatusInput {
  fm: FnolModel;
  deployment: V1Deployment | undefined;
  replicaSets: V1ReplicaSet[];
  blocked?: Blocked;
  /** The spec's model is being downloaded for its sha256 check (not rolled out yet). */
  verifying?: boolean;
  /** spec.gateway is set but the cluster has no HTTPRoute kind. */
  gatewayMissing?: boolean;
  /** The candidate of spec.canary, as observed (ignored without spec.canary). */
  canary?: CanaryInput;
  now: Date;
}

export interface CanaryInput {
  deployment: V1Deployment | undefined;
  /** Why the candidate's model is not rolled out, when it is not. */
  blocked?: Blocked;
  verifying?: boolean;
  /** The candidate's weight in the HTTPRoute as applied. */
  trafficPercent: number;
  /** SHADOW_PERCENT of the stable Deployment, when it mirrors to this candidate version; else 0. */
  mirrorPercent: number;
  comparison?: FnolModelStatusCanaryComparison;
}

export const GATEWAY_API_MISSING_MESSAGE =
  'spec.gateway needs the Gateway API CRDs (HTTPRoute, gateway.networking.k8s.io/v1), which this cluster does not serve; install the Gateway API (standard channel) or remove spec.gateway (if they are installed, the operator RBAC lacks httproutes: apply manifests/). The Service and Ingress keep serving.';

/** Versions served by ready pods, read from the ReplicaSets the Deployment owns. */
export function readyVersions(deployment: V1Deployment | undefined, replicaSets: V1ReplicaSet[]): string[] {
  const uid = deployment?.metadata?.uid;
  if (!uid) return [];
  const versions = new Set<string>();
  for (const rs of replicaSets) {
    if (!rs.metadata?.ownerReferences?.some((o) => o.uid === uid)) continue;
    if ((rs.status?.readyReplicas ?? 0) <= 0) continue;
    const v = rs.spec?.template?.metadata?.labels?.[LABEL_MODEL_VERSION];
    if (v) versions.add(v);
  }
  return [...versions].sort();
}

interface RolloutState {
  state: 'absent' | 'pending' | 'rolling' | 'complete' | 'deadline' | 'unavailable';
  message: string;
}

function rollout(dep: V1Deployment | undefined, specReplicas: number): RolloutState {
  if (!dep) return { state: 'absent', message: 'the scorer Deployment does not exist yet' };
  const st = dep.status ?? {};
  if (st.observedGeneration === undefined)
    return { state: 'pending', message: 'waiting for the Deployment controller' };
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return {
      state: 'deadline',
      message: progressing.message ?? 'the rollout exceeded its progress deadline',
    };
  }
  const generation = dep.metadata?.generation ?? 0;
  if (st.observedGeneration < generation)
    return { state: 'rolling', message: 'the Deployment controller has not seen the new spec yet' };
  const updated = st.updatedReplicas ?? 0;
  const total = st.replicas ?? 0;
  const available = st.availableReplicas ?? 0;
  if (updated < specReplicas)
    return { state: 'rolling', message: `${updated} of ${specReplicas} pods updated` };
  if (total > updated) return { state: 'rolling', message: `${total - updated} old pods are being replaced` };
  if (available < updated) {
    // The rollout finished before (the new ReplicaSet was available) and pods
    // then went away or turned unready: that is a failure, not progress.
    const done = progressing?.reason === 'NewReplicaSetAvailable';
    if (done && available === 0 && specReplicas > 0)
      return { state: 'unavailable', message: 'no scorer pod is available' };
    return { state: 'rolling', message: `${available} of ${updated} pods available` };
  }
  return { state: 'complete', message: `${available} of ${specReplicas} pods available` };
}

/**
 * The version the stable track serves for status.activeVersion: once the
 * rollout of the spec's model is complete, that version; while one is under
 * way, the version that served before (still ready) rather than none.
 */
function activeVersionOf(
  versions: string[],
  previous: string | undefined,
  want: string,
  complete: boolean,
): string | undefined {
  if (versions.length === 0) return undefined;
  if (versions.length === 1) return versions[0];
  if (complete && versions.includes(want)) return want;
  if (previous && versions.includes(previous)) return previous;
  return versions.find((v) => v !== want) ?? versions[0];
}

function specReplicasOf(fm: FnolModel, dep: V1Deployment | undefined): number {
  return dep?.spec?.replicas ?? (fm.spec.autoscaling ? fm.spec.autoscaling.minReplicas : fm.spec.replicas);
}

function cond(
  type: ConditionType,
  status: boolean,
  reason: string,
  message: string,
): Omit<Condition, 'lastTransitionTime'> {
  return { type, status: status ? 'True' : 'False', reason, message };
}

/** The status the FnolModel should have; lastTransitionTime kept where a condition's status did not change. */
export function computeStatus(input: StatusInput): FnolModelStatus {
  const { fm, deployment: dep, blocked, now } = input;
  const generation = fm.metadata.generation ?? 0;
  const want = fm.spec.model.version;
  const versions = readyVersions(dep, input.replicaSets);
  const specReplicas = specReplicasOf(fm, dep);
  const r = rollout(dep, specReplicas);
  const servesSpec = sameModel(servedModelOf(dep), fm.spec.model);
  const activeVersion = activeVersionOf(
    versions,
    fm.status?.activeVersion,
    want,
    r.state === 'complete' && servesSpec,
  );

  let phase: Phase;
  let conditions: Array<Omit<Condition, 'lastTransitionTime'>>;
  if (blocked) {
    const still = activeVersion ? `version ${activeVersion} still serves; ` : '';
    phase = 'Degraded';
    conditions = [
      cond(
        'Ready',
        false,
        activeVersion ? Reasons.PreviousVersionServing : blocked.reason,
        `${still}version ${want} is not rolled out: ${blocked.message}`,
      ),
      cond('Progressing', false, blocked.reason, `rollout of version ${want} is blocked`),
      cond('Degraded', true, blocked.reason, blocked.message),
    ];
  } else if (input.verifying) {
    // A routine rollout: the version that serves keeps Ready True.
    const still = activeVersion ? `version ${activeVersion} still serves; ` : '';
    const msg = `checking the sha256 of version ${want} before rolling it out`;
    phase = r.state === 'absent' ? 'Pending' : 'Progressing';
    conditions = [
      cond(
        'Ready',
        !!activeVersion,
        activeVersion ? Reasons.PreviousVersionServing : Reasons.VerifyingModel,
        `${still}${msg}`,
      ),
      cond('Progressing', true, Reasons.VerifyingModel, msg),
      cond('Degraded', false, Reasons.AsExpected, 'no problem found'),
    ];
  } else if (r.state === 'deadline' || r.state === 'unavailable') {
    const reason = r.state === 'deadline' ? Reasons.ProgressDeadlineExceeded : Reasons.NoReadyReplicas;
    const still = activeVersion && activeVersion !== want ? `version ${activeVersion} still serves; ` : '';
    phase = 'Degraded';
    conditions = [
      cond('Ready', false, reason, `${still}version ${want}: ${r.message}`),
      cond('Progressing', false, reason, r.message),
      cond(
        'Degraded',
        true,
        reason,
        `${r.message}; check the scorer pods (kubectl get pods -l ${selectorString(fm)})`,
      ),
    ];
  } else if (r.state === 'complete' && servesSpec) {
    const reason = specReplicas === 0 ? Reasons.ScaledToZero : Reasons.RolloutComplete;
    const msg =
      specReplicas === 0 ? `scaled to zero (version ${want})` : `${r.message}, serving version ${want}`;
    phase = 'Ready';
    conditions = [
      cond('Ready', true, reason, msg),
      cond('Progressing', false, Reasons.RolloutComplete, `version ${want} is rolled out`),
      cond('Degraded', false, Reasons.AsExpected, 'no problem found'),
    ];
  } else {
    phase = r.state === 'absent' || r.state === 'pending' ? 'Pending' : 'Progressing';
    // Ready stays True while ready pods of the stable track serve (a routine
    // rollout with maxUnavailable 0 never takes them away first).
    const ready = activeVersion
      ? cond(
          'Ready',
          true,
          activeVersion === want ? Reasons.RollingOut : Reasons.PreviousVersionServing,
          `version ${activeVersion} serves while version ${want} rolls out: ${r.message}`,
        )
      : cond('Ready', false, Reasons.WaitingForPods, `version ${want}: ${r.message}`);
    conditions = [
      ready,
      cond('Progressing', true, Reasons.RollingOut, `rolling out version ${want}: ${r.message}`),
      cond('Degraded', false, Reasons.AsExpected, 'no problem found'),
    ];
  }

  if (input.gatewayMissing && fm.spec.gateway) {
    const i = conditions.findIndex((c) => c.type === 'Degraded');
    if (conditions[i]?.status !== 'True') {
      conditions[i] = cond('Degraded', true, Reasons.GatewayAPIMissing, GATEWAY_API_MISSING_MESSAGE);
      phase = 'Degraded';
    }
  }
  let canary: FnolModelStatusCanary | undefined;
  if (fm.spec.canary && input.canary) {
    const c = canaryStatus(fm, input.canary, {
      gatewayMissing: !!input.gatewayMissing,
      stableRolledOut: r.state === 'complete' && servesSpec,
    });
    canary = c.status;
    conditions.push(c.condition);
  }

  const previous = fm.status?.conditions ?? [];
  const stamped: Condition[] = conditions.map((c) => {
    const prev = previous.find((p) => p.type === c.type);
    const lastTransitionTime =
      prev && prev.status === c.status && prev.lastTransitionTime
        ? prev.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { ...c, observedGeneration: generation, lastTransitionTime };
  });

  const status: FnolModelStatus = {
    observedGeneration: generation,
    phase,
    readyReplicas: dep?.status?.readyReplicas ?? 0,
    replicas: dep?.status?.replicas ?? 0,
    selector: selectorString(fm),
    url: modelUrl(fm),
    conditions: stamped,
  };
  if (activeVersion) status.activeVersion = activeVersion;
  if (canary) status.canary = canary;
  return status;
}

/** status.canary and the CanaryReady condition: the candidate's own state, apart from Ready. */
function canaryStatus(
  fm: FnolModel,
  input: CanaryInput,
  ctx: { gatewayMissing: boolean; stableRolledOut: boolean },
): { status: FnolModelStatusCanary; condition: Omit<Condition, 'lastTransitionTime'> } {
  const spec = fm.spec.canary!;
  const want = spec.model.version;
  const dep = input.deployment;
  const servesSpec = sameModel(servedModelOf(dep), spec.model);
  const readyReplicas = servesSpec ? (dep?.status?.readyReplicas ?? 0) : 0;
  const r = rollout(dep, dep?.spec?.replicas ?? 1);
  const selector = Object.entries(canarySelectorLabels(fm))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const status: FnolModelStatusCanary = {
    version: want,
    readyReplicas,
    trafficPercent: input.trafficPercent,
    mirrorPercent: input.mirrorPercent,
  };
  if (input.comparison) status.comparison = input.comparison;
  const no = (reason: string, message: string) => ({
    status,
    condition: cond('CanaryReady', false, reason, message),
  });
  if (input.blocked)
    return no(input.blocked.reason, `candidate version ${want} is not rolled out: ${input.blocked.message}`);
  if (input.verifying)
    return no(
      Reasons.VerifyingModel,
      `checking the sha256 of candidate version ${want} before starting its pods`,
    );
  if (r.state === 'deadline' || r.state === 'unavailable')
    return no(
      Reasons.CanaryFailed,
      `candidate version ${want}: ${r.message}; check its pods (kubectl get pods -l ${selector})`,
    );
  if (servesSpec && dep?.spec?.replicas === 0)
    return no(Reasons.ScaledToZero, `spec.canary.replicas is 0: no pod serves candidate version ${want}`);
  if (!servesSpec || r.state !== 'complete' || readyReplicas < 1)
    return no(
      Reasons.CanaryRollingOut,
      `rolling out candidate version ${want} (Deployment ${canaryName(fm.metadata.name)}): ${servesSpec ? r.message : 'waiting for the Deployment'}`,
    );
  if (spec.trafficPercent > 0 && ctx.gatewayMissing)
    return no(Reasons.GatewayAPIMissing, GATEWAY_API_MISSING_MESSAGE);
  if (input.trafficPercent !== spec.trafficPercent)
    return no(
      Reasons.CanaryRollingOut,
      `the HTTPRoute sends ${input.trafficPercent}% of live requests to candidate version ${want}, spec.canary.trafficPercent is ${spec.trafficPercent}`,
    );
  if (input.mirrorPercent !== spec.mirrorPercent || (spec.mirrorPercent > 0 && !ctx.stableRolledOut))
    return no(
      Reasons.MirrorRollingOut,
      `the stable pods are restarted to mirror ${spec.mirrorPercent}% of their requests to candidate version ${want}`,
    );
  return {
    status,
    condition: cond(
      'CanaryReady',
      true,
      Reasons.CanaryServing,
      `candidate version ${want}: ${readyReplicas} ready pods, ${spec.trafficPercent}% of live requests, ${spec.mirrorPercent}% mirrored`,
    ),
  };
}

/** JSON equality, ignoring key order. */
export function statusEqual(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** CanaryReady reasons that are failures (a Warning Event), not steps of a rollout. */
const CANARY_FAILURES = new Set<string>([
  Reasons.ModelDigestMismatch,
  Reasons.ModelUnreachable,
  Reasons.ModelHostNotAllowed,
  Reasons.CredentialsSecretNotAllowed,
  Reasons.OidcIssuerNotAllowed,
  Reasons.CanaryFailed,
  Reasons.GatewayAPIMissing,
]);

export interface StatusEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Kubernetes Events for condition transitions worth telling a human about. */
export function transitionEvents(prev: FnolModelStatus | undefined, next: FnolModelStatus): StatusEvent[] {
  const get = (s: FnolModelStatus | undefined, t: ConditionType) => s?.conditions?.find((c) => c.type === t);
  const events: StatusEvent[] = [];
  const pd = get(prev, 'Degraded');
  const nd = get(next, 'Degraded');
  if (
    nd?.status === 'True' &&
    (pd?.status !== 'True' || pd.reason !== nd.reason || pd.message !== nd.message)
  ) {
    events.push({ type: 'Warning', reason: nd.reason, message: nd.message });
  }
  const pp = get(prev, 'Progressing');
  const np = get(next, 'Progressing');
  if (np?.status === 'True' && pp?.status !== 'True') {
    events.push({ type: 'Normal', reason: np.reason, message: np.message });
  }
  const pr = get(prev, 'Ready');
  const nr = get(next, 'Ready');
  if (nr?.status === 'True' && (pr?.status !== 'True' || prev?.activeVersion !== next.activeVersion)) {
    events.push({ type: 'Normal', reason: 'Ready', message: nr.message });
  }
  const pc = get(prev, 'CanaryReady');
  const nc = get(next, 'CanaryReady');
  if (nc?.status === 'True' && (pc?.status !== 'True' || prev?.canary?.version !== next.canary?.version)) {
    events.push({ type: 'Normal', reason: 'CanaryReady', message: nc.message });
  }
  if (
    nc?.status === 'False' &&
    CANARY_FAILURES.has(nc.reason) &&
    (pc?.reason !== nc.reason || pc.message !== nc.message)
  ) {
    events.push({ type: 'Warning', reason: nc.reason, message: nc.message });
  }
  return events;
}

/**
 * The scorer Deployment: one container following the scorer contract
 * (docs/model-format.md, MODEL_* environment), restricted pod security, probes on
 * /healthz and /readyz, and a rolling update that never takes a serving pod away
 * before its replacement is ready (maxUnavailable 0).
 */
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1ObjectMeta,
  V1ResourceRequirements,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { Tracks, type FnolModel, type FnolModelSpecModel, type ModelIdentity } from '@fnol/api';
import {
  ANNOTATION_MODEL_SHA256,
  ANNOTATION_MODEL_URI,
  canaryLabels,
  canaryMetadata,
  canaryReplicas,
  canarySelectorLabels,
  canaryServiceUrl,
  commonLabels,
  DesiredStateConfig,
  LABEL_MODEL_VERSION,
  LABEL_TRACK,
  ownedMetadata,
  SCORER_PORT,
  SCORER_PORT_NAME,
  selectorLabels,
} from './common';
import { payloadLogPod } from './payload-log';

export const MODEL_CREDENTIALS_DIR = '/var/run/secrets/fnol/model';
export const MODEL_SAS_TOKEN_FILE = `${MODEL_CREDENTIALS_DIR}/sasToken`;
export const API_KEY_DIR = '/var/run/secrets/fnol/api-key';
export const SHUTDOWN_GRACE_SECONDS = 20;
/**
 * Seconds a terminating scorer pod keeps serving normally before it receives
 * SIGTERM: the time for the EndpointSlice change to reach kube-proxy and the
 * Ingress controller, so no new request is sent to a pod that already stopped
 * accepting connections. The kubelet runs this sleep itself (lifecycle sleep
 * action), so the image needs no shell.
 */
export const PRE_STOP_SLEEP_SECONDS = 5;

export const DEFAULT_RESOURCES = {
  requests: { cpu: '250m', memory: '512Mi' },
  limits: { cpu: '1', memory: '1Gi' },
};

function quantities(q: Record<string, number | string> | undefined): Record<string, string> | undefined {
  if (!q) return undefined;
  return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)]));
}

/** spec.resources with quantities as strings; the defaults when the spec has none. */
export function resourcesOf(fm: FnolModel): V1ResourceRequirements {
  const r = fm.spec.resources;
  if (!r || (!r.requests && !r.limits)) return DEFAULT_RESOURCES;
  const out: V1ResourceRequirements = {};
  const requests = quantities(r.requests);
  const limits = quantities(r.limits);
  if (requests) out.requests = requests;
  if (limits) out.limits = limits;
  return out;
}

/** The model the Deployment's pods are told to serve, read back from a live Deployment. */
export type ServedModel = ModelIdentity;

export function servedModelOf(deployment: V1Deployment | undefined): ServedModel | undefined {
  const env = deployment?.spec?.template?.spec?.containers?.find((c) => c.name === 'scorer')?.env ?? [];
  const get = (name: string): string | undefined => env.find((e) => e.name === name)?.value;
  const version = get('MODEL_VERSION');
  const uri = get('MODEL_URI');
  const sha256 = get('MODEL_SHA256');
  if (version === undefined || uri === undefined || sha256 === undefined) return undefined;
  return { version, uri, sha256 };
}

/** Where and how much the stable pods mirror to the candidate (the scorer's SHADOW_* settings). */
export interface Mirror {
  url: string;
  percent: number;
  version: string;
}

/**
 * The mirror spec.canary asks for, to the candidate Service at `clusterIP`;
 * undefined when mirrorPercent is 0, there is no canary, or the candidate's
 * Service has no cluster IP yet.
 */
export function mirrorOf(fm: FnolModel, clusterIP: string | undefined): Mirror | undefined {
  const c = fm.spec.canary;
  if (!c || !(c.mirrorPercent > 0) || !clusterIP || clusterIP === 'None') return undefined;
  return { url: canaryServiceUrl(clusterIP), percent: c.mirrorPercent, version: c.model.version };
}

/** The mirror a live Deployment's pods are told to do (SHADOW_* env), or undefined. */
export function appliedMirrorOf(deployment: V1Deployment | undefined): Mirror | undefined {
  const env = deployment?.spec?.template?.spec?.containers?.find((c) => c.name === 'scorer')?.env ?? [];
  const get = (name: string): string | undefined => env.find((e) => e.name === name)?.value;
  const url = get('SHADOW_URL');
  const percent = Number(get('SHADOW_PERCENT'));
  const version = get('SHADOW_VERSION');
  if (!url || !version || !Number.isFinite(percent) || percent <= 0) return undefined;
  return { url, percent, version };
}

function mirrorEnv(mirror: Mirror | undefined): V1EnvVar[] {
  if (!mirror) return [];
  return [
    { name: 'SHADOW_URL', value: mirror.url },
    { name: 'SHADOW_PERCENT', value: String(mirror.percent) },
    { name: 'SHADOW_VERSION', value: mirror.version },
  ];
}

interface ScorerPods {
  metadata: V1ObjectMeta;
  selector: Record<string, string>;
  labels: Record<string, string>;
  model: Pick<FnolModelSpecModel, 'version' | 'uri' | 'sha256'>;
  credentialsSecretRef: FnolModelSpecModel['credentialsSecretRef'];
  /** undefined: left to the HPA. */
  replicas: number | undefined;
  extraEnv: V1EnvVar[];
}

/**
 * Desired Deployment for a FnolModel (the stable track). `model` is what the
 * pods serve: normally spec.model; the reconciler passes the previously served
 * model instead while a new one fails verification. `mirror`: the SHADOW_*
 * settings that make the pods copy requests to the candidate of spec.canary.
 */
export function desiredDeployment(
  fm: FnolModel,
  cfg: DesiredStateConfig,
  model: Pick<FnolModelSpecModel, 'version' | 'uri' | 'sha256'> = fm.spec.model,
  mirror?: Mirror,
): V1Deployment {
  return scorerDeployment(fm, cfg, {
    metadata: ownedMetadata(fm),
    selector: selectorLabels(fm),
    // The track label is in the pod template only: the selector is immutable.
    labels: { ...commonLabels(fm), [LABEL_TRACK]: Tracks.stable },
    model,
    credentialsSecretRef: fm.spec.model.credentialsSecretRef,
    replicas: fm.spec.autoscaling ? undefined : fm.spec.replicas,
    extraEnv: mirrorEnv(mirror),
  });
}

/**
 * The candidate's Deployment <name>-canary for spec.canary (undefined without
 * one): the same pods as the stable track, serving spec.canary.model, with
 * canaryReplicas() pods and the canary labels.
 */
export function desiredCanaryDeployment(fm: FnolModel, cfg: DesiredStateConfig): V1Deployment | undefined {
  const c = fm.spec.canary;
  if (!c) return undefined;
  return scorerDeployment(fm, cfg, {
    metadata: canaryMetadata(fm),
    selector: canarySelectorLabels(fm),
    labels: canaryLabels(fm),
    model: c.model,
    credentialsSecretRef: c.model.credentialsSecretRef,
    replicas: canaryReplicas(fm),
    extraEnv: [],
  });
}

function scorerDeployment(fm: FnolModel, cfg: DesiredStateConfig, p: ScorerPods): V1Deployment {
  const { model } = p;
  const env: V1EnvVar[] = [
    { name: 'MODEL_NAME', value: fm.spec.modelName },
    { name: 'MODEL_VERSION', value: model.version },
    { name: 'MODEL_URI', value: model.uri },
    { name: 'MODEL_SHA256', value: model.sha256 },
    { name: 'PORT', value: String(SCORER_PORT) },
    { name: 'SHUTDOWN_GRACE_SECONDS', value: String(SHUTDOWN_GRACE_SECONDS) },
    { name: 'LOG_LEVEL', value: cfg.scorerLogLevel },
    // The scorer enforces the operator's download policy too.
    { name: 'MODEL_ALLOWED_HOSTS', value: cfg.modelPolicy.allowedHosts.map((h) => h.text).join(',') },
    { name: 'MODEL_LOCAL_MODE', value: String(cfg.modelPolicy.localMode) },
    ...p.extraEnv,
  ];
  const volumes: V1Volume[] = [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }];
  const mounts: V1VolumeMount[] = [{ name: 'tmp', mountPath: '/tmp' }];

  const creds = p.credentialsSecretRef;
  if (creds) {
    volumes.push({
      name: 'model-credentials',
      secret: {
        secretName: creds.name,
        items: [{ key: creds.key, path: 'sasToken' }],
        defaultMode: 0o440,
      },
    });
    mounts.push({ name: 'model-credentials', mountPath: MODEL_CREDENTIALS_DIR, readOnly: true });
    env.push({ name: 'MODEL_SAS_TOKEN_FILE', value: MODEL_SAS_TOKEN_FILE });
  }
  env.push(...identityEnv(fm, cfg));
  const apiKey = fm.spec.auth?.apiKeySecretRef;
  if (apiKey) {
    volumes.push({
      name: 'api-keys',
      secret: { secretName: apiKey.name, items: [{ key: apiKey.key, path: apiKey.key }], defaultMode: 0o440 },
    });
    mounts.push({ name: 'api-keys', mountPath: API_KEY_DIR, readOnly: true });
    env.push({ name: 'API_KEYS_FILE', value: `${API_KEY_DIR}/${apiKey.key}` });
  }
  env.push(...monitoringEnv(fm, cfg));
  const payloadLog = payloadLogPod(fm);
  env.push(...payloadLog.env);
  volumes.push(...payloadLog.volumes);
  mounts.push(...payloadLog.mounts);

  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: SCORER_PORT_NAME },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });

  const container: V1Container = {
    name: 'scorer',
    image: fm.spec.image ?? cfg.defaultScorerImage,
    imagePullPolicy: 'IfNotPresent',
    ports: [{ name: SCORER_PORT_NAME, containerPort: SCORER_PORT, protocol: 'TCP' }],
    env,
    resources: resourcesOf(fm),
    // Loading a large model can take a while: the startup probe gives it up to
    // 5 minutes before liveness takes over.
    startupProbe: probe('/healthz', 5, 60),
    livenessProbe: probe('/healthz', 10, 3),
    readinessProbe: probe('/readyz', 5, 2),
    // The sleep action (Kubernetes 1.30+) is newer than the client's typings.
    lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SLEEP_SECONDS } } } as V1Container['lifecycle'],
    securityContext: {
      runAsNonRoot: true,
      runAsUser: cfg.scorerUser,
      runAsGroup: cfg.scorerUser,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: mounts,
  };

  const replicas = p.replicas;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: p.metadata,
    spec: {
      ...(replicas === undefined ? {} : { replicas }),
      revisionHistoryLimit: 3,
      progressDeadlineSeconds: cfg.progressDeadlineSeconds,
      selector: { matchLabels: p.selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '25%' } },
      template: {
        metadata: {
          labels: {
            ...p.labels,
            [LABEL_MODEL_VERSION]: model.version,
            // The AKS webhook projects the federated token into labelled pods only.
            ...(fm.spec.model.identity ? { [WORKLOAD_IDENTITY_LABEL]: 'true' } : {}),
          },
          annotations: {
            [ANNOTATION_MODEL_URI]: model.uri,
            [ANNOTATION_MODEL_SHA256]: model.sha256,
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(SCORER_PORT),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: {
          automountServiceAccountToken: false,
          ...(fm.spec.model.identity
            ? { serviceAccountName: fm.spec.model.identity.serviceAccountName }
            : {}),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: PRE_STOP_SLEEP_SECONDS + SHUTDOWN_GRACE_SECONDS + 5,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: cfg.scorerUser,
            runAsGroup: cfg.scorerUser,
            fsGroup: cfg.scorerUser,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: p.selector },
            },
          ],
          ...(fm.spec.nodeSelector ? { nodeSelector: fm.spec.nodeSelector } : {}),
          ...(fm.spec.tolerations?.length ? { tolerations: fm.spec.tolerations } : {}),
          containers: [container],
          volumes,
        },
      },
    },
  };
}

/** The pod label the AKS workload identity webhook acts on. */
export const WORKLOAD_IDENTITY_LABEL = 'azure.workload.identity/use';

/**
 * MODEL_IDENTITY_* (spec.model.identity, for the stable and the canary pods)
 * and OIDC_* (spec.auth.oidc). The token authority allow-list is the operator's,
 * never the FnolModel's: its author cannot send the federated token elsewhere.
 */
function identityEnv(fm: FnolModel, cfg: DesiredStateConfig): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  const identity = fm.spec.model.identity;
  if (identity) {
    env.push({ name: 'MODEL_IDENTITY', value: identity.type });
    if (identity.clientId) env.push({ name: 'MODEL_IDENTITY_CLIENT_ID', value: identity.clientId });
    if (cfg.tokenAuthorityHosts) {
      env.push({
        name: 'MODEL_TOKEN_AUTHORITY_HOSTS',
        value: cfg.tokenAuthorityHosts.map((h) => h.text).join(','),
      });
    }
  }
  const oidc = fm.spec.auth?.oidc;
  if (oidc) {
    env.push({ name: 'OIDC_ISSUER', value: oidc.issuer });
    env.push({ name: 'OIDC_AUDIENCES', value: oidc.audiences.join(',') });
    if (oidc.requiredRoles?.length)
      env.push({ name: 'OIDC_REQUIRED_ROLES', value: oidc.requiredRoles.join(',') });
    if (oidc.jwksUri) env.push({ name: 'OIDC_JWKS_URI', value: oidc.jwksUri });
  }
  return env;
}

/**
 * Drift and tracing settings of the scorer pods. Drift (DRIFT_*) comes from the
 * FnolModel's spec.monitoring.drift, only the fields it sets (the scorer's
 * defaults otherwise; the CRD bounds every value). Trace export (OTEL_*) comes
 * from the operator's configuration only: where spans go is the cluster
 * admin's decision, the same for every scorer pod, and no FnolModel field
 * reaches these variables.
 */
export function monitoringEnv(fm: FnolModel, cfg: Pick<DesiredStateConfig, 'scorerTraces'>): V1EnvVar[] {
  const env: V1EnvVar[] = [];
  const drift = fm.spec.monitoring?.drift;
  if (drift?.enabled === false) env.push({ name: 'DRIFT', value: 'off' });
  else if (drift) {
    const set = (name: string, value: number | undefined) => {
      if (value !== undefined) env.push({ name, value: String(value) });
    };
    set('DRIFT_WINDOW', drift.window);
    set('DRIFT_MIN_RECORDS', drift.minRecords);
    set('DRIFT_UPDATE_SECONDS', drift.updateSeconds);
  }
  const traces = cfg.scorerTraces;
  if (traces) {
    env.push(
      { name: 'OTEL_TRACES_EXPORTER', value: 'otlp' },
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: traces.endpoint },
      { name: 'OTEL_SERVICE_NAME', value: `${fm.metadata.name}.${fm.metadata.namespace}` },
    );
  }
  return env;
}

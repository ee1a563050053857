/**
 * What every owned object shares: names, labels, the owner reference that lets
 * the garbage collector delete it with its FnolModel.
 */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { Annotations, API_VERSION, canaryName, KIND, Labels, Tracks, type FnolModel } from '@fnol/api';
import type { OperatorConfig } from '../config';

export const SCORER_PORT = 8080;
export const SCORER_PORT_NAME = 'http';
/** The port of the scorer Services (to the pods' SCORER_PORT). */
export const SERVICE_PORT = 80;
export const MANAGED_BY = 'fnol-operator';
export const LABEL_MODEL = Labels.model;
export const LABEL_MODEL_VERSION = Labels.modelVersion;
export const ANNOTATION_MODEL_SHA256 = Annotations.modelSha256;
export const ANNOTATION_MODEL_URI = Annotations.modelUri;
export const LABEL_TRACK = Labels.track;
/** The label of the operator's own pods (manifests/deployment.yaml). */
export const OPERATOR_POD_LABELS = { 'app.kubernetes.io/name': 'fnol-operator' } as const;

/** Settings the pure functions need from the operator configuration. */
export type DesiredStateConfig = Pick<
  OperatorConfig,
  | 'defaultScorerImage'
  | 'ingressControllerNamespaces'
  | 'monitoringNamespaces'
  | 'scorerUser'
  | 'progressDeadlineSeconds'
  | 'scorerLogLevel'
  | 'modelStoreCidrs'
  | 'modelStorePorts'
  | 'dnsNamespace'
  | 'dnsPodLabels'
  | 'modelPolicy'
  | 'operatorNamespace'
  | 'tokenAuthorityHosts'
  | 'identityEgress'
  | 'scorerTraces'
>;

/** The label that tells one FnolModel's scorer pods (stable or candidate) from another's. */
export const INSTANCE_LABEL = 'app.kubernetes.io/instance';

/** The labels that select one FnolModel's scorer pods (immutable Deployment selector). */
export function selectorLabels(fm: FnolModel): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'fnol-scorer',
    [INSTANCE_LABEL]: fm.metadata.name,
  };
}

export function commonLabels(fm: FnolModel): Record<string, string> {
  return {
    ...selectorLabels(fm),
    'app.kubernetes.io/component': 'scorer',
    'app.kubernetes.io/part-of': 'fnol-serving',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [LABEL_MODEL]: fm.metadata.name,
  };
}

/**
 * The labels that select the candidate's pods (spec.canary). The instance is
 * <name>-canary, so the stable Service (instance <name>) never selects them;
 * the model and track labels keep them apart from the pods of a FnolModel that
 * happens to be named <name>-canary.
 */
export function canarySelectorLabels(fm: FnolModel): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'fnol-scorer',
    'app.kubernetes.io/instance': canaryName(fm.metadata.name),
    [LABEL_MODEL]: fm.metadata.name,
    [LABEL_TRACK]: Tracks.canary,
  };
}

/** Labels of the candidate's objects and pods. */
export function canaryLabels(fm: FnolModel): Record<string, string> {
  return { ...commonLabels(fm), ...canarySelectorLabels(fm) };
}

export function selectorString(fm: FnolModel): string {
  return Object.entries(selectorLabels(fm))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function ownerReference(fm: FnolModel): V1OwnerReference {
  if (!fm.metadata.uid) throw new Error(`FnolModel ${fm.metadata.namespace}/${fm.metadata.name} has no uid`);
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: fm.metadata.name,
    uid: fm.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of an owned object: same name and namespace as its FnolModel. */
export function ownedMetadata(fm: FnolModel, annotations?: Record<string, string>): V1ObjectMeta {
  return childMetadata(fm, fm.metadata.name, commonLabels(fm), annotations);
}

/** Metadata of the candidate's objects: named <name>-canary, with the canary labels. */
export function canaryMetadata(fm: FnolModel): V1ObjectMeta {
  return childMetadata(fm, canaryName(fm.metadata.name), canaryLabels(fm));
}

function childMetadata(
  fm: FnolModel,
  name: string,
  labels: Record<string, string>,
  annotations?: Record<string, string>,
): V1ObjectMeta {
  const meta: V1ObjectMeta = {
    name,
    namespace: fm.metadata.namespace,
    labels,
    ownerReferences: [ownerReference(fm)],
  };
  if (annotations && Object.keys(annotations).length > 0) meta.annotations = annotations;
  return meta;
}

/** The in-cluster Service URL, used as status.url when there is no Ingress. */
export function serviceUrl(fm: FnolModel): string {
  return `http://${fm.metadata.name}.${fm.metadata.namespace}.svc.cluster.local`;
}

/** Where consumers call the scorer: the Ingress when there is one, else the Service. */
export function modelUrl(fm: FnolModel): string {
  const ing = fm.spec.ingress;
  if (!ing) return serviceUrl(fm);
  const scheme = ing.tlsSecretName ? 'https' : 'http';
  return `${scheme}://${ing.host}${ing.path}`;
}

/** Replicas the spec asks for (the HPA's minimum when autoscaling). */
export function desiredReplicas(fm: FnolModel): number {
  if (fm.spec.autoscaling) return fm.spec.autoscaling.minReplicas;
  return fm.spec.replicas;
}

/**
 * The candidate's pods: spec.canary.replicas, or enough for its share of the
 * stable replicas, ceil(stable × max(trafficPercent, mirrorPercent) / 100),
 * at least 1. 0 without spec.canary.
 */
export function canaryReplicas(fm: FnolModel): number {
  const c = fm.spec.canary;
  if (!c) return 0;
  if (c.replicas !== undefined) return c.replicas;
  const share = Math.max(c.trafficPercent ?? 0, c.mirrorPercent ?? 0);
  return Math.max(1, Math.ceil((desiredReplicas(fm) * share) / 100));
}

/**
 * Where the stable pods mirror requests to: the candidate Service by its
 * cluster IP and port. An address, not the Service's DNS name, so mirroring
 * needs no cluster DNS and no DNS lookup per connection; the operator rewrites
 * it if the Service is ever recreated with another IP.
 */
export function canaryServiceUrl(clusterIP: string): string {
  const host = clusterIP.includes(':') ? `[${clusterIP}]` : clusterIP;
  return `http://${host}:${SERVICE_PORT}`;
}

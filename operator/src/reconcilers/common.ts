/**
 * What every owned object shares: names, labels, the owner reference that lets
 * the garbage collector delete it with its FnolModel.
 */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { Annotations, API_VERSION, KIND, Labels, type FnolModel } from '@fnol/api';
import type { OperatorConfig } from '../config';

export const SCORER_PORT = 8080;
export const SCORER_PORT_NAME = 'http';
export const MANAGED_BY = 'fnol-operator';
export const LABEL_MODEL = Labels.model;
export const LABEL_MODEL_VERSION = Labels.modelVersion;
export const ANNOTATION_MODEL_SHA256 = Annotations.modelSha256;
export const ANNOTATION_MODEL_URI = Annotations.modelUri;

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
>;

/** The labels that select one FnolModel's scorer pods (immutable Deployment selector). */
export function selectorLabels(fm: FnolModel): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'fnol-scorer',
    'app.kubernetes.io/instance': fm.metadata.name,
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
  const meta: V1ObjectMeta = {
    name: fm.metadata.name,
    namespace: fm.metadata.namespace,
    labels: commonLabels(fm),
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

/**
 * Kubernetes API paths, built in one place. A resource kind is named by its
 * group, version and plural; the core group is ''.
 */
import { GROUP, PLURAL, VERSION } from './group';

export interface ResourceKind {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
}

export interface PathParts {
  /** Omitted for cluster-scoped kinds and for lists across all namespaces. */
  namespace?: string;
  /** Omitted for a collection. */
  name?: string;
  /** e.g. 'status' (requires name). */
  subresource?: string;
}

/** The API path of a collection, an object or an object's subresource. */
export function apiPath(kind: ResourceKind, parts: PathParts = {}): string {
  if (parts.subresource !== undefined && parts.name === undefined) {
    throw new Error(`a subresource path (${parts.subresource}) needs an object name`);
  }
  const base = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  const ns = parts.namespace !== undefined ? `/namespaces/${encodeURIComponent(parts.namespace)}` : '';
  const name = parts.name !== undefined ? `/${encodeURIComponent(parts.name)}` : '';
  const sub = parts.subresource !== undefined ? `/${parts.subresource}` : '';
  return `${base}${ns}/${kind.plural}${name}${sub}`;
}

/** The kinds the operator, fnolctl, tests and benchmarks address, by name. */
export const Kinds = {
  FnolModel: { group: GROUP, version: VERSION, plural: PLURAL },
  Deployment: { group: 'apps', version: 'v1', plural: 'deployments' },
  ReplicaSet: { group: 'apps', version: 'v1', plural: 'replicasets' },
  Service: { group: '', version: 'v1', plural: 'services' },
  Pod: { group: '', version: 'v1', plural: 'pods' },
  Secret: { group: '', version: 'v1', plural: 'secrets' },
  Event: { group: '', version: 'v1', plural: 'events' },
  Node: { group: '', version: 'v1', plural: 'nodes' },
  Namespace: { group: '', version: 'v1', plural: 'namespaces' },
  Ingress: { group: 'networking.k8s.io', version: 'v1', plural: 'ingresses' },
  NetworkPolicy: { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies' },
  PodDisruptionBudget: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets' },
  HorizontalPodAutoscaler: { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers' },
  HTTPRoute: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
} as const satisfies Record<string, ResourceKind>;

/** Path of the FnolModels of a namespace, of one FnolModel, or of its status. */
export function fnolModelPath(namespace: string, name?: string, subresource?: 'status'): string {
  return apiPath(Kinds.FnolModel, { namespace, name, subresource });
}

/**
 * The owned kinds, in apply order, each with its pure desired-state function.
 * A child whose function returns undefined is not wanted for this FnolModel and
 * is deleted if it exists. Most kinds have one child named after the
 * FnolModel; with spec.canary the candidate's Deployment, Service and
 * NetworkPolicy are named <name>-canary, so each desired child carries its name.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { apiPath, canaryName, type FnolModel } from '@fnol/api';
import type { DesiredStateConfig } from './common';
import { desiredCanaryDeployment, desiredDeployment, type Mirror, type ServedModel } from './deployment';
import { desiredHpa } from './hpa';
import { desiredHttpRoute } from './httproute';
import { desiredIngress } from './ingress';
import { desiredCanaryNetworkPolicy, desiredNetworkPolicy } from './networkpolicy';
import { desiredPdb } from './pdb';
import { desiredCanaryService, desiredService } from './service';

export interface OwnedKind {
  kind: string;
  apiVersion: string;
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  /**
   * The kind's CRDs may be missing from a cluster (the Gateway API): its cache
   * then stays empty and is listed again later, and a FnolModel that asks for
   * one gets a condition instead of an error.
   */
  optional?: boolean;
}

export const OWNED_KINDS = {
  NetworkPolicy: {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'networkpolicies',
  },
  Service: { kind: 'Service', apiVersion: 'v1', group: '', version: 'v1', plural: 'services' },
  Deployment: {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
  },
  PodDisruptionBudget: {
    kind: 'PodDisruptionBudget',
    apiVersion: 'policy/v1',
    group: 'policy',
    version: 'v1',
    plural: 'poddisruptionbudgets',
  },
  HorizontalPodAutoscaler: {
    kind: 'HorizontalPodAutoscaler',
    apiVersion: 'autoscaling/v2',
    group: 'autoscaling',
    version: 'v2',
    plural: 'horizontalpodautoscalers',
  },
  Ingress: {
    kind: 'Ingress',
    apiVersion: 'networking.k8s.io/v1',
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'ingresses',
  },
  HTTPRoute: {
    kind: 'HTTPRoute',
    apiVersion: 'gateway.networking.k8s.io/v1',
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    plural: 'httproutes',
    optional: true,
  },
} as const satisfies Record<string, OwnedKind>;

export type OwnedKindName = keyof typeof OWNED_KINDS;

export interface DesiredChild {
  kind: OwnedKind;
  /** The object's name: the FnolModel's, or <name>-canary for the candidate's objects. */
  name: string;
  /** undefined: the spec does not ask for this object; delete it if present. */
  object: KubernetesObject | undefined;
}

/** What the reconciler decided before computing the children. */
export interface DesiredInputs {
  /** What the stable Deployment serves; undefined: leave it as it is. */
  model: ServedModel | undefined;
  /** The candidate's model may be rolled out (checked); false: leave its Deployment as it is. */
  canaryModelReady: boolean;
  /** The stable pods' SHADOW_* settings (undefined: no mirroring). */
  mirror: Mirror | undefined;
  /** The candidate's share in the HTTPRoute. */
  canaryWeight: number;
  /** The cluster serves the HTTPRoute kind; false: no route is applied nor deleted. */
  httpRoutes: boolean;
}

/**
 * Every child of a FnolModel, in the order they are applied: the
 * NetworkPolicies before the pods exist, the Deployments before what points
 * at them.
 */
export function desiredChildren(fm: FnolModel, cfg: DesiredStateConfig, d: DesiredInputs): DesiredChild[] {
  const name = fm.metadata.name;
  const canary = canaryName(name);
  const children: DesiredChild[] = [
    { kind: OWNED_KINDS.NetworkPolicy, name, object: desiredNetworkPolicy(fm, cfg) },
    { kind: OWNED_KINDS.NetworkPolicy, name: canary, object: desiredCanaryNetworkPolicy(fm, cfg) },
    { kind: OWNED_KINDS.Service, name, object: desiredService(fm) },
    { kind: OWNED_KINDS.Service, name: canary, object: desiredCanaryService(fm) },
  ];
  if (d.model) {
    children.push({
      kind: OWNED_KINDS.Deployment,
      name,
      object: desiredDeployment(fm, cfg, d.model, d.mirror),
    });
  }
  // A candidate not checked yet is not started; one removed from the spec is deleted.
  if (!fm.spec.canary || d.canaryModelReady) {
    children.push({ kind: OWNED_KINDS.Deployment, name: canary, object: desiredCanaryDeployment(fm, cfg) });
  }
  children.push(
    { kind: OWNED_KINDS.PodDisruptionBudget, name, object: desiredPdb(fm) },
    { kind: OWNED_KINDS.HorizontalPodAutoscaler, name, object: desiredHpa(fm) },
    { kind: OWNED_KINDS.Ingress, name, object: desiredIngress(fm) },
  );
  if (d.httpRoutes) {
    children.push({ kind: OWNED_KINDS.HTTPRoute, name, object: desiredHttpRoute(fm, d.canaryWeight) });
  }
  return children;
}

/** API path of a namespaced collection, or of one object when name is given. */
export function resourcePath(kind: OwnedKind, namespace: string, name?: string): string {
  return apiPath(kind, { namespace, name });
}

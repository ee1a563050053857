/**
 * The owned kinds, in apply order, each with its pure desired-state function.
 * A kind whose function returns undefined is not wanted for this FnolModel and
 * is deleted if it exists.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { apiPath, type FnolModel } from '@fnol/api';
import type { DesiredStateConfig } from './common';
import { desiredDeployment, ServedModel } from './deployment';
import { desiredHpa } from './hpa';
import { desiredIngress } from './ingress';
import { desiredNetworkPolicy } from './networkpolicy';
import { desiredPdb } from './pdb';
import { desiredService } from './service';

export interface OwnedKind {
  kind: string;
  apiVersion: string;
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
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
} as const satisfies Record<string, OwnedKind>;

export type OwnedKindName = keyof typeof OWNED_KINDS;

export interface DesiredChild {
  kind: OwnedKind;
  /** undefined: the spec does not ask for this object; delete it if present. */
  object: KubernetesObject | undefined;
}

/**
 * Every child of a FnolModel, in the order they are applied: the NetworkPolicy
 * before the pods exist, the Deployment before what points at it. `model` is
 * what the Deployment serves (undefined: leave the Deployment as it is).
 */
export function desiredChildren(
  fm: FnolModel,
  cfg: DesiredStateConfig,
  model: ServedModel | undefined,
): DesiredChild[] {
  const children: DesiredChild[] = [
    { kind: OWNED_KINDS.NetworkPolicy, object: desiredNetworkPolicy(fm, cfg) },
    { kind: OWNED_KINDS.Service, object: desiredService(fm) },
  ];
  if (model) children.push({ kind: OWNED_KINDS.Deployment, object: desiredDeployment(fm, cfg, model) });
  children.push(
    { kind: OWNED_KINDS.PodDisruptionBudget, object: desiredPdb(fm) },
    { kind: OWNED_KINDS.HorizontalPodAutoscaler, object: desiredHpa(fm) },
    { kind: OWNED_KINDS.Ingress, object: desiredIngress(fm) },
  );
  return children;
}

/** API path of a namespaced collection, or of one object when name is given. */
export function resourcePath(kind: OwnedKind, namespace: string, name?: string): string {
  return apiPath(kind, { namespace, name });
}

/**
 * PodDisruptionBudget allowing one voluntary eviction at a time, only when more
 * than one scorer pod is asked for (with one pod it would block node drains).
 */
import type { V1PodDisruptionBudget } from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import { desiredReplicas, ownedMetadata, selectorLabels } from './common';

export function desiredPdb(fm: FnolModel): V1PodDisruptionBudget | undefined {
  if (desiredReplicas(fm) <= 1) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMetadata(fm),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(fm) },
    },
  };
}

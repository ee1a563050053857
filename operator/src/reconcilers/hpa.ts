/** HorizontalPodAutoscaler on CPU, only when spec.autoscaling is set. */
import type { V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import { ownedMetadata } from './common';

export function desiredHpa(fm: FnolModel): V2HorizontalPodAutoscaler | undefined {
  const a = fm.spec.autoscaling;
  if (!a) return undefined;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: ownedMetadata(fm),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: fm.metadata.name },
      minReplicas: a.minReplicas,
      maxReplicas: a.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: {
            name: 'cpu',
            target: { type: 'Utilization', averageUtilization: a.targetCPUUtilizationPercentage },
          },
        },
      ],
    },
  };
}

/**
 * ClusterIP Services in front of the scorer pods, port 80 to the container's
 * http port: <name> selects the stable pods, <name>-canary the candidate's
 * (spec.canary). Neither selects the other's pods (reconcilers/common.ts).
 */
import type { V1Service, V1ObjectMeta } from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import {
  canaryMetadata,
  canarySelectorLabels,
  ownedMetadata,
  SCORER_PORT_NAME,
  selectorLabels,
  SERVICE_PORT,
} from './common';

function scorerService(metadata: V1ObjectMeta, selector: Record<string, string>): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata,
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [{ name: 'http', port: SERVICE_PORT, targetPort: SCORER_PORT_NAME, protocol: 'TCP' }],
    },
  };
}

export function desiredService(fm: FnolModel): V1Service {
  return scorerService(ownedMetadata(fm), selectorLabels(fm));
}

/** The candidate's Service; none without spec.canary. */
export function desiredCanaryService(fm: FnolModel): V1Service | undefined {
  if (!fm.spec.canary) return undefined;
  return scorerService(canaryMetadata(fm), canarySelectorLabels(fm));
}

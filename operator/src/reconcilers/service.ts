/** ClusterIP Service in front of the scorer pods, port 80 to the container's http port. */
import type { V1Service } from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import { ownedMetadata, SCORER_PORT_NAME, selectorLabels } from './common';

export function desiredService(fm: FnolModel): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMetadata(fm),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(fm),
      ports: [{ name: 'http', port: 80, targetPort: SCORER_PORT_NAME, protocol: 'TCP' }],
    },
  };
}

/**
 * NetworkPolicy admitting traffic to the scorer port only from the ingress
 * controller's and the monitoring namespaces (configured on the operator).
 */
import type { V1NetworkPolicy, V1NetworkPolicyPeer } from '@kubernetes/client-node';
import type { FnolModel } from '../api/types';
import { DesiredStateConfig, ownedMetadata, SCORER_PORT, selectorLabels } from './common';

export function desiredNetworkPolicy(fm: FnolModel, cfg: DesiredStateConfig): V1NetworkPolicy {
  const namespaces = [...new Set([...cfg.ingressControllerNamespaces, ...cfg.monitoringNamespaces])];
  const from: V1NetworkPolicyPeer[] = namespaces.map((ns) => ({
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
  }));
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMetadata(fm),
    spec: {
      podSelector: { matchLabels: selectorLabels(fm) },
      policyTypes: ['Ingress'],
      ingress: [{ from, ports: [{ protocol: 'TCP', port: SCORER_PORT }] }],
    },
  };
}

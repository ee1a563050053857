/**
 * The scorer pods' NetworkPolicy. Ingress: the scorer port, only from the
 * ingress controller's and the monitoring namespaces. Egress: cluster DNS and
 * the model store only (CIDRs and ports the cluster admin sets on the
 * operator), so a scorer cannot reach the API server, other tenants' services
 * or the internet. Nothing here comes from the FnolModel: its author cannot
 * widen either direction.
 */
import type {
  V1NetworkPolicy,
  V1NetworkPolicyEgressRule,
  V1NetworkPolicyPeer,
} from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import { DesiredStateConfig, ownedMetadata, SCORER_PORT, selectorLabels } from './common';

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function egressRules(cfg: DesiredStateConfig): V1NetworkPolicyEgressRule[] {
  return [
    {
      to: [
        {
          namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: cfg.dnsNamespace } },
          podSelector: { matchLabels: { ...cfg.dnsPodLabels } },
        },
      ],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    },
    {
      to: cfg.modelStoreCidrs.map((cidr) => ({ ipBlock: { cidr } })),
      ports: cfg.modelStorePorts.map((port) => ({ protocol: 'TCP', port })),
    },
  ];
}

export function desiredNetworkPolicy(fm: FnolModel, cfg: DesiredStateConfig): V1NetworkPolicy {
  const namespaces = [...new Set([...cfg.ingressControllerNamespaces, ...cfg.monitoringNamespaces])];
  const from: V1NetworkPolicyPeer[] = namespaces.map((ns) => ({
    namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } },
  }));
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMetadata(fm),
    spec: {
      podSelector: { matchLabels: selectorLabels(fm) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from, ports: [{ protocol: 'TCP', port: SCORER_PORT }] }],
      egress: egressRules(cfg),
    },
  };
}

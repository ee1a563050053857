/**
 * The scorer pods' NetworkPolicies. Ingress: the scorer port, only from the
 * ingress controller's and the monitoring namespaces, and from the operator's
 * pods (it reads GET /shadow while the stable pods mirror). Egress: cluster
 * DNS and the model store only (CIDRs and ports the cluster admin sets on the
 * operator), and the trace collector when the admin turned trace export on,
 * so a scorer cannot reach the API server, other tenants' services or the
 * internet. Nothing here comes from the FnolModel: its author cannot
 * widen either direction.
 *
 * With spec.canary, the candidate's pods get their own policy <name>-canary
 * (same rules, plus ingress from this FnolModel's stable pods), and the stable
 * pods may also connect to the candidate's pods on the scorer port: the
 * mirrored copies of their requests.
 */
import type {
  V1NetworkPolicy,
  V1NetworkPolicyEgressRule,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
} from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import {
  canaryMetadata,
  canarySelectorLabels,
  DesiredStateConfig,
  OPERATOR_POD_LABELS,
  ownedMetadata,
  SCORER_PORT,
  selectorLabels,
} from './common';

const SCORER_PORTS = [{ protocol: 'TCP', port: SCORER_PORT }];

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function egressRules(fm: FnolModel, cfg: DesiredStateConfig): V1NetworkPolicyEgressRule[] {
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
    ...identityEgressRules(fm, cfg),
    ...tracesEgressRules(cfg),
  ];
}

/**
 * The trace collector the cluster admin set (SCORER_TRACES_*): its namespaces
 * (narrowed to its pods' labels) and CIDRs, on the endpoint's port only.
 */
function tracesEgressRules(cfg: DesiredStateConfig): V1NetworkPolicyEgressRule[] {
  const t = cfg.scorerTraces;
  if (!t) return [];
  const podLabels = Object.keys(t.egressPodLabels).length > 0 ? t.egressPodLabels : undefined;
  const to: V1NetworkPolicyPeer[] = [
    ...t.egressNamespaces.map((ns) => ({
      namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } },
      ...(podLabels ? { podSelector: { matchLabels: { ...podLabels } } } : {}),
    })),
    ...t.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })),
  ];
  return [{ to, ports: [{ protocol: 'TCP', port: t.port }] }];
}

/**
 * The hosts a FnolModel's scorer pods talk to for identity: the Entra ID token
 * endpoint (spec.model.identity; the first host of the token authority
 * allow-list, as the AKS webhook sets AZURE_AUTHORITY_HOST) and the OIDC key
 * set's host (spec.auth.oidc). Only the CIDRs the cluster admin listed for those
 * hosts (IDENTITY_EGRESS) are opened, on 443; a host without an entry gets none.
 */
export function identityHosts(fm: FnolModel, cfg: DesiredStateConfig): string[] {
  const hosts: string[] = [];
  if (fm.spec.model.identity) {
    const authority = cfg.tokenAuthorityHosts?.find((h) => !h.wildcard)?.host ?? 'login.microsoftonline.com';
    hosts.push(authority);
  }
  const oidc = fm.spec.auth?.oidc;
  if (oidc) {
    try {
      const keys = new URL(oidc.jwksUri ?? oidc.issuer);
      hosts.push(keys.hostname.toLowerCase());
    } catch {
      // The CRD's pattern admits URLs only; nothing to open otherwise.
    }
  }
  return [...new Set(hosts)];
}

function identityEgressRules(fm: FnolModel, cfg: DesiredStateConfig): V1NetworkPolicyEgressRule[] {
  const cidrs = identityHosts(fm, cfg).flatMap((host) => cfg.identityEgress?.[host] ?? []);
  if (cidrs.length === 0) return [];
  return [
    {
      to: [...new Set(cidrs)].map((cidr) => ({ ipBlock: { cidr } })),
      ports: [{ protocol: 'TCP', port: 443 }],
    },
  ];
}

/** Ingress from the ingress controllers and monitoring: what every scorer pod accepts. */
function callerRule(cfg: DesiredStateConfig): V1NetworkPolicyIngressRule {
  const namespaces = [...new Set([...cfg.ingressControllerNamespaces, ...cfg.monitoringNamespaces])];
  const from: V1NetworkPolicyPeer[] = namespaces.map((ns) => ({
    namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } },
  }));
  return { from, ports: SCORER_PORTS };
}

export function desiredNetworkPolicy(fm: FnolModel, cfg: DesiredStateConfig): V1NetworkPolicy {
  const egress = egressRules(fm, cfg);
  // The mirrored copies of the stable pods' requests go to the candidate's pods.
  if (fm.spec.canary) {
    egress.push({ to: [{ podSelector: { matchLabels: canarySelectorLabels(fm) } }], ports: SCORER_PORTS });
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMetadata(fm),
    spec: {
      podSelector: { matchLabels: selectorLabels(fm) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        callerRule(cfg),
        {
          from: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: cfg.operatorNamespace } },
              podSelector: { matchLabels: { ...OPERATOR_POD_LABELS } },
            },
          ],
          ports: SCORER_PORTS,
        },
      ],
      egress,
    },
  };
}

/** The candidate's pods' policy; none without spec.canary. */
export function desiredCanaryNetworkPolicy(
  fm: FnolModel,
  cfg: DesiredStateConfig,
): V1NetworkPolicy | undefined {
  if (!fm.spec.canary) return undefined;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: canaryMetadata(fm),
    spec: {
      podSelector: { matchLabels: canarySelectorLabels(fm) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        callerRule(cfg),
        // This FnolModel's stable pods, sending the mirrored copies.
        { from: [{ podSelector: { matchLabels: selectorLabels(fm) } }], ports: SCORER_PORTS },
      ],
      egress: egressRules(fm, cfg),
    },
  };
}

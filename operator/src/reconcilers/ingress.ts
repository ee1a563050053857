/**
 * Ingress for spec.ingress (none when the FnolModel has no ingress section).
 * Only what consumers call is published: the scoring endpoints of both
 * protocols and the model's description. Metrics and probes (/metrics,
 * /healthz, /readyz, /v2/health/...) stay inside the cluster, scraped and
 * probed on the pod's port.
 */
import type { V1HTTPIngressPath, V1Ingress } from '@kubernetes/client-node';
import type { FnolModel } from '@fnol/api';
import { ownedMetadata } from './common';

/** The scorer's public routes (the route modules under scorer/src/routes/). */
export const PUBLIC_PATHS: readonly { path: string; pathType: 'Exact' | 'Prefix' }[] = [
  { path: '/score', pathType: 'Exact' },
  { path: '/model', pathType: 'Exact' },
  { path: '/openapi.json', pathType: 'Exact' },
  // Model metadata, readiness and inference of the Open Inference Protocol.
  { path: '/v2/models', pathType: 'Prefix' },
];

export function desiredIngress(fm: FnolModel): V1Ingress | undefined {
  const ing = fm.spec.ingress;
  if (!ing) return undefined;
  // The prefix is forwarded unchanged (a non-root prefix needs a rewrite in
  // the ingress controller, see docs/crd-reference.md).
  const prefix = ing.path.replace(/\/+$/, '');
  const paths: V1HTTPIngressPath[] = PUBLIC_PATHS.map(({ path, pathType }) => ({
    path: `${prefix}${path}`,
    pathType,
    backend: { service: { name: fm.metadata.name, port: { name: 'http' } } },
  }));
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: ownedMetadata(fm),
    spec: {
      ...(ing.className ? { ingressClassName: ing.className } : {}),
      ...(ing.tlsSecretName ? { tls: [{ hosts: [ing.host], secretName: ing.tlsSecretName }] } : {}),
      rules: [{ host: ing.host, http: { paths } }],
    },
  };
}

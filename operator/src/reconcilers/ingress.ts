/** Ingress for spec.ingress (none when the FnolModel has no ingress section). */
import type { V1Ingress } from '@kubernetes/client-node';
import type { FnolModel } from '../api/types';
import { ownedMetadata } from './common';

export function desiredIngress(fm: FnolModel): V1Ingress | undefined {
  const ing = fm.spec.ingress;
  if (!ing) return undefined;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: ownedMetadata(fm),
    spec: {
      ...(ing.className ? { ingressClassName: ing.className } : {}),
      ...(ing.tlsSecretName ? { tls: [{ hosts: [ing.host], secretName: ing.tlsSecretName }] } : {}),
      rules: [
        {
          host: ing.host,
          http: {
            paths: [
              {
                path: ing.path ?? '/',
                pathType: 'Prefix',
                backend: { service: { name: fm.metadata.name, port: { name: 'http' } } },
              },
            ],
          },
        },
      ],
    },
  };
}

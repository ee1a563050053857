/**
 * The local cluster's real node (cluster/node/, docs/local-cluster.md): its
 * name, how a pod is placed on it, and a small restricted Deployment of the
 * echo server built with it (it answers "echo <pod name> <path>" on 8080).
 */
import * as k8s from '@kubernetes/client-node';

export const REAL_NODE = process.env.FNOL_NODE_NAME ?? 'fnol-real-node';

/** What a pod spec needs to run on the real node (label and taint set by cluster/node/up.sh). */
export const REAL_NODE_PLACEMENT = {
  nodeSelector: { 'fnol.local/node-kind': 'real' },
  tolerations: [{ key: 'fnol.local/real-node', operator: 'Exists', effect: 'NoSchedule' }],
};

/** True when the real node is registered and Ready. */
export async function realNodeReady(core: k8s.CoreV1Api): Promise<boolean> {
  const node = await core.readNode(REAL_NODE).catch(() => undefined);
  return node?.body.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Two echo pods on the real node under the restricted Pod Security level, selected by `labels`. */
export function echoDeployment(name: string, labels: Record<string, string>): k8s.V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...REAL_NODE_PLACEMENT,
          automountServiceAccountToken: false,
          containers: [
            {
              name: 'echo',
              image: 'fnol.local/echo:1.0',
              imagePullPolicy: 'Never',
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1 },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                runAsUser: 65535,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
            },
          ],
        },
      },
    },
  };
}

// Pod discovery for the local Prometheus (cluster/monitoring/up.sh starts it).
//
// Debian's Prometheus is built without Kubernetes service discovery, so this
// process does its part for role pod: every few seconds it lists the cluster's
// pods with the Prometheus ServiceAccount's token and writes them, one target
// per container port, to a file_sd file with the labels Kubernetes discovery
// gives (__meta_kubernetes_namespace, _pod_name, _pod_ip, _pod_phase,
// _pod_label_*, _pod_annotation_*, _pod_container_port_*, ...). The relabeling
// of manifests/monitoring/scrape-configs.yaml then applies unchanged.
//
//   node --import tsx cluster/monitoring/pod-discovery.ts --api-server URL --ca FILE --token FILE --out FILE
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

interface Pod {
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    nodeName?: string;
    containers: Array<{
      name: string;
      ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
    }>;
  };
  status?: { phase?: string; podIP?: string; conditions?: Array<{ type: string; status: string }> };
}

export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** A label name as Prometheus writes it: every character outside [a-zA-Z0-9_] becomes _. */
const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

/** The target groups Kubernetes discovery (role pod) gives for these pods. */
export function podTargets(pods: Pod[]): TargetGroup[] {
  const groups: TargetGroup[] = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip) continue;
    const common: Record<string, string> = {
      __meta_kubernetes_namespace: pod.metadata.namespace,
      __meta_kubernetes_pod_name: pod.metadata.name,
      __meta_kubernetes_pod_ip: ip,
      __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
      __meta_kubernetes_pod_node_name: pod.spec.nodeName ?? '',
      __meta_kubernetes_pod_ready:
        pod.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'unknown',
    };
    for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) {
      common[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      common[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
    }
    for (const [k, v] of Object.entries(pod.metadata.annotations ?? {})) {
      common[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
      common[`__meta_kubernetes_pod_annotationpresent_${sanitize(k)}`] = 'true';
    }
    let ports = 0;
    for (const c of pod.spec.containers) {
      for (const p of c.ports ?? []) {
        ports++;
        groups.push({
          targets: [`${ip}:${p.containerPort}`],
          labels: {
            ...common,
            __meta_kubernetes_pod_container_name: c.name,
            __meta_kubernetes_pod_container_port_name: p.name ?? '',
            __meta_kubernetes_pod_container_port_number: String(p.containerPort),
            __meta_kubernetes_pod_container_port_protocol: p.protocol ?? 'TCP',
          },
        });
      }
    }
    // A pod without declared ports is still one target, at its address.
    if (ports === 0) groups.push({ targets: [ip], labels: common });
  }
  return groups;
}

function listPods(apiServer: string, ca: string, token: string): Promise<Pod[]> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${apiServer}/api/v1/pods`,
      { ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET /api/v1/pods answered ${res.statusCode}: ${body.slice(0, 200)}`));
            return;
          }
          try {
            resolve((JSON.parse(body) as { items: Pod[] }).items);
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('GET /api/v1/pods timed out')));
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'api-server': { type: 'string' },
      ca: { type: 'string' },
      token: { type: 'string' },
      out: { type: 'string' },
      'interval-ms': { type: 'string', default: '5000' },
    },
  });
  const apiServer = values['api-server'];
  const { ca, token, out } = values;
  if (!apiServer || !ca || !token || !out) {
    console.error(
      'usage: pod-discovery.ts --api-server URL --ca FILE --token FILE --out FILE [--interval-ms N]',
    );
    process.exit(2);
  }
  const interval = Number(values['interval-ms']);
  const caText = readFileSync(ca, 'utf8');
  let written = '';
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
  for (;;) {
    try {
      // The token file is read each time: up.sh renews it in place.
      const pods = await listPods(apiServer, caText, readFileSync(token, 'utf8').trim());
      const text = `${JSON.stringify(podTargets(pods), null, 1)}\n`;
      if (text !== written) {
        writeFileSync(`${out}.new`, text);
        renameSync(`${out}.new`, out); // Prometheus never reads a half-written file
        written = text;
        console.log(`${new Date().toISOString()} ${pods.length} pods`);
      }
    } catch (err) {
      console.error(`${new Date().toISOString()} pod discovery: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

if (require.main === module) void main();

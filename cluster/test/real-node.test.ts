/**
 * The real node (FNOL_REAL_NODE=1 npm run cluster:up, see docs/local-cluster.md):
 * pods that tolerate its taint run as real containers under containerd, get an
 * address on the node's bridge, pass HTTP readiness probes, and are reachable
 * from this machine directly and through a Service's ClusterIP (kube-proxy).
 *
 * Without FNOL_REAL_NODE=1 the suite is reported as pending: the default cluster
 * has simulated nodes only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, useCluster, type Cluster } from '../../test/support/cluster';
import { echoDeployment, REAL_NODE as NODE } from '../../test/support/real-node';
import { poll } from '../../test/support/wait';

const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> =>
  poll(what, check, timeoutMs, 500);

/** GET over a new connection each time (no keep-alive reuse across attempts). */
function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 5 s`)));
    req.on('error', reject);
  });
}

/** True once kube-proxy has programmed iptables for the ClusterIP (so no packet leaves the machine). */
function serviceProgrammed(clusterIP: string): boolean {
  const out = spawnSync('iptables', ['-w', '-t', 'nat', '-S', 'KUBE-SERVICES'], { encoding: 'utf8' });
  return out.status === 0 && out.stdout.includes(`-d ${clusterIP}/32`);
}

describe('real node', function () {
  let cluster: Cluster;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let ns: string;

  before(async function () {
    if (process.env.FNOL_REAL_NODE !== '1') this.skip();
    cluster = await useCluster(this);
    core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
    ns = await createTestNamespace('real-node', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  });

  it('is Ready, labelled and tainted so only tolerating pods land on it', async function () {
    const { body: node } = await core.readNode(NODE);
    assert.equal(node.metadata?.labels?.['fnol.local/node-kind'], 'real');
    assert.ok(node.spec?.taints?.some((t) => t.key === 'fnol.local/real-node' && t.effect === 'NoSchedule'));
    assert.ok(node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    assert.match(node.status?.nodeInfo?.containerRuntimeVersion ?? '', /^containerd:\/\//);
  });

  it('runs a restricted Deployment as real containers, reachable by pod IP and through a Service', async function () {
    this.timeout(180_000);
    const labels = { app: 'echo' };
    await apps.createNamespacedDeployment(ns, echoDeployment('echo', labels));
    await waitFor('2 ready echo pods', async () => {
      const { body } = await apps.readNamespacedDeployment('echo', ns);
      return body.status?.readyReplicas === 2 ? true : undefined;
    });
    const pods = (await core.listNamespacedPod(ns, undefined, undefined, undefined, undefined, 'app=echo'))
      .body.items;
    for (const pod of pods) {
      assert.equal(pod.spec?.nodeName, NODE);
      const body = await httpGet(`http://${pod.status?.podIP}:8080/direct`);
      assert.equal(body.trim(), `echo ${pod.metadata?.name} /direct`);
    }

    const { body: svc } = await core.createNamespacedService(ns, {
      metadata: { name: 'echo' },
      spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
    });
    const clusterIP = svc.spec?.clusterIP ?? '';
    await waitFor('kube-proxy to program the Service', async () =>
      serviceProgrammed(clusterIP) ? true : undefined,
    );
    const served = new Set<string>();
    await waitFor('both pods to answer through the Service ClusterIP', async () => {
      const body = await httpGet(`http://${clusterIP}/svc`);
      served.add(body.split(' ')[1] ?? '');
      return served.size === 2 ? true : undefined;
    });
  });

  it('stops the containers when the Deployment is deleted', async function () {
    await apps.deleteNamespacedDeployment(
      'echo',
      ns,
      undefined,
      undefined,
      undefined,
      undefined,
      'Foreground',
    );
    await waitFor('the echo pods to be gone', async () => {
      const pods = (await core.listNamespacedPod(ns)).body.items;
      return pods.length === 0 ? true : undefined;
    });
  });
});

/**
 * The Ingress the operator writes for a FnolModel, served by a real ingress
 * controller (Traefik on this host, docs/local-ingress.md): the scoring and
 * model paths reach the scorer's Service; /metrics and the probes do not leave
 * the cluster. The backend is an HTTP server on a non-loopback address of this
 * machine behind a Service without a selector and an EndpointSlice (the API
 * server refuses loopback addresses in EndpointSlices).
 */
import { strict as assert } from 'node:assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { desiredIngress } from '../../src/reconcilers/ingress';
import { fnolModel } from '../fixtures';
import {
  CLUSTER_START_TIMEOUT_MS,
  createTestNamespace,
  useCluster,
  type Cluster,
} from '../../../test/support/cluster';
import {
  INGRESS_BUILD_TIMEOUT_MS,
  INGRESS_CLASS,
  INGRESS_PORT,
  useIngress,
  type IngressHandle,
} from '../../../test/support/ingress';
import { poll } from '../../../test/support/wait';

/** A non-loopback IPv4 address of this machine: the real node's bridge when present, else an external one. */
function hostAddress(): string {
  const interfaces = os.networkInterfaces();
  const bridge = interfaces[process.env.FNOL_NODE_BRIDGE ?? 'fnol0']?.find((a) => a.family === 'IPv4');
  if (bridge) return bridge.address;
  for (const list of Object.values(interfaces)) {
    const found = list?.find((a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('169.254.'));
    if (found) return found.address;
  }
  throw new Error('no non-loopback IPv4 address on this machine for the test backend');
}

/** A request through the ingress controller: its status, and the path the backend saw (if it got there). */
function through(method: string, host: string, path: string): Promise<{ status: number; seen?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: INGRESS_PORT, method, path, headers: { host }, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let seen: string | undefined;
          try {
            seen = (JSON.parse(body) as { seen?: string }).seen;
          } catch {
            seen = undefined;
          }
          resolve({ status: res.statusCode ?? 0, ...(seen === undefined ? {} : { seen }) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${host}${path} timed out`)));
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

describe('operator integration: the Ingress publishes only the scoring and model paths', function () {
  let cluster: Cluster;
  let ingressController: IngressHandle | undefined;
  let backend: http.Server | undefined;
  let ns: string;
  const host = `fnol-${process.pid}.local`;

  before(async function () {
    this.timeout(CLUSTER_START_TIMEOUT_MS + INGRESS_BUILD_TIMEOUT_MS);
    cluster = await useCluster(this);
    ingressController = await useIngress();
    ns = await createTestNamespace('ingress-routes');
    const address = hostAddress();
    backend = http.createServer((req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ seen: req.url }));
    });
    await new Promise<void>((resolve, reject) => {
      backend?.once('error', reject);
      backend?.listen(0, address, resolve);
    });
    const port = (backend.address() as AddressInfo).port;
    const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    const discovery = cluster.kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
    const networking = cluster.kubeConfig.makeApiClient(k8s.NetworkingV1Api);
    // The Service the operator names in the Ingress (the FnolModel's name, port "http").
    await core.createNamespacedService(ns, {
      metadata: { name: 'fnol' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: port }] },
    });
    await discovery.createNamespacedEndpointSlice(ns, {
      metadata: { name: 'fnol-1', labels: { 'kubernetes.io/service-name': 'fnol' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true, serving: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
    const ingress = desiredIngress(fnolModel({ ingress: { host, path: '/', className: INGRESS_CLASS } }));
    assert.ok(ingress);
    // No FnolModel exists here: without its owner the garbage collector would delete it.
    delete ingress.metadata?.ownerReferences;
    await networking.createNamespacedIngress(ns, {
      ...ingress,
      metadata: { ...ingress.metadata, namespace: ns },
    });
    await poll(
      'the Ingress to be routed',
      async () => ((await through('POST', host, '/score')).status === 200 ? true : undefined),
      30_000,
      200,
    );
  });

  after(async function () {
    this.timeout(60_000);
    if (backend) await new Promise((done) => backend?.close(done));
    await ingressController?.release();
  });

  it('routes /score, /model, /openapi.json and /v2/models/... to the scorer, path unchanged', async () => {
    for (const [method, path] of [
      ['POST', '/score'],
      ['GET', '/model'],
      ['GET', '/openapi.json'],
      ['GET', '/v2/models/fnol'],
      ['GET', '/v2/models/fnol/ready'],
      ['POST', '/v2/models/fnol/infer'],
      ['POST', '/v2/models/fnol/versions/1.0.0/infer'],
    ] as const) {
      const reply = await through(method, host, path);
      assert.equal(reply.status, 200, `${method} ${path}`);
      assert.equal(reply.seen, path);
    }
  });

  it('does not publish /metrics, the probes or anything else', async () => {
    for (const path of [
      '/metrics',
      '/healthz',
      '/readyz',
      '/v2',
      '/v2/health/live',
      '/v2/health/ready',
      '/',
      '/scores',
      '/score/x',
      '/v2/modelsx',
    ]) {
      const reply = await through('GET', host, path);
      assert.equal(reply.status, 404, path);
      assert.equal(reply.seen, undefined, `${path} reached the scorer`);
    }
  });
});

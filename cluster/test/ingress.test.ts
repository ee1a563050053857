/**
 * The local ingress controller (cluster/ingress/, docs/local-ingress.md):
 * Traefik, run on this host against the local cluster, serves the Ingresses of
 * its class on 127.0.0.1. An Ingress for host fnol.local sends matching
 * requests to the Service's endpoints; unknown hosts, other paths, other
 * classes and deleted Ingresses get 404.
 *
 * The backend is a real HTTP server this test starts, behind a Service without
 * a selector and an EndpointSlice naming the server's address (the API server
 * refuses loopback addresses in EndpointSlices, so the server listens on a
 * non-loopback address of this machine: the real node's host-only bridge when
 * there is one, else the primary interface). With the real node running
 * (FNOL_REAL_NODE=1 npm run cluster:up) a second case routes to real pods.
 *
 * The controller is started (and built, on a cold cache) when it is not
 * running, and then stopped at the end; a controller that was running is left
 * running (restarted on this run's FNOL_INGRESS_* settings if they differ).
 */
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  CLUSTER_START_TIMEOUT_MS,
  createTestNamespace,
  useCluster,
  type Cluster,
} from '../../test/support/cluster';
import {
  INGRESS_BUILD_TIMEOUT_MS,
  INGRESS_CLASS as CLASS,
  INGRESS_PORT,
  useIngress,
  type IngressHandle,
} from '../../test/support/ingress';
import { backendAddress } from '../../test/support/net';
import { echoDeployment, realNodeReady } from '../../test/support/real-node';
import { selfSignedCert } from '../../test/support/tls';
import { poll } from '../../test/support/wait';

const ADMIN_PORT = Number(process.env.FNOL_INGRESS_ADMIN_PORT ?? 18082);
const TLS_PORT = Number(process.env.FNOL_INGRESS_TLS_PORT ?? 18443);
const HOST = 'fnol.local';

const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> =>
  poll(what, check, timeoutMs, 200);

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** GET http://127.0.0.1:<port><urlPath> with the given Host header. */
function get(port: number, host: string, urlPath: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, headers: { host }, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** GET https://127.0.0.1:<port><urlPath> for `host` (SNI and Host), trusting only `ca`. */
function getTls(port: number, host: string, urlPath: string, ca: string): Promise<Reply & { cert: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        servername: host,
        headers: { host },
        ca,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, cert }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET https://${host}${urlPath} timed out`)));
    req.on('error', reject);
  });
}

function ingress(
  name: string,
  paths: string[],
  service: string,
  className = CLASS,
  host = HOST,
): k8s.V1Ingress {
  return {
    metadata: { name },
    spec: {
      ingressClassName: className,
      rules: [
        {
          host,
          http: {
            paths: paths.map((p) => ({
              path: p,
              pathType: 'Prefix',
              backend: { service: { name: service, port: { name: 'http' } } },
            })),
          },
        },
      ],
    },
  };
}

describe('local ingress controller', function () {
  let cluster: Cluster;
  let core: k8s.CoreV1Api;
  let net: k8s.NetworkingV1Api;
  let discovery: k8s.DiscoveryV1Api;
  let ns: string;
  let ingressController: IngressHandle | undefined;
  let backend: http.Server;
  const tag = randomBytes(3).toString('hex');
  const prefix = `/claims-${tag}`;

  before(async function () {
    cluster = await useCluster(this);
    // A cold machine builds Kubernetes first, then Traefik.
    this.timeout(CLUSTER_START_TIMEOUT_MS + INGRESS_BUILD_TIMEOUT_MS);
    core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    net = cluster.kubeConfig.makeApiClient(k8s.NetworkingV1Api);
    discovery = cluster.kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
    ingressController = await useIngress();
    ns = await createTestNamespace('ingress');

    // The backend: a real HTTP server echoing what it received.
    const address = backendAddress();
    backend = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          server: `backend-${tag}`,
          path: req.url,
          host: req.headers.host,
          forwardedHost: req.headers['x-forwarded-host'],
          forwardedFor: req.headers['x-forwarded-for'],
        }),
      );
    });
    await new Promise<void>((resolve, reject) => {
      backend.once('error', reject);
      backend.listen(0, address, resolve);
    });
    const port = (backend.address() as AddressInfo).port;

    await core.createNamespacedService(ns, {
      metadata: { name: 'backend' },
      spec: { ports: [{ name: 'http', port: 80, targetPort: port }] },
    });
    await discovery.createNamespacedEndpointSlice(ns, {
      metadata: { name: 'backend-1', labels: { 'kubernetes.io/service-name': 'backend' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true, serving: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
  });

  after(async function () {
    this.timeout(60_000);
    if (backend) await new Promise((r) => backend.close(r));
    await ingressController?.release();
  });

  it('refuses a loopback address in an EndpointSlice (why the backend listens on another address)', async function () {
    await assert.rejects(
      discovery.createNamespacedEndpointSlice(ns, {
        metadata: { name: 'loopback', labels: { 'kubernetes.io/service-name': 'backend' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['127.0.0.1'] }],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      }),
      (err: { statusCode?: number; body?: { message?: string } }) =>
        err.statusCode === 422 && /loopback/.test(err.body?.message ?? ''),
    );
  });

  it('routes Host fnol.local and a path prefix to the Service endpoints', async function () {
    const created = Date.now();
    await net.createNamespacedIngress(ns, ingress('scorer', [prefix], 'backend'));
    const reply = await waitFor('the Ingress to be routed', async () => {
      const r = await get(INGRESS_PORT, HOST, `${prefix}/score?x=1`);
      return r.status === 200 ? r : undefined;
    });
    console.log(`      (Ingress created -> first routed request: ${Date.now() - created} ms)`);
    const body = JSON.parse(reply.body) as Record<string, string>;
    assert.equal(body.server, `backend-${tag}`);
    assert.equal(body.path, `${prefix}/score?x=1`, 'the path and query reach the backend unchanged');
    assert.equal(body.host, HOST, 'the Host header is passed through');
    assert.equal(body.forwardedHost, HOST);
    assert.equal(body.forwardedFor, '127.0.0.1');
    assert.match(reply.headers['content-type'] ?? '', /application\/json/);
  });

  it('answers 404 for an unknown host and for a path outside the Ingress', async function () {
    const unknown = await get(INGRESS_PORT, `unknown-${tag}.example.com`, `${prefix}/score`);
    assert.equal(unknown.status, 404);
    assert.doesNotMatch(unknown.body, /backend-/);
    const otherPath = await get(INGRESS_PORT, HOST, `/not-routed-${tag}`);
    assert.equal(otherPath.status, 404);
    // Prefix matching is by path element: /claims-<tag>x is not under /claims-<tag>.
    const sibling = await get(INGRESS_PORT, HOST, `${prefix}x/score`);
    assert.equal(sibling.status, 404);
  });

  it('writes the address it serves on into the Ingress status', async function () {
    const ip = await waitFor('the Ingress status to show the controller address', async () => {
      const { body } = await net.readNamespacedIngress('scorer', ns);
      return body.status?.loadBalancer?.ingress?.[0]?.ip;
    });
    assert.equal(ip, '127.0.0.1');
  });

  it('ignores Ingresses of another class', async function () {
    const other = `/other-class-${tag}`;
    await net.createNamespacedIngress(ns, ingress('other-class', [other], 'backend', `other-${tag}`));
    // Give the controller time to (wrongly) pick it up, proven by a change it does pick up.
    await net.createNamespacedIngress(ns, ingress('marker', [`/marker-${tag}`], 'backend'));
    await waitFor('a later Ingress of its class to be routed', async () => {
      const r = await get(INGRESS_PORT, HOST, `/marker-${tag}`);
      return r.status === 200 ? true : undefined;
    });
    assert.equal((await get(INGRESS_PORT, HOST, other)).status, 404);
  });

  it('serves HTTPS with the certificate of the Ingress TLS Secret', async function () {
    // A host of its own, so no other Ingress's certificate competes for it.
    const host = `secure-${tag}.${HOST}`;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnol-ingress-tls-'));
    let cert: string;
    let key: string;
    try {
      ({ cert, key } = selfSignedCert(dir, host, `DNS:${host}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await core.createNamespacedSecret(ns, {
      metadata: { name: 'scorer-tls' },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': cert, 'tls.key': key },
    });
    const ing = ingress('secure', [`/secure-${tag}`], 'backend', CLASS, host);
    ing.spec!.tls = [{ hosts: [host], secretName: 'scorer-tls' }];
    await net.createNamespacedIngress(ns, ing);
    const reply = await waitFor('the TLS route with the Secret certificate', async () => {
      const r = await getTls(TLS_PORT, host, `/secure-${tag}/score`, cert);
      return r.status === 200 ? r : undefined;
    });
    assert.equal(
      reply.cert,
      new X509Certificate(cert).fingerprint256,
      'the certificate served is the Secret one',
    );
    const body = JSON.parse(reply.body) as Record<string, string>;
    assert.equal(body.server, `backend-${tag}`);
    assert.equal(body.host, host);
  });

  it('reports health and request metrics on its admin port', async function () {
    const ping = await get(ADMIN_PORT, '127.0.0.1', '/ping');
    assert.equal(ping.status, 200);
    const metrics = await get(ADMIN_PORT, '127.0.0.1', '/metrics');
    assert.equal(metrics.status, 200);
    // The requests routed above are counted by entry point and status code.
    assert.match(
      metrics.body,
      /^traefik_entrypoint_requests_total\{code="200",entrypoint="web",[^}]*\} [1-9]/m,
    );
    assert.match(
      metrics.body,
      /^traefik_entrypoint_requests_total\{code="404",entrypoint="web",[^}]*\} [1-9]/m,
    );
  });

  it('stops routing when the Ingress is deleted', async function () {
    await net.deleteNamespacedIngress('scorer', ns);
    await waitFor('the route to disappear', async () => {
      const r = await get(INGRESS_PORT, HOST, `${prefix}/score`);
      return r.status === 404 ? true : undefined;
    });
  });

  describe('with the real node', function () {
    let apps: k8s.AppsV1Api;

    before(async function () {
      // Pending, not passing: this case needs FNOL_REAL_NODE=1 npm run cluster:up.
      if (!(await realNodeReady(core))) this.skip();
      apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
    });

    it('routes to real pods behind a Service with a selector', async function () {
      this.timeout(180_000);
      const labels = { app: `echo-${tag}` };
      await apps.createNamespacedDeployment(ns, echoDeployment('echo', labels));
      await core.createNamespacedService(ns, {
        metadata: { name: 'echo' },
        spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      });
      await net.createNamespacedIngress(ns, ingress('echo', [`/echo-${tag}`], 'echo'));
      const pods = new Set<string>();
      await waitFor(
        'both echo pods to answer through the Ingress',
        async () => {
          const r = await get(INGRESS_PORT, HOST, `/echo-${tag}/hello`);
          if (r.status !== 200) return undefined;
          // The echo server answers "echo <pod name> <path>".
          const [word, pod, seen] = r.body.trim().split(' ');
          assert.equal(word, 'echo');
          assert.equal(seen, `/echo-${tag}/hello`);
          pods.add(pod ?? '');
          return pods.size === 2 ? true : undefined;
        },
        150_000,
      );
      const { body } = await core.listNamespacedPod(
        ns,
        undefined,
        undefined,
        undefined,
        undefined,
        `app=echo-${tag}`,
      );
      assert.deepEqual(new Set(body.items.map((p) => p.metadata?.name)), pods);
    });
  });
});

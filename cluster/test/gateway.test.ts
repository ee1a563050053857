/**
 * The local Gateway (cluster/ingress/, docs/local-ingress.md, docs/adr/0010):
 * ingress:up installs the Gateway API CRDs (standard channel) of the release
 * the pinned Traefik is built against, the GatewayClass Traefik controls and
 * the Gateway fnol-ingress/fnol, whose HTTP listener serves on
 * 127.0.0.1:FNOL_GATEWAY_PORT the HTTPRoutes of every namespace attached to it.
 *
 * The proof that matters for canary versions: an HTTPRoute with two weighted
 * backendRefs splits the requests sent through the Gateway in the ratio of the
 * weights (90/10 over 2,000 requests: the second backend answers 10 % ± 2.5 %,
 * none fails), the split follows a change of the weights, and a weight of 0
 * sends nothing. The backends are real HTTP servers this test runs on a
 * non-loopback address of this machine, behind Services without a selector and
 * EndpointSlices naming them; with the real node running
 * (FNOL_REAL_NODE=1 npm run cluster:up) the split is measured again between two
 * Deployments of real pods.
 *
 * The controller is started (and built, on a cold cache) when it is not
 * running, and then stopped at the end; a controller that was running is left
 * running.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  CLUSTER_START_TIMEOUT_MS,
  createTestNamespace,
  useCluster,
  type Cluster,
} from '../../test/support/cluster';
import {
  GATEWAY,
  GATEWAY_CLASS,
  GATEWAY_PORT,
  INGRESS_BUILD_TIMEOUT_MS,
  INGRESS_PORT,
  useIngress,
  type IngressHandle,
} from '../../test/support/ingress';
import { backendAddress } from '../../test/support/net';
import { echoDeployment, realNodeReady } from '../../test/support/real-node';
import { poll } from '../../test/support/wait';

const GROUP = 'gateway.networking.k8s.io';
const CONTROLLER = 'traefik.io/gateway-controller';
const STANDARD_CRDS = [
  'backendtlspolicies',
  'gatewayclasses',
  'gateways',
  'grpcroutes',
  'httproutes',
  'referencegrants',
].map((plural) => `${plural}.${GROUP}`);
/** Requests per measured split, sent this many at a time. */
const REQUESTS = 2000;
const CONCURRENCY = 8;
/** Allowed distance of a measured share from the weights' share. */
const TOLERANCE = 0.025;

/** The Gateway API release Traefik is built against (cluster/ingress/build/go.mod). */
function gatewayApiVersionOfTraefik(): string {
  const goMod = readFileSync(path.resolve(__dirname, '..', 'ingress', 'build', 'go.mod'), 'utf8');
  const m = /^\s*sigs\.k8s\.io\/gateway-api (v\S+)/m.exec(goMod);
  if (!m?.[1]) throw new Error('cluster/ingress/build/go.mod requires no sigs.k8s.io/gateway-api');
  return m[1];
}

const waitFor = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> =>
  poll(what, check, timeoutMs, 200);

interface Reply {
  status: number;
  body: string;
}

/** GET http://127.0.0.1:<port><urlPath> with the given Host header. */
function get(port: number, host: string, urlPath: string, agent: http.Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, headers: { host }, agent, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${urlPath} timed out`)));
    req.on('error', reject);
  });
}

interface Split {
  /** Answers per backend, as named by `classify`. */
  counts: Record<string, number>;
  /** Each request that did not get a 200 answer from a backend, and why. */
  failures: string[];
}

/**
 * Sends `n` GET requests through the Gateway port, CONCURRENCY at a time over
 * kept-alive connections, and counts which backend answered each one.
 */
async function sendThroughGateway(
  host: string,
  urlPath: string,
  n: number,
  classify: (body: string) => string,
): Promise<Split> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const split: Split = { counts: {}, failures: [] };
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < n) {
      sent++;
      try {
        const r = await get(GATEWAY_PORT, host, urlPath, agent);
        if (r.status !== 200) {
          split.failures.push(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
          continue;
        }
        const who = classify(r.body);
        split.counts[who] = (split.counts[who] ?? 0) + 1;
      } catch (err) {
        split.failures.push(String(err));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
  }
  return split;
}

/** Asserts no failure and `backend`'s share of `n` within TOLERANCE of `expected`; returns the share. */
function assertShare(split: Split, n: number, backend: string, expected: number, label: string): number {
  assert.deepEqual(split.failures.slice(0, 5), [], `${split.failures.length} of ${n} requests failed`);
  const answered = Object.values(split.counts).reduce((a, b) => a + b, 0);
  assert.equal(answered, n, 'every request was answered by one of the backends');
  const share = (split.counts[backend] ?? 0) / n;
  console.log(
    `      (${label}: ${Object.entries(split.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} of ${n}; ${backend} ${(share * 100).toFixed(2)} %, 0 failures)`,
  );
  assert.ok(
    Math.abs(share - expected) <= TOLERANCE,
    `${backend} answered ${(share * 100).toFixed(2)} % of ${n} requests, expected ${expected * 100} % ± ${TOLERANCE * 100} %`,
  );
  return share;
}

interface Backend {
  name: string;
  weight: number;
}

/** An HTTPRoute attached to the local Gateway: `host`, each path prefix, the weighted Services (port 80). */
function httpRoute(name: string, host: string, prefixes: string[], backends: Backend[]): object {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'HTTPRoute',
    metadata: { name },
    spec: {
      parentRefs: [{ name: GATEWAY.name, namespace: GATEWAY.namespace }],
      hostnames: [host],
      rules: [
        {
          matches: prefixes.map((value) => ({ path: { type: 'PathPrefix', value } })),
          backendRefs: backends.map((b) => ({ name: b.name, port: 80, weight: b.weight })),
        },
      ],
    },
  };
}

/** A status condition of a Gateway API object (metav1.Condition). */
interface GatewayCondition {
  type: string;
  status: string;
  reason?: string;
  observedGeneration?: number;
}

/** True when `conditions` hold every one of `types` as True for `generation`. */
function conditionsTrue(
  conditions: GatewayCondition[] | undefined,
  types: string[],
  generation: number,
): boolean {
  return types.every((t) =>
    (conditions ?? []).some(
      (c) => c.type === t && c.status === 'True' && c.observedGeneration === generation,
    ),
  );
}

describe('local Gateway (Gateway API on the ingress controller)', function () {
  let cluster: Cluster;
  let core: k8s.CoreV1Api;
  let discovery: k8s.DiscoveryV1Api;
  let custom: k8s.CustomObjectsApi;
  let ns: string;
  let ingressController: IngressHandle | undefined;
  const servers: http.Server[] = [];
  const tag = randomBytes(3).toString('hex');
  const host = `split-${tag}.fnol.local`;
  const prefix = `/split-${tag}`;

  /** Applies an object in the test namespace (server-side apply, as the operator writes). */
  const apply = (obj: object): Promise<string> =>
    cluster.kubectl(
      ['apply', '--server-side', '--field-manager', 'gateway-test', '-n', ns, '-f', '-'],
      JSON.stringify(obj),
    );

  /** The route's status for the local Gateway once Accepted and ResolvedRefs for its current generation. */
  const routeAccepted = (name: string): Promise<GatewayCondition[]> =>
    waitFor(`HTTPRoute ${name} to be Accepted with resolved references by ${CONTROLLER}`, async () => {
      const { body } = await custom.getNamespacedCustomObject(GROUP, 'v1', ns, 'httproutes', name);
      const route = body as {
        metadata: { generation: number };
        status?: {
          parents?: {
            parentRef: { name: string; namespace?: string };
            controllerName: string;
            conditions?: GatewayCondition[];
          }[];
        };
      };
      const parent = route.status?.parents?.find(
        (p) =>
          p.parentRef.name === GATEWAY.name &&
          p.parentRef.namespace === GATEWAY.namespace &&
          p.controllerName === CONTROLLER,
      );
      return parent &&
        conditionsTrue(parent.conditions, ['Accepted', 'ResolvedRefs'], route.metadata.generation)
        ? parent.conditions
        : undefined;
    });

  /** A real HTTP server answering {"server": name, "path": ...}, behind Service `name` (no selector) and an EndpointSlice. */
  async function hostBackend(name: string): Promise<void> {
    const address = backendAddress();
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ server: name, path: req.url, host: req.headers.host }));
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, resolve);
    });
    const port = (server.address() as AddressInfo).port;
    await core.createNamespacedService(ns, {
      metadata: { name },
      spec: { ports: [{ name: 'http', port: 80, targetPort: port }] },
    });
    await discovery.createNamespacedEndpointSlice(ns, {
      metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true, serving: true } }],
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    });
  }

  const serverOf = (body: string): string => (JSON.parse(body) as { server: string }).server;

  before(async function () {
    cluster = await useCluster(this);
    this.timeout(CLUSTER_START_TIMEOUT_MS + INGRESS_BUILD_TIMEOUT_MS);
    core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    discovery = cluster.kubeConfig.makeApiClient(k8s.DiscoveryV1Api);
    custom = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    ingressController = await useIngress();
    ns = await createTestNamespace('gateway');
    await hostBackend('stable');
    await hostBackend('canary');
  });

  after(async function () {
    this.timeout(60_000);
    for (const s of servers) await new Promise((r) => s.close(r));
    await ingressController?.release();
  });

  it('installs the standard-channel CRDs of the Gateway API release Traefik is built against', async function () {
    const version = gatewayApiVersionOfTraefik();
    const ext = cluster.kubeConfig.makeApiClient(k8s.ApiextensionsV1Api);
    const { body } = await ext.listCustomResourceDefinition();
    const crds = body.items.filter((c) => c.spec.group === GROUP);
    assert.deepEqual(crds.map((c) => c.metadata?.name).sort(), STANDARD_CRDS);
    for (const crd of crds) {
      const a = crd.metadata?.annotations ?? {};
      assert.equal(a[`${GROUP}/bundle-version`], version, `${crd.metadata?.name} bundle version`);
      assert.equal(a[`${GROUP}/channel`], 'standard', `${crd.metadata?.name} channel`);
      assert.ok(
        crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
        `${crd.metadata?.name} is established`,
      );
    }
    const httproutes = crds.find((c) => c.metadata?.name === `httproutes.${GROUP}`);
    assert.equal(httproutes?.spec.versions.find((v) => v.storage)?.name, 'v1');
  });

  it('has its GatewayClass Accepted and the Gateway Accepted and Programmed at 127.0.0.1', async function () {
    const { body: cls } = await custom.getClusterCustomObject(GROUP, 'v1', 'gatewayclasses', GATEWAY_CLASS);
    const gatewayClass = cls as {
      metadata: { generation: number };
      spec: { controllerName: string };
      status?: { conditions?: GatewayCondition[]; supportedFeatures?: { name: string }[] };
    };
    assert.equal(gatewayClass.spec.controllerName, CONTROLLER);
    assert.ok(
      conditionsTrue(gatewayClass.status?.conditions, ['Accepted'], gatewayClass.metadata.generation),
      `GatewayClass ${GATEWAY_CLASS} is Accepted: ${JSON.stringify(gatewayClass.status?.conditions)}`,
    );
    const features = (gatewayClass.status?.supportedFeatures ?? []).map((f) => f.name);
    assert.ok(features.includes('HTTPRoute'), `supported features: ${features.join(', ')}`);

    const { body: gw } = await custom.getNamespacedCustomObject(
      GROUP,
      'v1',
      GATEWAY.namespace,
      'gateways',
      GATEWAY.name,
    );
    const gateway = gw as {
      metadata: { generation: number };
      spec: { gatewayClassName: string; listeners: { name: string; port: number; protocol: string }[] };
      status?: {
        conditions?: GatewayCondition[];
        addresses?: { type: string; value: string }[];
        listeners?: { name: string; conditions?: GatewayCondition[]; supportedKinds?: { kind: string }[] }[];
      };
    };
    assert.equal(gateway.spec.gatewayClassName, GATEWAY_CLASS);
    assert.deepEqual(
      gateway.spec.listeners.map((l) => [l.name, l.protocol, l.port]),
      [['http', 'HTTP', GATEWAY_PORT]],
    );
    assert.ok(
      conditionsTrue(gateway.status?.conditions, ['Accepted', 'Programmed'], gateway.metadata.generation),
      `Gateway ${GATEWAY.namespace}/${GATEWAY.name} is Accepted and Programmed: ${JSON.stringify(gateway.status?.conditions)}`,
    );
    assert.deepEqual(gateway.status?.addresses, [{ type: 'IPAddress', value: '127.0.0.1' }]);
    const listener = gateway.status?.listeners?.find((l) => l.name === 'http');
    assert.ok(
      conditionsTrue(
        listener?.conditions,
        ['Accepted', 'ResolvedRefs', 'Programmed'],
        gateway.metadata.generation,
      ),
      `listener http: ${JSON.stringify(listener?.conditions)}`,
    );
    assert.deepEqual(
      listener?.supportedKinds?.map((k) => k.kind),
      ['HTTPRoute'],
    );
  });

  it(`splits ${REQUESTS} requests 90/10 between the weighted backends of an HTTPRoute, none failing`, async function () {
    this.timeout(180_000);
    await apply(
      httpRoute(
        'split',
        host,
        [prefix],
        [
          { name: 'stable', weight: 90 },
          { name: 'canary', weight: 10 },
        ],
      ),
    );
    await routeAccepted('split');
    const first = await waitFor('the HTTPRoute to be served on the Gateway port', async () => {
      const r = await get(GATEWAY_PORT, host, `${prefix}/score?x=1`);
      return r.status === 200 ? r : undefined;
    });
    const body = JSON.parse(first.body) as { path: string; host: string };
    assert.equal(body.path, `${prefix}/score?x=1`, 'the path and query reach the backend unchanged');
    assert.equal(body.host, host, 'the Host header is passed through');

    const split = await sendThroughGateway(host, `${prefix}/score`, REQUESTS, serverOf);
    assertShare(split, REQUESTS, 'canary', 0.1, 'weights 90/10');
    assert.ok((split.counts.stable ?? 0) > 0);
  });

  it('reports the route Accepted on the Gateway listener, and serves it on the Gateway port only', async function () {
    const conditions = await routeAccepted('split');
    assert.ok(conditions.some((c) => c.type === 'ResolvedRefs' && c.reason === 'ResolvedRefs'));
    const { body } = await custom.getNamespacedCustomObject(
      GROUP,
      'v1',
      GATEWAY.namespace,
      'gateways',
      GATEWAY.name,
    );
    const listeners = (body as { status?: { listeners?: { name: string; attachedRoutes: number }[] } }).status
      ?.listeners;
    assert.ok(
      (listeners?.find((l) => l.name === 'http')?.attachedRoutes ?? 0) >= 1,
      `attached routes: ${JSON.stringify(listeners)}`,
    );
    // The Ingress entry point does not serve HTTPRoutes: the two never compete for a host and path.
    assert.equal((await get(INGRESS_PORT, host, `${prefix}/score`)).status, 404);
    // Nor does the Gateway serve anything outside its routes.
    assert.equal((await get(GATEWAY_PORT, host, `/not-routed-${tag}`)).status, 404);
    assert.equal((await get(GATEWAY_PORT, `unknown-${tag}.example.com`, `${prefix}/score`)).status, 404);
  });

  it('follows a change of the weights: 50/50, then 100/0 sends nothing to the second backend', async function () {
    this.timeout(180_000);
    // Each change also adds a path; once that path answers, the configuration
    // holding the new weights is live (Traefik swaps its whole routing table at once).
    const half = `${prefix}-half`;
    await apply(
      httpRoute(
        'split',
        host,
        [prefix, half],
        [
          { name: 'stable', weight: 50 },
          { name: 'canary', weight: 50 },
        ],
      ),
    );
    await routeAccepted('split');
    await waitFor('the 50/50 weights to be served', async () => {
      const r = await get(GATEWAY_PORT, host, `${half}/score`);
      return r.status === 200 ? true : undefined;
    });
    assertShare(
      await sendThroughGateway(host, `${half}/score`, REQUESTS, serverOf),
      REQUESTS,
      'canary',
      0.5,
      'weights 50/50',
    );

    const none = `${prefix}-none`;
    await apply(
      httpRoute(
        'split',
        host,
        [prefix, half, none],
        [
          { name: 'stable', weight: 100 },
          { name: 'canary', weight: 0 },
        ],
      ),
    );
    await routeAccepted('split');
    await waitFor('the 100/0 weights to be served', async () => {
      const r = await get(GATEWAY_PORT, host, `${none}/score`);
      return r.status === 200 ? true : undefined;
    });
    const split = await sendThroughGateway(host, `${none}/score`, 500, serverOf);
    assert.deepEqual(split.failures.slice(0, 5), []);
    assert.deepEqual(split.counts, { stable: 500 }, 'a backend of weight 0 gets no request');
  });

  describe('with the real node', function () {
    let apps: k8s.AppsV1Api;

    before(async function () {
      // Pending, not passing: this case needs FNOL_REAL_NODE=1 npm run cluster:up.
      if (!(await realNodeReady(core))) this.skip();
      apps = cluster.kubeConfig.makeApiClient(k8s.AppsV1Api);
    });

    it(`splits ${REQUESTS} requests 90/10 between two Deployments of real pods`, async function () {
      this.timeout(300_000);
      for (const track of ['stable', 'canary']) {
        const labels = { app: `echo-${track}-${tag}` };
        await apps.createNamespacedDeployment(ns, echoDeployment(`echo-${track}`, labels));
        await core.createNamespacedService(ns, {
          metadata: { name: `echo-${track}` },
          spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
        });
      }
      for (const track of ['stable', 'canary']) {
        await waitFor(
          `Deployment echo-${track} to have its 2 pods ready`,
          async () => {
            const { body } = await apps.readNamespacedDeployment(`echo-${track}`, ns);
            return body.status?.readyReplicas === 2 ? true : undefined;
          },
          180_000,
        );
      }
      const echoHost = `echo-${tag}.fnol.local`;
      const echoPrefix = `/echo-${tag}`;
      await apply(
        httpRoute(
          'echo',
          echoHost,
          [echoPrefix],
          [
            { name: 'echo-stable', weight: 90 },
            { name: 'echo-canary', weight: 10 },
          ],
        ),
      );
      await routeAccepted('echo');
      // The echo server answers "echo <pod name> <path>"; the pod name starts with its Deployment's.
      const deploymentOf = (body: string): string => {
        const [word, pod, seen] = body.trim().split(' ');
        assert.equal(word, 'echo');
        assert.equal(seen, `${echoPrefix}/score`);
        return pod?.startsWith('echo-canary-')
          ? 'echo-canary'
          : pod?.startsWith('echo-stable-')
            ? 'echo-stable'
            : `? ${pod}`;
      };
      const seen = new Set<string>();
      await waitFor(
        'both Deployments to answer through the Gateway',
        async () => {
          for (let i = 0; i < 20; i++) {
            const r = await get(GATEWAY_PORT, echoHost, `${echoPrefix}/score`);
            if (r.status === 200) seen.add(deploymentOf(r.body));
          }
          return seen.size === 2 ? true : undefined;
        },
        60_000,
      );
      const split = await sendThroughGateway(echoHost, `${echoPrefix}/score`, REQUESTS, deploymentOf);
      assertShare(split, REQUESTS, 'echo-canary', 0.1, 'real pods, weights 90/10');
    });
  });
});

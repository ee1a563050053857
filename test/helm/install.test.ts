/**
 * The Helm chart on the local cluster (docs/helm.md):
 *
 *  1. `helm template` output applies with a server-side dry run on the local
 *     API server (the CRD included), cluster-wide and namespaced; a render the
 *     API server cannot take (a Role in a namespace that does not exist) is
 *     refused, so the dry run does check;
 *  2. on the real node: `helm install` of the operator with the images the
 *     project builds (cluster/operator/images.sh), a FnolModel served by it
 *     (Ready, one record scored through the Ingress matches CatBoost), then
 *     `helm uninstall` leaves no object of the release.
 *
 * Step 2 needs the real node (FNOL_REAL_NODE=1, the default of npm test) and a
 * compiled model (build/model, npm run model:build); without them it is
 * reported pending.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { BlobServiceClient } from '@azure/storage-blob';
import { API_VERSION, CRD_NAME, GROUP, KIND, PLURAL, VERSION } from '@fnol/api';
import { publishModel } from '../../cli/src/publish-model';
import { CLUSTER_START_TIMEOUT_MS, createTestNamespace, useCluster, type Cluster } from '../support/cluster';
import { CHART, HELM_BUILD_TIMEOUT_MS, ROOT, helm, helmPath } from '../support/helm';
import {
  INGRESS_BUILD_TIMEOUT_MS,
  INGRESS_CLASS,
  INGRESS_PORT,
  useIngress,
  type IngressHandle,
} from '../support/ingress';
import { freePort } from '../support/net';
import { REAL_NODE_PLACEMENT, realNodeReady } from '../support/real-node';
import { poll } from '../support/wait';

const MODEL_DIR = path.join(ROOT, 'build', 'model');
const NODE_IP = process.env.FNOL_NODE_IP ?? '10.250.0.1';
/** Building both images on a cold machine. */
const IMAGES_TIMEOUT_MS = 25 * 60 * 1000;

/** `helm template` of the chart piped into `kubectl apply --server-side --dry-run=server`. */
function dryRun(cluster: Cluster, namespace: string, set: string[]): { ok: boolean; output: string } {
  const rendered = helm(['template', 'fnol', CHART, '--namespace', namespace, '--include-crds', ...set]);
  assert.equal(rendered.status, 0, rendered.stderr);
  try {
    const out = execFileSync(
      path.join(cluster.binDir, 'kubectl'),
      [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'apply',
        '--server-side',
        '--force-conflicts',
        '--field-manager=fnol-helm-dry-run',
        '--dry-run=server',
        '-f',
        '-',
      ],
      { input: rendered.stdout, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] },
    );
    return { ok: true, output: out };
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('Helm chart on the local cluster', function () {
  let cluster: Cluster;

  before(async function () {
    this.timeout(CLUSTER_START_TIMEOUT_MS + HELM_BUILD_TIMEOUT_MS);
    cluster = await useCluster(this);
    helmPath();
  });

  it('applies with a server-side dry run, cluster-wide and namespaced, the CRD included', async function () {
    this.timeout(120_000);
    const ns = await createTestNamespace('helm-dry');
    const wide = dryRun(cluster, ns, []);
    assert.ok(wide.ok, wide.output);
    for (const object of [
      `customresourcedefinition.apiextensions.k8s.io/${CRD_NAME}`,
      'clusterrole.rbac.authorization.k8s.io/fnol-operator',
      'deployment.apps/fnol-operator',
      'networkpolicy.networking.k8s.io/fnol-operator',
      'poddisruptionbudget.policy/fnol-operator',
      `validatingadmissionpolicy.admissionregistration.k8s.io/fnolmodel-limits.${GROUP}`,
      'configmap/fnol-admission',
    ]) {
      assert.match(
        wide.output,
        new RegExp(`^${object.replace(/\./g, '\\.')} serverside-applied \\(server dry run\\)$`, 'm'),
      );
    }
    const watched = await createTestNamespace('helm-dry-watched');
    const narrow = dryRun(cluster, ns, ['--set', `rbac.namespaced=true,watchNamespace=${watched}`]);
    assert.ok(narrow.ok, narrow.output);
    assert.match(narrow.output, /^role\.rbac\.authorization\.k8s\.io\/fnol-operator serverside-applied/m);
    assert.doesNotMatch(narrow.output, /clusterrole\.rbac/);
    // The dry run checks against the API server: a Role in a missing namespace is refused.
    const missing = `helm-missing-${randomBytes(3).toString('hex')}`;
    const refused = dryRun(cluster, ns, ['--set', `rbac.namespaced=true,watchNamespace=${missing}`]);
    assert.ok(!refused.ok, 'the dry run accepted a Role in a namespace that does not exist');
    assert.match(refused.output, new RegExp(`namespaces "${missing}" not found`));
  });

  describe('helm install on the real node, a FnolModel served, helm uninstall', function () {
    let core: k8s.CoreV1Api;
    let custom: k8s.CustomObjectsApi;
    let ingressController: IngressHandle | undefined;
    let store: ChildProcess | undefined;
    let storeDir: string | undefined;
    let releaseNs = '';
    let ns = '';
    let installed = false;
    const release = 'fnol';
    const host = `helm-${randomBytes(3).toString('hex')}.fnol.local`;
    const timings: string[] = [];
    const started = Date.now();

    const helmIn = (args: string[]) =>
      helm([...args, '--namespace', releaseNs], { kubeconfig: cluster.kubeconfigPath });

    before(async function () {
      this.timeout(INGRESS_BUILD_TIMEOUT_MS + IMAGES_TIMEOUT_MS + 300_000);
      core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
      custom = cluster.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
      if (!(await realNodeReady(core))) this.skip();
      if (!existsSync(path.join(MODEL_DIR, 'fnol-1.0.0.onnx'))) this.skip();
      // Another install of the operator (kustomize, cluster/operator/up.sh) owns the same cluster-wide names.
      const other = await cluster.kubectl([
        'get',
        'clusterrole',
        'fnol-operator',
        '--ignore-not-found',
        '-o',
        'name',
      ]);
      assert.equal(
        other.trim(),
        '',
        'the operator is installed already (npm run cluster:operator:down removes it)',
      );

      ingressController = await useIngress();
      ns = await createTestNamespace('helm-e2e', { 'pod-security.kubernetes.io/enforce': 'restricted' });
      releaseNs = await createTestNamespace('fnol-helm', {
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
      });

      // The model store (Azurite) on the node's bridge address, with 1.0.0 as the pipeline publishes it.
      const port = await freePort(NODE_IP);
      storeDir = mkdtempSync(path.join(os.tmpdir(), 'fnol-helm-store-'));
      store = spawn(
        path.join(ROOT, 'node_modules/.bin/azurite-blob'),
        [
          '--blobHost',
          NODE_IP,
          '--blobPort',
          String(port),
          '--location',
          storeDir,
          '--skipApiVersionCheck',
        ].concat(['--disableProductStyleUrl', '--disableTelemetry', '--silent']),
        { stdio: 'ignore' },
      );
      const connection = execFileSync('bash', [path.join(ROOT, 'store/connection-string.sh')], {
        encoding: 'utf8',
        env: { ...process.env, FNOL_STORE_HOST: NODE_IP, FNOL_STORE_PORT: String(port) },
      }).trim();
      const service = BlobServiceClient.fromConnectionString(connection, { retryOptions: { maxTries: 1 } });
      await poll(
        'the model store (Azurite) to answer',
        () => service.getProperties().then(() => true),
        60_000,
        200,
      );
      const published = await publishModel({
        version: '1.0.0',
        modelDir: MODEL_DIR,
        container: 'models',
        log: () => {},
        env: { AZURE_STORAGE_CONNECTION_STRING: connection },
      });
      await service.getContainerClient('models').setAccessPolicy('blob');

      let t = Date.now();
      const refs = new Map(
        execFileSync('bash', [path.join(ROOT, 'cluster/operator/images.sh')], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        })
          .trim()
          .split('\n')
          .map((l) => l.split(' ') as [string, string]),
      );
      timings.push(`images ${((Date.now() - t) / 1000).toFixed(1)} s`);
      const image = (name: string) => {
        const ref = refs.get(name);
        assert.ok(ref, `cluster/operator/images.sh gave no ${name} image`);
        const colon = ref.lastIndexOf(':');
        return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
      };

      const values = {
        images: { operator: image('operator'), scorer: image('scorer') },
        watchNamespace: ns,
        model: { allowedHosts: `*.blob.core.windows.net,${NODE_IP}`, localMode: true },
        extraEnv: [
          { name: 'PROGRESS_DEADLINE_SECONDS', value: '60' },
          { name: 'MODEL_STORE_PORTS', value: `443,${port}` },
        ],
        networkPolicy: { extraEgressPorts: [port] },
        ...REAL_NODE_PLACEMENT,
      };
      const valuesFile = path.join(storeDir, 'values.json');
      writeFileSync(valuesFile, JSON.stringify(values));
      t = Date.now();
      const r = helmIn(['install', release, CHART, '-f', valuesFile, '--wait', '--timeout', '4m']);
      installed = r.status === 0 || installed;
      if (r.status !== 0) {
        const pods = await cluster.kubectl(['-n', releaseNs, 'get', 'pods', '-o', 'wide']).catch(String);
        assert.fail(`helm install failed:\n${r.stdout}${r.stderr}\n${pods}`);
      }
      installed = true;
      timings.push(`helm install --wait ${((Date.now() - t) / 1000).toFixed(1)} s`);

      t = Date.now();
      await custom.createNamespacedCustomObject(GROUP, VERSION, ns, PLURAL, {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: 'fnol' },
        spec: {
          model: { version: published.version, uri: published.uri, sha256: published.sha256 },
          replicas: 1,
          resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
          ...REAL_NODE_PLACEMENT,
          ingress: { host, path: '/', className: INGRESS_CLASS },
        },
      });
      await poll(
        'FnolModel fnol to be Ready on 1.0.0 under the Helm-installed operator',
        async () => {
          const fm = (await custom.getNamespacedCustomObject(GROUP, VERSION, ns, PLURAL, 'fnol')).body as {
            metadata: { generation?: number };
            status?: { phase?: string; activeVersion?: string; observedGeneration?: number };
          };
          return fm.status?.phase === 'Ready' &&
            fm.status.activeVersion === '1.0.0' &&
            fm.status.observedGeneration === fm.metadata.generation
            ? true
            : undefined;
        },
        240_000,
        500,
      );
      timings.push(`FnolModel Ready ${((Date.now() - t) / 1000).toFixed(1)} s`);
    });

    after(async function () {
      this.timeout(240_000);
      try {
        if (installed) helmIn(['uninstall', release, '--wait', '--timeout', '2m']);
        if (store && store.exitCode === null && store.signalCode === null) {
          const exited = once(store, 'exit');
          store.kill();
          await exited;
        }
        if (storeDir) rmSync(storeDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      } finally {
        await ingressController?.release();
        console.log(
          `      Helm end to end: ${timings.join(', ')}; ${((Date.now() - started) / 1000).toFixed(1)} s in all`,
        );
      }
    });

    it("serves the FnolModel through the Ingress with CatBoost's prediction", async function () {
      this.timeout(60_000);
      const cases = JSON.parse(
        readFileSync(path.join(MODEL_DIR, 'fnol-1.0.0.parity-cases.json'), 'utf8'),
      ) as {
        features: Record<string, unknown[]>;
        expected: Record<string, number[]>;
      };
      const record = Object.fromEntries(Object.entries(cases.features).map(([k, v]) => [k, v[0]]));
      const want = cases.expected.ultimate_cost![0]!;
      const answer = await poll(
        `POST http://${host}/score through the Ingress`,
        () =>
          new Promise<{ model: { version: string }; predictions: { ultimate_cost: number }[] } | undefined>(
            (resolve) => {
              const body = JSON.stringify({ records: [record] });
              const req = http.request(
                {
                  host: '127.0.0.1',
                  port: INGRESS_PORT,
                  method: 'POST',
                  path: '/score',
                  timeout: 10_000,
                  headers: {
                    host,
                    'content-type': 'application/json',
                    'content-length': Buffer.byteLength(body),
                  },
                },
                (res) => {
                  let text = '';
                  res.setEncoding('utf8');
                  res.on('data', (c: string) => (text += c));
                  res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(text) : undefined));
                },
              );
              req.on('timeout', () => req.destroy(new Error('timeout')));
              req.on('error', () => resolve(undefined));
              req.end(body);
            },
          ),
        30_000,
        500,
      );
      assert.equal(answer.model.version, '1.0.0');
      const got = answer.predictions[0]!.ultimate_cost;
      assert.ok(
        Math.abs(got - want) / Math.max(Math.abs(want), 1e-12) <= 1e-6,
        `scored ${got}, CatBoost ${want}`,
      );
    });

    it('helm uninstall leaves no object of the release; the CRD and the FnolModel stay', async function () {
      this.timeout(180_000);
      const t = Date.now();
      const r = helmIn(['uninstall', release, '--wait', '--timeout', '2m']);
      assert.equal(r.status, 0, r.stderr);
      installed = false;
      timings.push(`helm uninstall --wait ${((Date.now() - t) / 1000).toFixed(1)} s`);
      // The chart's objects carry Helm's labels; the operator pods and ReplicaSets only the
      // Deployment's, so the release namespace is checked for those as a whole. (The scorer
      // objects of a FnolModel named like the release carry its instance label too, but
      // are managed by the operator, not by Helm.)
      const kinds =
        'deployments,serviceaccounts,roles,rolebindings,networkpolicies,poddisruptionbudgets,configmaps,secrets';
      const selector = `app.kubernetes.io/managed-by=Helm,app.kubernetes.io/instance=${release}`;
      let seen = '';
      const left = await poll(
        'no object of the release to be left',
        async () => {
          const namespaced = await cluster.kubectl(['get', kinds, '-A', '-l', selector, '-o', 'name']);
          const wide = await cluster.kubectl([
            'get',
            'clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings',
            '-l',
            selector,
            '-o',
            'name',
          ]);
          const inRelease = await cluster.kubectl(['-n', releaseNs, 'get', 'pods,replicasets', '-o', 'name']);
          seen = `${namespaced}${wide}${inRelease}`.trim();
          return seen === '' ? 'nothing' : undefined;
        },
        120_000,
        1000,
      ).catch((e: unknown) => assert.fail(`${String(e)}; still there:\n${seen}`));
      assert.equal(left, 'nothing');
      // Helm's own release records (Secrets sh.helm.release.v1.*) are gone too.
      assert.equal((await cluster.kubectl(['-n', releaseNs, 'get', 'secrets', '-o', 'name'])).trim(), '');
      // Helm never deletes CRDs: the FnolModel and its scorer Deployment stay.
      await custom.getNamespacedCustomObject(GROUP, VERSION, ns, PLURAL, 'fnol');
    });
  });
});

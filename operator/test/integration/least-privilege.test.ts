/**
 * Least privilege on the real API server.
 *
 * The namespaced install (manifests/ with the component manifests/namespaced/,
 * rendered by the pinned kubectl's kustomize): its Role and RoleBinding in the
 * watched namespace only, applied to a suite-unique operator namespace and
 * watched namespace, then the operator running with a TokenRequest token of its
 * ServiceAccount: it reconciles a FnolModel in the watched namespace to Ready,
 * and the API server refuses it everything outside (other namespaces, cluster
 * scope, Secrets not listed by name).
 *
 * The NetworkPolicies: the operator's (manifests/networkpolicy.yaml) and the
 * scorer's, as the operator computes it from non-default egress settings,
 * pass the API server's validation (server-side dry run, strict field
 * validation). The local bridge CNI does not enforce NetworkPolicy
 * (docs/local-cluster.md), so the objects are what can be tested here.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../../../test/support/repo';
import type { RunningOperator } from '../../src/app';
import { loadConfig } from '../../src/config';
import { KubeClient, KubeError } from '../../src/kube/client';
import { desiredNetworkPolicy } from '../../src/reconcilers/networkpolicy';
import { createTestNamespace, serviceAccountKubeConfig, type Cluster } from '../../../test/support/cluster';
import { fnolModel } from '../fixtures';
import {
  clusterWithCrd,
  condition,
  getModel,
  inProcessOperator,
  modelManifest,
  modelPath,
  ModelServer,
  waitFor,
} from './harness';
import { apiPath, Kinds } from '@fnol/api';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string };
  [k: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const forbidden = (e: unknown): boolean => e instanceof KubeError && e.statusCode === 403;

/** kustomize build of an overlay that adds the namespaced component to manifests/. */
async function renderNamespaced(cluster: Cluster): Promise<Obj[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fnol-namespaced-'));
  const rel = (p: string) => path.relative(dir, path.join(repoRoot, p));
  writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      `resources: [${rel('manifests')}]`,
      `components: [${rel('manifests/namespaced')}]`,
      '',
    ].join('\n'),
  );
  const text = await cluster.kubectl(['kustomize', dir]);
  return parseAllDocuments(text).map((d) => d.toJSON() as Obj);
}

describe('operator integration: namespaced install and NetworkPolicies', function () {
  let cluster: Cluster;
  let admin: KubeClient;

  before(async function () {
    cluster = await clusterWithCrd(this);
    admin = new KubeClient(cluster.kubeConfig);
  });

  describe('the namespaced install (manifests/namespaced/)', function () {
    this.timeout(120_000);
    let rendered: Obj[];
    let opNs: string;
    let watched: string;
    let elsewhere: string;
    let sa: KubeClient;
    let op: RunningOperator | undefined;
    const models = new ModelServer();

    before(async function () {
      rendered = await renderNamespaced(cluster);
      // Suite-unique namespaces stand in for fnol-system and claims, so this
      // ServiceAccount has exactly the namespaced rules and nothing another suite bound.
      opNs = await createTestNamespace('op-nsd');
      watched = await createTestNamespace('op-nsd-watched');
      elsewhere = await createTestNamespace('op-nsd-other');
      const rename = (ns: string | undefined) =>
        ns === 'fnol-system' ? opNs : ns === 'claims' ? watched : ns;
      for (const o of rendered) {
        if (!['ServiceAccount', 'Role', 'RoleBinding'].includes(o.kind)) continue;
        const obj = structuredClone(o);
        obj.metadata.namespace = rename(obj.metadata.namespace);
        for (const s of (obj.subjects ?? []) as { namespace?: string }[]) s.namespace = rename(s.namespace);
        const plural = { ServiceAccount: 'serviceaccounts', Role: 'roles', RoleBinding: 'rolebindings' }[
          obj.kind as 'Role'
        ];
        const base = obj.kind === 'ServiceAccount' ? '/api/v1' : '/apis/rbac.authorization.k8s.io/v1';
        await admin.apply(
          `${base}/namespaces/${obj.metadata.namespace}/${plural}/${obj.metadata.name}`,
          obj,
          'fnol-tests',
        );
      }
      const creds = await serviceAccountKubeConfig(opNs, 'fnol-operator', 3600);
      sa = new KubeClient(creds.kubeConfig);
      await models.start();
      op = await inProcessOperator(creds.kubeConfig, watched, {
        LEADER_ELECTION: 'true',
        LEASE_NAMESPACE: opNs,
        LEASE_NAME: 'fnol-operator',
        POD_NAME: `namespaced-${watched}`,
      });
    });

    after(async () => {
      await op?.stop();
      await models.stop();
    });

    it('has no cluster-wide rights: a Role and RoleBinding in the watched namespace, WATCH_NAMESPACE set to it', function () {
      const kinds = rendered.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
      assert.ok(
        !rendered.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding'),
        kinds.join('\n'),
      );
      const role = rendered.find((o) => o.kind === 'Role' && o.metadata.name === 'fnol-operator');
      const binding = rendered.find((o) => o.kind === 'RoleBinding' && o.metadata.name === 'fnol-operator');
      assert.equal(role?.metadata.namespace, 'claims');
      assert.equal(binding?.metadata.namespace, 'claims', 'the RoleBinding follows the Role');
      const deployment = rendered.find((o) => o.kind === 'Deployment') as unknown as {
        spec: {
          template: { spec: { containers: { name: string; env: { name: string; value?: string }[] }[] } };
        };
      };
      const env = deployment.spec.template.spec.containers.find((c) => c.name === 'operator')!.env;
      assert.equal(
        env.find((e) => e.name === 'WATCH_NAMESPACE')?.value,
        'claims',
        'WATCH_NAMESPACE follows the Role',
      );
      // The namespaced rules are the cluster rules, with Secrets narrowed to named ones.
      const rules = role!.rules as Rule[];
      const cluster = parseAllDocuments(readFileSync(path.join(repoRoot, 'manifests/rbac.yaml'), 'utf8'))
        .map((d) => d.toJSON() as Obj & { rules: Rule[] })
        .find((o) => o.kind === 'ClusterRole')!;
      const key = (r: Rule) => `${r.apiGroups.join()}|${r.resources.join()}|${r.verbs.join()}`;
      assert.deepEqual(rules.map(key).sort(), cluster.rules.map(key).sort());
      const secrets = rules.find((r) => r.resources.includes('secrets'))!;
      assert.deepEqual(secrets.verbs, ['get']);
      assert.deepEqual(secrets.resourceNames, ['fnol-model-sas']);
    });

    it('reconciles a FnolModel in the watched namespace to Ready with only these rights', async function () {
      const m = models.publish('fnol.onnx', 'namespaced install model');
      await admin.create(
        modelPath(watched),
        modelManifest(watched, 'fnol', { version: '1.0.0', ...m }, { replicas: 1 }),
      );
      const ready = await waitFor(
        'Ready',
        async () => {
          const x = await getModel(admin, watched, 'fnol');
          return x?.status?.phase === 'Ready' && x;
        },
        60_000,
      );
      assert.equal(condition(ready, 'Ready')?.status, 'True');
      assert.ok(await admin.get(apiPath(Kinds.NetworkPolicy, { namespace: watched, name: 'fnol' })));
      const lease = await admin.get<{ spec: { holderIdentity: string } }>(
        apiPath(Kinds.Lease, { namespace: opNs, name: 'fnol-operator' }),
      );
      assert.equal(lease?.spec.holderIdentity, `namespaced-${watched}`);
      assert.equal((await op!.metrics.reconcileErrors.get()).values[0]?.value ?? 0, 0);
      // The caches (list + watch of every kind, ReplicaSets included) work with these rights.
      assert.ok(op!.operator.synced, 'every cache has its first list');
      const refused = (await op!.metrics.apiRequests.get()).values.filter((v) => v.labels.code === '403');
      assert.deepEqual(
        refused.map((v) => `${v.labels.verb} ${v.labels.resource}`),
        [],
        'no request of the operator was refused',
      );
    });

    it('is refused everything outside the watched namespace', async function () {
      await assert.rejects(sa.list(apiPath(Kinds.FnolModel)), forbidden, 'list FnolModels cluster-wide');
      await assert.rejects(sa.list(modelPath(elsewhere)), forbidden, 'list FnolModels in another namespace');
      await assert.rejects(
        sa.create(apiPath(Kinds.Deployment, { namespace: elsewhere }), {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'x' },
          spec: {
            selector: { matchLabels: { a: 'b' } },
            template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
          },
        }),
        forbidden,
        'create a Deployment in another namespace',
      );
      await assert.rejects(
        sa.get(apiPath(Kinds.Secret, { namespace: elsewhere, name: 'fnol-model-sas' })),
        forbidden,
      );
      await assert.rejects(sa.list(apiPath(Kinds.Deployment)), forbidden, 'list Deployments cluster-wide');
      await assert.rejects(sa.list(apiPath(Kinds.ReplicaSet)), forbidden, 'list ReplicaSets cluster-wide');
    });

    it('reads only the Secrets named in the Role, and cannot list any', async function () {
      for (const name of ['fnol-model-sas', 'database-password']) {
        await admin.create(apiPath(Kinds.Secret, { namespace: watched }), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name },
          data: { value: Buffer.from(`not-a-real-${name}`).toString('base64') },
        });
      }
      assert.ok(await sa.get(apiPath(Kinds.Secret, { namespace: watched, name: 'fnol-model-sas' })));
      await assert.rejects(
        sa.get(apiPath(Kinds.Secret, { namespace: watched, name: 'database-password' })),
        forbidden,
      );
      await assert.rejects(sa.list(apiPath(Kinds.Secret, { namespace: watched })), forbidden);
    });
  });

  describe('NetworkPolicies pass the API server validation (server-side dry run)', function () {
    let ns: string;
    const dryRunApply = (p: string, obj: Obj) =>
      admin.request<Obj>('PATCH', p, {
        body: obj,
        contentType: 'application/apply-patch+yaml',
        query: { dryRun: 'All', fieldValidation: 'Strict', fieldManager: 'fnol-tests', force: true },
      });

    before(async function () {
      ns = await createTestNamespace('netpol');
    });

    it("the operator's own: egress to DNS, TCP 443/6443 and the scorer pods' 8080 only, ingress to the health port from monitoring", async function () {
      const np = parse(
        readFileSync(path.join(repoRoot, 'manifests/networkpolicy.yaml'), 'utf8'),
      ) as V1NetworkPolicy & Obj;
      np.metadata.namespace = ns;
      const out = (await dryRunApply(
        apiPath(Kinds.NetworkPolicy, { namespace: ns, name: np.metadata.name }),
        np,
      )) as unknown as V1NetworkPolicy;
      assert.deepEqual(out.spec?.policyTypes, ['Ingress', 'Egress']);
      const ports = out.spec?.egress?.flatMap((r) => r.ports?.map((p) => `${p.protocol}/${p.port}`) ?? []);
      assert.deepEqual(ports, ['UDP/53', 'TCP/53', 'TCP/443', 'TCP/6443', 'TCP/8080']);
      // 8080 only to scorer pods (GET /shadow), in any namespace.
      assert.deepEqual(out.spec?.egress?.[2]?.to, [
        { namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'fnol-scorer' } } },
      ]);
      assert.deepEqual(out.spec?.ingress?.[0]?.ports, [{ protocol: 'TCP', port: 8081 }]);
    });

    it("the scorer's, from non-default egress settings (IPv4 and IPv6 CIDRs, two ports, other DNS labels)", async function () {
      const cfg = loadConfig({
        MODEL_STORE_CIDRS: '10.20.0.4/32,fd00:10::/64',
        MODEL_STORE_PORTS: '443,10000',
        DNS_NAMESPACE: 'kube-system',
        DNS_POD_LABELS: 'k8s-app=kube-dns,tier=node',
      });
      const fm = fnolModel();
      fm.metadata.namespace = ns;
      const np = desiredNetworkPolicy(fm, cfg) as unknown as Obj;
      const out = (await dryRunApply(
        apiPath(Kinds.NetworkPolicy, { namespace: ns, name: np.metadata.name }),
        np,
      )) as unknown as V1NetworkPolicy;
      assert.deepEqual(out.spec?.egress?.[1]?.to, [
        { ipBlock: { cidr: '10.20.0.4/32' } },
        { ipBlock: { cidr: 'fd00:10::/64' } },
      ]);
      assert.deepEqual(
        out.spec?.egress?.[1]?.ports?.map((p) => p.port),
        [443, 10000],
      );
      // Control: the server does validate these objects (a bad port is refused).
      const bad = structuredClone(np) as unknown as V1NetworkPolicy;
      bad.spec!.egress![1]!.ports![0]!.port = 70000;
      await assert.rejects(
        dryRunApply(apiPath(Kinds.NetworkPolicy, { namespace: ns, name: 'fnol' }), bad as unknown as Obj),
        (e: unknown) => e instanceof KubeError && e.statusCode === 422 && /ports\[0\]\.port/.test(e.message),
      );
    });
  });
});

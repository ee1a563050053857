/**
 * The install manifests against the real API server: a server-side dry run in a
 * namespace enforcing the restricted Pod Security Standard, and the operator
 * running with exactly its ServiceAccount's RBAC (a TokenRequest token, not the
 * admin's certificate).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../../test/support/repo';
import type { RunningOperator } from '../../src/app';
import { KubeClient, KubeError } from '../../src/kube/client';
import { desiredDeployment } from '../../src/reconcilers/deployment';
import { createTestNamespace, serviceAccountKubeConfig, type Cluster } from '../../../test/support/cluster';
import { fnolModel, testConfig } from '../fixtures';
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
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  Deployment: 'deployments',
  Pod: 'pods',
  NetworkPolicy: 'networkpolicies',
  ConfigMap: 'configmaps',
  ValidatingAdmissionPolicy: 'validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings',
};

function collectionPath(o: Obj): string {
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
  const plural = PLURALS[o.kind];
  if (!plural) throw new Error(`no plural for ${o.kind}`);
  return o.metadata.namespace ? `${base}/namespaces/${o.metadata.namespace}/${plural}` : `${base}/${plural}`;
}

function manifests(): Obj[] {
  const kustomization = readFileSync(path.join(repoRoot, 'manifests/kustomization.yaml'), 'utf8');
  const files = [...kustomization.matchAll(/^ {2}- ([\w./-]+\.yaml)$/gm)].map((m) => m[1]!);
  assert.ok(files.length >= 4, 'kustomization lists the manifests');
  return files.flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(repoRoot, 'manifests', f), 'utf8')).map(
      (d) => d.toJSON() as Obj,
    ),
  );
}

function podFrom(
  template: NonNullable<V1Deployment['spec']>['template'],
  name: string,
  namespace: string,
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: template.metadata?.labels },
    spec: template.spec,
  };
}

describe('operator integration: install manifests, Pod Security and least-privilege RBAC', function () {
  let cluster: Cluster;
  let admin: KubeClient;
  let restricted: string;

  before(async function () {
    cluster = await clusterWithCrd(this);
    admin = new KubeClient(cluster.kubeConfig);
    restricted = await createTestNamespace('op-psa', {
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'latest',
    });
  });

  it('the operator namespace enforces the restricted Pod Security Standard', () => {
    const nsObj = manifests().find((o) => o.kind === 'Namespace');
    assert.equal(nsObj?.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it('every manifest passes a server-side dry run, pods in a restricted namespace included', async () => {
    for (const o of manifests()) {
      const obj = structuredClone(o);
      if (obj.metadata.namespace) obj.metadata.namespace = restricted;
      // Server-side apply, dry run: works whether the object exists or not.
      await admin.request('PATCH', `${collectionPath(obj)}/${obj.metadata.name}`, {
        body: obj,
        contentType: 'application/apply-patch+yaml',
        query: { dryRun: 'All', fieldValidation: 'Strict', fieldManager: 'fnol-tests', force: true },
      });
      // The pod dry run below needs its ServiceAccount to exist.
      if (obj.kind === 'ServiceAccount') {
        await admin.apply(`${collectionPath(obj)}/${obj.metadata.name}`, obj, 'fnol-tests');
      }
      if (obj.kind === 'Deployment') {
        // PodSecurity is enforced on pods: dry-run the pod the Deployment would create.
        const tpl = (obj as unknown as V1Deployment).spec!.template;
        await admin.request('POST', apiPath(Kinds.Pod, { namespace: restricted }), {
          body: podFrom(tpl, 'operator-pod', restricted),
          query: { dryRun: 'All' },
        });
      }
    }
  });

  it('the scorer pods the operator creates pass the restricted Pod Security Standard', async () => {
    const fm = fnolModel({ auth: { apiKeySecretRef: { name: 'keys', key: 'keys' } } });
    fm.metadata.namespace = restricted;
    const tpl = desiredDeployment(fm, testConfig).spec!.template;
    await admin.request('POST', apiPath(Kinds.Pod, { namespace: restricted }), {
      body: podFrom(tpl, 'scorer-pod', restricted),
      query: { dryRun: 'All' },
    });
  });

  it('the namespace really enforces: a root pod is refused (control)', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'root-pod', namespace: restricted },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    };
    await assert.rejects(
      admin.request('POST', apiPath(Kinds.Pod, { namespace: restricted }), {
        body: pod,
        query: { dryRun: 'All' },
      }),
      (e: unknown) => e instanceof KubeError && /violates PodSecurity "restricted/.test(e.message),
    );
  });

  describe('the operator with exactly its ServiceAccount RBAC', function () {
    let op: RunningOperator;
    let ns: string;
    let sa: KubeClient;
    const models = new ModelServer();

    before(async function () {
      // Install the real namespace, ServiceAccount and RBAC (not the operator Deployment).
      for (const f of ['namespace.yaml', 'serviceaccount.yaml', 'rbac.yaml']) {
        await cluster.kubectl([
          'apply',
          '--server-side',
          '--field-manager=fnol-tests',
          '-f',
          path.join(repoRoot, 'manifests', f),
        ]);
      }
      const creds = await serviceAccountKubeConfig('fnol-system', 'fnol-operator', 3600);
      sa = new KubeClient(creds.kubeConfig);
      ns = await createTestNamespace('op-rbac');
      await models.start();
      op = await inProcessOperator(creds.kubeConfig, ns, {
        LEADER_ELECTION: 'true',
        LEASE_NAMESPACE: 'fnol-system',
        LEASE_NAME: `fnol-operator-${ns}`,
        POD_NAME: `rbac-test-${ns}`,
      });
    });

    after(async () => {
      await op?.stop();
      await models.stop();
    });

    it('is a ServiceAccount token, not the admin', async () => {
      const review = await sa.create<{ status: { userInfo: { username: string } } }>(
        '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      );
      assert.equal(review.status.userInfo.username, 'system:serviceaccount:fnol-system:fnol-operator');
    });

    it('cannot list Secrets or touch objects outside its rules', async () => {
      await assert.rejects(
        sa.list(apiPath(Kinds.Secret, { namespace: ns })),
        (e: unknown) => e instanceof KubeError && e.statusCode === 403,
      );
      await assert.rejects(
        sa.list(apiPath(Kinds.Pod, { namespace: ns })),
        (e: unknown) => e instanceof KubeError && e.statusCode === 403,
      );
      await assert.rejects(
        sa.request('PUT', modelPath(ns, 'x'), {
          body: modelManifest(ns, 'x', { version: '1', uri: 'https://a.b/c', sha256: 'a'.repeat(64) }),
        }),
        (e: unknown) => e instanceof KubeError && e.statusCode === 403,
      );
    });

    it('serves a FnolModel with a credentials Secret: leads, verifies, applies, writes status and events', async () => {
      const m = models.publish('fnol.onnx', 'rbac test model');
      await admin.create(apiPath(Kinds.Secret, { namespace: ns }), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'sas' },
        data: { sasToken: Buffer.from('sv=1&sig=x').toString('base64') },
      });
      // https is required with credentials; the digest check then needs the
      // Secret, so serve without credentials here and check the Secret read separately.
      await admin.create(
        modelPath(ns),
        modelManifest(ns, 'fnol', { version: '1.0.0', ...m }, { replicas: 2 }),
      );
      const ready = await waitFor(
        'Ready',
        async () => {
          const x = await getModel(admin, ns, 'fnol');
          return x?.status?.phase === 'Ready' && x;
        },
        60_000,
      );
      assert.equal(condition(ready, 'Ready')?.status, 'True');
      const lease = await admin.get<{ spec: { holderIdentity: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/fnol-system/leases/fnol-operator-${ns}`,
      );
      assert.equal(lease?.spec.holderIdentity, `rbac-test-${ns}`);
      // The Event follows the status write that records the transition.
      await waitFor(
        'a Ready Event on fnol',
        async () => {
          const events = await admin.list<{ reason: string; involvedObject: { name: string } }>(
            apiPath(Kinds.Event, { namespace: ns }),
          );
          return events.items.some((e) => e.reason === 'Ready' && e.involvedObject.name === 'fnol');
        },
        10_000,
      );
      // The one Secret read the operator needs.
      assert.ok(await sa.get(apiPath(Kinds.Secret, { namespace: ns, name: 'sas' })));
      assert.equal((await op.metrics.reconcileErrors.get()).values[0]?.value ?? 0, 0);
    });
  });
});

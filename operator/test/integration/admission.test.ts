/**
 * The admission guard (manifests/admission/) on the real API server: the
 * shipped ValidatingAdmissionPolicy, bound to this suite's namespace with its
 * own parameter ConfigMap, refuses each FnolModel that breaks a rule with a
 * message naming the field, admits a compliant one, guards the scale
 * subresource, lets an unchanged field through after a limit is tightened, and
 * fails closed on bad parameters. The policy and binding get suite-unique names
 * so an installed operator's guard (cluster/operator) does not interfere.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../../test/support/repo';
import { KubeClient, KubeError } from '../../src/kube/client';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import { clusterWithCrd, modelManifest, modelPath, waitFor } from './harness';
import { GROUP } from '@fnol/api';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  status?: {
    observedGeneration?: number;
    typeChecking?: { expressionWarnings?: { fieldRef: string; warning: string }[] };
  };
}

const ADMISSION = '/apis/admissionregistration.k8s.io/v1';
const PARAMS = 'fnol-admission';
const MODEL = {
  version: '1.0.0',
  uri: 'https://models.example.test/fnol/1.0.0/fnol-1.0.0.onnx',
  sha256: 'a'.repeat(64),
};
const DIGEST = `@sha256:${'c'.repeat(64)}`;

/** The limits this suite sets (the shipped defaults are checked at the end). */
const TEST_PARAMS: Record<string, string> = {
  allowedImagePrefixes: 'registry.example.com/fnol/, mirror.example.com/approved/',
  requireImageDigest: 'true',
  forbiddenTolerationKeys: 'node-role.kubernetes.io/control-plane,CriticalAddonsOnly',
  forbiddenNodeSelectors: 'kubernetes.io/hostname,kubernetes.azure.com/mode=system',
  maxReplicas: '4',
  maxCpu: '2',
  maxMemory: '4Gi',
};

/** Within every limit above (cpu given as an integer: the CRD allows int-or-string). */
const CANDIDATE = {
  version: '1.1.0',
  uri: 'https://models.example.test/fnol-1.1.0.onnx',
  sha256: 'b'.repeat(64),
};

const COMPLIANT: Record<string, unknown> = {
  image: `registry.example.com/fnol/scorer${DIGEST}`,
  replicas: 4,
  resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: 2, memory: '4Gi' } },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'fnol', effect: 'NoSchedule' }],
  nodeSelector: { agentpool: 'fnol', 'kubernetes.azure.com/mode': 'user' },
};

function load(file: string): Obj {
  return parse(readFileSync(path.join(repoRoot, 'manifests/admission', file), 'utf8')) as Obj;
}

describe('admission guard: the FnolModel ValidatingAdmissionPolicy (manifests/admission/)', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let admin: KubeClient;
  let ns: string;
  let policyName: string;
  const where = (): RegExp => new RegExp(`ConfigMap ${ns}/${PARAMS}`);

  const apply = (p: string, obj: Obj): Promise<Obj> =>
    admin.request<Obj>('PATCH', p, {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: 'fnol-tests', force: true, fieldValidation: 'Strict' },
    });
  const setParams = (data: Record<string, string>): Promise<Obj> => {
    const cm = load('params.yaml');
    cm.metadata.namespace = ns;
    cm.data = data;
    return apply(`/api/v1/namespaces/${ns}/configmaps/${PARAMS}`, cm);
  };
  /** Creates a FnolModel (dry run unless `real`); resolves to the refusal message, or undefined if admitted. */
  const attempt = async (
    spec: Record<string, unknown>,
    name = 'fm',
    real = false,
  ): Promise<string | undefined> => {
    try {
      await admin.request('POST', modelPath(ns), {
        body: modelManifest(ns, name, MODEL, spec),
        query: real ? {} : { dryRun: 'All' },
      });
      return undefined;
    } catch (err) {
      if (err instanceof KubeError && err.statusCode === 403) return err.message;
      throw err;
    }
  };
  /** Policy, binding and parameter changes reach the admission plugin through an informer. */
  const until = (what: string, spec: Record<string, unknown>, refused: RegExp | false) =>
    waitFor(
      what,
      async () => {
        const msg = await attempt(spec);
        return refused === false ? msg === undefined : msg !== undefined && refused.test(msg);
      },
      30_000,
      200,
    );

  before(async function () {
    cluster = await clusterWithCrd(this);
    admin = new KubeClient(cluster.kubeConfig);
    ns = await createTestNamespace('admission');
    policyName = `fnolmodel-limits-${ns}.${GROUP}`;
    const policy = load('policy.yaml');
    policy.metadata.name = policyName;
    await apply(`${ADMISSION}/validatingadmissionpolicies/${policyName}`, policy);
    await setParams(TEST_PARAMS);
    const binding = load('binding.yaml');
    assert.equal(binding.spec?.policyName, `fnolmodel-limits.${GROUP}`, 'the binding names the policy');
    binding.metadata.name = policyName;
    binding.spec = {
      ...binding.spec,
      policyName,
      paramRef: { ...(binding.spec!.paramRef as object), namespace: ns },
      matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
    };
    await apply(`${ADMISSION}/validatingadmissionpolicybindings/${policyName}`, binding);
    await until('the policy to be enforced', { ...COMPLIANT, replicas: 50 }, /spec\.replicas 50/);
  });

  after(async function () {
    await admin?.delete(`${ADMISSION}/validatingadmissionpolicybindings/${policyName}`);
    await admin?.delete(`${ADMISSION}/validatingadmissionpolicies/${policyName}`);
  });

  it('type-checks against the FnolModel schema without warnings', async function () {
    const policy = await waitFor('the policy status', async () => {
      const p = await admin.get<Obj>(`${ADMISSION}/validatingadmissionpolicies/${policyName}`);
      return p?.status?.observedGeneration === p?.metadata.generation && p;
    });
    assert.deepEqual(policy.status?.typeChecking?.expressionWarnings ?? [], []);
  });

  it('admits a FnolModel within every limit', async function () {
    assert.equal(await attempt(COMPLIANT, 'ok', true), undefined);
    assert.equal(
      await attempt({ ...COMPLIANT, image: `mirror.example.com/approved/scorer${DIGEST}` }),
      undefined,
    );
    // A candidate within the maximum, or sized by the operator.
    assert.equal(await attempt({ ...COMPLIANT, canary: { model: CANDIDATE, replicas: 4 } }), undefined);
    assert.equal(
      await attempt({ ...COMPLIANT, canary: { model: CANDIDATE, mirrorPercent: 100 } }),
      undefined,
    );
    // Without spec.image the operator's scorer image runs: nothing to check.
    const { image: _image, ...noImage } = COMPLIANT;
    assert.equal(await attempt(noImage), undefined);
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    [
      'an image from another registry',
      { image: `evil.example.com/fnol/scorer${DIGEST}` },
      /spec\.image evil\.example\.com\/fnol\/scorer@sha256:c{64} is not from an allowed registry \(allowed: registry\.example\.com\/fnol\/, mirror\.example\.com\/approved\/;/,
    ],
    [
      'a look-alike registry host',
      { image: `registry.example.com.evil.io/fnol/scorer${DIGEST}` },
      /spec\.image registry\.example\.com\.evil\.io\/.* is not from an allowed registry/,
    ],
    [
      'an image by tag instead of digest',
      { image: 'registry.example.com/fnol/scorer:1.0.0' },
      /spec\.image registry\.example\.com\/fnol\/scorer:1\.0\.0 must be pinned by digest/,
    ],
    [
      'a toleration of every taint (operator Exists, no key)',
      { tolerations: [{ operator: 'Exists' }] },
      /spec\.tolerations: a toleration without a key \(operator Exists\) tolerates every taint/,
    ],
    [
      'a toleration of a forbidden taint',
      {
        tolerations: [
          ...(COMPLIANT.tolerations as object[]),
          { key: 'CriticalAddonsOnly', operator: 'Exists' },
        ],
      },
      /spec\.tolerations: the taint CriticalAddonsOnly may not be tolerated/,
    ],
    [
      'a node selector pinning one node',
      { nodeSelector: { 'kubernetes.io/hostname': 'aks-system-0' } },
      /spec\.nodeSelector may not select kubernetes\.io\/hostname/,
    ],
    [
      'a node selector for the system node pool',
      { nodeSelector: { 'kubernetes.azure.com/mode': 'system' } },
      /spec\.nodeSelector may not select kubernetes\.azure\.com\/mode=system/,
    ],
    ['more replicas than allowed', { replicas: 5 }, /spec\.replicas 5 exceeds the maximum 4/],
    [
      'more candidate replicas than allowed',
      { canary: { model: CANDIDATE, mirrorPercent: 100, replicas: 5 } },
      /spec\.canary\.replicas 5 exceeds the maximum 4/,
    ],
    [
      'an autoscaler maximum above the limit',
      { autoscaling: { minReplicas: 2, maxReplicas: 8 } },
      /spec\.autoscaling\.maxReplicas 8 \(minReplicas 2\) exceeds the maximum 4/,
    ],
    [
      'a CPU limit above the maximum',
      { resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2500m', memory: '4Gi' } } },
      /spec\.resources\.limits\.cpu 2500m exceeds the maximum per scorer pod \(cpu 2, memory 4Gi;/,
    ],
    [
      'a memory request above the maximum',
      { resources: { requests: { cpu: '1', memory: '6Gi' }, limits: { cpu: 1, memory: '6Gi' } } },
      /spec\.resources\.requests\.memory 6Gi, spec\.resources\.limits\.memory 6Gi exceeds the maximum/,
    ],
    [
      'a GPU',
      { resources: { limits: { cpu: 1, memory: '1Gi', 'nvidia.com/gpu': 1 } } },
      /spec\.resources may name only cpu and memory; remove spec\.resources\.limits\.nvidia\.com\/gpu/,
    ],
  ];
  for (const [what, change, message] of refusals) {
    it(`refuses ${what}, naming the field`, async function () {
      const msg = await attempt({ ...COMPLIANT, ...change });
      assert.ok(msg, `${what} was admitted`);
      assert.match(msg, message);
      assert.match(msg, new RegExp(`ValidatingAdmissionPolicy '${policyName}'`));
      if (!/GPU/.test(what) && !/without a key/.test(msg)) assert.match(msg, where());
    });
  }

  it('guards the scale subresource (kubectl scale, an HPA aimed at the FnolModel)', async function () {
    await assert.rejects(
      cluster.kubectl(['-n', ns, 'scale', 'fnolmodel', 'ok', '--replicas', '9']),
      /spec\.replicas \(scale subresource\) 9 exceeds the maximum 4/,
    );
    await cluster.kubectl(['-n', ns, 'scale', 'fnolmodel', 'ok', '--replicas', '3']);
    const fm = await admin.get<Obj>(modelPath(ns, 'ok'));
    assert.equal(fm?.spec?.replicas, 3);
  });

  it('a tightened limit does not block changing other fields (promotion), only the field itself', async function () {
    await setParams({ ...TEST_PARAMS, maxReplicas: '2' });
    await until(
      'maxReplicas 2 to be in force',
      { ...COMPLIANT, replicas: 3 },
      /spec\.replicas 3 exceeds the maximum 2/,
    );
    // ok has 3 replicas now; a new spec.model (what fnolctl promote and rollback change) still goes through.
    const patch = (body: unknown) =>
      admin.request('PATCH', modelPath(ns, 'ok'), { body, contentType: 'application/merge-patch+json' });
    await patch({ spec: { model: { ...MODEL, version: '1.0.1' } } });
    await assert.rejects(
      patch({ spec: { replicas: 4 } }),
      (e: unknown) => e instanceof KubeError && /spec\.replicas 4 exceeds the maximum 2/.test(e.message),
    );
    await patch({ spec: { replicas: 2 } });
    await setParams(TEST_PARAMS);
    await until('maxReplicas 4 to be back', { ...COMPLIANT, replicas: 4 }, false);
  });

  it('fails closed on bad or missing parameters, naming the key to fix', async function () {
    await setParams({ ...TEST_PARAMS, maxCpu: 'lots', allowedImagePrefixes: 'registry.example.com' });
    const msg = await until('the bad parameters to be in force', COMPLIANT, /maxCpu must be a quantity/);
    assert.ok(msg);
    const text = (await attempt(COMPLIANT))!;
    assert.match(text, /the FnolModel admission parameters \(ConfigMap .*\/fnol-admission\) are invalid/);
    assert.match(text, /allowedImagePrefixes: each prefix must end with \//);
    const { maxReplicas: _drop, ...missing } = TEST_PARAMS;
    await setParams(missing);
    await until('the missing key to be in force', COMPLIANT, /maxReplicas must be a whole number/);
    await setParams(TEST_PARAMS);
    await until('good parameters again', COMPLIANT, false);
  });

  it('the shipped parameters: no spec.image, no catch-all toleration, the demo FnolModel admitted', async function () {
    await setParams(load('params.yaml').data!);
    const demo = {
      replicas: 2,
      resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
      nodeSelector: { 'fnol.local/node-kind': 'real' },
      tolerations: [{ key: 'fnol.local/real-node', operator: 'Exists', effect: 'NoSchedule' }],
    };
    await until(
      'the shipped parameters to be in force',
      COMPLIANT,
      /spec\.image may not be set on this cluster/,
    );
    assert.equal(await attempt(demo), undefined);
    assert.match((await attempt({ ...demo, tolerations: [{ operator: 'Exists' }] }))!, /without a key/);
    assert.match(
      (await attempt({ ...demo, nodeSelector: { 'node-role.kubernetes.io/control-plane': '' } }))!,
      /spec\.nodeSelector may not select node-role\.kubernetes\.io\/control-plane/,
    );
    assert.match((await attempt({ ...demo, replicas: 11 }))!, /spec\.replicas 11 exceeds the maximum 10/);
  });
});

/**
 * The operator against the real API server: the example FnolModel from
 * manifests/examples served end to end, model changes, a refused model, drift
 * repair and garbage collection.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type {
  V1Deployment,
  V1Ingress,
  V1NetworkPolicy,
  V1PodDisruptionBudget,
  V1Service,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { repoRoot } from '../../../test/support/repo';
import { apiPath, type FnolModel, KIND, Kinds, Labels } from '@fnol/api';
import type { RunningOperator } from '../../src/app';
import type { KubeClient } from '../../src/kube/client';
import { OWNED_KINDS, resourcePath } from '../../src/reconcilers/index';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import {
  adminClient,
  clusterWithCrd,
  condition,
  getModel,
  inProcessOperator,
  modelPath,
  ModelServer,
  untilGarbageCollectorWatchesCrd,
  waitFor,
} from './harness';

const NAME = 'fnol';

function writeVerbs(op: RunningOperator): Promise<number> {
  return op.metrics.apiRequests
    .get()
    .then((m) =>
      m.values
        .filter((v) => !['GET', 'LIST', 'WATCH'].includes(String(v.labels.verb)))
        .reduce((s, v) => s + v.value, 0),
    );
}

describe('operator integration: FnolModel lifecycle on a real API server', function () {
  let cluster: Cluster;
  let client: KubeClient;
  let ns: string;
  let op: RunningOperator;
  const models = new ModelServer(true);
  let v1: { uri: string; sha256: string };
  let v2: { uri: string; sha256: string };

  const get = <T>(kind: keyof typeof OWNED_KINDS) => client.get<T>(resourcePath(OWNED_KINDS[kind], ns, NAME));
  const fm = () => getModel(client, ns, NAME);
  const patchSpec = (spec: Record<string, unknown>) => client.mergePatch(modelPath(ns, NAME), { spec });

  before(async function () {
    cluster = await clusterWithCrd(this);
    client = adminClient(cluster);
    ns = await createTestNamespace('op-life');
    await models.start();
    v1 = models.publish('fnol-1.0.0.onnx', 'model bytes of version 1.0.0');
    v2 = models.publish('fnol-1.1.0.onnx', 'model bytes of version 1.1.0');
    for (const [name, key, value, labels] of [
      // Marked for model downloads: the operator refuses any other Secret there.
      [
        'fnol-model-sas',
        'sasToken',
        'sv=2024-01-01&sig=not-a-real-signature',
        { [Labels.modelCredentials]: 'true' },
      ],
      ['fnol-api-keys', 'keys', 'key-one\nkey-two\n', {}],
    ] as const) {
      await client.create(apiPath(Kinds.Secret, { namespace: ns }), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, labels },
        data: { [key]: Buffer.from(value).toString('base64') },
      });
    }
    op = await inProcessOperator(cluster.kubeConfig, ns, {
      RESYNC_PERIOD_SECONDS: '5',
      MODEL_CA_FILE: models.caFile,
    });
  });

  after(async () => {
    await op?.stop();
    await models.stop();
  });

  it('creates the Deployment, Service, Ingress, PDB and NetworkPolicy of the example FnolModel', async () => {
    const example = parse(
      readFileSync(path.join(repoRoot, 'manifests/examples/fnolmodel-1.0.0.yaml'), 'utf8'),
    ) as FnolModel;
    example.metadata.namespace = ns;
    example.spec.model.uri = v1.uri;
    example.spec.model.sha256 = v1.sha256;
    await client.create(modelPath(ns), example);

    const dep = await waitFor('the Deployment', () => get<V1Deployment>('Deployment'));
    const c = dep.spec?.template.spec?.containers[0];
    const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.MODEL_URI, v1.uri);
    assert.equal(env.MODEL_SHA256, v1.sha256);
    assert.equal(env.MODEL_VERSION, '1.0.0');
    assert.equal(env.MODEL_SAS_TOKEN_FILE, '/var/run/secrets/fnol/model/sasToken');
    assert.equal(env.API_KEYS_FILE, '/var/run/secrets/fnol/api-key/keys');
    assert.equal(c?.image, 'fnol-scorer:test');
    assert.equal(dep.spec?.replicas, 2);
    assert.equal(dep.spec?.strategy?.rollingUpdate?.maxUnavailable, 0);
    assert.equal(dep.metadata?.ownerReferences?.[0]?.kind, KIND);
    assert.ok(
      dep.metadata?.managedFields?.some((f) => f.manager === 'fnol-operator' && f.operation === 'Apply'),
    );

    const svc = await waitFor('the Service', () => get<V1Service>('Service'));
    assert.equal(svc.spec?.ports?.[0]?.port, 80);
    const ing = await waitFor('the Ingress', () => get<V1Ingress>('Ingress'));
    assert.equal(ing.spec?.rules?.[0]?.host, 'fnol.claims.example.com');
    assert.equal(ing.spec?.ingressClassName, 'nginx');
    assert.equal(ing.spec?.tls?.[0]?.secretName, 'fnol-claims-tls');
    const pdb = await waitFor('the PDB', () => get<V1PodDisruptionBudget>('PodDisruptionBudget'));
    assert.equal(pdb.spec?.maxUnavailable, 1);
    const np = await waitFor('the NetworkPolicy', () => get<V1NetworkPolicy>('NetworkPolicy'));
    assert.deepEqual(np.spec?.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(
      np.spec?.egress?.[1]?.ports?.map((p) => p.port),
      [443],
      'egress only to the model store port',
    );
    assert.equal(await get('HorizontalPodAutoscaler'), undefined, 'no HPA without spec.autoscaling');
    // The digest check fetched the model with the SAS token from the Secret.
    assert.equal(models.lastQuery, '?sv=2024-01-01&sig=not-a-real-signature');
  });

  it('reports Ready with activeVersion 1.0.0 and the URL once the pods are Ready', async () => {
    const ready = await waitFor('phase Ready', async () => {
      const m = await fm();
      return m?.status?.phase === 'Ready' && m;
    });
    assert.equal(ready.status?.activeVersion, '1.0.0');
    assert.equal(ready.status?.readyReplicas, 2);
    assert.equal(ready.status?.url, 'https://fnol.claims.example.com/');
    assert.equal(ready.status?.observedGeneration, ready.metadata.generation);
    assert.equal(condition(ready, 'Ready')?.status, 'True');
    assert.equal(condition(ready, 'Degraded')?.status, 'False');
    const table = await cluster.kubectl(['get', 'fm', '-n', ns]);
    assert.match(table, /NAME\s+VERSION\s+ACTIVE\s+CANARY\s+TRAFFIC\s+PHASE\s+READY\s+URL\s+AGE/);
    // No canary: its columns are empty.
    assert.match(table, /fnol\s+1\.0\.0\s+1\.0\.0\s+Ready\s+2\s+https:\/\/fnol\.claims\.example\.com\//);
  });

  it('makes no write request at rest, resyncs included', async () => {
    const before = await writeVerbs(op);
    const reconcilesBefore = (await op.metrics.reconciles.get()).values.reduce((s, v) => s + v.value, 0);
    await new Promise((r) => setTimeout(r, 6_000)); // longer than the 5 s resync
    const reconcilesAfter = (await op.metrics.reconciles.get()).values.reduce((s, v) => s + v.value, 0);
    assert.ok(reconcilesAfter > reconcilesBefore, 'a resync should have reconciled the model');
    assert.equal(await writeVerbs(op), before);
  });

  it('adds an HPA for spec.autoscaling and removes it when autoscaling is dropped', async () => {
    await patchSpec({ autoscaling: { minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 60 } });
    const hpa = await waitFor('the HPA', () => get<V2HorizontalPodAutoscaler>('HorizontalPodAutoscaler'));
    assert.equal(hpa.spec?.maxReplicas, 5);
    assert.equal(hpa.spec?.metrics?.[0]?.resource?.target.averageUtilization, 60);
    await patchSpec({ autoscaling: null });
    await waitFor('the HPA to be deleted', async () => (await get('HorizontalPodAutoscaler')) === undefined);
    await waitFor('Ready again', async () => (await fm())?.status?.phase === 'Ready');
  });

  it('rolls out a new model: Progressing, then Ready with the new activeVersion; Ready stays True and activeVersion on 1.0.0 meanwhile', async () => {
    const phases: string[] = [];
    await patchSpec({ model: { version: '1.1.0', uri: v2.uri, sha256: v2.sha256 } });
    const done = await waitFor(
      'Ready on 1.1.0',
      async () => {
        const m = await fm();
        const p = `${m?.status?.phase}/${m?.status?.activeVersion ?? '-'}/Ready=${condition(m, 'Ready')?.status}`;
        if (phases[phases.length - 1] !== p) phases.push(p);
        return m?.status?.phase === 'Ready' && m.status.activeVersion === '1.1.0' && m;
      },
      60_000,
      20,
    );
    assert.ok(
      phases.some((p) => p.startsWith('Progressing/')),
      `phases seen: ${phases.join(' -> ')}`,
    );
    // The old version's pods serve until the new ones are ready (maxUnavailable 0).
    assert.ok(
      phases.every((p) => p.endsWith('/Ready=True')),
      `Ready went False during a routine rollout: ${phases.join(' -> ')}`,
    );
    assert.ok(
      phases.every((p) => /\/1\.[01]\.0\//.test(p)),
      `activeVersion went blank: ${phases.join(' -> ')}`,
    );
    assert.ok(
      phases.some((p) => p.startsWith('Progressing/1.0.0/')),
      `activeVersion should stay 1.0.0 while rolling: ${phases.join(' -> ')}`,
    );
    assert.equal(done.status?.observedGeneration, done.metadata.generation);
    const dep = await get<V1Deployment>('Deployment');
    assert.equal(dep?.spec?.template.metadata?.labels?.[Labels.modelVersion], '1.1.0');
  });

  it('refuses a model whose sha256 is wrong: Degraded with the reason, 1.1.0 keeps serving', async () => {
    const bad = models.publish('fnol-1.2.0.onnx', 'bytes that do not match the declared digest');
    const before = await get<V1Deployment>('Deployment');
    await patchSpec({ model: { version: '1.2.0', uri: bad.uri, sha256: 'e'.repeat(64) } });
    const degraded = await waitFor('Degraded', async () => {
      const m = await fm();
      return m?.status?.phase === 'Degraded' && m;
    });
    const d = condition(degraded, 'Degraded');
    assert.equal(d?.reason, 'ModelDigestMismatch');
    assert.match(d?.message ?? '', new RegExp(`has sha256 ${bad.sha256}, spec.model.sha256 is e{64}`));
    assert.equal(degraded.status?.activeVersion, '1.1.0');
    assert.equal(condition(degraded, 'Ready')?.reason, 'PreviousVersionServing');
    const after = await get<V1Deployment>('Deployment');
    assert.equal(
      after?.metadata?.generation,
      before?.metadata?.generation,
      'the serving Deployment must not change',
    );
    const describe = await cluster.kubectl(['describe', 'fm', NAME, '-n', ns]);
    assert.match(describe, /ModelDigestMismatch/);
    assert.match(describe, /Warning\s+ModelDigestMismatch/);
  });

  it('reports an unreachable model as ModelUnreachable, and recovers when the spec is fixed', async () => {
    const missing = models.publish('placeholder', 'x').uri.replace('placeholder', 'missing.onnx');
    await patchSpec({ model: { version: '1.2.0', uri: missing, sha256: 'e'.repeat(64) } });
    const m = await waitFor('ModelUnreachable', async () => {
      const x = await fm();
      return condition(x, 'Degraded')?.reason === 'ModelUnreachable' && x;
    });
    // The class of the answer only: a FnolModel's writer learns nothing else from the host.
    assert.match(condition(m, 'Degraded')?.message ?? '', /^model fetch failed: HTTP 4xx;/);
    assert.equal(m.status?.activeVersion, '1.1.0');
    await patchSpec({ model: { version: '1.0.0', uri: v1.uri, sha256: v1.sha256 } });
    await waitFor(
      'Ready on 1.0.0',
      async () => {
        const x = await fm();
        return x?.status?.phase === 'Ready' && x.status.activeVersion === '1.0.0';
      },
      60_000,
    );
  });

  it('repairs drift within 5 s: an edited Deployment image and a deleted Service', async () => {
    const depPath = resourcePath(OWNED_KINDS.Deployment, ns, NAME);
    const dep = await client.get<V1Deployment>(depPath);
    await client.request('PATCH', depPath, {
      body: [
        { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'evil.example/scorer:1' },
      ],
      contentType: 'application/json-patch+json',
    });
    const svc = await client.get<V1Service>(resourcePath(OWNED_KINDS.Service, ns, NAME));
    await client.delete(resourcePath(OWNED_KINDS.Service, ns, NAME));
    const t0 = Date.now();
    await waitFor(
      'the image restored',
      async () =>
        (await client.get<V1Deployment>(depPath))?.spec?.template.spec?.containers[0]?.image ===
        'fnol-scorer:test',
      5_000,
      50,
    );
    const restored = await waitFor(
      'the Service recreated',
      async () => {
        const s = await client.get<V1Service>(resourcePath(OWNED_KINDS.Service, ns, NAME));
        return s && s.metadata?.uid !== svc?.metadata?.uid && s;
      },
      5_000,
      50,
    );
    assert.ok(Date.now() - t0 < 5_000);
    assert.equal(restored.spec?.ports?.[0]?.port, 80);
    assert.ok(dep);
  });

  it('deletes every owned object with the FnolModel (garbage collection)', async () => {
    for (const kind of [
      'Deployment',
      'Service',
      'Ingress',
      'PodDisruptionBudget',
      'NetworkPolicy',
    ] as const) {
      assert.ok(await get(kind), `${kind} exists before the FnolModel is deleted`);
    }
    await untilGarbageCollectorWatchesCrd(client);
    await client.delete(modelPath(ns, NAME));
    for (const kind of Object.keys(OWNED_KINDS) as Array<keyof typeof OWNED_KINDS>) {
      await waitFor(
        `${kind} to be garbage collected`,
        async () => (await get(kind)) === undefined,
        30_000,
        200,
      );
    }
    const rs = await client.list(apiPath(Kinds.ReplicaSet, { namespace: ns }));
    await waitFor(
      'ReplicaSets gone',
      async () => (await client.list(apiPath(Kinds.ReplicaSet, { namespace: ns }))).items.length === 0,
      30_000,
      200,
    );
    assert.ok(rs);
  });
});

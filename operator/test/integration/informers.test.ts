/**
 * The manager's caches against the real API server: label-selected list+watch
 * (an object without the operator's labels never enters a cache), re-watching
 * when the server ends a watch, relisting after 410 Gone, and a reconcile at
 * steady state that makes no read request (counted by the operator's own
 * fnol_operator_api_requests_total).
 */
import { strict as assert } from 'node:assert';
import type { KubernetesObject, V1Service } from '@kubernetes/client-node';
import pino from 'pino';
import { apiPath, Kinds, Labels, type FnolModel } from '@fnol/api';
import type { RunningOperator } from '../../src/app';
import type { KubeClient } from '../../src/kube/client';
import { Informer, type InformerEventType } from '../../src/manager/informers';
import { OWNED_SELECTOR } from '../../src/manager/manager';
import { OWNED_KINDS, resourcePath } from '../../src/reconcilers/index';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import { adminClient, clusterWithCrd, inProcessOperator, modelManifest, modelPath, waitFor } from './harness';

const log = pino({ level: process.env.FNOL_TEST_OPERATOR_LOG ?? 'silent' });
const SERVICE = { ...Kinds.Service, kind: 'Service' };

function service(ns: string, name: string, labels: Record<string, string>): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, labels },
    spec: { ports: [{ port: 80 }], selector: { app: name } },
  };
}

const OURS = { 'app.kubernetes.io/managed-by': 'fnol-operator', [Labels.model]: 'm' };

/** Sum of the operator's API requests by verb (and resource, when given). */
async function requests(op: RunningOperator, verb: string, resource?: string): Promise<number> {
  const m = await op.metrics.apiRequests.get();
  return m.values
    .filter((v) => v.labels.verb === verb && (resource === undefined || v.labels.resource === resource))
    .reduce((s, v) => s + v.value, 0);
}

async function reconciles(op: RunningOperator): Promise<number> {
  const m = await op.metrics.reconciles.get();
  return m.values.reduce((s, v) => s + v.value, 0);
}

describe('operator integration: informer caches on a real API server', function () {
  let cluster: Cluster;
  let client: KubeClient;
  let ns: string;
  const informers: Informer[] = [];

  before(async function () {
    cluster = await clusterWithCrd(this);
    client = adminClient(cluster);
    ns = await createTestNamespace('op-cache');
  });

  after(() => {
    for (const i of informers) i.stop();
    client?.close();
  });

  function informer(watchTimeoutSeconds?: number): Informer {
    const i = new Informer(client, {
      kind: SERVICE,
      namespace: ns,
      labelSelector: OWNED_SELECTOR,
      log,
      ...(watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds } : {}),
    });
    informers.push(i);
    return i;
  }

  it('caches only objects with the operator labels, and follows label changes', async () => {
    await client.create(apiPath(Kinds.Service, { namespace: ns }), service(ns, 'ours', OURS));
    await client.create(apiPath(Kinds.Service, { namespace: ns }), service(ns, 'theirs', { app: 'theirs' }));
    const inf = informer();
    const events: string[] = [];
    inf.onEvent((type: InformerEventType, obj: KubernetesObject) =>
      events.push(`${type} ${obj.metadata?.name}`),
    );
    await inf.start();
    assert.deepEqual(inf.keys(), [`${ns}/ours`]);
    assert.equal(inf.get(ns, 'theirs'), undefined);
    assert.equal(inf.get(ns, 'ours')?.metadata?.managedFields, undefined, 'managedFields are not kept');

    // Another unlabelled object: never delivered.
    await client.create(apiPath(Kinds.Service, { namespace: ns }), service(ns, 'other', { app: 'x' }));
    // The unlabelled object gets the labels: it enters the cache.
    await client.mergePatch(apiPath(Kinds.Service, { namespace: ns, name: 'theirs' }), {
      metadata: { labels: OURS },
    });
    await waitFor('the relabelled Service in the cache', async () => !!inf.get(ns, 'theirs'), 10_000);
    // Labels removed: it leaves the cache.
    await client.mergePatch(apiPath(Kinds.Service, { namespace: ns, name: 'theirs' }), {
      metadata: { labels: { 'app.kubernetes.io/managed-by': null } },
    });
    await waitFor(
      'the Service without labels gone from the cache',
      async () => !inf.get(ns, 'theirs'),
      10_000,
    );
    assert.equal(inf.get(ns, 'other'), undefined);
    assert.ok(!events.some((e) => e.endsWith(' other')), events.join(', '));
    assert.equal(inf.lists, 1);
  });

  it('watches again when the server ends a watch, without listing again', async () => {
    const inf = informer(1);
    await inf.start();
    // Longer than several server-side watch timeouts.
    await new Promise((r) => setTimeout(r, 3500));
    await client.create(apiPath(Kinds.Service, { namespace: ns }), service(ns, 'late', OURS));
    await waitFor('a Service created after three watch timeouts', async () => !!inf.get(ns, 'late'), 10_000);
    assert.equal(inf.lists, 1, 'an ended watch resumes from the last version; no relist');
  });

  it('resumes from an old version and converges on what it missed, deletions included', async () => {
    // The 410 Gone → relist path itself is driven in the unit test
    // (operator/test/unit/manager/informers.test.ts): this API server, on an
    // etcd not yet compacted, may serve an old version instead of answering 410.
    const inf = informer();
    const deleted: string[] = [];
    inf.onEvent((type, obj) => type === 'DELETED' && deleted.push(obj.metadata?.name ?? ''));
    await inf.start();
    assert.ok(inf.get(ns, 'ours'));
    inf.stop();
    // Changes while it does not watch.
    await client.delete(apiPath(Kinds.Service, { namespace: ns, name: 'ours' }));
    await client.create(apiPath(Kinds.Service, { namespace: ns }), service(ns, 'missed', OURS));
    inf.resumeFrom('1');
    await waitFor(
      'the cache to converge',
      async () => !inf.get(ns, 'ours') && !!inf.get(ns, 'missed'),
      15_000,
    );
    assert.ok(deleted.includes('ours'), `DELETED events: ${deleted.join(', ')}`);
  });

  describe('the operator', () => {
    let op: RunningOperator;
    const NAME = 'cached';
    // No credentials Secret (whose metadata is read on each reconcile, see ADR 0009), no download.
    const MODEL = { version: '1.0.0', uri: 'http://127.0.0.1:9/fnol.onnx', sha256: 'a'.repeat(64) };

    before(async () => {
      op = await inProcessOperator(cluster.kubeConfig, ns, {
        RESYNC_PERIOD_SECONDS: '3600',
        VERIFY_MODEL_DIGEST: 'false',
      });
    });

    after(async () => {
      await op?.stop();
    });

    it('makes no read request in a reconcile at steady state', async () => {
      const m = modelManifest(ns, NAME, MODEL);
      await client.create(modelPath(ns), m);
      await waitFor(
        'the Deployment and a status',
        async () =>
          !!(await client.get(resourcePath(OWNED_KINDS.Deployment, ns, NAME))) &&
          !!(await client.get<FnolModel>(modelPath(ns, NAME)))?.status?.phase,
        30_000,
      );
      // Let the events of the first writes settle.
      await waitFor('an idle queue', async () => op.operator.queue.depth === 0, 10_000);
      await new Promise((r) => setTimeout(r, 1500));
      const gets = await requests(op, 'GET');
      const lists = await requests(op, 'LIST');
      const before = await reconciles(op);
      const n = op.operator.manager.resync.now();
      assert.ok(n >= 1);
      await waitFor('the resync reconciles', async () => (await reconciles(op)) >= before + n, 10_000);
      await waitFor('an idle queue', async () => op.operator.queue.depth === 0, 10_000);
      assert.equal((await requests(op, 'GET')) - gets, 0, 'GET requests at steady state');
      assert.equal((await requests(op, 'LIST')) - lists, 0, 'LIST requests at steady state');
    });

    it('never takes over an object of the same name without its labels (not in the cache)', async () => {
      await client.create(apiPath(Kinds.Service, { namespace: ns }), service(ns, 'squatted', { app: 'x' }));
      const m = modelManifest(ns, 'squatted', MODEL);
      await client.create(modelPath(ns), m);
      const fm = await waitFor(
        'status ResourceConflict',
        async () => {
          const x = await client.get<FnolModel>(modelPath(ns, 'squatted'));
          return x?.status?.conditions?.some((c) => c.reason === 'ResourceConflict') && x;
        },
        30_000,
      );
      assert.ok(fm);
      const svc = await client.get<V1Service>(apiPath(Kinds.Service, { namespace: ns, name: 'squatted' }));
      assert.equal(svc?.metadata?.ownerReferences, undefined, 'the foreign Service is left alone');
      assert.deepEqual(svc?.metadata?.labels, { app: 'x' });
    });
  });
});

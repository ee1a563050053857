/**
 * The operator as real processes: two replicas elect one leader on a Lease; the
 * standby takes over when the leader is killed in the middle of a rollout, and a
 * freshly started process converges what a killed one left half done.
 */
import { strict as assert } from 'node:assert';
import type { V1Deployment } from '@kubernetes/client-node';
import type { KubeClient } from '../../src/kube/client';
import { OWNED_KINDS, resourcePath } from '../../src/reconcilers/index';
import { createTestNamespace, type Cluster } from '../../../test/support/cluster';
import {
  adminClient,
  ChildOperator,
  childOperator,
  clusterWithCrd,
  getModel,
  modelManifest,
  modelPath,
  ModelServer,
  waitFor,
} from './harness';
import { apiPath, Kinds, Labels } from '@fnol/api';

interface Lease {
  spec?: { holderIdentity?: string; leaseTransitions?: number };
}

describe('operator integration: leader election, failover and restart mid-rollout', function () {
  let cluster: Cluster;
  let client: KubeClient;
  let ns: string;
  const models = new ModelServer();
  const procs = new Map<string, ChildOperator>();

  const start = (id: string) => {
    const p = childOperator({
      KUBECONFIG: cluster.kubeconfigPath,
      POD_NAME: id,
      LEASE_NAMESPACE: ns,
      WATCH_NAMESPACE: ns,
      FNOL_SCORER_IMAGE: 'fnol-scorer:test',
      LOG_LEVEL: 'info',
    });
    procs.set(id, p);
    return p;
  };
  const holder = async () =>
    (await client.get<Lease>(apiPath(Kinds.Lease, { namespace: ns, name: 'fnol-operator' })))?.spec
      ?.holderIdentity;
  const servedVersion = async () =>
    (await client.get<V1Deployment>(resourcePath(OWNED_KINDS.Deployment, ns, 'fnol')))?.spec?.template
      .metadata?.labels?.[Labels.modelVersion];
  const readyOn = (version: string, timeoutMs = 60_000) =>
    waitFor(
      `Ready on ${version}`,
      async () => {
        const m = await getModel(client, ns, 'fnol');
        return (
          m?.status?.phase === 'Ready' &&
          m.status.activeVersion === version &&
          m.status.observedGeneration === m.metadata.generation &&
          m
        );
      },
      timeoutMs,
      100,
    );
  const dump = () => {
    for (const [id, p] of procs) console.log(`--- ${id}\n${p.logs.slice(-30).join('\n')}`);
  };

  before(async function () {
    cluster = await clusterWithCrd(this);
    client = adminClient(cluster);
    ns = await createTestNamespace('op-ha');
    await models.start();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') dump();
  });

  after(async () => {
    for (const p of procs.values()) await p.kill('SIGKILL');
    await models.stop();
  });

  it('two replicas: exactly one leads and reconciles', async () => {
    start('op-a');
    start('op-b');
    const leader = await waitFor('a leader', holder, 30_000, 200);
    assert.ok(['op-a', 'op-b'].includes(leader));
    const m = models.publish('v1.onnx', 'failover model v1');
    await client.create(modelPath(ns), modelManifest(ns, 'fnol', { version: '1.0.0', ...m }));
    await readyOn('1.0.0');
    const standby = leader === 'op-a' ? 'op-b' : 'op-a';
    assert.ok(procs.get(leader)!.logs.some((l) => l.includes('"became leader"')));
    assert.ok(!procs.get(standby)!.logs.some((l) => l.includes('"became leader"')));
    assert.ok(
      !procs.get(standby)!.logs.some((l) => l.includes('"created"')),
      'the standby must not reconcile',
    );
  });

  it('the leader killed mid-rollout: the standby takes over in under 30 s and finishes the rollout', async () => {
    const leader = (await holder())!;
    const standby = leader === 'op-a' ? 'op-b' : 'op-a';
    const m = models.publish('v2.onnx', 'failover model v2');
    await client.mergePatch(modelPath(ns, 'fnol'), { spec: { model: { version: '2.0.0', ...m } } });
    // Kill as soon as the new version reaches the Deployment, before status says Ready.
    await waitFor('the Deployment on 2.0.0', async () => (await servedVersion()) === '2.0.0', 30_000, 10);
    const killedAt = Date.now();
    await procs.get(leader)!.kill('SIGKILL');
    const newLeader = await waitFor(
      'a new leader',
      async () => {
        const h = await holder();
        return h === standby && h;
      },
      40_000,
      200,
    );
    const failoverMs = Date.now() - killedAt;
    console.log(`      failover after SIGKILL of the leader: ${(failoverMs / 1000).toFixed(1)} s`);
    assert.equal(newLeader, standby);
    assert.ok(failoverMs < 30_000, `failover took ${failoverMs} ms`);
    await readyOn('2.0.0');
  });

  it('a restarted operator converges a rollout its killed predecessor left half done', async () => {
    const leader = (await holder())!;
    const m = models.publish('v3.onnx', 'failover model v3');
    await client.mergePatch(modelPath(ns, 'fnol'), { spec: { model: { version: '3.0.0', ...m } } });
    await waitFor('the Deployment on 3.0.0', async () => (await servedVersion()) === '3.0.0', 30_000, 10);
    await procs.get(leader)!.kill('SIGKILL');
    const before = await getModel(client, ns, 'fnol');
    assert.notEqual(
      before?.status?.activeVersion === '3.0.0' && before.status.phase === 'Ready',
      true,
      'killed before status caught up',
    );
    start('op-c');
    await waitFor('op-c to lead', async () => (await holder()) === 'op-c', 40_000, 200);
    await readyOn('3.0.0');
  });

  it('a graceful stop hands the lease over at once', async () => {
    start('op-d');
    await new Promise((r) => setTimeout(r, 3_000)); // op-d is a campaigning standby
    const t0 = Date.now();
    await procs.get('op-c')!.kill('SIGTERM');
    assert.equal(procs.get('op-c')!.proc.exitCode, 0, 'SIGTERM ends the process cleanly');
    await waitFor('op-d to lead', async () => (await holder()) === 'op-d', 15_000, 100);
    const ms = Date.now() - t0;
    console.log(`      lease handed over after SIGTERM: ${(ms / 1000).toFixed(1)} s`);
    assert.ok(ms < 5_000, `hand-over took ${ms} ms`);
  });
});

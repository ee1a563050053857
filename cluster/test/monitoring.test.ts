/**
 * The local Prometheus (cluster/monitoring/, npm run monitoring:up): started
 * against the local cluster, it loads the rule groups of
 * manifests/monitoring/rules/ and discovers the scorer pods the operator
 * creates (its Deployment, from operator/src/reconcilers/deployment.ts) by
 * their prometheus.io/* annotations, with the labels the rules use. The pod
 * here runs on a simulated node, so its scrape finds nothing to answer; the
 * end-to-end suite (test/e2e/serving.test.ts) checks that real scorer pods on
 * the real node are scraped and their series stored. Prometheus is stopped at
 * the end (npm run monitoring:down).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { desiredDeployment } from '../../operator/src/reconcilers/deployment';
import { fnolModel, testConfig } from '../../operator/test/fixtures';
import {
  CLUSTER_START_TIMEOUT_MS,
  createTestNamespace,
  useCluster,
  type Cluster,
} from '../../test/support/cluster';
import {
  PROMETHEUS_PID_FILE,
  activeTargets,
  prometheusApi,
  type Target,
} from '../../test/support/prometheus';
import { runScript } from '../../test/support/scripts';
import { poll } from '../../test/support/wait';

const recordedPid = (): number | undefined =>
  existsSync(PROMETHEUS_PID_FILE)
    ? Number(readFileSync(PROMETHEUS_PID_FILE, 'utf8').split(' ')[0])
    : undefined;
const alive = (pid: number) => existsSync(`/proc/${pid}`);

describe('local Prometheus (npm run monitoring:up)', function () {
  let cluster: Cluster;
  let ns: string;

  before(async function () {
    this.timeout(CLUSTER_START_TIMEOUT_MS);
    cluster = await useCluster(this);
    await runScript('cluster/monitoring/up.sh', [], 'the Prometheus log in .cluster/logs/prometheus.log');
    ns = await createTestNamespace('monitoring');
  });

  after(async function () {
    this.timeout(60_000);
    const pid = recordedPid();
    await runScript('cluster/monitoring/down.sh');
    if (pid !== undefined) assert.ok(!alive(pid), `Prometheus (pid ${pid}) still runs after monitoring:down`);
  });

  it('loads the rule groups of manifests/monitoring/rules/ and evaluates them', async function () {
    this.timeout(60_000);
    const groups = await poll(
      'every FNOL rule group evaluated once',
      async () => {
        const d = await prometheusApi<{
          groups: Array<{ name: string; lastEvaluation: string; rules: Array<{ health: string }> }>;
        }>('/api/v1/rules');
        const evaluated = d.groups.every((g) => !g.lastEvaluation.startsWith('0001'));
        return d.groups.length > 0 && evaluated ? d.groups : undefined;
      },
      45_000,
      1000,
    );
    const names = groups.map((g) => g.name).sort();
    assert.deepEqual(names, [
      'fnol-drift.alerts',
      'fnol-operator.alerts',
      'fnol-payload-log.alerts',
      'fnol-scorer.alerts',
      'fnol-scorer.recording',
    ]);
    for (const g of groups) {
      for (const r of g.rules) assert.equal(r.health, 'ok', `a rule of ${g.name} failed to evaluate`);
    }
  });

  it('a second monitoring:up reloads the running Prometheus instead of starting another', async function () {
    this.timeout(60_000);
    const before = recordedPid();
    assert.ok(before !== undefined && alive(before), 'no running Prometheus recorded');
    await runScript('cluster/monitoring/up.sh');
    assert.equal(recordedPid(), before);
  });

  describe("a scorer pod the operator's Deployment creates", () => {
    let podIp: string;
    let target: Target;

    before(async function () {
      this.timeout(120_000);
      const fm = fnolModel({}, 'fnol');
      fm.metadata.namespace = ns;
      const dep = desiredDeployment(fm, testConfig);
      // No FnolModel owns it here: without the owner reference the garbage collector keeps it.
      delete dep.metadata!.ownerReferences;
      dep.spec!.replicas = 1;
      // kubectl sends the object as the operator does (JSON as is: the typed
      // client of this version drops fields it does not know, such as preStop.sleep).
      await cluster.kubectl(['create', '-f', '-'], JSON.stringify(dep));
      const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
      podIp = await poll(
        'the scorer pod has an IP',
        async () => (await core.listNamespacedPod(ns)).body.items.find((p) => p.status?.podIP)?.status?.podIP,
        90_000,
        500,
      );
      target = await poll(
        'Prometheus discovers the scorer pod',
        async () => (await activeTargets('fnol-scorer', ns))[0],
        60_000,
        1000,
      );
    });

    it('is a target of job fnol-scorer at its annotated port and path, labelled with namespace, pod and fnolmodel', async function () {
      this.timeout(60_000);
      assert.equal(target.scrapeUrl, `http://${podIp}:8080/metrics`);
      assert.equal(target.labels.fnolmodel, 'fnol');
      assert.match(target.labels.pod ?? '', /^fnol-/);
      // Prometheus scrapes it (on a simulated node nothing answers: health down).
      const scraped = await poll(
        'a scrape of the scorer pod',
        async () => (await activeTargets('fnol-scorer', ns)).find((t) => !t.lastScrape.startsWith('0001')),
        45_000,
        1000,
      );
      assert.ok(['up', 'down'].includes(scraped.health), `health ${scraped.health}`);
    });
  });
});

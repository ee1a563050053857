/**
 * The local Prometheus (cluster/monitoring/, npm run monitoring:up): started
 * against the local cluster, it loads the rule groups of
 * manifests/monitoring/rules/ and discovers the scorer pods the operator
 * creates (its Deployment, from operator/src/reconcilers/deployment.ts) by
 * their prometheus.io/* annotations, with the labels the rules use. With the
 * real node running and a scorer image in its containerd (left there by
 * npm run cluster:operator or the end-to-end suite), the pod runs that image
 * on the real node and its target is scraped (up); otherwise that case is
 * reported pending. Prometheus is stopped at the end (npm run monitoring:down).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { desiredDeployment } from '../../operator/src/reconcilers/deployment';
import { fnolModel, testConfig } from '../../operator/test/fixtures';
import {
  CLUSTER_START_TIMEOUT_MS,
  createTestNamespace,
  useCluster,
  type Cluster,
} from '../../test/support/cluster';
import { REAL_NODE_PLACEMENT, realNodeReady } from '../../test/support/real-node';
import { runScript } from '../../test/support/scripts';
import { poll } from '../../test/support/wait';

const ROOT = path.resolve(__dirname, '..', '..');
const PORT = Number(process.env.FNOL_PROMETHEUS_PORT ?? 19090);
const API = `http://127.0.0.1:${PORT}`;
const PID_FILE = path.join(
  process.env.FNOL_CLUSTER_DIR ?? path.join(ROOT, '.cluster'),
  'pids',
  'prometheus.pid',
);

interface Target {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrape: string;
}

async function api<T>(p: string): Promise<T> {
  const res = await fetch(`${API}${p}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${p}: ${body.error ?? res.status}`);
  return body.data;
}

const recordedPid = (): number | undefined =>
  existsSync(PID_FILE) ? Number(readFileSync(PID_FILE, 'utf8').split(' ')[0]) : undefined;
const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** A scorer image the real node's containerd holds (fnol.local/scorer:<tag>), if any. */
function scorerImageOnNode(): string | undefined {
  const r = spawnSync(
    'bash',
    [
      '-c',
      `source "${ROOT}/cluster/node/node-lib.sh" && ctr_k8s images ls -q 2>/dev/null | grep '^fnol.local/scorer:'`,
    ],
    { encoding: 'utf8' },
  );
  return r.status === 0 ? r.stdout.split('\n')[0]?.trim() || undefined : undefined;
}

describe('local Prometheus (npm run monitoring:up)', function () {
  let cluster: Cluster;
  let ns: string;
  let image: string | undefined;

  before(async function () {
    this.timeout(CLUSTER_START_TIMEOUT_MS);
    cluster = await useCluster(this);
    await runScript('cluster/monitoring/up.sh', [], 'the Prometheus log in .cluster/logs/prometheus.log');
    ns = await createTestNamespace('monitoring');
    const core = cluster.kubeConfig.makeApiClient(k8s.CoreV1Api);
    if (await realNodeReady(core)) image = scorerImageOnNode();
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
        const d = await api<{
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
      if (image) {
        const pod = dep.spec!.template.spec!;
        Object.assign(pod, REAL_NODE_PLACEMENT);
        for (const c of pod.containers) {
          c.image = image;
          c.imagePullPolicy = 'Never';
        }
      }
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
        async () =>
          (await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active')).activeTargets.find(
            (t) => t.labels.job === 'fnol-scorer' && t.labels.namespace === ns,
          ),
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
        async () =>
          (await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active')).activeTargets.find(
            (t) =>
              t.labels.job === 'fnol-scorer' && t.labels.namespace === ns && !t.lastScrape.startsWith('0001'),
          ),
        45_000,
        1000,
      );
      assert.ok(['up', 'down'].includes(scraped.health), `health ${scraped.health}`);
    });

    it('is scraped: its target is up and its scorer series are stored (real node with a scorer image)', async function () {
      if (!image) this.skip(); // pods on simulated nodes run no container
      this.timeout(90_000);
      await poll(
        "the scorer pod's target up",
        async () => {
          const t = (
            await api<{ activeTargets: Target[] }>('/api/v1/targets?state=active')
          ).activeTargets.find((x) => x.labels.job === 'fnol-scorer' && x.labels.namespace === ns);
          if (t?.health !== 'up') throw new Error(`health ${t?.health}: ${t?.lastError}`);
          return t;
        },
        75_000,
        1000,
      );
      const q = await api<{ result: Array<{ metric: Record<string, string> }> }>(
        `/api/v1/query?query=${encodeURIComponent(`scorer_ready{namespace="${ns}"}`)}`,
      );
      assert.equal(q.result.length, 1, 'scorer_ready of the pod is not stored');
      assert.equal(q.result[0]!.metric.fnolmodel, 'fnol');
    });
  });
});

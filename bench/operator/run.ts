/**
 * Operator benchmark on the local cluster (npm run bench:operator):
 *
 *   0. Baseline, same run, before the operator starts: the same N Deployments,
 *      Services and Ingresses (from the operator's own desired-state functions)
 *      applied directly, in a namespace of their own, until every Deployment
 *      is available; the namespace is then deleted and its deletion awaited.
 *   1. N FnolModels applied at once: time until every one is Ready, and its
 *      ratio to the baseline (goal <= 1.2x).
 *   2. Reconcile latency, spec change -> updated Deployment seen on a watch,
 *      p50/p99 over LATENCY_SAMPLES model changes; baseline in the same run:
 *      the API server's own latency, Deployment patch -> seen on the same watch.
 *      Also two chained direct patches (a write seen on the watch, then a
 *      second one): the least any controller's path holds, without the
 *      operator. The three kinds of sample rotate, so load on the machine hits
 *      all alike; one warm-up sample of each
 *      is not counted (the operator's first change downloads the new model for
 *      its digest check). The operator's own share comes from its metrics: the
 *      time a changed key waited in the work queue, the reconciles' duration,
 *      and the resync reconciles that ran meanwhile.
 *   3. The operator process' memory (VmRSS, VmHWM): idle (0 models) vs N models.
 *   5. API reads per reconcile at rest (GET and LIST from the operator's
 *      fnol_operator_api_requests_total, lease requests excluded; goal 0).
 *   4. API writes per minute at rest (a resync included), counted by the
 *      operator (its request metric) and by the API server
 *      (apiserver_request_total for the resources the operator writes).
 *
 * Usage: npm run bench:operator [-- --models 2000] [-- --latency-only]
 * Env: BENCH_MODELS (500; --models wins), LATENCY_SAMPLES (200), REST_SECONDS (60),
 * BENCH_RESYNC_SECONDS (300, the operator's own default: the resync load during the
 * latency samples is the one a deployed operator runs with; the rest window starts once
 * the first resync period has, so it holds resync reconciles),
 * BENCH_LATENCY_ONLY=1 (or --latency-only): skip the direct-apply baseline of
 * step 0, so the run gives no ramp ratio but takes about half as long;
 * BENCH_CPU_PROF=DIR: the operator runs with --cpu-prof and writes its profile
 * to DIR when it stops (open it in Chrome DevTools or speedscope);
 * BENCH_REPLICAS (1): scorer pods per model; 0 (with --latency-only) creates
 * no pods at all, for a quicker ramp on a loaded machine: the change ->
 * Deployment path measured is the same, without the pods' events.
 * The operator runs as its own process (tsx), leader election on, as deployed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import type { V1Deployment } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import { repoRoot } from '../../test/support/repo';
import { apiPath, type FnolModel, Kinds, Labels, PLURAL } from '@fnol/api';
import { modelPath } from '../../operator/src/controller';
import { KubeClient } from '../../operator/src/kube/client';
import { loadConfig } from '../../operator/src/config';
import { desiredDeployment } from '../../operator/src/reconcilers/deployment';
import { desiredIngress } from '../../operator/src/reconcilers/ingress';
import { desiredService } from '../../operator/src/reconcilers/service';
import * as os from 'node:os';
import { loadavg } from 'node:os';
import { childOperator, installCrd, ModelServer, modelManifest } from './support';
import { createTestNamespace, deleteNamespace, useCluster } from '../../test/support/cluster';

function modelsArg(): number {
  const i = process.argv.indexOf('--models');
  const raw = i >= 0 ? process.argv[i + 1] : process.env.BENCH_MODELS;
  const n = Number(raw ?? 500);
  if (!Number.isInteger(n) || n < 1 || n > 5000) {
    console.error(`bench:operator: --models (or BENCH_MODELS) must be an integer 1..5000, got ${raw}`);
    process.exit(2);
  }
  return n;
}

const N = modelsArg();
const SAMPLES = Number(process.env.LATENCY_SAMPLES ?? 200);
/** Scorer pods per model; 0 makes a ramp without pods (the reconcile path measured is the same). */
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 1);
if (!Number.isInteger(REPLICAS) || REPLICAS < 0 || REPLICAS > 3) {
  console.error(`bench:operator: BENCH_REPLICAS must be an integer 0..3, got ${process.env.BENCH_REPLICAS}`);
  process.exit(2);
}
const LATENCY_ONLY =
  process.argv.includes('--latency-only') || ['1', 'true'].includes(process.env.BENCH_LATENCY_ONLY ?? '');
const REST_SECONDS = Number(process.env.REST_SECONDS ?? 60);
/** The operator's resync period: its default unless set, so the latency samples share the machine with the resync load of a deployed operator. */
const RESYNC_SECONDS = Number(process.env.BENCH_RESYNC_SECONDS ?? 300);
if (!Number.isInteger(RESYNC_SECONDS) || RESYNC_SECONDS < 5 || RESYNC_SECONDS > 3600) {
  console.error(
    `bench:operator: BENCH_RESYNC_SECONDS must be an integer 5..3600, got ${process.env.BENCH_RESYNC_SECONDS}`,
  );
  process.exit(2);
}
const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);
const OPERATOR_RESOURCES = new Set([
  PLURAL,
  'deployments',
  'services',
  'ingresses',
  'networkpolicies',
  'poddisruptionbudgets',
  'horizontalpodautoscalers',
  'events',
]);

/** The local cluster's model store mode, as the operator under test runs. */
const LOCAL_ENV = { MODEL_LOCAL_MODE: 'true', MODEL_ALLOWED_HOSTS: '127.0.0.1' };

function log(msg: string): void {
  process.stderr.write(`[bench:operator] ${msg}\n`);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      })
      .on('error', reject);
  });
}

/** CPU time (user + system) of a process so far, in seconds. */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The p-th percentile of a histogram's observations between two scrapes, as
 * the upper bound of the bucket it falls in (Prometheus' histogram_quantile
 * without interpolation).
 */
function histogramQuantile(
  before: string,
  after: string,
  name: string,
  keep: (labels: Record<string, string>) => boolean,
  p: number,
): number {
  const buckets = (t: string) => {
    const m = new Map<number, number>();
    for (const line of t.split('\n')) {
      if (!line.startsWith(`${name}_bucket{`)) continue;
      const r = /^[^{]+\{([^}]*)\}\s+([0-9.eE+-]+)/.exec(line);
      if (!r) continue;
      const labels: Record<string, string> = {};
      for (const kv of r[1]!.matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
      if (!keep(labels)) continue;
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      m.set(le, (m.get(le) ?? 0) + Number(r[2]));
    }
    return m;
  };
  const b0 = buckets(before);
  const b1 = [...buckets(after)].sort((x, y) => x[0] - y[0]).map(([le, c]) => [le, c - (b0.get(le) ?? 0)]);
  const total = b1.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  return b1.find(([, c]) => c! >= (p / 100) * total)?.[0] ?? NaN;
}

/** Sum of a counter's samples whose labels pass the filter. */
function sumCounter(text: string, name: string, keep: (labels: Record<string, string>) => boolean): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{\s]+(?:\{([^}]*)\})?\s+([0-9.eE+-]+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    if (keep(labels)) total += Number(m[2]);
  }
  return total;
}

/**
 * The baseline: what the operator would create for each model (Deployment,
 * Service, Ingress, from the same desired-state functions, without owner
 * references), applied directly with server-side apply, 32 at a time, in a
 * namespace of its own; the time until every Deployment is available. The
 * namespace is deleted afterwards and its deletion awaited, so the operator's
 * phase starts on the same quiet cluster.
 */
async function directBaseline(
  admin: KubeClient,
  names: string[],
  spec: (i: number) => Record<string, unknown>,
  model: { uri: string; sha256: string },
): Promise<{ allAvailableS: number }> {
  const bns = await createTestNamespace('bench-direct');
  const cfg = loadConfig({ FNOL_SCORER_IMAGE: 'fnol-scorer:bench', ...LOCAL_ENV });
  log(`baseline: applying ${names.length} Deployments, Services and Ingresses directly (namespace ${bns})`);
  const t0 = performance.now();
  await pool(names, 32, async (name) => {
    const i = names.indexOf(name);
    const fm = {
      ...modelManifest(bns, name, { version: '1.0.0', ...model }, spec(i)),
      metadata: { name, namespace: bns, uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}` },
    } as unknown as FnolModel;
    for (const [kind, obj] of [
      [Kinds.Deployment, desiredDeployment(fm, cfg, fm.spec.model)],
      [Kinds.Service, desiredService(fm)],
      [Kinds.Ingress, desiredIngress(fm)],
    ] as const) {
      if (!obj) continue;
      // No owner: the FnolModel does not exist, the garbage collector would remove them.
      delete (obj.metadata as { ownerReferences?: unknown }).ownerReferences;
      await admin.apply(apiPath(kind, { namespace: bns, name }), obj, 'fnol-bench');
    }
  });
  let lastLog = 0;
  for (;;) {
    const list = await admin.list<V1Deployment>(apiPath(Kinds.Deployment, { namespace: bns }));
    const available = list.items.filter(
      (d) =>
        d.status?.observedGeneration === d.metadata?.generation &&
        (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1) &&
        (d.status?.updatedReplicas ?? 0) >= (d.spec?.replicas ?? 1),
    ).length;
    if (performance.now() - lastLog > 5000) {
      log(
        `baseline: ${available}/${names.length} available after ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
      lastLog = performance.now();
    }
    if (available === names.length) break;
    if (performance.now() - t0 > 20 * 60_000)
      throw new Error(`baseline: only ${available} available after 20 min`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const allAvailableS = (performance.now() - t0) / 1000;
  log(`baseline: all ${names.length} available after ${allAvailableS.toFixed(1)} s; deleting its namespace`);
  await deleteNamespace(bns);
  for (let i = 0; i < 600; i++) {
    if (!(await admin.get(apiPath(Kinds.Namespace, { name: bns })))) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { allAvailableS };
}

async function main(): Promise<void> {
  const cluster = await useCluster();
  await installCrd(cluster, 'fnol-bench');
  const admin = new KubeClient(cluster.kubeConfig);
  const ns = await createTestNamespace('bench-op');
  // The cluster's simulated nodes hold 110 pods each: add kwok nodes for this
  // run so N scorer pods fit (removed at the end).
  const nodeNames = Array.from({ length: Math.ceil((N + 50) / 200) }, (_, i) => `${ns}-node-${i}`);
  for (const name of nodeNames) {
    await admin.create(apiPath(Kinds.Node), {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: {
          type: 'kwok',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'fnol.local/bench': ns,
        },
      },
      spec: {},
      status: {
        allocatable: { cpu: '64', memory: '256Gi', pods: '250' },
        capacity: { cpu: '64', memory: '256Gi', pods: '250' },
      },
    });
  }
  const cleanUp = async () => {
    await deleteNamespace(ns).catch(() => {});
    for (const name of nodeNames) await admin.delete(apiPath(Kinds.Node, { name })).catch(() => {});
  };
  process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));
  process.once('SIGTERM', () => void cleanUp().then(() => process.exit(143)));
  const models = new ModelServer();
  await models.start();
  const m1 = models.publish('fnol-1.0.0.onnx', Buffer.alloc(4 << 20, 1)); // a 4 MiB "model"

  const load0 = loadavg();
  const spec = (i: number) => ({
    replicas: REPLICAS,
    ingress: { host: `m${i}.bench.example.com`, className: 'nginx' },
  });
  const names = Array.from({ length: N }, (_, i) => `fnol-${String(i).padStart(4, '0')}`);

  // 0. Baseline: the same Deployments, Services and Ingresses, applied directly.
  const baseline = LATENCY_ONLY ? { allAvailableS: NaN } : await directBaseline(admin, names, spec, m1);

  // Watch Deployments in the namespace: the observation point for latencies.
  const seen = new Map<string, { version?: string; generation?: number; at: number }>();
  const waiters: Array<() => void> = [];
  const watch = new Watch(cluster.kubeConfig);
  const watchReq = await watch.watch(
    apiPath(Kinds.Deployment, { namespace: ns }),
    {},
    (_type, obj: V1Deployment) => {
      seen.set(obj.metadata!.name!, {
        version: obj.spec?.template.metadata?.labels?.[Labels.modelVersion],
        generation: obj.metadata?.generation,
        at: performance.now(),
      });
      for (const w of waiters.splice(0)) w();
    },
    () => {},
  );
  const waitSeen = async (
    name: string,
    ok: (s: { version?: string; generation?: number }) => boolean,
    since: number,
  ) => {
    for (;;) {
      const s = seen.get(name);
      if (s && s.at >= since && ok(s)) return s.at - since;
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 1000);
      });
    }
  };

  log(`starting the operator (namespace ${ns})`);
  // The compiled entry point, as in the image (npm run build); tsx if the build fails.
  const entry = path.join(repoRoot, 'dist', 'operator', 'src', 'main.js');
  let runtime = 'node dist/operator/src/main.js';
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'ignore' });
  } catch {
    runtime = 'tsx (npm run build failed)';
  }
  if (!existsSync(entry)) runtime = 'tsx (no build)';
  log(`operator runs as: ${runtime}`);
  const op = childOperator(
    {
      KUBECONFIG: cluster.kubeconfigPath,
      POD_NAME: 'bench-operator',
      LEASE_NAMESPACE: ns,
      WATCH_NAMESPACE: ns,
      FNOL_SCORER_IMAGE: 'fnol-scorer:bench',
      RESYNC_PERIOD_SECONDS: String(RESYNC_SECONDS),
      LOG_LEVEL: 'warn',
      HEALTH_PORT: '18981',
    },
    runtime.startsWith('node') ? entry : undefined,
    // BENCH_CPU_PROF=DIR: a CPU profile of the operator process, written there when it stops.
    process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`]
      : [],
  );
  const healthPort = 18981;
  process.once('exit', () => op.proc.kill('SIGKILL'));
  for (let i = 0; ; i++) {
    try {
      if ((await scrape(healthPort)).includes('fnol_operator_leader 1')) break;
    } catch {
      /* not listening yet */
    }
    if (i > 300) throw new Error(`the operator did not become leader:\n${op.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const idle = memoryOf(op.proc.pid!);
  log(`operator idle: RSS ${idle.rssMb.toFixed(0)} MiB`);

  // 1. N FnolModels at once.
  log(`creating ${N} FnolModels`);
  const t0 = performance.now();
  await pool(names, 32, async (name) => {
    const i = names.indexOf(name);
    await admin.create(modelPath(ns), modelManifest(ns, name, { version: '1.0.0', ...m1 }, spec(i)));
  });
  const created = performance.now() - t0;
  let ready = 0;
  let lastLog = 0;
  for (;;) {
    const list = await admin.list<FnolModel>(modelPath(ns));
    ready = list.items.filter((m) => m.status?.phase === 'Ready').length;
    if (performance.now() - lastLog > 5000) {
      log(`${ready}/${N} Ready after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      lastLog = performance.now();
    }
    if (ready === N) break;
    if (performance.now() - t0 > 20 * 60_000) throw new Error(`only ${ready}/${N} Ready after 20 minutes`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const allReadyS = (performance.now() - t0) / 1000;
  const loaded = memoryOf(op.proc.pid!);
  log(`all ${N} Ready after ${allReadyS.toFixed(1)} s; RSS ${loaded.rssMb.toFixed(0)} MiB`);

  // 2. Latency: operator, baseline and chained-baseline samples in rotation (plus one warm-up of each).
  log(
    `latency: ${SAMPLES} FnolModel changes, ${SAMPLES} direct Deployment patches and ${SAMPLES} chained pairs of them, in rotation`,
  );
  const base: number[] = [];
  const chain: number[] = [];
  const lat: number[] = [];
  const m2 = models.publish('fnol-1.1.0.onnx', Buffer.alloc(4 << 20, 2));
  // Operator samples change models i*7 mod N, baseline samples patch the ones just after.
  const baseSample = async (i: number) => {
    const name = names[(i * 7 + 1) % N]!;
    const gen = seen.get(name)?.generation ?? 0;
    const since = performance.now();
    await admin.mergePatch(apiPath(Kinds.Deployment, { namespace: ns, name }), {
      metadata: { annotations: { 'bench.fnol.io/touch': String(i) } },
      spec: { minReadySeconds: (i % 2) + 1 },
    });
    return waitSeen(name, (s) => (s.generation ?? 0) > gen, since);
  };
  // What any controller's path holds at least: a write seen on a watch, then a
  // second write seen on a watch (the operator: the FnolModel patch, its watch
  // event, the Deployment apply, its watch event), without the operator.
  const chainSample = async (i: number) => {
    const name = names[(i * 7 + 2) % N]!;
    const since = performance.now();
    for (const step of [0, 1]) {
      const gen = seen.get(name)?.generation ?? 0;
      await admin.mergePatch(apiPath(Kinds.Deployment, { namespace: ns, name }), {
        spec: { minReadySeconds: 10 + ((2 * i + step) % 4) },
      });
      await waitSeen(name, (s) => (s.generation ?? 0) > gen, since);
    }
    return performance.now() - since;
  };
  // The operator: model change on the FnolModel -> Deployment with the new version.
  const operatorSample = async (i: number) => {
    const name = names[(i * 7) % N]!;
    const since = performance.now();
    await admin.mergePatch(modelPath(ns, name), { spec: { model: { version: '1.1.0', ...m2 } } });
    const ms = await waitSeen(name, (s) => s.version === '1.1.0', since);
    // One change at a time: wait for this rollout to finish, so the sample
    // measures the reconcile, not a queue full of earlier rollouts.
    for (;;) {
      const m = await admin.get<FnolModel>(modelPath(ns, name));
      if (m?.status?.phase === 'Ready' && m.status.observedGeneration === m.metadata.generation) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return ms;
  };
  await operatorSample(SAMPLES);
  await baseSample(SAMPLES);
  await chainSample(SAMPLES);
  const latBefore = await scrape(healthPort);
  const cpuBefore = cpuSecondsOf(op.proc.pid!);
  const latT0 = performance.now();
  for (let i = 0; i < SAMPLES; i++) {
    // The three kinds of sample in a rotating order, so none always follows another.
    const kinds = [
      async () => base.push(await baseSample(i)),
      async () => lat.push(await operatorSample(i)),
      async () => chain.push(await chainSample(i)),
    ];
    for (let k = 0; k < kinds.length; k++) await kinds[(i + k) % kinds.length]!();
  }
  const latS = (performance.now() - latT0) / 1000;
  const opCpuS = cpuSecondsOf(op.proc.pid!) - cpuBefore;
  const latAfter = await scrape(healthPort);
  const QW = 'fnol_operator_workqueue_queue_duration_seconds';
  const byPriority = (p: string) => (l: Record<string, string>) => l.priority === p;
  const counterDiff = (name: string, keep: (l: Record<string, string>) => boolean) =>
    sumCounter(latAfter, name, keep) - sumCounter(latBefore, name, keep);
  const eventWaits = counterDiff(`${QW}_count`, byPriority('event'));
  const eventWaitMeanMs = (counterDiff(`${QW}_sum`, byPriority('event')) / Math.max(1, eventWaits)) * 1000;
  const eventWaitP99Ms = histogramQuantile(latBefore, latAfter, QW, byPriority('event'), 99) * 1000;
  const resyncsDuringLatency = counterDiff(`${QW}_count`, byPriority('resync'));
  const RD = 'fnol_operator_reconcile_duration_seconds';
  const reconcilesDuringLatency = counterDiff(`${RD}_count`, () => true);
  const reconcileMeanMs =
    (counterDiff(`${RD}_sum`, () => true) / Math.max(1, reconcilesDuringLatency)) * 1000;
  const reconcileP99Ms = histogramQuantile(latBefore, latAfter, RD, () => true, 99) * 1000;

  // Let the rollouts finish, then measure rest.
  for (;;) {
    const list = await admin.list<FnolModel>(modelPath(ns));
    if (
      list.items.every(
        (m) => m.status?.phase === 'Ready' && m.status.observedGeneration === m.metadata.generation,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await new Promise((r) => setTimeout(r, 3000));

  // 4. Writes at rest. Besides the request counters, watch the namespace:
  // every change to an object there (by any client) arrives as an event.
  let changesAtRest = 0;
  const restWatches = await Promise.all(
    [
      Kinds.FnolModel,
      Kinds.Deployment,
      Kinds.Service,
      Kinds.NetworkPolicy,
      Kinds.PodDisruptionBudget,
      Kinds.Event,
    ]
      .map((kind) => apiPath(kind, { namespace: ns }))
      .map(async (p) => {
        const list = await admin.list<unknown>(p);
        return new Watch(cluster.kubeConfig).watch(
          p,
          { resourceVersion: list.metadata?.resourceVersion ?? '0' },
          () => changesAtRest++,
          () => {},
        );
      }),
  );
  // The rest window must hold resync reconciles: the first period starts one
  // period after the operator did (a small run may get here before it).
  const resyncsSoFar = async () => sumCounter(await scrape(healthPort), `${QW}_count`, byPriority('resync'));
  if ((await resyncsSoFar()) === 0) {
    log(`waiting for the operator's first resync period (${RESYNC_SECONDS} s after it started)`);
    const deadline = performance.now() + (RESYNC_SECONDS + 30) * 1000;
    while ((await resyncsSoFar()) === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  log(
    `at rest for ${REST_SECONDS} s (resync period ${RESYNC_SECONDS} s, spread: resync reconciles included)`,
  );
  const opBefore = await scrape(healthPort);
  const apiBefore = await admin.request<string>('GET', '/metrics', { text: true }).catch(() => '');
  const reconcilesBefore = sumCounter(opBefore, 'fnol_operator_reconcile_total', () => true);
  await new Promise((r) => setTimeout(r, REST_SECONDS * 1000));
  const opAfter = await scrape(healthPort);
  const apiAfter = await admin.request<string>('GET', '/metrics', { text: true }).catch(() => '');
  const opWrites = (t: string, leases: boolean) =>
    sumCounter(
      t,
      'fnol_operator_api_requests_total',
      (l) => WRITE_VERBS.has(l.verb ?? '') && (l.resource === 'leases') === leases,
    );
  const perMin = 60 / REST_SECONDS;
  const reconcileWrites = (opWrites(opAfter, false) - opWrites(opBefore, false)) * perMin;
  const leaseWrites = (opWrites(opAfter, true) - opWrites(opBefore, true)) * perMin;
  const restReconciles = sumCounter(opAfter, 'fnol_operator_reconcile_total', () => true) - reconcilesBefore;
  const reads = (t: string, verb: string) =>
    sumCounter(t, 'fnol_operator_api_requests_total', (l) => l.verb === verb && l.resource !== 'leases');
  const getsPerReconcile = (reads(opAfter, 'GET') - reads(opBefore, 'GET')) / Math.max(1, restReconciles);
  const listsPerReconcile = (reads(opAfter, 'LIST') - reads(opBefore, 'LIST')) / Math.max(1, restReconciles);
  const readsDuringRamp = reads(opBefore, 'GET') + reads(opBefore, 'LIST');
  const reconcilesTotal = reconcilesBefore;
  // Writes to what the operator writes: its kinds (not their status, which the
  // controller manager writes) and FnolModel status. Events of any writer count,
  // so this is an upper bound.
  const apiserverWrites = (t: string) =>
    t === ''
      ? NaN
      : sumCounter(t, 'apiserver_request_total', (l) => {
          if (!WRITE_VERBS.has(l.verb ?? '')) return false;
          if (l.resource === PLURAL) return true;
          return OPERATOR_RESOURCES.has(l.resource ?? '') && (l.subresource ?? '') === '';
        });
  const apiWrites = (apiserverWrites(apiAfter) - apiserverWrites(apiBefore)) * perMin;
  const final = memoryOf(op.proc.pid!);
  for (const w of restWatches) w.abort();
  const namespaceChanges = changesAtRest * perMin;

  await op.kill('SIGTERM');
  watchReq.abort();
  await models.stop();
  await cleanUp();

  const row = (k: string, v: string, b: string) =>
    `| ${k.padEnd(56)} | ${v.padStart(12)} | ${b.padStart(26)} |`;
  const out = [
    '',
    `FnolModel operator benchmark: ${N} models, ${SAMPLES} latency samples, ${REST_SECONDS} s at rest; resync period ${RESYNC_SECONDS} s; operator: ${runtime}${LATENCY_ONLY ? '; latency only (no direct-apply baseline)' : ''}; ${REPLICAS} scorer pod(s) per model`,
    `load average (1/5/15 min) at start ${load0.map((x) => x.toFixed(1)).join(' / ')}, at end ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ')} on ${os.cpus().length} cores`,
    '',
    row('measure', 'operator', 'baseline (same run)'),
    `|${'-'.repeat(58)}|${'-'.repeat(14)}|${'-'.repeat(28)}|`,
    row(`time to create ${N} FnolModels (API)`, `${(created / 1000).toFixed(1)} s`, ''),
    row(
      `time until all ${N} Ready (baseline: all available)`,
      `${allReadyS.toFixed(1)} s`,
      LATENCY_ONLY ? 'skipped (latency only)' : `${baseline.allAvailableS.toFixed(1)} s direct apply`,
    ),
    row(
      '  ratio to the baseline (goal <= 1.2x)',
      LATENCY_ONLY ? 'n/a' : `${(allReadyS / baseline.allAvailableS).toFixed(2)}x`,
      '',
    ),
    row(
      'spec change -> Deployment updated, p50',
      `${percentile(lat, 50).toFixed(0)} ms`,
      `${percentile(base, 50).toFixed(0)} ms direct patch`,
    ),
    row(
      'spec change -> Deployment updated, p99',
      `${percentile(lat, 99).toFixed(0)} ms`,
      `${percentile(base, 99).toFixed(0)} ms direct patch`,
    ),
    row(
      '  ratio p50 / p99 (goal <= 1.1x / 1.5x)',
      `${(percentile(lat, 50) / percentile(base, 50)).toFixed(2)}x / ${(percentile(lat, 99) / percentile(base, 99)).toFixed(2)}x`,
      '',
    ),
    row(
      '  two chained direct patches (floor of any controller), p50 / p99',
      `${percentile(chain, 50).toFixed(0)} / ${percentile(chain, 99).toFixed(0)} ms`,
      `ratio ${(percentile(lat, 50) / percentile(chain, 50)).toFixed(2)}x / ${(percentile(lat, 99) / percentile(chain, 99)).toFixed(2)}x`,
    ),
    row(
      '  changed key waiting in the work queue, mean / p99',
      `${eventWaitMeanMs.toFixed(1)} / ${Number.isNaN(eventWaitP99Ms) ? 'n/a' : `<= ${eventWaitP99Ms.toFixed(0)}`} ms`,
      `${eventWaits} event keys`,
    ),
    row(
      '  reconcile duration during the samples, mean / p99',
      `${reconcileMeanMs.toFixed(1)} / ${Number.isNaN(reconcileP99Ms) ? 'n/a' : `<= ${reconcileP99Ms.toFixed(0)}`} ms`,
      `${reconcilesDuringLatency} reconciles, ${resyncsDuringLatency} resyncs`,
    ),
    row(
      '  operator CPU during the samples, per operator sample',
      `${((opCpuS / SAMPLES) * 1000).toFixed(1)} ms`,
      `${opCpuS.toFixed(1)} s CPU in ${latS.toFixed(0)} s`,
    ),
    row(
      `operator RSS, ${N} models`,
      `${loaded.rssMb.toFixed(0)} MiB`,
      `${idle.rssMb.toFixed(0)} MiB idle, 0 models`,
    ),
    row('operator RSS peak (VmHWM)', `${final.hwmMb.toFixed(0)} MiB`, ''),
    row('reconciles at rest (resync)', `${restReconciles}`, ''),
    row('API GETs per reconcile at rest (operator count)', getsPerReconcile.toFixed(2), 'goal 0'),
    row('API LISTs per reconcile at rest (operator count)', listsPerReconcile.toFixed(2), 'goal 0'),
    row(
      'API reads per reconcile, start to rest (GET+LIST)',
      (readsDuringRamp / Math.max(1, reconcilesTotal)).toFixed(2),
      'cache lists + misses',
    ),
    row('API writes/min at rest, reconciles (operator count)', `${reconcileWrites.toFixed(1)}`, 'goal 0'),
    row(
      'apiserver writes/min at rest, owned kinds, any client',
      `${Number.isNaN(apiWrites) ? 'n/a' : apiWrites.toFixed(1)}`,
      'goal 0',
    ),
    row('object changes/min at rest in the namespace (watch)', `${namespaceChanges.toFixed(1)}`, 'goal 0'),
    row('API writes/min at rest, leader lease renewals', `${leaseWrites.toFixed(1)}`, 'one per retry period'),
    '',
  ];
  console.log(out.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:operator failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);

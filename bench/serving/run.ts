// Benchmark: what each hop of the serving path costs on the local cluster's real
// node (npm run bench:serving, after npm run demo). The same scorer pods of one
// FnolModel are measured three ways, with the same load generator:
//
//   pod IPs      the pods' own addresses, round-robin in the client (baseline:
//                no proxy at all);
//   Service      the ClusterIP, through kube-proxy's iptables rules;
//   Ingress      Traefik on 127.0.0.1 with the FnolModel's Host header, as
//                consumers call it.
//
// Options (env): BENCH_NAMESPACE (fnol-demo), BENCH_NAME (fnol), BENCH_SECONDS
// (10 per measurement), BENCH_CONNECTIONS (16), BENCH_RATE (200 req/s for the
// fixed-rate latency run), FNOL_INGRESS_PORT (18081).

import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GROUP, Labels, PLURAL, VERSION, type FnolModel } from '@fnol/api';
import { ingressControllerPid } from '../../test/support/ingress';
import { closedLoop, openLoop, type Measure, type Target } from '../support/load';

const ROOT = path.resolve(__dirname, '../..');
const NAMESPACE = process.env.BENCH_NAMESPACE ?? 'fnol-demo';
const NAME = process.env.BENCH_NAME ?? 'fnol';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const INGRESS_PORT = Number(process.env.FNOL_INGRESS_PORT ?? 18081);
const CLUSTER_DIR = process.env.FNOL_CLUSTER_DIR ?? path.join(ROOT, '.cluster');

/** CPU time (user + system) a process used so far, in ms (from /proc, 10 ms ticks). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function discover(): Promise<{
  paths: { name: string; target: Target }[];
  version: string;
  pods: number;
}> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path.join(CLUSTER_DIR, 'kubeconfig'));
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const fm = (
    await custom.getNamespacedCustomObject(GROUP, VERSION, NAMESPACE, PLURAL, NAME).catch(() => {
      throw new Error(
        `no FnolModel ${NAMESPACE}/${NAME} on the local cluster; run npm run demo first (or set BENCH_NAMESPACE, BENCH_NAME)`,
      );
    })
  ).body as FnolModel;
  if (fm.status?.phase !== 'Ready') {
    throw new Error(
      `FnolModel ${NAMESPACE}/${NAME} is ${fm.status?.phase ?? 'not reconciled'}, not Ready; see kubectl describe fm`,
    );
  }
  const host = fm.spec.ingress?.host;
  if (!host)
    throw new Error(
      `FnolModel ${NAMESPACE}/${NAME} has no spec.ingress.host; the Ingress path cannot be measured`,
    );
  const pods = (
    await core.listNamespacedPod(
      NAMESPACE,
      undefined,
      undefined,
      undefined,
      undefined,
      `${Labels.model}=${NAME}`,
    )
  ).body.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const podUrls = pods.map((p) => `http://${p.status?.podIP}:8080`);
  if (podUrls.length === 0) throw new Error(`no Ready scorer pod of ${NAMESPACE}/${NAME}`);
  const svc = (await core.readNamespacedService(NAME, NAMESPACE)).body;
  const port = svc.spec?.ports?.[0]?.port ?? 80;
  return {
    version: fm.status.activeVersion ?? '?',
    pods: pods.length,
    paths: [
      { name: `pod IPs (${podUrls.length} pods, no proxy)`, target: { urls: podUrls } },
      { name: 'Service ClusterIP (kube-proxy)', target: { urls: [`http://${svc.spec?.clusterIP}:${port}`] } },
      {
        name: `Ingress (Traefik, Host ${host})`,
        target: { urls: [`http://127.0.0.1:${INGRESS_PORT}`], host },
      },
    ],
  };
}

async function main(): Promise<void> {
  const { paths, version, pods } = await discover();
  const record = JSON.stringify({ data: [Array.from({ length: 37 }, (_, i) => i + 1)] });
  const batch100 = JSON.stringify({
    data: Array.from({ length: 100 }, (_, r) => Array.from({ length: 37 }, (_, i) => (i + r) % 40)),
  });
  const loadBefore = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const traefik = ingressControllerPid();
  // The pods' first seconds of load (JIT, ONNX session warm-up) are nobody's cost.
  await closedLoop(paths[0]!.target, record, CONNECTIONS, 5);
  const rows: { name: string; closed: Measure; fixed: Measure; batch: Measure; proxyCpu?: number }[] = [];
  for (const { name, target } of paths) {
    process.stderr.write(`measuring ${name} ...\n`);
    await closedLoop(target, record, CONNECTIONS, 2); // warm-up: connections, JIT
    const cpu0 = traefik && name.startsWith('Ingress') ? cpuMs(traefik) : undefined;
    const closed = await closedLoop(target, record, CONNECTIONS, SECONDS);
    const proxyCpu = cpu0 === undefined || !traefik ? undefined : (cpuMs(traefik) - cpu0) / closed.count;
    const fixed = await openLoop(target, record, RATE, SECONDS);
    const batch = await closedLoop(target, batch100, 1, SECONDS);
    rows.push({ name, closed, fixed, batch, proxyCpu });
  }
  const base = rows[0]!;
  const ms = (m: Measure) => `${m.p50.toFixed(2)} / ${m.p99.toFixed(2)}`;
  console.log(
    `\nFnolModel ${NAMESPACE}/${NAME} version ${version}, ${pods} scorer pods on the real node; ${cpus().length} cores, ` +
      `load average before ${loadBefore}, after ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; ${SECONDS} s per measurement\n`,
  );
  console.log(
    `| path | req/s (${CONNECTIONS} clients) | vs pod IPs | p50 / p99 ms (${CONNECTIONS} clients) | p50 / p99 ms at ${RATE} req/s | batch 100: p50 / p99 ms | proxy CPU ms per request | errors |`,
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.closed.rps.toFixed(0)} | ${(r.closed.rps / base.closed.rps).toFixed(2)}x | ${ms(r.closed)} | ${ms(r.fixed)} | ${ms(r.batch)} | ${r.proxyCpu === undefined ? '-' : r.proxyCpu.toFixed(3)} | ${r.closed.errors + r.fixed.errors + r.batch.errors} |`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(`bench:serving failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

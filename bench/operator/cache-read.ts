/**
 * CPU cost of the one cache read a reconcile makes that is not by name: a
 * FnolModel's ReplicaSets (by its selector labels), from a cache holding the
 * ReplicaSets of N models (two each: the current and the previous version),
 * with and without the label index. In-process, CPU time (process.cpuUsage)
 * over many repetitions; no cluster.
 *
 * Usage: npx tsx bench/operator/cache-read.ts [N ...]   (default 500 2000)
 */
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Kinds, Labels } from '@fnol/api';
import { KubeClient } from '../../operator/src/kube/client';
import { Informer } from '../../operator/src/manager/informers';
import { INSTANCE_LABEL } from '../../operator/src/reconcilers/common';
import { median } from '../support/load';

function informer(indexLabel?: string): Informer {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return new Informer(new KubeClient(kc), {
    kind: { ...Kinds.ReplicaSet, kind: 'ReplicaSet' },
    log: pino({ level: 'silent' }),
    ...(indexLabel ? { indexLabel } : {}),
  });
}

function fill(inf: Informer, n: number): void {
  for (let i = 0; i < n; i++) {
    for (const rs of ['a', 'b']) {
      inf.observe({
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          namespace: 'claims',
          name: `fnol-${i}-${rs}`,
          resourceVersion: '1',
          labels: {
            'app.kubernetes.io/name': 'fnol-scorer',
            [INSTANCE_LABEL]: `fnol-${i}`,
            'app.kubernetes.io/managed-by': 'fnol-operator',
            [Labels.model]: `fnol-${i}`,
            [Labels.modelVersion]: rs === 'a' ? '1.0.0' : '1.1.0',
            'pod-template-hash': `${rs}${i}`,
          },
        },
      });
    }
  }
}

function cpuMicrosPerRead(inf: Informer, n: number, reads: number): number {
  let found = 0;
  const before = process.cpuUsage();
  for (let r = 0; r < reads; r++) {
    const i = r % n;
    found += inf.list('claims', {
      'app.kubernetes.io/name': 'fnol-scorer',
      [INSTANCE_LABEL]: `fnol-${i}`,
    }).length;
  }
  const used = process.cpuUsage(before);
  if (found !== reads * 2) throw new Error(`expected 2 ReplicaSets per read, got ${found / reads}`);
  return (used.user + used.system) / reads;
}

const sizes = process.argv.slice(2).map(Number);
console.log('| models | ReplicaSets cached | scan, CPU µs per read | index, CPU µs per read | ratio |');
console.log('| --- | --- | --- | --- | --- |');
for (const n of sizes.length > 0 ? sizes : [500, 2000]) {
  const scan = informer();
  const indexed = informer(INSTANCE_LABEL);
  fill(scan, n);
  fill(indexed, n);
  // Warm-up, then alternate rounds so both see the same machine.
  cpuMicrosPerRead(scan, n, 200);
  cpuMicrosPerRead(indexed, n, 200);
  const s: number[] = [];
  const x: number[] = [];
  for (let round = 0; round < 7; round++) {
    s.push(cpuMicrosPerRead(scan, n, 2000));
    x.push(cpuMicrosPerRead(indexed, n, 20000));
  }
  console.log(
    `| ${n} | ${2 * n} | ${median(s).toFixed(1)} | ${median(x).toFixed(2)} | ${(median(s) / median(x)).toFixed(0)}x |`,
  );
}

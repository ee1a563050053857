// Benchmark: the ONNX scorer against the baseline (the two .cbm files behind
// azureml-inference-server-http, as the original Azure ML service ran them), same
// {"data": [[...]]} contract, same load generator for both, on loopback. Prints
// one table. Run with `npm run bench:scorer` (run.sh sets up).
//
// Latencies come from a small load generator here (closed loop at a fixed
// concurrency; open loop at a fixed rate, timed from each request's scheduled
// start so a stalled server cannot hide its queue). autocannon's req/s is shown as
// a cross-check, but not its latencies: gunicorn's sync worker closes every
// connection, and autocannon then pairs responses with the wrong requests.
//
// The scorer runs twice: with its overload guard (the default) and with
// OVERLOAD_GUARD=off, the switch that exists for this comparison only. Besides
// the full table for each, the two are measured in alternating rounds (so a
// change in the machine's load hits both alike) and the ratio is printed.
//
// Options (env): BENCH_SECONDS (default 10 per measurement), BENCH_CONNECTIONS
// (default 16), BENCH_RATE (default 1000 req/s for the fixed-rate latency run),
// BENCH_ROUNDS (default 5 alternating rounds of the guard comparison).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import {
  closedLoop as closedLoopOn,
  openLoop as openLoopOn,
  sleep,
  type Measure,
  type Target,
} from '../support/load';

const ROOT = resolve(__dirname, '../..');
const ARTIFACTS = process.env.FNOL_ARTIFACTS ?? resolve(ROOT, '../shared/fnol');
const BENCH_PY = join(ROOT, 'bench/scorer/.venv/bin/python');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MODEL = join(ROOT, 'build/model/fnol-1.0.0.onnx');
const LOAD_BEFORE = loadavg()
  .map((l) => l.toFixed(1))
  .join(' ');

interface Service {
  name: string;
  url: string;
  child: ChildProcess;
  pid: number;
}

async function waitFor(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  throw new Error(`${what} did not become ready at ${url}`);
}

async function startScorer(port: number, guard: boolean): Promise<Service> {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'scorer/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      MODEL_URI: `file://${MODEL}`,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      MAX_BATCH_RECORDS: '5000',
      // As in a pod with the default 1 GiB limit.
      MEMORY_LIMIT_BYTES: String(1024 * 1024 * 1024),
      OVERLOAD_GUARD: guard ? 'on' : 'off',
      // The benchmark's idle connections would otherwise hold each stop for the drain window.
      SHUTDOWN_GRACE_SECONDS: '1',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`, child, 'scorer');
  const name = guard ? 'scorer (Node, onnxruntime)' : 'scorer, guard off';
  return { name, url, child, pid: child.pid as number };
}

async function startBaseline(port: number): Promise<Service> {
  const child = spawn(
    join(ROOT, 'bench/scorer/.venv/bin/azmlinfsrv'),
    [
      '--entry_script',
      join(ROOT, 'bench/scorer/baseline/score.py'),
      '--model_dir',
      ARTIFACTS,
      '--port',
      String(port),
    ],
    {
      cwd: join(ROOT, 'bench/scorer/baseline'),
      env: { ...process.env },
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/`, child, 'baseline');
  return { name: 'baseline (azmlinfsrv, catboost)', url, child, pid: child.pid as number };
}

/** A process and its descendants (the gunicorn workers of the baseline). */
function processTree(pid: number): { pid: number; rssKiB: number }[] {
  const ps = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,rss='], { encoding: 'utf8' });
  const rows = ps.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number]);
  const tree = new Set([pid]);
  let grown = true;
  while (grown) {
    grown = false;
    for (const [p, pp] of rows) if (tree.has(pp) && !tree.has(p)) grown = tree.add(p) !== undefined;
  }
  return rows.filter(([p]) => tree.has(p)).map(([p, , rss]) => ({ pid: p, rssKiB: rss }));
}

/** Resident memory of the process tree, in MiB. */
function rssMiB(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + p.rssKiB, 0) / 1024;
}

/** CPU time (user + system) used so far by the process tree, in ms (from /proc, 10 ms ticks). */
function cpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks * 10;
}

interface Goals {
  p99AtRate: number;
  batch1000: number;
}

/** The scorer contract's answer: {"result": [...]}. */
const target = (url: string): Target => ({
  urls: [url],
  accept: (status, body) => status === 200 && /^\{"result": ?\[/.test(body),
});
const closedLoop = (url: string, body: string, connections: number, seconds = SECONDS): Promise<Measure> =>
  closedLoopOn(target(url), body, connections, seconds);
const openLoop = (url: string, body: string, rate: number, seconds = SECONDS): Promise<Measure> =>
  openLoopOn(target(url), body, rate, seconds);

async function autocannonRps(url: string, body: string): Promise<number> {
  const result = await autocannon({
    url: `${url}/score`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  return result.requests.average;
}

async function predict(url: string, rows: unknown[][]): Promise<number[]> {
  const res = await fetch(`${url}/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: rows }),
  });
  const body = (await res.json()) as { result?: number[]; error?: string };
  if (!body.result) throw new Error(`${url}: ${JSON.stringify(body).slice(0, 300)}`);
  return body.result;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * The scorer with and without its overload guard, in alternating rounds
 * (on-off, off-on, ...), so that other load on the machine hits both alike.
 * Each round starts a fresh pair of processes (two identical processes differ
 * by up to 10 % on this machine, by where they land and how they warm up), so
 * no one process decides the result. Prints each round and the medians; returns
 * guard-on / guard-off per measure.
 */
async function compareGuard(single: string, batch1000: string): Promise<Record<string, number>> {
  const seconds = Math.max(2, Math.round(SECONDS / 2));
  process.stderr.write(`guard on vs off: ${ROUNDS} alternating rounds of ${seconds} s per measure ...\n`);
  const names = { on: 'scorer (Node, onnxruntime)', off: 'scorer, guard off' };
  interface Runs {
    single: number[];
    batch: number[];
    /** Server CPU ms and requests, summed over the rounds. */
    cpuSingle: number;
    countSingle: number;
    cpuBatch: number;
    countBatch: number;
  }
  const empty = (): Runs => ({
    single: [],
    batch: [],
    cpuSingle: 0,
    countSingle: 0,
    cpuBatch: 0,
    countBatch: 0,
  });
  const runs: Record<string, Runs> = { [names.on]: empty(), [names.off]: empty() };
  for (let round = 0; round < ROUNDS; round++) {
    const first = round % 2 === 0;
    const pair = [await startScorer(18441, first), await startScorer(18442, !first)];
    for (const service of pair) await closedLoop(service.url, single, CONNECTIONS, 1); // warm-up
    for (const service of pair) {
      const r = runs[service.name] as Runs;
      let cpu = cpuMs(service.pid);
      const s = await closedLoop(service.url, single, CONNECTIONS, seconds);
      r.cpuSingle += cpuMs(service.pid) - cpu;
      r.countSingle += s.count;
      cpu = cpuMs(service.pid);
      const b = await closedLoop(service.url, batch1000, 1, seconds);
      r.cpuBatch += cpuMs(service.pid) - cpu;
      r.countBatch += b.count;
      r.single.push(s.rps);
      r.batch.push(b.rps * 1000);
    }
    for (const service of pair) {
      service.child.kill('SIGTERM');
      await new Promise((done) => service.child.once('exit', done));
    }
  }
  const on = { name: names.on };
  const off = { name: names.off };
  const of = (name: string) => runs[name] as Runs;
  const row = (name: string, pick: 'single' | 'batch') => {
    const values = of(name)[pick];
    return `${median(values).toFixed(0)} (${values.map((v) => v.toFixed(0)).join(', ')})`;
  };
  console.log(
    `\noverload guard on vs off, ${ROUNDS} alternating rounds of ${seconds} s, a fresh pair of processes each, median (each round):\n`,
  );
  console.log(`| measure | ${on.name} | ${off.name} | on / off |`);
  console.log('| --- | --- | --- | --- |');
  const ratios: Record<string, number> = {};
  for (const [label, pick] of [
    [`single: req/s (${CONNECTIONS} clients)`, 'single'],
    ['batch 1000: records/s (1 client)', 'batch'],
  ] as const) {
    const r = median(of(on.name)[pick]) / median(of(off.name)[pick]);
    ratios[pick === 'single' ? 'single-record throughput' : 'batch-1000 throughput'] = r;
    console.log(`| ${label} | ${row(on.name, pick)} | ${row(off.name, pick)} | ${(r * 100).toFixed(1)} % |`);
  }
  // CPU time per request depends far less on other load than throughput does.
  const perSingle = (name: string) => (of(name).cpuSingle / of(name).countSingle) * 1000;
  const perBatch = (name: string) => of(name).cpuBatch / of(name).countBatch;
  console.log(
    `| server CPU µs per single-record request | ${perSingle(on.name).toFixed(0)} | ${perSingle(off.name).toFixed(0)} | ${((perSingle(on.name) / perSingle(off.name)) * 100).toFixed(1)} % |`,
  );
  console.log(
    `| server CPU ms per batch of 1000 | ${perBatch(on.name).toFixed(1)} | ${perBatch(off.name).toFixed(1)} | ${((perBatch(on.name) / perBatch(off.name)) * 100).toFixed(1)} % |`,
  );
  return ratios;
}

async function main(): Promise<void> {
  const csv = spawnSync(BENCH_PY, [join(ROOT, 'bench/scorer/baseline/rows.py'), '1000'], {
    encoding: 'utf8',
    env: { ...process.env, FNOL_ARTIFACTS: ARTIFACTS },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (csv.status !== 0) throw new Error(`cannot read the CSV rows: ${csv.stderr}`);
  const smoke = [Array.from({ length: 37 }, (_, i) => i + 1), Array.from({ length: 37 }, (_, i) => 37 - i)];
  const rows = [...smoke, ...(JSON.parse(csv.stdout) as unknown[][])].slice(0, 1000);
  const single = JSON.stringify({ data: [rows[2]] });
  const batch100 = JSON.stringify({ data: rows.slice(0, 100) });
  const batch1000 = JSON.stringify({ data: rows.slice(0, 1000) });

  const services = [
    await startScorer(18431, true),
    await startScorer(18433, false),
    await startBaseline(18432),
  ];
  try {
    // Parity on 1,000 rows before any timing.
    const [ours, , theirs] = await Promise.all(services.map((s) => predict(s.url, rows)));
    let worst = 0;
    let mismatches = 0;
    (theirs as number[]).forEach((b, i) => {
      const a = (ours as number[])[i] as number;
      const err = Math.abs(a - b) / Math.max(1, Math.abs(b));
      worst = Math.max(worst, err);
      if (err > 1e-4) mismatches++;
    });
    console.log(
      `parity on ${rows.length} rows (2 smoke rows + CSV rows): max |a-b|/max(1,|b|) = ${worst.toExponential(2)}, ` +
        `${mismatches} over 1e-4`,
    );

    const table: Record<string, Record<string, string>> = {};
    const goals: Record<string, Goals> = {};
    for (const service of services) {
      process.stderr.write(`measuring ${service.name} ...\n`);
      const rssIdle = rssMiB(service.pid);
      await closedLoop(service.url, single, CONNECTIONS, 2); // warm-up
      let cpu = cpuMs(service.pid);
      const s = await closedLoop(service.url, single, CONNECTIONS);
      const cpuSingle = (cpuMs(service.pid) - cpu) / s.count;
      const ac = await autocannonRps(service.url, single);
      const fixed = await openLoop(service.url, single, RATE);
      const b100 = await closedLoop(service.url, batch100, 1);
      cpu = cpuMs(service.pid);
      const b1000 = await closedLoop(service.url, batch1000, 1);
      const cpuBatch = (cpuMs(service.pid) - cpu) / b1000.count;
      const rssLoaded = rssMiB(service.pid);
      goals[service.name] = { p99AtRate: fixed.p99, batch1000: b1000.p50 };
      const ms = (m: Measure) => `${m.p50.toFixed(2)} / ${m.p99.toFixed(2)}`;
      table[service.name] = {
        [`single: req/s (autocannon, ${CONNECTIONS} conn)`]: ac.toFixed(0),
        [`single: req/s (${CONNECTIONS} clients, latency generator)`]: s.rps.toFixed(0),
        [`single: p50 / p99 ms (${CONNECTIONS} clients)`]: ms(s),
        [`single at ${RATE} req/s: achieved req/s`]: fixed.rps.toFixed(0),
        [`single at ${RATE} req/s: p50 / p99 ms`]: ms(fixed),
        'batch 100: p50 / p99 ms': ms(b100),
        'batch 100: records/s': (b100.rps * 100).toFixed(0),
        'batch 1000: p50 / p99 ms': ms(b1000),
        'batch 1000: records/s': (b1000.rps * 1000).toFixed(0),
        'server CPU ms per single-record request': cpuSingle.toFixed(3),
        'server CPU ms per batch of 1000': cpuBatch.toFixed(1),
        'RSS MiB idle / after load': `${rssIdle.toFixed(0)} / ${rssLoaded.toFixed(0)}`,
        errors: String(s.errors + fixed.errors + b100.errors + b1000.errors),
      };
    }
    const names = services.map((s) => s.name);
    const metrics = Object.keys(table[names[0] as string] ?? {});
    const rps = names.map((n) => Number(table[n]?.[metrics[0] as string]));
    console.log(
      `\n${cpus().length} cores, load average before the run ${LOAD_BEFORE}, ${SECONDS} s per measurement, loopback, batches on 1 client\n`,
    );
    console.log(`| measure | ${names.join(' | ')} |`);
    console.log(`| --- | ${names.map(() => '---').join(' | ')} |`);
    for (const metric of metrics)
      console.log(`| ${metric} | ${names.map((n) => table[n]?.[metric]).join(' | ')} |`);
    const ratio = (rps[0] as number) / (rps[2] as number);
    const mine = goals[names[0] as string] as Goals;
    const guard = await compareGuard(single, batch1000);
    console.log(
      `\nload average after the run ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log('\ngoals (scorer):');
    console.log(
      `  single-record throughput >= 10x baseline (autocannon): ${ratio.toFixed(1)}x ${ratio >= 10 ? 'met' : 'missed'}`,
    );
    console.log(
      `  p99 < 5 ms at ${RATE} req/s: ${mine.p99AtRate.toFixed(2)} ms ${mine.p99AtRate < 5 ? 'met' : 'missed'}`,
    );
    console.log(
      `  batch of 1,000 < 20 ms (p50): ${mine.batch1000.toFixed(2)} ms ${mine.batch1000 < 20 ? 'met' : 'missed'}`,
    );
    console.log(
      `  predictions within 1e-4 relative: ${mismatches === 0 ? 'met' : `missed (${mismatches} rows)`}`,
    );
    for (const [what, r] of Object.entries(guard)) {
      console.log(
        `  ${what} with the overload guard within 5 % of without: ${(r * 100).toFixed(1)} % ${r >= 0.95 ? 'met' : 'missed'}`,
      );
    }
  } finally {
    for (const s of services) s.child.kill('SIGTERM');
  }
}

main().catch((error: unknown) => {
  console.error(`bench:scorer failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

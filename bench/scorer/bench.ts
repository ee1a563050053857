// Benchmark: the ONNX scorer against the baseline (the two .cbm files behind
// azureml-inference-server-http, as the original Azure ML service ran them), same
// {"data": [[...]]} contract, same load generator (autocannon, in-process), on
// loopback. Prints one table. Run with `npm run bench:scorer` (run.sh sets up).
//
// Options (env): BENCH_SECONDS (default 10 per measurement), BENCH_CONNECTIONS
// (default 16), BENCH_RATE (default 1000 req/s for the fixed-rate latency run).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';

const ROOT = resolve(__dirname, '../..');
const ARTIFACTS = process.env.FNOL_ARTIFACTS ?? resolve(ROOT, '../shared/fnol');
const BENCH_PY = join(ROOT, 'bench/scorer/.venv/bin/python');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const MODEL = join(ROOT, 'build/model/fnol-1.0.0.onnx');

interface Service {
  name: string;
  url: string;
  child: ChildProcess;
  pid: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
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

async function startScorer(port: number): Promise<Service> {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'scorer/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      MODEL_URI: `file://${MODEL}`,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MAX_BATCH_RECORDS: '5000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`, child, 'scorer');
  return { name: 'scorer (Node, onnxruntime)', url, child, pid: child.pid as number };
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

/** Resident memory of a process and its descendants (gunicorn workers), in MiB. */
function rssMiB(pid: number): number {
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
  return rows.filter(([p]) => tree.has(p)).reduce((sum, [, , rss]) => sum + rss, 0) / 1024;
}

interface Measure {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(url: string, body: string, connections: number, rate?: number): Promise<Measure> {
  const result = await autocannon({
    url: `${url}/score`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: SECONDS,
    ...(rate ? { overallRate: rate } : {}),
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  };
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

  const services = [await startScorer(18431), await startBaseline(18432)];
  try {
    // Parity on 1,000 rows before any timing.
    const [ours, theirs] = await Promise.all(services.map((s) => predict(s.url, rows)));
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
    for (const service of services) {
      process.stderr.write(`measuring ${service.name} ...\n`);
      const rssIdle = rssMiB(service.pid);
      await load(service.url, single, CONNECTIONS).catch(() => undefined); // warm-up
      const s = await load(service.url, single, CONNECTIONS);
      const fixed = await load(service.url, single, CONNECTIONS, RATE);
      const b100 = await load(service.url, batch100, 1);
      const b1000 = await load(service.url, batch1000, 1);
      const rssLoaded = rssMiB(service.pid);
      table[service.name] = {
        [`single: req/s (${CONNECTIONS} conn)`]: s.rps.toFixed(0),
        'single: p50 / p99 ms': `${s.p50} / ${s.p99}`,
        [`single at ${RATE} req/s: achieved, p50 / p99 ms`]: `${fixed.rps.toFixed(0)}, ${fixed.p50} / ${fixed.p99}`,
        'batch 100: p50 / p99 ms (1 conn)': `${b100.p50} / ${b100.p99}`,
        'batch 100: records/s': (b100.rps * 100).toFixed(0),
        'batch 1000: p50 / p99 ms (1 conn)': `${b1000.p50} / ${b1000.p99}`,
        'batch 1000: records/s': (b1000.rps * 1000).toFixed(0),
        'RSS MiB idle / after load': `${rssIdle.toFixed(0)} / ${rssLoaded.toFixed(0)}`,
        errors: String(s.errors + fixed.errors + b100.errors + b1000.errors),
      };
    }
    const names = services.map((s) => s.name);
    const metrics = Object.keys(table[names[0] as string] ?? {});
    const rps = names.map((n) => Number(table[n]?.[metrics[0] as string]));
    console.log(`\n${cpus().length} cores, ${SECONDS} s per measurement, autocannon in-process, loopback\n`);
    console.log(`| measure | ${names.join(' | ')} |`);
    console.log(`| --- | ${names.map(() => '---').join(' | ')} |`);
    for (const metric of metrics)
      console.log(`| ${metric} | ${names.map((n) => table[n]?.[metric]).join(' | ')} |`);
    console.log(`\nsingle-record throughput ratio: ${((rps[0] as number) / (rps[1] as number)).toFixed(1)}x`);
  } finally {
    for (const s of services) s.child.kill('SIGTERM');
  }
}

main().catch((error: unknown) => {
  console.error(`bench:scorer failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

// Benchmark: the ONNX scorer against the data scientists' original score.py
// (unchanged, from ../shared/fnol/original, served by azureml-inference-server-http
// as Azure ML served it: gunicorn, one sync worker, a connection closed after every
// answer) and against a bare node:http server that parses the same JSON and
// answers a constant (ceiling.ts: the most any Node service can do here). Same
// bodies, same load generators, same run, on loopback. Run with
// `npm run bench:scorer` (run.sh installs wrk and the original's environment).
//
// Load generators:
// - wrk (Debian's), closed loop at a fixed number of connections, with post.lua:
//   it reconnects correctly after a server closes the connection and counts an
//   answer as served only when it is 200 with a "result".
// - openLoop (bench/support/load.ts): requests started at a fixed rate whatever
//   the server does (Debian's wrk has no fixed-rate mode), for the server CPU per
//   request at smooth rates, the figure the capacity model in docs/operations.md
//   is built on.
// Server CPU comes from /proc (every thread of the process tree, ns resolution).
//
// Options (env): BENCH_SECONDS (default 10 per measurement), BENCH_CONNECTIONS
// (default 16), BENCH_RATES (default 50,200,1000 req/s), BENCH_ROUNDS (default 3
// alternating rounds of the overload guard on/off and the mirroring on/off
// comparisons; 0 skips them), BENCH_FIXED_RATE (default 1000 req/s: the fixed
// rate at which the shadow and drift comparisons also measure the server CPU per
// request, the same load for both variants), BENCH_ONLY=shadow (only the mirroring comparison,
// without the original's environment), BENCH_ONLY=payload-log (only payload
// logging at 100 % vs off) and BENCH_ONLY=drift (only drift monitoring on vs
// off), likewise.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildScorer, scorerEnv, scorerMain, transpileFile } from './compiled';
import { readWrkLine } from './wrk-line';
import { median, openLoop, sleep, type Measure, type Target } from '../support/load';
import { freePort } from '../../test/support/net';

const ROOT = resolve(__dirname, '../..');
const ARTIFACTS = process.env.FNOL_ARTIFACTS ?? resolve(ROOT, '../shared/fnol');
const ORIGINAL = join(ARTIFACTS, 'original');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const RATES = (process.env.BENCH_RATES ?? '50,200,1000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 1000);
/** Pause between a scorer's warm-up and its measures. */
const SETTLE_MS = 1000;
/**
 * Pause after a pair of scorers is ready: the one started last is still busy
 * for a while (V8 compiling and collecting after start-up) on the core both
 * share, which slowed the first one measured. Even with it, the one measured
 * first in a round measured a little lower on a busy machine: use an even
 * BENCH_ROUNDS for the pair comparisons, so each variant goes first as often.
 */
const STARTED_MS = 3000;
const MODEL = join(ROOT, 'build/model/fnol-1.0.0.onnx');

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

interface Service {
  name: string;
  url: string;
  child: ChildProcess;
  pid: number;
}

async function waitFor(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 900; i++) {
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

const stop = async (service: Service) => {
  if (service.child.exitCode !== null) return;
  service.child.kill('SIGTERM');
  await new Promise((done) => service.child.once('exit', done));
};

/**
 * Moves this process (every thread: it is the open-loop load generator) to
 * `cpus` (taskset -a -p), when set; `undefined` gives it every CPU back.
 */
function pinSelf(set: string | undefined): void {
  const n = cpus().length;
  if (n < 2) return;
  spawnSync('taskset', ['-a', '-cp', set ?? `0-${n - 1}`, String(process.pid)], { stdio: 'ignore' });
}

/** Runs `command` on the given CPUs (taskset) when `cpus` is set. */
function pinned(cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]];
}

interface ScorerOptions {
  /** Name in the tables (default: scorer, or "scorer, guard off"). */
  name?: string;
  /** CPUs the process may run on (taskset -c). */
  cpus?: string;
  /** More environment (SHADOW_*). */
  env?: Record<string, string>;
}

/** The scorer and the bare Node server as they ship: compiled, run by node (compiled.ts). */
const SCORER_MAIN = scorerMain(ROOT);
const CEILING_MAIN = join(ROOT, 'dist/bench/scorer/ceiling.js');

function buildCompiled(): void {
  process.stderr.write('building the scorer (tsc -p scorer/tsconfig.build.json) ...\n');
  buildScorer(ROOT);
  transpileFile(join(ROOT, 'bench/scorer/ceiling.ts'), CEILING_MAIN);
}

async function startScorer(port: number, guard: boolean, options: ScorerOptions = {}): Promise<Service> {
  // taskset execs the command: the child's pid is the scorer's.
  const [command, args] = pinned(options.cpus, process.execPath, [SCORER_MAIN]);
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...scorerEnv(MODEL, port), OVERLOAD_GUARD: guard ? 'on' : 'off', ...options.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`, child, 'scorer');
  const name = options.name ?? (guard ? 'scorer' : 'scorer, guard off');
  return { name, url, child, pid: child.pid as number };
}

/** The bare Node server, started the way the scorer is (one process, compiled, plain node). */
async function startCeiling(port: number): Promise<Service> {
  const child = spawn(process.execPath, [CEILING_MAIN], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(url, child, 'bare Node server');
  return { name: 'bare Node (ceiling)', url, child, pid: child.pid as number };
}

/**
 * The original score.py, unchanged, under azmlinfsrv. Outside Azure ML two things
 * are supplied (shared/fnol/original/README.md): a stand-in azureml.core.model
 * (bench/scorer/baseline/azureml) resolving model names to files in a folder, and
 * that folder: links to the delivered files, the large-loss model under the name
 * score.py asks for. Nothing is copied.
 */
async function startOriginal(port: number, modelDir: string): Promise<Service> {
  const links: Record<string, string> = {
    'fnol_attritional_model.cbm': join(ARTIFACTS, 'fnol_attritional_model.cbm'),
    'fnol_large_claim_propensity_model.cbm': join(ARTIFACTS, 'fnol_large_model.cbm'),
    'large_severity.json': join(ORIGINAL, 'large_severity.json'),
    'model_meta_data.json': join(ORIGINAL, 'model_meta_data.json'),
  };
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(modelDir, name));
  const child = spawn(
    join(ROOT, 'bench/scorer/.venv/bin/azmlinfsrv'),
    ['--entry_script', join(ORIGINAL, 'score.py'), '--model_dir', modelDir, '--port', String(port)],
    {
      cwd: modelDir,
      env: {
        ...process.env,
        PYTHONPATH: join(ROOT, 'bench/scorer/baseline'),
        AZUREML_MODEL_DIR: modelDir,
      },
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/`, child, 'original score.py (azmlinfsrv)');
  return { name: 'original score.py', url, child, pid: child.pid as number };
}

/** A process and its descendants (the gunicorn workers of the original). */
function processTree(pid: number): number[] {
  const ps = spawnSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  const rows = ps.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const tree = new Set([pid]);
  let grown = true;
  while (grown) {
    grown = false;
    for (const [p, pp] of rows) if (tree.has(pp) && !tree.has(p)) grown = tree.add(p) !== undefined;
  }
  return [...tree];
}

/** CPU time used so far by every thread of the process tree, in ms (schedstat: ns). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const p of processTree(pid)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // exited meanwhile
    }
    for (const t of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${p}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // exited meanwhile
      }
    }
  }
  return ns / 1e6;
}

function rssMiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kib / 1024;
}

interface WrkResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** Answers that were not 200 with a result, and socket errors (connect, read, write, timeout). */
  errors: number;
  /** Server CPU ms per request over the measurement. */
  cpuPerRequest: number;
  /** Server CPU time over the measurement's wall time: near 1 (one core) when the server is the bottleneck. */
  busy: number;
}

const bodyFiles = new Map<string, string>();
let bodyDir = '';

/**
 * wrk for `seconds` at `connections` on `body`; server CPU per request measured
 * around it. `cpus`: the CPUs wrk runs on (taskset -c), when set.
 */
async function wrk(
  service: Service,
  body: string,
  connections: number,
  seconds = SECONDS,
  cpus?: string,
): Promise<WrkResult> {
  let file = bodyFiles.get(body);
  if (file === undefined) {
    file = join(bodyDir, `body-${bodyFiles.size}.json`);
    writeFileSync(file, body);
    bodyFiles.set(body, file);
  }
  const threads = Math.min(2, connections);
  const cpu0 = cpuMs(service.pid);
  const out = await new Promise<string>((done, fail) => {
    const [command, args] = pinned(cpus, 'wrk', [
      `-t${threads}`,
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '30s',
      '-s',
      join(ROOT, 'bench/scorer/post.lua'),
      service.url,
    ]);
    const child = spawn(command, args, {
      env: { ...process.env, WRK_BODY: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', fail);
    // 'close', not 'exit': the output may still be in the pipe when the process exits.
    child.on('close', (code) => (code === 0 ? done(text) : fail(new Error(`wrk exited ${code}: ${text}`))));
  });
  const cpu = cpuMs(service.pid) - cpu0;
  const r = readWrkLine(out);
  const n = r.requests;
  return {
    requests: n,
    rps: (n - r.bad) / r.seconds,
    p50: r.p50,
    p99: r.p99,
    errors: r.bad + r.socketErrors,
    cpuPerRequest: n > 0 ? cpu / n : NaN,
    busy: cpu / (r.seconds * 1000),
  };
}

/**
 * Served: 200 with a result. The original answers errors with 200 too, and its
 * answer is the JSON string score.py returns, encoded once more by azmlinfsrv
 * ("{\"result\": [...]}"), as Azure ML answered; post.lua checks the same.
 */
const served = (status: number, text: string) => status === 200 && text.slice(0, 16).includes('result');

/** Fixed-rate open loop; server CPU per request measured around it. */
async function smooth(
  service: Service,
  body: string,
  rate: number,
  seconds = SECONDS,
): Promise<Measure & { cpuPerRequest: number }> {
  const target: Target = { urls: [service.url], accept: served };
  const cpu0 = cpuMs(service.pid);
  const m = await openLoop(target, body, rate, seconds);
  const cpu = cpuMs(service.pid) - cpu0;
  return { ...m, cpuPerRequest: cpu / (m.count + m.errors) };
}

async function predict(url: string, rows: unknown[][]): Promise<number[]> {
  const res = await fetch(`${url}/score`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: rows }),
  });
  let body = (await res.json()) as unknown;
  if (typeof body === 'string') body = JSON.parse(body); // the original's JSON string
  const answer = body as { result?: number[]; error?: string };
  if (!answer.result) throw new Error(`${url}: ${JSON.stringify(answer).slice(0, 300)}`);
  return answer.result;
}

/** One CSV line into fields (RFC 4180 quotes). */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let value = '';
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else value += line[i++];
      }
      fields.push(value);
      i++; // the comma
    } else {
      const end = line.indexOf(',', i);
      const stop = end === -1 ? line.length : end;
      fields.push(line.slice(i, stop));
      i = stop + 1;
    }
  }
  return fields;
}

/**
 * The first `n` claims of the training CSV as positional rows (the 37 features
 * in model order, cleaned as for training: a missing or N/A weather is N/K, a
 * `#` at-fault is n/k), as both services take them.
 */
/** The model's feature names, in feature_order. */
function featureNames(): string[] {
  return (
    JSON.parse(readFileSync(join(ORIGINAL, 'model_meta_data.json'), 'utf8')) as { feature_names: string[] }
  ).feature_names;
}

function csvRows(n: number): unknown[][] {
  const meta = JSON.parse(readFileSync(join(ORIGINAL, 'model_meta_data.json'), 'utf8')) as {
    feature_names: string[];
    cat_features: string[];
  };
  const lines = readFileSync(join(ARTIFACTS, 'Data_Scientist_Interview_Task.csv'), 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.length > 0);
  const header = csvFields(lines[0] as string);
  const at = meta.feature_names.map((name) => header.indexOf(name));
  return lines.slice(1, n + 1).map((line) => {
    const fields = csvFields(line);
    return meta.feature_names.map((name, f) => {
      const raw = fields[at[f] as number] ?? '';
      if (!meta.cat_features.includes(name)) return Number(raw);
      if (name === 'Weather_conditions' && (raw === '' || raw === 'N/A')) return 'N/K';
      if (name === 'PH_considered_TP_at_fault' && raw === '#') return 'n/k';
      return raw;
    });
  });
}

/**
 * The scorer with and without its overload guard, in alternating rounds on a
 * fresh pair of processes each (two identical processes differ by up to 10 % on
 * this machine), so a change of the machine's load hits both alike.
 */
async function compareGuard(single: string, batch1000: string): Promise<Record<string, number>> {
  const seconds = Math.max(2, Math.round(SECONDS / 2));
  process.stderr.write(`guard on vs off: ${ROUNDS} alternating rounds of ${seconds} s per measure ...\n`);
  const runs = {
    on: { single: [] as number[], batch: [] as number[] },
    off: { single: [] as number[], batch: [] as number[] },
  };
  for (let round = 0; round < ROUNDS; round++) {
    const first = round % 2 === 0;
    const pair = [await startScorer(await freePort(), first), await startScorer(await freePort(), !first)];
    try {
      for (const service of pair) await wrk(service, single, CONNECTIONS, 1); // warm-up
      for (const service of pair) {
        const r = service.name === 'scorer' ? runs.on : runs.off;
        r.single.push((await wrk(service, single, CONNECTIONS, seconds)).rps);
        r.batch.push((await wrk(service, batch1000, 1, seconds)).rps * 1000);
      }
    } finally {
      for (const service of pair) await stop(service);
    }
  }
  const row = (values: number[]) =>
    `${median(values).toFixed(0)} (${values.map((v) => v.toFixed(0)).join(', ')})`;
  console.log(
    `\noverload guard on vs off (wrk), ${ROUNDS} alternating rounds of ${seconds} s, a fresh pair of processes each, median (each round):\n`,
  );
  console.log('| measure | guard on | guard off | on / off |');
  console.log('| --- | --- | --- | --- |');
  const single1 = median(runs.on.single) / median(runs.off.single);
  const batch1 = median(runs.on.batch) / median(runs.off.batch);
  console.log(
    `| single: req/s (${CONNECTIONS} conn) | ${row(runs.on.single)} | ${row(runs.off.single)} | ${(single1 * 100).toFixed(1)} % |`,
  );
  console.log(
    `| batch 1000: records/s (1 conn) | ${row(runs.on.batch)} | ${row(runs.off.batch)} | ${(batch1 * 100).toFixed(1)} % |`,
  );
  return { 'single-record throughput': single1, 'batch-1000 throughput': batch1 };
}

interface ShadowFigures {
  sampled: number;
  compared: number;
  dropped: number;
  candidateErrors: number;
}

/** GET /shadow once every copy taken has an outcome (the queue is empty). */
async function shadowSettled(url: string): Promise<ShadowFigures> {
  for (;;) {
    const s = (await (await fetch(`${url}/shadow`)).json()) as ShadowFigures;
    if (s.compared + s.candidateErrors + s.dropped >= s.sampled) return s;
    await sleep(100);
  }
}

/**
 * What mirroring costs the stable scorer: the same scorer without mirroring and
 * with SHADOW_PERCENT=100 to a candidate (a second real scorer, the same model
 * file), in alternating rounds on a fresh pair each. On 2 cores or more the
 * stable scorers run on CPU 0 and the candidate and wrk on the others (taskset),
 * so the figure is the stable pod's own overhead, not the candidate's work
 * taking the stable scorer's core. The candidate and wrk share their core, so
 * wrk may be what limits the mirrored run: the table says how busy the stable
 * scorer was (its CPU time over the wall time; near 100 % when it is the
 * bottleneck), and the stable scorer's CPU per request at one fixed rate
 * (BENCH_FIXED_RATE, open loop, the same load for both) gives its capacity
 * whatever limits the load generator.
 */
async function compareShadow(
  single: string,
  singleRecords: string,
  batch1000: string,
): Promise<{ ratios: Record<string, number>; capacity: Record<string, number> }> {
  // Rounds of BENCH_SECONDS (halved, rounds were 2-4x apart); the fixed-rate CPU figure is steady in half.
  const seconds = Math.max(2, SECONDS);
  const fixedSeconds = Math.max(2, Math.round(SECONDS / 2));
  const n = cpus().length;
  const stableCpus = n >= 2 ? '0' : undefined;
  const otherCpus = n >= 2 ? (n === 2 ? '1' : `1-${n - 1}`) : undefined;
  const placement =
    stableCpus === undefined
      ? 'one core: not pinned, the candidate and wrk share it with the stable scorer'
      : `stable scorer on CPU ${stableCpus}, candidate and wrk on CPU ${otherCpus} (taskset)`;
  process.stderr.write(
    `mirroring off vs 100 %: ${ROUNDS} alternating rounds of ${seconds} s; ${placement} ...\n`,
  );
  const candidate = await startScorer(18450, true, { name: 'candidate', cpus: otherCpus });
  // wrk before the candidate on the CPU they share (every thread at nice 19): in a cluster
  // the candidate has pods of its own, and a wrk slowed by it would feed the mirroring
  // scorer fewer requests per merged run than the other, a cost that is not mirroring's.
  if (otherCpus !== undefined) {
    const threads = readdirSync(`/proc/${candidate.pid}/task`);
    spawnSync('renice', ['-n', '19', '-p', ...threads], { stdio: 'ignore' });
  }
  const variant = () => ({
    single: [] as number[],
    records: [] as number[],
    batch: [] as number[],
    busy: [[], [], []] as number[][],
    cpu: [[], [], []] as number[][],
    fixed: [[], []] as number[][],
  });
  const runs = { off: variant(), on: variant() };
  const copies: ShadowFigures = { sampled: 0, compared: 0, dropped: 0, candidateErrors: 0 };
  // Time the hypervisor gave the VM's CPUs to others (steal, /proc/stat): rounds taken
  // while it is high differ 2x whatever is measured.
  const cpuTimes = () =>
    readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d+ /.test(l))
      .map((l) => l.trim().split(/\s+/).slice(1).map(Number));
  const stealBefore = cpuTimes();
  // The open-loop generator (this process) beside wrk and the candidate, off the stable's core.
  pinSelf(otherCpus);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const plain = () => startScorer(18451, true, { name: 'without mirroring', cpus: stableCpus });
      const mirroring = () =>
        startScorer(18452, true, {
          name: 'mirroring',
          cpus: stableCpus,
          env: { SHADOW_URL: candidate.url, SHADOW_PERCENT: '100', SHADOW_VERSION: '1.0.0' },
        });
      const pair = round % 2 === 0 ? [await plain(), await mirroring()] : [await mirroring(), await plain()];
      try {
        await sleep(STARTED_MS);
        for (const service of pair) {
          // Each warmed up right before its own measures, then a pause: both scorers share
          // CPU 0, and the work V8 goes on doing after a warm-up (compiling, collecting)
          // would otherwise fall on the other scorer's first measure (see compareDrift).
          await wrk(service, single, CONNECTIONS, 1, otherCpus);
          await wrk(service, singleRecords, CONNECTIONS, 1, otherCpus);
          await wrk(service, batch1000, 1, 1, otherCpus);
          if (service.name === 'mirroring') await shadowSettled(service.url);
          await sleep(SETTLE_MS);
          const on = service.name === 'mirroring';
          const before = on ? await shadowSettled(service.url) : undefined;
          const r = on ? runs.on : runs.off;
          const measured = [
            await wrk(service, single, CONNECTIONS, seconds, otherCpus),
            await wrk(service, singleRecords, CONNECTIONS, seconds, otherCpus),
            await wrk(service, batch1000, 1, seconds, otherCpus),
          ] as const;
          r.single.push(measured[0].rps);
          r.records.push(measured[1].rps);
          r.batch.push(measured[2].rps * 1000);
          measured.forEach((m, i) => {
            r.busy[i]?.push(m.busy);
            r.cpu[i]?.push(m.cpuPerRequest);
          });
          for (const [i, body] of [single, singleRecords].entries()) {
            r.fixed[i]?.push((await smooth(service, body, FIXED_RATE, fixedSeconds)).cpuPerRequest);
          }
          if (before !== undefined) {
            const after = await shadowSettled(service.url);
            for (const key of Object.keys(copies) as (keyof ShadowFigures)[]) {
              copies[key] += after[key] - before[key];
            }
          }
        }
      } finally {
        for (const service of pair) await stop(service);
      }
    }
  } finally {
    pinSelf(undefined);
    await stop(candidate);
  }
  const row = (values: number[]) =>
    `${median(values).toFixed(0)} (${values.map((v) => v.toFixed(0)).join(', ')})`;
  const rowOf = (values: number[], digits: number, scale = 1) =>
    `${(median(values) * scale).toFixed(digits)} (${values.map((v) => (v * scale).toFixed(digits)).join(', ')})`;
  console.log(
    `\nshadow mirroring off vs SHADOW_PERCENT=100 (wrk), ${ROUNDS} alternating rounds of ${seconds} s (fixed rate ${fixedSeconds} s), a fresh pair of processes each, median (each round); ${placement}${otherCpus === undefined ? '' : ', the candidate at nice 19'}; load average ${load()}:\n`,
  );
  console.log('| measure | without mirroring | mirroring 100 % | with / without |');
  console.log('| --- | --- | --- | --- |');
  const single1 = median(runs.on.single) / median(runs.off.single);
  const records1 = median(runs.on.records) / median(runs.off.records);
  const batch1 = median(runs.on.batch) / median(runs.off.batch);
  console.log(
    `| single, "data": req/s (${CONNECTIONS} conn) | ${row(runs.off.single)} | ${row(runs.on.single)} | ${(single1 * 100).toFixed(1)} % |`,
  );
  console.log(
    `| single, "records": req/s (${CONNECTIONS} conn) | ${row(runs.off.records)} | ${row(runs.on.records)} | ${(records1 * 100).toFixed(1)} % |`,
  );
  console.log(
    `| batch 1000: records/s (1 conn) | ${row(runs.off.batch)} | ${row(runs.on.batch)} | ${(batch1 * 100).toFixed(1)} % |`,
  );
  // How busy the stable scorer was under wrk, and its CPU per request: near 100 % busy, the
  // throughput rows measure the stable scorer; well below, they measure what fed it.
  const labels = ['single, "data"', 'single, "records"', 'batch 1000'];
  labels.forEach((label, i) => {
    const off = runs.off;
    const on = runs.on;
    console.log(
      `| ${label}: stable busy under wrk, % of a core | ${rowOf(off.busy[i] as number[], 0, 100)} | ${rowOf(on.busy[i] as number[], 0, 100)} | |`,
    );
    console.log(
      `| ${label}: stable CPU ms / request under wrk | ${rowOf(off.cpu[i] as number[], 3)} | ${rowOf(on.cpu[i] as number[], 3)} | ${((median(on.cpu[i] as number[]) / median(off.cpu[i] as number[])) * 100).toFixed(1)} % |`,
    );
  });
  const capacity: Record<string, number> = {};
  labels.slice(0, 2).forEach((label, i) => {
    const off = median(runs.off.fixed[i] as number[]);
    const on = median(runs.on.fixed[i] as number[]);
    // Capacity of the stable core from its CPU per request at the same load: off / on.
    capacity[`${label} capacity from CPU per request at ${FIXED_RATE} req/s`] = off / on;
    console.log(
      `| ${label}: stable CPU ms / request at ${FIXED_RATE} req/s (open loop) | ${rowOf(runs.off.fixed[i] as number[], 3)} | ${rowOf(runs.on.fixed[i] as number[], 3)} | ${((on / off) * 100).toFixed(1)} % |`,
    );
  });
  const steal = cpuTimes()
    .map((now, c) => {
      const d = now.map((v, i) => v - (stealBefore[c]?.[i] ?? 0));
      const total = d.reduce((a, b) => a + b, 0);
      return `CPU ${c} ${((100 * (d[7] ?? 0)) / Math.max(1, total)).toFixed(0)} %`;
    })
    .join(', ');
  console.log(`\nsteal time during the comparison (the hypervisor's, /proc/stat): ${steal}`);
  const share = (k: number) => `${((100 * k) / Math.max(1, copies.sampled)).toFixed(1)} %`;
  console.log(
    `\ncopies during the mirrored measurements: ${copies.sampled} taken, ${copies.compared} compared (${share(copies.compared)}), ${copies.dropped} dropped (${share(copies.dropped)}), ${copies.candidateErrors} candidate errors`,
  );
  if (copies.dropped + copies.candidateErrors > copies.sampled / 100) {
    console.log(
      'over 1 % of the copies were dropped or failed: the mirrored rows measure less than 100 % mirroring (a candidate short of CPU); do not read them as its cost',
    );
  }
  return {
    ratios: {
      'single-record throughput ("data")': single1,
      'single-record throughput ("records")': records1,
      'batch-1000 throughput': batch1,
    },
    capacity,
  };
}

/**
 * What drift monitoring costs: the scorer with DRIFT=on (the default: every
 * input and output binned into the window) and DRIFT=off, in alternating rounds
 * on a fresh pair of processes each, like the guard comparison. /metrics is read
 * every second during each measure, as Prometheus would, so the PSI is computed too.
 * On 2 cores or more the scorer runs on CPU 0 and wrk (and this process, the
 * open-loop generator) on the others, so the load generator does not take the
 * scorer's core; every body is warmed up before it is measured, and the CPU per
 * request is also measured at one fixed rate (BENCH_FIXED_RATE, open loop), the
 * same load for both variants, so the merging of concurrent requests into one
 * run (which lowers the CPU per request as the load grows) is alike too.
 */
async function compareDrift(
  single: string,
  singleRecords: string,
  batch1000: string,
): Promise<{ ratios: Record<string, number>; cpu: Record<string, number> }> {
  const seconds = Math.max(2, Math.round(SECONDS / 2));
  const n = cpus().length;
  const scorerCpus = n >= 2 ? '0' : undefined;
  const wrkCpus = n >= 2 ? (n === 2 ? '1' : `1-${n - 1}`) : undefined;
  const placement =
    scorerCpus === undefined ? 'one core, not pinned' : `scorer on CPU ${scorerCpus}, wrk on CPU ${wrkCpus}`;
  process.stderr.write(
    `drift on vs off: ${ROUNDS} alternating rounds of ${seconds} s per measure; ${placement} ...\n`,
  );
  const measures = [
    ['single, "data"', single, CONNECTIONS, 1],
    ['single, "records"', singleRecords, CONNECTIONS, 1],
    ['batch 1000', batch1000, 1, 1000],
  ] as const;
  const runs = {
    on: measures.map(() => ({ rate: [] as number[], p99: [] as number[], cpu: [] as number[] })),
    off: measures.map(() => ({ rate: [] as number[], p99: [] as number[], cpu: [] as number[] })),
  };
  // Server CPU per request at FIXED_RATE, single records in both forms.
  const fixed = { on: [[], []] as number[][], off: [[], []] as number[][] };
  const loadBefore = load();
  pinSelf(wrkCpus);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Free ports: fixed ones may be taken by other benchmarks or tests on a shared machine.
      const start = async (on: boolean) =>
        startScorer(await freePort(), true, {
          name: on ? 'drift on' : 'drift off',
          cpus: scorerCpus,
          env: { DRIFT: on ? 'on' : 'off', DRIFT_UPDATE_SECONDS: '1' },
        });
      const pair =
        round % 2 === 0 ? [await start(true), await start(false)] : [await start(false), await start(true)];
      try {
        await sleep(STARTED_MS);
        for (const service of pair) {
          // Each warmed up right before its own measures, then a pause. Warming both up
          // first measured the first scorer while V8 was still compiling and collecting
          // after the second one's warm-up on the same core: with an odd number of
          // rounds, the variant started first lost a third of its single-record
          // throughput to that, drift on or off.
          for (const [, body, connections] of measures) await wrk(service, body, connections, 1, wrkCpus);
          await sleep(SETTLE_MS);
          const r = service.name === 'drift on' ? runs.on : runs.off;
          let scraping = true;
          const scrapes = (async () => {
            while (scraping) {
              await (await fetch(`${service.url}/metrics`)).text();
              await sleep(1000);
            }
          })();
          try {
            for (const [i, [, body, connections, records]] of measures.entries()) {
              const m = await wrk(service, body, connections, seconds, wrkCpus);
              r[i]?.rate.push(m.rps * records);
              r[i]?.p99.push(m.p99);
              r[i]?.cpu.push(m.cpuPerRequest);
            }
            const f = service.name === 'drift on' ? fixed.on : fixed.off;
            for (const [i, body] of [single, singleRecords].entries()) {
              f[i]?.push((await smooth(service, body, FIXED_RATE, seconds)).cpuPerRequest);
            }
          } finally {
            scraping = false;
            await scrapes;
          }
        }
      } finally {
        for (const service of pair) await stop(service);
      }
    }
  } finally {
    pinSelf(undefined);
  }
  const row = (values: number[], digits: number) =>
    `${median(values).toFixed(digits)} (${values.map((v) => v.toFixed(digits)).join(', ')})`;
  console.log(
    `\ndrift monitoring on vs DRIFT=off (wrk), ${ROUNDS} alternating rounds of ${seconds} s, a fresh pair of processes each, /metrics read every second, median (each round); ${placement}; load average ${loadBefore} before, ${load()} after:\n`,
  );
  console.log('| measure | drift on | drift off | on / off |');
  console.log('| --- | --- | --- | --- |');
  const ratios: Record<string, number> = {};
  const cpu: Record<string, number> = {};
  measures.forEach(([name, , connections, records], i) => {
    const on = runs.on[i] as { rate: number[]; p99: number[]; cpu: number[] };
    const off = runs.off[i] as { rate: number[]; p99: number[]; cpu: number[] };
    const unit = records === 1 ? 'req/s' : 'records/s';
    const ratio = median(on.rate) / median(off.rate);
    ratios[`${name} throughput`] = ratio;
    console.log(
      `| ${name}: ${unit} (${connections} conn) | ${row(on.rate, 0)} | ${row(off.rate, 0)} | ${(ratio * 100).toFixed(1)} % |`,
    );
    console.log(
      `| ${name}: p99 ms | ${row(on.p99, 2)} | ${row(off.p99, 2)} | ${((median(on.p99) / median(off.p99)) * 100).toFixed(1)} % |`,
    );
    // Server CPU per request: what the work costs, much less sensitive to a busy machine than req/s.
    console.log(
      `| ${name}: server CPU ms / request | ${row(on.cpu, 3)} | ${row(off.cpu, 3)} | ${((median(on.cpu) / median(off.cpu)) * 100).toFixed(1)} % |`,
    );
    cpu[`${name} server CPU per request`] = median(on.cpu) / median(off.cpu);
  });
  // The same load for both: the CPU per request that says what the counting costs.
  ['single, "data"', 'single, "records"'].forEach((name, i) => {
    const on = fixed.on[i] as number[];
    const off = fixed.off[i] as number[];
    const ratio = median(on) / median(off);
    console.log(
      `| ${name}: server CPU ms / request at ${FIXED_RATE} req/s (open loop) | ${row(on, 3)} | ${row(off, 3)} | ${(ratio * 100).toFixed(1)} % |`,
    );
    cpu[`${name} server CPU per request at ${FIXED_RATE} req/s`] = ratio;
  });
  return { ratios, cpu };
}

function driftGoals(drift: { ratios: Record<string, number>; cpu: Record<string, number> }): void {
  for (const [what, r] of Object.entries(drift.ratios)) {
    console.log(
      `  ${what} with drift monitoring: cost ${((1 - r) * 100).toFixed(1)} % (goal at most 10 %) ${r >= 0.9 ? 'met' : 'missed'}`,
    );
  }
  for (const [what, r] of Object.entries(drift.cpu)) {
    console.log(`  ${what} with drift monitoring: ${((r - 1) * 100).toFixed(1)} % more (same goal, as CPU)`);
  }
}

function shadowGoals(shadow: { ratios: Record<string, number>; capacity: Record<string, number> }): void {
  for (const [what, r] of Object.entries(shadow.ratios)) {
    console.log(
      `  ${what} while mirroring 100 %: overhead ${((1 - r) * 100).toFixed(1)} % (goal at most 25 %) ${r >= 0.75 ? 'met' : 'missed'}`,
    );
  }
  for (const [what, r] of Object.entries(shadow.capacity)) {
    console.log(
      `  ${what} while mirroring 100 %: overhead ${((1 - r) * 100).toFixed(1)} % (same goal, from the stable scorer's CPU) ${r >= 0.75 ? 'met' : 'missed'}`,
    );
  }
}

/**
 * Payload logging at 100 % (stdout sink, the scorer's stdout is /dev/null here)
 * against logging off, in alternating rounds on a fresh pair of processes each,
 * the scorer on CPU 0 and wrk on the others. The records written and dropped
 * are read from /metrics, so a drop-heavy run cannot pass for a fast one.
 */
async function comparePayloadLog(
  single: string,
  singleRecords: string,
  batch1000: string,
): Promise<Record<string, number>> {
  const seconds = Math.max(2, Math.round(SECONDS / 2));
  const n = cpus().length;
  const scorerCpus = n >= 2 ? '0' : undefined;
  const wrkCpus = n >= 2 ? (n === 2 ? '1' : `1-${n - 1}`) : undefined;
  const runs = {
    off: { single: [] as number[], records: [] as number[], batch: [] as number[] },
    on: { single: [] as number[], records: [] as number[], batch: [] as number[] },
  };
  const logged = { written: 0, dropped: 0, bytes: 0 };
  const counter = (text: string, name: string) =>
    [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce(
      (a, m) => a + Number(m[1]),
      0,
    );
  for (let round = 0; round < ROUNDS; round++) {
    const plain = async () =>
      startScorer(await freePort(), true, { name: 'without logging', cpus: scorerCpus });
    const logging = async () =>
      startScorer(await freePort(), true, {
        name: 'logging',
        cpus: scorerCpus,
        env: { PAYLOAD_LOG_SAMPLE_RATE: '1', PAYLOAD_LOG_SINK: 'stdout', PAYLOAD_LOG_FLUSH_MS: '200' },
      });
    const pair = round % 2 === 0 ? [await plain(), await logging()] : [await logging(), await plain()];
    try {
      for (const service of pair) await wrk(service, single, CONNECTIONS, 1, wrkCpus); // warm-up
      for (const service of pair) {
        const r = service.name === 'logging' ? runs.on : runs.off;
        r.single.push((await wrk(service, single, CONNECTIONS, seconds, wrkCpus)).rps);
        r.records.push((await wrk(service, singleRecords, CONNECTIONS, seconds, wrkCpus)).rps);
        r.batch.push((await wrk(service, batch1000, 1, seconds, wrkCpus)).rps * 1000);
        if (service.name === 'logging') {
          await sleep(500); // the last flush
          const text = await (await fetch(`${service.url}/metrics`)).text();
          logged.written += counter(text, 'scorer_payload_log_written_total');
          logged.dropped += counter(text, 'scorer_payload_log_dropped_total');
          logged.bytes += counter(text, 'scorer_payload_log_bytes_total');
        }
      }
    } finally {
      for (const service of pair) await stop(service);
    }
  }
  const row = (values: number[]) =>
    `${median(values).toFixed(0)} (${values.map((v) => v.toFixed(0)).join(', ')})`;
  console.log(
    `\npayload logging off vs PAYLOAD_LOG_SAMPLE_RATE=1, stdout sink to /dev/null (wrk), ${ROUNDS} alternating rounds of ${seconds} s, a fresh pair of processes each, median (each round); ${scorerCpus === undefined ? 'one core, not pinned' : `scorer on CPU ${scorerCpus}, wrk on CPU ${wrkCpus} (taskset)`}; load average ${load()}:\n`,
  );
  console.log('| measure | without logging | logging 100 % | with / without |');
  console.log('| --- | --- | --- | --- |');
  const ratio = {
    'single-record throughput ("data")': median(runs.on.single) / median(runs.off.single),
    'single-record throughput ("records")': median(runs.on.records) / median(runs.off.records),
    'batch-1000 throughput': median(runs.on.batch) / median(runs.off.batch),
  };
  const [a, b, c] = Object.values(ratio) as [number, number, number];
  console.log(
    `| single, "data": req/s (${CONNECTIONS} conn) | ${row(runs.off.single)} | ${row(runs.on.single)} | ${(a * 100).toFixed(1)} % |`,
  );
  console.log(
    `| single, "records": req/s (${CONNECTIONS} conn) | ${row(runs.off.records)} | ${row(runs.on.records)} | ${(b * 100).toFixed(1)} % |`,
  );
  console.log(
    `| batch 1000: records/s (1 conn) | ${row(runs.off.batch)} | ${row(runs.on.batch)} | ${(c * 100).toFixed(1)} % |`,
  );
  const total = logged.written + logged.dropped;
  console.log(
    `\nlogged requests (warm-up included): ${logged.written} written (${(logged.bytes / 1024 / 1024).toFixed(1)} MiB), ${logged.dropped} dropped (${((100 * logged.dropped) / Math.max(1, total)).toFixed(1)} %)`,
  );
  return ratio;
}

function payloadLogGoals(ratios: Record<string, number>): void {
  for (const [what, r] of Object.entries(ratios)) {
    console.log(
      `  ${what} while logging 100 %: overhead ${((1 - r) * 100).toFixed(1)} % (goal at most 20 %) ${r >= 0.8 ? 'met' : 'missed'}`,
    );
  }
}

async function main(): Promise<void> {
  const smoke = [Array.from({ length: 37 }, (_, i) => i + 1), Array.from({ length: 37 }, (_, i) => 37 - i)];
  const rows = [...smoke, ...csvRows(998)];
  const single = JSON.stringify({ data: [rows[2]] });
  const names = featureNames();
  const singleRecords = JSON.stringify({
    records: [Object.fromEntries(names.map((name, f) => [name, (rows[2] as unknown[])[f]]))],
  });
  const batch1000 = JSON.stringify({ data: rows });
  buildCompiled();
  bodyDir = mkdtempSync(join(tmpdir(), 'bench-scorer-'));
  // BENCH_ONLY=shadow|drift|payload-log: one comparison of the scorer against itself, and its goals.
  const only: Record<string, () => Promise<() => void>> = {
    shadow: async () => {
      const r = await compareShadow(single, singleRecords, batch1000);
      return () => shadowGoals(r);
    },
    drift: async () => {
      const r = await compareDrift(single, singleRecords, batch1000);
      return () => driftGoals(r);
    },
    'payload-log': async () => {
      const r = await comparePayloadLog(single, singleRecords, batch1000);
      return () => payloadLogGoals(r);
    },
  };
  const comparison = process.env.BENCH_ONLY === undefined ? undefined : only[process.env.BENCH_ONLY];
  if (comparison !== undefined) {
    try {
      const goals = await comparison();
      console.log(`\nload average at the end ${load()}\n\ngoals (same run):`);
      goals();
    } finally {
      rmSync(bodyDir, { recursive: true, force: true });
    }
    return;
  }
  const modelDir = mkdtempSync(join(tmpdir(), 'bench-scorer-models-'));

  const services: Service[] = [];
  try {
    services.push(await startOriginal(await freePort(), modelDir));
    services.push(await startScorer(await freePort(), true));
    services.push(await startCeiling(await freePort()));
    const [original, scorer, ceiling] = services as [Service, Service, Service];

    // Parity on 1,000 rows before any timing.
    const [theirs, ours] = await Promise.all([predict(original.url, rows), predict(scorer.url, rows)]);
    let worst = 0;
    let mismatches = 0;
    theirs.forEach((b, i) => {
      const a = ours[i] as number;
      const err = Math.abs(a - b) / Math.max(1, Math.abs(b));
      worst = Math.max(worst, err);
      if (!(err <= 1e-4)) mismatches++;
    });
    console.log(
      `parity with the original on ${rows.length} rows (2 smoke rows + 998 CSV rows): max |a-b|/max(1,|b|) = ${worst.toExponential(2)}, ${mismatches} over 1e-4`,
    );

    const loadBefore = load();
    const results = new Map<string, { single: WrkResult; batch: WrkResult; rss: number }>();
    for (const service of services) {
      process.stderr.write(`measuring ${service.name} with wrk ...\n`);
      await wrk(service, single, CONNECTIONS, 2); // warm-up
      const s = await wrk(service, single, CONNECTIONS);
      await wrk(service, batch1000, 1, 2); // warm-up
      const b = await wrk(service, batch1000, 1);
      results.set(service.name, { single: s, batch: b, rss: rssMiB(service.pid) });
    }
    const loadAfter = load();
    const of = (name: string) => results.get(name) as { single: WrkResult; batch: WrkResult; rss: number };
    const o = of(original.name);
    const c = of(ceiling.name);
    console.log(
      `\nwrk, ${cpus().length} cores, the scorer and bare Node as compiled JavaScript run by node (node dist/scorer/src/main.js, as in the image), load average ${loadBefore} before and ${loadAfter} after, ${SECONDS} s per measurement, loopback; single records on ${CONNECTIONS} connections, batches of 1,000 on 1 connection\n`,
    );
    console.log(
      '| service | request | req/s | records/s | p50 / p99 ms | × original | × bare Node | server CPU ms / request | errors |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const service of services) {
      const r = of(service.name);
      for (const [label, m, rows1, base, top] of [
        ['single record', r.single, 1, o.single, c.single],
        ['batch of 1,000', r.batch, 1000, o.batch, c.batch],
      ] as const) {
        console.log(
          `| ${service.name} | ${label} | ${m.rps.toFixed(0)} | ${(m.rps * rows1).toFixed(0)} | ${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} | ${(m.rps / base.rps).toFixed(2)} | ${(m.rps / top.rps).toFixed(2)} | ${m.cpuPerRequest.toFixed(3)} | ${m.errors} |`,
        );
      }
    }
    console.log(
      `\nresident memory after load, MiB: ${services.map((s) => `${s.name} ${of(s.name).rss.toFixed(0)}`).join(', ')}`,
    );

    // Server CPU per request at smooth rates (the capacity model's figure).
    const smoothLoad = load();
    const smoothRows: string[] = [];
    for (const rate of RATES) {
      const cells: string[] = [];
      for (const service of services) {
        // The original serves one request at a time: past its capacity a fixed
        // rate only builds a queue.
        if (service === original && rate > 0.7 * o.single.rps) {
          cells.push('over its capacity');
          continue;
        }
        process.stderr.write(`${service.name} at ${rate} req/s ...\n`);
        const m = await smooth(service, single, rate);
        cells.push(
          `${m.cpuPerRequest.toFixed(3)} ms; ${m.rps.toFixed(0)} req/s, p50 / p99 ${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} ms${m.errors ? `, ${m.errors} errors` : ''}`,
        );
      }
      smoothRows.push(`| ${rate} | ${cells.join(' | ')} |`);
    }
    console.log(
      `\nserver CPU per single-record request at a fixed rate (open loop, ${SECONDS} s each; load average ${smoothLoad} before, ${load()} after):\n`,
    );
    console.log(`| req/s | ${services.map((s) => s.name).join(' | ')} |`);
    console.log(`| --- | ${services.map(() => '---').join(' | ')} |`);
    for (const line of smoothRows) console.log(line);

    for (const service of services.splice(0)) await stop(service);
    const guard = ROUNDS > 0 ? await compareGuard(single, batch1000) : {};
    const shadow =
      ROUNDS > 0 ? await compareShadow(single, singleRecords, batch1000) : { ratios: {}, capacity: {} };
    const payloadLog = ROUNDS > 0 ? await comparePayloadLog(single, singleRecords, batch1000) : {};
    const drift = ROUNDS > 0 ? await compareDrift(single, singleRecords, batch1000) : { ratios: {}, cpu: {} };

    const s = of('scorer');
    const goal = (what: string, value: number, want: number) =>
      console.log(`  ${what}: ${value.toFixed(2)}x (goal ${want}x) ${value >= want ? 'met' : 'missed'}`);
    console.log(`\nload average at the end ${load()}\n\ngoals (scorer, same run):`);
    goal('single-record throughput vs the original', s.single.rps / o.single.rps, 20);
    goal('single-record throughput vs bare Node', s.single.rps / c.single.rps, 0.7);
    goal('batch of 1,000 records/s vs the original', s.batch.rps / o.batch.rps, 2);
    console.log(
      `  predictions within 1e-4 relative of the original: ${mismatches === 0 ? 'met' : `missed (${mismatches} rows)`}`,
    );
    for (const [what, r] of Object.entries(guard)) {
      console.log(
        `  ${what} with the overload guard within 5 % of without: ${(r * 100).toFixed(1)} % ${r >= 0.95 ? 'met' : 'missed'}`,
      );
    }
    shadowGoals(shadow);
    payloadLogGoals(payloadLog);
    driftGoals(drift);
  } finally {
    for (const service of services) await stop(service);
    rmSync(bodyDir, { recursive: true, force: true });
    rmSync(modelDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench:scorer failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

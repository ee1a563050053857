// A/B of two builds of the scorer on single records: server CPU time and bytes
// allocated per request, in alternating rounds on a fresh pair of processes each.
//
//   npx tsx bench/scorer/ab.ts DIR_A DIR_B
//
// DIR_A and DIR_B are checkouts of this repository (e.g. `git worktree add
// /tmp/scorer-old COMMIT` with node_modules linked in by `cp -al`); each is built
// as it ships (compiled.ts) and run by node with the same model (this checkout's
// build/model/fnol-1.0.0.onnx, or AB_MODEL), the same settings and the body of
// one claim. On 2 cores or more every scorer runs on CPU 0 and wrk on CPU 1
// (taskset), 16 connections (AB_CONNECTIONS), AB_ROUNDS rounds (6) of
// AB_SECONDS (5) each after a 2 s warm-up; the variant measured first alternates.
//
// Figures per request:
// - CPU: every thread of the scorer, from /proc/PID/task/*/schedstat (ns). Under
//   a closed loop it also depends on how many requests each model run merged,
//   which moves with the throughput: compare medians of several rounds.
// - allocated: the bytes V8 allocated on the scorer's heap (--trace-gc: the heap
//   before each collection less after the previous one), which other work on
//   the machine does not inflate.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../test/support/net';
import { buildScorer, scorerEnv } from './compiled';
import { readWrkLine } from './wrk-line';
import { median } from '../support/load';

const ROOT = resolve(__dirname, '../..');
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);
const SECONDS = Number(process.env.AB_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.AB_CONNECTIONS ?? 16);
const MODEL = resolve(process.env.AB_MODEL ?? join(ROOT, 'build/model/fnol-1.0.0.onnx'));
const TWO_CORES = cpus().length >= 2;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Scorer {
  name: string;
  url: string;
  child: ChildProcess;
  pid: number;
  gcLog: string;
}

/** CPU ms used so far by every thread of `pid`. */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

/** Bytes allocated between two offsets of a --trace-gc log: each collection's heap before, less the previous one's after. */
function allocated(log: string, from: number, to: number): number {
  const text = readFileSync(log, 'utf8');
  let after: number | undefined;
  let mb = 0;
  for (const m of text.matchAll(
    /(?:Scavenge|Mark-Compact|Mark-sweep)\D*?([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/g,
  )) {
    const at = m.index;
    if (at >= from && at < to && after !== undefined) mb += Math.max(0, Number(m[1]) - after);
    if (at >= to) break;
    after = Number(m[2]);
  }
  return mb * 1024 * 1024;
}

async function start(name: string, dir: string, work: string): Promise<Scorer> {
  const port = await freePort();
  const gcLog = join(work, `gc-${name}-${port}.log`);
  const args = ['--trace-gc', join(dir, 'dist/scorer/src/main.js')];
  const child = spawn(
    TWO_CORES ? 'taskset' : process.execPath,
    TWO_CORES ? ['-c', '0', process.execPath, ...args] : args,
    {
      cwd: dir,
      env: scorerEnv(MODEL, port),
      // stdout: the --trace-gc lines (LOG_LEVEL=error writes no log lines on success).
      stdio: ['ignore', openSync(gcLog, 'w'), 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the scorer of ${dir} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 600) throw new Error(`the scorer of ${dir} did not become ready`);
    await sleep(100);
  }
  return { name, url, child, pid: child.pid as number, gcLog };
}

interface Measure {
  cpuUs: number;
  rps: number;
  allocatedKiB: number;
}

function wrk(scorer: Scorer, body: string, seconds: number): Measure {
  const log0 = statSync(scorer.gcLog).size;
  const cpu0 = cpuMs(scorer.pid);
  const args = [
    `-t1`,
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    '-s',
    join(ROOT, 'bench/scorer/post.lua'),
    scorer.url,
  ];
  const run = spawnSync(TWO_CORES ? 'taskset' : 'wrk', TWO_CORES ? ['-c', '1', 'wrk', ...args] : args, {
    env: { ...process.env, WRK_BODY: body },
    encoding: 'utf8',
  });
  const cpu = cpuMs(scorer.pid) - cpu0;
  const r = readWrkLine(`${run.stdout}${run.stderr}`);
  const n = r.requests;
  const errors = r.bad + r.socketErrors;
  if (errors > 0 || n === 0)
    throw new Error(`${scorer.name}: ${errors} bad answers or socket errors of ${n}`);
  return {
    cpuUs: (cpu * 1000) / n,
    rps: n / r.seconds,
    allocatedKiB: allocated(scorer.gcLog, log0, statSync(scorer.gcLog).size) / 1024 / n,
  };
}

async function stop(scorer: Scorer): Promise<void> {
  if (scorer.child.exitCode !== null) return;
  scorer.child.kill('SIGTERM');
  await new Promise((done) => scorer.child.once('exit', done));
}

async function main(): Promise<void> {
  const dirs = process.argv.slice(2).map((d) => resolve(d));
  if (dirs.length !== 2)
    throw new Error('usage: npx tsx bench/scorer/ab.ts DIR_A DIR_B (two checkouts of this repository)');
  const variants = dirs.map((dir, i) => ({ name: i === 0 ? 'A' : 'B', dir }));
  for (const { dir } of variants) {
    process.stderr.write(`building ${dir} ...\n`);
    buildScorer(dir);
  }
  const work = mkdtempSync(join(tmpdir(), 'scorer-ab-'));
  const body = join(work, 'one.json');
  const claim = Array.from({ length: 37 }, (_, i) => i + 1);
  writeFileSync(body, JSON.stringify({ data: [claim] }));
  const results: Record<string, Measure[]> = { A: [], B: [] };
  const loadBefore = loadavg()[0] as number;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      const pair: Scorer[] = [];
      try {
        for (const { name, dir } of order) pair.push(await start(name, dir, work));
        await sleep(2000);
        for (const scorer of pair) wrk(scorer, body, 2); // warm-up
        await sleep(1000);
        for (const scorer of pair) {
          const m = wrk(scorer, body, SECONDS);
          results[scorer.name]?.push(m);
          process.stderr.write(
            `round ${round + 1} ${scorer.name}: ${m.cpuUs.toFixed(1)} us CPU, ${m.allocatedKiB.toFixed(2)} KiB allocated per request, ${m.rps.toFixed(0)} req/s\n`,
          );
        }
      } finally {
        for (const scorer of pair) await stop(scorer);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(
    `\nsingle records, ${CONNECTIONS} connections, ${ROUNDS} alternating rounds of ${SECONDS} s, a fresh pair each; ${TWO_CORES ? 'scorers on CPU 0, wrk on CPU 1' : 'one core'}; load average ${loadBefore.toFixed(1)} before, ${(loadavg()[0] as number).toFixed(1)} after\n`,
  );
  console.log('| per request | A | B | B / A |');
  console.log('| --- | --- | --- | --- |');
  const row = (label: string, pick: (m: Measure) => number, digits: number) => {
    const a = (results.A ?? []).map(pick);
    const b = (results.B ?? []).map(pick);
    const cell = (v: number[]) =>
      `${median(v).toFixed(digits)} (${v.map((x) => x.toFixed(digits)).join(', ')})`;
    console.log(`| ${label} | ${cell(a)} | ${cell(b)} | ${((median(b) / median(a)) * 100).toFixed(1)} % |`);
  };
  row('server CPU, µs (median, rounds)', (m) => m.cpuUs, 1);
  row('allocated on the heap, KiB', (m) => m.allocatedKiB, 2);
  row('throughput, req/s', (m) => m.rps, 0);
  console.log(`\nA = ${dirs[0]}\nB = ${dirs[1]}`);
}

main().catch((error: unknown) => {
  console.error(`scorer A/B failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

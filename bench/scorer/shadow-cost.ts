// The CPU cost of shadow mirroring on the stable scorer, in-process: single-record
// copies of POST /score offered to the mirroring module (`Shadow`) as a saturated
// scorer offers them (a burst of answered requests per turn of the event loop),
// sent to a real candidate scorer in another process (the compiled FNOL model,
// real HTTP on loopback) and compared. Only this process's CPU time is counted
// (process.cpuUsage: steadier on a busy machine than the clock), so the
// candidate's own work is left out, as it runs in other pods in a cluster.
// The figure is the stable pod's CPU per copy: admission, keeping the body,
// queueing, joining copies into one request, the request and its answer, the
// comparison and the counting. docs/scorer.md, What shadow mirroring costs.
//
//   npx tsx bench/scorer/shadow-cost.ts      (needs build/model/fnol-1.0.0.onnx: npm run model:build)
//
// Options (env): SHADOW_COST_COPIES (default 10000 per round), SHADOW_COST_ROUNDS
// (default 5), SHADOW_COST_BURST (default 8 answered requests at a time),
// SHADOW_COST_RATE (default 2000 copies a second).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { createMetrics } from '../../scorer/src/metrics';
import { parseConfig, type ShadowConfig } from '../../scorer/src/config';
import { Shadow, shadowBounds, type ShadowDeps, type StableAnswer } from '../../scorer/src/shadow/mirror';
import { freePort } from '../../test/support/net';
import { median } from '../support/load';

const ROOT = resolve(__dirname, '../..');
const MODEL = join(ROOT, 'build/model/fnol-1.0.0.onnx');
const COPIES = Number(process.env.SHADOW_COST_COPIES ?? 10000);
const ROUNDS = Number(process.env.SHADOW_COST_ROUNDS ?? 5);
const BURST = Number(process.env.SHADOW_COST_BURST ?? 8);
const RATE = Number(process.env.SHADOW_COST_RATE ?? 2000);

/** One claim in feature_order (a row of the training CSV). */
// prettier-ignore
const ROW = [
  22, 'Main Road', 'NORMAL', 'Y', 'Other', 'n/k', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,
  0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
];

export async function startCandidate(port: number): Promise<ChildProcess> {
  // On 2 cores or more, the candidate on the last CPU and this process on the others,
  // as in bench.ts: the candidate's work neither counts here nor preempts this process.
  const n = cpus().length;
  const node = [process.execPath, '--require', 'tsx/cjs', 'scorer/src/main.ts'];
  if (n >= 2) {
    spawnSync('taskset', ['-a', '-cp', n === 2 ? '0' : `0-${n - 2}`, String(process.pid)], {
      stdio: 'ignore',
    });
  }
  const [command, ...args] = n >= 2 ? ['taskset', '-c', String(n - 1), ...node] : node;
  const child = spawn(command as string, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      MODEL_URI: `file://${MODEL}`,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      SHUTDOWN_GRACE_SECONDS: '1',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`the candidate scorer exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return child;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the candidate scorer did not become ready');
}

/** The mirroring module's constructor (a parameter, so two versions can be compared in one process). */
export type ShadowClass = new (config: ShadowConfig, deps: ShadowDeps) => Shadow;

/**
 * One round: `copies` single-record copies of the data form offered BURST at a
 * time at `rate` copies a second (BURST answered requests per merged run, as a
 * saturated scorer answers them), sent and compared; the CPU µs per copy until
 * every copy has an outcome. Without `Impl`, the same pacing loop offering
 * nothing: its own CPU (the timer wake-ups) is subtracted from the rounds.
 */
export async function round(
  Impl: ShadowClass | undefined,
  url: string,
  copies: number,
  rate = RATE,
): Promise<number> {
  const metrics = createMetrics([1], false);
  // The settings and bounds a pod mirroring to `url` runs with: SHADOW_* defaults, 1 GiB limit.
  const config = parseConfig(
    {
      MODEL_URI: `file://${MODEL}`,
      SHADOW_URL: url,
      SHADOW_VERSION: '1.0.0',
      MEMORY_LIMIT_BYTES: String(1024 * 1024 * 1024),
    },
    () => {
      throw new Error('shadow-cost reads no file');
    },
  );
  const shadow =
    Impl === undefined || config.shadow === undefined
      ? undefined
      : new Impl(config.shadow, {
          metrics: metrics.shadow,
          clock: { now: () => performance.now() },
          logger: pino({ level: 'error' }),
          ...shadowBounds(config.limits),
        });
  const body = Buffer.from(JSON.stringify({ data: [ROW] }));
  const stable: StableAnswer = {
    form: 'data',
    records: 1,
    outputs: [{ name: 'ultimate_cost', width: 1, values: new Float32Array([1000]) }],
  };
  // What the scoring path hands over: the request's headers and the answer's.
  const req = { headers: { 'x-api-key': 'k-1' } } as unknown as IncomingMessage;
  const answered: Record<string, string> = {
    'x-request-id': 'r-1',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  };
  const res = { statusCode: 200, getHeader: (name: string) => answered[name] } as unknown as ServerResponse;
  const start = process.cpuUsage();
  let offered = 0;
  const began = performance.now();
  while (offered < copies) {
    const due = began + (offered / rate) * 1000 - performance.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    for (let i = 0; i < BURST && offered < copies; i++, offered++) {
      const ticket = shadow?.admit(req);
      if (ticket === undefined) continue;
      ticket.body = body;
      shadow?.offer(ticket, req, res, '/score', stable);
    }
  }
  if (shadow === undefined) {
    const used = process.cpuUsage(start);
    return (used.user + used.system) / copies;
  }
  while (shadow.pending > 0) await new Promise((r) => setTimeout(r, 1));
  const used = process.cpuUsage(start);
  const s = shadow.status();
  shadow.close();
  if (s.compared + s.dropped !== copies || s.candidateErrors > 0) {
    throw new Error(
      `the copies did not all get an outcome, or the candidate failed some: ${JSON.stringify(s)}`,
    );
  }
  if (s.dropped > copies / 10) {
    throw new Error(
      `${s.dropped} of ${copies} copies were dropped: the candidate did not keep up; lower SHADOW_COST_RATE`,
    );
  }
  return (used.user + used.system) / s.compared;
}

const list = (values: readonly number[]) => values.map((v) => v.toFixed(1)).join(', ');

async function main(): Promise<void> {
  const port = await freePort();
  const candidate = await startCandidate(port);
  try {
    const url = `http://127.0.0.1:${port}`;
    await round(Shadow, url, 2000, 500); // the candidate's warm-up (and this process's)
    const mirroring: number[] = [];
    const pacing: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      mirroring.push(await round(Shadow, url, COPIES));
      pacing.push(await round(undefined, url, COPIES));
    }
    const own = mirroring.map((m, i) => m - (pacing[i] as number));
    console.log(
      `stable CPU per single-record copy ("data"), ${ROUNDS} rounds of ${COPIES} copies, ${BURST} at a time at ${RATE} copies/s (uptime load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}):`,
    );
    console.log(
      `  mirroring, pacing included: median ${median(mirroring).toFixed(1)} µs (${list(mirroring)})`,
    );
    console.log(`  pacing alone:               median ${median(pacing).toFixed(1)} µs (${list(pacing)})`);
    console.log(`  mirroring's own, per round: median ${median(own).toFixed(1)} µs (${list(own)})`);
  } finally {
    candidate.kill('SIGTERM');
  }
}

if (require.main === module) {
  void main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

// The CPU cost of drift monitoring in-process, without HTTP: the compiled FNOL
// model's runtime scoring the same records with and without the drift monitor,
// and the monitor's binning alone, timed by the process's CPU time (steadier on
// a busy machine than the clock). The records are distinct claims (the model's
// parity cases, written beside it by the compiler), not one record repeated: the
// binning's branches are only as predictable as real traffic makes them.
// docs/scorer.md, What drift monitoring costs.
//
//   npx tsx bench/scorer/drift-cost.ts      (needs build/model/fnol-1.0.0.onnx: npm run model:build)

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { startDrift } from '../../scorer/src/drift';
import { createMetrics } from '../../scorer/src/metrics';
import { loadModelRuntime, type FeedColumn, type ModelRuntime } from '../../scorer/src/model-runtime';

const MODEL = join(resolve(__dirname, '../..'), 'build/model/fnol-1.0.0.onnx');
const CASES = join(resolve(__dirname, '../..'), 'build/model/fnol-1.0.0.parity-cases.json');

/** `size` distinct claims from the parity cases (columns of feature values). */
function claims(size: number): Record<string, unknown>[] {
  const { features } = JSON.parse(readFileSync(CASES, 'utf8')) as { features: Record<string, unknown[]> };
  const names = Object.keys(features);
  return Array.from({ length: size }, (_, r) =>
    Object.fromEntries(names.map((name) => [name, (features[name] as unknown[])[r]])),
  );
}

function cpuMicros(run: () => void): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

async function cpuMicrosAsync(run: () => Promise<void>): Promise<number> {
  const start = process.cpuUsage();
  await run();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

async function load(): Promise<ModelRuntime> {
  return loadModelRuntime(
    readFileSync(MODEL),
    { name: undefined, version: undefined },
    { intraOpThreads: 1 },
  );
}

async function main(): Promise<void> {
  console.log(
    '| records per run | run, drift off: CPU µs | run, drift on: CPU µs | binning alone: CPU µs | binning / run off |',
  );
  console.log('| --- | --- | --- | --- | --- |');
  for (const size of [1, 1000]) {
    const runs = size === 1 ? 5000 : 200;
    const off = await load();
    const on = await load();
    const records = claims(size);
    const metrics = createMetrics([1], false);
    const { monitor } = startDrift(
      on,
      { enabled: true, window: 10_000, minRecords: 1000, updateSeconds: 5 },
      { metrics: metrics.drift, clock: { now: () => performance.now() }, logger: pino({ level: 'silent' }) },
    );
    if (monitor === undefined) throw new Error(`${MODEL} has no usable reference distributions`);
    const score = (runtime: ModelRuntime) => async () => {
      for (let i = 0; i < runs; i++) await runtime.scoreRecords(records);
    };
    await score(off)(); // warm-up
    await score(on)();
    const offMicros = (await cpuMicrosAsync(score(off))) / runs;
    const onMicros = (await cpuMicrosAsync(score(on))) / runs;
    // The columns as ModelRuntime feeds them, binned alone.
    const columns: FeedColumn[] = on.contract.features.map((f) =>
      f.type === 'number'
        ? Float32Array.from(records, (r) => (typeof r[f.name] === 'number' ? (r[f.name] as number) : NaN))
        : records.map((r) => (typeof r[f.name] === 'string' ? (r[f.name] as string) : '')),
    );
    const outputs = await off.scoreRecords(records);
    const repeats = size === 1 ? 200_000 : 2000;
    const binMicros =
      cpuMicros(() => {
        for (let i = 0; i < repeats; i++) monitor.observe(columns, size, outputs);
      }) / repeats;
    console.log(
      `| ${size} | ${offMicros.toFixed(1)} | ${onMicros.toFixed(1)} | ${binMicros.toFixed(2)} | ${((100 * binMicros) / offMicros).toFixed(1)} % |`,
    );
    await off.session.release?.();
    await on.session.release?.();
  }
}

main().catch((error: unknown) => {
  console.error(`drift-cost failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

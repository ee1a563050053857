// Model benchmark: in-process throughput of compiled graphs in onnxruntime-node against
// CatBoost's own predict (Python, every core) on the same rows, both measured in this run.
// Models: the FNOL recipe (two CatBoost models and a constant in one graph), a regressor
// trained with CatBoost's defaults on the FNOL CSV and two generated models, the last three
// compiled with the generic command (npm run model:compile). For symmetric models the same model
// in the earlier layouts (one TreeEnsemble; split bits before MatMulInteger and GatherElements) is
// measured too, in the same run.
//   npm run bench:model [-- --seconds 2]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

const ROOT = path.resolve(__dirname, '../..');
const arg = process.argv.indexOf('--seconds');
const seconds = (arg > 0 ? Number(process.argv[arg + 1]) : 0) || 2;
const artifacts = process.env.FNOL_ARTIFACTS ?? path.join(ROOT, '../shared/fnol');
const OUT = path.join(ROOT, 'build/model/bench');
const BATCHES = [1, 100, 1000, 10000];

type Measured = Record<string, Record<string, { records_per_s: number; ms_per_call: number }>>;

function modelPath(name: string): string {
  return name === 'fnol-recipe'
    ? path.join(ROOT, 'build/model/fnol-1.0.0.onnx')
    : path.join(OUT, `${name}.onnx`);
}

// The same model in an earlier layout, when built: "tree-ensemble" (symmetric trees as one
// TreeEnsemble) or "previous" (split bits with a float32 MatMul and a LabelEncoder or Gather lookup).
function layoutPath(name: string, layout: 'tree-ensemble' | 'previous'): string | undefined {
  const file = path.join(OUT, `${name}.${layout}.onnx`);
  return existsSync(file) ? file : undefined;
}

async function measureOnnx(
  name: string,
  threads: number,
  batch: number,
  file = modelPath(name),
): Promise<number> {
  const rows = JSON.parse(readFileSync(path.join(OUT, `${name}.rows.json`), 'utf8')) as Record<
    string,
    (number | string | null)[]
  >;
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of session.inputMetadata) {
    const col = (rows[input.name] ?? []).slice(0, batch);
    const isString = input.isTensor && input.type === 'string';
    feeds[input.name] = isString
      ? new ort.Tensor(
          'string',
          col.map((v) => (v === null ? '' : String(v))),
          [batch, 1],
        )
      : new ort.Tensor(
          'float32',
          Float32Array.from(col, (v) => (v === null ? NaN : Number(v))),
          [batch, 1],
        );
  }
  await session.run(feeds);
  let calls = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds || calls < 3) {
    await session.run(feeds);
    calls++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  await session.release();
  return (calls * batch) / elapsed;
}

async function main(): Promise<void> {
  console.error(`preparing models and measuring CatBoost predict (${seconds} s per batch size)...`);
  const base = JSON.parse(
    execFileSync(
      path.join(ROOT, '.venv/bin/python'),
      [path.join(__dirname, 'catboost_predict.py'), artifacts, OUT, String(seconds)],
      { env: { ...process.env, PYTHONPATH: path.join(ROOT, 'model') }, encoding: 'utf8', maxBuffer: 1 << 26 },
    ),
  ) as Measured;
  const fmt = (n: number, d = 0) =>
    n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    '\n| model | batch | catboost predict (records/s) | TreeEnsemble graph, 2 threads | previous split-bit graph, 2 threads | onnxruntime-node 1 thread | 2 threads | speed-up 1 thread | 2 threads |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, byBatch] of Object.entries(base)) {
    console.error(`measuring onnxruntime-node on ${name}...`);
    for (const batch of BATCHES) {
      const cb = byBatch[String(batch)]!.records_per_s;
      const layouts: string[] = [];
      for (const layout of ['tree-ensemble', 'previous'] as const) {
        const file = layoutPath(name, layout);
        layouts.push(file ? fmt(await measureOnnx(name, 2, batch, file)) : '-');
      }
      const one = await measureOnnx(name, 1, batch);
      const two = await measureOnnx(name, 2, batch);
      console.log(
        `| ${name} | ${fmt(batch)} | ${fmt(cb)} | ${layouts.join(' | ')} | ${fmt(one)} | ${fmt(two)} | ${fmt(one / cb, 1)}x | ${fmt(two / cb, 1)}x |`,
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

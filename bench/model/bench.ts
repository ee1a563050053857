// Model benchmark: in-process throughput of the compiled graph in onnxruntime-node
// against CatBoost's Python predict on the same rows, both measured in this run.
//   npm run bench:model [-- --seconds 3]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

const ROOT = path.resolve(__dirname, '../..');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 3;
const artifacts = process.env.FNOL_ARTIFACTS ?? path.join(ROOT, '../shared/fnol');

interface Row {
  batch: number;
  recordsPerS: number;
  msPerCall: number;
}

async function onnxRuntimeNode(): Promise<Row[]> {
  const model = path.join(ROOT, 'build/model/fnol-1.0.0.onnx');
  const cases = JSON.parse(
    readFileSync(path.join(ROOT, 'build/model/fnol-1.0.0.parity-cases.json'), 'utf8'),
  ) as {
    features: Record<string, (number | string | null)[]>;
  };
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const rows: Row[] = [];
  for (const batch of [1, 1000]) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const col = cases.features[name]!.slice(0, batch);
      feeds[name] =
        typeof col[0] === 'string'
          ? new ort.Tensor('string', col.map(String), [batch, 1])
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
    while (elapsed < seconds) {
      await session.run(feeds);
      calls++;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    }
    rows.push({ batch, recordsPerS: (calls * batch) / elapsed, msPerCall: (elapsed / calls) * 1000 });
  }
  return rows;
}

function catboostPython(): Row[] {
  const out = execFileSync(
    path.join(ROOT, '.venv/bin/python'),
    [path.join(__dirname, 'catboost_predict.py'), artifacts, String(seconds)],
    { env: { ...process.env, PYTHONPATH: path.join(ROOT, 'model') }, encoding: 'utf8' },
  );
  const parsed = JSON.parse(out) as Record<string, { records_per_s: number; ms_per_call: number }>;
  return Object.entries(parsed).map(([batch, r]) => ({
    batch: Number(batch),
    recordsPerS: r.records_per_s,
    msPerCall: r.ms_per_call,
  }));
}

async function main(): Promise<void> {
  console.error(`measuring CatBoost Python predict (${seconds} s per batch size)...`);
  const base = catboostPython();
  console.error(`measuring onnxruntime-node (${seconds} s per batch size)...`);
  const ours = await onnxRuntimeNode();
  const fmt = (n: number, d = 0) =>
    n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log('\n| runtime | batch | records/s | ms per call | speed-up |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const b of base)
    console.log(
      `| catboost ${'predict'} (Python) | ${b.batch} | ${fmt(b.recordsPerS)} | ${fmt(b.msPerCall, 3)} | 1.0x |`,
    );
  for (const o of ours) {
    const b = base.find((x) => x.batch === o.batch)!;
    console.log(
      `| onnxruntime-node (1 thread) | ${o.batch} | ${fmt(o.recordsPerS)} | ${fmt(o.msPerCall, 3)} | ${fmt(o.recordsPerS / b.recordsPerS, 1)}x |`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// What one session.run of the FNOL graph costs in onnxruntime-node, and how much
// of it is the graph's work: the compiled model against two graphs that compute
// nothing, one with the model's 37 inputs and 3 outputs (each output a copy of
// a number input) and one with a single input and output. All three run with
// the scorer's session options, fed as the scorer feeds them (a Float32Array
// view per number column, a string array per category column), in-process,
// alternating, CPU time per run (process.cpuUsage). docs/scorer.md, The floor
// of 0.7x bare Node.
//
//   npx tsx bench/scorer/run-cost.ts      (needs build/model/fnol-1.0.0.onnx: npm run model:build)
//
// Options (env): RUN_COST_RUNS (default 3000 per measure), RUN_COST_ROUNDS (default 5),
// RUN_COST_BATCHES (default "1,13": 13 is how many single records a saturated
// scorer merged into one run).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ortSessionOptions } from '../../scorer/src/model-runtime';
import { median } from '../support/load';

const ROOT = resolve(__dirname, '../..');
const MODEL = join(ROOT, 'build/model/fnol-1.0.0.onnx');
const PYTHON = join(ROOT, '.venv/bin/python');
const RUNS = Number(process.env.RUN_COST_RUNS ?? 3000);
const ROUNDS = Number(process.env.RUN_COST_ROUNDS ?? 5);
const BATCHES = (process.env.RUN_COST_BATCHES ?? '1,13').split(',').map(Number);

// Writes the two graphs that compute nothing, built from the model's own
// input and output declarations.
const MAKE_GRAPHS = `
import sys, onnx
from onnx import helper, TensorProto
model = onnx.load(sys.argv[1])
numbers = [i.name for i in model.graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT]
outputs = list(model.graph.output)
copies = [helper.make_node("Identity", [numbers[k]], [o.name]) for k, o in enumerate(outputs)]
inputs = helper.make_graph(copies, "inputs_only", list(model.graph.input), outputs)
single = helper.make_graph(
    [helper.make_node("Identity", ["x"], ["y"])], "one_input",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])
for graph, path in ((inputs, sys.argv[2]), (single, sys.argv[3])):
    made = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    made.ir_version = model.ir_version
    onnx.checker.check_model(made)
    onnx.save(made, path)
`;

interface Measured {
  readonly name: string;
  readonly inputs: number;
  readonly outputs: number;
  readonly session: ort.InferenceSession;
}

/** Feeds as the scorer's runParts builds them: one claim's values repeated n times. */
function feeds(session: ort.InferenceSession, n: number): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    const dims = meta.shape.length === 2 ? [n, 1] : [n];
    out[meta.name] =
      meta.type === 'string'
        ? new ort.Tensor('string', new Array<string>(n).fill('Main Road'), dims)
        : new ort.Tensor('float32', new Float32Array(n).fill(1), dims);
  }
  return out;
}

/** CPU µs per run over RUNS runs, fresh feeds each run (as the scorer does). */
async function cpuPerRun(session: ort.InferenceSession, n: number): Promise<number> {
  for (let i = 0; i < RUNS / 10; i++) await session.run(feeds(session, n));
  const start = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) await session.run(feeds(session, n));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / RUNS;
}

async function main(): Promise<void> {
  if (!existsSync(MODEL)) throw new Error(`${MODEL} is missing: run npm run model:build first`);
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run bash scripts/setup.sh first`);
  const dir = mkdtempSync(join(tmpdir(), 'fnol-run-cost-'));
  try {
    const inputsOnly = join(dir, 'inputs-only.onnx');
    const oneInput = join(dir, 'one-input.onnx');
    execFileSync(PYTHON, ['-c', MAKE_GRAPHS, MODEL, inputsOnly, oneInput], { stdio: 'inherit' });
    // As a scorer pod runs its model (ORT_INTRA_OP_THREADS defaults to 1).
    const options = ortSessionOptions({ intraOpThreads: 1 });
    const graphs: Measured[] = [];
    for (const [name, path] of [
      ['FNOL model', MODEL],
      ['same inputs and outputs, no work', inputsOnly],
      ['one input, one output, no work', oneInput],
    ] as const) {
      const session = await ort.InferenceSession.create(path, options);
      graphs.push({ name, inputs: session.inputNames.length, outputs: session.outputNames.length, session });
    }
    const samples = new Map<string, number[]>();
    console.error(
      `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ')} at the start`,
    );
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so that no graph always runs first in a round.
      const order = round % 2 === 0 ? graphs : [...graphs].reverse();
      for (const g of order) {
        for (const n of BATCHES) {
          const key = `${g.name}|${n}`;
          const us = await cpuPerRun(g.session, n);
          samples.set(key, [...(samples.get(key) ?? []), us]);
        }
      }
      console.error(`round ${round + 1} of ${ROUNDS} done`);
    }
    console.error(
      `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ')} at the end`,
    );
    console.log('\n| graph | inputs | outputs | rows per run | CPU µs per run, median | rounds |');
    console.log('| --- | ---: | ---: | ---: | ---: | --- |');
    for (const g of graphs) {
      for (const n of BATCHES) {
        const xs = samples.get(`${g.name}|${n}`) ?? [];
        const list = xs.map((x) => x.toFixed(1)).join(', ');
        console.log(`| ${g.name} | ${g.inputs} | ${g.outputs} | ${n} | ${median(xs).toFixed(1)} | ${list} |`);
      }
    }
    for (const g of graphs) await g.session.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

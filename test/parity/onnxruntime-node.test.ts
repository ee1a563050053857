// The runtime that serves the graph (onnxruntime-node) predicts what CatBoost predicts:
// every training row and every generated record of the compiler's parity cases.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'build/model/fnol-1.0.0.onnx');
const CASES = path.join(ROOT, 'build/model/fnol-1.0.0.parity-cases.json');
const TOLERANCE = 1e-4;

interface ParityCases {
  features: Record<string, (number | string | null)[]>;
  expected: Record<string, number[]>;
}

describe('compiled FNOL graph in onnxruntime-node', function () {
  this.timeout(300_000);
  let session: ort.InferenceSession;
  let cases: ParityCases;

  before(async () => {
    if (!existsSync(MODEL) || !existsSync(CASES)) {
      execFileSync('bash', [path.join(ROOT, 'scripts/model.sh'), 'build'], { stdio: 'inherit' });
    }
    session = await ort.InferenceSession.create(MODEL);
    cases = JSON.parse(readFileSync(CASES, 'utf8')) as ParityCases;
  });

  function feeds(from: number, to: number): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    const n = to - from;
    for (const name of session.inputNames) {
      const column = cases.features[name];
      assert.ok(column, `parity cases lack feature ${name}`);
      const slice = column.slice(from, to);
      if (typeof slice.find((v) => v !== null) === 'string') {
        out[name] = new ort.Tensor(
          'string',
          slice.map((v) => (v === null ? '' : String(v))),
          [n, 1],
        );
      } else {
        out[name] = new ort.Tensor(
          'float32',
          Float32Array.from(slice, (v) => (v === null ? NaN : Number(v))),
          [n, 1],
        );
      }
    }
    return out;
  }

  it('matches CatBoost on every case within |onnx - catboost| <= 1e-4 * max(1, |catboost|)', async () => {
    const total = cases.expected.ultimate_cost!.length;
    assert.ok(total > 40_000, `expected the full parity set, got ${total} cases`);
    const worst: Record<string, number> = {};
    let failures = 0;
    const batch = 5000;
    for (let from = 0; from < total; from += batch) {
      const to = Math.min(total, from + batch);
      const result = await session.run(feeds(from, to));
      for (const [name, want] of Object.entries(cases.expected)) {
        const got = result[name]!.data as Float32Array;
        for (let i = 0; i < to - from; i++) {
          const w = want[from + i]!;
          const err = Math.abs(got[i]! - w) / Math.max(1, Math.abs(w));
          if (!(err <= TOLERANCE)) failures++;
          worst[name] = Math.max(worst[name] ?? 0, err);
        }
      }
    }
    console.log(`      ${total} cases, largest relative error per output: ${JSON.stringify(worst)}`);
    assert.equal(failures, 0);
  });

  it('scores the string tensors of categorical columns as text, integers included', async () => {
    const n = 1;
    const input: Record<string, ort.Tensor> = {};
    for (const name of session.inputNames) {
      const meta = cases.features[name]!;
      const isString = typeof meta.find((v) => v !== null) === 'string';
      input[name] = isString
        ? new ort.Tensor('string', ['2'], [n, 1])
        : new ort.Tensor('float32', [1], [n, 1]);
    }
    const a = await session.run(input);
    input.Location_of_incident = new ort.Tensor('string', ['another-unseen-value'], [n, 1]);
    const b = await session.run(input);
    // both are unseen categories: CatBoost gives them the same statistics
    assert.equal((a.ultimate_cost!.data as Float32Array)[0], (b.ultimate_cost!.data as Float32Array)[0]);
  });
});

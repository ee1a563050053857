// The generic compile command end to end: CatBoost models trained on the FNOL CSV
// (one with CatBoost's defaults), compiled with `npm run model:compile`, served by the
// real scorer process over HTTP on loopback, give CatBoost's own predictions. A multiclass
// model's [N, K] output is served as one array per record, in CatBoost's class order.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from '../support/net';

const ROOT = resolve(__dirname, '../..');
const PYTHON = join(ROOT, '.venv/bin/python');
const HELPER = join(__dirname, 'models.py');
const CSV = join(
  process.env.FNOL_ARTIFACTS ?? resolve(ROOT, '../shared/fnol'),
  'Data_Scientist_Interview_Task.csv',
);

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

interface Scorer {
  child: ChildProcess;
  url: string;
  stderr: string[];
}

async function startScorer(model: string): Promise<Scorer> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'scorer/src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      MODEL_URI: pathToFileURL(model).href,
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString('utf8')));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`scorer exited: ${stderr.join('')}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return { child, url, stderr };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`scorer not ready: ${stderr.join('')}`);
}

describe('generic compile command served by the scorer', function () {
  this.timeout(600_000);
  const dir = mkdtempSync(join(tmpdir(), 'generic-compile-'));

  before(function () {
    run(PYTHON, [HELPER, 'train', dir, CSV]);
  });

  for (const [label, file, output] of [
    ['CatBoost defaults (RMSE regressor)', 'defaults', 'prediction'],
    ['binary classifier, depthwise trees, one-hot encoding', 'classifier', 'probability'],
  ] as const) {
    it(`${label}: npm run model:compile, then the scorer gives CatBoost's predictions`, async () => {
      const cbm = join(dir, `${file}.cbm`);
      const onnx = join(dir, `${file}.onnx`);
      run('npm', ['run', '-s', 'model:compile', '--', cbm, '--out', onnx, '--data', CSV]);
      const { records, expected } = JSON.parse(run(PYTHON, [HELPER, 'expect', cbm, CSV])) as {
        records: Record<string, unknown>[];
        expected: number[];
      };
      const scorer = await startScorer(onnx);
      try {
        const model = (await (await fetch(`${scorer.url}/model`)).json()) as Record<string, unknown>;
        assert.equal(JSON.stringify(model).includes(output), true, 'the model card names the output');
        const response = await fetch(`${scorer.url}/score`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ records }),
        });
        const text = await response.text();
        assert.equal(response.status, 200, text);
        const body = JSON.parse(text) as { predictions: Record<string, number>[] };
        assert.equal(body.predictions.length, expected.length);
        let worst = 0;
        body.predictions.forEach((p, i) => {
          const want = expected[i] as number;
          const got = p[output] as number;
          worst = Math.max(worst, Math.abs(got - want) / Math.max(1, Math.abs(want)));
        });
        assert.ok(worst <= 1e-5, `largest relative difference to CatBoost ${worst}`);
        // the positional contract: feature_order rows, primary output
        const row = Object.values(records[0] as Record<string, unknown>);
        const positional = await fetch(`${scorer.url}/score`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ data: [row] }),
        });
        const result = ((await positional.json()) as { result: number[] }).result;
        assert.ok(
          Math.abs((result[0] as number) - (expected[0] as number)) <=
            1e-5 * Math.max(1, expected[0] as number),
        );
      } finally {
        scorer.child.kill('SIGKILL');
      }
    });
  }

  it('multiclass model: each record gets its class probabilities as an array, in every response shape', async () => {
    const cbm = join(dir, 'multiclass.cbm');
    const onnx = join(dir, 'multiclass.onnx');
    run('npm', ['run', '-s', 'model:compile', '--', cbm, '--out', onnx, '--data', CSV]);
    const { records, expected, classes } = JSON.parse(run(PYTHON, [HELPER, 'expect', cbm, CSV])) as {
      records: Record<string, unknown>[];
      expected: number[][];
      classes: string[];
    };
    assert.deepEqual(classes, ['large', 'medium', 'small']);
    const K = classes.length;
    const scorer = await startScorer(onnx);
    const close = (got: unknown, want: number[], where: string) => {
      assert.ok(
        Array.isArray(got) && got.length === K,
        `${where}: ${JSON.stringify(got)} is not ${K} numbers`,
      );
      got.forEach((g, k) => {
        const w = want[k] as number;
        assert.ok(
          Math.abs((g as number) - w) <= 1e-5 * Math.max(1, Math.abs(w)),
          `${where}[${k}]: ${g} != ${w}`,
        );
      });
    };
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${scorer.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return JSON.parse(text) as Record<string, unknown>;
    };
    try {
      // named records: one array per record under the output's name
      const named = (await post('/score', { records })) as { predictions: Record<string, unknown>[] };
      assert.equal(named.predictions.length, expected.length);
      named.predictions.forEach((p, i) => {
        assert.deepEqual(Object.keys(p), ['probabilities']);
        close(p.probabilities, expected[i] as number[], `predictions[${i}].probabilities`);
      });
      // positional rows: the primary output, one array per row
      const rows = records.slice(0, 3).map((r) => Object.values(r));
      const positional = (await post('/score', { data: rows })) as { result: unknown[] };
      positional.result.forEach((got, i) => close(got, expected[i] as number[], `result[${i}]`));
      // Open Inference Protocol: shape [n, K], data row-major
      const card = (await (await fetch(`${scorer.url}/model`)).json()) as {
        name: string;
        metadata: { class_names: string[] };
      };
      assert.deepEqual(card.metadata.class_names, classes);
      const meta = (await (await fetch(`${scorer.url}/v2/models/${card.name}`)).json()) as {
        name: string;
        outputs: { name: string; shape: number[] }[];
      };
      assert.deepEqual(meta.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, K] }]);
      const order = Object.keys(records[0] as Record<string, unknown>);
      const v2 = (await post(`/v2/models/${meta.name}/infer`, {
        inputs: order.map((name) => {
          const values = records.slice(100, 102).map((r) => r[name]);
          const text = typeof values.find((v) => v !== null) === 'string';
          return {
            name,
            shape: [2, 1],
            datatype: text ? 'BYTES' : 'FP32',
            data: values.map((v) => (v === null ? (text ? '' : null) : v)),
          };
        }),
      })) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      const out = v2.outputs[0] as { name: string; shape: number[]; data: number[] };
      assert.deepEqual(out.shape, [2, K]);
      close(out.data.slice(0, K), expected[100] as number[], 'v2 row 0');
      close(out.data.slice(K), expected[101] as number[], 'v2 row 1');
      // the OpenAPI document says so, with the class labels from the model's metadata
      const openapi = (await (await fetch(`${scorer.url}/openapi.json`)).json()) as {
        components: { schemas: Record<string, { properties: Record<string, unknown> }> };
      };
      const items = (
        openapi.components.schemas.ScoreRecordsResponse?.properties.predictions as {
          items: { properties: Record<string, { type: string; prefixItems: { title: string }[] }> };
        }
      ).items.properties.probabilities;
      assert.equal(items?.type, 'array');
      assert.deepEqual(
        items?.prefixItems.map((p) => p.title),
        classes,
      );
    } finally {
      scorer.child.kill('SIGKILL');
    }
  });
});

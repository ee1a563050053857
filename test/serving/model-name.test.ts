// spec.modelName end to end without a cluster: the Deployment the operator
// renders for a FnolModel naming a second model, and the real scorer process
// started with that Deployment's scorer environment, serving a small ONNX
// model generated here under that name over loopback.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { desiredDeployment } from '../../operator/src/reconcilers/deployment';
import { fnolModel, testConfig } from '../../operator/test/fixtures';
import { launch, waitReady, type Running } from '../../scorer/test/process-support';
import { PYTHON, ROOT, call } from '../../scorer/test/support';
import { freePort } from '../support/net';

/** Writes the generic fixture model (three inputs, two outputs) under `name`. */
function makeModel(dir: string, name: string): string {
  const out = join(dir, `${name}.onnx`);
  const run = spawnSync(PYTHON, [join(ROOT, 'scorer/test/fixtures/make_model.py'), 'generic', out, name], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`cannot generate the model ${name}: ${run.stderr}`);
  return out;
}

/** The scorer container's environment of the Deployment the operator renders for `modelName`. */
function renderedEnv(modelName: string | undefined, uri: string): Record<string, string> {
  const fm = fnolModel({
    ...(modelName === undefined ? {} : { modelName }),
    model: { version: '0.3.1', uri, sha256: 'a'.repeat(64) },
  });
  const container = desiredDeployment(fm, {
    ...testConfig,
    modelPolicy: { ...testConfig.modelPolicy, localMode: true },
  }).spec?.template.spec?.containers.find((c) => c.name === 'scorer');
  const env: Record<string, string> = {};
  for (const e of container?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

describe('spec.modelName: the scorer the operator configures serves a second model under its name', function () {
  this.timeout(120_000);
  let dir: string;
  let model: string;
  let running: Running | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fnol-model-name-'));
    model = makeModel(dir, 'second');
  });
  afterEach(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await running.exit;
    }
    running = undefined;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The rendered environment, minus the digest (made up by the fixture) and bound to loopback. */
  const start = async (env: Record<string, string>): Promise<string> => {
    const port = await freePort();
    const rest = { ...env };
    delete rest.MODEL_SHA256;
    running = launch({ ...rest, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
    return `http://127.0.0.1:${port}`;
  };

  it('answers /score, v2 metadata and v2 inference with the name of spec.modelName', async () => {
    const env = renderedEnv('second', pathToFileURL(model).href);
    assert.equal(env.MODEL_NAME, 'second');
    assert.equal(env.MODEL_VERSION, '0.3.1');
    const url = await start(env);
    await waitReady(url, running!);

    const ready = await call(url, '/readyz');
    assert.deepEqual(ready.body, { status: 'ready', model: 'second', version: '0.3.1' });
    const scored = await call(url, '/score', {
      body: { records: [{ length: 2, colour: 'green', width: 3.5 }] },
    });
    assert.equal(scored.status, 200, scored.text);
    assert.deepEqual((scored.body as { model: unknown }).model, { name: 'second', version: '0.3.1' });
    assert.equal((scored.body as { predictions: { area: number }[] }).predictions[0]?.area, 7);

    const meta = await call(url, '/v2/models/second');
    assert.equal(meta.status, 200, meta.text);
    assert.equal((meta.body as { name: string }).name, 'second');
    const infer = await call(url, '/v2/models/second/infer', {
      body: {
        inputs: [
          { name: 'length', datatype: 'FP32', shape: [1], data: [2] },
          { name: 'colour', datatype: 'BYTES', shape: [1], data: ['green'] },
          { name: 'width', datatype: 'FP32', shape: [1], data: [3.5] },
        ],
        outputs: [{ name: 'area' }],
      },
    });
    assert.equal(infer.status, 200, infer.text);
    assert.deepEqual(infer.body, {
      model_name: 'second',
      model_version: '0.3.1',
      outputs: [{ name: 'area', datatype: 'FP32', shape: [1, 1], data: [7] }],
    });
    // The FNOL name is not served here.
    const fnol = await call(url, '/v2/models/fnol/infer', { body: { inputs: [] } });
    assert.equal(fnol.status, 404);
    assert.match((fnol.body as { error: string }).error, /this server serves "second" version "0.3.1"/);
  });

  it('without spec.modelName the scorer expects "fnol" and refuses the second model, naming both', async () => {
    const env = renderedEnv(undefined, pathToFileURL(model).href);
    assert.equal(env.MODEL_NAME, 'fnol');
    await start(env);
    const { code } = await running!.exit;
    assert.equal(code, 1);
    assert.match(running!.stderr.join(''), /the model is named "second" but MODEL_NAME is "fnol"/);
  });
});

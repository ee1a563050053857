// The compiled FNOL model served over real HTTP: every request form returns
// CatBoost's predictions for the example rows, and every response matches the
// service's own OpenAPI document.

import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020';
import {
  SMOKE_ROWS,
  TOLERANCE,
  call,
  catboost,
  fnolModel,
  startInProcess,
  type InProcessScorer,
  type Oracle,
} from './support';

interface Metadata {
  name: string;
  versions: string[];
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string }[];
}

function assertClose(actual: unknown, expected: number[], what: string): void {
  assert.ok(Array.isArray(actual), `${what}: not an array`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  expected.forEach((b, i) => {
    const a = actual[i] as number;
    assert.ok(TOLERANCE(a, b), `${what}[${i}]: scorer ${a}, catboost ${b}`);
  });
}

describe('scorer with the compiled FNOL model', function () {
  let scorer: InProcessScorer;
  let oracle: Oracle;
  let rows: unknown[][];
  let order: string[];
  let ajv: Ajv2020;

  const matches = (schema: string, value: unknown) => {
    const validate = ajv.getSchema(`openapi#/components/schemas/${schema}`);
    assert.ok(validate, `no schema ${schema} in /openapi.json`);
    assert.ok(
      validate(value),
      `${schema}: ${JSON.stringify(validate.errors)} for ${JSON.stringify(value).slice(0, 300)}`,
    );
  };

  before(async function () {
    const model = fnolModel();
    const csv = catboost({ csv_rows: 1 });
    rows = [...SMOKE_ROWS, ...csv.rows];
    oracle = catboost({ rows });
    scorer = await startInProcess(model);
    const card = await call(scorer.url, '/model');
    assert.equal(card.status, 200);
    order = (card.body as { metadata: { feature_order: string[] } }).metadata.feature_order;
    const openapi = await call(scorer.url, '/openapi.json');
    assert.equal(openapi.status, 200);
    ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema({ ...(openapi.body as object), $id: 'openapi' });
  });
  after(() => scorer?.close());

  it('answers the original contract {"data": rows} with CatBoost ultimate_cost per row', async () => {
    const request = { data: rows };
    matches('ScoreDataRequest', request);
    const reply = await call(scorer.url, '/score', { body: request });
    assert.equal(reply.status, 200, reply.text);
    matches('ScoreDataResponse', reply.body);
    assertClose((reply.body as { result: number[] }).result, oracle.ultimate_cost, 'result');
  });

  it('answers named records with every output, model name and version', async () => {
    const records = rows.map((row) => Object.fromEntries(order.map((name, i) => [name, row[i]])));
    matches('ScoreRecordsRequest', { records });
    const reply = await call(scorer.url, '/score', { body: { records } });
    assert.equal(reply.status, 200, reply.text);
    matches('ScoreRecordsResponse', reply.body);
    const body = reply.body as {
      model: { name: string; version: string };
      predictions: Record<string, number>[];
    };
    assert.deepEqual(body.model, { name: 'fnol', version: '1.0.0' });
    for (const output of ['ultimate_cost', 'attritional_cost', 'large_loss_probability'] as const) {
      assertClose(
        body.predictions.map((p) => p[output]),
        oracle[output],
        output,
      );
    }
  });

  it('serves the Open Inference Protocol: metadata and infer with FP32 and BYTES tensors', async () => {
    const meta = await call(scorer.url, '/v2/models/fnol');
    assert.equal(meta.status, 200);
    matches('V2ModelMetadata', meta.body);
    const metadata = meta.body as Metadata;
    assert.deepEqual(
      metadata.inputs.map((i) => i.name),
      order,
    );
    assert.equal(metadata.inputs.find((i) => i.name === 'Location_of_incident')?.datatype, 'BYTES');
    assert.equal(metadata.inputs.find((i) => i.name === 'Notification_period')?.datatype, 'FP32');
    const inputs = metadata.inputs.map((input, i) => ({
      name: input.name,
      datatype: input.datatype,
      shape: [rows.length, 1],
      data: rows.map((row) => (input.datatype === 'BYTES' ? String(row[i]) : row[i])),
    }));
    const request = { id: 'example-rows', inputs };
    matches('V2InferRequest', request);
    const reply = await call(scorer.url, '/v2/models/fnol/infer', { body: request });
    assert.equal(reply.status, 200, reply.text);
    matches('V2InferResponse', reply.body);
    const body = reply.body as {
      id: string;
      model_version: string;
      outputs: { name: string; shape: number[]; data: number[] }[];
    };
    assert.equal(body.id, 'example-rows');
    assert.equal(body.model_version, '1.0.0');
    for (const output of ['ultimate_cost', 'attritional_cost', 'large_loss_probability'] as const) {
      const tensor = body.outputs.find((o) => o.name === output);
      assert.deepEqual(tensor?.shape, [rows.length, 1]);
      assertClose(tensor?.data, oracle[output], `v2 ${output}`);
    }
    const only = await call(scorer.url, '/v2/models/fnol/versions/1.0.0/infer', {
      body: { inputs, outputs: [{ name: 'large_loss_probability' }] },
    });
    assert.equal(only.status, 200, only.text);
    assert.deepEqual(
      (only.body as { outputs: { name: string }[] }).outputs.map((o) => o.name),
      ['large_loss_probability'],
    );
  });

  it('answers a batch larger than one model run (2,500 rows, run in slices) in order', async () => {
    const big = await startInProcess(fnolModel(), {
      limits: { maxBodyBytes: 8 * 1024 * 1024, maxBatchRecords: 5000 },
    });
    try {
      const data = Array.from({ length: 2500 }, (_, i) => rows[i % rows.length]);
      const reply = await call(big.url, '/score', { body: { data } });
      assert.equal(reply.status, 200, reply.text.slice(0, 300));
      const expected = data.map((_, i) => oracle.ultimate_cost[i % rows.length] as number);
      assertClose((reply.body as { result: number[] }).result, expected, 'result');
    } finally {
      await big.close();
    }
  });

  it('reads integers in categorical positions as their decimal text, as CatBoost does', async () => {
    const typed = SMOKE_ROWS.map((row) =>
      row.map((v, i) => ((scorer.runtime?.contract.features[i]?.type ?? '') === 'string' ? String(v) : v)),
    );
    const a = await call(scorer.url, '/score', { body: { data: SMOKE_ROWS } });
    const b = await call(scorer.url, '/score', { body: { data: typed } });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.deepEqual(a.body, b.body);
    const fractional = SMOKE_ROWS[0]?.map((v, i) =>
      i === typed[0]?.findIndex((x) => typeof x === 'string') ? 2.5 : v,
    );
    const rejected = await call(scorer.url, '/score', { body: { data: [fractional] } });
    assert.equal(rejected.status, 400);
    assert.match(rejected.text, /categorical feature takes a string or an integer, got the number 2.5/);
  });

  it('reports health, readiness, metrics and the model card in the documented shapes', async () => {
    for (const [path, schema] of [
      ['/healthz', 'Health'],
      ['/readyz', 'Ready'],
      ['/model', 'ModelCard'],
      ['/v2/health/live', 'V2Live'],
      ['/v2/health/ready', 'V2Ready'],
    ] as const) {
      const reply = await call(scorer.url, path);
      assert.equal(reply.status, 200, `${path}: ${reply.text}`);
      matches(schema, reply.body);
    }
    const metrics = await call(scorer.url, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(
      metrics.text,
      /scorer_http_requests_total\{route="\/score",method="POST",status="200"\} \d+/,
    );
    assert.match(metrics.text, /scorer_records_scored_total\{form="data"\} [1-9]/);
    assert.match(metrics.text, /scorer_records_scored_total\{form="records"\} [1-9]/);
    assert.match(metrics.text, /scorer_prediction_value_count\{output="ultimate_cost"\} [1-9]/);
    assert.match(metrics.text, /scorer_model_info\{name="fnol",version="1.0.0",sha256=""\} 1/);
    assert.match(metrics.text, /scorer_http_request_duration_seconds_bucket\{le="0.005",route="\/score"\}/);
  });

  it('propagates x-request-id, or makes one up', async () => {
    const given = await call(scorer.url, '/score', {
      body: { data: [rows[0]] },
      headers: { 'x-request-id': 'claim-42' },
    });
    assert.equal(given.headers.get('x-request-id'), 'claim-42');
    const made = await call(scorer.url, '/healthz');
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('answers errors in the documented Error shape', async () => {
    for (const reply of [
      await call(scorer.url, '/score', { body: { data: [[1, 2]] } }),
      await call(scorer.url, '/v2/models/other'),
      await call(scorer.url, '/nowhere'),
    ]) {
      assert.ok(reply.status >= 400 && reply.status < 500);
      matches('Error', reply.body);
    }
  });
});

// Nothing in the scorer is FNOL-specific: a different model (three inputs, two
// outputs, other names) is served through the same endpoints, its schema derived
// from its own metadata. Also: API keys and readiness.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { loadModelRuntime } from '../src/model-runtime';
import { readMetadataProps } from '../src/onnx-metadata';
import { call, fixtureModel, startInProcess, type InProcessScorer } from './support';

interface SelfTest {
  records: Record<string, unknown>[];
  expected: Record<string, number[]>;
}

describe('scorer with a non-FNOL model', function () {
  let scorer: InProcessScorer;
  let selfTest: SelfTest;
  let order: string[];

  before(async () => {
    const model = fixtureModel('generic');
    const props = readMetadataProps(readFileSync(model));
    selfTest = JSON.parse(props.get('self_test') ?? '{}') as SelfTest;
    order = JSON.parse(props.get('feature_order') ?? '[]') as string[];
    scorer = await startInProcess(model);
  });
  after(() => scorer?.close());

  it('reports the served model in /metrics before the first request', async () => {
    const metrics = await call(scorer.url, '/metrics');
    assert.match(metrics.text, /scorer_model_info\{name="rectangles",version="0.3.1",sha256=""\} 1/);
    assert.match(metrics.text, /scorer_ready 1/);
  });

  it('derives the request schema from the model: named records with every output', async () => {
    const reply = await call(scorer.url, '/score', { body: { records: selfTest.records } });
    assert.equal(reply.status, 200, reply.text);
    const body = reply.body as { model: { name: string }; predictions: Record<string, number>[] };
    assert.equal(body.model.name, 'rectangles');
    for (const [output, values] of Object.entries(selfTest.expected)) {
      assert.deepEqual(
        body.predictions.map((p) => p[output]),
        values,
      );
    }
  });

  it('takes positional rows in feature_order and answers the primary output', async () => {
    const rows = selfTest.records.map((r) => order.map((name) => r[name]));
    const reply = await call(scorer.url, '/score', { body: { data: rows } });
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.body, { result: selfTest.expected.area });
  });

  it('names the bad fields of this model', async () => {
    const reply = await call(scorer.url, '/score', {
      body: { records: [{ length: 'long', colour: 'red' }] },
    });
    assert.equal(reply.status, 400);
    const details = (reply.body as { details: { field: string; reason: string }[] }).details;
    assert.ok(details.some((d) => d.field === 'length' && /expected a number/.test(d.reason)));
    assert.ok(details.some((d) => d.field === 'width' && d.reason === 'missing feature'));
  });

  it('serves v2 metadata and inference under its own name', async () => {
    const meta = await call(scorer.url, '/v2/models/rectangles');
    assert.equal(meta.status, 200);
    assert.deepEqual(
      (meta.body as { inputs: { name: string; datatype: string }[] }).inputs.map(
        (i) => `${i.name}:${i.datatype}`,
      ),
      ['length:FP32', 'colour:BYTES', 'width:FP32'],
    );
    const inputs = order.map((name) => ({
      name,
      datatype: name === 'colour' ? 'BYTES' : 'FP32',
      shape: [selfTest.records.length],
      data: selfTest.records.map((r) => r[name]),
    }));
    const reply = await call(scorer.url, '/v2/models/rectangles/infer', { body: { inputs } });
    assert.equal(reply.status, 200, reply.text);
    const outputs = (reply.body as { outputs: { name: string; data: number[] }[] }).outputs;
    assert.deepEqual(outputs.find((o) => o.name === 'colour_score')?.data, selfTest.expected.colour_score);
    assert.equal((await call(scorer.url, '/v2/models/fnol')).status, 404);
  });

  it('publishes an OpenAPI document built from this model', async () => {
    const reply = await call(scorer.url, '/openapi.json');
    const doc = reply.body as {
      info: { title: string };
      components: { schemas: Record<string, { properties?: object }> };
    };
    assert.match(doc.info.title, /rectangles/);
    const records = doc.components.schemas.ScoreRecordsRequest as {
      properties: { records: { items: { required: string[] } } };
    };
    assert.deepEqual(records.properties.records.items.required, order);
  });
});

describe('scorer API keys', function () {
  let scorer: InProcessScorer;
  const body = { data: [[2, 'red', 3]] };
  before(async () => {
    scorer = await startInProcess(fixtureModel('generic'), { apiKeys: ['k-alpha-1', 'k-beta-2'] });
  });
  after(() => scorer?.close());

  it('answers 401 without a key or with a wrong one, naming how to send it', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { 'x-api-key': 'k-alpha-' },
      { authorization: 'Bearer nope' },
      { authorization: 'Basic k-alpha-1' },
    ];
    for (const headers of attempts) {
      const reply = await call(scorer.url, '/score', { body, headers });
      assert.equal(reply.status, 401, JSON.stringify(headers));
      assert.match((reply.body as { error: string }).error, /x-api-key: KEY or Authorization: Bearer KEY/);
      assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer realm="fnol-scorer"/);
    }
    assert.equal((await call(scorer.url, '/v2/models/rectangles')).status, 401);
    assert.equal((await call(scorer.url, '/model')).status, 401);
  });

  it('accepts any configured key in either header; probes and metrics stay open', async () => {
    assert.equal(
      (await call(scorer.url, '/score', { body, headers: { 'x-api-key': 'k-beta-2' } })).status,
      200,
    );
    assert.equal(
      (await call(scorer.url, '/score', { body, headers: { authorization: 'Bearer k-alpha-1' } })).status,
      200,
    );
    for (const path of ['/healthz', '/readyz', '/metrics', '/v2/health/ready']) {
      assert.equal((await call(scorer.url, path)).status, 200, path);
    }
  });
});

describe('scorer readiness', function () {
  it('answers 503 on scoring and readiness until a model is served', async () => {
    const scorer = await startInProcess(fixtureModel('generic'), { noModel: true });
    try {
      const score = await call(scorer.url, '/score', { body: { data: [[1, 'red', 1]] } });
      assert.equal(score.status, 503);
      assert.match((score.body as { error: string }).error, /not ready: model is loading/);
      assert.equal(score.headers.get('retry-after'), '1');
      assert.equal((await call(scorer.url, '/readyz')).status, 503);
      assert.equal((await call(scorer.url, '/v2/health/ready')).status, 503);
      assert.equal(
        (await call(scorer.url, '/v2/models/rectangles/infer', { body: { inputs: [] } })).status,
        503,
      );
      assert.equal((await call(scorer.url, '/healthz')).status, 200);
    } finally {
      await scorer.close();
    }
  });

  it('turns not ready when draining but finishes requests on open connections', async () => {
    const scorer = await startInProcess(fixtureModel('generic'));
    try {
      assert.equal((await call(scorer.url, '/readyz')).status, 200);
      scorer.state.startDraining(0);
      const ready = await call(scorer.url, '/readyz');
      assert.equal(ready.status, 503);
      assert.deepEqual(ready.body, { status: 'not ready', reason: 'shutting down' });
      const score = await call(scorer.url, '/score', { body: { data: [[1, 'red', 1]] } });
      assert.equal(score.status, 200);
      assert.equal(score.headers.get('connection'), 'close');
    } finally {
      await scorer.close();
    }
  });

  it('answers a request that was in flight when draining started with Connection: close', async () => {
    const scorer = await startInProcess(fixtureModel('generic'));
    try {
      const body = JSON.stringify({ data: [[1, 'red', 1]] });
      const agent = new Agent({ keepAlive: true });
      const answer = new Promise<string | undefined>((resolve, reject) => {
        const req = httpRequest(
          `${scorer.url}/score`,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': body.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.headers.connection));
          },
        );
        req.on('error', reject);
        req.write(body.slice(0, 4));
        setTimeout(() => {
          scorer.state.startDraining(0);
          req.end(body.slice(4));
        }, 100);
      });
      assert.equal(await answer, 'close');
      agent.destroy();
    } finally {
      await scorer.close();
    }
  });

  it('is not ready when the self-test does not match', async () => {
    const scorer = await startInProcess(fixtureModel('generic'), { noModel: true });
    try {
      const runtime = await loadModelRuntime(
        readFileSync(fixtureModel('generic')),
        { name: undefined, version: undefined },
        {
          intraOpThreads: 1,
        },
      );
      scorer.state.setModel({
        runtime,
        sha256: undefined,
        card: undefined,
        selfTest: { passed: false, mismatches: ['area[0]: got 7, expected 8'] },
      });
      const ready = await call(scorer.url, '/readyz');
      assert.equal(ready.status, 503);
      assert.match(
        (ready.body as { reason: string }).reason,
        /self-test failed: area\[0\]: got 7, expected 8/,
      );
      assert.equal((await call(scorer.url, '/score', { body: { data: [[1, 'red', 1]] } })).status, 503);
    } finally {
      await scorer.close();
    }
  });
});

describe('scorer with an injected clock', function () {
  it('measures request latency with the clock it is given', async () => {
    let now = 0;
    // Every reading advances 3 ms. A request reads the clock when it arrives,
    // for its Server-Timing and when it ends: it takes exactly 6 ms, and says 3.
    const scorer = await startInProcess(fixtureModel('generic'), { clock: { now: () => (now += 3) } });
    try {
      const answer = await call(scorer.url, '/score', { body: { data: [[1, 'red', 1]] } });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('server-timing'), 'app;dur=3.000');
      const text = await scorer.metrics.registry.metrics();
      assert.match(text, /scorer_http_request_duration_seconds_bucket\{le="0.005",route="\/score"\} 0/);
      assert.match(text, /scorer_http_request_duration_seconds_bucket\{le="0.01",route="\/score"\} 1/);
      assert.match(text, /scorer_http_request_duration_seconds_sum\{route="\/score"\} 0.006/);
    } finally {
      await scorer.close();
    }
  });
});

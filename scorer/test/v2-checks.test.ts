// The Open Inference Protocol (v2) refuses what POST /score refuses, with the same
// reasons: values are checked by one validation path for both protocols, deep
// nesting is a 400 (never a 500), and error details stay small whatever the
// request holds.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readMetadataProps } from '../src/onnx-metadata';
import { SMOKE_ROWS, call, fnolModel, startInProcess, type InProcessScorer } from './support';

interface Problem {
  index?: number;
  field?: string;
  reason?: string;
}
interface ErrorReply {
  error: string;
  details?: Problem[];
}

describe('OIP v2 checks equal to /score', function () {
  let scorer: InProcessScorer;
  const props = readMetadataProps(readFileSync(fnolModel()));
  const order = JSON.parse(props.get('feature_order') ?? '[]') as string[];
  const features = JSON.parse(props.get('features') ?? '[]') as { name: string; type: string }[];
  const isText = (name: string) => features.find((f) => f.name === name)?.type === 'string';
  const row = (): unknown[] => [...(SMOKE_ROWS[0] as number[])];
  const record = (): Record<string, unknown> => Object.fromEntries(order.map((n, i) => [n, row()[i]]));
  const v2Inputs = () =>
    order.map((name, i) => ({
      name,
      datatype: isText(name) ? 'BYTES' : 'FP32',
      shape: [1, 1],
      data: [isText(name) ? String(row()[i]) : row()[i]],
    }));
  const numberFeature = order.find((n) => !isText(n)) as string;
  const textFeature = order.find((n) => isText(n)) as string;

  /** The same bad value sent to both protocols: {field, reason} of each answer. */
  const both = async (
    field: string,
    raw: string,
  ): Promise<{ score: { status: number; body: ErrorReply }; v2: { status: number; body: ErrorReply } }> => {
    const placeholder = '"__VALUE__"';
    const scoreBody = JSON.stringify({ records: [{ ...record(), [field]: '__VALUE__' }] }).replace(
      placeholder,
      raw,
    );
    const v2Body = JSON.stringify({
      inputs: v2Inputs().map((i) => (i.name === field ? { ...i, data: ['__VALUE__'] } : i)),
    }).replace(placeholder, raw);
    const score = await call(scorer.url, '/score', { raw: scoreBody });
    const v2 = await call(scorer.url, '/v2/models/fnol/infer', { raw: v2Body });
    return {
      score: { status: score.status, body: score.body as ErrorReply },
      v2: { status: v2.status, body: v2.body as ErrorReply },
    };
  };

  before(async () => {
    scorer = await startInProcess(fnolModel(), {
      limits: { maxBodyBytes: 16 * 1024 * 1024, maxBatchRecords: 1000 },
    });
  });
  after(() => scorer?.close());

  it('refuses a number beyond float32 (1e308) with 400 and the reason /score gives', async () => {
    const { score, v2 } = await both(numberFeature, '1e308');
    assert.equal(score.status, 400);
    assert.equal(v2.status, 400, JSON.stringify(v2.body));
    const reason = score.body.details?.find((d) => d.field === numberFeature)?.reason;
    assert.equal(reason, 'number outside the float32 range the model computes in');
    assert.ok(
      v2.body.details?.some((d) => d.field === numberFeature && d.reason === reason),
      JSON.stringify(v2.body),
    );
  });

  it('refuses a 7 MB category string with 400, the same limit as /score', async () => {
    const { score, v2 } = await both(textFeature, JSON.stringify('x'.repeat(7 * 1024 * 1024)));
    assert.equal(score.status, 400);
    assert.equal(v2.status, 400, JSON.stringify(v2.body).slice(0, 300));
    const reason = score.body.details?.find((d) => d.field === textFeature)?.reason;
    assert.match(reason ?? '', /category text longer than 1000 characters/);
    assert.ok(v2.body.details?.some((d) => d.field === textFeature && d.reason === reason));
  });

  it('refuses deep nesting in v2 data with 400, not a 500', async () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const { score, v2 } = await both(numberFeature, deep);
    assert.equal(score.status, 400, JSON.stringify(score.body).slice(0, 300));
    assert.equal(v2.status, 400, JSON.stringify(v2.body).slice(0, 300));
    assert.match(v2.body.error, /nest|does not match/);
  });

  it('refuses deep nesting in v2 parameters with 400, not a 500', async () => {
    const deep = '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000);
    const raw = JSON.stringify({ inputs: v2Inputs(), parameters: '__P__' }).replace('"__P__"', deep);
    const reply = await call(scorer.url, '/v2/models/fnol/infer', { raw });
    assert.equal(reply.status, 400, reply.text.slice(0, 300));
  });

  it('bounds the error details: 300,000 or 20,000 unknown outputs give a short answer', async () => {
    for (const count of [300_000, 20_000]) {
      const outputs = Array.from({ length: count }, (_, i) => ({ name: `out${i}` }));
      const reply = await call(scorer.url, '/v2/models/fnol/infer', {
        body: { inputs: v2Inputs(), outputs },
      });
      // 300,000 objects are over the body's structure limit (413), 20,000 are
      // refused by the v2 checks (400).
      assert.equal(reply.status, count > 100_000 ? 413 : 400, reply.text.slice(0, 300));
      assert.ok(reply.text.length < 32 * 1024, `error answer of ${reply.text.length} bytes`);
      assert.match((reply.body as ErrorReply).error, /outputs|arrays and objects/);
    }
  });

  it('refuses repeated outputs instead of answering each one', async () => {
    const outputs = Array.from({ length: 10_000 }, () => ({ name: 'ultimate_cost' }));
    const reply = await call(scorer.url, '/v2/models/fnol/infer', { body: { inputs: v2Inputs(), outputs } });
    assert.equal(reply.status, 400, reply.text.slice(0, 300));
    assert.ok(reply.text.length < 32 * 1024, `answer of ${reply.text.length} bytes`);
  });

  it('bounds the error details of /score too, saying how many were left out', async () => {
    const bad = Array.from({ length: 1000 }, () =>
      Object.fromEntries(order.map((n) => [n, isText(n) ? 2.5 : 'x'])),
    );
    const reply = await call(scorer.url, '/score', { body: { records: bad } });
    assert.equal(reply.status, 400);
    const details = (reply.body as ErrorReply).details ?? [];
    assert.ok(details.length <= 101, `${details.length} details`);
    assert.match(details[details.length - 1]?.reason ?? '', /more problems? not listed/);
  });

  it('refuses deep nesting in v2 data with 400 even with the overload guard off', async () => {
    const unguarded = await startInProcess(fnolModel(), {
      limits: { maxBodyBytes: 1024 * 1024, overload: { enabled: false } },
    });
    try {
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      const raw = JSON.stringify({
        inputs: v2Inputs().map((i) => (i.name === numberFeature ? { ...i, data: ['__V__'] } : i)),
      }).replace('"__V__"', deep);
      const reply = await call(unguarded.url, '/v2/models/fnol/infer', { raw });
      assert.equal(reply.status, 400, reply.text.slice(0, 300));
      assert.match((reply.body as ErrorReply).error, /does not match/);
    } finally {
      await unguarded.close();
    }
  });

  it('still scores a valid v2 request with nested [N, 1] data', async () => {
    const inputs = v2Inputs().map((i) => ({ ...i, shape: [2, 1], data: [i.data, i.data] }));
    const reply = await call(scorer.url, '/v2/models/fnol/infer', { body: { inputs } });
    assert.equal(reply.status, 200, reply.text.slice(0, 300));
  });
});

// The pure parts of shadow mirroring: the relative difference, the comparison
// of each answer form (and what counts as another shape or version), the
// bounded queue and the sampler, and locating the records array of a raw body
// to send several copies as one.

import assert from 'node:assert/strict';
import { combinedBody, recordsSpan } from '../src/shadow/coalesce';
import { compareAnswers, compareList, relativeDifference, type StableAnswer } from '../src/shadow/comparer';
import { CopyQueue } from '../src/shadow/queue';
import { Sampler } from '../src/shadow/sampler';
import { CandidateError, serverSeconds } from '../src/shadow/sender';
import { bucketOf } from '../src/shadow/summary';

const stable = (form: StableAnswer['form'], values: number[], width = 1): StableAnswer => ({
  form,
  records: values.length / width,
  outputs: [{ name: 'cost', width, values: Float32Array.from(values) }],
});

const kindOf = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    if (error instanceof CandidateError) return error.kind;
    throw error;
  }
  return 'none';
};

describe('shadow comparison', () => {
  it('relative difference: |c - s| / max(|s|, 1), absolute below 1, missing values', () => {
    assert.equal(relativeDifference(1000, 1010), 0.01);
    assert.equal(relativeDifference(-200, -100), 0.5);
    assert.equal(relativeDifference(0.25, 0.5), 0.25);
    assert.equal(relativeDifference(0, 0), 0);
    assert.equal(relativeDifference(NaN, null), 0);
    assert.equal(relativeDifference(3, null), Infinity);
    assert.equal(relativeDifference(NaN, 3), Infinity);
  });

  it('buckets like Prometheus: a value equal to a bound is in that bound', () => {
    const bounds = [0.1, 1];
    assert.deepEqual(
      [0, 0.1, 0.5, 1, 2, Infinity].map((v) => bucketOf(bounds, v)),
      [0, 0, 1, 1, 2, 2],
    );
  });

  it('compares "data" answers on the primary output, record by record', () => {
    const s = stable('data', [100, 2, 0.5]);
    const c = compareAnswers(s, { result: [101, 2, 0.75] }, '1.1.0');
    assert.deepEqual(
      c.outputs.map((o) => [o.name, [...o.differences]]),
      [['cost', [0.01, 0, 0.25]]],
    );
    assert.equal(
      kindOf(() => compareAnswers(s, { result: [1, 2] }, '1.1.0')),
      'shape',
    );
    assert.equal(
      kindOf(() => compareAnswers(s, { result: [1, 2, '3'] }, '1.1.0')),
      'shape',
    );
    assert.equal(
      kindOf(() => compareAnswers(s, [1, 2, 3], '1.1.0')),
      'shape',
    );
  });

  it('compares "records" answers output by output, the worst value of a wide output per record', () => {
    const s = stable('records', [1, 2, 3, 4], 2);
    const good = { model: { version: '1.1.0' }, predictions: [{ cost: [1, 2.5] }, { cost: [3, 4] }] };
    assert.deepEqual([...(compareAnswers(s, good, '1.1.0').outputs[0]?.differences ?? [])], [0.25, 0]);
    assert.equal(
      kindOf(() => compareAnswers(s, good, '1.0.0')),
      'version',
    );
    const narrow = { model: { version: '1.1.0' }, predictions: [{ cost: 1 }, { cost: 3 }] };
    assert.equal(
      kindOf(() => compareAnswers(s, narrow, '1.1.0')),
      'shape',
    );
    const missing = { model: { version: '1.1.0' }, predictions: [{ cost: [1, 2] }, {}] };
    assert.equal(
      kindOf(() => compareAnswers(s, missing, '1.1.0')),
      'shape',
    );
    const inherited = {
      model: { version: '1.1.0' },
      predictions: [{ cost: [1, 2] }, Object.create({ cost: [3, 4] })],
    };
    assert.equal(
      kindOf(() => compareAnswers(s, inherited, '1.1.0')),
      'shape',
    );
  });

  it('compares v2 answers by output name, checking shape, length and model_version', () => {
    const s = stable('v2', [10, 20]);
    const answer = (more: object) => ({
      model_name: 'fnol',
      model_version: '1.1.0',
      outputs: [
        { name: 'other', shape: [2, 1], data: [0, 0] },
        { name: 'cost', shape: [2, 1], data: [10, 22], ...more },
      ],
    });
    assert.deepEqual([...(compareAnswers(s, answer({}), '1.1.0').outputs[0]?.differences ?? [])], [0, 0.1]);
    assert.equal(
      kindOf(() => compareAnswers(s, answer({}), '9')),
      'version',
    );
    assert.equal(
      kindOf(() => compareAnswers(s, answer({ shape: [3, 1] }), '1.1.0')),
      'shape',
    );
    assert.equal(
      kindOf(() => compareAnswers(s, answer({ data: [10] }), '1.1.0')),
      'shape',
    );
    assert.equal(
      kindOf(() => compareAnswers(s, answer({ name: 'costs' }), '1.1.0')),
      'shape',
    );
  });
  it('compares each request of a combined answer with its own part, as if the part were its answer', () => {
    // Three requests sent together: 1, 2 and 1 records; the candidate's list holds 4.
    const parts = [stable('data', [10]), stable('data', [100, 0.5]), stable('data', [7])];
    const result = [11, 100, 0.75, null];
    let offset = 0;
    const together = parts.map((part) => {
      const c = compareList(part, result, offset);
      offset += part.records;
      return [...(c.outputs[0]?.differences ?? [])];
    });
    const alone = parts.map((part, i) => {
      const own = result.slice([0, 1, 3][i], [1, 3, 4][i]);
      return [...(compareAnswers(part, { result: own }, '1.1.0').outputs[0]?.differences ?? [])];
    });
    assert.deepEqual(together, [[0.1], [0, 0.25], [Infinity]]);
    assert.deepEqual(together, alone);
    // A value that cannot be compared is named by its position in its own request.
    assert.throws(
      () => compareList(stable('data', [1, 2]), [1, 2, 3, 'x'], 2),
      (e: unknown) =>
        e instanceof CandidateError && e.kind === 'shape' && /^result\[1\] is not a number$/.test(e.message),
    );
    const records: StableAnswer = {
      form: 'records',
      records: 1,
      outputs: [
        { name: 'cost', width: 1, values: Float32Array.from([4]) },
        { name: 'probs', width: 2, values: Float32Array.from([0.5, 0.25]) },
      ],
    };
    const predictions = [{}, { cost: 5, probs: [0.5, 0.5] }];
    const c = compareList(records, predictions, 1);
    assert.deepEqual(
      c.outputs.map((o) => [...o.differences]),
      [[0.25], [0.25]],
    );
    assert.throws(
      () => compareList(records, [{ cost: 5, probs: [0.5] }], 0),
      (e: unknown) =>
        e instanceof CandidateError && e.message === 'predictions[0].probs is not an array of 2 numbers',
    );
    assert.equal(
      kindOf(() => compareList(records, predictions, 0)),
      'shape',
    );
  });
});

describe("the candidate's own time (Server-Timing)", () => {
  it("reads the app metric's duration, in seconds, and nothing else", () => {
    assert.equal(serverSeconds('app;dur=12.5'), 0.0125);
    assert.equal(serverSeconds('db;dur=40, app;desc="scoring";dur=3'), 0.003);
    assert.equal(serverSeconds(['cache;dur=1', 'app;dur=7']), 0.007);
    assert.equal(serverSeconds(undefined), undefined);
    assert.equal(serverSeconds('app'), undefined);
    assert.equal(serverSeconds('appx;dur=5'), undefined);
    assert.equal(serverSeconds('app;dur=-5'), undefined);
    assert.equal(serverSeconds('app;dur=1e9'), undefined);
    assert.equal(serverSeconds(`app;dur=1${' '.repeat(2000)}`), undefined);
  });
});

describe('shadow queue and sampler', () => {
  it('queues up to its size and bytes, drops the rest at once, and runs at most `concurrency` copies', async () => {
    const running: (() => void)[] = [];
    let maxRunning = 0;
    const done: number[] = [];
    const queue = new CopyQueue<number>(
      { size: 3, maxBytes: 1000, concurrency: 2 },
      (n) => (n >= 100 ? 600 : 1),
      (n) =>
        new Promise<void>((finish) => {
          running.push(() => {
            done.push(n);
            finish();
          });
          maxRunning = Math.max(maxRunning, running.length);
        }),
      (error) => assert.fail(String(error)),
    );
    const accepted = [1, 2].map((n) => queue.offer(n));
    await new Promise((r) => setImmediate(r)); // both workers took one
    accepted.push(...[3, 4, 5, 6].map((n) => queue.offer(n)));
    assert.deepEqual(accepted, [true, true, true, true, true, false]);
    const bytes = new CopyQueue<number>(
      { size: 10, maxBytes: 1000, concurrency: 1 },
      (n) => n,
      () => new Promise(() => undefined),
      () => undefined,
    );
    assert.deepEqual([bytes.offer(600), bytes.offer(600), bytes.offer(400)], [true, false, true]);
    assert.equal(queue.pending, 5);
    while (done.length < 5) {
      running.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(done, [1, 2, 3, 4, 5]);
    assert.equal(maxRunning, 2);
    assert.equal(queue.pending, 0);
    queue.close();
    assert.equal(queue.offer(7), false);
  });

  it('samples SHADOW_PERCENT of the requests', () => {
    const draws = [0.05, 0.3, 0.6, 0.95];
    const at = (percent: number) => {
      let i = 0;
      const sampler = new Sampler(percent, () => draws[i++ % draws.length] as number);
      return draws.map(() => sampler.take());
    };
    assert.deepEqual(at(0), [false, false, false, false]);
    assert.deepEqual(at(50), [true, true, false, false]);
    assert.deepEqual(at(100), [true, true, true, true]);
  });
});

describe('shadow copies sent together', () => {
  const span = (text: string) => {
    const body = Buffer.from(text);
    const found = recordsSpan(body);
    return found === undefined ? undefined : body.toString('utf8', found.start, found.end);
  };

  it('locates the top-level "records" array as JSON.parse reads it', () => {
    assert.equal(span('{"records":[{"a":1}]}'), '{"a":1}');
    assert.equal(span(' \r\n{ "records" :\t[ {"a": 1}, {"a": 2} ] }\n'), ' {"a": 1}, {"a": 2} ');
    // Brackets, braces, quotes and the key itself inside strings, and another key before it.
    assert.equal(
      span('{"x": {"records": [9]}, "records": [{"s": "]}\\"records\\": [\\\\"}, {"t": "\\\\"}]}'),
      '{"s": "]}\\"records\\": [\\\\"}, {"t": "\\\\"}',
    );
    // JSON.parse keeps the last of two keys, and decodes escapes in keys.
    assert.equal(span('{"records": [1], "records": [{"b": 2}]}'), '{"b": 2}');
    assert.equal(span('{"rec\\u006frds": [{"c": 3}]}'), '{"c": 3}');
    assert.equal(span('{"records": [{"d": 4}], "rec\\u006frds": 7}'), undefined);
    assert.equal(
      span('{"records": [{"e": 5}], "other": [1, {"f": null}], "n": -1.5e3, "t": true}'),
      '{"e": 5}',
    );
  });

  it('leaves alone what it cannot lay out: the copy is then sent alone', () => {
    for (const text of [
      '[{"records": [1]}]',
      '{"data": [[1]]}',
      '{"records": {"a": 1}}',
      '{"records": [1]} x',
      '{"records": [1]',
      '{"records": ["]}',
      '{}',
      '',
    ]) {
      assert.equal(span(text), undefined, text);
    }
  });

  it('joins the records of several bodies, in order, into one JSON body', () => {
    const bodies = [
      '{"records": [{"a": 1}, {"a": "x]"}]}',
      '{ "model": "m", "records" : [ {"a": [2, 3]} ] }',
      '{"records":[{"a":null}]}',
    ].map((text) => Buffer.from(text));
    const parts = bodies.map((body) => ({ body, span: recordsSpan(body)! }));
    const joined = JSON.parse(combinedBody(parts).toString()) as unknown;
    assert.deepEqual(joined, {
      records: bodies.flatMap((b) => (JSON.parse(b.toString()) as { records: unknown[] }).records),
    });
  });

  it('the queue hands a worker the copy at its head only when it is accepted', () => {
    const queue = new CopyQueue<number>(
      { size: 10, maxBytes: 100, concurrency: 0 },
      () => 1,
      async () => {},
      () => {},
    );
    for (const n of [1, 2, 3]) queue.offer(n);
    assert.equal(
      queue.takeIf((n) => n === 2),
      undefined,
    );
    assert.equal(
      queue.takeIf((n) => n === 1),
      1,
    );
    assert.equal(
      queue.takeIf(() => true),
      2,
    );
    assert.equal(queue.pending, 1);
    assert.equal(
      queue.takeIf(() => true),
      3,
    );
    assert.equal(
      queue.takeIf(() => true),
      undefined,
    );
  });
});

// "Nothing a client sends produces a 500": seeded random requests over both
// protocols (/score and OIP v2), mutated around the places where checks live
// (datatypes, shapes, nesting, number range, string length, outputs, headers),
// bounded in count and in time. Every answer must be below 500.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { readMetadataProps } from '../../src/onnx-metadata';
import { SMOKE_ROWS, call, fnolModel, startInProcess, type InProcessScorer } from '../support';

const COUNT = 4000;
const SECONDS = 60;

describe('fuzzed requests over /score and OIP v2', function () {
  this.timeout((SECONDS + 60) * 1000);
  const props = readMetadataProps(readFileSync(fnolModel()));
  const order = JSON.parse(props.get('feature_order') ?? '[]') as string[];
  const features = JSON.parse(props.get('features') ?? '[]') as { name: string; type: string }[];
  const isText = (name: string) => features.find((f) => f.name === name)?.type === 'string';
  let scorer: InProcessScorer;

  before(async () => {
    scorer = await startInProcess(fnolModel(), {
      limits: { maxBodyBytes: 1024 * 1024, maxBatchRecords: 100 },
    });
  });
  after(() => scorer?.close());

  it(`answers ${COUNT} fuzzed requests (or ${SECONDS} s of them) without a 5xx`, async () => {
    let seed = 11_2024;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const int = (n: number) => Math.floor(random() * n);
    const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
    const chance = (p: number) => random() < p;
    const nested = (depth: number, inner: string) => '['.repeat(depth) + inner + ']'.repeat(depth);
    // A value replaced by deeply nested arrays once the body is text.
    const DEEP = '__deep__';
    const deepen = (text: string) =>
      text.replace(/"__deep__"/g, () => nested(1 + int(50_000), pick(['1', '"Y"', ''])));
    const scalars: unknown[] = [
      0,
      -1,
      2.5,
      1e308,
      -1e308,
      3.5e38,
      -3.4e38,
      2 ** 53 + 2,
      'Y',
      '',
      'n/k',
      '\u0000',
      '\ud83d\ude97',
      'x'.repeat(1001),
      null,
      true,
      {},
      [],
      [1],
      [[1]],
    ];
    const value = (text: boolean, r: number) =>
      chance(0.995)
        ? text
          ? String(SMOKE_ROWS[0]?.[r % 37])
          : (SMOKE_ROWS[0]?.[r % 37] ?? 1)
        : chance(0.3)
          ? DEEP
          : pick(scalars);
    const datatypes = ['FP32', 'FP64', 'INT64', 'BYTES', 'BOOL', 'fp32', '', 'UINT8'];
    const shapes = (n: number): unknown[] => [
      [n],
      [n, 1],
      [n, 2],
      [0],
      [],
      [-1],
      [1.5],
      [1e20],
      ['1'],
      [n, 1, 1],
    ];

    /** A v2 body: mostly valid, with a few mutations; `splice` leaves a place for raw text. */
    const v2Body = (): string => {
      const n = chance(0.1) ? int(300) : 1 + int(3);
      let inputs: unknown[] = order.map((name, f) => {
        const text = isText(name);
        const rows = Array.from({ length: n }, (_, r) => value(text, f + r));
        return {
          name: chance(0.03) ? pick(['', 'Colour', order[0]]) : name,
          datatype: chance(0.05) ? pick(datatypes) : text ? 'BYTES' : 'FP32',
          shape: chance(0.05) ? pick(shapes(n)) : [n, 1],
          data: chance(0.3) ? rows.map((v) => [v]) : rows,
          ...(chance(0.05) ? { parameters: { content_type: 'str' } } : {}),
        };
      });
      if (chance(0.05)) inputs = inputs.slice(int(inputs.length));
      if (chance(0.03)) inputs = [...inputs, ...inputs];
      const body: Record<string, unknown> = { inputs };
      if (chance(0.2)) {
        body.outputs = Array.from({ length: pick([0, 1, 3, 4, 50, 5000]) }, (_, i) => ({
          name: pick(['ultimate_cost', 'attritional_cost', `o${i}`, '']),
        }));
      }
      if (chance(0.1)) body.id = pick(['claim-1', 7, 'x'.repeat(300), null]);
      if (chance(0.05)) body.extra = 1;
      let text = JSON.stringify(body);
      // Deep nesting spliced into a value, the parameters or the data.
      text = deepen(text);
      if (chance(0.05)) {
        const depth = 1 + int(20_000);
        text = text.replace(/^\{/, `{"parameters":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)},`);
      }
      return text;
    };
    const scoreBody = (): string => {
      const n = chance(0.1) ? int(150) : 1 + int(3);
      const asRecords = chance(0.5);
      const rows = Array.from({ length: n }, (_, r) => order.map((name, f) => value(isText(name), f + r)));
      let text = asRecords
        ? JSON.stringify({ records: rows.map((row) => Object.fromEntries(order.map((k, i) => [k, row[i]]))) })
        : JSON.stringify({ data: rows });
      text = deepen(text);
      if (chance(0.05)) text = text.slice(0, int(text.length));
      return text;
    };
    const rawBody = (): string => {
      switch (int(5)) {
        case 0:
          return nested(int(200_000), '');
        case 1:
          return '{"a":'.repeat(int(50_000));
        case 2:
          return '[' + '[],'.repeat(int(100_000)) + '[]]';
        case 3:
          return Buffer.from(Array.from({ length: int(300) }, () => int(256))).toString('latin1');
        default:
          return JSON.stringify({ data: 'x'.repeat(int(2_000_000)) });
      }
    };
    const paths = [
      '/score',
      '/score',
      '/v2/models/fnol/infer',
      '/v2/models/fnol/infer',
      '/v2/models/fnol/versions/1.0.0/infer',
      '/v2/models/other/infer',
    ];
    const contentTypes = [
      'application/json',
      'application/json',
      'application/json',
      'text/plain',
      'application/x+json',
    ];

    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    const stopAt = Date.now() + SECONDS * 1000;
    let next = 0;
    const worker = async () => {
      while (next < COUNT && Date.now() < stopAt) {
        next++;
        const path = pick(paths);
        const kind = random();
        const payload = kind < 0.1 ? rawBody() : path.startsWith('/v2') ? v2Body() : scoreBody();
        const status = await new Promise<number>((resolve) => {
          const req = httpRequest(
            `${scorer.url}${path}`,
            { method: 'POST', headers: { 'content-type': pick(contentTypes) }, agent },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          // A body over the limit may be cut off once answered: not a server error.
          req.on('error', () => resolve(-1));
          req.end(payload);
        });
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status < 500, `status ${status} on ${path} for ${payload.slice(0, 300)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    agent.destroy();
    const seen = JSON.stringify([...statuses].sort());
    assert.ok(next >= 500, `only ${next} requests in ${SECONDS} s: ${seen}`);
    assert.ok((statuses.get(200) ?? 0) > 50, `some requests were valid: ${seen}`);
    assert.ok((statuses.get(400) ?? 0) > 50, `some were refused: ${seen}`);
    const after = await call(scorer.url, '/score', { body: { data: [SMOKE_ROWS[0]] } });
    assert.equal(after.status, 200);
  });
});

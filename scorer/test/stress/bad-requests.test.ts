// Bad requests get the right status and a message naming the problem; random and
// malformed bodies never produce a 5xx or bring the process down.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { readMetadataProps } from '../../src/onnx-metadata';
import { SMOKE_ROWS, call, fnolModel, startInProcess, type InProcessScorer } from '../support';

interface Case {
  name: string;
  path?: string;
  method?: string;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  status: number;
  message: RegExp;
  /** Expected entries of `details`, matched as subsets. */
  details?: Record<string, unknown>[];
}

const row = (): unknown[] => [...(SMOKE_ROWS[0] as number[])];
const fnolRecord = (order: string[]): Record<string, unknown> =>
  Object.fromEntries(order.map((name, i) => [name, row()[i]]));

describe('scorer rejects bad requests with a clear status and message', function () {
  let scorer: InProcessScorer;
  // The table is built from the model's own metadata, read when the suite is defined.
  const props = readMetadataProps(readFileSync(fnolModel()));
  const order = JSON.parse(props.get('feature_order') ?? '[]') as string[];
  const features = JSON.parse(props.get('features') ?? '[]') as { name: string; type: string }[];
  const isText = (name: string) => features.find((f) => f.name === name)?.type === 'string';

  before(async () => {
    scorer = await startInProcess(fnolModel(), { limits: { maxBodyBytes: 64 * 1024, maxBatchRecords: 50 } });
  });
  after(() => scorer?.close());

  const cases = (): Case[] => {
    const record = () => fnolRecord(order);
    const without = (field: string) => {
      const r = record();
      delete r[field];
      return r;
    };
    const withValue = (field: string, value: unknown) => ({ ...record(), [field]: value });
    const v2Inputs = () =>
      order.map((name) => ({
        name,
        datatype: isText(name) ? 'BYTES' : 'FP32',
        shape: [1, 1],
        data: [isText(name) ? 'Y' : 1],
      }));
    return [
      { name: 'body not JSON', raw: '{"data": [[1, 2', status: 400, message: /not valid JSON/ },
      { name: 'empty body', raw: '', status: 400, message: /body is empty/ },
      {
        name: 'content type not JSON',
        raw: 'data=1',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        status: 415,
        message: /Content-Type: application\/json/,
      },
      { name: 'body is an array', body: [[1, 2, 3]], status: 400, message: /JSON object with "data"/ },
      {
        name: 'neither data nor records',
        body: { rows: [] },
        status: 400,
        message: /needs "data".*or "records"/,
      },
      {
        name: 'both data and records',
        body: { data: [], records: [] },
        status: 400,
        message: /either "data" or "records"/,
      },
      {
        name: 'empty data',
        body: { data: [] },
        status: 400,
        message: /does not match/,
        details: [{ reason: '"data" is empty; send at least one row' }],
      },
      {
        name: 'row too short',
        body: { data: [row().slice(0, 36)] },
        status: 400,
        message: /does not match/,
        details: [
          { index: 0, reason: 'row has 36 values; the model takes 37, in the order of feature_order' },
        ],
      },
      {
        name: 'row too long',
        body: { data: [row(), [...row(), 38]] },
        status: 400,
        message: /does not match/,
        details: [
          { index: 1, reason: 'row has 38 values; the model takes 37, in the order of feature_order' },
        ],
      },
      {
        name: 'row is not an array',
        body: { data: [{ a: 1 }] },
        status: 400,
        message: /does not match/,
        details: [{ index: 0, reason: 'row must be an array of 37 values, got an object' }],
      },
      {
        name: 'text in a numeric position',
        body: { data: [row(), row().map((v, i) => (i === 0 ? 'three' : v))] },
        status: 400,
        message: /does not match/,
        details: [
          {
            index: 1,
            position: 0,
            field: 'Notification_period',
            reason: 'wrong type: expected a number, got the string "three"',
          },
        ],
      },
      {
        name: 'fraction in a categorical position',
        body: { data: [row().map((v, i) => (i === 1 ? 2.5 : v))] },
        status: 400,
        message: /does not match/,
        details: [{ index: 0, position: 1, field: 'Location_of_incident', reason: /got the number 2.5/ }],
      },
      {
        name: 'boolean in a categorical position',
        body: { data: [row().map((v, i) => (i === 3 ? true : v))] },
        status: 400,
        message: /does not match/,
        details: [
          {
            index: 0,
            position: 3,
            field: 'Vehicle_mobile',
            reason: /expected a string or an integer, got boolean true/,
          },
        ],
      },
      {
        name: 'null where the model has no missing value',
        body: { data: [row().map((v, i) => (i === 1 ? null : v))] },
        status: 400,
        message: /does not match/,
        details: [
          {
            index: 0,
            field: 'Location_of_incident',
            reason: 'missing value: this feature does not accept null',
          },
        ],
      },
      {
        name: 'missing feature in a record',
        body: { records: [record(), without('Main_driver')] },
        status: 400,
        message: /does not match/,
        details: [{ index: 1, field: 'Main_driver', reason: 'missing feature' }],
      },
      {
        name: 'unknown field in a record',
        body: { records: [{ ...record(), Colour: 'red' }] },
        status: 400,
        message: /does not match/,
        details: [
          { index: 0, field: 'Colour', reason: 'unknown field: the model has no feature of this name' },
        ],
      },
      {
        name: 'wrong type in a record',
        body: { records: [record(), record(), withValue('TP_injury_whiplash', '1')] },
        status: 400,
        message: /does not match/,
        details: [
          {
            index: 2,
            field: 'TP_injury_whiplash',
            reason: 'wrong type: expected a number, got the string "1"',
          },
        ],
      },
      {
        name: 'null for a non-nullable record feature',
        body: { records: [withValue('Main_driver', null)] },
        status: 400,
        message: /does not match/,
        details: [
          { index: 0, field: 'Main_driver', reason: 'missing value: this feature does not accept null' },
        ],
      },
      {
        name: 'several problems in several records, each named',
        body: { records: [without('Vehicle_mobile'), withValue('Notification_period', [])] },
        status: 400,
        message: /does not match/,
        details: [
          { index: 0, field: 'Vehicle_mobile', reason: 'missing feature' },
          { index: 1, field: 'Notification_period', reason: 'wrong type: expected a number, got an array' },
        ],
      },
      {
        name: 'record is not an object',
        body: { records: [7] },
        status: 400,
        message: /does not match/,
        details: [{ index: 0, reason: 'record must be an object of feature: value, got number 7' }],
      },
      {
        name: 'huge integer as a category',
        body: { records: [withValue('Main_driver', 1e300)] },
        status: 400,
        message: /does not match/,
        details: [{ index: 0, field: 'Main_driver', reason: /too large/ }],
      },
      {
        name: 'number beyond float32',
        raw: JSON.stringify({ records: [withValue('TP_type_driver', 0)] }).replace(
          '"TP_type_driver":0',
          '"TP_type_driver":1e39',
        ),
        status: 400,
        message: /does not match/,
        details: [
          {
            index: 0,
            field: 'TP_type_driver',
            reason: 'number outside the float32 range the model computes in',
          },
        ],
      },
      {
        name: 'unknown top-level field',
        body: { data: [row()], model: 'fnol' },
        status: 400,
        message: /does not match/,
        details: [{ reason: 'unknown top-level field "model"; send only "data"' }],
      },
      {
        name: 'batch over the limit',
        body: { data: Array.from({ length: 51 }, row) },
        status: 413,
        message: /batch of 51 is over the limit of 50 records/,
      },
      {
        name: 'body over the limit',
        raw: JSON.stringify({ data: [row()], pad: 'x'.repeat(70 * 1024) }),
        status: 413,
        message: /over the limit of 65536 bytes/,
      },
      {
        name: 'v2 unknown model',
        path: '/v2/models/motor/infer',
        body: { inputs: v2Inputs() },
        status: 404,
        message: /model "motor" not found; this server serves "fnol"/,
      },
      {
        name: 'v2 unknown version',
        path: '/v2/models/fnol/versions/9.9.9',
        method: 'GET',
        status: 404,
        message: /version "9.9.9" not found/,
      },
      {
        name: 'v2 missing input',
        path: '/v2/models/fnol/infer',
        body: { inputs: v2Inputs().slice(1) },
        status: 400,
        message: /does not match the model inputs/,
        details: [{ field: 'Notification_period', reason: 'missing input' }],
      },
      {
        name: 'v2 wrong datatype',
        path: '/v2/models/fnol/infer',
        body: {
          inputs: v2Inputs().map((i) =>
            i.name === 'Main_driver' ? { ...i, datatype: 'FP32', data: [1] } : i,
          ),
        },
        status: 400,
        message: /does not match the model inputs/,
        details: [{ field: 'Main_driver', reason: 'wrong datatype FP32: expected BYTES' }],
      },
      {
        name: 'v2 shape and data disagree',
        path: '/v2/models/fnol/infer',
        body: { inputs: v2Inputs().map((i) => (i.name === 'TP_type_bike' ? { ...i, shape: [2, 1] } : i)) },
        status: 400,
        message: /does not match the model inputs/,
        details: [{ field: 'TP_type_bike', reason: 'shape says 2 values but data holds 1' }],
      },
      {
        name: 'v2 unknown output requested',
        path: '/v2/models/fnol/infer',
        body: { inputs: v2Inputs(), outputs: [{ name: 'premium' }] },
        status: 400,
        message: /does not match the model inputs/,
        details: [{ field: 'premium', reason: 'unknown output: the model has no output of this name' }],
      },
      {
        name: 'v2 body not an inference request',
        path: '/v2/models/fnol/infer',
        body: { data: [row()] },
        status: 400,
        message: /not a v2 inference request/,
      },
      {
        name: 'unknown endpoint',
        path: '/predict',
        body: { data: [row()] },
        status: 404,
        message: /no endpoint POST \/predict/,
      },
    ];
  };

  it('has a table of at least 20 bad requests', () => {
    assert.ok(cases().length >= 20);
  });

  for (const test of cases()) {
    it(`${test.name} -> ${test.status}`, async function () {
      const reply = await call(scorer.url, test.path ?? '/score', {
        ...(test.method ? { method: test.method } : {}),
        ...(test.raw !== undefined ? { raw: test.raw } : test.body !== undefined ? { body: test.body } : {}),
        ...(test.headers ? { headers: test.headers } : {}),
      });
      assert.equal(reply.status, test.status, `${test.name}: ${reply.text.slice(0, 300)}`);
      const body = reply.body as { error: string; details?: Record<string, unknown>[] };
      assert.match(body.error, test.message);
      for (const want of test.details ?? []) {
        const found = body.details?.some((d) =>
          Object.entries(want).every(([k, v]) => (v instanceof RegExp ? v.test(String(d[k])) : d[k] === v)),
        );
        assert.ok(
          found,
          `${test.name}: no detail like ${String(JSON.stringify(want))} in ${JSON.stringify(body.details)}`,
        );
      }
    });
  }

  it('keeps serving after the bad requests', async () => {
    const reply = await call(scorer.url, '/score', { body: { data: [row()] } });
    assert.equal(reply.status, 200);
  });

  it('survives 10,000 random and malformed bodies with no 5xx and no crash', async function () {
    this.timeout(120_000);
    let seed = 20240601;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
    const scalars = [
      0,
      -1,
      1.5,
      1e308,
      -1e-308,
      'Y',
      '',
      'n/k',
      '\u0000',
      '\ud83d\ude97',
      null,
      true,
      false,
      2 ** 53 + 2,
    ];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.6) return pick(scalars);
      if (r < 0.8) return Array.from({ length: Math.floor(random() * 5) }, () => value(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 4) }, () => [
          pick([...order, 'data', 'records', 'x', '__proto__', 'constructor']),
          value(depth + 1),
        ]),
      );
    };
    const body = (): string => {
      const kind = Math.floor(random() * 8);
      switch (kind) {
        case 0:
          return JSON.stringify({ data: [row().map((v) => (random() < 0.1 ? value(2) : v))] });
        case 1:
          return JSON.stringify({
            records: [Object.fromEntries(order.map((n, i) => [n, random() < 0.1 ? value(2) : row()[i]]))],
          });
        case 2:
          return JSON.stringify(value(0));
        case 3:
          return JSON.stringify({ data: value(1), records: random() < 0.5 ? undefined : value(1) });
        case 4: {
          const text = JSON.stringify({ data: [row()] });
          const cut = Math.floor(random() * text.length);
          return (
            text.slice(0, cut) + pick(['', '}', ']', ',', '"', '\\', 'NaN', '\u00ff']) + text.slice(cut + 1)
          );
        }
        case 5:
          return JSON.stringify({
            inputs: [
              { name: pick(order), datatype: pick(['FP32', 'BYTES', 'X']), shape: [1, 1], data: [value(2)] },
            ],
          });
        case 6:
          return '['.repeat(Math.floor(random() * 5000));
        default:
          return Buffer.from(
            Array.from({ length: Math.floor(random() * 200) }, () => Math.floor(random() * 256)),
          ).toString('latin1');
      }
    };
    const paths = ['/score', '/score', '/score', '/v2/models/fnol/infer'];
    const statuses = new Map<number, number>();
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const total = 10_000;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        next++;
        const payload = body();
        const status = await new Promise<number>((resolve, reject) => {
          const req = httpRequest(
            `${scorer.url}${pick(paths)}`,
            { method: 'POST', headers: { 'content-type': 'application/json' }, agent },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(payload);
        });
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status < 500, `status ${status} for body ${payload.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    agent.destroy();
    const counted = [...statuses.values()].reduce((a, b) => a + b, 0);
    assert.equal(counted, total);
    assert.ok((statuses.get(400) ?? 0) > 1000, `mostly rejected: ${JSON.stringify([...statuses])}`);
    const after = await call(scorer.url, '/score', { body: { data: [row()] } });
    assert.equal(after.status, 200);
  });
});

// Shadow mirroring between two real scorers on loopback (real onnxruntime, real
// HTTP): the caller only ever gets the stable answer, copies reach the candidate
// after it, and the comparison GET /shadow and /metrics report is checked
// against differences computed here from both scorers' own answers.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PUBLIC_PATHS } from '../../operator/src/reconcilers/ingress';
import type { ShadowConfig } from '../src/config';
import type { FeatureSpec } from '../src/model-contract';
import { call, fixtureModel, fnolModel, relabelledModel, startInProcess, type Reply } from './support';

const KEY = 'k-shadow-1';
const auth = { 'x-api-key': KEY };
const DIFFERENCE_BUCKETS = [0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface OutputFigures {
  records: number;
  exceeding: number;
  counts: number[];
}
interface ShadowJson {
  enabled: boolean;
  target: string;
  candidateVersion: string;
  percent: number;
  threshold: number;
  since: string;
  sampled: number;
  dropped: number;
  compared: number;
  candidateErrors: number;
  differenceBuckets: number[];
  outputs: Record<string, OutputFigures>;
  latencyBuckets: number[];
  latency: { stable: number[]; candidate: number[] };
}

function shadowConfig(url: string, version: string, more: Partial<ShadowConfig> = {}): ShadowConfig {
  return {
    url: new URL(url),
    percent: 100,
    version,
    queueSize: 256,
    concurrency: 8,
    timeoutMs: 2000,
    diffThreshold: 0.01,
    warmupCopies: 0,
    lingerMs: 0,
    ...more,
  };
}

/** GET /shadow once every copy taken has an outcome (compared, candidate error or dropped). */
async function settled(url: string, copies?: number): Promise<ShadowJson> {
  for (let i = 0; i < 400; i++) {
    const s = (await call(url, '/shadow')).body as ShadowJson;
    const done = s.compared + s.candidateErrors + s.dropped;
    if (done === s.sampled && (copies === undefined || s.sampled >= copies)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the copies of ${url} did not settle: ${(await call(url, '/shadow')).text}`);
}

/** Deterministic uniform draws in [0, 1). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` FNOL records of varied values: numbers for numeric features, known categories (or an unseen one) else. */
function records(features: readonly FeatureSpec[], n: number, seed: number): Record<string, unknown>[] {
  const draw = random(seed);
  return Array.from({ length: n }, () => {
    const record: Record<string, unknown> = {};
    for (const f of features) {
      if (f.type === 'number') record[f.name] = Math.round(draw() * 4000) / 100;
      else {
        const values = f.values ?? [];
        const i = Math.floor(draw() * (values.length + 1));
        record[f.name] = values[i] ?? 'unseen';
      }
    }
    return record;
  });
}

/** Prometheus text: the value of each sample `name{labels}`, labels as written. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    found.set(line.slice(name.length, space), Number(line.slice(space + 1)));
  }
  return found;
}

/** Cumulative counts of a histogram's buckets for one label (`output="x"`), in `bounds` order, +Inf last. */
function cumulative(text: string, name: string, label: string, bounds: number[]): number[] {
  const byBound = new Map<number, number>();
  for (const [labels, value] of samples(text, `${name}_bucket`)) {
    const pairs = [...labels.matchAll(/(\w+)="([^"]*)"/g)].map((m) => `${m[1]}="${m[2]}"`);
    const le = pairs.find((p) => p.startsWith('le='));
    if (le === undefined || !pairs.includes(label) || pairs.length !== 2) continue;
    const bound = le.slice(4, -1);
    byBound.set(bound === '+Inf' ? Infinity : Number(bound), value);
  }
  return [...bounds, Infinity].map((bound) => {
    const value = byBound.get(bound);
    assert.notEqual(value, undefined, `${name}_bucket{${label},le="${bound}"}`);
    return value as number;
  });
}

const running = (counts: number[]) => {
  let sum = 0;
  return counts.map((c) => (sum += c));
};

/** The bucket of `value` with Prometheus' `le` (value <= bound); the last is +Inf. */
function bucket(value: number): number {
  const i = DIFFERENCE_BUCKETS.findIndex((b) => value <= b);
  return i === -1 ? DIFFERENCE_BUCKETS.length : i;
}

/** A hand-made candidate: records each copy it gets and answers as told. */
interface FakeCandidate {
  url: string;
  seen: { path: string; headers: IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

async function fakeCandidate(
  answer: (
    copy: { path: string; body: string },
    reply: (status: number, body: string, headers?: Record<string, string>) => void,
  ) => void,
): Promise<FakeCandidate> {
  const seen: FakeCandidate['seen'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const copy = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      seen.push(copy);
      answer(copy, (status, body, headers = {}) => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body);
      });
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

/**
 * A candidate that holds the first copy until `release()`, so the copies
 * answered meanwhile wait in the queue; `answer` replies to every copy.
 */
async function heldCandidate(
  answer: (copy: {
    path: string;
    headers: IncomingHttpHeaders;
    body: string;
  }) => Promise<[number, string, Record<string, string>]>,
): Promise<FakeCandidate & { release(): void }> {
  let release!: () => void;
  const gate = new Promise<void>((done) => (release = done));
  let first = true;
  const fake = await fakeCandidate((copy, reply) => {
    const wait = first ? gate : Promise.resolve();
    first = false;
    void wait
      .then(() => answer(copy as { path: string; headers: IncomingHttpHeaders; body: string }))
      .then(([status, body, headers]) => reply(status, body, headers));
  });
  return { ...fake, release };
}

/** The records of a body the candidate got. */
const recordsOf = (body: string) => (JSON.parse(body) as { records: Record<string, unknown>[] }).records;

/** A correct answer of the generic fixture model's shape (values 0), for the records or the data form. */
function zeros(body: string): [number, string, Record<string, string>] {
  const parsed = JSON.parse(body) as { records?: unknown[]; data?: unknown[] };
  const answer =
    parsed.data === undefined
      ? {
          model: { version: '2.0.0' },
          predictions: (parsed.records ?? []).map(() => ({ area: 0, colour_score: 0 })),
        }
      : { result: parsed.data.map(() => 0) };
  return [200, JSON.stringify(answer), { 'x-model-version': '2.0.0' }];
}

describe('shadow mirroring between two real scorers', function () {
  this.timeout(180_000);
  const closing: { close(): Promise<void> }[] = [];
  const started = <T extends { close(): Promise<void> }>(thing: T): T => {
    closing.push(thing);
    return thing;
  };
  afterEach(async () => {
    for (const thing of closing.splice(0).reverse()) await thing.close();
  });

  it('the same model published as 1.0.1: the caller gets the stable answers, every difference is 0', async () => {
    const candidate = started(
      await startInProcess(relabelledModel(fnolModel(), '1.0.1'), { apiKeys: [KEY] }),
    );
    const stable = started(
      await startInProcess(fnolModel(), {
        apiKeys: [KEY],
        shadow: shadowConfig(candidate.url, '1.0.1'),
      }),
    );
    const reference = started(await startInProcess(fnolModel(), { apiKeys: [KEY] }));
    const features = stable.runtime?.contract.features ?? [];
    const batch = records(features, 40, 1);
    const rows = batch.map((r) => features.map((f) => r[f.name]));
    const bodies: [string, unknown][] = [
      ['/score', { records: batch }],
      ['/score', { records: batch.slice(0, 1) }],
      ['/score', { data: rows }],
      [
        '/v2/models/fnol/versions/1.0.0/infer',
        {
          inputs: features.map((f) => ({
            name: f.name,
            shape: [rows.length, 1],
            datatype: f.type === 'number' ? 'FP32' : 'BYTES',
            data: batch.map((r) => r[f.name]),
          })),
        },
      ],
    ];
    for (const [path, body] of bodies) {
      const answer = await call(stable.url, path, { body, headers: auth });
      const expected = await call(reference.url, path, { body, headers: auth });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers.get('x-model-version'), '1.0.0');
      assert.deepEqual(answer.body, expected.body, `${path}: the caller gets the stable answer only`);
    }
    const s = await settled(stable.url, bodies.length);
    // The fields of the contract the operator reads, and no others.
    assert.deepEqual(Object.keys(s).sort(), [
      'candidateErrors',
      'candidateVersion',
      'compared',
      'differenceBuckets',
      'dropped',
      'enabled',
      'latency',
      'latencyBuckets',
      'outputs',
      'percent',
      'sampled',
      'since',
      'target',
      'threshold',
      'warmupCopies',
    ]);
    assert.equal(s.enabled, true);
    assert.equal(s.candidateVersion, '1.0.1');
    assert.deepEqual([s.percent, s.threshold], [100, 0.01]);
    assert.match(s.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.now() - Date.parse(s.since) < 600_000);
    assert.deepEqual([s.sampled, s.compared, s.candidateErrors, s.dropped], [4, 4, 0, 0]);
    // records: 40 + 1 (every output), data: 40 (the primary output only), v2: 40 (every output)
    const zeroes = (n: number) => [n, ...new Array<number>(DIFFERENCE_BUCKETS.length).fill(0)];
    assert.deepEqual(s.outputs, {
      ultimate_cost: { records: 121, exceeding: 0, counts: zeroes(121) },
      attritional_cost: { records: 81, exceeding: 0, counts: zeroes(81) },
      large_loss_probability: { records: 81, exceeding: 0, counts: zeroes(81) },
    });
    assert.equal(
      s.latency.stable.reduce((a, b) => a + b),
      4,
    );
    // The candidate answered every copy (under its own version) and the caller's key was accepted.
    const served = samples((await call(candidate.url, '/metrics')).text, 'scorer_http_requests_total');
    assert.equal(served.get('{route="/score",method="POST",status="200"}'), 3);
    assert.equal(served.get('{route="/v2/models/:name/infer",method="POST",status="200"}'), 1);
  });

  it('a model known to differ: each record and output is bucketed by |cand - stable| / max(|stable|, 1), and /shadow equals /metrics', async () => {
    // The fixture computes a simple formula in place of the CatBoost trees.
    const candidate = started(await startInProcess(fixtureModel('fnol'), { apiKeys: [KEY] }));
    const stable = started(
      await startInProcess(fnolModel(), {
        apiKeys: [KEY],
        shadow: shadowConfig(`${candidate.url}/`, '0.0.1-fixture', { diffThreshold: 0.05 }),
      }),
    );
    const features = stable.runtime?.contract.features ?? [];
    const counts = new Map<string, number[]>();
    const exceeding = new Map<string, number>();
    const sums = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const body = { records: records(features, 25, 100 + i) };
      const mine = await call(stable.url, '/score', { body, headers: auth });
      const theirs = await call(candidate.url, '/score', { body, headers: auth });
      assert.equal(mine.status, 200);
      assert.equal((mine.body as { model: { version: string } }).model.version, '1.0.0');
      const stablePredictions = (mine.body as { predictions: Record<string, number>[] }).predictions;
      const candidatePredictions = (theirs.body as { predictions: Record<string, number>[] }).predictions;
      stablePredictions.forEach((p, r) => {
        for (const [output, s] of Object.entries(p)) {
          const c = (candidatePredictions[r] as Record<string, number>)[output] as number;
          const d = Math.abs(c - s) / Math.max(Math.abs(s), 1);
          const list = counts.get(output) ?? new Array<number>(DIFFERENCE_BUCKETS.length + 1).fill(0);
          (list[bucket(d)] as number)++;
          counts.set(output, list);
          if (d > 0.05) exceeding.set(output, (exceeding.get(output) ?? 0) + 1);
          sums.set(output, (sums.get(output) ?? 0) + d);
        }
      });
    }
    const s = await settled(stable.url, 6);
    assert.deepEqual([s.sampled, s.compared, s.candidateErrors, s.dropped], [6, 6, 0, 0]);
    assert.equal(s.target, candidate.url);
    assert.equal(s.threshold, 0.05);
    assert.deepEqual(s.differenceBuckets, DIFFERENCE_BUCKETS);
    assert.deepEqual(s.latencyBuckets, LATENCY_BUCKETS);
    for (const [output, expected] of counts) {
      const figures = s.outputs[output] as OutputFigures;
      assert.deepEqual(figures.counts, expected, output);
      assert.equal(figures.records, 150);
      assert.equal(figures.exceeding, exceeding.get(output) ?? 0, output);
    }
    // The models differ: not everything is in the first bucket.
    assert.ok((s.outputs.ultimate_cost as OutputFigures).counts[0]! < 150);

    const text = (await call(stable.url, '/metrics')).text;
    const copies = samples(text, 'scorer_shadow_copies_total');
    assert.equal(copies.get('{result="compared"}'), s.compared);
    assert.equal(copies.get('{result="candidate_error"}'), s.candidateErrors);
    assert.equal(copies.get('{result="dropped"}'), s.dropped);
    for (const [output, figures] of Object.entries(s.outputs)) {
      const label = `output="${output}"`;
      assert.deepEqual(
        cumulative(text, 'scorer_shadow_relative_difference', label, DIFFERENCE_BUCKETS),
        running(figures.counts),
        output,
      );
      assert.equal(samples(text, 'scorer_shadow_exceeding_total').get(`{${label}}`), figures.exceeding);
      assert.equal(
        samples(text, 'scorer_shadow_relative_difference_count').get(`{${label}}`),
        figures.records,
      );
      const sum = samples(text, 'scorer_shadow_relative_difference_sum').get(`{${label}}`) as number;
      const expected = sums.get(output) as number;
      assert.ok(
        Math.abs(sum - expected) <= 1e-9 * Math.max(1, expected),
        `${output}: sum ${sum}, expected ${expected}`,
      );
    }
    for (const version of ['stable', 'candidate'] as const) {
      assert.deepEqual(
        cumulative(text, 'scorer_shadow_latency_seconds', `version="${version}"`, LATENCY_BUCKETS),
        running(s.latency[version]),
        version,
      );
    }
    assert.equal(running(s.latency.candidate).at(-1), 6);
  });

  it('copies the raw body, the key and the request id, after the answer, to the same path (v2 without the version)', async () => {
    const candidate = started(await fakeCandidate((_copy, reply) => reply(503, '{}')));
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        apiKeys: [KEY],
        shadow: shadowConfig(candidate.url, '2.0.0'),
      }),
    );
    const contract = stable.runtime?.contract;
    const raw = '{ "records" : [ {"length": 1.5, "colour": "red", "width": 2} ] }';
    const answer = await call(stable.url, '/score', {
      raw,
      headers: { authorization: `Bearer ${KEY}`, 'x-request-id': 'req-77' },
    });
    assert.equal(answer.status, 200, answer.text);
    const v2 = await call(stable.url, `/v2/models/${contract?.name}/versions/${contract?.version}/infer`, {
      body: {
        inputs: [
          { name: 'length', shape: [1, 1], datatype: 'FP32', data: [1] },
          { name: 'colour', shape: [1, 1], datatype: 'BYTES', data: ['blue'] },
          { name: 'width', shape: [1, 1], datatype: 'FP32', data: [2] },
        ],
      },
      headers: auth,
    });
    assert.equal(v2.status, 200, v2.text);
    const s = await settled(stable.url, 2);
    assert.deepEqual([s.compared, s.candidateErrors], [0, 2]);
    const [first, second] = candidate.seen;
    assert.equal(first?.path, '/score');
    assert.equal(first?.body, raw, 'byte for byte');
    assert.equal(first?.headers.authorization, `Bearer ${KEY}`);
    assert.equal(first?.headers['x-request-id'], 'req-77');
    assert.equal(first?.headers['x-shadow-copy'], '1', 'marked as a copy');
    assert.equal(second?.path, `/v2/models/${contract?.name}/infer`);
    assert.equal(second?.headers['x-api-key'], KEY);
    assert.equal(second?.headers['x-request-id'], v2.headers.get('x-request-id'));
    assert.ok(!answer.text.includes('503') && !v2.text.includes('503'));
  });

  it('never mirrors a copy: a scorer mirroring to itself copies each caller request once', async () => {
    const port = await new Promise<number>((done) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => done(free));
      });
    });
    const self = `http://127.0.0.1:${port}`;
    const scorer = started(
      await startInProcess(fixtureModel('generic'), { port, shadow: shadowConfig(self, '2.0.0') }),
    );
    assert.equal(scorer.url, self);
    for (let i = 0; i < 5; i++) {
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(scorer.url, '/score', { body })).status, 200);
    }
    const s = await settled(scorer.url, 5);
    // Each copy reached the scorer (answered 200 under its own version: a candidate error) and was not copied again.
    assert.deepEqual([s.sampled, s.candidateErrors, s.compared, s.dropped], [5, 5, 0, 0]);
    const served = samples((await call(scorer.url, '/metrics')).text, 'scorer_http_requests_total');
    assert.equal(served.get('{route="/score",method="POST",status="200"}'), 10);
  });

  it('sends a copy once more when the candidate closed the kept-alive connection it was written on', async () => {
    // The second request on each connection finds it closed (as after the candidate's keep-alive timeout).
    const perSocket = new WeakMap<object, number>();
    const server = createServer((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      req.resume();
      req.on('end', () => {
        if (n > 1) {
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'x-model-version': '2.0.0' });
        res.end('{"model": {"version": "2.0.0"}, "predictions": [{"area": 0, "colour_score": 0}]}');
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    started({
      close: () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
    });
    const { port } = server.address() as AddressInfo;
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(`http://127.0.0.1:${port}`, '2.0.0', { concurrency: 1 }),
      }),
    );
    for (let i = 0; i < 3; i++) {
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(stable.url, '/score', { body })).status, 200);
      await settled(stable.url, i + 1); // one at a time, each on the connection the last one left
    }
    const s = await settled(stable.url, 3);
    assert.deepEqual([s.compared, s.candidateErrors], [3, 0]);
  });

  it('mirrors only successful answers', async () => {
    const candidate = started(await fakeCandidate((_copy, reply) => reply(500, '{}')));
    const stable = started(
      await startInProcess(fixtureModel('generic'), { shadow: shadowConfig(candidate.url, '2.0.0') }),
    );
    for (const raw of ['{"records": [{"length": "x"}]}', '{"data": [[1, "red", 2]], "records": []}', '{']) {
      assert.equal((await call(stable.url, '/score', { raw })).status, 400);
    }
    assert.equal(
      (await call(stable.url, '/v2/models/rectangles/infer', { body: { inputs: [] } })).status,
      400,
    );
    assert.equal((await call(stable.url, '/v2/models/other/infer', { body: { inputs: [] } })).status, 404);
    const one = { records: [{ length: 1, colour: 'red', width: 2 }] };
    assert.equal((await call(stable.url, '/score', { body: one })).status, 200);
    const s = await settled(stable.url, 1);
    assert.equal(s.sampled, 1);
    assert.equal(candidate.seen.length, 1);
  });

  it('copies only requests answered 200 when the deadline answers some of a burst 503', async () => {
    const candidate = started(await fakeCandidate((_copy, reply) => reply(500, '{}')));
    const stable = started(
      await startInProcess(fnolModel(), {
        limits: { maxBodyBytes: 8 * 1024 * 1024, maxBatchRecords: 5000, overload: { requestTimeoutMs: 400 } },
        shadow: shadowConfig(candidate.url, '2.0.0'),
      }),
    );
    // Each batch of 2,000 keeps the model busy for tens of milliseconds: the later ones pass the deadline.
    const body = {
      data: Array.from({ length: 2000 }, (_, r) => Array.from({ length: 37 }, (_, i) => i + (r % 11))),
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => call(stable.url, '/score', { body })));
    const ok = answers.filter((a) => a.status === 200).length;
    assert.ok(
      answers.every((a) => a.status === 200 || a.status === 503 || a.status === 408),
      answers.map((a) => a.status).join(','),
    );
    await new Promise((r) => setTimeout(r, 300)); // the runs cancelled or finished after their 503
    const s = await settled(stable.url);
    assert.equal(s.sampled, ok, answers.map((a) => a.status).join(','));
    assert.equal(candidate.seen.length, ok);
  });

  it('times the candidate by its own Server-Timing when it gives one, not by the round trip', async () => {
    const candidate = started(
      await heldCandidate(async (copy) => {
        const [status, body, headers] = zeros(copy.body);
        return [status, body, { ...headers, 'server-timing': 'app;dur=300' }];
      }),
    );
    candidate.release();
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1 }),
      }),
    );
    const body = { records: [{ length: 1, colour: 'red', width: 2 }] };
    assert.equal((await call(stable.url, '/score', { body })).status, 200);
    const s = await settled(stable.url, 1);
    assert.equal(s.compared, 1);
    // 0.3 s lies in the (0.25, 0.5] bucket, whatever the round trip on loopback took.
    const bucketOf03 = s.latencyBuckets.findIndex((b) => 0.3 <= b);
    assert.equal(s.latency.candidate[bucketOf03], 1);
  });

  it('a candidate that holds every copy delays no caller; past the queue copies are dropped and counted', async () => {
    const held: (() => void)[] = [];
    const candidate = started(
      await fakeCandidate((_copy, reply) => held.push(() => reply(200, '{"result": [0]}'))),
    );
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1, queueSize: 2, timeoutMs: 600_000 }),
      }),
    );
    const reference = started(await startInProcess(fixtureModel('generic')));
    for (let i = 0; i < 10; i++) {
      const body = { records: [{ length: i, colour: 'green', width: 2 * i }] };
      const answer: Reply = await call(stable.url, '/score', { body });
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body, (await call(reference.url, '/score', { body })).body);
    }
    // Ten answers while the candidate has answered none: one copy being sent, two waiting, seven dropped.
    assert.equal(held.length, 1);
    let s = (await call(stable.url, '/shadow')).body as ShadowJson;
    assert.deepEqual([s.sampled, s.dropped, s.compared, s.candidateErrors], [10, 7, 0, 0]);
    const metrics = samples((await call(stable.url, '/metrics')).text, 'scorer_shadow_copies_total');
    assert.equal(metrics.get('{result="dropped"}'), 7);
    // Released, the candidate answers without its version: candidate errors. The
    // two copies that waited go together, as one request.
    for (let released = 0; released < 2;) {
      const release = held.shift();
      if (release === undefined) await new Promise((r) => setTimeout(r, 20));
      else {
        release();
        released++;
      }
    }
    s = await settled(stable.url, 10);
    assert.deepEqual([s.sampled, s.dropped, s.compared, s.candidateErrors], [10, 7, 0, 3]);
    assert.equal(candidate.seen.length, 2);
  });

  it('counts as candidate errors: timeout, refused connection, non-2xx, another version, another shape, not JSON', async () => {
    const version = { 'x-model-version': '2.0.0' };
    const fake = started(
      await fakeCandidate((copy, reply) => {
        const kind = (JSON.parse(copy.body) as { records: { colour: string }[] }).records[0]?.colour;
        if (kind === 'timeout') return; // never answers
        if (kind === 'status') return reply(429, '{}', version);
        if (kind === 'version') {
          return reply(200, '{"model": {"version": "1.9.0"}, "predictions": [{}]}', {
            'x-model-version': '1.9.0',
          });
        }
        if (kind === 'json') return reply(200, 'not json', version);
        reply(200, '{"model": {"version": "2.0.0"}, "predictions": [{"area": 1}]}', version);
      }),
    );
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(fake.url, '2.0.0', { timeoutMs: 300 }),
      }),
    );
    // 'shape': one record answered without colour_score.
    for (const colour of ['timeout', 'status', 'version', 'json', 'shape']) {
      const body = { records: [{ length: 1, colour, width: 2 }] };
      assert.equal((await call(stable.url, '/score', { body })).status, 200);
    }
    let s = await settled(stable.url, 5);
    assert.deepEqual([s.compared, s.candidateErrors, s.dropped], [0, 5, 0]);

    // A candidate that is not there at all.
    await fake.close();
    const dead = started(
      await startInProcess(fixtureModel('generic'), { shadow: shadowConfig(fake.url, '2.0.0') }),
    );
    for (let i = 0; i < 3; i++) {
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(dead.url, '/score', { body })).status, 200);
    }
    s = await settled(dead.url, 3);
    assert.deepEqual([s.compared, s.candidateErrors, s.dropped], [0, 3, 0]);
    const copies = samples((await call(dead.url, '/metrics')).text, 'scorer_shadow_copies_total');
    assert.equal(copies.get('{result="candidate_error"}'), 3);
  });

  it('copies waiting together go as one request; each is compared with its own answer, as computed here', async () => {
    const real = started(await startInProcess(fixtureModel('fnol'), { apiKeys: [KEY] }));
    // In front of the differing candidate: holds the first copy, forwards every copy as it came.
    const candidate = started(
      await heldCandidate(async (copy) => {
        const answer = await fetch(`${real.url}${copy.path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': String(copy.headers['x-api-key']) },
          body: copy.body,
        });
        return [
          answer.status,
          await answer.text(),
          { 'x-model-version': answer.headers.get('x-model-version') ?? '' },
        ];
      }),
    );
    const stable = started(
      await startInProcess(fnolModel(), {
        apiKeys: [KEY],
        shadow: shadowConfig(candidate.url, '0.0.1-fixture', { concurrency: 1, diffThreshold: 0.05 }),
      }),
    );
    const features = stable.runtime?.contract.features ?? [];
    const counts = new Map<string, number[]>();
    const exceeding = new Map<string, number>();
    let total = 0;
    // Copies of 1 to 4 records, so the answer is split at uneven places.
    for (let i = 0; i < 12; i++) {
      const body = { records: records(features, 1 + (i % 4), 300 + i) };
      total += body.records.length;
      const mine = await call(stable.url, '/score', { body, headers: auth });
      const theirs = await call(real.url, '/score', { body, headers: auth });
      assert.equal(mine.status, 200);
      const stablePredictions = (mine.body as { predictions: Record<string, number>[] }).predictions;
      const candidatePredictions = (theirs.body as { predictions: Record<string, number>[] }).predictions;
      stablePredictions.forEach((p, r) => {
        for (const [output, value] of Object.entries(p)) {
          const c = (candidatePredictions[r] as Record<string, number>)[output] as number;
          const d = Math.abs(c - value) / Math.max(Math.abs(value), 1);
          const list = counts.get(output) ?? new Array<number>(DIFFERENCE_BUCKETS.length + 1).fill(0);
          (list[bucket(d)] as number)++;
          counts.set(output, list);
          if (d > 0.05) exceeding.set(output, (exceeding.get(output) ?? 0) + 1);
        }
      });
    }
    candidate.release();
    const s = await settled(stable.url, 12);
    assert.deepEqual([s.sampled, s.compared, s.candidateErrors, s.dropped], [12, 12, 0, 0]);
    // The first copy alone, the eleven that waited behind it in one request.
    assert.deepEqual(
      candidate.seen.map((c) => recordsOf(c.body).length),
      [1, total - 1],
    );
    for (const [output, expected] of counts) {
      const figures = s.outputs[output] as OutputFigures;
      assert.deepEqual(figures.counts, expected, output);
      assert.equal(figures.records, total);
      assert.equal(figures.exceeding, exceeding.get(output) ?? 0, output);
    }
    assert.ok((s.outputs.ultimate_cost as OutputFigures).counts[0]! < total, 'the models differ');
    // Only the copy sent alone is timed, on both sides.
    assert.equal(running(s.latency.candidate).at(-1), 1);
    assert.equal(running(s.latency.stable).at(-1), 1);
  });

  it('while a request of copies is on its way, the copies answered meanwhile go together, whatever the workers', async () => {
    const candidate = started(await heldCandidate(async (copy) => zeros(copy.body)));
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 8 }),
      }),
    );
    for (let i = 0; i < 7; i++) {
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(stable.url, '/score', { body })).status, 200);
    }
    // Idle workers do not send the waiting copies one by one while the first is held.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(candidate.seen.length, 1);
    candidate.release();
    const s = await settled(stable.url, 7);
    assert.deepEqual([s.compared, s.candidateErrors], [7, 0]);
    assert.deepEqual(
      candidate.seen.map((c) => recordsOf(c.body).map((r) => r.length)),
      [[0], [1, 2, 3, 4, 5, 6]],
    );
    assert.equal(running(s.latency.candidate).at(-1), 1);
  });

  it('copies sent together are all shape errors when the candidate answers fewer records', async () => {
    const candidate = started(
      await heldCandidate(async (copy) => {
        const [status, body, headers] = zeros(copy.body);
        const answer = JSON.parse(body) as { predictions: unknown[] };
        if (answer.predictions.length > 1) answer.predictions.pop();
        return [status, JSON.stringify(answer), headers];
      }),
    );
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1 }),
      }),
    );
    for (let i = 0; i < 6; i++) {
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(stable.url, '/score', { body })).status, 200);
    }
    candidate.release();
    const s = await settled(stable.url, 6);
    assert.deepEqual(
      candidate.seen.map((c) => recordsOf(c.body).length),
      [1, 5],
    );
    assert.deepEqual([s.compared, s.candidateErrors, s.dropped], [1, 5, 0]);
  });

  it('never sends copies of different keys or forms together', async () => {
    const other = 'k-shadow-2';
    const candidate = started(await heldCandidate(async (copy) => zeros(copy.body)));
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        apiKeys: [KEY, other],
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1 }),
      }),
    );
    // `length` tells which request a record came from; `x`: x-api-key, `b`: Authorization: Bearer.
    const callers: [string, 'x' | 'b'][] = [
      [KEY, 'x'],
      [KEY, 'x'],
      [KEY, 'x'],
      [other, 'x'],
      [other, 'x'],
      [KEY, 'b'],
      [KEY, 'b'],
      [KEY, 'x'],
      [other, 'b'],
    ];
    for (const [i, [key, style]] of callers.entries()) {
      const headers: Record<string, string> =
        style === 'x' ? { 'x-api-key': key } : { authorization: `Bearer ${key}` };
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(stable.url, '/score', { body, headers })).status, 200);
    }
    for (let i = 0; i < 2; i++) {
      const body = { data: [[i, 'red', 2]] };
      assert.equal((await call(stable.url, '/score', { body, headers: auth })).status, 200);
    }
    candidate.release();
    const s = await settled(stable.url, callers.length + 2);
    assert.deepEqual([s.compared, s.candidateErrors], [callers.length + 2, 0]);
    const sent = candidate.seen.filter((c) => 'records' in (JSON.parse(c.body) as object));
    for (const copy of sent) {
      for (const record of recordsOf(copy.body)) {
        const [key, style] = callers[record.length as number] as [string, 'x' | 'b'];
        if (style === 'x') assert.equal(copy.headers['x-api-key'], key, `record ${record.length}`);
        else assert.equal(copy.headers.authorization, `Bearer ${key}`, `record ${record.length}`);
      }
    }
    // Only copies of the same key, in the same header, waiting one behind the other, went together.
    assert.deepEqual(
      sent.map((c) => recordsOf(c.body).map((r) => r.length)),
      [[0], [1, 2], [3, 4], [5, 6], [7], [8]],
    );
    // The two data-form copies waited behind the records: one request of their rows.
    const data = candidate.seen.filter((c) => 'data' in (JSON.parse(c.body) as object));
    assert.deepEqual(
      data.map((c) => c.body),
      ['{"data":[[0,"red",2],[1,"red",2]]}'],
    );
  });

  it('copies of the data form go together too, each compared with its own rows; a shorter result fails them all', async () => {
    for (const shorten of [false, true]) {
      const candidate = started(
        await heldCandidate(async (copy) => {
          const parsed = JSON.parse(copy.body) as { data: [number, string, number][] };
          // The generic model's area is length x width: the candidate answers 7 % more.
          const result = parsed.data.map(([length, , width]) => length * width * 1.07);
          if (shorten && result.length > 1) result.pop();
          return [200, JSON.stringify({ result }), { 'x-model-version': '2.0.0' }];
        }),
      );
      const stable = started(
        await startInProcess(fixtureModel('generic'), {
          shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1, diffThreshold: 0.05 }),
        }),
      );
      for (let i = 0; i < 5; i++) {
        const body = { data: [[i + 1, 'red', 2]] };
        assert.equal((await call(stable.url, '/score', { body })).status, 200);
      }
      candidate.release();
      const s = await settled(stable.url, 5);
      assert.deepEqual(
        candidate.seen.map((c) => (JSON.parse(c.body) as { data: unknown[] }).data.length),
        [1, 4],
      );
      if (shorten) {
        assert.deepEqual([s.compared, s.candidateErrors], [1, 4]);
        continue;
      }
      assert.deepEqual([s.compared, s.candidateErrors], [5, 0]);
      // Every row differs by 7 % (|1.07 a - a| / max(a, 1) with a >= 2): all over the 5 % threshold.
      const area = s.outputs.area as OutputFigures;
      assert.equal(area.records, 5);
      assert.equal(area.exceeding, 5);
      assert.equal(area.counts[bucket(0.07)], 5);
    }
  });

  it('lingers: copies answered one after another within SHADOW_LINGER_MS go as one request', async () => {
    for (const lingerMs of [0, 2000]) {
      const candidate = started(await fakeCandidate((copy, reply) => reply(...zeros(copy.body))));
      const stable = started(
        await startInProcess(fixtureModel('generic'), {
          shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1, lingerMs }),
        }),
      );
      for (let i = 0; i < 5; i++) {
        const body = { records: [{ length: i + 1, colour: 'red', width: 2 }] };
        assert.equal((await call(stable.url, '/score', { body })).status, 200);
        // Without a linger, each copy is on its way before the next request is answered.
        if (lingerMs === 0) await settled(stable.url, i + 1);
      }
      const s = await settled(stable.url, 5);
      assert.deepEqual([s.compared, s.candidateErrors], [5, 0]);
      assert.deepEqual(
        candidate.seen.map((c) => recordsOf(c.body).length),
        lingerMs === 0 ? [1, 1, 1, 1, 1] : [5],
        `SHADOW_LINGER_MS=${lingerMs}`,
      );
    }
  });

  it('compares the warm-up copies but leaves them out of both latency histograms', async () => {
    const candidate = started(await fakeCandidate((copy, reply) => reply(...zeros(copy.body))));
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1, warmupCopies: 3 }),
      }),
    );
    // One request at a time, each copy settled before the next: every copy is sent alone, so timed.
    for (let i = 0; i < 5; i++) {
      const body = { records: [{ length: i + 1, colour: 'red', width: 2 }] };
      assert.equal((await call(stable.url, '/score', { body })).status, 200);
      await settled(stable.url, i + 1);
    }
    const s = (await call(stable.url, '/shadow')).body as ShadowJson & { warmupCopies: number };
    assert.equal(s.warmupCopies, 3);
    assert.deepEqual([s.compared, s.candidateErrors], [5, 0]);
    assert.equal((s.outputs.area as OutputFigures).records, 5);
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    assert.deepEqual([sum(s.latency.stable), sum(s.latency.candidate)], [2, 2]);
    const text = (await call(stable.url, '/metrics')).text;
    assert.equal(samples(text, 'scorer_shadow_latency_seconds_count').get('{version="candidate"}'), 2);
  });

  it('bounds the copies sent together by MAX_BATCH_RECORDS and by 64 copies', async () => {
    const candidate = started(await heldCandidate(async (copy) => zeros(copy.body)));
    const stable = started(
      await startInProcess(fixtureModel('generic'), {
        limits: { maxBatchRecords: 10 },
        shadow: shadowConfig(candidate.url, '2.0.0', { concurrency: 1 }),
      }),
    );
    const three = (i: number) => ({
      records: [0, 1, 2].map((k) => ({ length: 10 * i + k, colour: 'red', width: 2 })),
    });
    for (let i = 0; i < 8; i++) {
      assert.equal((await call(stable.url, '/score', { body: three(i) })).status, 200);
    }
    candidate.release();
    let s = await settled(stable.url, 8);
    assert.deepEqual([s.compared, s.candidateErrors], [8, 0]);
    const sizes = candidate.seen.map((c) => recordsOf(c.body).length);
    // Three copies of 3 make 9; a fourth would pass 10.
    assert.deepEqual(sizes, [3, 9, 9, 3]);
    // Every record sent once, in order.
    assert.deepEqual(
      candidate.seen.flatMap((c) => recordsOf(c.body).map((r) => r.length)),
      Array.from({ length: 8 }, (_, i) => [0, 1, 2].map((k) => 10 * i + k)).flat(),
    );

    const many = started(await heldCandidate(async (copy) => zeros(copy.body)));
    const busy = started(
      await startInProcess(fixtureModel('generic'), {
        shadow: shadowConfig(many.url, '2.0.0', { concurrency: 1 }),
      }),
    );
    for (let i = 0; i < 70; i++) {
      const body = { records: [{ length: i, colour: 'red', width: 2 }] };
      assert.equal((await call(busy.url, '/score', { body })).status, 200);
    }
    many.release();
    s = await settled(busy.url, 70);
    assert.deepEqual([s.compared, s.candidateErrors, s.dropped], [70, 0, 0]);
    assert.deepEqual(
      many.seen.map((c) => recordsOf(c.body).length),
      [1, 64, 5],
    );
  });

  it('without SHADOW_URL: GET /shadow says disabled, nothing is mirrored, answers still carry x-model-version', async () => {
    const scorer = started(await startInProcess(fixtureModel('generic')));
    assert.deepEqual((await call(scorer.url, '/shadow')).body, { enabled: false });
    const answer = await call(scorer.url, '/score', {
      body: { records: [{ length: 1, colour: 'red', width: 2 }] },
    });
    assert.equal(answer.headers.get('x-model-version'), scorer.runtime?.contract.version);
    // Its own time to answer, which a stable pod compares with its own.
    assert.match(answer.headers.get('server-timing') ?? '', /^app;dur=\d+\.\d{3}$/);
    assert.equal(
      (await call(scorer.url, '/nope')).headers.get('x-model-version'),
      scorer.runtime?.contract.version,
    );
    const text = (await call(scorer.url, '/metrics')).text;
    assert.equal(samples(text, 'scorer_shadow_copies_total').size, 0);
  });

  it('while the model loads, answers carry the configured MODEL_VERSION', async () => {
    const loading = started(
      await startInProcess(fixtureModel('generic'), { noModel: true, modelVersion: '0.3.1' }),
    );
    const ready = await call(loading.url, '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get('x-model-version'), '0.3.1');
    const unset = started(await startInProcess(fixtureModel('generic'), { noModel: true }));
    assert.equal((await call(unset.url, '/readyz')).headers.get('x-model-version'), null);
  });

  it('GET /shadow is not among the paths the Ingress publishes', () => {
    for (const { path, pathType } of PUBLIC_PATHS) {
      const published = pathType === 'Exact' ? path === '/shadow' : '/shadow'.startsWith(`${path}/`);
      assert.equal(published, false, path);
    }
  });
});

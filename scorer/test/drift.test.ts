// Drift monitoring (docs/scorer.md, Drift): the PSI as docs/model-format.md's
// worked examples compute it, and real scorers (startScorer: configuration,
// model file, onnxruntime, HTTP on loopback) serving the compiled FNOL model to
// traffic drawn from its training CSV, to a skewed batch, to unseen and missing
// values; a model without references and one with corrupt references.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { parseConfig } from '../src/config';
import { DriftMonitor, slotOf } from '../src/drift';
import { parseDistribution, psi, type Bins, type NumberBins } from '../src/drift-reference';
import { createMetrics } from '../src/metrics';
import type { FeedColumn } from '../src/model-runtime';
import { startScorer, type RunningScorer } from '../src/server';
import { call, fixtureModel, fnolModel, FNOL_ARTIFACTS, PYTHON, ROOT } from './support';

interface WorkedCase {
  name: string;
  distribution: unknown;
  values: unknown[];
  observed_shares: number[];
  psi: number;
}

const WORKED = JSON.parse(readFileSync(join(ROOT, 'model/tests/data/psi-worked-examples.json'), 'utf8')) as {
  epsilon: number;
  cases: WorkedCase[];
};

function bins(distribution: unknown): Bins {
  const problems: string[] = [];
  const parsed = parseDistribution(distribution, 'case', problems);
  assert.deepEqual(problems, []);
  return parsed as Bins;
}

/** Values as ModelRuntime feeds them to the graph (and the drift monitor): float32 or text. */
function feed(b: Bins, values: unknown[]): FeedColumn {
  if (b.kind === 'number') return Float32Array.from(values, (v) => (typeof v === 'number' ? v : NaN));
  return values.map((v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v)));
}

/** The samples of one metric in a Prometheus text exposition: label value -> value. */
function samples(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${metric}\\{\\w+="([^"]*)"\\} (\\S+)$`).exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

describe('drift: PSI as the worked examples compute it', () => {
  for (const c of WORKED.cases) {
    it(c.name, async () => {
      const b = bins(c.distribution);
      const counts = new Array<number>(b.expected.length).fill(0);
      const series = {
        bins: b,
        other: b.kind === 'string' ? b.expected.length - 2 : -1,
        missing: b.expected.length - 1,
      };
      for (const v of c.values) (counts[slotOf(series, v)] as number)++;
      counts.forEach((count, i) => {
        assert.ok(
          Math.abs(count / c.values.length - (c.observed_shares[i] as number)) < 1e-9,
          `share of bin ${i}`,
        );
      });
      assert.ok(Math.abs(psi(b.expected, counts, c.values.length, WORKED.epsilon) - c.psi) < 1e-8);

      // The same values through the monitor, read from the metrics registry.
      const metrics = createMetrics([1], false);
      const monitor = new DriftMonitor(
        { epsilon: WORKED.epsilon, inputs: [{ feature: 0, name: 'x', bins: b }], outputs: [] },
        { enabled: true, window: 100, minRecords: c.values.length, updateSeconds: 0 },
        { metrics: metrics.drift, clock: { now: () => 0 }, logger: pino({ level: 'silent' }) },
      );
      metrics.drift.refresh = () => monitor.refresh();
      monitor.observe([feed(b, c.values)], c.values.length, {});
      const exported = samples(await metrics.registry.metrics(), 'scorer_input_drift_psi').get('x');
      assert.ok(exported !== undefined && Math.abs(exported - c.psi) < 1e-8, `exported ${exported}`);
    });
  }

  it('decimal inputs are binned as fed (float32) against float32 edges: a value equal to an edge stays below it', () => {
    const b = bins({ type: 'number', edges: [0.1, 0.3], shares: [0.2, 0.3, 0.5], missing: 0 });
    const series = { bins: b, other: -1, missing: 3 };
    assert.deepEqual(
      [0.1, 0.10000001, 0.3, 0.30001, -1e9, Infinity, NaN, null].map((v) => slotOf(series, v)),
      [0, 1, 1, 2, 0, 2, 3, 3],
    );
  });

  it('an error while counting stops drift monitoring (state failed, one error line), never throws', async () => {
    const b = bins({ type: 'number', edges: [0], shares: [0.5, 0.5], missing: 0 });
    const metrics = createMetrics([1], false);
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _e, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      }),
    );
    const monitor = new DriftMonitor(
      {
        epsilon: 1e-4,
        inputs: [],
        outputs: [{ label: 'y', output: 'y', column: 0, width: 1, bins: b as NumberBins }],
      },
      { enabled: true, window: 100, minRecords: 1, updateSeconds: 0 },
      { metrics: metrics.drift, clock: { now: () => 0 }, logger },
    );
    monitor.observe([], 1, {}); // the output "y" is missing from the run's outputs
    monitor.observe([], 1, {});
    assert.equal(samples(await metrics.registry.metrics(), 'scorer_drift_state').get('failed'), 1);
    assert.equal(lines.filter((l) => l.includes('drift monitoring stopped')).length, 1);
  });

  it('the window is two tumbling halves: the last DRIFT_WINDOW records at every multiple of a half, never fewer than a half and one', async () => {
    const b = bins({ type: 'number', edges: [0], shares: [0.5, 0.5], missing: 0 });
    const metrics = createMetrics([1], false);
    const monitor = new DriftMonitor(
      { epsilon: 1e-4, inputs: [{ feature: 0, name: 'x', bins: b }], outputs: [] },
      { enabled: true, window: 100, minRecords: 100, updateSeconds: 0 },
      { metrics: metrics.drift, clock: { now: () => 0 }, logger: pino({ level: 'silent' }) },
    );
    metrics.drift.refresh = () => monitor.refresh();
    const send = (n: number, value: number) => monitor.observe([feed(b, new Array(n).fill(value))], n, {});
    send(99, -1);
    assert.equal(
      samples(await metrics.registry.metrics(), 'scorer_input_drift_psi').size,
      0,
      'below DRIFT_MIN_RECORDS',
    );
    send(51, 1); // the last 100: 49 x -1 (the 50 oldest dropped) and 51 x 1
    const first = samples(await metrics.registry.metrics(), 'scorer_input_drift_psi').get('x') as number;
    assert.ok(Math.abs(first - psi(b.expected, [49, 51, 0], 100, 1e-4)) < 1e-12, `${first}`);
    send(250, -1); // more than the window in one run: the last 100 are all -1
    const all = samples(await metrics.registry.metrics(), 'scorer_input_drift_psi').get('x') as number;
    assert.ok(Math.abs(all - psi(b.expected, [100, 0, 0], 100, 1e-4)) < 1e-12, `${all}`);
    assert.equal(monitor.records, 100);
    // 400 records so far, eight full halves of 50. The next record starts a new half: the
    // window is the last full half (50 x -1) and that record, not the last 100 (99 x -1, 1 x 1).
    const psiNow = async () =>
      samples(await metrics.registry.metrics(), 'scorer_input_drift_psi').get('x') as number;
    send(1, 1);
    assert.equal(monitor.records, 51);
    assert.ok(Math.abs((await psiNow()) - psi(b.expected, [50, 1, 0], 51, 1e-4)) < 1e-12);
    send(49, 1); // the half is full again: the last 100 records, 50 x -1 and 50 x 1
    assert.equal(monitor.records, 100);
    assert.ok(Math.abs((await psiNow()) - psi(b.expected, [50, 50, 0], 100, 1e-4)) < 1e-12);
    send(1, -1); // the 50 x -1 half is forgotten
    assert.equal(monitor.records, 51);
    assert.ok(Math.abs((await psiNow()) - psi(b.expected, [1, 50, 0], 51, 1e-4)) < 1e-12);
  });

  it('a run longer than a half fills the halves in order; missing values count from the start, the PSI after DRIFT_MIN_RECORDS from the start', async () => {
    const b = bins({ type: 'number', edges: [0], shares: [0.5, 0.5], missing: 0 });
    const metrics = createMetrics([1], false);
    const monitor = new DriftMonitor(
      { epsilon: 1e-4, inputs: [{ feature: 0, name: 'x', bins: b }], outputs: [] },
      // An odd window: halves of 50, so the window holds at most 100 records.
      { enabled: true, window: 101, minRecords: 101, updateSeconds: 0 },
      { metrics: metrics.drift, clock: { now: () => 0 }, logger: pino({ level: 'silent' }) },
    );
    metrics.drift.refresh = () => monitor.refresh();
    // One run of 175: 60 x -1, 40 missing, 75 x 1. Halves: [0, 50), [50, 100), [100, 150), [150, 175).
    const values = [...new Array(60).fill(-1), ...new Array(40).fill(NaN), ...new Array(75).fill(1)];
    monitor.observe([feed(b, values)], values.length, {});
    const text = await metrics.registry.metrics();
    assert.equal(monitor.records, 75);
    const value = samples(text, 'scorer_input_drift_psi').get('x') as number;
    // [100, 150) is 50 x 1, [150, 175) 25 x 1.
    assert.ok(Math.abs(value - psi(b.expected, [0, 75, 0], 75, 1e-4)) < 1e-12, `${value}`);
    assert.equal(samples(text, 'scorer_missing_value_total').get('x'), 40);
  });
});

/** The CSV as the graph receives it: categories as text (an empty cell is null), numbers parsed. */
function readCsv(path: string): Record<string, string>[] {
  const text = readFileSync(path, 'utf8');
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  const [header, ...body] = rows as [string[], ...string[][]];
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}

/** A deterministic generator (mulberry32), so a failure can be replayed. */
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

async function scorer(
  model: string,
  env: Record<string, string> = {},
  log?: string[],
): Promise<RunningScorer> {
  const config = parseConfig(
    {
      MODEL_URI: pathToFileURL(model).href,
      PORT: '0',
      HOST: '127.0.0.1',
      SHUTDOWN_GRACE_SECONDS: '0',
      DRIFT_UPDATE_SECONDS: '0',
      ...env,
    },
    (p) => readFileSync(p, 'utf8'),
  );
  const lines = new Writable({
    write(chunk: Buffer, _encoding, done) {
      log?.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return startScorer(config, { logger: pino({ level: 'info' }, lines) });
}

async function score(url: string, records: Record<string, unknown>[]): Promise<void> {
  for (let start = 0; start < records.length; start += 1000) {
    const reply = await call(url, '/score', { body: { records: records.slice(start, start + 1000) } });
    assert.equal(reply.status, 200, reply.text);
  }
}

describe('drift: the FNOL model served to its training data and to skewed traffic', function () {
  this.timeout(300_000);
  let features: { name: string; type: string }[];
  let csv: Record<string, string>[];
  const record = (row: Record<string, string>): Record<string, unknown> =>
    Object.fromEntries(
      features.map(({ name, type }) => {
        const cell = row[name] ?? '';
        return [name, cell === '' ? null : type === 'number' ? Number(cell) : cell];
      }),
    );

  before(() => {
    const model = fnolModel();
    csv = readCsv(join(FNOL_ARTIFACTS, 'Data_Scientist_Interview_Task.csv'));
    const props = spawnSync(
      PYTHON,
      [
        '-c',
        'import onnx,sys; m=onnx.load(sys.argv[1]); print([p.value for p in m.metadata_props if p.key=="features"][0])',
        model,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(props.status, 0, props.stderr);
    features = JSON.parse(props.stdout) as { name: string; type: string }[];
  });

  it('the whole training CSV scores a PSI of (almost) 0 on every input and output', async () => {
    const s = await scorer(fnolModel());
    try {
      await score(s.url, csv.map(record));
      const text = await s.metrics.registry.metrics();
      const inputs = samples(text, 'scorer_input_drift_psi');
      const outputs = samples(text, 'scorer_prediction_drift_psi');
      assert.deepEqual([...inputs.keys()].sort(), features.map((f) => f.name).sort());
      assert.deepEqual([...outputs.keys()].sort(), [
        'attritional_cost',
        'large_loss_probability',
        'ultimate_cost',
      ]);
      // The window is the training data itself: only the shares' rounding to 1e-6 is left.
      for (const [name, value] of [...inputs, ...outputs]) assert.ok(value < 1e-4, `${name}: ${value}`);
    } finally {
      await s.shutdown();
    }
  });

  it('a random draw from the CSV stays far below 0.2; claims notified late in snow drift on exactly those inputs', async () => {
    const s = await scorer(fnolModel(), { DRIFT_WINDOW: '3000', DRIFT_MIN_RECORDS: '3000' });
    try {
      const next = random(13);
      const draw = () => record(csv[Math.floor(next() * csv.length)] as Record<string, string>);
      await score(s.url, Array.from({ length: 3000 }, draw));
      let text = await s.metrics.registry.metrics();
      // Sampling noise: the PSI of n draws is about (bins - 1) / n, at most 11 / 3000 here; 0.05
      // leaves room for chance and is a quarter of the alert's 0.2.
      for (const [name, value] of [
        ...samples(text, 'scorer_input_drift_psi'),
        ...samples(text, 'scorer_prediction_drift_psi'),
      ]) {
        assert.ok(value < 0.05, `${name}: ${value}`);
      }

      const skewed = Array.from({ length: 3000 }, () => ({
        ...draw(),
        Weather_conditions: 'SNOW,ICE,FOG',
        Notification_period: 30 + Math.floor(next() * 335),
      }));
      await score(s.url, skewed);
      text = await s.metrics.registry.metrics();
      const inputs = samples(text, 'scorer_input_drift_psi');
      const drifted = [...inputs].filter(([, v]) => v > 0.2).map(([k]) => k);
      assert.deepEqual(drifted.sort(), ['Notification_period', 'Weather_conditions']);
      for (const [name, value] of inputs)
        if (!drifted.includes(name)) assert.ok(value < 0.05, `${name}: ${value}`);
      const outputs = samples(text, 'scorer_prediction_drift_psi');
      assert.ok(
        (outputs.get('ultimate_cost') as number) > 0.2,
        `ultimate_cost: ${outputs.get('ultimate_cost')}`,
      );
    } finally {
      await s.shutdown();
    }
  });

  it('counts unseen categories and missing values per input, without the self-test', async () => {
    const s = await scorer(fnolModel());
    try {
      let text = await s.metrics.registry.metrics();
      assert.equal(samples(text, 'scorer_unseen_category_total').get('Weather_conditions'), 0);
      assert.equal(samples(text, 'scorer_missing_value_total').get('Location_of_incident'), 0);
      const base = record(csv[0] as Record<string, string>);
      await score(s.url, [
        { ...base, Weather_conditions: 'HAIL' },
        { ...base, Weather_conditions: 'HAIL', Location_of_incident: '' },
        { ...base, Location_of_incident: '' },
        { ...base, Notification_period: null },
        base,
      ]);
      text = await s.metrics.registry.metrics();
      const unseen = samples(text, 'scorer_unseen_category_total');
      const missing = samples(text, 'scorer_missing_value_total');
      assert.equal(unseen.get('Weather_conditions'), 2);
      assert.equal(unseen.get('Location_of_incident'), 0);
      assert.equal(missing.get('Location_of_incident'), 2);
      assert.equal(missing.get('Notification_period'), 1);
      assert.equal(missing.get('Weather_conditions'), 0);
      assert.equal(unseen.has('Notification_period'), false, 'numbers have no categories');
      assert.equal(samples(text, 'scorer_input_drift_psi').size, 0, 'below DRIFT_MIN_RECORDS: no PSI yet');
      assert.equal(samples(text, 'scorer_drift_state').get('on'), 1);
    } finally {
      await s.shutdown();
    }
  });

  it('DRIFT=off exports no drift series', async () => {
    const s = await scorer(fnolModel(), { DRIFT: 'off', DRIFT_MIN_RECORDS: '1' });
    try {
      await score(s.url, csv.slice(0, 50).map(record));
      const text = await s.metrics.registry.metrics();
      assert.equal(samples(text, 'scorer_input_drift_psi').size, 0);
      assert.equal(samples(text, 'scorer_missing_value_total').size, 0);
      assert.equal(samples(text, 'scorer_drift_state').get('off'), 1);
    } finally {
      await s.shutdown();
    }
  });
});

describe('drift: models without usable references are served without drift series', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'drift-models-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A copy of `model` with metadata reference_distributions set to `value` (or removed: null). */
  function withReference(model: string, value: string | null, name: string): string {
    const out = join(dir, `${name}.onnx`);
    const script = [
      'import sys, onnx',
      'm = onnx.load(sys.argv[1])',
      'keep = [p for p in m.metadata_props if p.key != "reference_distributions"]',
      'del m.metadata_props[:]',
      'm.metadata_props.extend(keep)',
      'if sys.argv[3] != "-": m.metadata_props.add(key="reference_distributions", value=sys.argv[3])',
      'onnx.save(m, sys.argv[2])',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, model, out, value ?? '-'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return out;
  }

  async function servesWithout(model: string, state: string, log: string[]): Promise<void> {
    const s = await scorer(model, { DRIFT_MIN_RECORDS: '1' }, log);
    try {
      const records = (JSON.parse(readFileSync(fnolModelSelfTest(model), 'utf8')) as unknown[]).slice(0, 2);
      const reply = await call(s.url, '/score', { body: { records } });
      assert.equal(reply.status, 200, reply.text);
      const text = await s.metrics.registry.metrics();
      for (const metric of [
        'scorer_input_drift_psi',
        'scorer_prediction_drift_psi',
        'scorer_unseen_category_total',
        'scorer_missing_value_total',
      ]) {
        assert.equal(samples(text, metric).size, 0, `${metric} in\n${text}`);
      }
      assert.equal(samples(text, 'scorer_drift_state').get(state), 1);
    } finally {
      await s.shutdown();
    }
  }

  /** The self-test records of a model, written to a file (valid requests for it). */
  function fnolModelSelfTest(model: string): string {
    const out = join(dir, 'self-test.json');
    const script = [
      'import sys, json, onnx',
      'm = onnx.load(sys.argv[1])',
      'st = json.loads([p.value for p in m.metadata_props if p.key == "self_test"][0])',
      'open(sys.argv[2], "w").write(json.dumps(st["records"]))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, model, out], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return out;
  }

  it('a model without reference distributions', async () => {
    const log: string[] = [];
    await servesWithout(fixtureModel('generic'), 'absent', log);
    assert.ok(log.some((l) => l.includes('carries no reference distributions')));
  });

  for (const [name, value, reason] of [
    ['not JSON', '{"version": 1,', /not a JSON object \(or not valid JSON\)/],
    ['another version', '{"version": 2}', /has version 2; this scorer reads version 1/],
    [
      'an input of the wrong type and shares that do not add up',
      null,
      /inputs\.Weather_conditions is a number distribution but the input takes strings.*the shares add up to/,
    ],
  ] as const) {
    it(`a model with corrupt references (${name}) is served, drift off, one warning naming the problem`, async () => {
      let doc: string | null = value;
      if (doc === null) {
        const props = spawnSync(
          PYTHON,
          [
            '-c',
            'import onnx,sys; m=onnx.load(sys.argv[1]); print([p.value for p in m.metadata_props if p.key=="reference_distributions"][0])',
            fnolModel(),
          ],
          { encoding: 'utf8' },
        );
        const parsed = JSON.parse(props.stdout) as {
          inputs: Record<string, unknown>;
          outputs: Record<string, { shares: number[] }>;
        };
        parsed.inputs.Weather_conditions = { type: 'number', edges: [1], shares: [0.5, 0.5], missing: 0 };
        (parsed.outputs.ultimate_cost as { shares: number[] }).shares[0] = 0.9;
        doc = JSON.stringify(parsed);
      }
      const log: string[] = [];
      await servesWithout(withReference(fnolModel(), doc, name.replace(/\W+/g, '-')), 'invalid', log);
      const warnings = log.filter((l) => l.includes('drift monitoring is off'));
      assert.equal(warnings.length, 1, log.join('\n'));
      assert.match(warnings[0] as string, reason);
      assert.match(warnings[0] as string, /recompile it with the model compiler/);
    });
  }
});

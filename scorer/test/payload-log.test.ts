// Payload logging against real parts: the scorer in-process with onnxruntime and
// the compiled FNOL model, Azurite as the blob store, real HTTP on loopback.
// Azurite holds exactly the sampled requests (a seeded sampler says which), with
// the configured fields hashed; a dead sink drops and counts while every
// request is still answered.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';
import Ajv2020 from 'ajv/dist/2020';
import { ConfigError, parseConfig } from '../src/config';
import type { FeatureSpec, ModelContract } from '../src/model-contract';
import type { PayloadLogConfig } from '../src/payload-log/config';
import { createSampler, PayloadLog } from '../src/payload-log/payload-log';
import { isFreeText, planRedaction, RECORDS_PER_LINE, serialize } from '../src/payload-log/record';
import { StdoutSink } from '../src/payload-log/sinks';
import { PYTHON, ROOT, call, fnolModel, startInProcess, testLogger, type InProcessScorer } from './support';
import { freePort } from '../../test/support/net';
import { logsMain } from '../../cli/src/logs-export';

// Azurite's documented development account (public, not a secret).
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const HASH_KEY = 'payload-log-test-key-0123456789abcdef';
const SHA256 = 'a'.repeat(64);

const dir = mkdtempSync(join(tmpdir(), 'payload-log-'));

/** PAYLOAD_LOG_* read by the scorer's own configuration parser, as a pod reads them. */
function payloadConfig(env: Record<string, string>, files: Record<string, string> = {}): PayloadLogConfig {
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const config = parseConfig(
    {
      MODEL_URI: 'file:///models/fnol.onnx',
      MODEL_LOCAL_MODE: 'true',
      MODEL_ALLOWED_HOSTS: '127.0.0.1',
      ...env,
    },
    (path) => readFileSync(path, 'utf8'),
  );
  assert.ok(config.payloadLog, 'payload logging is configured');
  return config.payloadLog;
}

/** A record of every feature: numbers from i, categories cycling through the trained ones. */
function recordOf(contract: ModelContract, i: number): Record<string, number | string> {
  const record: Record<string, number | string> = {};
  contract.features.forEach((f, k) => {
    record[f.name] = f.type === 'number' ? (i * 7 + k) % 11 : (f.values?.[(i + k) % f.values.length] ?? 'x');
  });
  return record;
}

interface LoggedLine {
  requestId: string;
  time: string;
  form: string;
  model: unknown;
  redacted: unknown;
  part: { index: number; count: number };
  features: string[];
  outputs: string[];
  inputs: unknown[][];
  predictions: unknown[][];
}

/** A line's positional rows as records of feature: value and output: value. */
function recordsOf(
  line: LoggedLine,
): { inputs: Record<string, unknown>; predictions: Record<string, unknown> }[] {
  return line.inputs.map((row, r) => ({
    inputs: Object.fromEntries(line.features.map((f, i) => [f, row[i]])),
    predictions: Object.fromEntries(line.outputs.map((o, i) => [o, line.predictions[r]?.[i]])),
  }));
}

async function readLines(container: ContainerClient): Promise<{ names: string[]; lines: LoggedLine[] }> {
  const names: string[] = [];
  const lines: LoggedLine[] = [];
  for await (const blob of container.listBlobsFlat()) {
    names.push(blob.name);
    const text = (await container.getBlobClient(blob.name).downloadToBuffer()).toString('utf8');
    for (const line of text.split('\n')) if (line !== '') lines.push(JSON.parse(line) as LoggedLine);
  }
  return { names, lines };
}

async function counter(scorer: InProcessScorer, name: string, labels = ''): Promise<number> {
  const text = await scorer.metrics.registry.metrics();
  const match = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return match === null ? NaN : Number(match[1]);
}

describe('payload logging', function () {
  let azurite: ChildProcess;
  let endpoint: string;
  let service: BlobServiceClient;
  let sas: string;
  let credential: StorageSharedKeyCredential;
  /** Records written by the first test: its window is exported by the next. */
  let loggedRows = 0;

  before(async function () {
    const port = await freePort();
    azurite = spawn(
      join(ROOT, 'node_modules/.bin/azurite-blob'),
      [
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--inMemoryPersistence',
        '--skipApiVersionCheck',
        '--silent',
      ],
      { stdio: 'ignore' },
    );
    endpoint = `http://127.0.0.1:${port}/${ACCOUNT}`;
    credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
    service = new BlobServiceClient(endpoint, credential, { retryOptions: { maxTries: 1 } });
    for (let i = 0; ; i++) {
      try {
        await service.getProperties();
        break;
      } catch (error) {
        if (i > 600) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await service.getContainerClient('payload-logs').create();
    sas = generateBlobSASQueryParameters(
      {
        containerName: 'payload-logs',
        permissions: ContainerSASPermissions.parse('acw'),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      credential,
    ).toString();
    fnolModel();
  });

  after(() => {
    azurite?.kill();
  });

  it('writes exactly the sampled requests to blob storage, hashed fields keyed, in the documented schema', async () => {
    const config = payloadConfig(
      {
        PAYLOAD_LOG_SAMPLE_RATE: '0.4',
        PAYLOAD_LOG_SEED: '1234',
        PAYLOAD_LOG_SINK: 'blob',
        PAYLOAD_LOG_CONTAINER_URL: `${endpoint}/payload-logs`,
        PAYLOAD_LOG_SAS_TOKEN_FILE: join(dir, 'sas'),
        PAYLOAD_LOG_HASH_KEY_FILE: join(dir, 'key'),
        PAYLOAD_LOG_REDACT_FIELDS: 'Location_of_incident',
        PAYLOAD_LOG_FLUSH_MS: '50',
        POD_NAME: 'fnol-7d9-abcde',
      },
      { sas, key: `${HASH_KEY}\n` },
    );
    assert.equal(config.redact.mode, 'hash', 'a key file makes hashing the default');
    const scorer = await startInProcess(fnolModel(), { payloadLog: config, sha256: SHA256 });
    try {
      const contract = (scorer.runtime as NonNullable<typeof scorer.runtime>).contract;
      const features = contract.features;
      const sent = new Map<string, { inputs: Record<string, unknown>[]; answer: unknown }>();
      const forms = ['records', 'data', 'v2'] as const;
      for (let i = 0; i < 30; i++) {
        const id = `req-${i}`;
        const records = [recordOf(contract, i), recordOf(contract, i + 100)];
        const form = forms[i % 3] as (typeof forms)[number];
        const body =
          form === 'records'
            ? { records }
            : form === 'data'
              ? { data: records.map((r) => features.map((f) => r[f.name])) }
              : {
                  inputs: features.map((f) => ({
                    name: f.name,
                    shape: [2, 1],
                    datatype: f.type === 'number' ? 'FP32' : 'BYTES',
                    data: records.map((r) => r[f.name]),
                  })),
                };
        const path = form === 'v2' ? `/v2/models/${contract.name}/infer` : '/score';
        const reply = await call(scorer.url, path, { body, headers: { 'x-request-id': id } });
        assert.equal(reply.status, 200, reply.text);
        sent.set(id, { inputs: records, answer: reply.body });
      }
      await (scorer.payloadLog as PayloadLog).close();

      const draw = createSampler(1234);
      const expected = [...sent.keys()].filter(() => draw() < 0.4);
      assert.ok(expected.length > 5 && expected.length < 25, 'the sample is a part of the requests');

      const container = service.getContainerClient('payload-logs');
      const { names, lines } = await readLines(container);
      assert.ok(names.length >= 1);
      for (const name of names) {
        assert.match(name, /^fnol\/1\.0\.0\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-fnol-7d9-abcde\.jsonl$/);
      }
      assert.deepEqual(
        lines.map((l) => l.requestId).sort(),
        [...expected].sort(),
        'exactly the sampled requests',
      );

      const schema = JSON.parse(readFileSync(join(ROOT, 'docs/payload-log.schema.json'), 'utf8'));
      const validate = new Ajv2020({ strict: true, allowUnionTypes: true, validateFormats: false }).compile(
        schema,
      );
      const key = Buffer.from(HASH_KEY);
      for (const line of lines) {
        assert.ok(validate(line), JSON.stringify(validate.errors));
        assert.ok(!Number.isNaN(Date.parse(line.time)));
        assert.deepEqual(line.model, { name: 'fnol', version: '1.0.0', sha256: SHA256 });
        assert.deepEqual(line.redacted, { Location_of_incident: 'hash' });
        const { inputs } = sent.get(line.requestId) as { inputs: Record<string, unknown>[] };
        assert.equal(recordsOf(line).length, 2);
        recordsOf(line).forEach((record, r) => {
          const original = inputs[r] as Record<string, unknown>;
          const hmac = createHmac('sha256', key).update(String(original.Location_of_incident)).digest('hex');
          assert.equal(record.inputs.Location_of_incident, `hmac-sha256:${hmac}`);
          assert.notEqual(record.inputs.Location_of_incident, original.Location_of_incident);
          for (const f of features) {
            if (f.name !== 'Location_of_incident')
              assert.equal(record.inputs[f.name], original[f.name], f.name);
          }
        });
        const answer = sent.get(line.requestId)?.answer as { predictions?: unknown; result?: unknown };
        if (line.form === 'records') {
          assert.deepEqual(
            recordsOf(line).map((x) => x.predictions),
            answer.predictions,
            'predictions as answered',
          );
        }
        if (line.form === 'data') {
          assert.deepEqual(
            recordsOf(line).map((x) => x.predictions[contract.primaryOutput]),
            answer.result,
          );
        }
      }
      loggedRows = lines.reduce((n, l) => n + l.inputs.length, 0);
      assert.equal(await counter(scorer, 'scorer_payload_log_written_total'), expected.length);
      assert.equal(await counter(scorer, 'scorer_payload_log_dropped_total', '{reason="sink_error"}'), 0);
    } finally {
      await scorer.close();
    }
  });

  it('exports the logged window as a CSV whose feature columns the model compiler reads', async () => {
    assert.ok(loggedRows > 0, 'the previous test logged records');
    const readSas = generateBlobSASQueryParameters(
      {
        containerName: 'payload-logs',
        permissions: ContainerSASPermissions.parse('rl'),
        expiresOn: new Date(Date.now() + 3600_000),
      },
      credential,
    ).toString();
    writeFileSync(join(dir, 'read-sas'), readSas);
    const out = join(dir, 'window.csv');
    const since = new Date(Date.now() - 3600_000).toISOString();
    const from = ['--from', `${endpoint}/payload-logs`, '--sas-token-file', join(dir, 'read-sas')];
    assert.equal(await logsMain(['export', ...from, '--since', since, '--out', out], () => {}), 0);
    const script = [
      'import json, sys',
      'sys.path.insert(0, "model")',
      'from fnol_model.fnol import FEATURES, read_graph_inputs',
      'df = read_graph_inputs(sys.argv[1])',
      'print(json.dumps({"columns": list(df.columns), "features": FEATURES, "rows": len(df)}))',
    ].join('\n');
    const run = spawnSync(PYTHON, ['-c', script, out], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const read = JSON.parse(run.stdout) as { columns: string[]; features: string[]; rows: number };
    assert.deepEqual(read.columns, read.features);
    assert.equal(read.rows, loggedRows);
    const header = readFileSync(out, 'utf8').split('\n')[0]?.split(',') ?? [];
    assert.deepEqual(header.slice(-4), ['model_version', 'model_sha256', 'request_id', 'time']);
    assert.ok(header.includes('ultimate_cost'), 'the predictions are columns');
    // A window that ends before the first record holds none.
    const empty = join(dir, 'empty.csv');
    assert.equal(await logsMain(['export', ...from, '--until', since, '--out', empty], () => {}), 0);
    assert.equal(readFileSync(empty, 'utf8').trim().split('\n').length, 1);
  });

  for (const dead of ['a closed port', 'a server that never answers'] as const) {
    it(`drops and counts under a dead sink (${dead}) while every request is answered`, async () => {
      const sockets: Socket[] = [];
      let hole: Server | undefined;
      const port = await freePort();
      if (dead === 'a server that never answers') {
        hole = createServer((socket) => sockets.push(socket));
        await new Promise<void>((r) => hole?.listen(port, '127.0.0.1', r));
      }
      const config = payloadConfig(
        {
          PAYLOAD_LOG_SAMPLE_RATE: '1',
          PAYLOAD_LOG_SINK: 'blob',
          PAYLOAD_LOG_CONTAINER_URL: `http://127.0.0.1:${port}/${ACCOUNT}/payload-logs`,
          PAYLOAD_LOG_SAS_TOKEN_FILE: join(dir, 'sas'),
          PAYLOAD_LOG_FLUSH_MS: '20',
          PAYLOAD_LOG_WRITE_TIMEOUT_MS: '300',
          PAYLOAD_LOG_BUFFER_ROWS: '40',
        },
        { sas },
      );
      const scorer = await startInProcess(fnolModel(), { payloadLog: config });
      try {
        const contract = (scorer.runtime as NonNullable<typeof scorer.runtime>).contract;
        const dropped = async () =>
          (await counter(scorer, 'scorer_payload_log_dropped_total', '{reason="sink_error"}')) +
          (await counter(scorer, 'scorer_payload_log_dropped_total', '{reason="buffer_full"}'));
        let before = await dropped();
        let grew = 0;
        for (let round = 0; round < 4; round++) {
          const replies = await Promise.all(
            Array.from({ length: 30 }, (_, i) =>
              call(scorer.url, '/score', { body: { records: [recordOf(contract, round * 30 + i)] } }),
            ),
          );
          assert.deepEqual(
            replies.map((r) => r.status),
            replies.map(() => 200),
          );
          await new Promise((r) => setTimeout(r, 400));
          const now = await dropped();
          if (now > before) grew++;
          before = now;
        }
        assert.ok(grew >= 3, `the dropped counter grew in ${grew} of 4 rounds`);
        assert.equal(await counter(scorer, 'scorer_payload_log_written_total'), 0);
        assert.ok(
          (await counter(scorer, 'scorer_payload_log_buffered_rows')) <= 40,
          'the buffer stays bounded',
        );
      } finally {
        await scorer.close();
        for (const s of sockets) s.destroy();
        hole?.close();
      }
    });
  }

  it('writes JSON Lines to stdout, and splits a large batch into parts', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    const config = payloadConfig({ PAYLOAD_LOG_SAMPLE_RATE: '1', PAYLOAD_LOG_FLUSH_MS: '10' });
    const scorer = await startInProcess(fnolModel(), {
      payloadLog: config,
      limits: { maxBatchRecords: 1000 },
    });
    // The same scorer's routes, with the log's sink swapped for a stream the test reads.
    const log = scorer.payloadLog as PayloadLog;
    (log as unknown as { sink: StdoutSink }).sink = new StdoutSink(out);
    try {
      const contract = (scorer.runtime as NonNullable<typeof scorer.runtime>).contract;
      const records = Array.from({ length: RECORDS_PER_LINE + 10 }, (_, i) => recordOf(contract, i));
      const reply = await call(scorer.url, '/score', {
        body: { records },
        headers: { 'x-request-id': 'big' },
      });
      assert.equal(reply.status, 200);
      await log.close();
      const lines = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as LoggedLine);
      assert.deepEqual(
        lines.map((l) => [l.requestId, l.part.index, l.part.count, l.inputs.length]),
        [
          ['big', 0, 2, RECORDS_PER_LINE],
          ['big', 1, 2, 10],
        ],
      );
    } finally {
      await scorer.close();
    }
  });
});

describe('payload logging configuration', () => {
  const feature = (name: string, type: 'number' | 'string', values?: string[]): FeatureSpec => ({
    name,
    type,
    nullable: true,
    values,
    rank: 2,
  });
  const contract = {
    name: 'm',
    version: '1',
    features: [feature('age', 'number'), feature('colour', 'string', ['red']), feature('notes', 'string')],
  } as unknown as ModelContract;

  it('writes valid JSON for any value: quotes, line breaks, null, non-finite outputs, outputs of several values', () => {
    const config = payloadConfig({ PAYLOAD_LOG_SAMPLE_RATE: '1', PAYLOAD_LOG_REDACT_FREE_TEXT: 'false' });
    const withOutputs = {
      ...contract,
      outputs: [
        { name: 'y', description: '', width: 1, labels: undefined },
        { name: 'p', description: '', width: 2, labels: undefined },
      ],
    } as unknown as ModelContract;
    const values = [
      [1.5, 'red', 'says "hi",\nthen \u2028 leaves \\'],
      [null, 'red', null],
    ];
    const text = serialize(
      {
        time: 0,
        requestId: 'r"1',
        route: '/score',
        form: 'data',
        latencyMs: 0.1234567,
        n: 2,
        value: (f, r) => values[r]?.[f],
        outputs: { y: new Float32Array([NaN, 2]), p: new Float32Array([0.25, 0.75, Infinity, 1]) },
      },
      {
        contract: withOutputs,
        sha256: undefined,
        plan: planRedaction(withOutputs, config.redact),
        hashKey: undefined,
      },
    );
    const line = JSON.parse(text) as LoggedLine & { latencyMs: number };
    assert.equal(line.requestId, 'r"1');
    assert.equal(line.latencyMs, 0.123);
    assert.deepEqual(recordsOf(line), [
      {
        inputs: { age: 1.5, colour: 'red', notes: values[0]?.[2] },
        predictions: { y: null, p: [0.25, 0.75] },
      },
      { inputs: { age: null, colour: 'red', notes: null }, predictions: { y: 2, p: [null, 1] } },
    ]);
  });

  it('is off by default', () => {
    const config = parseConfig({ MODEL_URI: 'file:///m.onnx' }, () => '');
    assert.equal(config.payloadLog, undefined);
  });

  it('redacts free text (a string feature without categories) by default, by dropping it without a key', () => {
    assert.deepEqual(
      contract.features.map((f) => isFreeText(f)),
      [false, false, true],
    );
    const config = payloadConfig({ PAYLOAD_LOG_SAMPLE_RATE: '1' });
    assert.deepEqual(planRedaction(contract, config.redact).summary, { notes: 'drop' });
    const off = payloadConfig({ PAYLOAD_LOG_SAMPLE_RATE: '1', PAYLOAD_LOG_REDACT_FREE_TEXT: 'false' });
    assert.deepEqual(planRedaction(contract, off.redact).summary, {});
  });

  it('refuses a redaction list naming a feature the model lacks, and drops instead of logging', async () => {
    const config = payloadConfig({
      PAYLOAD_LOG_SAMPLE_RATE: '1',
      PAYLOAD_LOG_REDACT_FIELDS: 'claimant_name',
    });
    assert.throws(() => planRedaction(contract, config.redact), /claimant_name.*does not have/);
    const scorer = await startInProcess(fnolModel(), { payloadLog: config, logger: testLogger() });
    try {
      const c = (scorer.runtime as NonNullable<typeof scorer.runtime>).contract;
      const reply = await call(scorer.url, '/score', { body: { records: [recordOf(c, 1)] } });
      assert.equal(reply.status, 200);
      assert.equal(
        await counter(scorer, 'scorer_payload_log_dropped_total', '{reason="redaction_config"}'),
        1,
      );
    } finally {
      await scorer.close();
    }
  });

  const refusals: [string, Record<string, string>, RegExp][] = [
    [
      'a rate over 1',
      { PAYLOAD_LOG_SAMPLE_RATE: '2' },
      /PAYLOAD_LOG_SAMPLE_RATE="2" is not a number between 0 and 1/,
    ],
    [
      'a container off the allow-list',
      { PAYLOAD_LOG_SINK: 'blob', PAYLOAD_LOG_CONTAINER_URL: 'https://evil.example.com/c' },
      /PAYLOAD_LOG_CONTAINER_URL refused: .*evil\.example\.com.*allow-list/,
    ],
    [
      'a SAS token in the URL',
      { PAYLOAD_LOG_SINK: 'blob', PAYLOAD_LOG_CONTAINER_URL: 'https://a.blob.core.windows.net/c?sig=x' },
      /query string or credentials/,
    ],
    [
      'a blob sink without a token',
      { PAYLOAD_LOG_SINK: 'blob', PAYLOAD_LOG_CONTAINER_URL: 'https://a.blob.core.windows.net/c' },
      /PAYLOAD_LOG_SAS_TOKEN_FILE is not set/,
    ],
    ['hashing without a key', { PAYLOAD_LOG_REDACT_MODE: 'hash' }, /needs a key/],
    ['an unknown sink', { PAYLOAD_LOG_SINK: 'kafka' }, /PAYLOAD_LOG_SINK="kafka" is not stdout or blob/],
  ];
  for (const [what, env, message] of refusals) {
    it(`refuses ${what}, naming the variable`, () => {
      assert.throws(
        () => parseConfig({ MODEL_URI: 'file:///m.onnx', PAYLOAD_LOG_SAMPLE_RATE: '1', ...env }, () => ''),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    });
  }
});

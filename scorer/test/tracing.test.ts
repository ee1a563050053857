// Trace context and span export (docs/scorer.md, Tracing): strict traceparent
// parsing; a real scorer (startScorer) answering with its span in the caller's
// trace, logging it, passing it on to a shadow copy, and exporting spans as
// OTLP/HTTP JSON to a collector on loopback; a dead or stuck collector costs
// dropped spans, never a request.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { ConfigError, parseConfig } from '../src/config';
import { startScorer, type RunningScorer } from '../src/server';
import { parseTraceparent } from '../src/tracing';
import { call, fixtureModel, SMOKE_ROWS } from './support';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('tracing: traceparent is parsed strictly', () => {
  const valid: [string, boolean][] = [
    [`00-${TRACE}-${PARENT}-01`, true],
    [`00-${TRACE}-${PARENT}-00`, false],
    [`00-${TRACE}-${PARENT}-03`, true],
    [`01-${TRACE}-${PARENT}-01-later-fields`, true], // a later version may append fields
    [`cc-${TRACE}-${PARENT}-00`, false],
  ];
  for (const [header, sampled] of valid) {
    it(`accepts ${header}`, () => {
      assert.deepEqual(parseTraceparent(header), { traceId: TRACE, parentId: PARENT, sampled });
    });
  }
  const invalid = [
    `00-${TRACE.toUpperCase()}-${PARENT}-01`, // upper case
    `ff-${TRACE}-${PARENT}-01`, // version ff
    `00-${'0'.repeat(32)}-${PARENT}-01`, // zero trace id
    `00-${TRACE}-${'0'.repeat(16)}-01`, // zero parent id
    `00-${TRACE}-${PARENT}-01-extra`, // version 00 has exactly 4 fields
    `00-${TRACE}-${PARENT}-1`, // short flags
    `00-${TRACE.slice(1)}-${PARENT}-01`,
    `00_${TRACE}_${PARENT}_01`,
    `01-${TRACE}-${PARENT}-01x`,
    `0g-${TRACE}-${PARENT}-01`,
    '',
  ];
  for (const header of invalid) {
    it(`refuses ${JSON.stringify(header)}`, () => assert.equal(parseTraceparent(header), undefined));
  }
  it('refuses two headers', () => {
    assert.equal(parseTraceparent([`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01`]), undefined);
  });
});

describe('tracing: configuration', () => {
  const parse = (env: Record<string, string>) =>
    parseConfig({ MODEL_URI: 'file:///m.onnx', ...env }, () => '');
  it('is off by default, on with OTEL_TRACES_EXPORTER=otlp, at the standard endpoint path', () => {
    assert.equal(parse({}).tracing, undefined);
    assert.equal(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).tracing, undefined);
    assert.equal(
      parse({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }).tracing?.endpoint
        .href,
      'http://c:4318/v1/traces',
    );
    assert.equal(
      parse({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://c/t' }).tracing
        ?.endpoint.href,
      'https://c/t',
    );
  });
  it('names every bad variable', () => {
    assert.throws(
      () =>
        parse({
          OTEL_TRACES_EXPORTER: 'zipkin',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://user:pw@c:4318',
          OTEL_BSP_MAX_QUEUE_SIZE: 'many',
        }),
      (error: ConfigError) => {
        const text = error.problems.join('\n');
        assert.match(text, /OTEL_TRACES_EXPORTER="zipkin" is not supported; use "otlp"/);
        assert.match(text, /OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported/);
        assert.match(text, /OTEL_EXPORTER_OTLP_ENDPOINT carries credentials/);
        assert.match(text, /OTEL_BSP_MAX_QUEUE_SIZE="many" is not an integer/);
        return true;
      },
    );
  });
});

interface Collector {
  readonly url: string;
  readonly server: Server;
  readonly spans: Record<string, unknown>[];
  readonly bodies: unknown[];
  close(): Promise<void>;
}

/** An OTLP/HTTP collector on loopback; `answer` decides what it does with each request. */
async function collector(
  answer: (req: IncomingMessage, reply: (status: number) => void) => void,
): Promise<Collector> {
  const spans: Record<string, unknown>[] = [];
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      answer(req, (status) => {
        if (status === 200) {
          assert.equal(req.url, '/v1/traces');
          assert.equal(req.headers['content-type'], 'application/json');
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[];
          };
          bodies.push(body);
          for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        }
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      });
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    spans,
    bodies,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

async function scorer(env: Record<string, string>, log: string[] = []): Promise<RunningScorer> {
  const config = parseConfig(
    {
      MODEL_URI: pathToFileURL(fixtureModel('fnol')).href,
      PORT: '0',
      HOST: '127.0.0.1',
      SHUTDOWN_GRACE_SECONDS: '0',
      ...env,
    },
    (p) => readFileSync(p, 'utf8'),
  );
  const lines = new Writable({
    write(chunk: Buffer, _encoding, done) {
      log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return startScorer(config, { logger: pino({ level: 'debug' }, lines) });
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function counter(text: string, result: string): number {
  const m = new RegExp(`^scorer_trace_spans_total\\{result="${result}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe("tracing: a scorer joins the caller's trace and exports its spans", function () {
  this.timeout(60_000);

  it("answers and logs its span in the caller's trace, exports it with the caller as parent", async () => {
    const c = await collector((_req, reply) => reply(200));
    const log: string[] = [];
    const s = await scorer(
      {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: c.url,
        OTEL_BSP_SCHEDULE_DELAY: '20',
        OTEL_SERVICE_NAME: 'fnol-test',
      },
      log,
    );
    try {
      const joined = await call(s.url, '/score', {
        body: { data: SMOKE_ROWS },
        headers: { traceparent: `00-${TRACE}-${PARENT}-01`, 'x-request-id': 'req-traced-1' },
      });
      assert.equal(joined.status, 200, joined.text);
      const answered = parseTraceparent(joined.headers.get('traceparent') ?? undefined);
      assert.equal(answered?.traceId, TRACE);
      assert.notEqual(answered?.parentId, PARENT, "the scorer's own span id");
      const ownSpan = answered?.parentId as string;

      const fresh = await call(s.url, '/score', {
        body: { data: SMOKE_ROWS },
        headers: { traceparent: `00-${TRACE.toUpperCase()}-${PARENT}-01` },
      });
      assert.equal(fresh.status, 200, 'an invalid traceparent is ignored, not an error');
      const started = parseTraceparent(fresh.headers.get('traceparent') ?? undefined);
      assert.ok(started !== undefined && started.traceId !== TRACE, 'a new trace');

      const unsampled = await call(s.url, '/score', {
        body: { data: SMOKE_ROWS },
        headers: { traceparent: `00-${'a'.repeat(32)}-${PARENT}-00` },
      });
      assert.match(unsampled.headers.get('traceparent') ?? '', /^00-a{32}-[0-9a-f]{16}-00$/);
      await call(s.url, '/healthz');

      await until('two spans', () => c.spans.length >= 2);
      await new Promise((r) => setTimeout(r, 100)); // nothing else arrives: not the unsampled one, not the probe
      assert.equal(c.spans.length, 2);
      const [first, second] = c.spans as [Record<string, unknown>, Record<string, unknown>];
      assert.equal(first.traceId, TRACE);
      assert.equal(first.spanId, ownSpan);
      assert.equal(first.parentSpanId, PARENT);
      assert.equal(first.name, 'POST /score');
      assert.equal(first.kind, 2);
      assert.ok(BigInt(first.endTimeUnixNano as string) >= BigInt(first.startTimeUnixNano as string));
      const attrs = first.attributes as { key: string; value: Record<string, unknown> }[];
      assert.deepEqual(attrs.find((a) => a.key === 'http.response.status_code')?.value, { intValue: '200' });
      assert.deepEqual(attrs.find((a) => a.key === 'x-request-id')?.value, { stringValue: 'req-traced-1' });
      assert.equal(second.traceId, started?.traceId);
      assert.equal(second.parentSpanId, undefined, 'a new trace has no parent');
      const resource = (c.bodies[0] as { resourceSpans: { resource: { attributes: unknown[] } }[] })
        .resourceSpans[0]?.resource.attributes;
      assert.deepEqual(resource, [{ key: 'service.name', value: { stringValue: 'fnol-test' } }]);

      // The access log line carries the request id with the trace and span ids.
      const entry = log
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.reqId === 'req-traced-1');
      assert.equal(entry?.traceId, TRACE);
      assert.equal(entry?.spanId, ownSpan);
      assert.equal(counter(await s.metrics.registry.metrics(), 'exported'), 2);
    } finally {
      await s.shutdown();
      await c.close();
    }
  });

  it('a dead collector: requests are answered, spans are counted as failed, one warning', async () => {
    const c = await collector(() => undefined);
    const dead = c.url;
    await c.close();
    const log: string[] = [];
    const s = await scorer(
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: dead, OTEL_BSP_SCHEDULE_DELAY: '10' },
      log,
    );
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal((await call(s.url, '/score', { body: { data: SMOKE_ROWS } })).status, 200);
      }
      await until('failed spans', () => log.some((l) => l.includes('cannot export spans')));
      const text = await s.metrics.registry.metrics();
      assert.ok(counter(text, 'failed') >= 1);
      assert.equal(log.filter((l) => l.includes('cannot export spans')).length, 1);
    } finally {
      await s.shutdown();
    }
  });

  it('a collector that never answers: the queue stays bounded, spans beyond it are dropped, requests unaffected', async () => {
    const held: ((status: number) => void)[] = [];
    let hold = true;
    const c = await collector((_req, reply) => (hold ? held.push(reply) : reply(200)));
    const s = await scorer({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: c.url,
      OTEL_BSP_MAX_QUEUE_SIZE: '4',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2',
      OTEL_BSP_SCHEDULE_DELAY: '600000', // batches leave when full only
      OTEL_EXPORTER_OTLP_TIMEOUT: '60000',
    });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => call(s.url, '/score', { body: { data: SMOKE_ROWS } })),
      );
      assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
      // One batch of 2 in flight (held), 4 queued, the other 14 dropped.
      const text = await s.metrics.registry.metrics();
      assert.equal(counter(text, 'dropped'), 14);
      assert.equal(held.length, 1);
      hold = false;
      for (const reply of held) reply(200);
      await until('the queued spans', () => c.spans.length === 6);
    } finally {
      await s.shutdown();
      await c.close();
    }
  });

  it("a shadow copy carries the request's trace, with the request's span as parent", async () => {
    const copies: IncomingMessage[] = [];
    const candidate = createServer((req, res) => {
      copies.push(req);
      req.resume();
      req.on('end', () => res.writeHead(500).end());
    });
    await new Promise<void>((done) => candidate.listen(0, '127.0.0.1', done));
    const s = await scorer({
      SHADOW_URL: `http://127.0.0.1:${(candidate.address() as AddressInfo).port}`,
      SHADOW_VERSION: '9.9.9',
    });
    try {
      const answer = await call(s.url, '/score', {
        body: { data: SMOKE_ROWS },
        headers: { traceparent: `00-${TRACE}-${PARENT}-01` },
      });
      assert.equal(answer.status, 200);
      await until('the copy', () => copies.length === 1);
      assert.equal(copies[0]?.headers.traceparent, answer.headers.get('traceparent'));
      assert.match(
        copies[0]?.headers.traceparent ?? '',
        new RegExp(`^00-${TRACE}-(?!${PARENT})[0-9a-f]{16}-01$`),
      );
    } finally {
      await s.shutdown();
      candidate.closeAllConnections();
      candidate.close();
    }
  });
});

import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import {
  collectComparison,
  comparisonOf,
  DIFFERENCE_BUCKETS,
  fetchShadow,
  LATENCY_BUCKETS,
  MAX_OUTPUTS,
  parseShadowReport,
  quantile,
  readyAddresses,
  shadowUrl,
  ShadowReportError,
  sumReports,
} from '../../src/comparison';

const NOW = new Date('2026-12-01T10:00:15.000Z');

/** Per-bucket counts with `n` observations in bucket i. */
function hist(bounds: readonly number[], entries: Record<number, number>): number[] {
  const h = new Array<number>(bounds.length + 1).fill(0);
  for (const [i, n] of Object.entries(entries)) h[Number(i)] = n;
  return h;
}

/** A /shadow body as the scorer writes it. */
function body(
  over: Record<string, unknown> = {},
  outputs?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    enabled: true,
    target: 'http://fnol-canary.claims.svc.cluster.local:80',
    candidateVersion: '1.1.0',
    percent: 100,
    threshold: 0.01,
    since: '2026-12-01T10:00:00.000Z',
    sampled: 130,
    dropped: 2,
    compared: 120,
    candidateErrors: 3,
    differenceBuckets: [...DIFFERENCE_BUCKETS],
    outputs: outputs ?? {
      ultimate_cost: {
        records: 120,
        exceeding: 2,
        counts: hist(DIFFERENCE_BUCKETS, { 1: 100, 5: 18, 7: 2 }),
      },
    },
    latencyBuckets: [...LATENCY_BUCKETS],
    latency: {
      stable: hist(LATENCY_BUCKETS, { 2: 120 }),
      candidate: hist(LATENCY_BUCKETS, { 3: 110, 5: 10 }),
    },
    ...over,
  };
}

function refused(b: unknown, message: RegExp): void {
  assert.throws(
    () => parseShadowReport(b),
    (e: unknown) => e instanceof ShadowReportError && message.test(e.message),
    `expected ${message}`,
  );
}

describe('comparison: quantiles from per-bucket histograms', () => {
  const bounds = [1, 2, 4];

  it('interpolates linearly within the bucket that holds the rank; the first bucket starts at 0', () => {
    // 10 in [0,1], 10 in (1,2]: the median is the top of the first bucket, p75 half-way into the second.
    assert.equal(quantile(bounds, [10, 10, 0, 0], 0.5), 1);
    assert.equal(quantile(bounds, [10, 10, 0, 0], 0.75), 1.5);
    assert.equal(quantile(bounds, [10, 0, 0, 0], 0.5), 0.5);
    // Empty buckets before the rank are skipped.
    assert.equal(quantile(bounds, [0, 0, 4, 0], 0.5), 3);
    assert.equal(quantile(bounds, [0, 0, 4, 0], 1), 4);
  });

  it('a rank in the +Inf bucket reports the last finite bound', () => {
    assert.equal(quantile(bounds, [1, 0, 0, 9], 0.95), 4);
  });

  it('undefined for an empty histogram or a q outside 0..1', () => {
    assert.equal(quantile(bounds, [0, 0, 0, 0], 0.5), undefined);
    assert.equal(quantile(bounds, [1, 0, 0, 0], 1.5), undefined);
    assert.equal(quantile(bounds, [1, 0, 0, 0], Number.NaN), undefined);
  });

  it('q = 0 is the bottom of the first non-empty bucket', () => {
    assert.equal(quantile(bounds, [0, 5, 0, 0], 0), 1);
  });
});

describe('comparison: the untrusted /shadow body', () => {
  it("accepts the scorer's report", () => {
    const r = parseShadowReport(body())!;
    assert.equal(r.candidateVersion, '1.1.0');
    assert.equal(r.compared, 120);
    assert.equal(r.candidateErrors, 3);
    assert.equal(r.dropped, 2);
    assert.equal(r.threshold, 0.01);
    assert.equal(r.outputs.get('ultimate_cost')?.records, 120);
    assert.equal(r.latency.candidate[5], 10);
  });

  it('a pod that does not mirror is no report, not an error', () => {
    assert.equal(parseShadowReport({ enabled: false }), undefined);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['an array', [], /must be a JSON object/],
    ['null', null, /must be a JSON object/],
    ['enabled missing', body({ enabled: undefined }), /enabled must be true or false/],
    ['enabled a string', body({ enabled: 'yes' }), /enabled must be true or false/],
    ['no candidate version', body({ candidateVersion: '' }), /candidateVersion/],
    ['a huge candidate version', body({ candidateVersion: 'v'.repeat(64) }), /candidateVersion/],
    ['negative compared', body({ compared: -1 }), /compared must be a non-negative integer/],
    ['fractional errors', body({ candidateErrors: 1.5 }), /candidateErrors must be a non-negative integer/],
    ['a string count', body({ dropped: '2' }), /dropped must be a non-negative integer/],
    ['an unsafe integer', body({ compared: 2 ** 60 }), /compared must be a non-negative integer/],
    ['a negative threshold', body({ threshold: -0.01 }), /threshold must be a finite non-negative number/],
    ['a null threshold (NaN or Infinity in JSON)', body({ threshold: null }), /threshold must be a finite/],
    [
      'other difference buckets',
      body({ differenceBuckets: [0.1, 1] }),
      /differenceBuckets must be \[0, 1e-7/,
    ],
    [
      'one bound changed',
      body({ differenceBuckets: DIFFERENCE_BUCKETS.map((b, i) => (i === 3 ? b * 2 : b)) }),
      /differenceBuckets/,
    ],
    ['other latency buckets', body({ latencyBuckets: [...LATENCY_BUCKETS, 10] }), /latencyBuckets must be/],
    ['outputs an array', body({ outputs: [] }), /outputs must be an object/],
    [
      'a histogram one short',
      body({}, { y: { records: 1, exceeding: 0, counts: new Array(DIFFERENCE_BUCKETS.length).fill(0) } }),
      /outputs\.y\.counts must hold 14 counts/,
    ],
    [
      'a negative bucket',
      body({}, { y: { records: 1, exceeding: 0, counts: hist(DIFFERENCE_BUCKETS, { 3: -1 }) } }),
      /outputs\.y\.counts\[3\] must be a non-negative integer/,
    ],
    [
      'exceeding more than the records',
      body({}, { y: { records: 1, exceeding: 2, counts: hist(DIFFERENCE_BUCKETS, { 1: 1 }) } }),
      /outputs\.y\.exceeding \(2\) is more than its records \(1\)/,
    ],
    [
      'an output name with markup',
      body({}, { '<script>': { records: 0, exceeding: 0, counts: hist(DIFFERENCE_BUCKETS, {}) } }),
      /output name "<script>" is not allowed/,
    ],
    [
      'too many outputs',
      body(
        {},
        Object.fromEntries(
          Array.from({ length: MAX_OUTPUTS + 1 }, (_, i) => [
            `o${i}`,
            { records: 0, exceeding: 0, counts: hist(DIFFERENCE_BUCKETS, {}) },
          ]),
        ),
      ),
      /more than 64 outputs/,
    ],
    ['latency missing', body({ latency: undefined }), /latency must be an object/],
    [
      'a latency histogram of strings',
      body({
        latency: { stable: hist(LATENCY_BUCKETS, {}).map(String), candidate: hist(LATENCY_BUCKETS, {}) },
      }),
      /latency\.stable\[0\] must be a non-negative integer/,
    ],
  ];
  for (const [what, b, message] of bad) {
    it(`refuses ${what}`, () => refused(b, message));
  }
});

describe('comparison: sums and status figures', () => {
  it("adds the pods' counters and histograms bucket by bucket", () => {
    const a = parseShadowReport(body())!;
    const b = parseShadowReport(
      body(
        { compared: 80, candidateErrors: 1, dropped: 0, threshold: 0.02 },
        {
          ultimate_cost: { records: 80, exceeding: 8, counts: hist(DIFFERENCE_BUCKETS, { 1: 40, 7: 40 }) },
          frequency: { records: 80, exceeding: 0, counts: hist(DIFFERENCE_BUCKETS, { 1: 80 }) },
        },
      ),
    )!;
    const t = sumReports([a, b]);
    assert.equal(t.pods, 2);
    assert.equal(t.compared, 200);
    assert.equal(t.candidateErrors, 4);
    assert.equal(t.dropped, 2);
    assert.equal(t.threshold, 0.02);
    assert.deepEqual(t.outputs.get('ultimate_cost'), {
      records: 200,
      exceeding: 10,
      counts: hist(DIFFERENCE_BUCKETS, { 1: 140, 5: 18, 7: 42 }),
    });
    assert.equal(t.outputs.get('frequency')?.records, 80);
    assert.equal(t.latency.stable[2], 240);
    // The inputs are not modified.
    assert.equal(a.outputs.get('ultimate_cost')?.records, 120);
  });

  it('computes rates, quantiles and shares for status.canary.comparison', () => {
    const c = comparisonOf(sumReports([parseShadowReport(body())!]), NOW);
    assert.equal(c.requests, 120);
    assert.equal(c.candidateErrors, 3);
    assert.equal(c.dropped, 2);
    assert.equal(c.candidateErrorRate, 3 / 123);
    assert.equal(c.pods, 1);
    assert.equal(c.updatedAt, '2026-12-01T10:00:15.000Z');
    const o = c.outputs?.[0];
    assert.equal(o?.name, 'ultimate_cost');
    // 100 of 120 in the bucket (0, 1e-7]: the median is 60/100 of the way up.
    assert.ok(Math.abs((o?.medianRelativeDifference ?? -1) - 0.6e-7) < 1e-15);
    // Rank 114: 100 below, 18 in (1e-4, 1e-3]: 14/18 of the way up.
    assert.ok(Math.abs((o?.p95RelativeDifference ?? -1) - (1e-4 + (1e-3 - 1e-4) * (14 / 18))) < 1e-12);
    assert.equal(o?.threshold, 0.01);
    assert.equal(o?.exceedingShare, 2 / 120);
    // Stable latencies all in (0.0025, 0.005]; the candidate's p99 lies in (0.025, 0.05].
    assert.ok(Math.abs((c.stableLatencyP99Seconds ?? -1) - (0.0025 + 0.0025 * 0.99)) < 1e-12);
    assert.ok(
      Math.abs((c.candidateLatencyP99Seconds ?? -1) - (0.025 + 0.025 * ((118.8 - 110) / 10))) < 1e-12,
    );
  });

  it('an identical candidate: every difference exactly 0 gives a median and p95 of 0', () => {
    const same = body(
      { compared: 50, candidateErrors: 0, dropped: 0 },
      { ultimate_cost: { records: 50, exceeding: 0, counts: hist(DIFFERENCE_BUCKETS, { 0: 50 }) } },
    );
    const o = comparisonOf(sumReports([parseShadowReport(same)!]), NOW).outputs?.[0];
    assert.equal(o?.medianRelativeDifference, 0);
    assert.equal(o?.p95RelativeDifference, 0);
  });

  it('no pods or no requests: zeros and no quantiles, never NaN', () => {
    const c = comparisonOf(sumReports([]), NOW);
    assert.deepEqual(c, {
      requests: 0,
      dropped: 0,
      candidateErrors: 0,
      candidateErrorRate: 0,
      outputs: [],
      pods: 0,
      updatedAt: NOW.toISOString(),
    });
  });
});

describe('comparison: GET /shadow from pods over HTTP', () => {
  let server: http.Server;
  let base: string;
  const answers = new Map<string, (res: http.ServerResponse) => void>();

  before(async () => {
    server = http.createServer((req, res) => {
      const answer = answers.get(req.url ?? '');
      if (answer) answer(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const json = (b: unknown) => (res: http.ServerResponse) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(b));
    answers.set('/a/shadow', json(body()));
    answers.set(
      '/b/shadow',
      json(
        body(
          { compared: 80, candidateErrors: 0, dropped: 0 },
          { ultimate_cost: { records: 80, exceeding: 0, counts: hist(DIFFERENCE_BUCKETS, { 1: 80 }) } },
        ),
      ),
    );
    answers.set('/old/shadow', json(body({ candidateVersion: '1.0.9' })));
    answers.set('/off/shadow', json({ enabled: false }));
    answers.set('/garbage/shadow', (res) => res.writeHead(200).end('{"enabled": tru'));
    answers.set('/bad/shadow', json(body({ compared: -5 })));
    answers.set('/error/shadow', (res) => res.writeHead(500).end('boom'));
    answers.set('/huge/shadow', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"pad":"');
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 8; i++) res.write(chunk);
      res.end('"}');
    });
    answers.set('/slow/shadow', () => {
      /* never answers */
    });
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("reads and parses one pod's report", async () => {
    const got = await fetchShadow(`${base}/a/shadow`, { timeoutMs: 2000 });
    assert.equal((got as { compared: number }).compared, 120);
  });

  it('refuses a body over the size cap, a non-200 answer, non-JSON and a pod that does not answer', async () => {
    await assert.rejects(fetchShadow(`${base}/huge/shadow`, { timeoutMs: 2000 }), /larger than 262144 bytes/);
    await assert.rejects(
      fetchShadow(`${base}/a/shadow`, { timeoutMs: 2000, maxBytes: 100 }),
      /larger than 100 bytes/,
    );
    await assert.rejects(fetchShadow(`${base}/error/shadow`, { timeoutMs: 2000 }), /answered 500/);
    await assert.rejects(fetchShadow(`${base}/garbage/shadow`, { timeoutMs: 2000 }), /not JSON/);
    await assert.rejects(fetchShadow(`${base}/slow/shadow`, { timeoutMs: 200 }), /no answer within 200 ms/);
  });

  it('sums the valid reports of the candidate version and names every pod left out', async () => {
    const urls = ['a', 'b', 'old', 'off', 'garbage', 'bad', 'error', 'huge', 'slow', 'missing'].map(
      (p) => `${base}/${p}/shadow`,
    );
    const { comparison, skipped } = await collectComparison(urls, '1.1.0', { timeoutMs: 300 }, NOW);
    assert.equal(comparison.pods, 2);
    assert.equal(comparison.requests, 200);
    assert.equal(comparison.candidateErrors, 3);
    assert.equal(comparison.outputs?.[0]?.exceedingShare, 2 / 200);
    const reasons = Object.fromEntries(
      skipped.map((s) => [s.url.slice(base.length + 1, -'/shadow'.length), s.reason]),
    );
    assert.deepEqual(Object.keys(reasons).sort(), [
      'bad',
      'error',
      'garbage',
      'huge',
      'missing',
      'off',
      'old',
      'slow',
    ]);
    assert.match(reasons.old!, /mirrors to version 1\.0\.9, not 1\.1\.0/);
    assert.match(reasons.off!, /not mirroring/);
    assert.match(reasons.bad!, /compared must be a non-negative integer/);
    assert.match(reasons.missing!, /answered 404/);
  });

  it('pod URLs: IPv4 as is, IPv6 in brackets', () => {
    assert.equal(shadowUrl('10.0.0.7', 8080), 'http://10.0.0.7:8080/shadow');
    assert.equal(shadowUrl('fd00::7', 8080), 'http://[fd00::7]:8080/shadow');
  });
});

describe('comparison: which pods are read', () => {
  it("the ready, not terminating addresses of the stable Service's EndpointSlices, each once", () => {
    const slices = [
      {
        addressType: 'IPv4',
        endpoints: [
          { addresses: ['10.0.0.1'], conditions: { ready: true } },
          { addresses: ['10.0.0.2'], conditions: { ready: false } },
          { addresses: ['10.0.0.3'], conditions: { ready: true, terminating: true } },
          { addresses: ['10.0.0.4'] },
          { addresses: [] },
        ],
      },
      { addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }] },
      { addressType: 'IPv4', endpoints: [] },
    ];
    assert.deepEqual(readyAddresses(slices as V1EndpointSlice[]), ['10.0.0.1', '10.0.0.4']);
  });
});

// Overload protection: bounded requests in flight, bytes of bodies held and rows
// waiting for the model (429 with Retry-After beyond them), a deadline per
// request (503, or 408 while the body is still arriving), and JSON bodies bounded
// in nesting and structure while they arrive. The last suite attacks the real
// scorer process and watches its memory and its liveness probe.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest, type ClientRequest } from 'node:http';
import { readMetadataProps } from '../../src/onnx-metadata';
import { launch, rssBytes, waitReady, type Running } from '../process-support';
import { SMOKE_ROWS, call, fnolModel, startInProcess, type InProcessScorer } from '../support';
import { freePort } from '../../../test/support/net';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Starts a POST whose body is only partly sent: it stays in flight until `finish`. */
function openRequest(
  url: string,
  declared: number,
  agent: Agent | false = false,
): { req: ClientRequest; answer: Promise<Answer>; finish: (rest: string) => void } {
  const req = httpRequest(`${url}/score`, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': declared },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, answer, finish: (rest) => req.end(rest) };
}

function post(url: string, path: string, body: string, agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${url}${path}`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('scorer overload guard', function () {
  const props = readMetadataProps(readFileSync(fnolModel()));
  const order = JSON.parse(props.get('feature_order') ?? '[]') as string[];
  const row = SMOKE_ROWS[0] as number[];
  const records = (n: number) =>
    JSON.stringify({
      records: Array.from({ length: n }, () => Object.fromEntries(order.map((k, i) => [k, row[i]]))),
    });

  describe('bounds in flight', function () {
    let scorer: InProcessScorer;
    before(async () => {
      scorer = await startInProcess(fnolModel(), {
        limits: {
          maxBodyBytes: 1 * MiB,
          maxBatchRecords: 5000,
          overload: { maxConcurrentRequests: 2, maxInflightBodyBytes: 1 * MiB },
        },
      });
    });
    after(() => scorer?.close());

    it('answers 429 with Retry-After beyond MAX_CONCURRENT_REQUESTS, and admits again once one is done', async () => {
      const body = JSON.stringify({ data: [row] });
      const first = openRequest(scorer.url, body.length);
      const second = openRequest(scorer.url, body.length);
      first.req.write(body.slice(0, 5));
      second.req.write(body.slice(0, 5));
      await sleep(100);
      const third = await post(scorer.url, '/score', body);
      assert.equal(third.status, 429, third.text);
      assert.equal(third.headers['retry-after'], '1');
      assert.match(
        (JSON.parse(third.text) as { error: string }).error,
        /limit of 2 requests \(MAX_CONCURRENT_REQUESTS\)/,
      );
      // Probes are not scoring requests: they still answer.
      assert.equal((await call(scorer.url, '/healthz')).status, 200);
      first.finish(body.slice(5));
      second.finish(body.slice(5));
      assert.equal((await first.answer).status, 200);
      assert.equal((await second.answer).status, 200);
      assert.equal((await post(scorer.url, '/score', body)).status, 200);
      const metrics = await call(scorer.url, '/metrics');
      assert.match(metrics.text, /scorer_requests_refused_total\{reason="concurrency"\} 1/);
      assert.match(metrics.text, /scorer_requests_in_flight 0/);
    });

    it('answers 429 when the bodies held would pass MAX_INFLIGHT_BODY_BYTES', async () => {
      const big = records(900); // about 600 KB
      const held = openRequest(scorer.url, big.length);
      held.req.write(big.slice(0, 10));
      await sleep(100);
      const second = await post(scorer.url, '/score', big);
      assert.equal(second.status, 429, second.text.slice(0, 300));
      assert.match(second.text, /MAX_INFLIGHT_BODY_BYTES/);
      assert.equal(second.headers['retry-after'], '1');
      held.finish(big.slice(10));
      assert.equal((await held.answer).status, 200);
      const metrics = await call(scorer.url, '/metrics');
      assert.match(metrics.text, /scorer_request_body_bytes_in_flight 0/);
    });
  });

  describe('bounds on rows waiting and on time', function () {
    /**
     * Sends `body` `n` times in the same turn: over an agent whose `n` connections
     * are opened first, so no request waits for a connection.
     */
    const burst = async (url: string, body: string, n: number) => {
      const agent = new Agent({ keepAlive: true, maxSockets: n });
      const one = JSON.stringify({ data: [row] });
      await Promise.all(Array.from({ length: n }, () => post(url, '/score', one, agent)));
      const answers = await Promise.all(Array.from({ length: n }, () => post(url, '/score', body, agent)));
      agent.destroy();
      return answers;
    };
    const rows = (n: number) => JSON.stringify({ data: Array.from({ length: n }, () => row) });

    it('answers 429 when the rows waiting for the model would pass MAX_QUEUED_ROWS', async () => {
      const scorer = await startInProcess(fnolModel(), {
        limits: { maxBodyBytes: 8 * MiB, maxBatchRecords: 500, overload: { maxQueuedRows: 500 } },
      });
      try {
        // Bodies that arrive together are parsed and queued before the model runs.
        const body = rows(200);
        const answers = await burst(scorer.url, body, 12);
        const statuses = answers.map((a) => a.status);
        const refused = answers.filter((a) => a.status === 429);
        assert.ok(refused.length > 0, `statuses ${statuses.join(',')}`);
        assert.match(
          refused[0]?.text ?? '',
          /rows waiting for the model and takes at most 500 \(MAX_QUEUED_ROWS\)/,
        );
        assert.equal(refused[0]?.headers['retry-after'], '1');
        assert.ok(statuses.includes(200), statuses.join(','));
        assert.ok(
          statuses.every((s) => s === 200 || s === 429),
          statuses.join(','),
        );
        assert.equal(scorer.runtime?.pendingRows, 0);
      } finally {
        await scorer.close();
      }
    });

    it('answers 503 with a clear message when the deadline passes while waiting for the model', async () => {
      // Room for every request of the burst in the other bounds, so only the deadline refuses.
      const scorer = await startInProcess(fnolModel(), {
        limits: {
          maxBodyBytes: 8 * MiB,
          maxBatchRecords: 5000,
          overload: {
            requestTimeoutMs: 150,
            maxConcurrentRequests: 64,
            maxQueuedRows: 1_000_000,
            maxInflightBodyBytes: 256 * MiB,
          },
        },
      });
      try {
        // Each batch of 5,000 keeps the model busy for tens of milliseconds:
        // 16 of them queue for far longer than the 150 ms deadline, on a fast
        // machine as on a slow one (6 could all be answered in time).
        const body = rows(5000);
        const answers = await burst(scorer.url, body, 16);
        const statuses = answers.map((a) => a.status);
        const late = answers.filter((a) => a.status === 503);
        assert.ok(late.length > 0, `statuses ${statuses.join(',')}`);
        assert.equal(late[0]?.headers['retry-after'], '1');
        assert.match(
          (JSON.parse(late[0]?.text ?? '{}') as { error: string }).error,
          /not answered within 150 ms \(REQUEST_TIMEOUT_MS\): the scorer is overloaded; retry shortly/,
        );
        assert.ok(
          statuses.every((s) => s === 200 || s === 503 || s === 408),
          statuses.join(','),
        );
        // Requests dropped from the queue are not run at all.
        await sleep(200);
        assert.equal(scorer.runtime?.pendingRows, 0);
        const metrics = await call(scorer.url, '/metrics');
        assert.match(metrics.text, /scorer_requests_refused_total\{reason="deadline"\} [1-9]/);
      } finally {
        await scorer.close();
      }
    });

    it('answers 408 when the body does not arrive before the deadline', async () => {
      const scorer = await startInProcess(fnolModel(), { limits: { overload: { requestTimeoutMs: 200 } } });
      try {
        const slow = openRequest(scorer.url, 1000);
        slow.req.write('{"data": [');
        const answer = await slow.answer;
        assert.equal(answer.status, 408);
        assert.match(answer.text, /did not arrive within 200 ms/);
        slow.req.destroy();
      } finally {
        await scorer.close();
      }
    });
  });

  describe('JSON bodies bounded while read', function () {
    let scorer: InProcessScorer;
    before(async () => {
      scorer = await startInProcess(fnolModel(), { limits: { maxBodyBytes: 8 * MiB, maxBatchRecords: 100 } });
    });
    after(() => scorer?.close());

    it('refuses nesting deeper than MAX_JSON_DEPTH (32) with 400, on both protocols', async () => {
      for (const path of ['/score', '/v2/models/fnol/infer']) {
        const answer = await post(scorer.url, path, `{"data": ${'['.repeat(40)}${']'.repeat(40)}}`);
        assert.equal(answer.status, 400, answer.text);
        assert.match(answer.text, /nested deeper than 32 levels/);
      }
      // 31 levels inside a value are refused by the schema, not by the depth limit.
      const shallow = await post(scorer.url, '/score', `{"data": ${'['.repeat(31)}${']'.repeat(31)}}`);
      assert.equal(shallow.status, 400);
      assert.doesNotMatch(shallow.text, /nested deeper/);
      const metrics = await call(scorer.url, '/metrics');
      assert.match(metrics.text, /scorer_requests_refused_total\{reason="json_limits"\} 2/);
    });

    it('is not fooled by brackets inside strings and escaped quotes', async () => {
      const tricky = row.map((v, i) => (i === 1 ? `a\\"\\\\${'['.repeat(100)}"` : v));
      const answer = await post(scorer.url, '/score', JSON.stringify({ data: [tricky] }));
      assert.equal(answer.status, 200, answer.text);
    });

    it('refuses more arrays and objects than a batch can hold with 413, before parsing', async () => {
      const answer = await post(scorer.url, '/score', `{"data": [${'[],'.repeat(100_000)}[]]}`);
      assert.equal(answer.status, 413, answer.text.slice(0, 300));
      assert.match(
        answer.text,
        /holds more than \d+ arrays and objects; a request holds at most 100 records/,
      );
    });
  });

  describe('the real scorer process under attack (memory limit 1 GiB)', function () {
    this.timeout(180_000);
    let running: Running;
    let url: string;

    before(async () => {
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      running = launch({
        MODEL_URI: `file://${fnolModel()}`,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        MEMORY_LIMIT_BYTES: String(GiB),
      });
      await waitReady(url, running);
    });
    after(async () => {
      running?.child.kill('SIGKILL');
      await running?.exit;
    });

    /** Runs `attack` while sampling RSS every 20 ms and /healthz every 100 ms. */
    const watch = async (attack: () => Promise<void>) => {
      const pid = running.child.pid as number;
      let peakRss = rssBytes(pid);
      let slowestHealthz = 0;
      let healthzFailures = 0;
      let probes = 0;
      let stop = false;
      const rss = (async () => {
        while (!stop) {
          peakRss = Math.max(peakRss, rssBytes(pid));
          await sleep(20);
        }
      })();
      const liveness = (async () => {
        while (!stop) {
          const start = performance.now();
          try {
            const reply = await call(url, '/healthz');
            if (reply.status !== 200) healthzFailures++;
          } catch {
            healthzFailures++;
          }
          probes++;
          slowestHealthz = Math.max(slowestHealthz, performance.now() - start);
          await sleep(100);
        }
      })();
      await attack();
      stop = true;
      await Promise.all([rss, liveness]);
      return { peakRss, slowestHealthz, healthzFailures, probes };
    };

    /** Sends `body` on `count` connections at once; the status of each answer, or the error. */
    const flood = (path: string, body: Buffer, count: number) =>
      Promise.all(
        Array.from(
          { length: count },
          () =>
            new Promise<string>((resolve) => {
              const req = httpRequest(`${url}${path}`, {
                method: 'POST',
                agent: false,
                headers: { 'content-type': 'application/json', 'content-length': body.length },
              });
              let status = '';
              req.on('response', (res) => {
                status = String(res.statusCode);
                res.resume();
                res.on('end', () => resolve(status));
              });
              // Cut off after the answer when it keeps sending: the answer came first.
              req.on('error', (e: NodeJS.ErrnoException) => resolve(status || (e.code ?? 'error')));
              req.end(body);
            }),
        ),
      );

    const deep = (bytes: number) => {
      const half = Math.floor((bytes - 20) / 2);
      return Buffer.from(`{"data": ${'['.repeat(half)}${']'.repeat(half)}}`);
    };

    it('8 concurrent 8 MiB deeply nested bodies: RSS stays under 1 GiB, /healthz answers within 1 s', async () => {
      const body = deep(8 * MiB);
      const statuses: string[] = [];
      const seen = await watch(async () => {
        for (let round = 0; round < 3; round++) statuses.push(...(await flood('/score', body, 8)));
      });
      console.log(
        `      peak RSS ${(seen.peakRss / MiB).toFixed(0)} MiB, slowest /healthz ${seen.slowestHealthz.toFixed(0)} ms of ${seen.probes}, statuses ${[...new Set(statuses)].join(',')}`,
      );
      assert.ok(seen.peakRss < GiB, `peak RSS ${(seen.peakRss / MiB).toFixed(0)} MiB`);
      assert.ok(seen.slowestHealthz < 1000, `slowest /healthz ${seen.slowestHealthz.toFixed(0)} ms`);
      assert.equal(seen.healthzFailures, 0);
      assert.ok(
        statuses.every((s) => s === '400'),
        `every attacker got 400: ${statuses.join(',')}`,
      );
    });

    it('8 concurrent 8 MiB bodies of empty arrays: refused the same way', async () => {
      const body = Buffer.from(`{"data": [${'[],'.repeat(Math.floor((8 * MiB - 20) / 3))}[]]}`);
      const statuses: string[] = [];
      const seen = await watch(async () => {
        for (let round = 0; round < 3; round++)
          statuses.push(...(await flood('/v2/models/fnol/infer', body, 8)));
      });
      console.log(
        `      peak RSS ${(seen.peakRss / MiB).toFixed(0)} MiB, slowest /healthz ${seen.slowestHealthz.toFixed(0)} ms of ${seen.probes}, statuses ${[...new Set(statuses)].join(',')}`,
      );
      assert.ok(seen.peakRss < GiB, `peak RSS ${(seen.peakRss / MiB).toFixed(0)} MiB`);
      assert.ok(seen.slowestHealthz < 1000, `slowest /healthz ${seen.slowestHealthz.toFixed(0)} ms`);
      assert.equal(seen.healthzFailures, 0);
      assert.ok(
        statuses.every((s) => s === '413' || s === '400'),
        statuses.join(','),
      );
    });

    it('a legitimate burst of 24 batches of 5,000 records: liveness holds, answers are 200 or 429', async () => {
      const body = Buffer.from(records(5000));
      const statuses: string[] = [];
      const seen = await watch(async () => {
        statuses.push(...(await flood('/score', body, 24)));
      });
      console.log(
        `      body ${(body.length / MiB).toFixed(1)} MiB, peak RSS ${(seen.peakRss / MiB).toFixed(0)} MiB, slowest /healthz ${seen.slowestHealthz.toFixed(0)} ms of ${seen.probes}, statuses ${statuses.join(',')}`,
      );
      assert.ok(seen.peakRss < GiB, `peak RSS ${(seen.peakRss / MiB).toFixed(0)} MiB`);
      assert.ok(seen.slowestHealthz < 1000, `slowest /healthz ${seen.slowestHealthz.toFixed(0)} ms`);
      assert.equal(seen.healthzFailures, 0);
      assert.ok(
        statuses.every((s) => s === '200' || s === '429'),
        statuses.join(','),
      );
      assert.ok(statuses.includes('200'));
    });
  });
});

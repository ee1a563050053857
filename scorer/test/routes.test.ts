// The route table and the instrumentation labelled from it: every route is
// counted under its own label, a path of no route under "other", and a route
// added to the table is served and measured with no other change.

import assert from 'node:assert/strict';
import { SCORER_ROUTES } from '../src/routes/index';
import { RouteTable, UNKNOWN_ROUTE, type Route } from '../src/routes/table';
import { sendJson } from '../src/send-json';
import { call, fixtureModel, startInProcess, type InProcessScorer } from './support';

const noop: Route['handler'] = () => undefined;
const route = (r: Partial<Route> & Pick<Route, 'paths' | 'label'>): Route => ({
  method: 'GET',
  handler: noop,
  ...r,
});

/** scorer_http_requests_total as "label method status" -> count. */
function requestCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(
    /^scorer_http_requests_total\{route="([^"]*)",method="([^"]*)",status="(\d+)"\} (\d+)$/gm,
  )) {
    counts.set(`${m[1]} ${m[2]} ${m[3]}`, Number(m[4]));
  }
  return counts;
}

/** scorer_http_request_duration_seconds_count as label -> count. */
function latencyCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^scorer_http_request_duration_seconds_count\{route="([^"]*)"\} (\d+)$/gm)) {
    counts.set(m[1] as string, Number(m[2]));
  }
  return counts;
}

/** A concrete path for a pattern: the served model's name and version for its parameters. */
function concrete(pattern: string): string {
  return pattern.replace(':name', 'rectangles').replace(':version', '0.3.1');
}

describe('route table', function () {
  describe('labels', function () {
    const table = new RouteTable([
      route({ method: 'POST', paths: ['/score'], label: '/score', direct: true }),
      route({ paths: ['/healthz'], label: '/healthz' }),
      route({ paths: ['/v2/models/:name', '/v2/models/:name/versions/:version'], label: '/v2/models/:name' }),
      route({
        method: 'POST',
        paths: ['/v2/models/:name/infer', '/v2/models/:name/versions/:version/infer'],
        label: '/v2/models/:name/infer',
      }),
    ]);

    it('labels a path with the label of its route, parameters matching one segment', () => {
      assert.equal(table.label('POST', '/score'), '/score');
      assert.equal(table.label('GET', '/healthz'), '/healthz');
      assert.equal(table.label('GET', '/v2/models/fnol'), '/v2/models/:name');
      assert.equal(table.label('GET', '/v2/models/fnol/versions/1.0.0'), '/v2/models/:name');
      assert.equal(table.label('POST', '/v2/models/fnol/infer'), '/v2/models/:name/infer');
      assert.equal(table.label('POST', '/v2/models/fnol/versions/1.0.0/infer'), '/v2/models/:name/infer');
    });

    it('keeps the label of a known path asked with another method', () => {
      assert.equal(table.label('GET', '/score'), '/score');
      assert.equal(table.label('DELETE', '/v2/models/fnol/infer'), '/v2/models/:name/infer');
    });

    it(`labels a path of no route "${UNKNOWN_ROUTE}"`, () => {
      for (const path of [
        '/',
        '',
        '/nope',
        '/score/',
        '/Score',
        '/scores',
        '/v2/models',
        '/v2/models/',
        '/v2/models//infer',
        '/v2/models/a/b/infer',
        '/v2/models/fnol/versions/1.0.0/infer/x',
        '/healthz/x',
      ]) {
        assert.equal(table.label('GET', path), UNKNOWN_ROUTE, path);
        assert.equal(table.label('POST', path), UNKNOWN_ROUTE, path);
      }
    });

    it('finds the direct route only by its exact method and path', () => {
      assert.equal(table.find('POST', '/score')?.direct, true);
      assert.equal(table.find('GET', '/score')?.method, 'POST'); // its label, not its handler
      assert.equal(table.find('POST', '/score/'), undefined);
    });
  });

  describe('checks', function () {
    it('refuses a method and path served twice, naming them', () => {
      assert.throws(
        () =>
          new RouteTable([
            route({ paths: ['/a'], label: '/a' }),
            route({ paths: ['/b', '/a'], label: '/b' }),
          ]),
        /two routes for GET \/a/,
      );
    });

    it(`refuses the label "${UNKNOWN_ROUTE}", a route without path and a malformed pattern`, () => {
      assert.throws(() => new RouteTable([route({ paths: ['/a'], label: UNKNOWN_ROUTE })]), /reserved/);
      assert.throws(() => new RouteTable([route({ paths: [], label: '/a' })]), /has no path/);
      for (const bad of ['a', '/a//b', '/a/:', '/a/*', '/a/:x?', '/a/(b)', '/a/{b}']) {
        assert.throws(() => new RouteTable([route({ paths: [bad], label: '/x' })]), /bad path pattern/, bad);
      }
    });

    it('refuses a direct route with path parameters', () => {
      assert.throws(
        () => new RouteTable([route({ paths: ['/a/:b'], label: '/a/:b', direct: true })]),
        /direct route has no path parameters/,
      );
    });
  });

  describe('served by the scorer', function () {
    let scorer: InProcessScorer;
    before(async () => {
      scorer = await startInProcess(fixtureModel('generic'));
    });
    after(() => scorer?.close());

    it('serves the documented routes under the documented labels (docs/scorer.md, Metrics)', () => {
      assert.deepEqual([...new Set(scorer.table.routes.map((r) => `${r.method} ${r.label}`))].sort(), [
        'GET /healthz',
        'GET /metrics',
        'GET /model',
        'GET /openapi.json',
        'GET /readyz',
        'GET /shadow',
        'GET /v2',
        'GET /v2/health/live',
        'GET /v2/health/ready',
        'GET /v2/models/:name',
        'GET /v2/models/:name/ready',
        'POST /score',
        'POST /v2/models/:name/infer',
      ]);
    });

    it('counts every route of the table under its label, and paths of no route as "other"', async () => {
      const sent = new Map<string, number>();
      const count = (key: string) => sent.set(key, (sent.get(key) ?? 0) + 1);
      for (const r of scorer.table.routes) {
        for (const pattern of r.paths) {
          const reply = await call(scorer.url, concrete(pattern), {
            method: r.method,
            ...(r.method === 'POST' ? { raw: '{}' } : {}),
          });
          count(`${r.label} ${r.method} ${reply.status}`);
        }
      }
      for (const [method, path] of [
        ['GET', '/nope'],
        ['POST', '/v2/models/rectangles/extra/infer'],
        ['GET', '/healthz/'],
      ] as const) {
        const reply = await call(scorer.url, path, { method, ...(method === 'POST' ? { raw: '{}' } : {}) });
        assert.equal(reply.status, path === '/healthz/' ? 200 : 404, path); // served by express, labelled exactly
        count(`${UNKNOWN_ROUTE} ${method} ${reply.status}`);
      }
      const text = (await call(scorer.url, '/metrics')).text;
      assert.deepEqual(requestCounts(text), sent);
      const latency = new Map<string, number>();
      for (const [key, n] of sent) {
        const label = key.split(' ')[0] as string;
        latency.set(label, (latency.get(label) ?? 0) + n);
      }
      assert.deepEqual(latencyCounts(text), latency);
      // Every label of the table, and nothing else besides "other".
      assert.deepEqual(
        [...latency.keys()].sort(),
        [...new Set([...scorer.table.routes.map((r) => r.label), UNKNOWN_ROUTE])].sort(),
      );
    });
  });

  describe('a route added to the table', function () {
    let scorer: InProcessScorer;
    const extra = (): Route[] => [
      {
        method: 'GET',
        paths: ['/extra/:id'],
        label: '/extra/:id',
        handler: (req, res) => sendJson(res, 200, { id: req.params?.id }),
      },
      {
        method: 'POST',
        paths: ['/direct'],
        label: '/direct',
        direct: true,
        auth: true,
        handler: (_req, res) => sendJson(res, 200, { direct: true }),
      },
      {
        method: 'GET',
        paths: ['/fails'],
        label: '/fails',
        handler: async () => {
          await Promise.resolve();
          throw new Error('broken handler');
        },
      },
    ];
    before(async () => {
      scorer = await startInProcess(fixtureModel('generic'), {
        routes: [...SCORER_ROUTES, extra],
        apiKeys: ['k1'],
      });
    });
    after(() => scorer?.close());

    it('is served, keyed, and counted under its label with no other change', async () => {
      const one = await call(scorer.url, '/extra/7');
      assert.equal(one.status, 200);
      assert.deepEqual(one.body, { id: '7' });
      assert.ok(one.headers.get('x-request-id'));
      await call(scorer.url, '/extra/8');
      assert.equal((await call(scorer.url, '/direct', { raw: '{}' })).status, 401);
      const keyed = await call(scorer.url, '/direct', { raw: '{}', headers: { 'x-api-key': 'k1' } });
      assert.equal(keyed.status, 200);
      assert.deepEqual(keyed.body, { direct: true });
      const failed = await call(scorer.url, '/fails');
      assert.equal(failed.status, 500);
      assert.match((failed.body as { error: string }).error, /internal error/);
      // The scorer's own routes still answer.
      assert.equal((await call(scorer.url, '/healthz')).status, 200);

      const text = (await call(scorer.url, '/metrics')).text;
      const counts = requestCounts(text);
      assert.equal(counts.get('/extra/:id GET 200'), 2);
      assert.equal(counts.get('/direct POST 401'), 1);
      assert.equal(counts.get('/direct POST 200'), 1);
      assert.equal(counts.get('/fails GET 500'), 1);
      assert.equal(latencyCounts(text).get('/extra/:id'), 2);
      assert.equal(latencyCounts(text).get('/direct'), 2);
    });
  });
});

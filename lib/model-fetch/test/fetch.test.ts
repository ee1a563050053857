// The model fetcher against real HTTP and HTTPS servers on loopback: policy
// refusals before any request, redirects never followed, transient failures
// retried with back-off, one total deadline that also covers a slow body,
// size limits, truncated files, and messages free of the SAS token.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  fetchModelFile,
  ModelFetchError,
  parseAllowedHosts,
  publicSummary,
  type FetchOptions,
  type FetchPolicy,
} from '../src/index';
import { TestServer } from './servers';

const TOKEN = 'sv=2024-01-01&sr=b&sig=TOPSECRET%2Bsig';
const body = Buffer.from('model bytes with a known digest, '.repeat(100));
const sha256 = createHash('sha256').update(body).digest('hex');

const localPolicy: FetchPolicy = { allowedHosts: parseAllowedHosts('127.0.0.1'), localMode: true };

function opts(overrides: Partial<FetchOptions> = {}): FetchOptions {
  return {
    policy: localPolicy,
    deadlineMs: 10_000,
    maxBytes: 1 << 20,
    attempts: 1,
    retryBaseDelayMs: 10,
    ...overrides,
  };
}

/** Runs the fetch and returns its ModelFetchError; fails if it succeeds or throws anything else. */
async function failure(uri: string, o: FetchOptions): Promise<ModelFetchError> {
  try {
    await fetchModelFile(uri, o);
  } catch (error) {
    assert.ok(error instanceof ModelFetchError, `expected a ModelFetchError, got ${String(error)}`);
    assert.doesNotMatch(error.message, /TOPSECRET|sig=|\?/, 'no query string or token in the message');
    return error;
  }
  assert.fail(`fetching ${uri} succeeded`);
}

describe('model fetcher (real HTTP/HTTPS on loopback)', function () {
  this.timeout(20_000);
  const plain = new TestServer();
  const tls = new TestServer(true);

  before(async () => {
    await plain.start();
    await tls.start();
  });
  after(async () => {
    await plain.stop();
    await tls.stop();
  });

  describe('a good download', () => {
    it('streams over https with an extra CA, hashing on the way, with the SAS token in the query', async () => {
      const uri = tls.file('/models/ok.onnx', body);
      const got = await fetchModelFile(uri, opts({ ca: tls.ca, sasToken: `?${TOKEN}`, keepBody: true }));
      assert.equal(got.sha256, sha256);
      assert.equal(got.size, body.length);
      assert.deepEqual(got.body, body);
      assert.equal(got.attempts, 1);
      assert.equal(tls.requests.at(-1), `/models/ok.onnx?${TOKEN}`);
    });

    it('keeps no body unless asked (the operator only needs the digest)', async () => {
      const uri = plain.file('/hash-only.onnx', body);
      const got = await fetchModelFile(uri, opts());
      assert.equal(got.sha256, sha256);
      assert.equal(got.body, undefined);
    });

    it('does not trust a self-signed certificate without the CA', async () => {
      const uri = tls.file('/models/untrusted.onnx', body);
      const e = await failure(uri, opts({ sasToken: TOKEN }));
      assert.equal(e.kind, 'network');
      assert.match(e.message, /^https:\/\/127\.0\.0\.1:\d+\/models\/untrusted\.onnx: network error \(/);
    });
  });

  describe('refusals before any request', () => {
    it('refuses plain http outside local mode', async () => {
      const uri = plain.file('/plain.onnx', body);
      const e = await failure(uri, opts({ policy: { ...localPolicy, localMode: false }, sasToken: TOKEN }));
      assert.equal(e.kind, 'scheme-not-allowed');
      assert.match(e.message, /http: is not allowed.*https:\/\//);
      assert.equal(plain.hits('/plain.onnx'), 0);
    });

    it('refuses a host that is not on the allow-list, naming it and the list', async () => {
      const uri = plain.file('/offlist.onnx', body).replace('127.0.0.1', 'localhost');
      const e = await failure(uri, opts({ sasToken: TOKEN }));
      assert.equal(e.kind, 'host-not-allowed');
      assert.match(e.message, /host localhost is not on the model host allow-list \(127\.0\.0\.1\)/);
      assert.equal(plain.hits('/offlist.onnx'), 0, 'no request reached the server');
    });

    it('refuses other schemes, user information and a malformed token', async () => {
      for (const [uri, token] of [
        ['ftp://127.0.0.1/m.onnx', undefined],
        ['file:///etc/passwd', undefined],
        ['https://user:pw@127.0.0.1/m.onnx', undefined],
        ['not a uri', undefined],
        [plain.url('/bad-token.onnx'), 'sig=abc#fragment'],
      ] as const) {
        const e = await failure(uri, opts({ sasToken: token }));
        assert.ok(['scheme-not-allowed', 'invalid-uri'].includes(e.kind), `${uri}: ${e.kind}`);
        assert.doesNotMatch(e.message, /user:|:pw|abc/, 'neither user information nor the token');
      }
      assert.equal(plain.hits('/bad-token.onnx'), 0);
    });
  });

  describe('redirects are never followed', () => {
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['/loop', '/loop', /redirect refused: HTTP 302 to http:\/\/127\.0\.0\.1:\d+ /],
      ['/to-ftp', 'ftp://127.0.0.1/model.onnx', /redirect refused: HTTP 302 to ftp:\/\/127\.0\.0\.1 /],
      ['/to-file', 'file:///etc/passwd', /redirect refused: HTTP 302 to file:\/\/ /],
      ['/to-invalid', 'http://[not-a-host', /redirect refused: HTTP 302 to an invalid Location /],
      [
        '/to-offlist',
        'https://evil.example/x?sig=stolen',
        /redirect refused: HTTP 302 to https:\/\/evil\.example /,
      ],
      ['/no-location', undefined, /redirect refused: HTTP 302 without a Location /],
    ];
    for (const [route, location, message] of cases) {
      it(`refuses ${location ?? 'a 3xx without Location'} with a named error, after one request`, async () => {
        const uri = plain.redirect(route, location);
        const e = await failure(uri, opts({ attempts: 5, sasToken: TOKEN }));
        assert.equal(e.kind, 'redirect-refused');
        assert.equal(e.status, 302);
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, /stolen|passwd/);
        assert.equal(plain.hits(route), 1, 'not retried, not followed');
        assert.equal(publicSummary(e), 'HTTP 3xx (redirects are not followed)');
      });
    }

    it('refuses a same-host https redirect too', async () => {
      const uri = tls.redirect('/moved', tls.url('/models/ok.onnx'), 301);
      const e = await failure(uri, opts({ ca: tls.ca }));
      assert.equal(e.kind, 'redirect-refused');
      assert.equal(e.status, 301);
    });
  });

  describe('retries', () => {
    it('retries 503 with jittered exponential back-off, then succeeds', async () => {
      const uri = plain.route('/busy-then-ok', (_req, res, hit) => {
        if (hit <= 2) res.writeHead(503).end('busy');
        else res.writeHead(200, { 'content-length': body.length }).end(body);
      });
      const retries: Array<{ attempt: number; delayMs: number; reason: string }> = [];
      const got = await fetchModelFile(
        uri,
        opts({
          attempts: 5,
          retryBaseDelayMs: 40,
          random: () => 0,
          onRetry: (r) => retries.push({ attempt: r.attempt, delayMs: r.delayMs, reason: r.error.message }),
        }),
      );
      assert.equal(got.sha256, sha256);
      assert.equal(got.attempts, 3);
      assert.deepEqual(
        retries.map((r) => [r.attempt, r.delayMs]),
        [
          [1, 20],
          [2, 40],
        ],
      );
      assert.match(retries[0]!.reason, /: HTTP 503$/);
    });

    it('does not retry a 404 or a 403', async () => {
      for (const status of [404, 403]) {
        const route = `/status-${status}`;
        const uri = plain.route(route, (_req, res) => res.writeHead(status).end('secret server detail'));
        const e = await failure(uri, opts({ attempts: 5, sasToken: TOKEN }));
        assert.equal(e.kind, 'http-status');
        assert.equal(e.status, status);
        assert.equal(plain.hits(route), 1);
        assert.match(e.message, new RegExp(`: HTTP ${status}$`));
        assert.equal(publicSummary(e), 'HTTP 4xx');
      }
    });

    it('gives up after the last attempt, saying how many were made', async () => {
      const uri = plain.route('/always-500', (_req, res) => res.writeHead(500).end());
      const e = await failure(uri, opts({ attempts: 3 }));
      assert.equal(e.kind, 'http-status');
      assert.equal(e.attempts, 3);
      assert.equal(plain.hits('/always-500'), 3);
      assert.equal(publicSummary(e), 'HTTP 5xx');
    });

    it('retries a network error (connection refused)', async () => {
      const retries: number[] = [];
      const e = await failure(
        'http://127.0.0.1:1/m.onnx',
        opts({ attempts: 3, onRetry: (r) => retries.push(r.attempt) }),
      );
      assert.equal(e.kind, 'network');
      assert.match(e.message, /network error \(ECONNREFUSED\)/);
      assert.deepEqual(retries, [1, 2]);
      assert.equal(publicSummary(e), 'network error');
    });
  });

  describe('truncated and oversized files', () => {
    it('names a truncated file (fewer bytes than Content-Length) and retries it', async () => {
      const uri = plain.route('/cut', (_req, res, hit) => {
        res.writeHead(200, { 'content-length': body.length });
        if (hit === 1) {
          res.write(body.subarray(0, 100));
          setTimeout(() => res.destroy(), 20);
        } else res.end(body);
      });
      const reasons: string[] = [];
      const got = await fetchModelFile(
        uri,
        opts({ attempts: 2, onRetry: (r) => reasons.push(r.error.message) }),
      );
      assert.equal(got.sha256, sha256);
      assert.match(
        reasons[0]!,
        new RegExp(`truncated file: 100 of ${body.length} bytes \\(Content-Length\\)`),
      );

      const always = plain.route('/cut-always', (_req, res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 10));
        setTimeout(() => res.destroy(), 20);
      });
      const e = await failure(always, opts());
      assert.equal(e.kind, 'truncated');
      assert.equal(e.transient, true);
    });

    it('refuses a Content-Length over the limit without reading the body, and does not retry', async () => {
      const uri = plain.file('/big', body);
      const e = await failure(uri, opts({ maxBytes: 100, attempts: 4 }));
      assert.equal(e.kind, 'too-large');
      assert.match(
        e.message,
        new RegExp(`too large: Content-Length ${body.length} is over the limit of 100 bytes`),
      );
      assert.equal(plain.hits('/big'), 1);
    });

    it('stops reading a body without Content-Length once it passes the limit', async () => {
      const uri = plain.route('/chunked', (_req, res) => {
        res.writeHead(200);
        res.write(body);
        res.write(body);
        res.end();
      });
      const e = await failure(uri, opts({ maxBytes: body.length + 1 }));
      assert.equal(e.kind, 'too-large');
      assert.match(e.message, new RegExp(`too large: more than ${body.length + 1} bytes`));
    });
  });

  describe('one total deadline', () => {
    it('ends a body that trickles one byte at a time', async () => {
      const uri = plain.trickle('/trickle', 1000, 50);
      const e = await failure(uri, opts({ deadlineMs: 600, attempts: 5 }));
      assert.equal(e.kind, 'deadline');
      assert.match(e.message, /deadline exceeded: no complete download within 0\.6 s/);
      assert.equal(plain.hits('/trickle'), 1, 'a deadline is not retried');
      assert.equal(publicSummary(e), 'deadline exceeded');
    });

    it('ends a server that never sends its headers', async () => {
      const uri = plain.route('/silent', () => {});
      const e = await failure(uri, opts({ deadlineMs: 300 }));
      assert.equal(e.kind, 'deadline');
    });

    it('covers every attempt and the back-off between them', async () => {
      const uri = plain.route('/always-503', (_req, res) => res.writeHead(503).end());
      const e = await failure(
        uri,
        opts({ deadlineMs: 500, attempts: 50, retryBaseDelayMs: 100, random: () => 1 }),
      );
      assert.equal(e.kind, 'deadline');
      assert.match(e.message, /after \d attempts?; last: HTTP 503/);
      assert.ok(plain.hits('/always-503') < 6, `${plain.hits('/always-503')} attempts within 0.5 s`);
    });

    it('stops when the caller aborts', async () => {
      const uri = plain.trickle('/abort', 1000, 50);
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const e = await failure(uri, opts({ signal: controller.signal }));
      assert.equal(e.kind, 'aborted');
    });
  });
});

import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { parseAllowedHosts } from '@fnol/model-fetch';
import { TestServer } from '../../../lib/model-fetch/test/servers';
import { CheckRequest, CheckState, ModelChecks, ModelChecksOptions } from '../../src/digest';

const body = Buffer.from('not really onnx, but bytes with a known digest');
const sha = createHash('sha256').update(body).digest('hex');

/** Waits until `fn` is true, polling; fails after `ms`. */
async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('model checks before a rollout (real HTTP on loopback)', function () {
  this.timeout(20_000);
  const server = new TestServer();
  let checks: ModelChecks;
  let done: string[];
  let clock = 0;

  const make = (o: Partial<ModelChecksOptions> = {}) => {
    done = [];
    checks = new ModelChecks({
      policy: { allowedHosts: parseAllowedHosts('127.0.0.1'), localMode: true },
      deadlineMs: 5000,
      maxBytes: 1 << 20,
      maxConcurrent: 8,
      perNamespace: 8,
      onDone: (key) => done.push(key),
      log: pino({ level: 'silent' }),
      now: () => clock,
      ...o,
    });
    return checks;
  };
  const req = (key: string, uri: string, sha256 = sha, extra: Partial<CheckRequest> = {}): CheckRequest => ({
    key,
    namespace: key.split('/')[0]!,
    uri,
    sha256,
    credentials: '',
    ...extra,
  });
  /** Starts a check, waits for it to finish, and returns what the next reconcile sees. */
  const settle = async (r: CheckRequest): Promise<CheckState> => {
    const before = done.length;
    const first = checks.check(r);
    if (first.state !== 'pending') return first;
    await until(`the check of ${r.key}`, () => done.length > before);
    return checks.check(r);
  };

  before(() => server.start());
  after(() => server.stop());
  afterEach(() => checks?.close());

  it('verifies a model off the worker, then remembers the (uri, sha256) pair for every FnolModel', async () => {
    make();
    const uri = server.file('/model.onnx', body);
    const first = checks.check(req('a/one', uri));
    assert.equal(first.state, 'pending', 'the reconcile does not wait for the download');
    await until('onDone', () => done.includes('a/one'));
    assert.deepEqual(checks.check(req('a/one', uri)), { state: 'verified', cached: false });
    assert.deepEqual(checks.check(req('b/other', uri)), { state: 'verified', cached: true });
    assert.equal(server.hits('/model.onnx'), 1);
  });

  it('sends the SAS token in the query, and never reports it', async () => {
    make();
    const uri = server.file('/with-token.onnx', body);
    const state = await settle(req('a/t', uri, 'f'.repeat(64), { sasToken: 'sv=2024&sig=SECRET' }));
    assert.equal(server.requests.at(-1), '/with-token.onnx?sv=2024&sig=SECRET');
    assert.ok(state.state === 'failed' && !state.blocked.message.includes('SECRET'));
  });

  it('refuses a wrong digest, naming both, and does not download again before the back-off', async () => {
    make({ retryBaseMs: 1000 });
    const uri = server.file('/wrong.onnx', body);
    const state = await settle(req('a/wrong', uri, 'f'.repeat(64)));
    assert.ok(state.state === 'failed');
    assert.equal(state.blocked.reason, 'ModelDigestMismatch');
    assert.match(state.blocked.message, new RegExp(`has sha256 ${sha}, spec.model.sha256 is f{64}`));
    assert.equal(state.retryInMs, 1000);
    clock += 400;
    const again = checks.check(req('a/wrong', uri, 'f'.repeat(64)));
    assert.ok(again.state === 'failed' && again.retryInMs === 600);
    assert.equal(server.hits('/wrong.onnx'), 1);
    clock += 600;
    const retried = checks.check(req('a/wrong', uri, 'f'.repeat(64)));
    assert.equal(retried.state, 'pending');
    assert.equal(
      retried.state === 'pending' && retried.previous?.reason,
      'ModelDigestMismatch',
      'the last failure stays reported while the check runs again',
    );
    await until('the second download', () => server.hits('/wrong.onnx') === 2);
  });

  it('reports only the HTTP status class: no status code, text, header or body', async () => {
    make();
    const uri = server.route('/oracle.onnx', (_req, res) => {
      res.statusMessage = 'Internal Admin Console';
      res.writeHead(404, { 'x-internal': 'build-1234' }).end('secret page');
    });
    const state = await settle(req('a/oracle', uri));
    assert.ok(state.state === 'failed');
    assert.equal(state.blocked.reason, 'ModelUnreachable');
    assert.equal(
      state.blocked.message,
      'model fetch failed: HTTP 4xx; check spec.model.uri and spec.model.credentialsSecretRef',
    );
    const five = server.route('/five.onnx', (_req, res) => res.writeHead(501, 'Not Implemented Here').end());
    const state5 = await settle(req('a/five', five));
    assert.ok(state5.state === 'failed' && /^model fetch failed: HTTP 5xx;/.test(state5.blocked.message));
  });

  it('refuses redirects to ftp://, file:// and invalid Locations without crashing', async () => {
    make();
    for (const [route, location] of [
      ['/r-ftp', 'ftp://127.0.0.1/model.onnx'],
      ['/r-file', 'file:///etc/passwd'],
      ['/r-invalid', 'http://[not-a-host'],
      ['/r-loop', '/r-loop'],
    ]) {
      const state = await settle(req(`a${route}`, server.redirect(route!, location)));
      assert.ok(state.state === 'failed', route);
      assert.equal(
        state.blocked.message,
        'model fetch failed: HTTP 3xx (redirects are not followed); check spec.model.uri and spec.model.credentialsSecretRef',
      );
      assert.equal(server.hits(route!), 1);
    }
  });

  it('ends a trickling body at the total deadline', async () => {
    make({ deadlineMs: 500 });
    const state = await settle(req('a/slow', server.trickle('/slow.onnx', 1000, 50)));
    assert.ok(state.state === 'failed');
    assert.match(state.blocked.message, /^model fetch failed: deadline exceeded;/);
  });

  it('refuses a host off the allow-list before any request', async () => {
    make();
    const uri = server.file('/elsewhere.onnx', body).replace('127.0.0.1', 'localhost');
    const state = await settle(req('a/elsewhere', uri));
    assert.ok(state.state === 'failed');
    assert.equal(state.blocked.reason, 'ModelHostNotAllowed');
    assert.equal(server.hits('/elsewhere.onnx'), 0);
  });

  it('keeps slow checks of one namespace from delaying the checks of another', async () => {
    make({ perNamespace: 2, maxConcurrent: 4 });
    const slow = server.trickle('/tenant-slow.onnx', 1000, 1000);
    for (let i = 0; i < 5; i++)
      assert.equal(checks.check(req(`hostile/m${i}`, `${slow}?m=${i}`)).state, 'pending');
    await until('two slow downloads', () => server.hits('/tenant-slow.onnx') === 2);
    const good = server.file('/tenant-good.onnx', body);
    assert.equal(checks.check(req('claims/fnol', good)).state, 'pending');
    await until('the other namespace checked', () => done.includes('claims/fnol'));
    assert.deepEqual(checks.check(req('claims/fnol', good)), { state: 'verified', cached: false });
    assert.equal(server.hits('/tenant-slow.onnx'), 2, 'the hostile namespace never holds more than 2 slots');
    assert.equal(checks.running, 2);
    assert.equal(checks.waiting, 3);
  });

  it('cancels a running check when the spec changes, and on close', async () => {
    make();
    const slow = server.trickle('/superseded.onnx', 1000, 1000);
    checks.check(req('a/x', slow));
    await until('the slow download', () => server.hits('/superseded.onnx') === 1);
    const good = server.file('/replacement.onnx', body);
    assert.equal(checks.check(req('a/x', good)).state, 'pending');
    await until('the new check', () => done.includes('a/x'));
    assert.deepEqual(checks.check(req('a/x', good)), { state: 'verified', cached: false });
    assert.equal(checks.running, 0, 'the superseded download was stopped');

    checks.check(req('a/y', slow));
    await until('another slow download', () => server.hits('/superseded.onnx') === 2);
    checks.close();
    assert.equal(checks.running, 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!done.includes('a/y'), 'a cancelled check does not queue its FnolModel');
  });
});

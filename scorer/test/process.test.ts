// The real entry point as a process: refusing a wrong model, fetching a remote
// model over HTTP with retries, and a SIGTERM in the middle of a burst.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch, waitReady, type Running } from './process-support';
import { SMOKE_ROWS, call, fnolModel } from './support';
import { freePort } from '../../test/support/net';

describe('scorer process', function () {
  const secrets = mkdtempSync(join(tmpdir(), 'scorer-secrets-'));

  it('refuses to start on a wrong MODEL_SHA256: exits non-zero and says why', async () => {
    const running = launch(
      {
        MODEL_URI: pathToFileURL(fnolModel()).href,
        MODEL_SHA256: '0'.repeat(64),
        PORT: String(await freePort()),
      },
      'npm',
    );
    const { code } = await running.exit;
    assert.notEqual(code, 0);
    assert.match(
      running.stderr.join(''),
      /model sha256 mismatch: .* but MODEL_SHA256 is 0{64}; refusing to serve/,
    );
  });

  it('exits 2 naming the variable when the configuration is bad', async () => {
    const running = launch({ MODEL_URI: 'ftp://models/fnol.onnx', PORT: '99999' });
    const { code } = await running.exit;
    assert.equal(code, 2);
    const text = running.stderr.join('');
    assert.match(text, /MODEL_URI scheme ftp: is not supported/);
    assert.match(text, /PORT="99999" is not an integer between 0 and 65535/);
  });

  describe('with a remote model over HTTP', function () {
    let blob: Server;
    let blobRequests: string[];
    let running: Running;
    let url: string;

    before(async () => {
      const bytes = readFileSync(fnolModel());
      blobRequests = [];
      blob = createServer((req, res) => {
        blobRequests.push(req.url ?? '');
        const path = new URL(req.url ?? '/', 'http://x');
        if (path.searchParams.get('sig') !== 'proc-s3cret') {
          res.writeHead(403).end();
        } else if (path.pathname !== '/models/fnol.onnx') {
          res.writeHead(404).end();
        } else if (blobRequests.length <= 2) {
          res.writeHead(503).end();
        } else {
          res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
        }
      });
      await new Promise<void>((done) => blob.listen(0, '127.0.0.1', done));
      const tokenFile = join(secrets, 'sasToken');
      writeFileSync(tokenFile, 'sv=2024-05-04&sr=b&sig=proc-s3cret\n');
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      running = launch({
        MODEL_URI: `http://127.0.0.1:${(blob.address() as AddressInfo).port}/models/fnol.onnx`,
        MODEL_SHA256: createHash('sha256').update(bytes).digest('hex'),
        MODEL_SAS_TOKEN_FILE: tokenFile,
        MODEL_NAME: 'fnol',
        MODEL_FETCH_RETRY_BASE_MS: '50',
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'trace',
        SHUTDOWN_GRACE_SECONDS: '10',
      });
      await waitReady(url, running);
    });
    after(() => {
      running?.child.kill('SIGKILL');
      blob?.close();
    });

    it('fetched the model after transient 503s, never logging the token', () => {
      assert.equal(blobRequests.filter((r) => r.startsWith('/models/fnol.onnx')).length, 3);
      const logs = running.stdout.join('\n') + running.stderr.join('');
      assert.match(logs, /download failed, retrying/);
      assert.match(logs, /model loaded, self-test passed, ready/);
      assert.doesNotMatch(logs, /proc-s3cret/);
    });

    it('scores the original smoke rows', async () => {
      const reply = await call(url, '/score', { body: { data: SMOKE_ROWS } });
      assert.equal(reply.status, 200, reply.text);
      assert.equal((reply.body as { result: number[] }).result.length, 2);
    });

    it('loses no accepted request when SIGTERM arrives in the middle of a burst', async function () {
      this.timeout(60_000);
      const body = JSON.stringify({ data: Array.from({ length: 200 }, (_, i) => SMOKE_ROWS[i % 2]) });
      const outcome = new Map<string, string>();
      let sent = 0;
      let okBeforeSignal = 0;
      let signalled = false;
      let signalAt = 0;
      const one = (id: string) =>
        new Promise<string>((resolve) => {
          const req = httpRequest(
            `${url}/score`,
            {
              method: 'POST',
              agent: false,
              headers: { 'content-type': 'application/json', 'x-request-id': id },
            },
            (res) => {
              let text = '';
              res.on('data', (c: Buffer) => (text += c.toString()));
              res.on('end', () =>
                resolve(
                  res.statusCode === 200 && text.startsWith('{"result":[')
                    ? 'ok'
                    : `status ${res.statusCode}`,
                ),
              );
              res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
            },
          );
          req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
          req.end(body);
        });
      const worker = async (w: number) => {
        for (let i = 0; ; i++) {
          const id = `burst-${w}-${i}`;
          sent++;
          const result = await one(id);
          outcome.set(id, result);
          if (result === 'ok' && !signalled && ++okBeforeSignal === 150) {
            signalled = true;
            signalAt = Date.now();
            running.child.kill('SIGTERM');
          }
          if (result === 'ECONNREFUSED') return;
        }
      };
      await Promise.all(Array.from({ length: 24 }, (_, w) => worker(w)));
      const { code, at } = await running.exit;
      assert.equal(code, 0, running.stderr.join(''));
      assert.ok(at - signalAt < 10_000, `exited ${at - signalAt} ms after SIGTERM`);
      const received = new Set(
        running.stdout
          .filter((l) => l.includes('request received'))
          .map((l) => (JSON.parse(l) as { reqId: string }).reqId)
          .filter((id) => id.startsWith('burst-')),
      );
      const lost = [...received].filter((id) => outcome.get(id) !== 'ok');
      assert.deepEqual(
        lost,
        [],
        `accepted but not answered: ${lost.map((id) => `${id}=${outcome.get(id)}`).join(', ')}`,
      );
      const ok = [...outcome.values()].filter((o) => o === 'ok').length;
      assert.ok(ok > okBeforeSignal, `requests in flight at SIGTERM were answered (${ok} ok of ${sent})`);
      const others = [...outcome.entries()].filter(([id, o]) => o !== 'ok' && received.has(id));
      assert.deepEqual(others, []);
      assert.match(running.stdout.join('\n'), /shutting down: not ready, finishing in-flight requests/);
    });
  });
});

// The real entry point as a process: refusing a wrong model, fetching a remote
// model over HTTP with retries, and a SIGTERM in the middle of a burst.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
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
        MODEL_LOCAL_MODE: 'true',
        MODEL_ALLOWED_HOSTS: '127.0.0.1',
        MODEL_NAME: 'fnol',
        MODEL_FETCH_RETRY_BASE_MS: '50',
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'trace',
        SHUTDOWN_GRACE_SECONDS: '4',
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
      // Idle keep-alive connections (this test's fetch pool) are closed at the end
      // of the 4 s drain window; the process exits right after.
      assert.ok(at - signalAt < 6_000, `exited ${at - signalAt} ms after SIGTERM`);
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

  describe('draining after SIGTERM', function () {
    this.timeout(60_000);
    const GRACE_SECONDS = 3;

    /** POST /score through `agent`: the status and the Connection header, or the error code. */
    const score = (url: string, agent: Agent) =>
      new Promise<string>((resolve) => {
        const req = httpRequest(
          `${url}/score`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(`${res.statusCode} ${res.headers.connection ?? ''}`.trim()));
          },
        );
        req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        req.end(JSON.stringify({ data: [SMOKE_ROWS[0]] }));
      });
    const idle = (agent: Agent) =>
      Object.values(agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);

    it('answers requests sent on idle keep-alive connections after SIGTERM, with Connection: close, then exits', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const running = launch({
        MODEL_URI: pathToFileURL(fnolModel()).href,
        PORT: String(port),
        HOST: '127.0.0.1',
        SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      });
      try {
        await waitReady(url, running);
        // Two pools of idle keep-alive connections: one used right after the
        // signal, one a while later, still inside the drain window.
        const early = new Agent({ keepAlive: true, maxSockets: 20 });
        const late = new Agent({ keepAlive: true, maxSockets: 5 });
        const warm = await Promise.all([
          ...Array.from({ length: 20 }, () => score(url, early)),
          ...Array.from({ length: 5 }, () => score(url, late)),
        ]);
        assert.ok(
          warm.every((w) => w === '200 keep-alive'),
          warm.join(','),
        );
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(idle(early), 20);
        assert.equal(idle(late), 5);

        const signalAt = Date.now();
        running.child.kill('SIGTERM');
        // 20 requests, one per idle connection, sent 0-100 ms after the signal.
        const first = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            new Promise((r) => setTimeout(r, i * 5)).then(() => score(url, early)),
          ),
        );
        await new Promise((r) => setTimeout(r, Math.max(0, signalAt + 1500 - Date.now())));
        const second = await Promise.all(Array.from({ length: 5 }, () => score(url, late)));
        assert.deepEqual(
          first,
          Array(20).fill('200 close'),
          `sent 0-100 ms after SIGTERM: ${first.join(',')}`,
        );
        assert.deepEqual(second, Array(5).fill('200 close'), `sent 1.5 s after SIGTERM: ${second.join(',')}`);
        // Every connection was closed after its answer: nothing left to reuse.
        assert.equal(idle(early) + idle(late), 0);

        const { code, at } = await running.exit;
        assert.equal(code, 0, running.stderr.join(''));
        assert.ok(at - signalAt < (GRACE_SECONDS + 2) * 1000, `exited ${at - signalAt} ms after SIGTERM`);
        early.destroy();
        late.destroy();
      } finally {
        running.child.kill('SIGKILL');
      }
    });

    it('keeps idle connections open through the drain window, then closes them and exits', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const running = launch({
        MODEL_URI: pathToFileURL(fnolModel()).href,
        PORT: String(port),
        HOST: '127.0.0.1',
        SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      });
      try {
        await waitReady(url, running);
        const agent = new Agent({ keepAlive: true, maxSockets: 3 });
        await Promise.all(Array.from({ length: 3 }, () => score(url, agent)));
        await new Promise((r) => setTimeout(r, 50));
        const sockets = Object.values(agent.freeSockets).flat();
        const closedAt: number[] = [];
        for (const socket of sockets) socket?.once('close', () => closedAt.push(Date.now()));
        const signalAt = Date.now();
        running.child.kill('SIGTERM');
        const { code, at } = await running.exit;
        assert.equal(code, 0);
        assert.equal(closedAt.length, 3);
        // Not at the signal: at the end of the drain window.
        assert.ok(
          closedAt.every((t) => t - signalAt >= GRACE_SECONDS * 1000 - 200),
          `closed ${closedAt.map((t) => t - signalAt).join(', ')} ms after SIGTERM`,
        );
        assert.ok(at - signalAt < (GRACE_SECONDS + 2) * 1000, `exited ${at - signalAt} ms after SIGTERM`);
        assert.match(running.stdout.join('\n'), /drain window over/);
        agent.destroy();
      } finally {
        running.child.kill('SIGKILL');
      }
    });
  });
});

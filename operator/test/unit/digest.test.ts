import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DigestVerifier } from '../../src/digest';

describe('model digest check (real HTTP on loopback)', () => {
  const body = Buffer.from('not really onnx, but bytes with a known digest');
  const sha = createHash('sha256').update(body).digest('hex');
  let server: http.Server;
  let base: string;
  let hits = 0;
  let lastQuery = '';

  before(async () => {
    server = http.createServer((req, res) => {
      hits++;
      const url = new URL(req.url ?? '/', 'http://x');
      lastQuery = url.search;
      if (url.pathname === '/model.onnx') res.writeHead(200).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const opts = { timeoutMs: 5000, maxBytes: 1 << 20 };

  it('accepts the right digest and remembers it', async () => {
    const v = new DigestVerifier();
    const before = hits;
    assert.deepEqual(await v.verify({ uri: `${base}/model.onnx`, sha256: sha }, opts), { ok: true });
    assert.deepEqual(await v.verify({ uri: `${base}/model.onnx`, sha256: sha }, opts), {
      ok: true,
      cached: true,
    });
    assert.equal(hits - before, 1);
  });

  it('refuses a wrong digest, naming both digests', async () => {
    const r = await new DigestVerifier().verify({ uri: `${base}/model.onnx`, sha256: 'f'.repeat(64) }, opts);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason === 'ModelDigestMismatch');
    assert.ok(!r.ok && r.message.includes(sha) && r.message.includes('f'.repeat(64)));
  });

  it('reports an unreachable model', async () => {
    const r404 = await new DigestVerifier().verify({ uri: `${base}/missing.onnx`, sha256: sha }, opts);
    assert.ok(!r404.ok && r404.reason === 'ModelUnreachable' && /HTTP 404/.test(r404.message));
    const refused = await new DigestVerifier().verify(
      { uri: 'http://127.0.0.1:1/model.onnx', sha256: sha },
      opts,
    );
    assert.ok(!refused.ok && refused.reason === 'ModelUnreachable');
  });

  it('appends the SAS token as the query string but never reports it', async () => {
    const r = await new DigestVerifier().verify(
      { uri: `${base}/model.onnx`, sha256: 'f'.repeat(64) },
      { ...opts, sasToken: 'sv=2024&sig=SECRET' },
    );
    assert.equal(lastQuery, '?sv=2024&sig=SECRET');
    assert.ok(!r.ok && !r.message.includes('SECRET'));
  });

  it('refuses a model larger than the limit', async () => {
    const r = await new DigestVerifier().verify(
      { uri: `${base}/model.onnx`, sha256: sha },
      { ...opts, maxBytes: 10 },
    );
    assert.ok(!r.ok && /more than 10 bytes/.test(r.message));
  });

  it('skips file:// models (the scorer checks them at load)', async () => {
    const r = await new DigestVerifier().verify({ uri: 'file:///models/fnol.onnx', sha256: sha }, opts);
    assert.ok(r.ok && r.skipped);
  });
});

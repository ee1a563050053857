// Shadow mirroring between two scorer processes started by their real entry
// point, configured by SHADOW_* as the operator sets them.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch, waitReady, type Running } from './process-support';
import { SMOKE_ROWS, call, fnolModel, relabelledModel } from './support';
import { freePort } from '../../test/support/net';

describe('scorer processes: stable mirroring to a candidate', function () {
  this.timeout(180_000);
  const processes: Running[] = [];
  const secrets = mkdtempSync(join(tmpdir(), 'scorer-shadow-keys-'));
  after(async () => {
    rmSync(secrets, { recursive: true, force: true });
    for (const p of processes) {
      if (p.child.exitCode === null) {
        p.child.kill('SIGTERM');
        await p.exit;
      }
    }
  });

  it('exits 2 when SHADOW_URL is set without SHADOW_VERSION', async () => {
    const running = launch({
      MODEL_URI: pathToFileURL(fnolModel()).href,
      SHADOW_URL: 'http://127.0.0.1:1',
      SHADOW_PERCENT: '150',
    });
    const { code } = await running.exit;
    assert.equal(code, 2);
    const text = running.stderr.join('');
    assert.match(text, /SHADOW_VERSION is not set but SHADOW_URL is/);
    assert.match(text, /SHADOW_PERCENT="150" is not a number between 0 and 100/);
  });

  it('every caller gets 1.0.0; every copy is compared with 1.0.1 and reported by GET /shadow', async () => {
    const keys = join(secrets, 'keys');
    writeFileSync(keys, 'k-proc-1\n');
    const [candidatePort, stablePort] = [await freePort(), await freePort()];
    const candidate = launch({
      MODEL_URI: pathToFileURL(relabelledModel(fnolModel(), '1.0.1')).href,
      MODEL_VERSION: '1.0.1',
      API_KEYS_FILE: keys,
      PORT: String(candidatePort),
      HOST: '127.0.0.1',
      SHUTDOWN_GRACE_SECONDS: '1',
    });
    processes.push(candidate);
    const stable = launch({
      MODEL_URI: pathToFileURL(fnolModel()).href,
      API_KEYS_FILE: keys,
      PORT: String(stablePort),
      HOST: '127.0.0.1',
      SHUTDOWN_GRACE_SECONDS: '1',
      SHADOW_URL: `http://127.0.0.1:${candidatePort}`,
      SHADOW_PERCENT: '100',
      SHADOW_VERSION: '1.0.1',
    });
    processes.push(stable);
    const [candidateUrl, stableUrl] = [candidatePort, stablePort].map((p) => `http://127.0.0.1:${p}`);
    await Promise.all([waitReady(candidateUrl as string, candidate), waitReady(stableUrl as string, stable)]);

    const versions = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const rows = SMOKE_ROWS.map((row) => row.map((v) => v + i));
      const answer = await call(stableUrl as string, '/score', {
        body: { data: rows },
        headers: { authorization: 'Bearer k-proc-1' },
      });
      assert.equal(answer.status, 200, answer.text);
      const version = answer.headers.get('x-model-version') ?? 'none';
      versions.set(version, (versions.get(version) ?? 0) + 1);
    }
    assert.deepEqual([...versions], [['1.0.0', 20]]);

    let status: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) {
      status = (await call(stableUrl as string, '/shadow')).body as Record<string, unknown>;
      if (status.compared === 20 || (status.candidateErrors as number) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status.target, `http://127.0.0.1:${candidatePort}`);
    assert.deepEqual(
      [status.percent, status.sampled, status.compared, status.candidateErrors, status.dropped],
      [100, 20, 20, 0, 0],
    );
    const outputs = status.outputs as Record<string, { records: number; counts: number[] }>;
    assert.deepEqual(Object.keys(outputs), ['ultimate_cost']);
    assert.equal(outputs.ultimate_cost?.records, 40);
    assert.equal(outputs.ultimate_cost?.counts[0], 40);
    // The candidate's own answers say 1.0.1.
    const direct = await call(candidateUrl as string, '/score', {
      body: { data: SMOKE_ROWS },
      headers: { 'x-api-key': 'k-proc-1' },
    });
    assert.equal(direct.headers.get('x-model-version'), '1.0.1');

    stable.child.kill('SIGTERM');
    candidate.child.kill('SIGTERM');
    assert.equal((await stable.exit).code, 0);
    assert.equal((await candidate.exit).code, 0);
  });
});

import { strict as assert } from 'node:assert';
import { ConfigError, loadConfig } from '../../src/config';

describe('operator configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    assert.equal(c.verifyModelDigest, true);
    assert.equal(c.watchNamespace, '');
    assert.equal(c.leaderElection, true);
    assert.equal(c.workers, 8);
    assert.ok(c.leaseDurationMs <= 15_000, 'failover must stay under 30 s');
  });

  it('reads the environment', () => {
    const c = loadConfig({
      FNOL_SCORER_IMAGE: 'r.example/fnol-scorer:1',
      WATCH_NAMESPACE: 'claims',
      VERIFY_MODEL_DIGEST: 'false',
      WORKERS: '8',
    });
    assert.equal(c.defaultScorerImage, 'r.example/fnol-scorer:1');
    assert.equal(c.watchNamespace, 'claims');
    assert.equal(c.verifyModelDigest, false);
    assert.equal(c.workers, 8);
  });

  it('names the variable and what it accepts when a value is bad', () => {
    assert.throws(
      () => loadConfig({ WORKERS: 'many' }),
      (e: Error) => e instanceof ConfigError && /WORKERS="many".*integer from 1 to 64/.test(e.message),
    );
    assert.throws(() => loadConfig({ VERIFY_MODEL_DIGEST: 'perhaps' }), /VERIFY_MODEL_DIGEST.*true or false/);
    assert.throws(() => loadConfig({ WATCH_NAMESPACE: 'Bad_NS' }), /WATCH_NAMESPACE/);
    assert.throws(() => loadConfig({ FNOL_SCORER_IMAGE: 'bad image' }), /FNOL_SCORER_IMAGE/);
    assert.throws(
      () => loadConfig({ LEASE_DURATION_SECONDS: '5', LEASE_RENEW_DEADLINE_SECONDS: '10' }),
      /lease timing/,
    );
    assert.throws(() => loadConfig({ MONITORING_NAMESPACES: 'ok,Not OK' }), /MONITORING_NAMESPACES/);
  });

  it('downloads models only from the allow-list, over https unless local mode is on', () => {
    const c = loadConfig({});
    assert.deepEqual(
      c.modelPolicy.allowedHosts.map((h) => h.text),
      ['*.blob.core.windows.net'],
    );
    assert.equal(c.modelPolicy.localMode, false);
    assert.equal(c.modelChecksPerNamespace, 4);
    const local = loadConfig({
      MODEL_ALLOWED_HOSTS: '*.blob.core.windows.net, 10.250.0.1',
      MODEL_LOCAL_MODE: 'true',
    });
    assert.deepEqual(
      local.modelPolicy.allowedHosts.map((h) => h.text),
      ['*.blob.core.windows.net', '10.250.0.1'],
    );
    assert.equal(local.modelPolicy.localMode, true);
    assert.throws(
      () => loadConfig({ MODEL_ALLOWED_HOSTS: '*' }),
      (e: Error) => e instanceof ConfigError && /MODEL_ALLOWED_HOSTS entry "\*"/.test(e.message),
    );
    assert.throws(() => loadConfig({ MODEL_LOCAL_MODE: 'sometimes' }), /MODEL_LOCAL_MODE.*true or false/);
  });
});

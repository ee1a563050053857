// SHADOW_*: off unless SHADOW_URL is set, the contract's defaults, and errors
// that name the variable and say what to do.

import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../src/config';

const base = { MODEL_URI: 'file:///models/fnol.onnx' };
const noFile = (): string => {
  throw new Error('no file');
};
const problems = (env: Record<string, string>): string[] => {
  try {
    parseConfig({ ...base, ...env }, noFile);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
};

describe('scorer configuration: shadow mirroring', () => {
  it('is off without SHADOW_URL, even with the other SHADOW_* set', () => {
    assert.equal(parseConfig(base, noFile).shadow, undefined);
    assert.equal(
      parseConfig({ ...base, SHADOW_PERCENT: '50', SHADOW_VERSION: '1.1.0' }, noFile).shadow,
      undefined,
    );
  });

  it('takes the contract defaults: 100 %, queue 256, 8 workers, 2000 ms, threshold 0.01, 20 warm-up copies, 50 ms linger', () => {
    const { shadow } = parseConfig(
      { ...base, SHADOW_URL: 'http://fnol-canary.claims.svc.cluster.local:80', SHADOW_VERSION: '1.1.0' },
      noFile,
    );
    assert.deepEqual(
      { ...shadow, url: shadow?.url.href },
      {
        url: 'http://fnol-canary.claims.svc.cluster.local/',
        percent: 100,
        version: '1.1.0',
        queueSize: 256,
        concurrency: 8,
        timeoutMs: 2000,
        diffThreshold: 0.01,
        warmupCopies: 20,
        lingerMs: 50,
      },
    );
  });

  it('takes every setting', () => {
    const { shadow } = parseConfig(
      {
        ...base,
        SHADOW_URL: 'https://candidate.example:8443/prefix',
        SHADOW_VERSION: '2.0.0-rc.1',
        SHADOW_PERCENT: '12.5',
        SHADOW_QUEUE_SIZE: '32',
        SHADOW_CONCURRENCY: '2',
        SHADOW_TIMEOUT_MS: '500',
        SHADOW_DIFF_THRESHOLD: '1e-3',
        SHADOW_WARMUP_COPIES: '0',
        SHADOW_LINGER_MS: '50',
      },
      noFile,
    );
    assert.equal(shadow?.url.href, 'https://candidate.example:8443/prefix');
    assert.deepEqual(
      [shadow?.version, shadow?.percent, shadow?.queueSize, shadow?.concurrency, shadow?.timeoutMs],
      ['2.0.0-rc.1', 12.5, 32, 2, 500],
    );
    assert.equal(shadow?.diffThreshold, 0.001);
    assert.equal(shadow?.warmupCopies, 0);
    assert.equal(shadow?.lingerMs, 50);
  });

  it('names each bad variable and what to do', () => {
    const found = problems({
      SHADOW_URL: 'ftp://candidate',
      SHADOW_PERCENT: '101',
      SHADOW_QUEUE_SIZE: '0',
      SHADOW_CONCURRENCY: 'many',
      SHADOW_TIMEOUT_MS: '-5',
      SHADOW_DIFF_THRESHOLD: 'NaN',
    });
    assert.equal(found.length, 7, found.join('\n'));
    for (const name of [
      'SHADOW_PERCENT',
      'SHADOW_QUEUE_SIZE',
      'SHADOW_CONCURRENCY',
      'SHADOW_TIMEOUT_MS',
      'SHADOW_DIFF_THRESHOLD',
    ]) {
      assert.ok(
        found.some((p) => p.startsWith(`${name}=`) && p.includes('fix or unset it')),
        name,
      );
    }
    assert.ok(
      found.some((p) => p.includes('SHADOW_URL scheme ftp: is not supported; use http:// or https://')),
    );
    assert.ok(found.some((p) => p.includes('SHADOW_VERSION is not set but SHADOW_URL is')));
  });

  it('refuses a URL that is not a base URL, carries credentials, or a bad version', () => {
    assert.match(
      problems({ SHADOW_URL: 'not a url', SHADOW_VERSION: '1' })[0] ?? '',
      /SHADOW_URL is not a valid URL/,
    );
    assert.match(
      problems({ SHADOW_URL: 'http://u:p@candidate', SHADOW_VERSION: '1' })[0] ?? '',
      /SHADOW_URL carries credentials/,
    );
    assert.match(
      problems({ SHADOW_URL: 'http://candidate/?x=1', SHADOW_VERSION: '1' })[0] ?? '',
      /query string or fragment/,
    );
    assert.match(
      problems({ SHADOW_URL: 'http://candidate', SHADOW_VERSION: '1.0 ; rm' })[0] ?? '',
      /SHADOW_VERSION=.* is not a model version/,
    );
  });
});
